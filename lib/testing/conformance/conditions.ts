/**
 * Conformance tests of conditional writes: `set`, `delete`, `touch` and
 * `update` with `{ ifConnection }` apply only while the live record is bound to that
 * connection (or, for null, to none); otherwise they reject with
 * `NETLOOP_CONDITION_FAILED` and change nothing, indexes and presence
 * included. A record that is gone answers as without a condition.
 *
 * The race they exist for, played on one store (and, for a shared store,
 * across two instances in the shared tests):
 *
 * ```
 *   bound to a ──resume──▶ bound to b ──late detach of a (ifConnection: a)──▶ refused, still b
 * ```
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import type { SessionRecord, SessionStore, WriteCondition } from '../../store/contract.js';
import { UNKNOWN_ID, makeRecord, rejectsWith } from './kit.js';
import type { DefinePeerTest, DefineTest } from './kit.js';

/** The record a detach of `r` writes: unbound, idle. */
const detached = (r: SessionRecord): SessionRecord => ({ ...r, connectionId: null, state: 'IDLE' });

/** Asserts that `r` is stored as given, bound to `connectionId`, found under it, and its user online. */
async function assertBoundTo(store: SessionStore, r: SessionRecord, connectionId: string, what: string): Promise<void> {
  const got = await store.get(r.id);
  assert.ok(got !== null, `${what}: the record is still there`);
  assert.equal(got.connectionId, connectionId, `${what}: still bound to ${connectionId}`);
  assert.equal(got.state, r.state, `${what}: state unchanged`);
  assert.equal((await store.getByConnection(connectionId))?.id, r.id, `${what}: found under its connection`);
  assert.equal(await store.isOnline(r.userId ?? ''), true, `${what}: its user is online`);
}

