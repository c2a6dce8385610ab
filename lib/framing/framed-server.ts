/**
 * A server whose clients speak LTV frames: a reactor {@link Server} whose
 * client factory makes {@link FramedClient}s, all sharing one
 * {@link Framing} (layout, registry, encoder, limits, handlers, hooks).
 * Messages are handed to typed handlers (`handle(name, fn)`), `onMessage`
 * (or `onRawFrame`), or the `'message'` event instead of raw `'data'`;
 * `client.send()` encodes. The server is typed by its registry's message map
 * `M` ({@link RawFrames} without a registry).
 *
 * ```
 *   new FramedServer(loop, { port, registry, onMessage, ...limits })
 *     Server (accept, limits, close)  ──_createClient──▶ FramedClient (decodes, sends)
 *     Framing (shared)                ◀── read by every client through its owner
 *     frame observers                 ──▶ each frame's (type, size), before dispatch
 *     _encodeMessage                  ──▶ one frame per broadcast (server's and loop's)
 *     _writeMessage (hooks only)      ──▶ each receiver's outbound hooks, then that frame
 * ```
 *
 * Where a frame goes, in this order (the first that applies takes it):
 *
 * ```
 *   frame observers (see every frame, take none)
 *   1. a reserved type (reserveType)   its handler, raw
 *   2. onRawFrame                      every frame, raw
 *   3. decode (registry) ──▶ inbound hooks (each may pass on, change, drop, or hold)
 *   4. handle(name, fn)                the typed handler of its type
 *   5. onMessage                       every other message
 *   6. 'message' event                 when there is no onMessage
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
import type { MessageMap, MessageName, PayloadOf, MessageRegistry, MessageType, MessageTypeRef } from '../codec/message-registry.js';
import type { BroadcastOptions } from '../reactor/broadcast.js';
import type { LoopClient } from '../reactor/loop-member.js';
import { FramedClient } from './framed-client.js';
import type {
  AnyInboundHook,
  AnyOutboundHook,
  AnyFramedClient,
  AnyFramedMap,
  AnyTypedHandler,
  FrameObserver,
  LoosePayload,
  LooseRef,
  FramedOwner,
  InboundHook,
  OutboundHook,
  ReceivedMessage,
  ReservedFrameHandler,
  TypedHandler,
} from './framed-client.js';
import { Framing } from './framing.js';
import type { FrameCount } from './frame-counts.js';
import type { FramingOptions } from './framing.js';
import type { FramedMessage, MessageFor, RawFrames } from './messages.js';

/** Options of a {@link FramedServer}: the server's and the framing's, side by side. */
export interface FramedServerOptions<M extends MessageMap = RawFrames> extends ServerOptions, FramingOptions<M> {}

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
export interface FramedServerEvents<M extends MessageMap = RawFrames> extends ServerBaseEvents<FramedClient<M>> {
  message: (client: FramedClient<M>, message: FramedMessage<M>) => void;
}

/**
 * A TCP server of framed clients (see the module comment), typed by the
 * message map of its registry.
 *
 * ```ts
 * const registry = new MessageRegistry().register(1, 'Login', json<Login>()).register(2, 'Chat', json<Chat>());
 * const server = await new FramedServer(loop, { port: 7000, registry }).listen();
 * server.handle('Login', (client, login) => client.markAuthenticated());   // login: Login
 * server.handle('Chat', (client, chat) => {                                  // chat: Chat
 *   server.broadcast({ type: 'Chat', payload: chat }, { except: client });
 * });
 * ```
 */
export class FramedServer<M extends MessageMap = RawFrames> extends Server<FramedClient<M>, FramedServerEvents<M>> implements FramedOwner {
  /** @internal The framing every client shares. */
  readonly _framing: Framing;

