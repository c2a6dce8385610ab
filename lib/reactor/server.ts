/**
 * A listening TCP server of the reactor: every accepted socket becomes a
 * {@link Client}, up to `maxConnections`; its bytes and its close are the
 * server's events.
 *
 * ```
 *   net.Server (allowHalfOpen, noDelay) ── accept ──▶ clientCount < max ? new Client : destroy + 'drop'
 *   Client ── chunk ──▶ server._clientData ──▶ 'data' (client, chunk)
 *   Client ── close ──▶ server._clientClosed ──▶ 'close' (client, reason, error?)   exactly once
 *   clients: counted here, held by the loop (this server's are those whose owner it is)
 * ```
 *
 * Application code is never trusted not to fail. Every listener of an event
 * that comes from the network runs under a guard: a throw, or a returned
 * promise that rejects (an `async` listener), closes only the client it
 * concerns (`'handler-error'`, `NETLOOP_HANDLER_ERROR` with `cause`); a
 * fault that concerns no open client goes to the `'error'` path, which
 * warns (`process.emitWarning`) when nobody listens. The server is a
 * {@link TypedEmitter} (its events are typed by `ServerEvents` in
 * `callbacks.ts`): every listener is called in turn under the emitter's
 * guard, so one that fails does not keep the next from running, and a lone
 * listener (the raw `'data'` path) is called directly.
 *
 * @module
 */

import * as net from 'node:net';
import type { EventLoop, CloseOptions } from './event-loop.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, closeTimeoutError } from './event-loop.js';
import { Client, checkReadPauseMarks, routeListenerFault } from './client.js';
import type { ClientConfig, ClientOwner, ReadPauseMarks } from './client.js';
import type { CloseReason } from './close-reason.js';
import { ErrorCode, NetloopError, toSocketError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkNumber } from '../core/validate.js';
import { FramedProtocol } from '../framing/framed-protocol.js';
import type { FramingOptions } from '../framing/framed-protocol.js';
import { createListener } from './tls-transport.js';
import type { TlsServerOptions } from './tls-transport.js';
import { noteAccept, noteDrop, noteTlsError } from './diagnostics.js';
import { TypedEmitter, reportFault } from '../core/emitter.js';
import type { DropInfo, ServerEvents } from './callbacks.js';
import type { FramedMessage } from '../framing/framed-protocol.js';
import { checkNotice, checkSettle, sendNotice, settleAll } from './graceful-close.js';
import type { CloseNotice } from './graceful-close.js';
import type { Flushable } from '../core/flush-on-signals.js';
import type { MessageTypeRef } from '../codec/message-registry.js';

/** A soft output limit: close a client whose queued output stays at or above `bytes` for `forMs` (Redis's pubsub soft limit). */
export interface SoftOutputLimit {
  /** Queued bytes at or above which the clock starts. */
  bytes: number;
  /** How long (ms) the output may stay at or above `bytes`. */
  forMs: number;
}

/** The per-client limits shared by {@link ServerOptions} and `ConnectorOptions`. */
export interface ClientLimitOptions {
  /** Set TCP_NODELAY on every socket; default true. */
  noDelay?: boolean;
  /** Hard limit on a client's queued output in bytes; an append past it closes the client (`'output-limit'`). Default 32 MiB. */
  maxOutputBytes?: number;
  /** Soft limit on queued output; default `{ bytes: min(8 MiB, maxOutputBytes), forMs: 60_000 }`; `null` disables it. */
  softOutputLimit?: SoftOutputLimit | null;
  /** Read-idle timeout in ms; 0 disables it. Default 300_000 for servers, 0 for connectors. */
  idleTimeoutMs?: number;
  /** Keep writing after the peer's FIN (emits `'end'`); default false: flush what is queued, then close. */
  halfOpen?: boolean;
  /** How long a graceful close (flush, FIN, the peer's FIN) may take before the socket is destroyed; default 30_000 ms. */
  shutdownTimeoutMs?: number;
  /**
   * Backpressure from a client's output to its input, for echoes and relays
   * that answer a client with what it sends: reading the client pauses while
   * its queued output is `high` bytes or more, and resumes once it drained
   * to `low` or fewer (or entirely). A client that sends without reading is
   * then held by TCP flow control instead of being closed at the hard
   * output limit. `high` at most `maxOutputBytes`, `low` below `high`.
   * Default `null` (off: such a client meets the output limits). Between
   * two clients, see `linkBackpressure`.
   */
  readPauseOutputBytes?: ReadPauseMarks | null;
}

