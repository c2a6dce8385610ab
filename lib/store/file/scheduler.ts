/**
 * The timer seam of the file store: saves, group commits, retries and the
 * cleanup sweep are scheduled through a {@link StoreScheduler}, so a test can
 * run them in virtual time (`ManualScheduler` in `netloop/testing`) and no
 * test sleeps for a save delay.
 *
 * @module
 */

/** A cancellable one-shot timer returned by a {@link StoreScheduler}. */
export interface StoreTimer {
  cancel(): void;
}

/**
 * The timer seam of the file store. The default is {@link systemScheduler};
 * tests pass a virtual-time scheduler so no test sleeps for a save delay.
 */
export interface StoreScheduler {
  /**
   * Calls `callback` once after `ms` milliseconds. With `unref`, the timer
   * does not keep the process alive.
   */
  setTimeout(callback: () => void, ms: number, options?: { unref?: boolean }): StoreTimer;
}

/** The scheduler over Node's `setTimeout`. */
export const systemScheduler: StoreScheduler = Object.freeze({
  setTimeout(callback: () => void, ms: number, options?: { unref?: boolean }): StoreTimer {
    const t = setTimeout(callback, ms);
    if (options?.unref === true) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
});