  /**
   * Validates every option (the server's and the framing's); binds nothing
   * (see `listen()`).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(loop: EventLoop, options: FramedServerOptions<M> = {}) {
    super(loop, options);
    this._framing = new Framing(options as FramingOptions<MessageMap>, 'server');
    // Every frame counted by type is added to the loop's totals too (loop.stats().counters).
    this._framing._counts.totals = loop._counters;
  }

  /** The message registry, or null for raw frames (a numeric type and bytes). */
  get registry(): MessageRegistry<M> | null {
    return this._framing.registry as MessageRegistry<M> | null;
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
  encodeMessage<N extends MessageName<M>>(name: N, payload: PayloadOf<M, N>): Buffer;
  encodeMessage<T>(type: MessageType<T>, payload: T): Buffer;
  encodeMessage(type: LooseRef<M>, payload: LoosePayload<M>): Buffer;
  encodeMessage(type: MessageTypeRef, payload: unknown): Buffer {
    return this._framing.encodeMessage(type, payload);
  }

  /**
   * Sends one message to every writable client (but those in `except`, and
   * those `filter` refuses), encoded once: bytes as they are, or a typed
   * message (`{ type: 'Chat', payload }`, typed by the registry). Each
   * receiver's outbound hooks see it first, when there are any. Returns how
   * many clients queued it.
   *
   * @throws NetloopError for a bad type or payload, before anything is queued
   *   (see {@link FramedServer.encodeMessage}).
   */
  override broadcast(message: Uint8Array | string | MessageFor<M>, options?: BroadcastOptions<FramedClient<M>>): number {
    return super.broadcast(message, options);
  }

  /**
   * Registers the handler of the messages named `name` (a registered name):
   * it receives the client, the payload (typed by the registry, no cast) and
   * the whole message. The message is made only for a handler that can name
   * it: one declared with one or two parameters (its `length`) is called
   * with the payload alone, which spares the message object (and, for a JSON
   * or UTF-8 payload, the view of its bytes); declare the third parameter,
   * or a rest parameter, to get it. Its return value is counted as
   * `onMessage`'s is: a promise keeps the message pending (read
   * backpressure) until it settles;
   * a throw or a rejection closes that client with `'handler-error'`. One
   * handler per type; the messages of types without one go to `onMessage`,
   * or to the `'message'` event (see the module comment for the order).
   *
   * @throws NetloopError `NETLOOP_UNKNOWN_TYPE` for a name the registry does
   *   not hold; `NETLOOP_DUPLICATE_TYPE` when the type has a handler already;
   *   `NETLOOP_INVALID_OPTION` without a registry or with `onRawFrame`.
   */
  handle<N extends MessageName<M>>(name: N, handler: TypedHandler<M, N>): this {
    this._framing.handle(name, handler as unknown as AnyTypedHandler);
    return this;
  }

  /** Removes the handler of `name` (its messages go to `onMessage` or `'message'` again); false when it had none. */
  unhandle(name: MessageName<M>): boolean {
    return this._framing.unhandle(name);
  }

  /**
   * Adds an inbound message hook: it sees every decoded message of every
   * client, in each client's order, before its handler, and passes it on
   * (returns nothing), changes it (returns another message), drops it
   * (returns `null`), or holds it and the client's later messages (returns a
   * promise of one of these). Hooks run in the order they were added; a
   * throw or a rejection closes that client with `'handler-error'`. Reserved
   * types and `onRawFrame` frames are not messages: hooks do not see them.
   * With no hook, a message costs one field check.
   *
   * ```ts
   * server.addInboundHook((client, message) =>
   *   message.name === 'Login' || sessions.sessionOf(client) !== undefined ? undefined : null);
   * ```
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` unless `hook` is a function.
   */
  addInboundHook(hook: InboundHook<M>): this {
    this._framing.addInboundHook(hook as unknown as AnyInboundHook);
    return this;
  }

  /** Removes an inbound hook (the last one added, when added twice). */
  removeInboundHook(hook: InboundHook<M>): this {
    this._framing.removeInboundHook(hook as unknown as AnyInboundHook);
    return this;
  }

  /**
   * Adds an outbound message hook: it sees every message sent to a client
   * (`client.send`, and each receiver of a typed `broadcast`) before it is
   * encoded, and passes it on, changes it, drops it or holds it (and the
   * client's later messages) as an inbound hook does. Raw frames
   * (`sendRaw`, byte broadcasts, `write`) are not messages: hooks do not see
   * them, and they are not held behind a pending hook. With no hook, a send
   * costs one field check.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` unless `hook` is a function.
   */
  addOutboundHook(hook: OutboundHook<M>): this {
    this._framing.addOutboundHook(hook as unknown as AnyOutboundHook);
    return this;
  }

  /** Removes an outbound hook (the last one added, when added twice). */
  removeOutboundHook(hook: OutboundHook<M>): this {
    this._framing.removeOutboundHook(hook as unknown as AnyOutboundHook);
    return this;
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
  protected override _createClient(socket: net.Socket): FramedClient<M> {
    return new FramedClient<M>(this.loop, socket, this, this._cfg);
  }

  /**
   * Frames received from and sent to this server's clients, by frame type,
   * since the server was made: one entry per type seen, named by the
   * registry (a type it does not hold by its id in decimal), then `'other'`
   * for the frames of unregistered types past `maxCountedTypes`. Every
   * decoded frame counts as received (whatever handles it, reserved types
   * included); a frame counts as sent once a client's output buffer took it
   * (`send`, `sendRaw`, each receiver of a typed broadcast). Byte writes
   * (`write`, byte broadcasts) are not frames the framing knows and are not
   * counted. The counters cost the message path no allocation; this list is
   * made at each call, so read it when a metric is scraped.
   *
   * ```ts
   * for (const { name, received, sent } of server.frameCounts()) console.log(name, received, sent);
   * ```
   */
  frameCounts(): FrameCount[] {
    return this._framing.frameCounts();
  }

  /** @internal A decoded message, for the `'message'` listeners (no `onMessage` or `onRawFrame`). */
  _emitMessage(client: AnyFramedClient, message: ReceivedMessage): void {
    this.emit('message', client, message as FramedMessage<M>);
  }

  /** @internal Encodes a typed message once for a broadcast to this server's clients. */
  _encodeMessage(message: TypedMessage): Uint8Array {
    return this._framing.encodeMessage(message.type, message.payload);
  }

  /** @internal A broadcast's frame to one receiver, through its outbound hooks (null while there is none). */
  get _writeMessage(): ((client: LoopClient, message: TypedMessage, frame: Uint8Array) => boolean) | null {
    return this._framing._outboundHooks !== null ? this._framing._writeHooked : null;
  }

  /** @internal Counts a typed broadcast's frames queued to this owner's clients. */
  get _countBroadcast(): (message: TypedMessage, n: number) => void {
    return this._framing._countBroadcast;
  }
}

/** A framed server whatever its message map (for code that takes any framed server). */
export type AnyFramedServer = FramedServer<AnyFramedMap>;