/** Options of {@link EventLoop.listen}. */
export interface ServerOptions extends ClientLimitOptions {
  /** Address to bind; default `'127.0.0.1'`. */
  host?: string;
  /** Port; default 0 (an ephemeral port, see {@link Server.port}). */
  port?: number;
  /** Listen backlog; default 511. */
  backlog?: number;
  /** Live clients beyond which new sockets are destroyed and `'drop'` is emitted; default 10_000. */
  maxConnections?: number;
  /**
   * LTV framing for every client (see {@link FramingOptions}): messages are
   * decoded and handed to `framing.onMessage` (or the `'message'` event)
   * instead of raw `'data'`, and `client.send()` encodes. Default: raw bytes.
   */
  framing?: FramingOptions;
  /** Serve TLS through `node:tls` with these options (`key`, `cert`, ...); default: plain TCP. See {@link TlsServerOptions}. */
  tls?: TlsServerOptions | null;
}

/** Defaults of the per-client limits. */
export const CLIENT_DEFAULTS = {
  noDelay: true,
  maxOutputBytes: 32 * 1024 * 1024,
  softOutputLimit: { bytes: 8 * 1024 * 1024, forMs: 60_000 },
  halfOpen: false,
  shutdownTimeoutMs: 30_000,
} as const;
/** Default read-idle timeout of a server's clients. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
const MAX_MS = 2 ** 31 - 1;
const MAX_OUTPUT = 2 ** 40;

/** @internal Validates the per-client limits into a {@link ClientConfig}. */
export function clientConfig(options: ClientLimitOptions, defaultIdleMs: number): ClientConfig {
  const maxOutputBytes = checkInteger('maxOutputBytes', options.maxOutputBytes ?? CLIENT_DEFAULTS.maxOutputBytes, 1, MAX_OUTPUT);
  // The default soft limit never sits above a smaller hard limit given by the user.
  const soft =
    options.softOutputLimit === undefined
      ? { ...CLIENT_DEFAULTS.softOutputLimit, bytes: Math.min(CLIENT_DEFAULTS.softOutputLimit.bytes, maxOutputBytes) }
      : options.softOutputLimit;
  let softOutputBytes = 0;
  let softOutputForMs = 0;
  if (soft !== null) {
    if (typeof soft !== 'object') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'softOutputLimit must be { bytes, forMs } or null', {
        details: { option: 'softOutputLimit' },
      });
    }
    softOutputBytes = checkInteger('softOutputLimit.bytes', soft.bytes, 1, maxOutputBytes);
    softOutputForMs = checkNumber('softOutputLimit.forMs', soft.forMs, 0, MAX_MS);
  }
  const readPause =
    options.readPauseOutputBytes === undefined || options.readPauseOutputBytes === null
      ? null
      : checkReadPauseMarks('readPauseOutputBytes', options.readPauseOutputBytes, maxOutputBytes);
  const readPauseHigh = readPause === null ? Number.POSITIVE_INFINITY : readPause.high;
  return {
    maxOutputBytes,
    softOutputBytes,
    softOutputForMs,
    idleTimeoutMs: checkNumber('idleTimeoutMs', options.idleTimeoutMs ?? defaultIdleMs, 0, MAX_MS),
    halfOpen: checkBoolean('halfOpen', options.halfOpen ?? CLIENT_DEFAULTS.halfOpen),
    shutdownTimeoutMs: checkNumber('shutdownTimeoutMs', options.shutdownTimeoutMs ?? CLIENT_DEFAULTS.shutdownTimeoutMs, 0, MAX_MS),
    readPauseHigh,
    readPauseLow: readPause === null ? 0 : readPause.low,
    watchBytes: Math.min(softOutputBytes > 0 ? softOutputBytes : Number.POSITIVE_INFINITY, readPauseHigh),
  };
}

/** What {@link Server.broadcast} and `EventLoop.broadcast` send: raw bytes (a string is UTF-8), or a message for the receivers' framing. */
export type BroadcastMessage = Uint8Array | string | { type: MessageTypeRef; payload: unknown };

/** Options of {@link Server.broadcast} and `EventLoop.broadcast`. */
export interface BroadcastOptions {
  /** A client, or clients, left out (the sender, typically). */
  except?: Client | Iterable<Client> | null;
  /** Only the clients for which this returns true. */
  filter?: ((client: Client) => boolean) | null;
}

/**
 * @internal Sends `message` to every writable client `clients()` lists that
 * passes `options`: the bytes are made once (per distinct framing, for a
 * framed message: `framingOf` names a client's) and queued by reference to
 * each; a client closing or closed is skipped. Returns how many clients
 * queued it. Arguments are checked first: a mistake throws whatever the
 * clients' states.
 */
