/**
 * Conformance tests of presence: a user is online while at least one live
 * record of theirs is bound to a connection; `onlineUsers` pages through
 * every online user once.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import type { OnlinePage, SessionStore } from '../../store/contract.js';
import { CONFORMANCE_TTL_MS, makeRecord, rejectsWith } from './kit.js';
import type { DefineTest } from './kit.js';

/** Every online user, following the cursor from the first page (`limit` per page). */
export async function allOnline(store: SessionStore, limit?: number): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, 'onlineUsers ends');
    const page: OnlinePage = limit === undefined ? {} : { limit };
    if (cursor !== null) page.cursor = cursor;
    const got = await store.onlineUsers(page);
    if (limit !== undefined) assert.ok(got.users.length <= limit, `a page holds at most ${limit} users`);
    seen.push(...got.users);
    if (got.cursor === null) return seen;
    assert.equal(typeof got.cursor, 'string');
    cursor = got.cursor;
  }
}

/** Registers the presence tests. */
export function presenceTests(t: DefineTest): void {
  t('a user is online while a live record of theirs is bound to a connection', async (store, clock) => {
    assert.equal(await store.isOnline('alice'), false, 'nobody yet');
    assert.equal(await store.onlineCount(), 0);
    assert.deepEqual(await store.onlineUsers(), { users: [], cursor: null });
    const unbound = makeRecord(clock, { userId: 'alice', connectionId: null, state: 'IDLE' });
    await store.create(unbound);
    assert.equal(await store.isOnline('alice'), false, 'a session without a connection is not presence');
    const anon = makeRecord(clock, { userId: null });
    await store.create(anon);
    assert.equal(await store.onlineCount(), 0, 'an anonymous session is never online');
    const a1 = makeRecord(clock, { userId: 'alice' });
    const a2 = makeRecord(clock, { userId: 'alice' });
    const bob = makeRecord(clock, { userId: 'bob' });
    for (const r of [a1, a2, bob]) await store.create(r);
    assert.equal(await store.isOnline('alice'), true);
    assert.equal(await store.isOnline('bob'), true);
    assert.equal(await store.isOnline('carol'), false);
    assert.equal(await store.onlineCount(), 2, 'users, not sessions');
    assert.deepEqual((await allOnline(store)).sort(), ['alice', 'bob']);
    await store.delete(a1.id);
    assert.equal(await store.isOnline('alice'), true, 'still one bound session');
    await store.set({ ...a2, connectionId: null, state: 'IDLE' });
    assert.equal(await store.isOnline('alice'), false, 'unbound: offline');
    assert.equal(await store.onlineCount(), 1);
    await store.set({ ...a2, connectionId: 'c-again' });
    assert.equal(await store.isOnline('alice'), true, 'bound again');
    await store.clear();
    assert.equal(await store.onlineCount(), 0);
    assert.equal(await store.isOnline('bob'), false);
  });

  t('a user goes offline when their sessions expire, with no cleanup step; a touch keeps them online', async (store, clock) => {
    const a = makeRecord(clock, { userId: 'alice' });
    const b = makeRecord(clock, { userId: 'bob' });
    await store.create(a);
    await store.create(b);
    clock.advance(CONFORMANCE_TTL_MS / 2);
    assert.equal(await store.touch(b.id, clock.wallNow() + CONFORMANCE_TTL_MS, clock.wallNow()), true);
    clock.advance(CONFORMANCE_TTL_MS / 2);
    assert.equal(await store.isOnline('alice'), false, 'expired: offline');
    assert.equal(await store.isOnline('bob'), true, 'touched: online');
    assert.equal(await store.onlineCount(), 1);
    assert.deepEqual(await allOnline(store), ['bob']);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.equal(await store.onlineCount(), 0);
    assert.deepEqual(await allOnline(store, 3), []);
    const again = makeRecord(clock, { userId: 'alice' });
    await store.create(again);
    assert.equal(await store.isOnline('alice'), true, 'a new login after expiry counts at once');
  });

  t('onlineUsers pages through every online user exactly once', async (store, clock) => {
    const users = Array.from({ length: 23 }, (_, i) => `user-${String(i).padStart(2, '0')}`);
    for (const u of users) await store.create(makeRecord(clock, { userId: u }));
    // A second session of some users: still one entry each.
    for (const u of users.slice(0, 5)) await store.create(makeRecord(clock, { userId: u }));
    await store.create(makeRecord(clock, { userId: 'idle-only', connectionId: null, state: 'IDLE' }));
    assert.equal(await store.onlineCount(), users.length);
    for (const limit of [1, 7, 23, 100]) {
      const seen = await allOnline(store, limit);
      assert.equal(new Set(seen).size, seen.length, `limit ${limit}: no user twice`);
      assert.deepEqual([...seen].sort(), users, `limit ${limit}: every online user`);
    }
    assert.deepEqual([...(await allOnline(store))].sort(), users, 'the default limit');
  });

  t('presence arguments are checked: NETLOOP_INVALID_OPTION for a bad page, NETLOOP_INVALID_VALUE for a bad user id', async (store) => {
    for (const limit of [0, -1, 1.5, Number.NaN, '10']) {
      await rejectsWith(() => store.onlineUsers({ limit: limit as number }), ErrorCode.INVALID_OPTION, `limit ${String(limit)}`);
    }
    for (const cursor of [5, {}, true]) {
      await rejectsWith(() => store.onlineUsers({ cursor: cursor as string }), ErrorCode.INVALID_OPTION, `cursor ${String(cursor)}`);
    }
    for (const userId of [undefined, null, 5, {}]) {
      await rejectsWith(() => store.isOnline(userId as string), ErrorCode.INVALID_VALUE, `user id ${String(userId)}`);
    }
  });
}
