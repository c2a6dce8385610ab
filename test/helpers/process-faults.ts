/**
 * Watches the process for what a guarded listener must never cause: an
 * uncaught exception or an unhandled rejection; and collects the process
 * warnings (`process.emitWarning`) that an `'error'` path without a listener
 * reports instead.
 *
 * While a watch is on, an uncaught exception or an unhandled rejection is
 * recorded instead of ending the process (Node does not crash while an
 * `uncaughtException` listener is installed), so a test on a regression fails
 * with an assertion rather than taking the whole run down.
 *
 * ```ts
 * const faults = watchProcessFaults();
 * try { ...; const w = await faults.warning('NETLOOP_HANDLER_ERROR'); faults.assertClean(); }
 * finally { faults.stop(); }
 * ```
 *
 * @module
 */

import * as assert from 'uvu/assert';
import { WAIT_MS, withTimeout } from './net.js';

/** A process warning as `process.on('warning')` hands it out. */
export type ProcessWarning = Error & { code?: string };

/** What {@link watchProcessFaults} returns. */
export interface ProcessFaults {
  /** Uncaught exceptions and unhandled rejections seen since the watch began. */
  readonly uncaught: unknown[];
  /** Process warnings seen since the watch began. */
  readonly warnings: ProcessWarning[];
  /** Resolves with the first warning (seen or to come) with this code and, if given, whose message matches. */
  warning(code: string, match?: RegExp): Promise<ProcessWarning>;
  /** Fails when an uncaught exception or unhandled rejection was seen. */
  assertClean(): void;
  /** Removes the listeners. */
  stop(): void;
}

/** Starts watching; call `stop()` when done (in a `finally`). */
export function watchProcessFaults(): ProcessFaults {
  const uncaught: unknown[] = [];
  const warnings: ProcessWarning[] = [];
  const waiters: Array<{ code: string; match: RegExp | undefined; resolve: (w: ProcessWarning) => void }> = [];
  const fits = (w: ProcessWarning, code: string, match: RegExp | undefined): boolean => w.code === code && (match === undefined || match.test(w.message));
  const onUncaught = (err: unknown): void => {
    uncaught.push(err);
  };
  const onRejection = (reason: unknown): void => {
    uncaught.push(reason);
  };
  const onWarning = (w: ProcessWarning): void => {
    warnings.push(w);
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i]!;
      if (fits(w, waiter.code, waiter.match)) {
        waiters.splice(i, 1);
        waiter.resolve(w);
      }
    }
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  process.on('warning', onWarning);
  return {
    uncaught,
    warnings,
    warning(code, match) {
      const seen = warnings.find((w) => fits(w, code, match));
      if (seen !== undefined) return Promise.resolve(seen);
      return withTimeout(new Promise((resolve) => waiters.push({ code, match, resolve })), WAIT_MS, `a process warning ${code}`);
    },
    assertClean() {
      assert.equal(
        uncaught.map((e) => String(e)),
        [],
        'no uncaught exception or unhandled rejection',
      );
    },
    stop() {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onRejection);
      process.off('warning', onWarning);
    },
  };
}
