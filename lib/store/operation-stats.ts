/**
 * Per-operation timings of a store: for each operation (`create`, `get`,
 * `touch`, ...) a histogram of how long its promise took to settle, and its
 * failures by stable code. Kept by the file, Redis and etcd stores, read at
 * scrape time by netloop/ops (`netloop_store_operation_duration_seconds`,
 * `netloop_store_operation_errors_total`); the memory store keeps none (its
 * operations are a few Map reads, which a clock read would double).
 *
 * ```
 *   store.get(id) ──▶ timed wrapper ──▶ the store's own get ──▶ promise
 *                      t0 = now()                               │ settles
 *                      histogram('get').observe(now() - t0) ◀───┘ (+ errors['NETLOOP_…']++ on a rejection)
 * ```
 *
 * The wrappers are installed on the instance by {@link OperationStats.wrap}
 * in the store's constructor, so the store's methods stay plain: one wrapper
 * call, two clock reads and one `then` per operation, none for the memory
 * store.
 *
 * @module
 */

import { DurationHistogram } from '../core/histogram.js';
import type { DurationSample } from '../core/histogram.js';

/** One operation's reading: its durations and its failures by code. */
export interface StoreOperationSample {
  /** The method: `create`, `get`, `set`, `touch`, `update`, `delete`, `list`, `count`, ... */
  operation: string;
  /** How long its promises took to settle, failures included, in seconds. */
  duration: DurationSample;
  /** Failures by stable code (`NETLOOP_STORE_UNAVAILABLE`, ...; `UNCODED` for an error without one). */
  errors: Readonly<Record<string, number>>;
}

/** The operations a shared or durable store times (what exists on the instance is wrapped). */
export const TIMED_OPERATIONS: readonly string[] = Object.freeze([
  'create', 'get', 'set', 'touch', 'update', 'delete',
  'getByTokenHash', 'getByConnection', 'getByUser', 'list', 'count',
  'isOnline', 'onlineCount', 'onlineUsers', 'publish', 'tombstone', 'clear', 'ping',
]);

interface Slot {
  readonly histogram: DurationHistogram;
  readonly errors: Record<string, number>;
}

/** @internal The timings of one store instance (see the module documentation). */
export class OperationStats {
  readonly #slots = new Map<string, Slot>();

  /**
   * Replaces each method of `target` named in `names` by a timed wrapper
   * that calls the original with the same `this` and arguments. A method
   * that throws synchronously is recorded as a failure too, and rethrows.
   */
  wrap(target: object, names: readonly string[] = TIMED_OPERATIONS): void {
    const t = target as Record<string, unknown>;
    for (const name of names) {
      const fn = t[name];
      if (typeof fn !== 'function') continue;
      const slot: Slot = { histogram: new DurationHistogram(), errors: Object.create(null) as Record<string, number> };
      this.#slots.set(name, slot);
      const fail = (started: number, err: unknown): never => {
        slot.histogram.observe((performance.now() - started) / 1000);
        const code = (err as { code?: unknown } | null)?.code;
        const key = typeof code === 'string' && code !== '' ? code : 'UNCODED';
        slot.errors[key] = (slot.errors[key] ?? 0) + 1;
        throw err;
      };
      t[name] = function timed(this: unknown, ...args: unknown[]): unknown {
        const started = performance.now();
        let result: unknown;
        try {
          result = (fn as (...a: unknown[]) => unknown).apply(target, args);
        } catch (err) {
          return fail(started, err);
        }
        if (typeof (result as { then?: unknown } | null)?.then !== 'function') {
          // Not a promise (no store method answers so today): timed as it returned.
          slot.histogram.observe((performance.now() - started) / 1000);
          return result;
        }
        return (result as Promise<unknown>).then(
          (value) => {
            slot.histogram.observe((performance.now() - started) / 1000);
            return value;
          },
          (err: unknown) => fail(started, err),
        );
      };
    }
  }

  /** The readings of every operation called at least once. */
  sample(): StoreOperationSample[] {
    const out: StoreOperationSample[] = [];
    for (const [operation, slot] of this.#slots) {
      const duration = slot.histogram.sample();
      if (duration.count === 0) continue;
      out.push({ operation, duration, errors: { ...slot.errors } });
    }
    return out;
  }
}
