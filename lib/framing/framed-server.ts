/**
 * A server whose clients speak LTV frames: a reactor {@link Server} whose
 * client factory makes {@link FramedClient}s, all sharing one
 * {@link Framing} (layout, registry, encoder, limits, handler). Messages are
 * handed to `onMessage` (or `onRawFrame`, or the `'message'` event) instead
 * of raw `'data'`; `client.send()` encodes.
 *
 * ```
 *   new FramedServer(loop, { port, registry, onMessage, ...limits })
 *     Server (accept, limits, close)  ──_createClient──▶ FramedClient (decodes, sends)
 *     Framing (shared)                ◀── read by every client through its owner
 *     frame observers                 ──▶ each frame's (type, size), before dispatch
 *     _encodeMessage                  ──▶ one frame per broadcast (server's and loop's)
 * ```
 *
 * @module
 */

import type * as net from 'node:net';
import type { EventLoop } from '../reactor/event-loop.js';
import { Server } from '../reactor/server.js';
import { checkBoolean } from '../core/validate.js';
import type { ServerOptions } from '../reactor/server.js';
import type { ServerBaseEvents } from '../reactor/callbacks.js';
import type { TypedMessage } from '../reactor/loop-member.js';
import type { LtvLayout } from '../codec/ltv-layout.js';
import type { MessageRegistry, MessageTypeRef } from '../codec/message-registry.js';
import { FramedClient } from './framed-client.js';
import type { FrameObserver, FramedMessage, FramedOwner, ReservedFrameHandler } from './framed-client.js';
import { Framing } from './framing.js';
import type { FramingOptions } from './framing.js';

/** Options of a {@link FramedServer}: the server's and the framing's, side by side. */
export interface FramedServerOptions extends ServerOptions, FramingOptions {}

/**
 * The events of a framed server: those of every server
 * ({@link ServerBaseEvents}, with framed clients), and `'message'`, each
 * decoded message when there is no `onMessage` or `onRawFrame` handler (a
 * fault of the framing layer closes the client with `'protocol-error'`,
 * `'frame-timeout'` or `'handler-error'` and its coded error, reported by
 * `'close'`). A listener's return value is ignored (it does not count as
 * pending, as an `onMessage` promise does); a throw or a rejection closes
 * that client with `'handler-error'`.
 */
export interface FramedServerEvents<C extends FramedClient = FramedClient> extends ServerBaseEvents<C> {
  message: (client: C, message: FramedMessage) => void;
}

/**
 * A TCP server of framed clients (see the module comment).
 *
 * ```ts
 * const registry = new MessageRegistry();
 * registry.register(1, 'Chat', 'json');
 * const server = await new FramedServer(loop, { port: 7000, registry }).listen();
 * server.on('message', (client, message) => {
 *   if (message.name === 'Chat') server.broadcast({ type: 'Chat', payload: message.payload }, { except: client });
 * });
 * ```
 */
export class FramedServer extends Server<FramedClient, FramedServerEvents> implements FramedOwner {
  /** @internal The framing every client shares. */
  readonly _framing: Framing;

  /**
   * Validates every option (the server's and the framing's); binds nothing
   * (see `listen()`).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(loop: EventLoop, options: FramedServerOptions = {}) {
    super(loop, options);
    this._framing = new Framing(options, 'server');
  }

  /** The message registry, or null for raw frames (a numeric type and bytes). */
  get registry(): MessageRegistry | null {
    return this._framing.registry;
  }

  /** The frame layout (after authentication). */
  get layout(): LtvLayout {
    return this._framing.layout;
  }

  /**
   * Whether clients must be marked authenticated before frames above
   * `preAuthMaxFrameLength` are accepted (see
   * {@link FramingOptions.requireAuthentication}). Settable; a client's limit
   * is fixed when its first byte arrives. The session binding turns it on.
   */
  get requireAuthentication(): boolean {
    return this._framing.requireAuthentication;
  }

  /** @throws NetloopError `NETLOOP_INVALID_OPTION` unless `value` is a boolean. */
  set requireAuthentication(value: boolean) {
    this._framing.requireAuthentication = checkBoolean('requireAuthentication', value);
  }

  /**
   * Encodes one message into the bytes of one frame, with every check
   * `client.send` makes (a registered type id or name; without a registry a
   * numeric type and bytes). The bytes can be written to any client of this
   * server (`client.write`), as a broadcast does.
   *
   * @throws NetloopError `NETLOOP_UNKNOWN_TYPE`, `NETLOOP_INVALID_VALUE`, `NETLOOP_FRAME_TOO_LARGE`.
   */
  encodeMessage(type: MessageTypeRef, payload: unknown): Buffer {
    return this._framing.encodeMessage(type, payload);
  }

  /**
   * Adds a frame observer: `observer(client, type, size)` sees every frame a
   * client of this server sends as it is decoded, before it is dispatched,
   * whatever handles it and even while it waits behind slow handlers. For
   * layers that count or inspect messages (the session binding's heartbeats
   * and message counts). With none, a frame costs one field check.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` unless `observer` is a function.
   */
  addFrameObserver(observer: FrameObserver): this {
    this._framing.addFrameObserver(observer);
    return this;
  }

  /** Removes a frame observer added by {@link FramedServer.addFrameObserver}. */
  removeFrameObserver(observer: FrameObserver): this {
    this._framing.removeFrameObserver(observer);
    return this;
  }


  /**
   * Reserves frame type `type` for a protocol of its own (netloop's
   * request/response, keep-alive pings and framed streams use this): its
   * frames go to `handler` instead of the message path, and
   * `client.sendRaw(type, ...)` sends them whatever the registry holds.
   * Returns the function that gives the type back.
   *
   * @throws NetloopError `NETLOOP_DUPLICATE_TYPE` for a type the registry
   *   holds or already reserved; `NETLOOP_INVALID_OPTION` for a type the
   *   layout cannot carry.
   */
  reserveType(type: number, handler: ReservedFrameHandler): () => void {
    return this._framing.reserveType(type, handler);
  }
  /** Makes a {@link FramedClient} of each accepted socket. */
  protected override _createClient(socket: net.Socket): FramedClient {
    return new FramedClient(this.loop, socket, this, this._cfg);
  }

  /** @internal A decoded message, for the `'message'` listeners (no `onMessage` or `onRawFrame`). */
  _emitMessage(client: FramedClient, message: FramedMessage): void {
    this.emit('message', client, message);
  }

  /** @internal Encodes a typed message once for a broadcast to this server's clients. */
  _encodeMessage(message: TypedMessage): Uint8Array {
    return this._framing.encodeMessage(message.type, message.payload);
  }
}
