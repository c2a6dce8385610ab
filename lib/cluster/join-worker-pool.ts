/**
 * A worker's side of a {@link WorkerPool}: says it is ready, and drains when
 * the primary asks (a rolling restart, the pool's close) or goes away.
 *
 * ```
 *   joinWorkerPool(server, { notice, flushTimeoutMs, stores })
 *     ─▶ { type: 'netloop:worker-ready' } to the primary
 *   { type: 'netloop:worker-drain' }, or the IPC channel closes (the primary is gone)
 *     ─▶ server.close({ notice, flushTimeoutMs, settle: stores })   once
 *          stop accepting ─▶ notice to every client ─▶ flush, FIN ─▶ destroy the rest after flushTimeoutMs
 *          ─▶ stores closed (the sessions detached into them, resumable on another worker)
 *     ─▶ onDrained(error?) ─▶ process.exit(0), or 1 when the close failed (unless exit: false)
 * ```
 *
 * @module
 */

import type { GracefullyClosable } from '../reactor/close-on-signals.js';
import type { CloseNotice, CloseOptions } from '../reactor/graceful-close.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, checkNotice, checkSettle } from '../reactor/graceful-close.js';
import type { Flushable } from '../core/flush-on-signals.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkNumber, checkObject, checkOptionalFunction } from '../core/validate.js';
import { WORKER_MESSAGES, isWorkerMessage } from './worker-messages.js';

/** The IPC channel to the primary: `process` in a cluster worker (a seam for tests). */
export interface WorkerChannel {
  /** Sends a message to the primary; absent in a process without an IPC channel. */
  send?: ((message: unknown) => unknown) | undefined;
  /** Listens to the primary's messages. */
  on(event: 'message', listener: (message: unknown) => void): unknown;
  /** Listens for the end of the channel (the primary is gone). */
  on(event: 'disconnect', listener: () => void): unknown;
  /** Stops listening to the primary's messages. */
  off(event: 'message', listener: (message: unknown) => void): unknown;
  /** Stops listening for the end of the channel. */
  off(event: 'disconnect', listener: () => void): unknown;
}

/** Options of {@link joinWorkerPool}. */
export interface JoinWorkerPoolOptions {
  /** Sent to every client before the graceful close (see `CloseOptions.notice`); default nothing. */
  notice?: CloseNotice;
  /** How long clients may take to flush, then stores to settle; default 5000 ms. Keep it below the pool's `drainTimeoutMs`. */
  flushTimeoutMs?: number;
  /** Stores to close once every client has closed, so the sessions' last writes are in them (see `CloseOptions.settle`). */
  stores?: readonly Flushable[];
  /** Exit the process once drained (0, or 1 when the close failed); default true. */
  exit?: boolean;
  /** Called once drained, with the close's failure if any, before the process exits. */
  onDrained?: (error?: unknown) => void;
  /** The channel to the primary; default `process`. */
  channel?: WorkerChannel;
}

/**
 * Joins the pool that forked this process: reports ready at once (call it
 * once `target` listens), and drains `target` when the primary asks or
 * disappears. Returns a disposer that stops listening to the primary.
 *
 * ```ts
 * const server = await new Server(loop, { port: 7000 }).listen();
 * joinWorkerPool(server, { notice: 'restarting, reconnect\n', flushTimeoutMs: 3000, stores: [store] });
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option or a
 *   target without `close()`; `NETLOOP_UNSUPPORTED` when there is no channel
 *   to a primary (the process was not forked by a pool).
 */
export function joinWorkerPool(target: GracefullyClosable, options: JoinWorkerPoolOptions = {}): () => void {
  checkObject('options', options);
  if (typeof target !== 'object' || target === null || typeof target.close !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'joinWorkerPool needs a server or a loop', { details: { option: 'target' } });
  }
  const flushTimeoutMs = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS, 0, 2 ** 31 - 1);
  const notice = checkNotice(options.notice);
  const settle = checkSettle(options.stores);
  const exit = checkBoolean('exit', options.exit ?? true);
  const onDrained = checkOptionalFunction('onDrained', options.onDrained);
  const channel = options.channel ?? (process as WorkerChannel);
  if (typeof channel.send !== 'function') {
    throw new NetloopError(ErrorCode.UNSUPPORTED, 'this process has no channel to a cluster primary (not forked by a WorkerPool)', {
      details: { option: 'channel' },
    });
  }
  const closeOptions: CloseOptions = { flushTimeoutMs, settle };
  if (notice !== undefined) closeOptions.notice = notice;

  let draining = false;
  const drain = (): void => {
    if (draining) return;
    draining = true;
    dispose();
    target.close(closeOptions).then(
      () => finish(undefined),
      (err: unknown) => finish(err ?? new Error('close failed')),
    );
  };
  const finish = (error: unknown): void => {
    try {
      onDrained?.(error);
    } finally {
      if (exit) process.exit(error === undefined ? 0 : 1);
    }
  };
  const onMessage = (msg: unknown): void => {
    if (isWorkerMessage(msg, WORKER_MESSAGES.drain)) drain();
  };
  const dispose = (): void => {
    channel.off('message', onMessage);
    channel.off('disconnect', drain);
  };
  channel.on('message', onMessage);
  channel.on('disconnect', drain);
  channel.send({ type: WORKER_MESSAGES.ready });
  return dispose;
}
