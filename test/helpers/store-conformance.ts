/**
 * The behavioural test suite every {@link SessionStore} must pass (memory,
 * file, Redis). It is store-agnostic: it only calls the `SessionStore`
 * interface and moves a {@link ManualClock}.
 *
 * ## How to use it
 *
 * ```ts
 * // test/my-store.test.ts
 * import { ManualClock } from '../lib/core/clock.js';
 * import { storeConformance } from './helpers/store-conformance.js';
 *
 * storeConformance('my store', async () => {
 *   const clock = new ManualClock();
 *   const store = new MyStore({ clock, ... });
 *   return { store, clock, cleanup: async () => { await store.close(); ... } };
 * });
 * ```
 *
 * `storeConformance` registers one uvu suite named `conformance: <name>` and
 * runs it (it calls `.run()` itself). `makeStore` is called once per test and
 * must return an EMPTY store; `cleanup` is called after every test, also after
 * a test that closed the store itself (so `cleanup` must tolerate a closed
 * store), and must release everything (connections, files, timers).
 *
 * ## How the store's notion of time is controlled
 *
 * Every store takes a `clock: Clock` option and judges liveness with
 * `clock.wallNow()`, never with `Date.now()` directly: a record is live while
 * `record.expiresAt > clock.wallNow()`. The suite hands the store a
 * `ManualClock` and calls `clock.advance(ms)` to make records expire, so no
 * test sleeps. A store may also remove records physically by other means
 * (Redis `PX` computed as `expiresAt - clock.wallNow()`, a sweep), but its
 * answers must follow the injected clock: an expired record is never returned,
 * counted or listed, whether or not it was physically removed yet. The suite
 * only uses TTLs of minutes, so a real-time `PX` never fires during a test.
 *
 * ## What is checked
 *
 * Every method; isolation (a returned record is a copy); TTL semantics at the
 * exact boundary; index consistency (token hash, user, connection) after
 * `create`, `set`, `touch` and `delete`; list order (oldest first), filters,
 * paging and totals; `maxPerUser` (sequential, concurrent, and ignoring
 * expired records — a dead session must never lock a user out); `clear`;
 * `close` (idempotent, then `NETLOOP_STORE_CLOSED`); and a fast-check model
 * test of random operation sequences.
 *
 * @module
 */

import { suite } from './uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { createHash } from 'node:crypto';
import type { ManualClock } from '../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';
import type { SessionRecord, SessionState, SessionStore } from '../../lib/store/contract.js';

/** What `makeStore` returns for each test. */
export interface StoreFixture {
  /** An empty store whose `clock` option is {@link StoreFixture.clock}. */
  store: SessionStore;
  /** The clock the store judges expiry by; the suite advances it. */
  clock: ManualClock;
  /** Releases the store and everything it holds; must tolerate a store already closed. */
  cleanup(): Promise<void>;
}

/** Tuning for slow stores. */
export interface ConformanceOptions {
  /** Runs of the fast-check model test (default 25). */
  propertyRuns?: number;
  /** Records created by the paging test (default 25). */
  pagingRecords?: number;
}

/** The TTL every record of the suite gets unless a test says otherwise: one minute. */
export const CONFORMANCE_TTL_MS = 60_000;

let serial = 0;

/** A deterministic stand-in for a token hash (64 hex characters). */
export function fakeTokenHash(label: string): string {
  return createHash('sha256').update(`conformance:${label}`).digest('hex');
}

/**
 * Builds a valid record stamped from `clock`, with a unique id, token hash and
 * connection; `overrides` replace any field.
 */
export function makeRecord(clock: ManualClock, overrides: Partial<SessionRecord> = {}): SessionRecord {
  serial++;
  const now = clock.wallNow();
  const n = String(serial).padStart(8, '0');
  return {
    id: `0190a4b2-7c3e-7a41-9f2b-${n.padStart(12, '0')}`,
    tokenHash: fakeTokenHash(n),
    userId: 'alice',
    connectionId: `conn-${n}`,
    remoteAddress: '127.0.0.1',
    state: 'ACTIVE',
    metadata: {},
    stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
    createdAt: now,
    lastActiveAt: now,
    expiresAt: now + CONFORMANCE_TTL_MS,
    ttl: CONFORMANCE_TTL_MS,
    ...overrides,
  };
}

