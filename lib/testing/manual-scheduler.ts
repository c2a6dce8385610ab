/**
 * A virtual-time scheduler for tests: timers fire only when the test advances
 * time, in due order, and the paired {@link ManualClock} moves with them.
 * Pass it (and its clock) to the file store (`scheduler`, `clock`) to run
 * save delays, retries and sweeps without sleeping.
 *
 * ```
 *   timers (sorted by due time, then creation)
 *   [ {at: 100, fn}, {at: 5000, fn}, ... ]   advance(ms) pops and runs each due one
 * ```
 *
 * @module
 */

import { ManualClock } from '../core/clock.js';
import type { StoreScheduler, StoreTimer } from '../store/file/scheduler.js';

interface Entry {
  at: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

/** A {@link StoreScheduler} driven by {@link ManualScheduler.advance}. */
export class ManualScheduler implements StoreScheduler {
  /** The clock the scheduler moves; hand it to the code under test too. */
  readonly clock: ManualClock;
  #timers: Entry[] = [];
  #order = 0;

  /** @param clock the clock to move (default a new {@link ManualClock}). */
  constructor(clock: ManualClock = new ManualClock()) {
    this.clock = clock;
  }

  /** @inheritDoc */
  setTimeout(callback: () => void, ms: number): StoreTimer {
    const e: Entry = { at: this.clock.now() + ms, order: this.#order++, fn: callback, cancelled: false };
    this.#timers.push(e);
    this.#timers.sort((a, b) => a.at - b.at || a.order - b.order);
    return {
      cancel: () => {
        e.cancelled = true;
        this.#timers = this.#timers.filter((t) => t !== e);
      },
    };
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.clock.now() + ms;
    for (;;) {
      const next = this.#timers[0];
      if (next === undefined || next.at > target) break;
      this.#timers.shift();
      if (next.at > this.clock.now()) this.clock.advance(next.at - this.clock.now());
      if (!next.cancelled) next.fn();
    }
    if (target > this.clock.now()) this.clock.advance(target - this.clock.now());
  }
}
