/**
 * The read side of a raw connection as a Node Readable: the bytes a client
 * of a raw `Server` or `Connector` reads are pushed into it, and reading
 * the socket pauses while its buffer is full.
 *
 * The owner's events carry every client's bytes; one small hub per owner
 * listens to them (`'data'`, `'end'`, `'close'`) while at least one of its
 * clients has a Readable, and hands each chunk to that client's Readable.
 *
 * ```
 *   owner 'data' (client, chunk) ──▶ hub: readables.get(client)?.push(chunk)
 *        push() false ──▶ client._hold()    (reading paused; counted, so it composes
 *        _read()      ──▶ client._unhold()   with pause() and the other holds)
 *   owner 'end' (FIN, halfOpen) or 'close' with 'peer-closed' ──▶ push(null): the end
 *   owner 'close' with any other reason ──▶ destroy(NETLOOP_STREAM_INTERRUPTED)
 *   destroyed before its end (an error downstream, a signal, destroy())
 *        ──▶ the client is destroyed ('force-close', the coded error): the peer's
 *            sender sees its connection cut
 * ```
 *
 * @module
 */

import { Readable } from 'node:stream';
import type { Client } from '../reactor/client.js';
import type { CloseReason } from '../reactor/close-reason.js';
import { Server } from '../reactor/server.js';
import { Connector } from '../reactor/connector.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import { FramedClient } from '../framing/framed-client.js';
import { abortedError, checkSignal, failStream, interruptedError, transferError } from './stream-options.js';
import { abortOnSignal, resetClient } from './stream-send.js';

/** Options of {@link createClientReadable}. */
export interface ClientReadableOptions {
  /** Bytes the Readable buffers before reading the socket pauses. Default 65,536; in [1, 2^30]. */
  highWaterMark?: number;
  /** Aborts the read: the Readable fails with `NETLOOP_STREAM_ABORTED` and the connection is destroyed. */
  signal?: AbortSignal;
}

/** Defaults of {@link ClientReadableOptions}. */
export const CLIENT_READABLE_DEFAULTS = { highWaterMark: 64 * 1024 } as const;

/** The events of a raw owner the hub listens to (a Server's or a Connector's). */
interface RawOwnerEvents {
  on(name: 'data', fn: (client: Client, chunk: Buffer) => void): unknown;
  on(name: 'end', fn: (client: Client) => void): unknown;
  on(name: 'close', fn: (client: Client, reason: CloseReason) => void): unknown;
  off(name: 'data', fn: (client: Client, chunk: Buffer) => void): unknown;
  off(name: 'end', fn: (client: Client) => void): unknown;
  off(name: 'close', fn: (client: Client, reason: CloseReason) => void): unknown;
}

/**
 * The Readables of one owner's clients, and the owner listeners that feed
 * them (added with the first Readable, removed with the last).
 *
 * ```
 *   hubs: WeakMap<owner, Hub>    Hub { owner, readables: Map<Client, ClientReadable> }
 * ```
 */
class Hub {
  readonly readables = new Map<Client, ClientReadable>();
  readonly #owner: RawOwnerEvents;
  readonly #key: object;

  constructor(owner: RawOwnerEvents, key: object) {
    this.#owner = owner;
    this.#key = key;
  }

  add(client: Client, readable: ClientReadable): void {
    if (this.readables.size === 0) {
      this.#owner.on('data', this.#onData);
      this.#owner.on('end', this.#onEnd);
      this.#owner.on('close', this.#onClose);
    }
    this.readables.set(client, readable);
  }

  remove(client: Client, readable: ClientReadable): void {
    if (this.readables.get(client) !== readable) return;
    this.readables.delete(client);
    if (this.readables.size > 0) return;
    this.#owner.off('data', this.#onData);
    this.#owner.off('end', this.#onEnd);
    this.#owner.off('close', this.#onClose);
    hubs.delete(this.#key);
  }

  readonly #onData = (client: Client, chunk: Buffer): void => {
    this.readables.get(client)?._feed(chunk);
  };

  readonly #onEnd = (client: Client): void => {
    this.readables.get(client)?._eof();
  };

  readonly #onClose = (client: Client, reason: CloseReason): void => {
    this.readables.get(client)?._clientClosed(reason);
  };
}

const hubs = new WeakMap<object, Hub>();

