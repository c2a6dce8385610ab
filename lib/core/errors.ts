/**
 * Every error netloop raises or reports is a {@link NetloopError} with a stable
 * `code`. Codes are part of the public API: they never change meaning, and new
 * ones are only ever added. Messages are for humans and may change.
 *
 * Secrets (session tokens) never appear in a message or in `details`.
 *
 * @module
 */

/**
 * The catalogue of error codes. Grouped by the layer that raises them.
 */
export const ErrorCode = {
  // Options and arguments.
  /** An option or argument is out of range or of the wrong type. */
  INVALID_OPTION: 'NETLOOP_INVALID_OPTION',
  /** A value handed to an encoder or serializer has the wrong type. */
  INVALID_VALUE: 'NETLOOP_INVALID_VALUE',

  // Reactor: loop, server, client, connector.
  /** The loop (or server) is closed or closing and refuses new work. */
  LOOP_CLOSED: 'NETLOOP_LOOP_CLOSED',
  /** An operation was attempted on a client that has closed. */
  CLIENT_CLOSED: 'NETLOOP_CLIENT_CLOSED',
  /** A client's queued output passed its hard limit; the client is closed. */
  OUTPUT_LIMIT: 'NETLOOP_OUTPUT_LIMIT',
  /** A client's queued output stayed above its soft limit for too long; the client is closed. */
  OUTPUT_SOFT_LIMIT: 'NETLOOP_OUTPUT_SOFT_LIMIT',
  /** A socket-level error (ECONNRESET, EPIPE, ...); `details.syscallCode` holds the system code. */
  SOCKET_ERROR: 'NETLOOP_SOCKET_ERROR',
  /** An outbound connection attempt failed. */
  CONNECT_FAILED: 'NETLOOP_CONNECT_FAILED',
  /** A connector gave up after its configured number of attempts. */
  RECONNECT_EXHAUSTED: 'NETLOOP_RECONNECT_EXHAUSTED',
  /** A new connection was refused because the server holds `maxConnections`. */
  MAX_CONNECTIONS: 'NETLOOP_MAX_CONNECTIONS',
  /** No byte arrived within the read-idle timeout. */
  IDLE_TIMEOUT: 'NETLOOP_IDLE_TIMEOUT',
  /** A frame was started but not completed within the frame deadline (slowloris). */
  FRAME_TIMEOUT: 'NETLOOP_FRAME_TIMEOUT',
  /** A connection did not create or resume a session in time. */
  HANDSHAKE_TIMEOUT: 'NETLOOP_HANDSHAKE_TIMEOUT',
  /** A peer sent nothing, not even a pong, within the ping timeout after a keep-alive ping; the connection is closed (`'ping-timeout'`). */
  PING_TIMEOUT: 'NETLOOP_PING_TIMEOUT',
  /** A user handler threw or rejected while handling a client's input. */
  HANDLER_ERROR: 'NETLOOP_HANDLER_ERROR',
  /** Graceful close did not finish flushing before its deadline. */
  CLOSE_TIMEOUT: 'NETLOOP_CLOSE_TIMEOUT',
  /** An option the running Node or platform does not offer (`reusePort` before Node 22.12, or on a platform without SO_REUSEPORT; `details` names the option, the Node version and the platform), or a Redis server without Functions (before 7.0) under a `RedisStore` (`details.needs`). */
  UNSUPPORTED: 'NETLOOP_UNSUPPORTED',

  // Worker processes (node:cluster).
  /** A worker process exited before it reported ready, or did not report within its deadline; `details` holds its slot, pid, exit code and signal. */
  WORKER_FAILED: 'NETLOOP_WORKER_FAILED',

  // Framing.
  /** A frame's declared length exceeds the maximum (decode) or a value is too large to encode. */
  FRAME_TOO_LARGE: 'NETLOOP_FRAME_TOO_LARGE',
  /** A frame's declared length is smaller than the header it must include. */
  FRAME_TOO_SHORT: 'NETLOOP_FRAME_TOO_SHORT',
  /** A frame carries a message type the (strict) registry does not know. */
  UNKNOWN_TYPE: 'NETLOOP_UNKNOWN_TYPE',
  /** A message type id or name was registered twice. */
  DUPLICATE_TYPE: 'NETLOOP_DUPLICATE_TYPE',
  /** A frame's value could not be deserialized by its message type. */
  BAD_PAYLOAD: 'NETLOOP_BAD_PAYLOAD',

  // Streams and large transfers.
  /**
   * A stream transfer was aborted before its end: by an `AbortSignal`
   * (`details.by: 'signal'`), by the application destroying the stream
   * (`'local'`), or by the peer's abort or cancel marker (`'peer'`, with the
   * peer's code in `details.remoteCode`).
   */
  STREAM_ABORTED: 'NETLOOP_STREAM_ABORTED',
  /** The connection closed before a stream transfer ended; `details.reason` is the close reason. */
  STREAM_INTERRUPTED: 'NETLOOP_STREAM_INTERRUPTED',
  /** The source of a stream transfer (a Readable, a file) failed; `cause` is its error. */
  STREAM_SOURCE_FAILED: 'NETLOOP_STREAM_SOURCE_FAILED',
  /** The peer refused a framed stream: it holds its `maxConcurrentStreams`, or nobody there takes streams. */
  STREAM_REFUSED: 'NETLOOP_STREAM_REFUSED',
  /**
   * A framed-stream frame broke the stream protocol (a malformed frame, a
   * chunk over `maxChunkBytes`, a stream opened twice, an end whose length
   * differs from the bytes received); the connection is closed with
   * `'protocol-error'`.
   */
  STREAM_PROTOCOL: 'NETLOOP_STREAM_PROTOCOL',

  // Sessions.
  /** No live session matches the id, token or connection. */
  SESSION_NOT_FOUND: 'NETLOOP_SESSION_NOT_FOUND',
  /** The session has expired. */
  SESSION_EXPIRED: 'NETLOOP_SESSION_EXPIRED',
  /** The presented token does not match (never says which part). */
  BAD_TOKEN: 'NETLOOP_BAD_TOKEN',
  /** The login policy refused a new session for this user. */
  LOGIN_REFUSED: 'NETLOOP_LOGIN_REFUSED',
  /** A session state change that the state machine does not allow. */
  INVALID_TRANSITION: 'NETLOOP_INVALID_TRANSITION',
  /** The session was replaced by a newer login of the same user. */
  SESSION_REPLACED: 'NETLOOP_SESSION_REPLACED',
  /** The registry holds `maxSessions` sessions and refuses another. */
  SESSION_LIMIT: 'NETLOOP_SESSION_LIMIT',
  /** The session registry is closed. */
  REGISTRY_CLOSED: 'NETLOOP_REGISTRY_CLOSED',
  /**
   * The client (connection) already has a session, or a login or resume is
   * under way on it: a second login on one connection (a peer that sends its
   * login twice). The first login is unaffected.
   */
  ALREADY_BOUND: 'NETLOOP_ALREADY_BOUND',

  // Stores.
  /** The store is closed. */
  STORE_CLOSED: 'NETLOOP_STORE_CLOSED',
  /** A stored file could not be parsed; it was kept aside, `details.file` names it. */
  STORE_CORRUPT: 'NETLOOP_STORE_CORRUPT',
  /**
   * A conditional store write (`set` or `delete` with `ifConnection`) found
   * the live session bound to another connection (or to none): nothing was
   * changed. The session registry expects it when another process took a
   * session over, and counts it (`counters.superseded`) instead of failing.
   */
  CONDITION_FAILED: 'NETLOOP_CONDITION_FAILED',
  /** A journal record in the middle of the journal failed its checksum. */
  JOURNAL_CORRUPT: 'NETLOOP_JOURNAL_CORRUPT',
  /** A disk operation failed after its retries; `details.syscallCode` holds ENOSPC, EIO, ... */
  STORE_IO: 'NETLOOP_STORE_IO',
  /** The remote store (Redis) is unreachable or did not answer in time. */
  STORE_UNAVAILABLE: 'NETLOOP_STORE_UNAVAILABLE',

  // Rooms and broadcast across processes.
  /**
   * A Redis connection of the rooms adapter is down (`details.connection`:
   * `'publisher'` or `'subscriber'`), reported once per outage: broadcasts
   * wait in the adapter's bounded queue meanwhile, and what is dropped or
   * missed is counted.
   */
  PUBSUB_UNAVAILABLE: 'NETLOOP_PUBSUB_UNAVAILABLE',
  /** A client is already in as many rooms as the rooms adapter's `maxRoomsPerClient` allows. */
  ROOM_LIMIT: 'NETLOOP_ROOM_LIMIT',
  /** The rooms adapter is closed. */
  ADAPTER_CLOSED: 'NETLOOP_ADAPTER_CLOSED',

  // Messaging: request/response (a caller's codes, then the codes a responder sends back).
  /** A call got no reply within its timeout (`details.timeoutMs`); the peer was sent a cancellation. */
  RPC_TIMEOUT: 'NETLOOP_RPC_TIMEOUT',
  /** A call was cancelled by its `AbortSignal` (the signal's reason is the `cause`); the peer was sent a cancellation. */
  RPC_ABORTED: 'NETLOOP_RPC_ABORTED',
  /** A call was refused at once, nothing sent: its connection already has `maxCallsInFlight` calls waiting for a reply. */
  RPC_LIMIT: 'NETLOOP_RPC_LIMIT',
  /** The peer answered a call with an error: an `RpcError` whose `remoteCode` (also `details.remoteCode`) is the code the peer sent. */
  RPC_REMOTE_ERROR: 'NETLOOP_RPC_REMOTE_ERROR',
  /** A remote code (in an `RpcError`'s `remoteCode`): the peer has no handler for the call's type. */
  RPC_UNKNOWN_CALL: 'NETLOOP_RPC_UNKNOWN_CALL',
  /** A remote code: the peer was running `maxHandlersInFlight` handlers for the connection and refused one more. */
  RPC_BUSY: 'NETLOOP_RPC_BUSY',
  /** A remote code: the peer's handler failed with an error other than an `RpcError` (its message and stack stay on the peer). */
  RPC_HANDLER_FAILED: 'NETLOOP_RPC_HANDLER_FAILED',

  // Benchmark tooling (bench/ only; the library never raises it).
  /** A benchmark child process failed, timed out, or reported no result; `details` says which and why. */
  BENCH_FAILED: 'NETLOOP_BENCH_FAILED',
} as const;

