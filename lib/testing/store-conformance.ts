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
 * ```
 *
 * @module
 */

import { ManualClock } from '../core/clock.js';
import type { SessionStore } from '../store/contract.js';
import { limitTests } from './conformance/limits.js';
import { listingTests } from './conformance/listing.js';
import { modelTests } from './conformance/model.js';
import { recordTests } from './conformance/records.js';
import { ttlTests } from './conformance/ttl.js';
import type { DefineTest } from './conformance/kit.js';

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
}
