/**
 * The options every stream transfer shares, their validation, and the coded
 * errors a transfer ends with.
 *
 * A transfer holds at most `windowBytes` bytes of its source in memory. The
 * window is cut into the marks of the client's own output buffer: reading the
 * source pauses when the client's queued output reaches the high mark and
 * resumes once it drained to the low mark (the reactor's high-water and
 * drain, as muduo's file transfer example refills from its write-complete
 * callback); the rest of the window is what may sit in the buffers between
 * the source and the client.
 *
 * ```
 *   windowBytes (default 1 MiB), chunkBytes C (default 64 KiB)
 *   ├──────────── high = windowBytes - 4C ────────────┤── C ──┤── C ──┤─── 2C ───┤
 *     queued output of the transfer (the last append     last    Writable  the file's read-ahead
 *     may pass the mark by one chunk)                    append  buffer    (a buffered chunk and
 *                                                                          a read in flight)
 *   low = high / 2: reading resumes once the client's queued output is back there
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger } from '../core/validate.js';
import type { Readable, Writable } from 'node:stream';
import type { Client } from '../reactor/client.js';

/** Options of every stream transfer (`sendStream`, `sendFile`, a client Writable, a framed stream). */
export interface StreamSendOptions {
  /**
   * The most bytes of the source the transfer holds in memory at once: its
   * queued output on the client plus what sits between the source and the
   * client (a file's read-ahead included; a Readable of the application
   * holds its own buffer besides). Default 1 MiB; at least 6 × `chunkBytes`,
   * and `windowBytes - 3 × chunkBytes` at most the client's `maxOutputBytes`.
   */
  windowBytes?: number;
  /**
   * The largest piece queued at once (a framed stream's chunk: at most the
   * peer's `maxChunkBytes`), and the size of each read from a file.
   * Default 65,536.
   */
  chunkBytes?: number;
  /** Aborts the transfer: it ends with `NETLOOP_STREAM_ABORTED` (`details.by: 'signal'`), on both sides. */
  signal?: AbortSignal;
}

/** Defaults of {@link StreamSendOptions}. */
export const STREAM_DEFAULTS = {
  /** The most bytes of the source in memory at once. */
  windowBytes: 1024 * 1024,
  /** The largest piece queued at once. */
  chunkBytes: 64 * 1024,
} as const;

/** What a transfer reports once its last byte (and, framed, its end marker) has been handed to the kernel. */
export interface StreamResult {
  /** Bytes of the source sent. */
  bytes: number;
}

/** @internal The validated marks of one transfer. */
export interface StreamMarks {
  readonly windowBytes: number;
  readonly chunkBytes: number;
  /** Queued output of the client at which the transfer stops taking from its source. */
  readonly high: number;
  /** Queued output at which it takes again. */
  readonly low: number;
}

/** The largest chunk a transfer takes (the largest value of the `'netloop'` layout). */
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * @internal Validates the window options for `client` and derives the marks
 * (see the module comment). `maxChunk` caps `chunkBytes` (a framed stream's
 * largest frame value).
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION`.
 */
export function streamMarks(client: Client, options: StreamSendOptions, maxChunk = MAX_CHUNK_BYTES): StreamMarks {
  if (typeof options !== 'object' || options === null) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'stream options must be an object', { details: { option: 'options' } });
  }
  const cap = Math.min(maxChunk, MAX_CHUNK_BYTES);
  const chunkBytes = checkInteger('chunkBytes', options.chunkBytes ?? Math.min(STREAM_DEFAULTS.chunkBytes, cap), 1, cap);
  const windowBytes = checkInteger('windowBytes', options.windowBytes ?? STREAM_DEFAULTS.windowBytes, 6 * chunkBytes, 2 ** 40);
  const high = windowBytes - 4 * chunkBytes;
  const max = client._cfg.maxOutputBytes;
  if (high + chunkBytes > max) {
    throw new NetloopError(
      ErrorCode.INVALID_OPTION,
      `windowBytes ${windowBytes} needs a client maxOutputBytes of at least ${high + chunkBytes} (it is ${max}): lower windowBytes or chunkBytes`,
      { details: { option: 'windowBytes', value: windowBytes, maxOutputBytes: max } },
    );
  }
  checkSignal(options.signal);
  return { windowBytes, chunkBytes, high, low: Math.floor(high / 2) };
}

/** @internal Throws `NETLOOP_INVALID_OPTION` unless `signal` is undefined or an AbortSignal. */
export function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'signal must be an AbortSignal', { details: { option: 'signal' } });
  }
}

/** @internal Validates the `end` option (end the client once sent). */
export function checkEnd(value: unknown): boolean {
  return value === undefined ? false : checkBoolean('end', value);
}

/** @internal The transfer was aborted: by the signal, by the application, or by the peer. */
export function abortedError(by: 'signal' | 'local' | 'peer', cause?: unknown, remoteCode?: string): NetloopError {
  const what = by === 'signal' ? 'by its AbortSignal' : by === 'local' ? 'by the application' : `by the peer (${remoteCode ?? 'no code'})`;
  return new NetloopError(ErrorCode.STREAM_ABORTED, `the stream was aborted ${what}`, {
    cause,
    details: remoteCode === undefined ? { by } : { by, remoteCode },
  });
}

/** @internal The client closed (or began closing) before the transfer ended. */
export function interruptedError(client: Client): NetloopError {
  const reason = client._closeReason;
  return new NetloopError(
    ErrorCode.STREAM_INTERRUPTED,
    `client ${client.id} ${client.closed ? 'closed' : 'is closing'} (${reason ?? 'closing'}) before the stream ended`,
    { cause: client._closeError, details: { clientId: client.id, reason: reason ?? 'closing' } },
  );
}

/** @internal The source failed with `cause`. */
export function sourceFailedError(cause: unknown): NetloopError {
  const message = cause instanceof Error ? cause.message : String(cause);
  const sys = (cause as NodeJS.ErrnoException | null)?.code;
  return new NetloopError(ErrorCode.STREAM_SOURCE_FAILED, `the stream's source failed: ${message}`, {
    cause,
    details: typeof sys === 'string' ? { syscallCode: sys } : {},
  });
}

/**
 * @internal The coded error a transfer ends with, from what ended it: a
 * NetloopError stays as it is, an `AbortError` (a signal, through Node's
 * stream machinery) becomes `NETLOOP_STREAM_ABORTED`, anything else is the
 * source's failure.
 */
export function transferError(err: unknown): NetloopError {
  if (err instanceof NetloopError) return err;
  if (err instanceof Error && err.name === 'AbortError') return abortedError('signal', err);
  return sourceFailedError(err);
}

/**
 * @internal Destroys `stream` with `error`, a failure that came from the
 * network or from the owner (the peer's abort or cancel, the connection's
 * close): with nobody listening for `'error'`, the error is kept in
 * `stream.errored` instead of being thrown as an unhandled `'error'` event,
 * so a peer can never crash the process.
 */
export function failStream(stream: Readable | Writable, error: NetloopError): void {
  if (stream.listenerCount('error') === 0) stream.once('error', ignore);
  stream.destroy(error);
}

function ignore(): void {}
