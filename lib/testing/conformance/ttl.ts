/**
 * Conformance tests of time to live: liveness at the exact boundary; touch
 * later, earlier and into the past; expired records never returned,
 * counted, listed or revived, and their id, token hash and connection freed.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { CONFORMANCE_TTL_MS, UNKNOWN_ID, makeRecord } from './kit.js';
import type { DefineTest } from './kit.js';

/** Registers the TTL tests. */
export function ttlTests(t: DefineTest): void {
  t('an expired record is never returned, counted or listed (exact boundary)', async (store, clock) => {
    const rec = makeRecord(clock, { userId: 'alice', connectionId: 'c-exp', state: 'IDLE' });
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS - 1);
    assert.ok((await store.get(rec.id)) !== null, 'live 1 ms before expiry');
    assert.equal(await store.count({ state: 'IDLE' }), 1);
    clock.advance(1);
    assert.equal(await store.get(rec.id), null, 'expired at expiresAt exactly');
    assert.equal(await store.getByTokenHash(rec.tokenHash), null);
    assert.equal(await store.getByConnection('c-exp'), null);
    assert.deepEqual(await store.getByUser('alice'), []);
    assert.equal(await store.count(), 0);
    assert.equal(await store.count({ userId: 'alice' }), 0);
    assert.equal(await store.count({ state: 'IDLE' }), 0);
    assert.deepEqual(await store.list(), { sessions: [], total: 0 });
    assert.deepEqual(await store.list({ userId: 'alice' }), { sessions: [], total: 0 });
    assert.equal(await store.delete(rec.id), false, 'an expired record does not count as deleted');
  });

  t('an expired record frees its id, connection and token hash for a new record', async (store, clock) => {
    const rec = makeRecord(clock, { connectionId: 'c-reuse' });
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS);
    const again = makeRecord(clock, { connectionId: 'c-reuse', tokenHash: rec.tokenHash });
    assert.equal(await store.create(again), true);
    assert.deepEqual(await store.getByConnection('c-reuse'), again);
    assert.deepEqual(await store.getByTokenHash(rec.tokenHash), again);
    const sameId = makeRecord(clock, { id: rec.id });
    assert.equal(await store.create(sameId), true, 'the expired id is free too');
    assert.deepEqual(await store.get(rec.id), sameId);
    assert.equal(await store.count(), 2);
  });

  t('touch moves expiry and last-active; the record outlives its old expiry', async (store, clock) => {
    const rec = makeRecord(clock);
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS - 1);
    const expiresAt = clock.wallNow() + CONFORMANCE_TTL_MS;
    assert.equal(await store.touch(rec.id, expiresAt, clock.wallNow()), true);
    clock.advance(10);
    const got = await store.get(rec.id);
    assert.ok(got !== null, 'still live after its first expiry');
    assert.equal(got.expiresAt, expiresAt);
    assert.equal(got.lastActiveAt, clock.wallNow() - 10);
    assert.deepEqual(await store.getByConnection(rec.connectionId!), got);
    assert.deepEqual(await store.getByTokenHash(rec.tokenHash), got);
    assert.deepEqual(await store.getByUser(rec.userId!), [got]);
    assert.equal(await store.count(), 1);
    assert.deepEqual((await store.list()).sessions, [got]);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.equal(await store.get(rec.id), null, 'expires at the new deadline');
    assert.equal(await store.count(), 0);
  });

  t('touch can move expiry earlier', async (store, clock) => {
    const rec = makeRecord(clock);
    await store.create(rec);
    assert.equal(await store.touch(rec.id, clock.wallNow() + 1_000, clock.wallNow()), true);
    clock.advance(999);
    assert.ok((await store.get(rec.id)) !== null, 'live until the earlier expiry');
    clock.advance(1);
    assert.equal(await store.get(rec.id), null);
    assert.equal(await store.count(), 0);
    assert.deepEqual(await store.list(), { sessions: [], total: 0 });
  });

  t('touch or set into the past ends the record; a record created already expired is never seen', async (store, clock) => {
    const a = makeRecord(clock, { connectionId: 'c-past-a' });
    const b = makeRecord(clock, { connectionId: 'c-past-b' });
    await store.create(a);
    await store.create(b);
    assert.equal(await store.touch(a.id, clock.wallNow(), clock.wallNow()), true, 'touch of a live record');
    assert.equal(await store.set({ ...b, expiresAt: clock.wallNow() - 1 }), true, 'set of a live record');
    for (const r of [a, b]) {
      assert.equal(await store.get(r.id), null);
      assert.equal(await store.getByConnection(r.connectionId!), null);
      assert.equal(await store.getByTokenHash(r.tokenHash), null);
    }
    assert.equal(await store.count(), 0);
    const dead = makeRecord(clock, { expiresAt: clock.wallNow(), connectionId: 'c-past-c' });
    await store.create(dead);
    assert.equal(await store.get(dead.id), null);
    assert.deepEqual(await store.list(), { sessions: [], total: 0 });
    assert.equal(await store.create(makeRecord(clock, { connectionId: 'c-past-a', tokenHash: a.tokenHash })), true, 'their keys are free');
    assert.equal(await store.create(makeRecord(clock, { connectionId: 'c-past-c' })), true);
  });

  t('touch and set of a missing or expired record resolve false, store nothing and revive nothing', async (store, clock) => {
    assert.equal(await store.touch(UNKNOWN_ID, clock.wallNow() + 1000, clock.wallNow()), false);
    const ghost = makeRecord(clock);
    assert.equal(await store.set(ghost), false);
    assert.equal(await store.get(ghost.id), null);
    assert.equal(await store.count(), 0);
    const rec = makeRecord(clock);
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.equal(await store.touch(rec.id, clock.wallNow() + CONFORMANCE_TTL_MS, clock.wallNow()), false, 'touch of an expired record');
    assert.equal(await store.set({ ...rec, expiresAt: clock.wallNow() + CONFORMANCE_TTL_MS }), false, 'set of an expired record');
    assert.equal(await store.get(rec.id), null, 'not revived');
    assert.equal(await store.count(), 0);
  });
}
