/**
 * What a failed call carries across the wire, in both directions: a handler
 * throws an {@link RpcError} to answer with a code and a message of its
 * choosing, and the caller catches an `RpcError` with that code as its
 * `remoteCode`. Nothing else of a handler's failure leaves the process.
 *
 * ```
 *   handler throws                       error envelope sent          caller rejects with
 *   ───────────────────────────────────  ───────────────────────────  ─────────────────────────────────────
 *   RpcError(remoteCode, message)        remoteCode, message          RpcError { code: RPC_REMOTE_ERROR,
 *   NetloopError (code X)                X, "the handler failed (X)"             remoteCode, message }
 *   anything else                        RPC_HANDLER_FAILED, fixed
 * ```
 *
 * A `NetloopError` keeps its code (a handler that awaited a call that timed
 * out answers `NETLOOP_RPC_TIMEOUT`), but not its message or details, which
 * may name files, hosts or limits of the responder. Any other error (a
 * `TypeError` of a bug) is answered with {@link ErrorCode.RPC_HANDLER_FAILED}
 * and a fixed message; the responder learns of it through the RPC's
 * `'handler-error'` event, with the error itself.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { RPC_MAX_ERROR_CODE_BYTES, RPC_MAX_ERROR_MESSAGE_BYTES, fitRpcErrorText } from '../codec/rpc-envelope.js';

/** Options of an {@link RpcError}. */
export interface RpcErrorOptions {
  /** The underlying error, kept on this side only (never sent). */
  cause?: unknown;
  /** Facts for this side's logs (never sent). `remoteCode` is added. */
  details?: Record<string, unknown>;
}

/**
 * An error to answer a call with, or the answer a call got. Its `code` is
 * always {@link ErrorCode.RPC_REMOTE_ERROR}; `remoteCode` is the code of the
 * peer's choice (`'NOT_FOUND'`, or a netloop code such as
 * `NETLOOP_RPC_UNKNOWN_CALL`).
 *
 * ```ts
 * rpc.handle('GetUser', async (_client, { id }) => {
 *   const user = users.get(id);
 *   if (user === undefined) throw new RpcError('NOT_FOUND', `no user ${id}`);
 *   return user;
 * });
 * // the caller:
 * try { await rpc.call(client, 'GetUser', { id: 7 }); }
 * catch (err) { if (err instanceof RpcError && err.remoteCode === 'NOT_FOUND') ... }
 * ```
 */
export class RpcError extends NetloopError {
  /** The code the answering handler chose (1 to 64 UTF-8 bytes). */
  readonly remoteCode: string;

  /**
   * `remoteCode`: 1 to 64 UTF-8 bytes; `message`: sent as written, cut to
   * 1024 UTF-8 bytes. Neither should hold a secret: both reach the caller.
   *
   * @throws NetloopError `NETLOOP_INVALID_VALUE` when `remoteCode` is not a
   *   non-empty string of at most 64 UTF-8 bytes, or `message` not a string.
   */
  constructor(remoteCode: string, message: string, options: RpcErrorOptions = {}) {
    if (typeof remoteCode !== 'string' || remoteCode.length === 0 || fitRpcErrorText(remoteCode, RPC_MAX_ERROR_CODE_BYTES) !== remoteCode) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `an RpcError's code must be a string of 1 to ${RPC_MAX_ERROR_CODE_BYTES} UTF-8 bytes`, {
        details: { got: typeof remoteCode === 'string' ? `${remoteCode.length} characters` : typeof remoteCode },
      });
    }
    if (typeof message !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, "an RpcError's message must be a string", { details: { got: typeof message } });
    }
    super(ErrorCode.RPC_REMOTE_ERROR, fitRpcErrorText(message, RPC_MAX_ERROR_MESSAGE_BYTES), {
      cause: options.cause,
      details: { ...(options.details ?? {}), remoteCode },
    });
    this.name = 'RpcError';
    this.remoteCode = remoteCode;
  }
}

/** @internal What an error envelope carries: the code and message sent for a handler's failure. */
export interface WireError {
  readonly code: string;
  readonly message: string;
  /** True for a failure the responder should hear of (not an RpcError the handler meant). */
  readonly fault: boolean;
}

/** The fixed message sent with {@link ErrorCode.RPC_HANDLER_FAILED}. */
export const HANDLER_FAILED_MESSAGE = 'the handler failed';

/** @internal The error envelope's fields for what a handler threw (see the module comment). */
export function wireErrorOf(err: unknown): WireError {
  if (err instanceof RpcError) return { code: err.remoteCode, message: err.message, fault: false };
  if (err instanceof NetloopError) return { code: err.code, message: `the handler failed (${err.code})`, fault: true };
  return { code: ErrorCode.RPC_HANDLER_FAILED, message: HANDLER_FAILED_MESSAGE, fault: true };
}
