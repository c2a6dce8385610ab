/**
 * Conformance tests of records and indexes: round trips, copies in and out,
 * malformed input refused; lookups by token hash, connection and user after
 * create, set, delete and clear; duplicates refused with nothing changed.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import type { SessionRecord, SessionState } from '../../store/contract.js';
import { UNKNOWN_ID, fakeTokenHash, makeRecord, rejectsWith } from './kit.js';
import type { DefineTest } from './kit.js';

/** Registers the tests of records and indexes. */
export function recordTests(t: DefineTest): void {
  t('kind is a non-empty string; a new store is empty', async (store) => {
    assert.equal(typeof store.kind, 'string');
    assert.ok(store.kind.length > 0, 'kind is empty');
    assert.equal(await store.count(), 0);
    assert.deepEqual(await store.list(), { sessions: [], total: 0 });
  });

  t('create then get returns an equal record; unknown ids are null', async (store, clock) => {
    const rec = makeRecord(clock, { metadata: { room: 'lobby', lang: 'zh', note: 'ü 漢 🙂' }, remoteAddress: '::1' });
    assert.equal(await store.create(rec), true);
    assert.deepEqual(await store.get(rec.id), rec);
    const anon = makeRecord(clock, { userId: null, connectionId: null, remoteAddress: null, state: 'CONNECTING' });
    assert.equal(await store.create(anon), true);
    assert.deepEqual(await store.get(anon.id), anon, 'nulls round-trip');
    assert.equal(await store.get(UNKNOWN_ID), null);
  });

  t('records are copies: mutating the input or a result does not change the store', async (store, clock) => {
    const rec = makeRecord(clock, { metadata: { a: '1' } });
    const snapshot = structuredClone(rec);
    await store.create(rec);
    rec.metadata['a'] = 'changed';
    rec.stats.bytesIn = 99;
    rec.state = 'IDLE';
    const got = await store.get(rec.id);
    assert.deepEqual(got, snapshot);
    got!.metadata['b'] = 'x';
    got!.stats.messagesIn = 5;
    got!.state = 'IDLE';
    assert.deepEqual(await store.get(rec.id), snapshot);
    const [listed] = (await store.list()).sessions;
    listed!.metadata['c'] = 'y';
    assert.deepEqual(await store.getByConnection(rec.connectionId!), snapshot);
  });

  t('malformed input is refused with NETLOOP_INVALID_VALUE before anything is stored', async (store, clock) => {
    const good = makeRecord(clock);
    const bad: Array<[string, unknown]> = [
      ['empty id', { ...good, id: '' }],
      ['empty token hash', { ...good, tokenHash: '' }],
      ['unknown state', { ...good, state: 'ASLEEP' }],
      ['numeric user', { ...good, userId: 42 }],
      ['metadata value not a string', { ...good, metadata: { n: 1 } }],
      ['metadata an array', { ...good, metadata: ['x'] }],
      ['missing stats', { ...good, stats: undefined }],
      ['negative infinity in stats', { ...good, stats: { ...good.stats, bytesIn: Number.NEGATIVE_INFINITY } }],
      ['NaN expiry', { ...good, expiresAt: Number.NaN }],
      ['infinite expiry', { ...good, expiresAt: Number.POSITIVE_INFINITY }],
      ['missing createdAt', { ...good, createdAt: undefined }],
      ['not an object', null],
    ];
    for (const [what, record] of bad) {
      await rejectsWith(() => store.create(record as SessionRecord), ErrorCode.INVALID_VALUE, `create: ${what}`);
    }
    assert.equal(await store.count(), 0, 'nothing was stored');
    assert.equal(await store.get(good.id), null);
    assert.equal(await store.getByConnection(good.connectionId!), null);
    await store.create(good);
    await rejectsWith(() => store.set({ ...good, state: 'ASLEEP' as SessionState }), ErrorCode.INVALID_VALUE, 'set: unknown state');
    await rejectsWith(() => store.set({ ...good, metadata: { n: 1 } as unknown as Record<string, string> }), ErrorCode.INVALID_VALUE, 'set: bad metadata');
    await rejectsWith(() => store.touch(good.id, Number.NaN, clock.wallNow()), ErrorCode.INVALID_VALUE, 'touch: NaN expiry');
    await rejectsWith(() => store.touch(good.id, Number.POSITIVE_INFINITY, clock.wallNow()), ErrorCode.INVALID_VALUE, 'touch: infinite expiry');
    await rejectsWith(() => store.touch(good.id, clock.wallNow() + 1_000, Number.NaN), ErrorCode.INVALID_VALUE, 'touch: NaN last activity');
    assert.deepEqual(await store.get(good.id), good, 'the refused changes changed nothing');
  });

  // ── Indexes ───────────────────────────────────────────────────────────────

  t('lookups by token hash, connection and user', async (store, clock) => {
    const a1 = makeRecord(clock, { userId: 'alice' });
    clock.advance(1);
    const b1 = makeRecord(clock, { userId: 'bob' });
    clock.advance(1);
    const a2 = makeRecord(clock, { userId: 'alice', connectionId: null });
    const anon = makeRecord(clock, { userId: null });
    for (const r of [a1, b1, a2, anon]) assert.equal(await store.create(r), true);
    assert.deepEqual(await store.getByTokenHash(b1.tokenHash), b1);
    assert.equal(await store.getByTokenHash(fakeTokenHash('nobody')), null);
    assert.deepEqual(await store.getByConnection(a1.connectionId!), a1);
    assert.equal(await store.getByConnection('conn-unknown'), null);
    assert.deepEqual(await store.getByUser('alice'), [a1, a2], 'oldest first');
    assert.deepEqual(await store.getByUser('bob'), [b1]);
    assert.deepEqual(await store.getByUser('carol'), []);
    assert.equal(await store.count(), 4);
  });

  t('duplicates: a live id, token hash or connection is refused with NETLOOP_INVALID_VALUE, changing nothing', async (store, clock) => {
    const rec = makeRecord(clock, { connectionId: 'c-dup', userId: 'alice' });
    await store.create(rec);
    await rejectsWith(() => store.create({ ...makeRecord(clock), id: rec.id }), ErrorCode.INVALID_VALUE, 'create: same id');
    await rejectsWith(() => store.create(makeRecord(clock, { tokenHash: rec.tokenHash })), ErrorCode.INVALID_VALUE, 'create: same token hash');
    await rejectsWith(() => store.create(makeRecord(clock, { connectionId: 'c-dup' })), ErrorCode.INVALID_VALUE, 'create: same connection');
    const other = makeRecord(clock, { connectionId: 'c-other', userId: 'bob' });
    await store.create(other);
    await rejectsWith(() => store.set({ ...other, connectionId: 'c-dup' }), ErrorCode.INVALID_VALUE, 'set: onto a bound connection');
    await rejectsWith(() => store.set({ ...other, tokenHash: rec.tokenHash }), ErrorCode.INVALID_VALUE, 'set: onto a held token hash');
    assert.equal(await store.count(), 2);
    assert.deepEqual(await store.get(rec.id), rec);
    assert.deepEqual(await store.get(other.id), other, 'the refused set changed nothing');
    assert.deepEqual(await store.getByConnection('c-dup'), rec);
    assert.deepEqual(await store.getByConnection('c-other'), other);
    assert.deepEqual(await store.getByTokenHash(rec.tokenHash), rec);
    assert.deepEqual(await store.getByUser('alice'), [rec]);
  });

  t('set replaces a live record and its indexes follow', async (store, clock) => {
    const rec = makeRecord(clock, { userId: 'alice', connectionId: 'c-old' });
    await store.create(rec);
    const next: SessionRecord = {
      ...rec,
      tokenHash: fakeTokenHash('rotated'),
      userId: 'bob',
      connectionId: 'c-new',
      state: 'IDLE',
      metadata: { k: 'v' },
      stats: { ...rec.stats, bytesIn: 10, heartbeats: 2 },
    };
    assert.equal(await store.set(next), true);
    assert.deepEqual(await store.get(rec.id), next);
    assert.equal(await store.getByTokenHash(rec.tokenHash), null, 'old token hash unindexed');
    assert.deepEqual(await store.getByTokenHash(next.tokenHash), next);
    assert.equal(await store.getByConnection('c-old'), null, 'old connection unindexed');
    assert.deepEqual(await store.getByConnection('c-new'), next);
    assert.deepEqual(await store.getByUser('alice'), []);
    assert.deepEqual(await store.getByUser('bob'), [next]);
    assert.equal(await store.count({ userId: 'alice' }), 0);
    assert.equal(await store.count({ state: 'IDLE' }), 1);
    assert.equal(await store.count({ state: 'ACTIVE' }), 0);
    // The old keys are free for another record.
    assert.equal(await store.create(makeRecord(clock, { connectionId: 'c-old', tokenHash: rec.tokenHash })), true);
  });

  t('set can detach and re-attach a connection', async (store, clock) => {
    const rec = makeRecord(clock, { connectionId: 'c-1' });
    await store.create(rec);
    assert.equal(await store.set({ ...rec, connectionId: null, state: 'IDLE' }), true);
    assert.equal(await store.getByConnection('c-1'), null);
    assert.equal((await store.get(rec.id))!.connectionId, null);
    assert.equal(await store.set({ ...rec, connectionId: 'c-2', state: 'ACTIVE' }), true);
    assert.deepEqual(await store.getByConnection('c-2'), { ...rec, connectionId: 'c-2' });
    assert.equal(await store.getByConnection('c-1'), null);
  });

  t('delete removes the record and every index entry', async (store, clock) => {
    const rec = makeRecord(clock, { userId: 'alice', connectionId: 'c-del' });
    const other = makeRecord(clock, { userId: 'alice' });
    await store.create(rec);
    await store.create(other);
    assert.equal(await store.delete(rec.id), true);
    assert.equal(await store.delete(rec.id), false, 'second delete');
    assert.equal(await store.get(rec.id), null);
    assert.equal(await store.getByTokenHash(rec.tokenHash), null);
    assert.equal(await store.getByConnection('c-del'), null);
    assert.deepEqual(await store.getByUser('alice'), [other]);
    assert.equal(await store.count(), 1);
    assert.deepEqual(await store.list(), { sessions: [other], total: 1 });
    assert.equal(await store.delete(UNKNOWN_ID), false);
    assert.equal(await store.create(makeRecord(clock, { connectionId: 'c-del', tokenHash: rec.tokenHash })), true, 'keys are free again');
  });

  t('clear removes every record and index entry', async (store, clock) => {
    const recs = [makeRecord(clock), makeRecord(clock, { userId: 'bob' }), makeRecord(clock, { userId: null })];
    for (const r of recs) await store.create(r);
    await store.clear();
    assert.equal(await store.count(), 0);
    assert.deepEqual(await store.list(), { sessions: [], total: 0 });
    for (const r of recs) {
      assert.equal(await store.get(r.id), null);
      assert.equal(await store.getByTokenHash(r.tokenHash), null);
      assert.equal(await store.getByConnection(r.connectionId!), null);
    }
    assert.deepEqual(await store.getByUser('alice'), []);
    assert.equal(await store.create(recs[0]!, { maxPerUser: 1 }), true, 'usable after clear');
  });
}
