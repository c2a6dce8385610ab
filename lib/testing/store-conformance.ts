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
 * ## What is checked (one file each under `testing/conformance/`)
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
 *   update      metadata merged, state replaced, counters set then added, nothing else
 *               moved; never revives; concurrent adds lose nothing; bad patches refused
 *   remotePort  round trip; a record without one reads null; a bad one refused
 *   presence    online while a live record of the user is bound; offline at expiry with
 *               no cleanup step; onlineUsers pages every user once; bad arguments refused
 *   conditions  set and delete with ifConnection apply only while the record is bound to
 *               that connection (null: to none), else NETLOOP_CONDITION_FAILED and nothing
 *               changed (indexes, presence); a gone record answers false; bad ones refused
 *   feed        (a store with publish) tombstones written and read back; bad changes refused
 *   shared      (with createPeer) updates and presence seen by the other instance;
 *               a published change reaches the other instance's 'change' listeners;
 *               the other instance's late conditional writes refused; of two concurrent
 *               conditional sets, exactly one applies
 * ```
 *
 * ## Stores shared between processes
 *
 * Give `createPeer(store, clock)`: a second store over the same data as
 * `store` (another process's view, with its own connection), judging time
 * by the same clock. The suite then checks what crosses between them.
 *
 * @module
 */

import { ManualClock } from '../core/clock.js';
import type { SessionStore } from '../store/contract.js';
import { conditionTests, sharedConditionTests } from './conformance/conditions.js';
import { limitTests } from './conformance/limits.js';
import { listingTests } from './conformance/listing.js';
import { modelTests } from './conformance/model.js';
import { recordTests } from './conformance/records.js';
import { presenceTests } from './conformance/presence.js';
import { feedTests, sharedTests } from './conformance/shared.js';
import { ttlTests } from './conformance/ttl.js';
import { updateTests } from './conformance/update.js';
import type { DefinePeerTest, DefineTest } from './conformance/kit.js';

export { CONFORMANCE_TTL_MS, fakeTokenHash, makeRecord } from './conformance/kit.js';

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
  /**
   * A second store over the same data as `store` (another process's view: its
   * own connection and subscription), for a store shared between processes.
   * When given, the cross-instance tests run too; the suite closes it.
   */
  createPeer?(store: SessionStore, clock: ManualClock): SessionStore | Promise<SessionStore>;
  /** Releases what a store holds beyond itself (files, keys), after each test; the store is closed already. */
  disposeStore?(store: SessionStore): void | Promise<void>;
  /** Random operation sequences the model test runs (default 25). */
  modelRuns?: number;
  /** The seed of the model test's sequences (default fixed, so a failure repeats); printed with a failure. */
  seed?: number;
  /** Records the paging test creates (default 25). */
  pagingRecords?: number;
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
  const t: DefineTest = (name, body) => {
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

  recordTests(t);
  ttlTests(t);
  listingTests(t, pagingRecords);
  limitTests(t);
  modelTests(t, modelRuns, seed);
  updateTests(t);
  presenceTests(t);
  conditionTests(t);
  feedTests(t);

  const createPeer = options.createPeer;
  if (createPeer === undefined) return;
  /** Registers one cross-instance test: the store as above, and its peer, closed before the store is disposed. */
  const tp: DefinePeerTest = (name, body) => {
    t(name, async (store, clock) => {
      const peer = await createPeer(store, clock);
      try {
        await body(store, peer, clock);
      } finally {
        await peer.close();
      }
    });
  };
  sharedTests(tp);
  sharedConditionTests(tp);
}
