/**
 * Conformance tests of `maxPerUser` (per user, anonymous exempt, expired
 * sessions not counted, atomic under concurrent creates, at least 1) and of
 * the store's lifecycle (ping, close, every call after close).
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import { CONFORMANCE_TTL_MS, makeRecord, rejectsWith } from './kit.js';
import type { DefineTest } from './kit.js';

/** Registers the tests of maxPerUser and of the lifecycle. */
export function limitTests(t: DefineTest): void {
  t('maxPerUser refuses beyond the limit, per user, and frees on delete', async (store, clock) => {
    const a = [makeRecord(clock, { userId: 'alice' }), makeRecord(clock, { userId: 'alice' }), makeRecord(clock, { userId: 'alice' })];
    assert.equal(await store.create(a[0]!, { maxPerUser: 2 }), true);
    assert.equal(await store.create(a[1]!, { maxPerUser: 2 }), true);
    assert.equal(await store.create(a[2]!, { maxPerUser: 2 }), false);
    assert.equal(await store.get(a[2]!.id), null, 'a refused record is not stored');
    assert.equal(await store.getByTokenHash(a[2]!.tokenHash), null, 'nor indexed');
    assert.equal(await store.getByConnection(a[2]!.connectionId!), null);
    assert.equal(await store.create(makeRecord(clock, { userId: 'bob' }), { maxPerUser: 2 }), true, 'other users unaffected');
    assert.equal(await store.create(makeRecord(clock, { userId: null }), { maxPerUser: 1 }), true, 'anonymous: no per-user limit');
    assert.equal(await store.create(makeRecord(clock, { userId: null }), { maxPerUser: 1 }), true);
    assert.equal(await store.create(makeRecord(clock, { userId: 'alice' })), true, 'no limit without maxPerUser');
    await store.delete(a[0]!.id);
    await store.delete(a[1]!.id);
    assert.equal(await store.create(a[2]!, { maxPerUser: 2 }), true, 'room again after a delete');
    assert.equal(await store.count({ userId: 'alice' }), 2);
  });

  t('maxPerUser ignores expired sessions (a dead session never locks a user out)', async (store, clock) => {
    assert.equal(await store.create(makeRecord(clock, { userId: 'alice' }), { maxPerUser: 1 }), true);
    assert.equal(await store.create(makeRecord(clock, { userId: 'alice' }), { maxPerUser: 1 }), false);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.equal(await store.create(makeRecord(clock, { userId: 'alice' }), { maxPerUser: 1 }), true);
    assert.equal(await store.count({ userId: 'alice' }), 1);
  });

  t('maxPerUser is atomic under concurrent creates', async (store, clock) => {
    const recs = Array.from({ length: 12 }, (_, i) => makeRecord(clock, { userId: i % 2 === 0 ? 'alice' : 'bob' }));
    const results = await Promise.all(recs.map((r) => store.create(r, { maxPerUser: 3 })));
    for (const user of ['alice', 'bob']) {
      const accepted = recs.filter((r, i) => r.userId === user && results[i]).length;
      assert.equal(accepted, 3, `exactly the limit succeeded for ${user}`);
      assert.equal(await store.count({ userId: user }), 3);
      assert.equal((await store.getByUser(user)).length, 3);
      assert.equal((await store.list({ userId: user })).total, 3);
    }
    for (const [i, r] of recs.entries()) {
      assert.equal((await store.get(r.id)) !== null, results[i], `record ${i} stored iff accepted`);
    }
  });

  t('maxPerUser must be an integer of at least 1 (NETLOOP_INVALID_OPTION), and a refused option stores nothing', async (store, clock) => {
    for (const max of [0, -1, 1.5, Number.NaN]) {
      const rec = makeRecord(clock);
      await rejectsWith(() => store.create(rec, { maxPerUser: max }), ErrorCode.INVALID_OPTION, `maxPerUser ${max}`);
      assert.equal(await store.get(rec.id), null);
    }
  });

  // ── Lifecycle ─────────────────────────────────────────────────────────────

  t('ping resolves while open; close is idempotent, then every call rejects with NETLOOP_STORE_CLOSED', async (store, clock) => {
    if (typeof store.ping === 'function') await store.ping();
    const rec = makeRecord(clock);
    await store.create(rec);
    await store.close();
    await store.close();
    const code = ErrorCode.STORE_CLOSED;
    await rejectsWith(() => store.create(makeRecord(clock)), code, 'create');
    await rejectsWith(() => store.get(rec.id), code, 'get');
    await rejectsWith(() => store.set(rec), code, 'set');
    await rejectsWith(() => store.touch(rec.id, clock.wallNow() + 1, clock.wallNow()), code, 'touch');
    await rejectsWith(() => store.delete(rec.id), code, 'delete');
    await rejectsWith(() => store.getByTokenHash(rec.tokenHash), code, 'getByTokenHash');
    await rejectsWith(() => store.getByConnection(rec.connectionId!), code, 'getByConnection');
    await rejectsWith(() => store.getByUser('alice'), code, 'getByUser');
    await rejectsWith(() => store.list(), code, 'list');
    await rejectsWith(() => store.count(), code, 'count');
    await rejectsWith(() => store.clear(), code, 'clear');
    if (typeof store.ping === 'function') await rejectsWith(() => store.ping!(), code, 'ping');
  });
}