export function broadcastTo(
  clients: () => Iterable<Client>,
  message: BroadcastMessage,
  options: BroadcastOptions,
  framingOf: (client: Client) => FramedProtocol | null,
  known: FramedProtocol | null,
): number {
  let raw: Buffer | null = null;
  let framed: { type: MessageTypeRef; payload: unknown } | null = null;
  if (typeof message === 'string') raw = Buffer.from(message, 'utf8');
  else if (message instanceof Uint8Array) raw = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  else if (typeof message === 'object' && message !== null && (typeof message.type === 'number' || typeof message.type === 'string')) framed = message;
  else {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'broadcast takes bytes, a string or { type, payload }', {
      details: { got: message === null ? 'null' : typeof message },
    });
  }
  if (typeof options !== 'object' || options === null) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'broadcast options must be an object', { details: { option: 'options' } });
  }
  const except = options.except ?? null;
  const filter = options.filter ?? null;
  if (filter !== null && typeof filter !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'broadcast filter must be a function', { details: { option: 'filter' } });
  }
  let skipOne: Client | null = null;
  let skip: Set<Client> | null = null;
  if (except instanceof Client) skipOne = except;
  else if (except !== null) {
    if (typeof (except as Iterable<Client>)[Symbol.iterator] !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'broadcast except must be a client or clients', { details: { option: 'except' } });
    }
    skip = new Set(except);
  }
  // One frame per framing: the first up front, the others on first need.
  let lastFraming: FramedProtocol | null = framed === null ? null : known;
  let lastFrame: Buffer | null = lastFraming === null ? null : encodeFor(lastFraming, framed!);
  let frames: Map<FramedProtocol, Buffer> | null = null;
  if (framed !== null && lastFraming === null) {
    // Encoded before any client is sent to, so that a mistake (an unknown
    // type, a wrong payload) throws before anything is queued: with the
    // server's framing (whoever would receive), or the first framed client's.
    for (const c of clients()) {
      const f = framingOf(c);
      if (f !== null) {
        lastFraming = f;
        lastFrame = encodeFor(f, framed);
        break;
      }
    }
  }
  let n = 0;
  for (const c of clients()) {
    if (!c.writable || c === skipOne || (skip !== null && skip.has(c)) || (filter !== null && !filter(c))) continue;
    let bytes = raw;
    if (framed !== null) {
      const f = framingOf(c);
      if (f === null) continue;
      if (f !== lastFraming) {
        frames ??= new Map<FramedProtocol, Buffer>([[lastFraming!, lastFrame!]]);
        let b = frames.get(f);
        if (b === undefined) frames.set(f, (b = encodeFor(f, framed)));
        lastFraming = f;
        lastFrame = b;
      }
      bytes = lastFrame;
    }
    if (c.write(bytes!)) n++;
  }
  return n;
}

/** One frame of `message` through `framing` (its registry, then its encoder), with every check `send` makes. */
function encodeFor(framing: FramedProtocol, message: { type: MessageTypeRef; payload: unknown }): Buffer {
  const registry = framing.registry;
  if (registry !== null) {
    const encoded = registry.encode(message.type, message.payload);
    return framing.encoder.encode(encoded.id, encoded.value);
  }
  if (typeof message.type !== 'number') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, a framed broadcast takes a numeric type id', {
      details: { type: typeof message.type },
    });
  }
  if (!(message.payload instanceof Uint8Array)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, a framed broadcast takes bytes as its payload', {
      details: { got: message.payload === null ? 'null' : typeof message.payload },
    });
  }
  return framing.encoder.encode(message.type, message.payload);
}

/**
 * A listening server; created by {@link EventLoop.listen}.
 *
 * Events:
 * - `'connection'` `(client)`: a socket was accepted;
 * - `'data'` `(client, chunk: Buffer)`: raw bytes (when no framing is attached to the client);
 * - `'end'` `(client)`: the peer sent FIN and `halfOpen` is set (the client stays writable);
 * - `'close'` `(client, reason, error?)`: exactly once per client;
 * - `'drop'` `(info: DropInfo)`: a socket beyond `maxConnections` was destroyed;
 * - `'message'` `(client, message: FramedMessage)`: a decoded message, with the
 *   `framing` option and no `framing.onMessage` (a fault of the framing layer
 *   closes the client with `'protocol-error'`, `'frame-timeout'` or
 *   `'handler-error'` and its coded error, reported by `'close'`);
 * - `'error'` `(NetloopError)`: an accept error (emitted only when listened
 *   for), or a `NETLOOP_HANDLER_ERROR` (`cause`, `details.clientId`,
 *   `details.source`) for a listener or callback that failed when no open
 *   client answers for it: a `'drop'` or `'close'` listener, a close
 *   callback. Nobody listening, it becomes a process warning.
 *
 * Every listener may be `async`: a throw, or a returned promise that
 * rejects, closes only the client the event is about (`'handler-error'`,
 * `NETLOOP_HANDLER_ERROR` with the `cause`, also published on
 * `netloop:handler:error`); the process never dies of it.
 */