/** One of the stable error codes of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options for {@link NetloopError}. */
export interface NetloopErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Structured, secret-free facts about the failure (sizes, limits, file names, system codes). */
  details?: Record<string, unknown>;
}

/**
 * The one base class of every netloop error.
 *
 * ```ts
 * try { client.appendToOutputBuffer(data); }
 * catch (err) { if (err instanceof NetloopError && err.code === ErrorCode.CLIENT_CLOSED) ... }
 * ```
 */
export class NetloopError extends Error {
  /** The stable code; see {@link ErrorCode}. */
  readonly code: ErrorCodeValue;
  /** Structured facts about the failure; never holds a secret. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCodeValue, message: string, options: NetloopErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NetloopError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

/** True when `err` is a {@link NetloopError}, optionally with the given code. */
export function isNetloopError(err: unknown, code?: ErrorCodeValue): err is NetloopError {
  return err instanceof NetloopError && (code === undefined || err.code === code);
}

/**
 * Wraps a socket error (ECONNRESET, EPIPE, ...) as a {@link NetloopError} with
 * code {@link ErrorCode.SOCKET_ERROR}, keeping the system code in
 * `details.syscallCode`. A NetloopError is returned unchanged.
 */
export function toSocketError(err: unknown): NetloopError {
  if (err instanceof NetloopError) return err;
  const sys = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new NetloopError(ErrorCode.SOCKET_ERROR, `socket error: ${message}`, {
    cause: err,
    details: sys === undefined ? {} : { syscallCode: sys },
  });
}
