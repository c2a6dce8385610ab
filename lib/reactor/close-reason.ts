/**
 * Why a client closed. Every client reports exactly one close, with one of
 * these reasons and, where the reason is a fault, a {@link NetloopError}.
 *
 * ```
 *   graceful: queued output sent, FIN, then (a close of ours) input read and
 *   discarded until the peer closes, or a deadline (NETLOOP_CLOSE_TIMEOUT)
 *     peer-closed   shutdown   server-close      a later fault replaces the reason
 *     removed   session-expired   session-replaced   the reason stays; a fault
 *     session-kicked   session-deleted               adds its error
 *     session-closed
 *   faults (queued output dropped)
 *     reset  error  output-limit  output-soft-limit  idle-timeout  frame-timeout
 *     handshake-timeout  ping-timeout  protocol-error  handler-error
 *   decisions of the application (queued output dropped)
 *     force-close   (and any reason given to destroy)
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError, toSocketError } from '../core/errors.js';

/** Every close reason, in a stable order (see {@link CloseReason}). */
export const CLOSE_REASONS = [
  'peer-closed',
  'reset',
  'error',
  'output-limit',
  'output-soft-limit',
  'shutdown',
  'force-close',
  'removed',
  'server-close',
  'idle-timeout',
  'frame-timeout',
  'handshake-timeout',
  'protocol-error',
  'handler-error',
  'session-expired',
  'session-replaced',
  'ping-timeout',
  'session-kicked',
  'session-deleted',
  'session-closed',
] as const;

/**
 * Why a client closed:
 * - `peer-closed`: the peer sent FIN and we finished sending what was queued
 *   (or, with `halfOpen`, we ended our side later);
 * - `reset`: the peer reset the connection (ECONNRESET);
 * - `error`: another socket error (EPIPE, ETIMEDOUT, ...), in `error.details.syscallCode`;
 * - `output-limit`: queued output passed the hard limit (`NETLOOP_OUTPUT_LIMIT`);
 * - `output-soft-limit`: queued output stayed above the soft limit too long (`NETLOOP_OUTPUT_SOFT_LIMIT`);
 * - `shutdown`: local `end()`: everything queued was sent, then FIN;
 * - `force-close`: `destroy()`; `removed`: `loop.removeClient(id)` (graceful);
 * - `server-close`: the server, connector or loop was closed;
 * - `idle-timeout`, `frame-timeout`, `handshake-timeout`: a deadline passed;
 * - `protocol-error`: the framing layer refused the input;
 * - `handler-error`: a user handler threw or rejected;
 * - `ping-timeout`: the peer sent nothing, not even the answer to a
 *   keep-alive ping, within the ping timeout (`NETLOOP_PING_TIMEOUT`);
 * - `session-expired`, `session-replaced`, `session-kicked`,
 *   `session-deleted`, `session-closed`: the client's session ended (its TTL
 *   or resume window ran out; a newer login or a resume elsewhere took over;
 *   it was kicked; deleted; closed) in this process or in another sharing
 *   the store, and the session binding closed the client after its notice:
 *
 * ```
 *   session ends (registry event)   notice kind   close reason
 *   expired                         expired       session-expired
 *   replaced                        replaced      session-replaced
 *   kicked                          kicked        session-kicked
 *   deleted                         deleted       session-deleted
 *   closed                          closed        session-closed
 * ```
 */
export type CloseReason = (typeof CLOSE_REASONS)[number];

const REASON_SET: ReadonlySet<string> = new Set(CLOSE_REASONS);

/** True when `value` is one of the {@link CLOSE_REASONS}. */
export function isCloseReason(value: unknown): value is CloseReason {
  return typeof value === 'string' && REASON_SET.has(value);
}

/**
 * True for the reasons of a graceful close that a fault replaces: queued
 * output is sent before the connection ends, and a socket error (or a
 * forced close) during it becomes the reason, since the output was then not
 * delivered. The graceful closes an application asks for by name
 * (`removed` and the `session-*` reasons) keep their reason and
 * carry the fault's error instead.
 */
export function isGracefulReason(reason: CloseReason): boolean {
  return reason === 'peer-closed' || reason === 'shutdown' || reason === 'server-close';
}

/**
 * Maps a socket error to its close reason and coded error: ECONNRESET is
 * `reset`, anything else is `error`; both carry a
 * {@link ErrorCode.SOCKET_ERROR} with `details.syscallCode`.
 */
export function closeReasonOfSocketError(err: unknown): { reason: CloseReason; error: NetloopError } {
  const error = toSocketError(err);
  return { reason: error.details['syscallCode'] === 'ECONNRESET' ? 'reset' : 'error', error };
}

/** The error a client is closed with when its hard output limit is passed. */
export function outputLimitError(queuedBytes: number, appendBytes: number, limit: number): NetloopError {
  return new NetloopError(ErrorCode.OUTPUT_LIMIT, `queued output would pass the hard limit of ${limit} bytes`, {
    details: { queuedBytes, appendBytes, limit },
  });
}

/** The close reason of a client whose session ended with `kind` (see {@link CloseReason}). */
export function sessionCloseReason(kind: 'expired' | 'replaced' | 'kicked' | 'deleted' | 'closed'): CloseReason {
  switch (kind) {
    case 'expired':
      return 'session-expired';
    case 'replaced':
      return 'session-replaced';
    case 'kicked':
      return 'session-kicked';
    case 'deleted':
      return 'session-deleted';
    default:
      return 'session-closed';
  }
}
