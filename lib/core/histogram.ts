/**
 * A fixed-bucket histogram of durations, for counters read at scrape time
 * (netloop/ops turns it into Prometheus's `_bucket`, `_sum` and `_count`):
 * observing is an array increment and two additions, with no allocation,
 * so the layers that keep one (the session registry's audits, the stores'
 * operations) pay nothing per event beyond that.
 *
 * ```
 *   bounds:  0.001  0.005  0.025  0.1  0.5  2.5      (seconds, ascending)
 *   counts: [  n0  ,  n1  ,  n2  , n3 , n4 , n5 , n6 ]  n6: above the last bound
 *   sum, count
 * ```
 *
 * `counts[i]` holds the observations above `bounds[i - 1]` and at most
 * `bounds[i]` (not cumulative); the last holds those above every bound.
 *
 * @module
 */

/** A histogram's reading: bucket bounds in seconds, per-bucket counts (not cumulative, the last one above every bound), sum and count. */
export interface DurationSample {
  /** Upper bounds of the buckets, in seconds, ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; `counts[bounds.length]` holds those above the last bound. */
  readonly counts: readonly number[];
  /** Sum of the observations, in seconds. */
  readonly sum: number;
  /** Number of observations. */
  readonly count: number;
}

/** Bounds for work that takes a millisecond or so and should never take seconds (an audit tick, a store operation). */
export const DURATION_BOUNDS: readonly number[] = Object.freeze([0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);

/** @internal A histogram of durations (see the module documentation). */
export class DurationHistogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[] = DURATION_BOUNDS) {
    this.#bounds = bounds;
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one duration, in seconds (a negative one, from a clock step, counts as 0). */
  observe(seconds: number): void {
    const s = seconds > 0 ? seconds : 0;
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && s > b[i]!) i++;
    this.#counts[i]!++;
    this.#sum += s;
    this.#count++;
  }

  /** A copy of the current reading. */
  sample(): DurationSample {
    return { bounds: this.#bounds, counts: this.#counts.slice(), sum: this.#sum, count: this.#count };
  }
}
