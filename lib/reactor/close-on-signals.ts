/**
 * Graceful shutdown on SIGINT / SIGTERM for a server or a whole loop: one
 * call wires {@link Server.close} or {@link EventLoop.close} (notice, flush to
 * a deadline, destroy the rest, settle the stores) to the signals, on top of
 * {@link flushOnSignals}.
 *
 * ```
 *   SIGTERM ─▶ handlers removed (a second Ctrl-C kills at once)
 *           ─▶ target.close({ notice, flushTimeoutMs, settle: stores })
 *                 stop accepting ─▶ notice ─▶ flush ≤ flushTimeoutMs ─▶ destroy the rest
 *                 ─▶ stores close()/flush() ≤ flushTimeoutMs
 *           ─▶ onDone(signal) ─▶ the signal is re-raised: the process ends by it
 * ```
 *
 * @module
 */

import type { CloseOptions } from './graceful-close.js';
import type { CloseNotice } from './graceful-close.js';
import { checkNotice, checkSettle } from './graceful-close.js';
import { flushOnSignals } from '../core/flush-on-signals.js';
import type { Flushable } from '../core/flush-on-signals.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkNumber } from '../core/validate.js';

/** Something that closes gracefully: a {@link Server} or an {@link EventLoop}. */
export interface GracefullyClosable {
  close(options?: CloseOptions): Promise<void>;
}

/** Options of {@link closeOnSignals}. */
export interface CloseOnSignalsOptions {
  /** Signals to handle; default `['SIGINT', 'SIGTERM']`. */
  signals?: NodeJS.Signals[];
  /** Sent to every client first (see {@link CloseOptions.notice}); default nothing. */
  notice?: CloseNotice;
  /** How long clients may take to flush, and then stores to settle; default 5000 ms. */
  flushTimeoutMs?: number;
  /** Stores to settle once every client has closed (see {@link CloseOptions.settle}); default none. */
  stores?: readonly Flushable[];
  /** Re-raise the signal once closed, so the process ends by it (default true). False: only `onDone` runs. */
  exit?: boolean;
  /** Called with a failure of the close (default: one line on stderr, codes only). */
  onError?: (err: unknown) => void;
  /** Called once everything is closed (or the overall deadline passed), before the signal is re-raised. */
  onDone?: (signal: NodeJS.Signals) => void;
}

/** Extra time given beyond the two `flushTimeoutMs` phases before the process is let go anyway. */
const GRACE_MS = 1_000;

/**
 * On the first SIGINT or SIGTERM, closes `target` gracefully, then lets the
 * process end by that signal. Returns a disposer that removes the handlers
 * (idempotent).
 *
 * ```ts
 * const server = await new Server(loop, { port: 7000 }).listen();
 * closeOnSignals(loop, { notice: 'server going down\n', flushTimeoutMs: 3000, stores: [store] });
 * ```
 */
export function closeOnSignals(target: GracefullyClosable, options: CloseOnSignalsOptions = {}): () => void {
  if (typeof target !== 'object' || target === null || typeof target.close !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'closeOnSignals needs a server or a loop', { details: { option: 'target' } });
  }
  const flushTimeoutMs = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? 5_000, 0, 290_000);
  const notice = checkNotice(options.notice);
  const settle = checkSettle(options.stores);
  const closeOptions: CloseOptions = { flushTimeoutMs, settle };
  if (notice !== undefined) closeOptions.notice = notice;
  const closer: Flushable = { close: () => target.close(closeOptions) };
  return flushOnSignals(closer, {
    signals: options.signals ?? ['SIGINT', 'SIGTERM'],
    method: 'close',
    timeoutMs: 2 * flushTimeoutMs + GRACE_MS,
    exit: options.exit ?? true,
    ...(options.onError !== undefined ? { onError: options.onError } : {}),
    ...(options.onDone !== undefined ? { onDone: options.onDone } : {}),
  });
}
