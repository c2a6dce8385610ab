/**
 * The behavioural test suite every {@link SessionStore} must pass: netloop's
 * memory, file and Redis stores run it, and so can a store of your own. It is
 * runner-agnostic: it registers its tests through the `test(name, fn)`
 * function you give it (uvu's `test`, `node:test`'s `test`, vitest's or
 * jest's `it`), and asserts with `node:assert`, so a failure is a thrown
 * `AssertionError` every runner reports.
 *
 * ```ts
 * import { test } from 'node:test';
 * import { storeConformance } from 'netloop/testing';
 * import { MyStore } from './my-store.js';
 *
 * storeConformance({
 *   name: 'my store',
 *   test,
 *   createStore: (clock) => new MyStore({ clock }),   // empty, judging time by clock.wallNow()
 *   disposeStore: (store) => (store as MyStore).dropEverything(), // optional: files, keys, ...
 * });
 * ```
 *
 * ## Time
 *
 * The suite controls the store's notion of time through the clock it hands
 * to `createStore` (a {@link ManualClock}): the store must judge liveness by
 * `clock.wallNow()` — a record is live while `expiresAt > clock.wallNow()` —
 * and the suite moves the clock to make records expire, so no test sleeps. A
 * store may also remove records physically by other means (a TTL in a
 * server, a sweep), but its answers must follow the clock. The suite uses
 * TTLs of a minute, so a server-side TTL running in real time never fires
 * during a test (give such a store some grace, as the Redis store's
 * `expiryGraceMs`, for the model test's shorter ones).
 *
 * ## Each test
 *
 * `createStore` is called once per test and must return an EMPTY store;
 * the suite closes it when the test ends (pass or fail; a store's `close` is
 * idempotent), then calls `disposeStore` to release the rest.
 *
 * ## What is checked
 *
 * ```
 *   records     create/get round trip, copies in and out, malformed input refused
 *   TTL         liveness at the exact boundary; touch later and earlier; set or touch
 *               into the past; an expired record is never returned, counted or listed,
 *               never counts for maxPerUser, never revived, and frees its token and connection
 *   indexes     token hash, connection (one to one), user (one to many) after create,
 *               set, touch, delete, expiry and clear; duplicates refused, nothing changed
 *   listing     oldest first (createdAt, then id) whatever the creation order; filters;
 *               pages tile the list; totals; bad pages and filters refused
 *   maxPerUser  per user, anonymous exempt, atomic under concurrent creates, >= 1
 *   lifecycle   ping; close idempotent, then every call rejects NETLOOP_STORE_CLOSED
 *   model       random operation sequences (seeded, repeatable) against a reference model
 * ```
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { ManualClock } from '../core/clock.js';
import { ErrorCode } from '../core/errors.js';
import type { SessionRecord, SessionState, SessionStore } from '../store/contract.js';

/** How the suite registers one test with your runner: `(name, fn) => ...`, as uvu's `test`, `node:test`'s `test` or vitest's `it`. */
export type ConformanceTest = (name: string, fn: () => Promise<void>) => unknown;

