/**
 * A listening TCP server of the reactor: every accepted socket becomes a
 * {@link Client}, up to `maxConnections`; its bytes and its close are the
 * server's events.
 *
 * ```
 *   net.Server (allowHalfOpen, noDelay) ── accept ──▶ clientCount < max ? new Client : destroy + 'drop'
 *   Client ── chunk ──▶ server._clientData ──▶ 'data' (client, chunk)
 *   Client ── close ──▶ server._clientClosed ──▶ 'close' (client, reason, error?)   exactly once
 *   clients: Set<Client>   (this server's live clients)
 * ```
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { EventLoop, CloseOptions } from './event-loop.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, closeTimeoutError } from './event-loop.js';
import { Client } from './client.js';
import type { ClientConfig, ClientOwner } from './client.js';
import type { CloseReason } from './close-reason.js';
import { ErrorCode, NetloopError, checkInteger, checkNumber, toSocketError } from './errors.js';
import { FramedProtocol } from './framed-protocol.js';
import type { FramingOptions } from './framed-protocol.js';
import { createListener } from './tls-transport.js';
import type { TlsServerOptions } from './tls-transport.js';
import { noteAccept, noteDrop, noteTlsError } from './diagnostics.js';
import { checkNotice, checkSettle, sendNotice, settleAll } from './graceful-close.js';
import type { CloseNotice } from './graceful-close.js';
import type { Flushable } from './flush-on-signals.js';

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

/** The payload of a server's `'drop'` event. */
export interface DropInfo {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  reason: 'max-connections';
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
  return {
    maxOutputBytes,
    softOutputBytes,
    softOutputForMs,
    idleTimeoutMs: checkNumber('idleTimeoutMs', options.idleTimeoutMs ?? defaultIdleMs, 0, MAX_MS),
    halfOpen: checkBoolean('halfOpen', options.halfOpen ?? CLIENT_DEFAULTS.halfOpen),
    shutdownTimeoutMs: checkNumber('shutdownTimeoutMs', options.shutdownTimeoutMs ?? CLIENT_DEFAULTS.shutdownTimeoutMs, 0, MAX_MS),
  };
}

/** @internal Throws `NETLOOP_INVALID_OPTION` unless `value` is a boolean. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a boolean, got ${String(value)}`, {
      details: { option: name, value },
    });
  }
  return value;
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
 * - `'error'` `(NetloopError)`: an accept error (emitted only when listened for).
 */
export class Server extends EventEmitter implements ClientOwner {
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

  /** This server's live clients. */
  clients(): IterableIterator<Client> {
    return this.#ownClients();
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
    try {
      this.emit('connection', client);
    } catch (err) {
      client.forceClose(
        'handler-error',
        new NetloopError(ErrorCode.HANDLER_ERROR, `a connection handler threw: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
          details: { clientId: client.id },
        }),
      );
    }
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
          for (const c of [...this.#ownClients()]) c.forceClose('server-close', err);
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
