/**
 * Every callback type a client of the reactor meets, and the event maps of
 * {@link Server} and {@link Connector}, in one place (muduo's `Callbacks.h`:
 * "all client visible callbacks go here").
 *
 * ```
 *   events (server.on / connector.on, typed by these maps)
 *     ServerBaseEvents      connection  end  close  drop  error
 *       └─ ServerEvents       + data          (raw bytes; a framed server has 'message' instead)
 *     ConnectorBaseEvents   connected  end  close  connect-error  give-up  error
 *       └─ ConnectorEvents    + data
 *   per-client callbacks (the seed's low-level API, one each per client)
 *     WriteCompleteCallback   HighWaterMarkCallback   CloseCallback
 * ```
 *
 * Every listener and callback may be `async`: a throw, or a returned promise
 * that rejects, closes only the client it concerns (`'handler-error'`,
 * `NETLOOP_HANDLER_ERROR` with the fault as `cause`); a fault that concerns
 * no open client goes to the owner's `'error'` event, and without a listener
 * there to a process warning. The process never dies of it.
 *
 * The event maps take the client type as a parameter, so a subclass whose
 * clients are richer (a framed server's clients can `send`) types its
 * listeners with its own client class.
 *
 * @module
 */

import type { Client } from './client.js';
import type { CloseReason } from './close-reason.js';
import type { NetloopError } from '../core/errors.js';

/** Called with the client once its queued output drained to the kernel ({@link Client.setWriteCompleteCallback}). */
export type WriteCompleteCallback<C extends Client = Client> = (client: C) => void;

/**
 * Called with the client and its queued bytes when they cross the mark
 * upward ({@link Client.setHighWaterMarkCallback}).
 */
export type HighWaterMarkCallback<C extends Client = Client> = (client: C, queuedBytes: number) => void;

/** Called once when the client closes, before its owner's `'close'` event ({@link Client.setCloseCallback}). */
export type CloseCallback<C extends Client = Client> = (client: C, reason: CloseReason, error?: NetloopError) => void;

/** The payload of a server's `'drop'` event. */
export interface DropInfo {
  /** The peer's address, as the socket reported it. */
  remoteAddress: string | undefined;
  /** The peer's port, as the socket reported it. */
  remotePort: number | undefined;
  /** Why the connection was dropped. */
  reason: 'max-connections';
}

/** The second argument of a connector's `'connect-error'` event. */
export interface ConnectErrorInfo {
  /** The attempt that failed (1 for the first of a series). */
  attempt: number;
  /** Delay before the next attempt, or null when there is none. */
  nextDelayMs: number | null;
}

/**
 * The events of every server, whatever its clients speak.
 *
 * - `'connection'`: a socket was accepted (after its TLS handshake, with `tls`);
 * - `'end'`: the peer sent FIN and `halfOpen` is set (the client stays writable);
 * - `'close'`: exactly once per client, with its reason and, for a fault, its coded error;
 * - `'drop'`: a socket beyond `maxConnections` was destroyed;
 * - `'error'`: an accept error (emitted only when listened for), or a
 *   `NETLOOP_HANDLER_ERROR` (`cause`, `details.clientId`, `details.source`)
 *   for a listener or callback that failed when no open client answers for
 *   it (a `'drop'` or `'close'` listener, a close callback). Nobody
 *   listening, it becomes a process warning.
 */
export interface ServerBaseEvents<C extends Client = Client> {
  connection: (client: C) => void;
  end: (client: C) => void;
  close: (client: C, reason: CloseReason, error?: NetloopError) => void;
  drop: (info: DropInfo) => void;
  error: (error: NetloopError) => void;
}

/** The events of a raw server: {@link ServerBaseEvents} and `'data'`, each chunk of bytes as read. */
export interface ServerEvents<C extends Client = Client> extends ServerBaseEvents<C> {
  data: (client: C, chunk: Buffer) => void;
}

/**
 * The events of every connector, whatever its connections speak.
 *
 * - `'connected'`: a connection is established (after the TLS handshake, with `tls`);
 * - `'end'`: the peer sent FIN and `halfOpen` is set;
 * - `'close'`: exactly once per connection;
 * - `'connect-error'`: an attempt failed (`NETLOOP_CONNECT_FAILED`);
 * - `'give-up'`: no more attempts (`NETLOOP_RECONNECT_EXHAUSTED`); the connector is stopped;
 * - `'error'`: a `NETLOOP_HANDLER_ERROR` for a listener or callback that
 *   failed when no open connection answers for it (a `'connect-error'`,
 *   `'give-up'` or `'close'` listener, a close callback); nobody listening,
 *   a process warning.
 */
export interface ConnectorBaseEvents<C extends Client = Client> {
  connected: (client: C) => void;
  end: (client: C) => void;
  close: (client: C, reason: CloseReason, error?: NetloopError) => void;
  'connect-error': (error: NetloopError, info: ConnectErrorInfo) => void;
  'give-up': (error: NetloopError) => void;
  error: (error: NetloopError) => void;
}

/** The events of a raw connector: {@link ConnectorBaseEvents} and `'data'`. */
export interface ConnectorEvents<C extends Client = Client> extends ConnectorBaseEvents<C> {
  data: (client: C, chunk: Buffer) => void;
}

/**
 * A read tap of a server (`server.addReadTap`): called with every chunk a
 * client reads, before it is delivered. Quick, and never throwing.
 */
export type ReadTap<C extends Client = Client> = (client: C, chunk: Buffer) => void;