async function rejectsWith(fn: () => Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: expected a NetloopError, got ${String(err)}`);
    assert.is((err as { code: string }).code, code, what);
    return;
  }
  assert.unreachable(`${what}: expected a rejection with ${code}`);
}

/**
 * Registers and runs the conformance suite for one store implementation.
 *
 * @param name shown in the suite title, e.g. `'memory'`.
 * @param makeStore called before each test; returns an empty store, its clock and a cleanup.
 */
export function storeConformance(
  name: string,
  makeStore: () => Promise<StoreFixture>,
  options: ConformanceOptions = {},
): void {
  const propertyRuns = options.propertyRuns ?? 25;
  const pagingRecords = options.pagingRecords ?? 25;
  interface Ctx {
    fx: StoreFixture | undefined;
  }
  const s = suite<Ctx>(`conformance: ${name}`, { fx: undefined });

  s.before.each(async (ctx) => {
    ctx.fx = await makeStore();
  });
  s.after.each(async (ctx) => {
    const fx = ctx.fx;
    ctx.fx = undefined;
    if (fx !== undefined) await fx.cleanup();
  });

  const fxOf = (ctx: Ctx): StoreFixture => {
    if (ctx.fx === undefined) throw new Error('fixture missing');
    return ctx.fx;
  };

  s('kind is a non-empty string; a new store is empty', async (ctx) => {
    const { store } = fxOf(ctx);
    assert.type(store.kind, 'string');
    assert.ok(store.kind.length > 0);
    assert.is(await store.count(), 0);
    assert.equal(await store.list(), { sessions: [], total: 0 });
  });

  s('create then get returns an equal record; unknown ids are null', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock, { metadata: { room: 'lobby', lang: 'zh' }, remoteAddress: '::1' });
    assert.is(await store.create(rec), true);
    assert.equal(await store.get(rec.id), rec);
    assert.is(await store.get('0190a4b2-7c3e-7a41-9f2b-999999999999'), null);
  });

  s('records are copies: mutating the input or a result does not change the store', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock, { metadata: { a: '1' } });
    const snapshot = structuredClone(rec);
    await store.create(rec);
    rec.metadata['a'] = 'changed';
    rec.stats.bytesIn = 99;
    rec.state = 'IDLE';
    const got = await store.get(rec.id);
    assert.equal(got, snapshot);
    got!.metadata['b'] = 'x';
    got!.stats.messagesIn = 5;
    assert.equal(await store.get(rec.id), snapshot);
  });

  s('lookups by token hash, connection and user', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const a1 = makeRecord(clock, { userId: 'alice' });
    clock.advance(1);
    const b1 = makeRecord(clock, { userId: 'bob' });
    clock.advance(1);
    const a2 = makeRecord(clock, { userId: 'alice', connectionId: null });
    const anon = makeRecord(clock, { userId: null });
    for (const r of [a1, b1, a2, anon]) assert.is(await store.create(r), true);
    assert.equal(await store.getByTokenHash(b1.tokenHash), b1);
    assert.is(await store.getByTokenHash(fakeTokenHash('nobody')), null);
    assert.equal(await store.getByConnection(a1.connectionId!), a1);
    assert.is(await store.getByConnection('conn-unknown'), null);
    assert.equal(await store.getByUser('alice'), [a1, a2], 'oldest first');
    assert.equal(await store.getByUser('bob'), [b1]);
    assert.equal(await store.getByUser('carol'), []);
    assert.is(await store.count(), 4);
  });

  s('set replaces a live record and its indexes follow', async (ctx) => {
    const { store, clock } = fxOf(ctx);
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
    assert.is(await store.set(next), true);
    assert.equal(await store.get(rec.id), next);
    assert.is(await store.getByTokenHash(rec.tokenHash), null, 'old token hash unindexed');
    assert.equal(await store.getByTokenHash(next.tokenHash), next);
    assert.is(await store.getByConnection('c-old'), null, 'old connection unindexed');
    assert.equal(await store.getByConnection('c-new'), next);
    assert.equal(await store.getByUser('alice'), []);
    assert.equal(await store.getByUser('bob'), [next]);
    assert.is(await store.count({ userId: 'alice' }), 0);
    assert.is(await store.count({ state: 'IDLE' }), 1);
    assert.is(await store.count({ state: 'ACTIVE' }), 0);
  });

  s('set can detach and re-attach a connection', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock, { connectionId: 'c-1' });
    await store.create(rec);
    assert.is(await store.set({ ...rec, connectionId: null, state: 'IDLE' }), true);
    assert.is(await store.getByConnection('c-1'), null);
    assert.is((await store.get(rec.id))!.connectionId, null);
    assert.is(await store.set({ ...rec, connectionId: 'c-2', state: 'ACTIVE' }), true);
    assert.equal(await store.getByConnection('c-2'), { ...rec, connectionId: 'c-2' });
    assert.is(await store.getByConnection('c-1'), null);
  });

  s('set of a missing or expired record resolves false and stores nothing', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const ghost = makeRecord(clock);
    assert.is(await store.set(ghost), false);
    assert.is(await store.get(ghost.id), null);
    assert.is(await store.count(), 0);
    const rec = makeRecord(clock);
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.is(await store.set({ ...rec, expiresAt: clock.wallNow() + CONFORMANCE_TTL_MS }), false, 'expired is gone');
    assert.is(await store.get(rec.id), null);
  });

  s('touch moves expiry and last-active; the record outlives its old expiry', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock);
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS - 1);
    const expiresAt = clock.wallNow() + CONFORMANCE_TTL_MS;
    assert.is(await store.touch(rec.id, expiresAt, clock.wallNow()), true);
    clock.advance(10);
    const got = await store.get(rec.id);
    assert.ok(got !== null, 'still live after its first expiry');
    assert.is(got!.expiresAt, expiresAt);
    assert.is(got!.lastActiveAt, clock.wallNow() - 10);
    assert.equal(await store.getByConnection(rec.connectionId!), got);
    assert.equal(await store.getByUser(rec.userId!), [got!]);
    assert.is(await store.count(), 1);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.is(await store.get(rec.id), null, 'expires at the new deadline');
  });

  s('touch can move expiry earlier', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock);
    await store.create(rec);
    assert.is(await store.touch(rec.id, clock.wallNow() + 1_000, clock.wallNow()), true);
    clock.advance(1_000);
    assert.is(await store.get(rec.id), null);
    assert.is(await store.count(), 0);
    assert.equal(await store.list(), { sessions: [], total: 0 });
  });

  s('touch of a missing or expired record resolves false', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    assert.is(await store.touch('0190a4b2-7c3e-7a41-9f2b-000000000000', clock.wallNow() + 1000, clock.wallNow()), false);
    const rec = makeRecord(clock);
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.is(await store.touch(rec.id, clock.wallNow() + CONFORMANCE_TTL_MS, clock.wallNow()), false);
    assert.is(await store.get(rec.id), null, 'touch does not revive an expired record');
  });

  s('delete removes the record and every index entry', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock, { userId: 'alice', connectionId: 'c-del' });
    const other = makeRecord(clock, { userId: 'alice' });
    await store.create(rec);
    await store.create(other);
    assert.is(await store.delete(rec.id), true);
    assert.is(await store.delete(rec.id), false, 'second delete');
    assert.is(await store.get(rec.id), null);
    assert.is(await store.getByTokenHash(rec.tokenHash), null);
    assert.is(await store.getByConnection('c-del'), null);
    assert.equal(await store.getByUser('alice'), [other]);
    assert.is(await store.count(), 1);
    assert.equal(await store.list(), { sessions: [other], total: 1 });
    assert.is(await store.delete('0190a4b2-7c3e-7a41-9f2b-000000000000'), false);
  });

  s('an expired record is never returned, counted or listed (exact boundary)', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock, { userId: 'alice', connectionId: 'c-exp', state: 'IDLE' });
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS - 1);
    assert.ok((await store.get(rec.id)) !== null, 'live 1 ms before expiry');
    assert.is(await store.count({ state: 'IDLE' }), 1);
    clock.advance(1);
    assert.is(await store.get(rec.id), null);
    assert.is(await store.getByTokenHash(rec.tokenHash), null);
    assert.is(await store.getByConnection('c-exp'), null);
    assert.equal(await store.getByUser('alice'), []);
    assert.is(await store.count(), 0);
    assert.is(await store.count({ userId: 'alice' }), 0);
    assert.is(await store.count({ state: 'IDLE' }), 0);
    assert.equal(await store.list(), { sessions: [], total: 0 });
    assert.equal(await store.list({ userId: 'alice' }), { sessions: [], total: 0 });
    assert.is(await store.delete(rec.id), false, 'an expired record does not count as deleted');
  });

  s('an expired record frees its connection and token hash for a new record', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const rec = makeRecord(clock, { connectionId: 'c-reuse' });
    await store.create(rec);
    clock.advance(CONFORMANCE_TTL_MS);
    const again = makeRecord(clock, { connectionId: 'c-reuse', tokenHash: rec.tokenHash });
    assert.is(await store.create(again), true);
    assert.equal(await store.getByConnection('c-reuse'), again);
    assert.equal(await store.getByTokenHash(rec.tokenHash), again);
    assert.is(await store.count(), 1);
  });

  s('count with filters', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const states: SessionState[] = ['CONNECTING', 'ACTIVE', 'ACTIVE', 'IDLE'];
    for (const [i, state] of states.entries()) {
      await store.create(makeRecord(clock, { state, userId: i % 2 === 0 ? 'alice' : 'bob' }));
    }
    await store.create(makeRecord(clock, { userId: null, state: 'ACTIVE' }));
    assert.is(await store.count(), 5);
    assert.is(await store.count({}), 5);
    assert.is(await store.count({ userId: 'alice' }), 2);
    assert.is(await store.count({ userId: 'bob' }), 2);
    assert.is(await store.count({ state: 'ACTIVE' }), 3);
    assert.is(await store.count({ state: 'CLOSED' }), 0);
    assert.is(await store.count({ userId: 'alice', state: 'ACTIVE' }), 1);
    assert.is(await store.count({ userId: 'bob', state: 'ACTIVE' }), 1);
    assert.is(await store.count({ userId: 'nobody' }), 0);
  });

  s('list: oldest first, filters, paging reports the total', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const all: SessionRecord[] = [];
    for (let i = 0; i < pagingRecords; i++) {
      const rec = makeRecord(clock, { state: i % 3 === 0 ? 'IDLE' : 'ACTIVE', userId: i % 5 === 0 ? 'bob' : 'alice' });
      all.push(rec);
      assert.is(await store.create(rec), true);
      clock.advance(1);
    }
    const whole = await store.list({}, { offset: 0, limit: pagingRecords });
    assert.is(whole.total, pagingRecords);
    assert.equal(whole.sessions.map((r) => r.id), all.map((r) => r.id), 'oldest first');

    const seen: string[] = [];
    for (let offset = 0; offset < pagingRecords; offset += 10) {
      const page = await store.list(undefined, { offset, limit: 10 });
      assert.is(page.total, pagingRecords, `total at offset ${offset}`);
      assert.is(page.sessions.length, Math.min(10, pagingRecords - offset));
      seen.push(...page.sessions.map((r) => r.id));
    }
    assert.equal(seen, all.map((r) => r.id), 'pages tile the list without gap or overlap');

    const beyond = await store.list({}, { offset: pagingRecords + 5, limit: 10 });
    assert.equal(beyond, { sessions: [], total: pagingRecords });
    const none = await store.list({}, { offset: 0, limit: 0 });
    assert.equal(none, { sessions: [], total: pagingRecords });

    const idle = all.filter((r) => r.state === 'IDLE');
    const idlePage = await store.list({ state: 'IDLE' }, { offset: 1, limit: 3 });
    assert.is(idlePage.total, idle.length);
    assert.equal(idlePage.sessions.map((r) => r.id), idle.slice(1, 4).map((r) => r.id));

    const bob = all.filter((r) => r.userId === 'bob');
    const bobPage = await store.list({ userId: 'bob' }, { limit: 100 });
    assert.equal(bobPage, { sessions: bob, total: bob.length });

    const bobIdle = bob.filter((r) => r.state === 'IDLE');
    const bobIdlePage = await store.list({ userId: 'bob', state: 'IDLE' });
    assert.equal(bobIdlePage.sessions.map((r) => r.id), bobIdle.map((r) => r.id));
    assert.is(bobIdlePage.total, bobIdle.length);

    // Expire the oldest third: totals and pages shrink accordingly.
    const cut = Math.floor(pagingRecords / 3);
    clock.advance(CONFORMANCE_TTL_MS - pagingRecords + cut - 1);
    const after = await store.list({}, { limit: pagingRecords });
    assert.is(after.total, pagingRecords - cut);
    assert.equal(after.sessions.map((r) => r.id), all.slice(cut).map((r) => r.id));
  });

  s('list rejects a negative offset or limit with NETLOOP_INVALID_OPTION', async (ctx) => {
    const { store } = fxOf(ctx);
    await rejectsWith(() => store.list({}, { offset: -1 }), ErrorCode.INVALID_OPTION, 'negative offset');
    await rejectsWith(() => store.list({}, { limit: -1 }), ErrorCode.INVALID_OPTION, 'negative limit');
  });

  s('maxPerUser refuses beyond the limit, per user, and frees on delete', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const a = [makeRecord(clock, { userId: 'alice' }), makeRecord(clock, { userId: 'alice' }), makeRecord(clock, { userId: 'alice' })];
    assert.is(await store.create(a[0]!, { maxPerUser: 2 }), true);
    assert.is(await store.create(a[1]!, { maxPerUser: 2 }), true);
    assert.is(await store.create(a[2]!, { maxPerUser: 2 }), false);
    assert.is(await store.get(a[2]!.id), null, 'a refused record is not stored');
    assert.is(await store.getByTokenHash(a[2]!.tokenHash), null, 'nor indexed');
    assert.is(await store.getByConnection(a[2]!.connectionId!), null);
    assert.is(await store.create(makeRecord(clock, { userId: 'bob' }), { maxPerUser: 2 }), true, 'other users unaffected');
    assert.is(await store.create(makeRecord(clock, { userId: null }), { maxPerUser: 1 }), true, 'anonymous: no per-user limit');
    assert.is(await store.create(makeRecord(clock, { userId: null }), { maxPerUser: 1 }), true);
    await store.delete(a[0]!.id);
    assert.is(await store.create(a[2]!, { maxPerUser: 2 }), true, 'room again after a delete');
    assert.is(await store.count({ userId: 'alice' }), 2);
  });

  s('maxPerUser ignores expired sessions (a dead session never locks a user out)', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    assert.is(await store.create(makeRecord(clock, { userId: 'alice' }), { maxPerUser: 1 }), true);
    assert.is(await store.create(makeRecord(clock, { userId: 'alice' }), { maxPerUser: 1 }), false);
    clock.advance(CONFORMANCE_TTL_MS);
    assert.is(await store.create(makeRecord(clock, { userId: 'alice' }), { maxPerUser: 1 }), true);
    assert.is(await store.count({ userId: 'alice' }), 1);
  });

  s('maxPerUser is atomic under concurrent creates', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const recs = Array.from({ length: 12 }, () => makeRecord(clock, { userId: 'alice' }));
    const results = await Promise.all(recs.map((r) => store.create(r, { maxPerUser: 3 })));
    assert.is(results.filter(Boolean).length, 3, 'exactly the limit succeeded');
    assert.is(await store.count({ userId: 'alice' }), 3);
    assert.is((await store.getByUser('alice')).length, 3);
    assert.is((await store.list({ userId: 'alice' })).total, 3);
    for (const [i, r] of recs.entries()) {
      assert.is((await store.get(r.id)) !== null, results[i], `record ${i} stored iff accepted`);
    }
  });

  s('clear removes every record and index entry', async (ctx) => {
    const { store, clock } = fxOf(ctx);
    const recs = [makeRecord(clock), makeRecord(clock, { userId: 'bob' }), makeRecord(clock, { userId: null })];
    for (const r of recs) await store.create(r);
    await store.clear();
    assert.is(await store.count(), 0);
    assert.equal(await store.list(), { sessions: [], total: 0 });
    for (const r of recs) {
      assert.is(await store.get(r.id), null);
      assert.is(await store.getByTokenHash(r.tokenHash), null);
      assert.is(await store.getByConnection(r.connectionId!), null);
    }
    assert.equal(await store.getByUser('alice'), []);
    assert.is(await store.create(recs[0]!, { maxPerUser: 1 }), true, 'usable after clear');
  });

  s('close is idempotent and later calls reject with NETLOOP_STORE_CLOSED', async (ctx) => {
    const { store, clock } = fxOf(ctx);
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
  });

  s('model test: random operation sequences agree with a reference model', async (ctx) => {
    const fx = fxOf(ctx);
    type Op =
      | { kind: 'create'; user: number; conn: boolean; state: SessionState; max: number }
      | { kind: 'delete'; pick: number }
      | { kind: 'touch'; pick: number; ttl: number }
      | { kind: 'rebind'; pick: number; user: number; conn: boolean; state: SessionState }
      | { kind: 'advance'; ms: number };
    const state = fc.constantFrom<SessionState>('CONNECTING', 'ACTIVE', 'IDLE');
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('create' as const), user: fc.nat(3), conn: fc.boolean(), state, max: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('touch' as const), pick: fc.nat(), ttl: fc.integer({ min: 1, max: 3 * CONFORMANCE_TTL_MS }) }),
      fc.record({ kind: fc.constant('rebind' as const), pick: fc.nat(), user: fc.nat(3), conn: fc.boolean(), state }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: CONFORMANCE_TTL_MS }) }),
    );
    let first = true;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        // Each run starts from an empty store: the first reuses the test's fixture, later ones clear it.
        if (!first) await fx.store.clear();
        first = false;
        const { store, clock } = fx;
        const model = new Map<string, SessionRecord>();
        const ids: string[] = [];
        const live = (r: SessionRecord): boolean => r.expiresAt > clock.wallNow();
        const userOf = (u: number): string | null => (u === 0 ? null : `user-${u}`);
        for (const o of ops) {
          if (o.kind === 'create') {
            const rec = makeRecord(clock, {
              userId: userOf(o.user),
              connectionId: o.conn ? `conn-m-${serial + 1}` : null,
              state: o.state,
            });
            const opts = o.max === 0 ? undefined : { maxPerUser: o.max };
            const liveOfUser = [...model.values()].filter((r) => live(r) && r.userId !== null && r.userId === rec.userId).length;
            const expected = opts === undefined || rec.userId === null || liveOfUser < o.max;
            assert.is(await store.create(rec, opts), expected, 'create result');
            if (expected) {
              model.set(rec.id, rec);
              ids.push(rec.id);
            }
          } else if (ids.length > 0 && o.kind !== 'advance') {
            const id = ids[o.pick % ids.length]!;
            const m = model.get(id);
            const isLive = m !== undefined && live(m);
            if (o.kind === 'delete') {
              assert.is(await store.delete(id), isLive, 'delete result');
              model.delete(id);
            } else if (o.kind === 'touch') {
              const exp = clock.wallNow() + o.ttl;
              assert.is(await store.touch(id, exp, clock.wallNow()), isLive, 'touch result');
              if (isLive) model.set(id, { ...m, expiresAt: exp, lastActiveAt: clock.wallNow() });
            } else {
              const next: SessionRecord = {
                ...(m ?? makeRecord(clock, { id })),
                userId: userOf(o.user),
                connectionId: o.conn ? `conn-r-${id}` : null,
                state: o.state,
              };
              assert.is(await store.set(next), isLive, 'set result');
              if (isLive) model.set(id, next);
            }
          } else if (o.kind === 'advance') {
            clock.advance(o.ms);
          }
          // After every step, the store agrees with the live part of the model.
          const liveRecs = [...model.values()].filter(live);
          assert.is(await store.count(), liveRecs.length, 'count');
          const listed = await store.list({}, { limit: 1000 });
          assert.is(listed.total, liveRecs.length, 'list total');
          assert.equal(
            listed.sessions.map((r) => r.id).sort(),
            liveRecs.map((r) => r.id).sort(),
            'listed ids',
          );
          for (const u of [1, 2, 3]) {
            const mine = liveRecs.filter((r) => r.userId === userOf(u)).map((r) => r.id).sort();
            assert.equal((await store.getByUser(userOf(u)!)).map((r) => r.id).sort(), mine, 'getByUser');
            assert.is(await store.count({ userId: userOf(u)! }), mine.length, 'count by user');
          }
          for (const r of liveRecs) {
            assert.equal(await store.get(r.id), r, 'get');
            assert.equal(await store.getByTokenHash(r.tokenHash), r, 'by token hash');
            if (r.connectionId !== null) assert.equal(await store.getByConnection(r.connectionId), r, 'by connection');
          }
          for (const r of model.values()) {
            if (!live(r)) assert.is(await store.get(r.id), null, 'expired never returned');
          }
        }
      }),
      { numRuns: propertyRuns },
    );
  });

  s.run();
}
