/**
 * What the {@link EventLoop} knows of the clients and the services it
 * holds: two small interfaces in a module below the loop, the client and the
 * services, so that the loop imports neither the client nor the server nor
 * the connector (muduo's `EventLoop` knows its `Channel`s, not the
 * `TcpConnection`s behind them). Servers and connectors are built with the
 * loop (`new Server(loop, ...)`) and register themselves with it.
 *
 * ```
 *   EventLoop ──holds──▶ Map<id, LoopClient>        Client implements LoopClient
 *             ──holds──▶ Set<LoopService>           Server, Connector implement LoopService
 *   LoopClient._owner: LoopClientOwner              (its server or connector, as the loop sees it:
 *                                                    the encoder of a framed broadcast, if any)
 *   LoopClient._flags: ClientFlag bits              (the loop reads and sets WRITING, DIRTY, ...)
 * ```
 *
 * @module
 */

import type { OutputBuffer } from './output-buffer.js';
import type { CloseReason } from './close-reason.js';
import type { NetloopError } from '../core/errors.js';

/** The state bits of a client (internal: the loop reads and sets some of them). */
export const ClientFlag = {
  /** The application asked for its queued output to be sent. */
  WRITING: 1,
  /** Reading is not paused. */
  READING: 2,
  /** Queued in the loop's list of clients to flush this turn. */
  DIRTY: 4,
  /** A socket write returned false; the next write waits for 'drain'. */
  AWAIT_DRAIN: 8,
  /** The close has been reported. */
  CLOSED: 16,
  /** A graceful close was asked for: flush, then FIN. */
  ENDING: 32,
  /** `socket.end()` was called. */
  ENDED: 64,
  /** The socket is being destroyed (forced close, error). */
  DESTROYED: 128,
  /** The peer sent FIN. */
  PEER_ENDED: 256,
  /** Bytes were handed to the socket and the write-complete check is still due. */
  COMPLETE_PENDING: 512,
  /** An output limit was passed; the forced close is queued. */
  LIMIT_CLOSE: 1024,
  /** The client was marked authenticated (a framed client's `markAuthenticated()`). */
  AUTHENTICATED: 2048,
  /** Inside the client's own read callback: an update marks it dirty, and the callback's end flushes it. */
  IN_READ: 4096,
  /** The shared 'drain' listener is on the socket (what others attach there does not count). */
  DRAIN_LISTENING: 8192,
  /** A close of ours is under way: input is read and dropped, nothing reaches the application. */
  DISCARD: 16384,
  /** Reading paused by the application (`pause()`). */
  PAUSE_APP: 32768,
  /** Reading paused by the framing layer (inbound backpressure). */
  PAUSE_FRAMING: 65536,
  /** Reading paused because queued output (own or a linked consumer's) is at or above its high mark. */
  PAUSE_OUTPUT: 131072,
  /** This client's queued output holds producers paused (its own reading, or linked producers'). */
  HOLDING: 262144,
  /** This client's own reading is held by its queued output (`readPauseOutputBytes`). */
  SELF_HOLD: 524288,
} as const;

/** A message for the receivers' codec, as a framed broadcast takes it: a type id or name, and its payload. */
export interface TypedMessage {
  /** The message type: its numeric id, or its registered name. */
  type: number | string;
  /** The payload, for the type's serializer (bytes without a registry). */
  payload: unknown;
}

/** A client's owner (its server or connector) as the loop sees it. */
export interface LoopClientOwner {
  /**
   * @internal Encodes `message` into the bytes of one frame for every
   * client of this owner (a broadcast encodes once per owner); absent on an
   * owner whose clients take raw bytes only. Throws for a bad type or payload.
   */
  _encodeMessage?(message: TypedMessage): Uint8Array;
  /**
   * @internal Writes a typed broadcast's frame (encoded once by
   * `_encodeMessage`) to one client of this owner, in place of
   * `client.write(frame)`: set while the owner has work to do per receiver
   * (a framed owner's outbound message hooks see each receiver's message),
   * null or absent otherwise.
   */
  readonly _writeMessage?: ((client: LoopClient, message: TypedMessage, frame: Uint8Array) => boolean) | null;
  /**
   * @internal Told how many of this owner's clients a typed broadcast's
   * frame was queued to by `client.write` (the owner's frame counters);
   * absent on an owner that does not count frames.
   */
  readonly _countBroadcast?: (message: TypedMessage, n: number) => void;
}

