/**
 * Conformance tests of a store shared between processes: what one
 * instance changes, another over the same data sees (updates, presence);
 * and, for a store with a change feed (`publish`), tombstones and the
 * changes reaching the other instance.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import type { SessionChange, SessionStore, SharedSessionStore } from '../../store/contract.js';
import { isSharedStore } from '../../store/contract.js';
import { UNKNOWN_ID, makeRecord, rejectsWith } from './kit.js';
import type { DefinePeerTest, DefineTest } from './kit.js';

/** How long a published change may take to reach the other instance before the test fails. */
const DELIVERY_MS = 10_000;

/** A valid change of `id`, published by `origin`. */
function changeOf(id: string, origin: string, overrides: Partial<SessionChange> = {}): SessionChange {
  return { kind: 'ended', id, connectionId: 'conn-x', userId: 'alice', reason: 'kicked', detail: 'banned', origin, at: 1_700_000_000_000, ...overrides };
}

/** Resolves once `store`'s feed says 'up' (its subscription started by a 'change' listener). */
function subscribed(store: SharedSessionStore, onChange: (c: SessionChange) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${store.kind} store's feed did not come up within ${DELIVERY_MS} ms`)), DELIVERY_MS);
    const onFeed = (state: 'up' | 'down'): void => {
      if (state !== 'up') return;
      clearTimeout(timer);
      store.off('feed', onFeed);
      resolve();
    };
    store.on('feed', onFeed);
    store.on('change', onChange);
  });
}

/** Resolves the first change `pick` accepts among those `store` delivers after the call. */
function nextChange(list: SessionChange[], pick: (c: SessionChange) => boolean, what: string): Promise<SessionChange> {
  const started = Date.now();
  return new Promise<SessionChange>((resolve, reject) => {
    const poll = (): void => {
      const found = list.find(pick);
      if (found !== undefined) resolve(found);
      else if (Date.now() - started > DELIVERY_MS) reject(new Error(`${what}: not delivered within ${DELIVERY_MS} ms`));
      else setTimeout(poll, 2);
    };
    poll();
  });
}

/** Registers the tests of a store with a change feed that need no peer. */
export function feedTests(t: DefineTest): void {
  t('publish writes a tombstone that tombstone(id) reads back; a malformed change is NETLOOP_INVALID_VALUE', async (store, clock) => {
    if (!isSharedStore(store)) return;
    const rec = makeRecord(clock);
    assert.equal(await store.tombstone(rec.id), null, 'no tombstone before');
    const change = changeOf(rec.id, 'p-1', { by: 'other-session' });
    await store.publish(change);
    assert.deepEqual(await store.tombstone(rec.id), change);
    const later = changeOf(rec.id, 'p-2', { reason: 'deleted', detail: 'logout' });
    await store.publish(later);
    assert.deepEqual(await store.tombstone(rec.id), later, 'the last change wins');
    assert.equal(await store.tombstone(UNKNOWN_ID), null);
    const bad: Array<[string, unknown]> = [
      ['an unknown kind', { ...change, kind: 'created' }],
      ['an unknown reason', { ...change, reason: 'vanished' }],
      ['no origin', { ...change, origin: '' }],
      ['an empty id', { ...change, id: '' }],
      ['a time that is not a number', { ...change, at: 'now' }],
      ['not an object', null],
    ];
    for (const [what, c] of bad) await rejectsWith(() => store.publish(c as SessionChange), ErrorCode.INVALID_VALUE, what);
    assert.deepEqual(await store.tombstone(rec.id), later, 'a refused change writes nothing');
  });
}

/** Registers the tests across two instances over the same data. */
export function sharedTests(t: DefinePeerTest): void {
  t('an update made by one instance is seen by the other, and adds from both lose nothing', async (store, peer, clock) => {
    const rec = makeRecord(clock, { userId: 'alice' });
    await store.create(rec);
    await peer.update(rec.id, { state: 'IDLE', metadata: { room: 'lobby' } });
    const got = await store.get(rec.id);
    assert.ok(got !== null);
    assert.equal(got.state, 'IDLE');
    assert.deepEqual(got.metadata, { room: 'lobby' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : peer).update(rec.id, { stats: { add: { messagesIn: 1 } } })));
    assert.equal((await peer.get(rec.id))!.stats.messagesIn, 20);
  });

  t('presence answers for every instance: a login on one is online on the other until it ends', async (store, peer, clock) => {
    const a = makeRecord(clock, { userId: 'alice' });
    const b = makeRecord(clock, { userId: 'bob' });
    await store.create(a);
    await peer.create(b);
    for (const s of [store, peer]) {
      assert.equal(await s.isOnline('alice'), true);
      assert.equal(await s.isOnline('bob'), true);
      assert.equal(await s.onlineCount(), 2);
      assert.deepEqual((await s.onlineUsers()).users.sort(), ['alice', 'bob']);
    }
    await peer.delete(a.id);
    assert.equal(await store.isOnline('alice'), false, 'a delete by the other instance');
    clock.advance(a.ttl);
    assert.equal(await peer.isOnline('bob'), false, 'an expiry, with no cleanup step');
    assert.equal(await store.onlineCount(), 0);
  });

  t('a published change reaches the other instance, with its tombstone', async (store, peer, clock) => {
    if (!isSharedStore(store) || !isSharedStore(peer)) return;
    const got: SessionChange[] = [];
    await subscribed(peer, (c) => got.push(c));
    const rec = makeRecord(clock);
    const change = changeOf(rec.id, 'process-a', { reason: 'replaced', by: 'newer', detail: 'login-elsewhere', connectionId: rec.connectionId });
    await store.publish(change);
    assert.deepEqual(await nextChange(got, (c) => c.id === rec.id, 'the change'), change);
    assert.deepEqual(await peer.tombstone(rec.id), change, 'the tombstone, read by the other instance');
    // Several in a row all arrive (delivery is at least once: duplicates are allowed, losses are not while subscribed).
    const many = Array.from({ length: 20 }, (_, i) => changeOf(makeRecord(clock).id, 'process-a', { reason: i % 2 === 0 ? 'deleted' : 'expired' }));
    await Promise.all(many.map((c) => store.publish(c)));
    for (const c of many) assert.deepEqual(await nextChange(got, (x) => x.id === c.id, `change ${c.id}`), c);
  });
}