/**
 * The bytes one raw client reads, as a Readable (see the module comment).
 * Made by {@link createClientReadable}.
 */
export class ClientReadable extends Readable {
  /** The client read from. */
  readonly client: Client;
  readonly #hub: Hub;
  #holding = false;
  #eofSeen = false;
  #bytes = 0;

  /** @internal Made by {@link createClientReadable}. */
  constructor(client: Client, hub: Hub, highWaterMark: number) {
    super({ highWaterMark });
    this.client = client;
    this.#hub = hub;
  }

  /** Bytes read from the client so far. */
  get bytesRead(): number {
    return this.#bytes;
  }

  /** @internal Node asks for more: release the hold on the client's reading. */
  override _read(): void {
    if (this.#holding) {
      this.#holding = false;
      this.client._unhold();
    }
  }

  /** @internal Node destroys the stream: release what it holds, and tell the peer when it was cut before its end. */
  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.#hub.remove(this.client, this);
    if (this.#holding) {
      this.#holding = false;
      this.client._unhold();
    }
    // Cut before the peer's end: a raw byte stream can only say so by closing.
    if (!this.#eofSeen && !this.client.closed) resetClient(this.client, error === null ? abortedError('local') : transferError(error));
    cb(error);
  }

  /** @internal A chunk the client read. */
  _feed(chunk: Buffer): void {
    if (this.#eofSeen || this.destroyed) return;
    this.#bytes += chunk.length;
    if (!this.push(chunk) && !this.#holding) {
      this.#holding = true;
      this.client._hold();
    }
  }

  /** @internal The peer sent FIN: the end of the stream. */
  _eof(): void {
    if (this.#eofSeen || this.destroyed) return;
    this.#eofSeen = true;
    this.#hub.remove(this.client, this);
    this.push(null);
  }

  /** @internal The client closed: the end after the peer's FIN, a cut stream otherwise. */
  _clientClosed(reason: CloseReason): void {
    if (reason === 'peer-closed') this._eof();
    else if (!this.#eofSeen && !this.destroyed) {
      this.#eofSeen = true;
      failStream(this, interruptedError(this.client));
    }
  }
}

/**
 * The bytes `client` reads from now on, as a Readable (see the module
 * comment): `await pipeline(createClientReadable(client), fs.createWriteStream(path))`.
 * Make it when the client connects (the owner's `'connection'` or
 * `'connected'` event): bytes read before are not in it. The owner's
 * `'data'` listeners still see every chunk; leave that client's bytes to the
 * Readable. It ends at the peer's FIN; any other close fails it with
 * `NETLOOP_STREAM_INTERRUPTED` (`details.reason`). One Readable per client
 * at a time.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option, a framed
 *   client, or a client that has a Readable already; `NETLOOP_CLIENT_CLOSED`
 *   for a client closing or closed.
 */
export function createClientReadable(client: Client, options: ClientReadableOptions = {}): ClientReadable {
  if (typeof options !== 'object' || options === null) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'options must be an object', { details: { option: 'options' } });
  }
  const highWaterMark = checkInteger('highWaterMark', options.highWaterMark ?? CLIENT_READABLE_DEFAULTS.highWaterMark, 1, 2 ** 30);
  checkSignal(options.signal);
  const owner = client._owner;
  if (client instanceof FramedClient || !(owner instanceof Server || owner instanceof Connector)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, "only a raw server's or connector's client reads bytes: a framed client's streams are FramedStreams", {
      details: { option: 'client', clientId: client.id },
    });
  }
  if (client.closing || client.closed) {
    throw new NetloopError(ErrorCode.CLIENT_CLOSED, `cannot read client ${client.id}: it is ${client.closed ? 'closed' : 'closing'}`, {
      details: { clientId: client.id, reason: client._closeReason },
    });
  }
  let hub = hubs.get(owner);
  if (hub === undefined) {
    hub = new Hub(owner as unknown as RawOwnerEvents, owner);
    hubs.set(owner, hub);
  }
  if (hub.readables.has(client)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `client ${client.id} has a Readable already`, { details: { option: 'client', clientId: client.id } });
  }
  const readable = new ClientReadable(client, hub, highWaterMark);
  hub.add(client, readable);
  abortOnSignal(readable, options.signal);
  return readable;
}