/**
 * A client as its loop knows it: what `loop.getClient(id)`,
 * `loop.clients()` and `loop.broadcast(...)` hand out, which is the low-level
 * API of the seed's batching flow (append, enable writing, a write-complete
 * callback, `loop.updateClient`, `loop.removeClient`) and the everyday verbs.
 * Every client is a `Client` (a framed one a `FramedClient`); test with
 * `instanceof` for the rest of its API.
 *
 * ```ts
 * const c = loop.getClient(id);
 * if (c !== undefined && c.appendToOutputBuffer(notice)) {
 *   c.enableWriting();
 *   c.setWriteCompleteCallback(() => loop.removeClient(id));
 *   loop.updateClient(c);
 * }
 * ```
 */
export interface LoopClient {
  /** Process-unique and never reused. */
  readonly id: number;
  /** Per-client user data; netloop never reads it. */
  context: unknown;
  /** The peer's address. */
  readonly remoteAddress: string | undefined;
  /** The peer's port. */
  readonly remotePort: number | undefined;
  /** True while the client takes output (open, no close asked for). */
  readonly writable: boolean;
  /** True once the close has been reported. */
  readonly closed: boolean;
  /** True when a close was asked for but not reported yet. */
  readonly closing: boolean;
  /** Bytes not yet handed to the kernel. */
  readonly queuedBytes: number;
  /** Appends, enables writing and updates the loop. */
  write(data: Uint8Array | string): boolean;
  /** Queues bytes without asking for them to be sent. */
  appendToOutputBuffer(data: Uint8Array | string): boolean;
  /** Asks for queued output to be sent at the next `loop.updateClient`. */
  enableWriting(): void;
  /** Holds queued output back. */
  disableWriting(): void;
  /** True when writing is enabled. */
  isWriting(): boolean;
  /** True while the client's own buffer holds bytes not yet handed to the socket. */
  hasDataToWrite(): boolean;
  /** Sets the callback run each time the queued output drained to the kernel. */
  setWriteCompleteCallback(cb: ((client: this) => unknown) | null): void;
  /** Resolves once everything queued so far reached the kernel. */
  flushed(): Promise<void>;
  /** Closes gracefully: flush, FIN, read and discard until the peer closes. */
  end(): void;
  /** Destroys the connection now. */
  destroy(reason?: CloseReason, error?: NetloopError): void;

  /** @internal The state bits ({@link ClientFlag}). */
  _flags: number;
  /** @internal Bytes not yet handed to the socket; null while nothing is pending. */
  readonly _out: OutputBuffer | null;
  /** @internal The client's server or connector. */
  readonly _owner: LoopClientOwner;
  /** @internal The owner's graceful-close deadline for this client (`shutdownTimeoutMs`). */
  readonly _shutdownTimeoutMs: number;
  /** @internal Hands queued bytes to the socket (once per turn). */
  _flush(): void;
  /** @internal Starts a graceful close with `reason`, destroyed after `lingerMs`. */
  _beginGracefulClose(reason: CloseReason, lingerMs: number): void;
  /** @internal Application code run for this client failed: close it with `'handler-error'`. */
  _handlerFault(err: unknown, source: string): void;
}

/**
 * What a graceful close sends each client first: bytes (the same for all;
 * a string is UTF-8), or a function of the client that returns its bytes,
 * or sends a framed message itself (`client.send(...)`) and returns nothing.
 * A function that throws closes that client with `'handler-error'`; the
 * close goes on.
 */
export type CloseNotice<C extends LoopClient = LoopClient> = Uint8Array | string | ((client: C) => Uint8Array | string | null | undefined | void);

/** Options of a service's close as the loop closes it (see `CloseOptions`). */
export interface ServiceCloseOptions {
  /** How long queued output may take to flush before the remaining clients are destroyed. */
  flushTimeoutMs: number;
  /** Sent to every client of a server first (connectors send none). */
  notice?: CloseNotice | undefined;
}

/**
 * A server or a connector as its loop knows it: it registers itself while it
 * runs (`loop._addService`) and leaves once closed (`loop._removeService`),
 * and `loop.close()` closes it.
 */
export interface LoopService {
  /** @internal What the service is, for `loop.stats()`. */
  readonly _serviceKind: 'server' | 'connector';
  /** Closes the service: it stops accepting (or connecting), its clients flush and close. */
  close(options: ServiceCloseOptions): Promise<void>;
}