/** Registers the conditional write tests. */
export function conditionTests(t: DefineTest): void {
  t('set with ifConnection: applies while bound to that connection, refused (nothing changed) once rebound', async (store, clock) => {
    const a = makeRecord(clock, { userId: 'cond-user' });
    await store.create(a);
    // Rebound to b (a resume elsewhere), then a's late detach.
    const b: SessionRecord = { ...a, connectionId: 'cond-b', remotePort: 50_001 };
    assert.equal(await store.set(b, { ifConnection: a.connectionId }), true, 'bound to a: the write applies');
    await rejectsWith(() => store.set(detached(b), { ifConnection: a.connectionId }), ErrorCode.CONDITION_FAILED, 'a detach of a after the resume on b');
    await assertBoundTo(store, b, 'cond-b', 'after the refused set');
    assert.equal(await store.getByConnection(a.connectionId!), null, 'the old connection finds nothing');
    // The holder's own detach applies; then only a condition of "bound to none" does.
    assert.equal(await store.set(detached(b), { ifConnection: 'cond-b' }), true, "b's own detach applies");
    assert.equal((await store.get(a.id))?.connectionId, null);
    assert.equal(await store.isOnline('cond-user'), false, 'detached: offline');
    await rejectsWith(() => store.set({ ...b, connectionId: 'cond-c' }, { ifConnection: 'cond-b' }), ErrorCode.CONDITION_FAILED, 'expects b, bound to none');
    assert.equal((await store.get(a.id))?.connectionId, null, 'still unbound');
    assert.equal(await store.set({ ...b, connectionId: 'cond-c' }, { ifConnection: null }), true, 'ifConnection null: applies while bound to none');
    await rejectsWith(() => store.set(detached(b), { ifConnection: null }), ErrorCode.CONDITION_FAILED, 'expects none, bound to c');
    assert.equal((await store.get(a.id))?.connectionId, 'cond-c');
    // A condition does not change what a set does without one, nor what a gone record answers.
    assert.equal(await store.set(detached(b)), true, 'no condition: applies whatever the binding');
    assert.equal(await store.set(makeRecord(clock), { ifConnection: 'anything' }), false, 'a record never created: false, as without a condition');
  });

  t('delete with ifConnection: removes while bound to that connection, refused (kept) once rebound', async (store, clock) => {
    const a = makeRecord(clock, { userId: 'cond-del' });
    await store.create(a);
    await store.set({ ...a, connectionId: 'cond-del-b' });
    await rejectsWith(() => store.delete(a.id, { ifConnection: a.connectionId }), ErrorCode.CONDITION_FAILED, 'a delete on behalf of the old connection');
    await assertBoundTo(store, { ...a, connectionId: 'cond-del-b' }, 'cond-del-b', 'after the refused delete');
    await rejectsWith(() => store.delete(a.id, { ifConnection: null }), ErrorCode.CONDITION_FAILED, 'expects none, bound to b');
    assert.equal(await store.delete(a.id, { ifConnection: 'cond-del-b' }), true, 'the holder removes it');
    assert.equal(await store.get(a.id), null);
    assert.equal(await store.getByConnection('cond-del-b'), null, 'its connection entry went with it');
    assert.equal(await store.delete(a.id, { ifConnection: 'cond-del-b' }), false, 'gone: false');
    assert.equal(await store.delete(UNKNOWN_ID, { ifConnection: null }), false, 'never there: false');
    // Unbound, expired: a condition is not checked against a record no one sees.
    const idle = makeRecord(clock, { connectionId: null, state: 'IDLE' });
    await store.create(idle);
    assert.equal(await store.delete(idle.id, { ifConnection: null }), true, 'bound to none, as expected');
    const late = makeRecord(clock, { expiresAt: clock.wallNow() + 1_000 });
    await store.create(late);
    clock.advance(1_000);
    assert.equal(await store.delete(late.id, { ifConnection: 'someone-else' }), false, 'expired: false, whatever the condition');
  });

  t('touch and update with ifConnection: apply while bound to that connection, refused (nothing moved) once rebound', async (store, clock) => {
    const a = makeRecord(clock, { userId: 'cond-hb' });
    await store.create(a);
    const on = { ifConnection: a.connectionId };
    const later = clock.wallNow() + 2 * 60_000;
    assert.equal(await store.touch(a.id, later, clock.wallNow(), on), true, 'bound to a: the touch applies');
    assert.equal((await store.get(a.id))?.expiresAt, later);
    const counted = await store.update(a.id, { stats: { set: { heartbeats: 3 } } }, on);
    assert.equal(counted?.stats.heartbeats, 3, 'bound to a: the update applies');
    // Rebound to b with its own expiry and counters: a's writes behind must not move them.
    const b: SessionRecord = { ...a, connectionId: 'cond-hb-b', expiresAt: later + 1_000, stats: { ...a.stats, heartbeats: 7 } };
    await store.set(b);
    await rejectsWith(() => store.touch(a.id, clock.wallNow() + 1_000, clock.wallNow(), on), ErrorCode.CONDITION_FAILED, "a's late touch");
    await rejectsWith(() => store.update(a.id, { stats: { set: { heartbeats: 3 } }, state: 'IDLE' }, on), ErrorCode.CONDITION_FAILED, "a's late update");
    const got = await store.get(a.id);
    assert.equal(got?.expiresAt, later + 1_000, 'the expiry b set');
    assert.equal(got?.stats.heartbeats, 7, 'the counters b set');
    assert.equal(got?.state, 'ACTIVE');
    await assertBoundTo(store, b, 'cond-hb-b', 'after the refused touch and update');
    // Unbound: only a condition of "bound to none" applies; gone: false and null, as without one.
    await store.set(detached(b));
    assert.equal(await store.touch(a.id, later + 2_000, clock.wallNow(), { ifConnection: null }), true);
    assert.equal((await store.update(a.id, { metadata: { k: 'v' } }, { ifConnection: null }))?.metadata.k, 'v');
    await rejectsWith(() => store.touch(a.id, later, clock.wallNow(), { ifConnection: 'cond-hb-b' }), ErrorCode.CONDITION_FAILED, 'expects b, bound to none');
    await store.delete(a.id);
    assert.equal(await store.touch(a.id, later, clock.wallNow(), on), false, 'gone: false');
    assert.equal(await store.update(a.id, { state: 'IDLE' }, on), null, 'gone: null');
  });

  t('a malformed write condition is refused (NETLOOP_INVALID_VALUE), nothing changed', async (store, clock) => {
    const a = makeRecord(clock);
    await store.create(a);
    for (const bad of [{ ifConnection: 42 }, 'conn', { ifConnection: {} }] as unknown as WriteCondition[]) {
      await rejectsWith(() => store.set(detached(a), bad), ErrorCode.INVALID_VALUE, `set with ${JSON.stringify(bad)}`);
      await rejectsWith(() => store.delete(a.id, bad), ErrorCode.INVALID_VALUE, `delete with ${JSON.stringify(bad)}`);
      await rejectsWith(() => store.touch(a.id, a.expiresAt, a.lastActiveAt, bad), ErrorCode.INVALID_VALUE, `touch with ${JSON.stringify(bad)}`);
      await rejectsWith(() => store.update(a.id, { state: 'IDLE' }, bad), ErrorCode.INVALID_VALUE, `update with ${JSON.stringify(bad)}`);
    }
    assert.equal((await store.get(a.id))?.connectionId, a.connectionId, 'nothing changed');
    assert.equal((await store.get(a.id))?.state, a.state, 'nothing changed');
    assert.equal(await store.set(detached(a), {}), true, 'an empty condition is no condition');
  });
}

