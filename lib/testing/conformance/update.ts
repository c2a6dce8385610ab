/**
 * Conformance tests of `update` (one atomic change of state, metadata and
 * counters) and of the remote port a record carries.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import type { SessionPatch, SessionRecord } from '../../store/contract.js';
import { CONFORMANCE_TTL_MS, UNKNOWN_ID, makeRecord, rejectsWith } from './kit.js';
import type { DefineTest } from './kit.js';

/** Registers the update and remote-port tests. */
export function updateTests(t: DefineTest): void {
  t('update merges metadata, replaces the state, sets then adds counters; nothing else moves', async (store, clock) => {
    const rec = makeRecord(clock, {
      userId: 'alice',
      connectionId: 'c-upd',
      state: 'ACTIVE',
      metadata: { keep: 'k', drop: 'd', change: 'old' },
      stats: { bytesIn: 5, bytesOut: 6, messagesIn: 7, messagesOut: 8, heartbeats: 9 },
    });
    await store.create(rec);
    clock.advance(1_000);
    const next = await store.update(rec.id, {
      state: 'IDLE',
      metadata: { drop: null, change: 'new', added: 'a' },
      stats: { set: { bytesIn: 100, heartbeats: 0 }, add: { bytesIn: 1, messagesOut: 2 } },
    });
    const expected: SessionRecord = {
      ...rec,
      state: 'IDLE',
      metadata: { keep: 'k', change: 'new', added: 'a' },
      stats: { bytesIn: 101, bytesOut: 6, messagesIn: 7, messagesOut: 10, heartbeats: 0 },
    };
    assert.deepEqual(next, expected, 'the record after the change, expiry and last activity untouched');
    assert.deepEqual(await store.get(rec.id), expected);
    assert.deepEqual(await store.getByConnection('c-upd'), expected);
    assert.deepEqual(await store.getByTokenHash(rec.tokenHash), expected);
    assert.deepEqual(await store.getByUser('alice'), [expected]);
    assert.equal(await store.count({ state: 'IDLE' }), 1, 'the state index follows');
    assert.equal(await store.count({ state: 'ACTIVE' }), 0);
    assert.deepEqual((await store.list({ state: 'IDLE' })).sessions, [expected]);
    assert.deepEqual(await store.update(rec.id, {}), expected, 'an empty patch changes nothing');
    next!.metadata['mine'] = 'x';
    assert.deepEqual((await store.get(rec.id))!.metadata, expected.metadata, 'the result is a copy');
  });

  t('update of a missing, deleted or expired record resolves null and revives nothing', async (store, clock) => {
    assert.equal(await store.update(UNKNOWN_ID, { state: 'IDLE' }), null);
    const gone = makeRecord(clock);
    await store.create(gone);
    await store.delete(gone.id);
    assert.equal(await store.update(gone.id, { metadata: { a: 'b' } }), null);
    assert.equal(await store.get(gone.id), null);
    const old = makeRecord(clock, { connectionId: 'c-old' });
    await store.create(old);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.equal(await store.update(old.id, { stats: { add: { bytesIn: 1 } } }), null);
    assert.equal(await store.get(old.id), null);
    assert.equal(await store.getByConnection('c-old'), null);
    assert.equal(await store.count(), 0);
  });

  t('concurrent updates of one record lose nothing', async (store, clock) => {
    const rec = makeRecord(clock);
    await store.create(rec);
    const n = 40;
    await Promise.all(
      Array.from({ length: n }, (_, i) => store.update(rec.id, { stats: { add: { bytesIn: 1, messagesIn: 2 } }, metadata: { [`k${i}`]: String(i) } })),
    );
    const got = await store.get(rec.id);
    assert.ok(got !== null);
    assert.equal(got.stats.bytesIn, n);
    assert.equal(got.stats.messagesIn, 2 * n);
    assert.equal(Object.keys(got.metadata).length, n, 'every key merged');
  });

  t('a malformed patch is NETLOOP_INVALID_VALUE and changes nothing', async (store, clock) => {
    const rec = makeRecord(clock, { metadata: { a: 'b' } });
    await store.create(rec);
    const bad: Array<[string, unknown]> = [
      ['not an object', null],
      ['an array', []],
      ['an unknown field', { expiresAt: 5 }],
      ['an unknown state', { state: 'NOPE' }],
      ['metadata not an object', { metadata: 'x' }],
      ['a metadata value that is a number', { metadata: { a: 1 } }],
      ['an empty metadata key', { metadata: { '': 'x' } }],
      ['a __proto__ metadata key', { metadata: JSON.parse('{"__proto__":"x"}') as unknown }],
      ['stats not an object', { stats: 5 }],
      ['an unknown stats field', { stats: { mul: {} } }],
      ['an unknown counter', { stats: { add: { bogus: 1 } } }],
      ['a negative counter', { stats: { add: { bytesIn: -1 } } }],
      ['a fractional counter', { stats: { set: { bytesIn: 1.5 } } }],
      ['a counter that is a string', { stats: { set: { bytesIn: '1' } } }],
      ['a state beside a bad counter', { state: 'IDLE', stats: { add: { bytesIn: Number.NaN } } }],
    ];
    for (const [what, patch] of bad) {
      await rejectsWith(() => store.update(rec.id, patch as SessionPatch), ErrorCode.INVALID_VALUE, what);
    }
    assert.deepEqual(await store.get(rec.id), rec, 'nothing changed');
  });

  t('the remote port round-trips; a record without one reads null; a bad one is refused', async (store, clock) => {
    const withPort = makeRecord(clock, { remotePort: 51_234 });
    const withNull = makeRecord(clock, { remotePort: null, remoteAddress: null });
    const absent = makeRecord(clock);
    delete (absent as Partial<SessionRecord>).remotePort;
    for (const r of [withPort, withNull, absent]) assert.equal(await store.create(r), true);
    assert.equal((await store.get(withPort.id))!.remotePort, 51_234);
    assert.equal((await store.get(withNull.id))!.remotePort, null);
    assert.equal((await store.get(absent.id))!.remotePort, null, 'absent (older data) reads null');
    assert.equal(await store.set({ ...withPort, remotePort: 0 }), true);
    assert.equal((await store.getByConnection(withPort.connectionId!))!.remotePort, 0);
    for (const port of [-1, 65_536, 1.5, '80']) {
      await rejectsWith(() => store.create(makeRecord(clock, { remotePort: port as number })), ErrorCode.INVALID_VALUE, `port ${String(port)}`);
    }
    assert.equal(await store.count(), 3);
  });
}