export class Server extends TypedEmitter<ServerEvents & { message: (client: Client, message: FramedMessage) => void }> implements ClientOwner {
  /** The loop this server belongs to. */
  readonly loop: EventLoop;
  /** @internal */
  readonly _cfg: ClientConfig;
  /** @internal The framing shared by every client, or null for raw bytes. */
  readonly _framing: FramedProtocol | null;
  readonly #net: net.Server;
  readonly #host: string;
  readonly #port: number;
  readonly #backlog: number;
  readonly #maxConnections: number;
  /**
   * Live clients of this server. The clients themselves are the loop's (one
   * map entry per connection, not one more in a set here); the server counts
   * them and picks its own out of the loop's when it needs them.
   */
  #clientCount = 0;
  #address: net.AddressInfo | null = null;
  #closing: Promise<void> | null = null;
  #emptyWaiter: (() => void) | null = null;

  /** @internal Use {@link EventLoop.listen}. */
  constructor(loop: EventLoop, options: ServerOptions) {
    super();
    this.loop = loop;
    this._cfg = clientConfig(options, DEFAULT_IDLE_TIMEOUT_MS);
    this._framing = options.framing === undefined ? null : new FramedProtocol(this, options.framing, 'server');
    this.#host = options.host ?? '127.0.0.1';
    if (typeof this.#host !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'host must be a string', { details: { option: 'host' } });
    }
    this.#port = checkInteger('port', options.port ?? 0, 0, 65535);
    this.#backlog = checkInteger('backlog', options.backlog ?? 511, 1, 65535);
    this.#maxConnections = checkInteger('maxConnections', options.maxConnections ?? 10_000, 1, 2 ** 31 - 1);
    const noDelay = checkBoolean('noDelay', options.noDelay ?? CLIENT_DEFAULTS.noDelay);
    this.#net = createListener(
      options.tls,
      noDelay,
      (socket) => this.#onConnection(socket),
      (err, socket) => noteTlsError(loop, err, socket.remoteAddress, socket.remotePort),
    );
    this.#net.on('error', (err) => {
      if (this.#address !== null && this.listenerCount('error') > 0) this.emit('error', toSocketError(err));
    });
  }

  /**
   * A listener failed: the client its event is about answers for it (see
   * the module comment); a fault no open client answers for goes to the
   * `'error'` path.
   */
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    routeListenerFault(this, fault, name, args);
  }

  /** @internal A fault no open client answers for: the `'error'` listeners, or a process warning when there are none. */
  _fault(error: NetloopError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else reportFault(error, this.constructor.name);
  }

  /** @internal A decoded message of a client, for the `'message'` listeners (the framing layer's `onMessage` absent). */
  _emitMessage(client: Client, message: FramedMessage): void {
    this.emit('message', client, message);
  }

  /** The bound address (once listening). */
  address(): net.AddressInfo {
    if (this.#address === null) {
      throw new NetloopError(ErrorCode.LOOP_CLOSED, 'the server is not listening', { details: { host: this.#host } });
    }
    return this.#address;
  }

  /** The bound port (the real one when listening on port 0). */
  get port(): number {
    return this.address().port;
  }

  /** This server's live clients. */
  get clientCount(): number {
    return this.#clientCount;
  }

  /**
   * This server's live clients, in accept order, including those closing
   * (until their close is reported); `client.writable` tells them apart.
   */
  clients(): IterableIterator<Client> {
    return this.#ownClients();
  }

  /**
   * Sends `message` to every client of this server that is open (closing
   * clients are skipped), except `options.except`, and only those passing
   * `options.filter`: raw bytes (a string is UTF-8), or `{ type, payload }`
   * encoded once through the server's framing. The same bytes are queued by
   * reference to each client (a slow one holds them until it reads, within
   * its output limits), and leave with that client's next flush.
   *
   * @returns how many clients queued it (a client past its hard output
   *   limit is not counted, and closes).
   * @throws NetloopError `NETLOOP_INVALID_VALUE` for a message that is none
   *   of these, or a framed message on a server without framing (and what
   *   `client.send` throws for a bad type or payload);
   *   `NETLOOP_INVALID_OPTION` for bad options.
   */
  broadcast(message: BroadcastMessage, options: BroadcastOptions = {}): number {
    const framing = this._framing;
    if (framing === null && typeof message === 'object' && message !== null && !(message instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a framed broadcast needs a server with the framing option', {
        details: { option: 'framing' },
      });
    }
    return broadcastTo(() => this.#ownClients(), message, options, () => framing, framing);
  }

  /** True once {@link Server.close} was called. */
  get closing(): boolean {
    return this.#closing !== null;
  }

  /**
   * Stops accepting, lets every client flush its queued output and close
   * (`'server-close'`), destroys those not done after `flushTimeoutMs`
   * (default 5000, with a `NETLOOP_CLOSE_TIMEOUT` error). With `notice`, every
   * client is sent it first; with `settle`, those stores are closed once every
   * client has closed (see {@link CloseOptions}). Resolves once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const ms = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS, 0, 2 ** 41);
    return (this.#closing ??= this.#close(ms, checkNotice(options.notice), checkSettle(options.settle)));
  }

  /** @internal Binds and listens. */
  _listen(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new NetloopError(ErrorCode.SOCKET_ERROR, `cannot listen on ${this.#host}:${this.#port}: ${err.message}`, {
            cause: err,
            details: { syscallCode: (err as NodeJS.ErrnoException).code, host: this.#host, port: this.#port },
          }),
        );
      };
      this.#net.once('error', onError);
      this.#net.listen({ host: this.#host, port: this.#port, backlog: this.#backlog }, () => {
        this.#net.off('error', onError);
        this.#address = this.#net.address() as net.AddressInfo;
        resolve();
      });
    });
  }

  /** @internal The single place raw bytes leave the reactor for the application. */
  _clientData(client: Client, chunk: Buffer): void {
    this.emit('data', client, chunk);
  }

  /** @internal */
  _clientEnd(client: Client): void {
    this.emit('end', client);
  }

  /** @internal */
  _clientClosed(client: Client, reason: CloseReason, error: NetloopError | undefined): void {
    this.#clientCount--;
    if (this.#clientCount === 0 && this.#emptyWaiter !== null) this.#emptyWaiter();
    // The client is closed: a listener's fault goes to the 'error' path, and the other listeners still run.
    this.emit('close', client, reason, error);
  }

  #onConnection(socket: net.Socket): void {
    if (this.#closing !== null || this.#clientCount >= this.#maxConnections) {
      // The socket is unknown to the application: it gets an error listener
      // (a reset arriving now must not crash the process) and is destroyed.
      socket.on('error', ignore);
      const info: DropInfo = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, reason: 'max-connections' };
      socket.destroy();
      if (this.#closing === null) {
        noteDrop(this.loop, info.remoteAddress, info.remotePort, this.#maxConnections);
        this.emit('drop', info);
      }
      return;
    }
    const client = new Client(this.loop, socket, this, this._cfg);
    if (this._framing !== null) client._protocol = this._framing;
    this.#clientCount++;
    noteAccept(client);
    this.emit('connection', client);
  }

  /** This server's clients among the loop's, in accept order. */
  *#ownClients(): Generator<Client, void, undefined> {
    for (const c of this.loop.clients()) if (c._owner === this) yield c;
  }

  async #close(flushTimeoutMs: number, notice: CloseNotice | undefined, settle: readonly Flushable[]): Promise<void> {
    const netClosed = new Promise<void>((resolve) => {
      this.#net.close(() => resolve());
    });
    if (this.#clientCount > 0) {
      await new Promise<void>((resolve) => {
        const timers = this.loop._timers;
        const deadline = timers.schedule(this.loop.now() + flushTimeoutMs, () => {
          const err = closeTimeoutError(flushTimeoutMs);
          for (const c of [...this.#ownClients()]) c.destroy('server-close', err);
        });
        this.#emptyWaiter = () => {
          this.#emptyWaiter = null;
          timers.remove(deadline);
          resolve();
        };
        for (const c of [...this.#ownClients()]) {
          if (notice !== undefined) sendNotice(c, notice);
          c._beginGracefulClose('server-close', flushTimeoutMs);
        }
      });
    }
    await netClosed;
    this.loop._serverClosed(this);
    await settleAll(settle, flushTimeoutMs);
  }
}

function ignore(): void {}