/** Registers the cross-instance conditional write tests (a store shared between processes). */
export function sharedConditionTests(tp: DefinePeerTest): void {
  tp("another instance's late detach of a session resumed here is refused; the binding here stands", async (store, peer, clock) => {
    const a = makeRecord(clock, { userId: 'cond-peer', connectionId: 'cond-peer-a' });
    await peer.create(a);
    // Resumed here on b while the peer still believes it holds a.
    const b: SessionRecord = { ...a, connectionId: 'cond-peer-b' };
    assert.equal(await store.set(b, { ifConnection: 'cond-peer-a' }), true);
    await rejectsWith(() => peer.set(detached(a), { ifConnection: 'cond-peer-a' }), ErrorCode.CONDITION_FAILED, "the peer's late detach");
    await rejectsWith(() => peer.delete(a.id, { ifConnection: 'cond-peer-a' }), ErrorCode.CONDITION_FAILED, "the peer's late delete");
    await rejectsWith(() => peer.touch(a.id, a.expiresAt - 1_000, a.lastActiveAt, { ifConnection: 'cond-peer-a' }), ErrorCode.CONDITION_FAILED, "the peer's late touch");
    await rejectsWith(() => peer.update(a.id, { state: 'IDLE' }, { ifConnection: 'cond-peer-a' }), ErrorCode.CONDITION_FAILED, "the peer's late update");
    await assertBoundTo(store, b, 'cond-peer-b', 'seen here');
    await assertBoundTo(peer, b, 'cond-peer-b', 'seen by the peer');
  });

  tp('concurrent conditional sets from two instances: exactly one applies', async (store, peer, clock) => {
    const a = makeRecord(clock, { userId: 'cond-race', connectionId: 'cond-race-a' });
    await store.create(a);
    const outcomes = await Promise.allSettled([
      store.set({ ...a, connectionId: 'cond-race-x' }, { ifConnection: 'cond-race-a' }),
      peer.set({ ...a, connectionId: 'cond-race-y' }, { ifConnection: 'cond-race-a' }),
    ]);
    const won = outcomes.filter((o) => o.status === 'fulfilled' && o.value === true).length;
    const refused = outcomes.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === ErrorCode.CONDITION_FAILED).length;
    assert.deepEqual([won, refused], [1, 1], 'one applies, the other is refused');
    const now = (await store.get(a.id))?.connectionId;
    assert.ok(now === 'cond-race-x' || now === 'cond-race-y');
    const loser = now === 'cond-race-x' ? 'cond-race-y' : 'cond-race-x';
    assert.equal(await store.getByConnection(loser), null, "the refused write's connection holds nothing");
  });
}
