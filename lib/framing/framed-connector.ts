/**
 * A connector whose connections speak LTV frames: a reactor
 * {@link Connector} whose client factory makes {@link FramedClient}s, all
 * sharing one {@link Framing}. A connector trusts the server it chose: its
 * pre-authentication frame limit defaults to the layout's `maxFrameLength`.
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
import type { MessageRegistry, MessageTypeRef } from '../codec/message-registry.js';
import { FramedClient } from './framed-client.js';
import type { FramedMessage, FramedOwner, ReservedFrameHandler } from './framed-client.js';
import { Framing } from './framing.js';
import type { FramingOptions } from './framing.js';

/** Options of a {@link FramedConnector}: the connector's and the framing's, side by side. */
export interface FramedConnectorOptions extends ConnectorOptions, FramingOptions {}

/** The events of a framed connector: those of every connector, and `'message'` (see `FramedServerEvents`). */
export interface FramedConnectorEvents<C extends FramedClient = FramedClient> extends ConnectorBaseEvents<C> {
  message: (client: C, message: FramedMessage) => void;
}

/**
 * An outbound framed connection that (re)connects (see the module comment).
 *
 * ```ts
 * const connector = new FramedConnector(loop, { port: 7000, registry });
 * connector.on('connected', (client) => client.send('Login', { user: 'ann' }));
 * connector.on('message', (client, message) => console.log(message.name, message.payload));
 * connector.connect();
 * ```
 */
export class FramedConnector extends Connector<FramedClient, FramedConnectorEvents> implements FramedOwner {
  /** @internal The framing every connection shares. */
  readonly _framing: Framing;

  /**
   * Validates every option; connects nothing yet (see `connect()`).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(loop: EventLoop, options: FramedConnectorOptions) {
    super(loop, options);
    this._framing = new Framing(options, 'connector');
  }

  /** The message registry, or null for raw frames. */
  get registry(): MessageRegistry | null {
    return this._framing.registry;
  }

  /** Encodes one message into the bytes of one frame (see `FramedServer.encodeMessage`). */
  encodeMessage(type: MessageTypeRef, payload: unknown): Buffer {
    return this._framing.encodeMessage(type, payload);
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
  protected override _createClient(socket: net.Socket): FramedClient {
    return new FramedClient(this.loop, socket, this, this._cfg);
  }

  /** @internal A decoded message, for the `'message'` listeners. */
  _emitMessage(client: FramedClient, message: FramedMessage): void {
    this.emit('message', client, message);
  }

  /** @internal Encodes a typed message once for `loop.broadcast`. */
  _encodeMessage(message: TypedMessage): Uint8Array {
    return this._framing.encodeMessage(message.type, message.payload);
  }
}