/** Options of {@link storeConformance}. */
export interface StoreConformanceOptions {
  /** Registers one test (see {@link ConformanceTest}). */
  test: ConformanceTest;
  /** Shown before each test's name, e.g. `'redis'`. Default `'store'`. */
  name?: string;
  /** Returns a new, EMPTY store that judges liveness by `clock.wallNow()`. Called once per test. */
  createStore(clock: ManualClock): SessionStore | Promise<SessionStore>;
  /** Releases what a store holds beyond itself (files, keys), after each test; the store is closed already. */
  disposeStore?(store: SessionStore): void | Promise<void>;
  /** Random operation sequences the model test runs (default 25). */
  modelRuns?: number;
  /** The seed of the model test's sequences (default fixed, so a failure repeats); printed with a failure. */
  seed?: number;
  /** Records the paging test creates (default 25). */
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
 * A valid record stamped from `clock` (created and last active now, expiring
 * in {@link CONFORMANCE_TTL_MS}), with a unique id, token hash and
 * connection, for user `alice`; `overrides` replace any field.
 */
export function makeRecord(clock: Pick<Clock, 'wallNow'>, overrides: Partial<SessionRecord> = {}): SessionRecord {
  serial++;
  const now = clock.wallNow();
  const n = String(serial).padStart(12, '0');
  return {
    id: `0190a4b2-7c3e-7a41-9f2b-${n}`,
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

/** An id no test creates. */
const UNKNOWN_ID = '0190a4b2-7c3e-7a41-9f2b-ffffffffffff';

/** Asserts that `fn` rejects (or throws) with a coded error of `code`. */
async function rejectsWith(fn: () => Promise<unknown>, code: string, what: string): Promise<void> {
  let outcome: unknown;
  try {
    await fn();
  } catch (err) {
    outcome = err;
  }
  assert.ok(outcome !== undefined, `${what}: expected a rejection with ${code}, but it resolved`);
  const got = (outcome as { code?: unknown } | null)?.code;
  assert.equal(got, code, `${what}: expected ${code}, got ${String(got)} (${String((outcome as Error)?.message ?? outcome)})`);
}

const ids = (records: readonly SessionRecord[]): string[] => records.map((r) => r.id);

/** Oldest first, as every store orders: createdAt, then id. */
const byAge = (a: SessionRecord, b: SessionRecord): number => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** A small seeded generator (mulberry32): the model test's sequences repeat for a seed. */
class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform integer in [0, n). */
  int(n: number): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/**
 * Registers the conformance tests of one store implementation through
 * `options.test` (see the module documentation). Registers; runs nothing
 * itself.
 */
export function storeConformance(options: StoreConformanceOptions): void {
  const label = options.name ?? 'store';
  const modelRuns = options.modelRuns ?? 25;
  const seed = options.seed ?? 0x5eed;
  const pagingRecords = options.pagingRecords ?? 25;

  /** Registers one test: a fresh store and clock, closed and disposed whatever happens. */
  const t = (name: string, body: (store: SessionStore, clock: ManualClock) => Promise<void>): void => {
    options.test(`${label}: ${name}`, async () => {
      const clock = new ManualClock();
      const store = await options.createStore(clock);
      // The first failure is the one reported: the test's own, else the close's, else the disposal's.
      let failed = false;
      let failure: unknown;
      const attempt = async (step: () => unknown): Promise<void> => {
        try {
          await step();
        } catch (err) {
          if (!failed) [failed, failure] = [true, err];
        }
      };
      await attempt(() => body(store, clock));
      await attempt(() => store.close());
      await attempt(() => options.disposeStore?.(store));
      if (failed) throw failure;
    });
  };

  // ── Records ───────────────────────────────────────────────────────────────

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

  // ── TTL ───────────────────────────────────────────────────────────────────

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

  // ── Listing ───────────────────────────────────────────────────────────────

  t('count with filters', async (store, clock) => {
    const states: SessionState[] = ['CONNECTING', 'ACTIVE', 'ACTIVE', 'IDLE'];
    for (const [i, state] of states.entries()) {
      await store.create(makeRecord(clock, { state, userId: i % 2 === 0 ? 'alice' : 'bob' }));
    }
    await store.create(makeRecord(clock, { userId: null, state: 'ACTIVE' }));
    assert.equal(await store.count(), 5);
    assert.equal(await store.count({}), 5);
    assert.equal(await store.count({ userId: 'alice' }), 2);
    assert.equal(await store.count({ userId: 'bob' }), 2);
    assert.equal(await store.count({ state: 'ACTIVE' }), 3);
    assert.equal(await store.count({ state: 'CLOSED' }), 0);
    assert.equal(await store.count({ userId: 'alice', state: 'ACTIVE' }), 1);
    assert.equal(await store.count({ userId: 'bob', state: 'ACTIVE' }), 1);
    assert.equal(await store.count({ userId: 'nobody' }), 0);
  });

  t('list: oldest first, filters, paging reports the total', async (store, clock) => {
    const all: SessionRecord[] = [];
    for (let i = 0; i < pagingRecords; i++) {
      const rec = makeRecord(clock, { state: i % 3 === 0 ? 'IDLE' : 'ACTIVE', userId: i % 5 === 0 ? 'bob' : 'alice' });
      all.push(rec);
      assert.equal(await store.create(rec), true);
      clock.advance(1);
    }
    const whole = await store.list({}, { offset: 0, limit: pagingRecords });
    assert.equal(whole.total, pagingRecords);
    assert.deepEqual(ids(whole.sessions), ids(all), 'oldest first');

    const seen: string[] = [];
    for (let offset = 0; offset < pagingRecords; offset += 10) {
      const page = await store.list(undefined, { offset, limit: 10 });
      assert.equal(page.total, pagingRecords, `total at offset ${offset}`);
      assert.equal(page.sessions.length, Math.min(10, pagingRecords - offset));
      seen.push(...ids(page.sessions));
    }
    assert.deepEqual(seen, ids(all), 'pages tile the list without gap or overlap');

    assert.deepEqual(await store.list({}, { offset: pagingRecords + 5, limit: 10 }), { sessions: [], total: pagingRecords });
    assert.deepEqual(await store.list({}, { offset: 0, limit: 0 }), { sessions: [], total: pagingRecords });

    const idle = all.filter((r) => r.state === 'IDLE');
    const idlePage = await store.list({ state: 'IDLE' }, { offset: 1, limit: 3 });
    assert.equal(idlePage.total, idle.length);
    assert.deepEqual(ids(idlePage.sessions), ids(idle.slice(1, 4)));

    const bob = all.filter((r) => r.userId === 'bob');
    assert.deepEqual(await store.list({ userId: 'bob' }, { limit: 100 }), { sessions: bob, total: bob.length });
    const bobPage = await store.list({ userId: 'bob' }, { offset: 1, limit: 2 });
    assert.deepEqual(bobPage, { sessions: bob.slice(1, 3), total: bob.length }, 'a user page');

    const bobIdle = bob.filter((r) => r.state === 'IDLE');
    const bobIdlePage = await store.list({ userId: 'bob', state: 'IDLE' });
    assert.deepEqual(ids(bobIdlePage.sessions), ids(bobIdle));
    assert.equal(bobIdlePage.total, bobIdle.length);

    // Expire the oldest third: totals and pages shrink accordingly.
    const cut = Math.floor(pagingRecords / 3);
    clock.advance(CONFORMANCE_TTL_MS - pagingRecords + cut - 1);
    const after = await store.list({}, { limit: pagingRecords });
    assert.equal(after.total, pagingRecords - cut);
    assert.deepEqual(ids(after.sessions), ids(all.slice(cut)));
  });

  t('list and getByUser order by createdAt, then id, whatever order the records were created in', async (store, clock) => {
    const t0 = clock.wallNow();
    // Created newest first; two share a millisecond (their ids decide).
    const late = makeRecord(clock, { createdAt: t0 + 30, userId: 'alice' });
    const tieHigh = makeRecord(clock, { createdAt: t0 + 20, userId: 'alice', state: 'IDLE' });
    // An id below every id makeRecord gives (its serial starts at 1).
    const tieLow = makeRecord(clock, { createdAt: t0 + 20, userId: 'alice', state: 'IDLE', id: '0190a4b2-7c3e-7a41-9f2b-000000000000' });
    const early = makeRecord(clock, { createdAt: t0 - 10, userId: 'bob' });
    for (const r of [late, tieHigh, tieLow, early]) assert.equal(await store.create(r), true);
    const expected = [early, tieLow, tieHigh, late];
    assert.deepEqual(ids((await store.list()).sessions), ids(expected), 'list');
    assert.deepEqual(ids((await store.list({}, { offset: 1, limit: 2 })).sessions), ids(expected.slice(1, 3)), 'a page');
    assert.deepEqual(ids((await store.list({ state: 'IDLE' })).sessions), ids([tieLow, tieHigh]), 'by state');
    assert.deepEqual(ids(await store.getByUser('alice')), ids([tieLow, tieHigh, late]), 'getByUser');
    assert.deepEqual(ids((await store.list({ userId: 'alice' })).sessions), ids([tieLow, tieHigh, late]), 'list by user');
  });

  t('bad pages and filters are refused with NETLOOP_INVALID_OPTION', async (store) => {
    await rejectsWith(() => store.list({}, { offset: -1 }), ErrorCode.INVALID_OPTION, 'negative offset');
    await rejectsWith(() => store.list({}, { limit: -1 }), ErrorCode.INVALID_OPTION, 'negative limit');
    await rejectsWith(() => store.list({}, { limit: 1.5 }), ErrorCode.INVALID_OPTION, 'fractional limit');
    await rejectsWith(() => store.list({}, { offset: Number.NaN }), ErrorCode.INVALID_OPTION, 'NaN offset');
    await rejectsWith(() => store.list({ state: 'ASLEEP' as SessionState }), ErrorCode.INVALID_OPTION, 'list: unknown state');
    await rejectsWith(() => store.count({ state: 'ASLEEP' as SessionState }), ErrorCode.INVALID_OPTION, 'count: unknown state');
    await rejectsWith(() => store.count({ userId: 7 as unknown as string }), ErrorCode.INVALID_OPTION, 'count: numeric user');
  });

  // ── maxPerUser ────────────────────────────────────────────────────────────

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

  // ── Model ─────────────────────────────────────────────────────────────────

  t(`model test: random operation sequences agree with a reference model (seed ${seed})`, async (store, clock) => {
    const rng = new Prng(seed);
    const states: SessionState[] = ['CONNECTING', 'ACTIVE', 'IDLE'];
    const userOf = (u: number): string | null => (u === 0 ? null : `user-${u}`);
    for (let run = 0; run < modelRuns; run++) {
      // Each run starts from an empty store.
      if (run > 0) await store.clear();
      const model = new Map<string, SessionRecord>();
      const created: string[] = [];
      const log: string[] = [];
      const live = (r: SessionRecord): boolean => r.expiresAt > clock.wallNow();
      const where = (): string => `run ${run} of seed ${seed}, after: ${log.join('; ')}`;
      const length = 1 + rng.int(40);
      for (let step = 0; step < length; step++) {
        const kind = rng.pick(['create', 'create', 'delete', 'touch', 'rebind', 'advance'] as const);
        if (kind === 'create') {
          const user = rng.int(4);
          const max = rng.int(4);
          const rec = makeRecord(clock, { userId: userOf(user), connectionId: rng.int(2) === 0 ? null : `conn-m-${serial + 1}`, state: rng.pick(states) });
          const liveOfUser = [...model.values()].filter((r) => live(r) && r.userId !== null && r.userId === rec.userId).length;
          const expected = max === 0 || rec.userId === null || liveOfUser < max;
          log.push(`create ${rec.id.slice(-4)} user ${user} max ${max}`);
          assert.equal(await store.create(rec, max === 0 ? undefined : { maxPerUser: max }), expected, `create result, ${where()}`);
          if (expected) {
            model.set(rec.id, rec);
            created.push(rec.id);
          }
        } else if (kind === 'advance') {
          const ms = 1 + rng.int(CONFORMANCE_TTL_MS);
          log.push(`advance ${ms}`);
          clock.advance(ms);
        } else if (created.length > 0) {
          const id = created[rng.int(created.length)]!;
          const m = model.get(id);
          const isLive = m !== undefined && live(m);
          if (kind === 'delete') {
            log.push(`delete ${id.slice(-4)}`);
            assert.equal(await store.delete(id), isLive, `delete result, ${where()}`);
            model.delete(id);
          } else if (kind === 'touch') {
            const exp = clock.wallNow() + 1 + rng.int(3 * CONFORMANCE_TTL_MS);
            log.push(`touch ${id.slice(-4)} +${exp - clock.wallNow()}`);
            assert.equal(await store.touch(id, exp, clock.wallNow()), isLive, `touch result, ${where()}`);
            if (isLive) model.set(id, { ...m, expiresAt: exp, lastActiveAt: clock.wallNow() });
          } else {
            const next: SessionRecord = {
              ...(m ?? makeRecord(clock, { id })),
              userId: userOf(rng.int(4)),
              connectionId: rng.int(2) === 0 ? null : `conn-r-${id}`,
              state: rng.pick(states),
            };
            log.push(`set ${id.slice(-4)} user ${String(next.userId)}`);
            assert.equal(await store.set(next), isLive, `set result, ${where()}`);
            if (isLive) model.set(id, next);
          }
        }
        // After every step, the store agrees with the live part of the model.
        const liveRecs = [...model.values()].filter(live).sort(byAge);
        assert.equal(await store.count(), liveRecs.length, `count, ${where()}`);
        const listed = await store.list({}, { limit: 1000 });
        assert.equal(listed.total, liveRecs.length, `list total, ${where()}`);
        assert.deepEqual(listed.sessions, liveRecs, `listed records, oldest first, ${where()}`);
        for (const u of [1, 2, 3]) {
          const mine = liveRecs.filter((r) => r.userId === userOf(u));
          assert.deepEqual(await store.getByUser(userOf(u)!), mine, `getByUser, ${where()}`);
          assert.equal(await store.count({ userId: userOf(u)! }), mine.length, `count by user, ${where()}`);
        }
        for (const r of liveRecs) {
          assert.deepEqual(await store.get(r.id), r, `get, ${where()}`);
          assert.deepEqual(await store.getByTokenHash(r.tokenHash), r, `by token hash, ${where()}`);
          if (r.connectionId !== null) assert.deepEqual(await store.getByConnection(r.connectionId), r, `by connection, ${where()}`);
        }
        for (const r of model.values()) {
          if (!live(r)) assert.equal(await store.get(r.id), null, `expired never returned, ${where()}`);
        }
      }
    }
  });
}
