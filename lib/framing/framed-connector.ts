/**
 * A connector whose connections speak LTV frames: a reactor
 * {@link Connector} whose client factory makes {@link FramedClient}s, all
 * sharing one {@link Framing}. A connector trusts the server it chose: its
 * pre-authentication frame limit defaults to the layout's `maxFrameLength`.
 * Typed by its registry's message map, with typed handlers and message
 * hooks, as a `FramedServer` is (the same order of dispatch).
 *
 * ```
 *   new FramedConnector(loop, { port, registry, onMessage, ...limits }).connect()
 *     Connector (attempts, backoff, close) ──_createClient──▶ FramedClient
 * ```
 *
 * @module
 */

import type * as net from 'node:net';
import type { EventLoop } from '../reactor/event-loop.js';
import { Connector } from '../reactor/connector.js';
import type { ConnectorOptions } from '../reactor/connector.js';
import type { ConnectorBaseEvents } from '../reactor/callbacks.js';
import type { TypedMessage } from '../reactor/loop-member.js';
import type { MessageMap, MessageName, PayloadOf, MessageRegistry, MessageType, MessageTypeRef } from '../codec/message-registry.js';
import type { LoopClient } from '../reactor/loop-member.js';
import { FramedClient } from './framed-client.js';
import type {
  AnyFramedClient,
  AnyFramedMap,
  AnyInboundHook,
  AnyOutboundHook,
  AnyTypedHandler,
  FramedOwner,
  InboundHook,
  LoosePayload,
  LooseRef,
  OutboundHook,
  ReceivedMessage,
  ReservedFrameHandler,
  TypedHandler,
} from './framed-client.js';
import { Framing } from './framing.js';
import type { FrameCount } from './frame-counts.js';
import type { FramingOptions } from './framing.js';
import type { FramedMessage, RawFrames } from './messages.js';

/** Options of a {@link FramedConnector}: the connector's and the framing's, side by side. */
export interface FramedConnectorOptions<M extends MessageMap = RawFrames> extends ConnectorOptions, FramingOptions<M> {}

/** The events of a framed connector: those of every connector, and `'message'` (see `FramedServerEvents`). */
export interface FramedConnectorEvents<M extends MessageMap = RawFrames> extends ConnectorBaseEvents<FramedClient<M>> {
  message: (client: FramedClient<M>, message: FramedMessage<M>) => void;
}

/**
 * An outbound framed connection that (re)connects (see the module comment),
 * typed by the message map of its registry.
 *
 * ```ts
 * const connector = new FramedConnector(loop, { port: 7000, registry });
 * connector.on('connected', (client) => client.send('Login', { user: 'ann' }));
 * connector.handle('Chat', (client, chat) => console.log(chat.text));
 * connector.connect();
 * ```
 */
export class FramedConnector<M extends MessageMap = RawFrames> extends Connector<FramedClient<M>, FramedConnectorEvents<M>> implements FramedOwner {
  /** @internal The framing every connection shares. */
  readonly _framing: Framing;

  /**
   * Validates every option; connects nothing yet (see `connect()`).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(loop: EventLoop, options: FramedConnectorOptions<M>) {
    super(loop, options);
    this._framing = new Framing(options as FramingOptions<MessageMap>, 'connector');
    // Every frame counted by type is added to the loop's totals too (loop.stats().counters).
    this._framing._counts.totals = loop._counters;
  }

  /** The message registry, or null for raw frames. */
  get registry(): MessageRegistry<M> | null {
    return this._framing.registry as MessageRegistry<M> | null;
  }

  /** Encodes one message into the bytes of one frame (see `FramedServer.encodeMessage`). */
  encodeMessage<N extends MessageName<M>>(name: N, payload: PayloadOf<M, N>): Buffer;
  encodeMessage<T>(type: MessageType<T>, payload: T): Buffer;
  encodeMessage(type: LooseRef<M>, payload: LoosePayload<M>): Buffer;
  encodeMessage(type: MessageTypeRef, payload: unknown): Buffer {
    return this._framing.encodeMessage(type, payload);
  }

  /** Registers the handler of the messages named `name` (see `FramedServer.handle`). */
  handle<N extends MessageName<M>>(name: N, handler: TypedHandler<M, N>): this {
    this._framing.handle(name, handler as unknown as AnyTypedHandler);
    return this;
  }

  /** Removes the handler of `name`; false when it had none. */
  unhandle(name: MessageName<M>): boolean {
    return this._framing.unhandle(name);
  }

  /** Adds an inbound message hook (see `FramedServer.addInboundHook`). */
  addInboundHook(hook: InboundHook<M>): this {
    this._framing.addInboundHook(hook as unknown as AnyInboundHook);
    return this;
  }

  /** Removes an inbound hook (the last one added, when added twice). */
  removeInboundHook(hook: InboundHook<M>): this {
    this._framing.removeInboundHook(hook as unknown as AnyInboundHook);
    return this;
  }

  /** Adds an outbound message hook (see `FramedServer.addOutboundHook`). */
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
  /** Makes a {@link FramedClient} of each connected socket. */
  protected override _createClient(socket: net.Socket): FramedClient<M> {
    return new FramedClient<M>(this.loop, socket, this, this._cfg);
  }

  /**
   * Frames received from and sent to this connector's connections, by frame
   * type, since the connector was made: one entry per type seen, named by the
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
   * for (const { name, received, sent } of connector.frameCounts()) console.log(name, received, sent);
   * ```
   */
  frameCounts(): FrameCount[] {
    return this._framing.frameCounts();
  }

  /** @internal A decoded message, for the `'message'` listeners. */
  _emitMessage(client: AnyFramedClient, message: ReceivedMessage): void {
    this.emit('message', client, message as FramedMessage<M>);
  }

  /** @internal Encodes a typed message once for `loop.broadcast`. */
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

/** A framed connector whatever its message map (for code that takes any framed connector). */
export type AnyFramedConnector = FramedConnector<AnyFramedMap>;
