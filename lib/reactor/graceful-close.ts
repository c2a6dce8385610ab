/**
 * The pieces of a graceful shutdown that servers and the loop share: a
 * notice sent to every client before the flush, and the settling of stores
 * (anything with `close()` or `flush()`) once every client has closed.
 *
 * ```
 *   close({ notice, flushTimeoutMs, settle })
 *     1. stop accepting
 *     2. every client: sendNotice(client, notice) ─▶ graceful close (flush, FIN,
 *        then read and discard until the peer closes)
 *     3. deadline flushTimeoutMs ─▶ destroy what remains (NETLOOP_CLOSE_TIMEOUT)
 *     4. settleAll(settle, flushTimeoutMs): close() (or flush()) each, in parallel
 *     5. resolve, once
 * ```
 *
 * @module
 */

import type { CloseNotice, LoopClient } from './loop-member.js';
import type { Flushable } from '../core/flush-on-signals.js';
import { ErrorCode, NetloopError } from '../core/errors.js';

export type { CloseNotice } from './loop-member.js';

/** Default of {@link CloseOptions.flushTimeoutMs}. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 5_000;

/**
 * Options of `loop.close()`, `server.close()` and `connector.close()`. `C`
 * is the class of the clients a notice function is given (a framed
 * server's clients can `send`).
 */
export interface CloseOptions<C extends LoopClient = LoopClient> {
  /** How long queued output may take to flush before the remaining clients are destroyed; default 5000 ms. */
  flushTimeoutMs?: number | undefined;
  /**
   * Sent to every client of the closing server(s) before the flush: bytes,
   * or a function of the client returning its bytes (or sending a framed
   * message itself and returning nothing). Default: nothing. Connectors'
   * clients get no notice.
   */
  notice?: CloseNotice<C> | undefined;
  /**
   * Stores (anything with `close()` or `flush()`, such as every netloop
   * store) settled once every client has closed, so that the last session
   * writes are in them; each gets `close()` (else `flush()`), all within
   * another `flushTimeoutMs`. Failures reject the close once all settled.
   */
  settle?: readonly Flushable[] | undefined;
}

/** The error of a client destroyed because a graceful close passed its deadline. */
export function closeTimeoutError(flushTimeoutMs: number): NetloopError {
  return new NetloopError(ErrorCode.CLOSE_TIMEOUT, `queued output did not flush within ${flushTimeoutMs} ms`, {
    details: { flushTimeoutMs },
  });
}

/** @internal Throws `NETLOOP_INVALID_OPTION` unless `notice` is a {@link CloseNotice} or undefined. */
export function checkNotice<C extends LoopClient>(notice: CloseNotice<C> | null | undefined): CloseNotice<C> | undefined {
  if (notice === undefined || notice === null) return undefined;
  if (typeof notice === 'string' || typeof notice === 'function' || notice instanceof Uint8Array) return notice;
  throw new NetloopError(ErrorCode.INVALID_OPTION, 'notice must be bytes, a string or a function of the client', {
    details: { option: 'notice' },
  });
}

/** @internal Throws `NETLOOP_INVALID_OPTION` unless `settle` is a list of objects with `close()` or `flush()`. */
export function checkSettle(settle: unknown): readonly Flushable[] {
  if (settle === undefined || settle === null) return [];
  const ok =
    Array.isArray(settle) &&
    settle.every(
      (t: unknown) =>
        typeof t === 'object' &&
        t !== null &&
        (typeof (t as Flushable).close === 'function' || typeof (t as Flushable).flush === 'function'),
    );
  if (!ok) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'settle must be an array of objects with close() or flush()', {
      details: { option: 'settle' },
    });
  }
  return settle as readonly Flushable[];
}

/**
 * @internal Queues the notice on `client` (sent with the flush that follows).
 * A client already closing gets nothing; a notice function that throws
 * closes that client with `'handler-error'` and the shutdown goes on.
 */
export function sendNotice<C extends LoopClient>(client: C, notice: CloseNotice<C>): void {
  if (!client.writable) return;
  try {
    const bytes = typeof notice === 'function' ? notice(client) : notice;
    // A notice function may close the client itself: write() then queues nothing.
    if (bytes !== undefined && bytes !== null) client.write(bytes);
  } catch (err) {
    client._handlerFault(err, 'close notice');
  }
}

/**
 * Settles every target in parallel: `close()` where there is one, else
 * `flush()`. Resolves once all are settled; rejects after all are settled
 * with the first failure, or with `NETLOOP_CLOSE_TIMEOUT` when they take
 * longer than `timeoutMs` (the targets are not waited for further).
 */
export function settleAll(targets: readonly Flushable[], timeoutMs: number): Promise<void> {
  if (targets.length === 0) return Promise.resolve();
  const runs = targets.map((t) => {
    const fn = t.close ?? t.flush;
    try {
      return Promise.resolve(fn?.call(t));
    } catch (err) {
      return Promise.reject(err);
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new NetloopError(ErrorCode.CLOSE_TIMEOUT, `stores did not settle within ${timeoutMs} ms`, {
          details: { flushTimeoutMs: timeoutMs, targets: targets.length },
        }),
      );
    }, timeoutMs);
  });
  const all = Promise.allSettled(runs).then((results) => {
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  });
  // A failure after the deadline has nobody left to hear it; it must not become an unhandled rejection.
  all.catch(() => undefined);
  return Promise.race([all, timeout]).finally(() => clearTimeout(timer));
}
