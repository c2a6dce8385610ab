/**
 * A listening TCP server of the reactor (muduo's `TcpServer(loop, ...)`):
 * built on a loop, then started with `listen()`; every accepted socket
 * becomes a {@link Client}, up to `maxConnections`; its bytes and its close
 * are the server's events.
 *
 * ```
 *   new Server(loop, options)   validates every option; nothing is bound yet
 *   await server.listen()       binds; the loop now holds the server (loop.close() closes it)
 *   net.Server (allowHalfOpen, noDelay) ── accept ──▶ clientCount < max ? _createClient(socket) : destroy + 'drop'
 *   Client ── chunk ──▶ read taps ──▶ server._clientData ──▶ 'data' (client, chunk)
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
 * {@link TypedEmitter} (its events are typed by {@link ServerEvents}):
 * every listener is called in turn under the emitter's guard, so one that
 * fails does not keep the next from running, and a lone listener (the raw
 * `'data'` path) is called directly.
 *
 * Seams for the layers above (the framing layer's `FramedServer`, the
 * session binding): the protected client factory {@link Server._createClient},
 * the client's protected `_handleData`, and the read taps
 * ({@link Server.addReadTap}).
 *
 * @module
 */

import * as net from 'node:net';
import type { EventLoop } from './event-loop.js';
import { Client, routeListenerFault } from './client.js';
import type { ClientOwner } from './client.js';
import type { CloseReason } from './close-reason.js';
import { ErrorCode, NetloopError, toSocketError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkNumber, checkString } from '../core/validate.js';
import { createListener } from './tls-transport.js';
import { checkReusePort } from './reuse-port.js';
import type { TlsServerOptions } from './tls-transport.js';
import { noteAccept, noteDrop, noteTlsError } from './diagnostics.js';
import { TypedEmitter, reportFault } from '../core/emitter.js';
import type { EventMap } from '../core/emitter.js';
import type { DropInfo, ReadTap, ServerBaseEvents, ServerEvents } from './callbacks.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, checkNotice, checkSettle, closeTimeoutError, sendNotice, settleAll } from './graceful-close.js';
import type { CloseNotice, CloseOptions } from './graceful-close.js';
import type { Flushable } from '../core/flush-on-signals.js';
import { CLIENT_DEFAULTS, DEFAULT_IDLE_TIMEOUT_MS, applySocketOptions, clientConfig } from './client-limits.js';
import type { ClientConfig, ClientLimitOptions } from './client-limits.js';
import { broadcastTo } from './broadcast.js';
import type { BroadcastMessage, BroadcastOptions } from './broadcast.js';
import type { LoopClientOwner, LoopService } from './loop-member.js';

/** Options of a {@link Server}. */
export interface ServerOptions extends ClientLimitOptions {
  /** Address to bind; default `'127.0.0.1'`. */
  host?: string;
  /** Port; default 0 (an ephemeral port, see {@link Server.port}). */
  port?: number;
  /** Listen backlog; default 511. */
  backlog?: number;
  /** Live clients beyond which new sockets are destroyed and `'drop'` is emitted; default 10_000. */
  maxConnections?: number;
  /** Serve TLS through `node:tls` with these options (`key`, `cert`, ...); default: plain TCP. See {@link TlsServerOptions}. */
  tls?: TlsServerOptions | null;
  /**
   * Bind with SO_REUSEPORT, so that other processes (each with this option)
   * can listen on the same host and port, each on a socket of its own, the
   * kernel spreading new connections among them; default false. In a
   * `node:cluster` worker the socket is then the worker's own (`exclusive`),
   * not one shared through the primary. Needs Node 22.12 or later on Linux,
   * FreeBSD, Solaris or AIX (`reusePortSupported()`); elsewhere the
   * constructor throws `NETLOOP_UNSUPPORTED` rather than let the option be
   * ignored.
   */
  reusePort?: boolean;
}

/**
 * A TCP server (see the module comment): `new Server(loop, options)`, then
 * `await server.listen()`.
 *
 * ```ts
 * const loop = new EventLoop();
 * const server = await new Server(loop, { port: 7000 }).listen();
 * server.on('data', (client, chunk) => client.write(chunk));   // echo
 * ```
 *
 * Its events are {@link ServerEvents} (`'connection'`, `'data'`, `'end'`,
 * `'close'`, `'drop'`, `'error'`). Every listener may be `async`: a throw,
 * or a returned promise that rejects, closes only the client the event is
 * about (`'handler-error'`, `NETLOOP_HANDLER_ERROR` with the `cause`, also
 * published on `netloop:handler:error`); the process never dies of it.
 *
 * `C` is the class of its clients and `E` its event map: a subclass with
 * clients of its own (the framing layer's `FramedServer`) sets both and
 * overrides {@link Server._createClient}.
 */
export class Server<C extends Client = Client, E extends ServerBaseEvents<C> & EventMap<E> = ServerEvents<C>>
  extends TypedEmitter<E>
  implements ClientOwner, LoopService
{
  /** The loop this server belongs to. */
  readonly loop: EventLoop;
  /** @internal The limits every client of this server shares. */
  readonly _cfg: ClientConfig;
  /** @internal What a client calls with each chunk it reads, before it is delivered; null without read taps. */
  _readTap: ReadTap<Client> | null = null;
  /** @internal For `loop.stats()`. */
  readonly _serviceKind = 'server' as const;
  readonly #net: net.Server;
  readonly #host: string;
  readonly #port: number;
  readonly #backlog: number;
  readonly #maxConnections: number;
  readonly #reusePort: boolean;
  /** The read taps, their client type erased (so a server of framed clients is still a server of clients). */
  #taps: ReadonlyArray<ReadTap<Client>> = [];
  /**
   * Live clients of this server. The clients themselves are the loop's (one
   * map entry per connection, not one more in a set here); the server counts
   * them and picks its own out of the loop's when it needs them.
   */
  #clientCount = 0;
  #address: net.AddressInfo | null = null;
  #listening: Promise<this> | null = null;
  #closing: Promise<void> | null = null;
  #emptyWaiter: (() => void) | null = null;

  /**
   * Validates every option; binds nothing (see {@link Server.listen}).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option;
   *   `NETLOOP_UNSUPPORTED` for `reusePort` where the running Node cannot honour it.
   */
  constructor(loop: EventLoop, options: ServerOptions = {}) {
    super();
    this.loop = loop;
    this._cfg = clientConfig(options, DEFAULT_IDLE_TIMEOUT_MS);
    this.#host = checkString('host', options.host ?? '127.0.0.1');
    this.#port = checkInteger('port', options.port ?? 0, 0, 65535);
    this.#backlog = checkInteger('backlog', options.backlog ?? 511, 1, 65535);
    this.#maxConnections = checkInteger('maxConnections', options.maxConnections ?? 10_000, 1, 2 ** 31 - 1);
    const noDelay = checkBoolean('noDelay', options.noDelay ?? CLIENT_DEFAULTS.noDelay);
    this.#reusePort = checkBoolean('reusePort', options.reusePort ?? false);
    checkReusePort(this.#reusePort);
    this.#net = createListener(
      options.tls,
      noDelay,
      (socket) => this.#onConnection(socket),
      (err, socket) => noteTlsError(loop, err, socket.remoteAddress, socket.remotePort),
    );
    this.#net.on('error', (err) => {
      if (this.#address !== null && this.listenerCount('error') > 0) this.#emit('error', toSocketError(err));
    });
  }

  /**
   * Binds and listens; resolves with the server once it does (so `await
   * new Server(loop, o).listen()` is the server). From then on the loop
   * holds it, and `loop.close()` closes it. Calling it again returns the
   * same promise.
   *
   * @throws NetloopError (as a rejection) `NETLOOP_SOCKET_ERROR`
   *   (`details.syscallCode`, e.g. EADDRINUSE) when it cannot listen;
   *   `NETLOOP_LOOP_CLOSED` once the loop or the server is closing.
   */
  listen(): Promise<this> {
    return (this.#listening ??= this.#listen());
  }

  async #listen(): Promise<this> {
    if (this.#closing !== null) throw new NetloopError(ErrorCode.LOOP_CLOSED, 'cannot listen on a closed server');
    this.loop._addService(this);
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          reject(
            new NetloopError(ErrorCode.SOCKET_ERROR, `cannot listen on ${this.#host}:${this.#port}: ${err.message}`, {
              cause: err,
              details: { syscallCode: (err as NodeJS.ErrnoException).code, host: this.#host, port: this.#port },
            }),
          );
        };
        this.#net.once('error', onError);
        // With reusePort each process (a cluster worker too: `exclusive`) binds a socket of its
        // own and the kernel balances among them. Node 20's types lack the option it ignores.
        const listenOptions: net.ListenOptions & { reusePort?: boolean } = this.#reusePort
          ? { host: this.#host, port: this.#port, backlog: this.#backlog, reusePort: true, exclusive: true }
          : { host: this.#host, port: this.#port, backlog: this.#backlog };
        this.#net.listen(listenOptions, () => {
          this.#net.off('error', onError);
          this.#address = this.#net.address() as net.AddressInfo;
          resolve();
        });
      });
    } catch (err) {
      this.loop._removeService(this);
      throw err;
    }
    return this;
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
    if (this.listenerCount('error') > 0) this.#emit('error', error);
    else reportFault(error, this.constructor.name, this);
  }



  /**
   * The client factory: makes the {@link Client} of an accepted socket. A
   * subclass whose clients are of another class (they must extend Client)
   * overrides it; the client registers itself with the loop.
   */
  protected _createClient(socket: net.Socket): C {
    return new Client(this.loop, socket, this, this._cfg) as C;
  }

  /**
   * Adds a read tap: `tap(client, chunk)` is called with every chunk a
   * client of this server reads, before it is delivered (to the `'data'`
   * listeners, or to the framing layer), whatever then handles it. For
   * layers that watch traffic (the session binding refreshes sessions from
   * it, a metrics layer counts it); with no tap a chunk costs one field
   * check. A tap must be quick and must not throw (a throw closes the client
   * with `'handler-error'`). Input discarded by a close of ours is not
   * tapped.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` unless `tap` is a function.
   */
  addReadTap(tap: ReadTap<C>): this {
    if (typeof tap !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'a read tap must be a function', { details: { option: 'tap' } });
    }
    this.#setTaps([...this.#taps, tap as ReadTap<Client>]);
    return this;
  }

  /** Removes a read tap added by {@link Server.addReadTap} (the last one added, when added twice). */
  removeReadTap(tap: ReadTap<C>): this {
    const i = this.#taps.lastIndexOf(tap as ReadTap<Client>);
    if (i >= 0) this.#setTaps(this.#taps.filter((_, k) => k !== i));
    return this;
  }

  /** The taps are replaced as a whole (never mutated), so a tap removed while taps run does not disturb them. */
  #setTaps(taps: ReadonlyArray<ReadTap<Client>>): void {
    this.#taps = taps;
    const only = taps[0];
    this._readTap =
      taps.length === 0
        ? null
        : taps.length === 1
          ? only!
          : (client: Client, chunk: Buffer): void => {
              for (let i = 0; i < taps.length; i++) taps[i]!(client, chunk);
            };
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
  clients(): IterableIterator<C> {
    return this.#ownClients();
  }

  /**
   * Sends `message` to every client of this server that is open (closing
   * clients are skipped), except `options.except`, and only those passing
   * `options.filter`: raw bytes (a string is UTF-8), or `{ type, payload }`
   * encoded once through the server's codec (a framed server's). The same
   * bytes are queued by reference to each client (a slow one holds them
   * until it reads, within its output limits), and leave with that
   * client's next flush.
   *
   * @returns how many clients queued it (a client past its hard output
   *   limit is not counted, and closes).
   * @throws NetloopError `NETLOOP_INVALID_VALUE` for a message that is none
   *   of these, or a typed message on a server without a codec (and what
   *   `client.send` throws for a bad type or payload);
   *   `NETLOOP_INVALID_OPTION` for bad options.
   */
  broadcast(message: BroadcastMessage, options: BroadcastOptions<C> = {}): number {
    return broadcastTo(() => this.#ownClients(), message, options, this as LoopClientOwner);
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
   * client has closed (see {@link CloseOptions}). Resolves once; a server
   * that never listened closes at once.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  close(options: CloseOptions<C> = {}): Promise<void> {
    const ms = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS, 0, 2 ** 41);
    return (this.#closing ??= this.#close(ms, checkNotice(options.notice), checkSettle(options.settle)));
  }

  /** @internal The single place raw bytes leave the reactor for the application. */
  _clientData(client: Client, chunk: Buffer): void {
    // E extends the base events only: a raw server's map has 'data' (a cast for the compiler alone).
    (this as unknown as Server<C, ServerEvents<C>>).emit('data', client as C, chunk);
  }

  /** @internal */
  _clientEnd(client: Client): void {
    this.#emit('end', client);
  }

  /** @internal */
  _clientClosed(client: Client, reason: CloseReason, error: NetloopError | undefined): void {
    this.#clientCount--;
    if (this.#clientCount === 0 && this.#emptyWaiter !== null) this.#emptyWaiter();
    // The client is closed: a listener's fault goes to the 'error' path, and the other listeners still run.
    this.#emit('close', client, reason, error);
  }

  /** Emits one of the events every server has (E extends them; the cast is for the compiler alone). */
  #emit(name: keyof ServerBaseEvents<C> & string, ...args: unknown[]): void {
    (this.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args);
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
        this.#emit('drop', info);
      }
      return;
    }
    applySocketOptions(socket, this._cfg);
    const client = this._createClient(socket);
    this.#clientCount++;
    noteAccept(client);
    this.#emit('connection', client);
  }

  /** This server's clients among the loop's, in accept order. */
  *#ownClients(): Generator<C, void, undefined> {
    for (const c of this.loop.clients()) if (c._owner === this) yield c as C;
  }

  async #close(flushTimeoutMs: number, notice: CloseNotice<C> | undefined, settle: readonly Flushable[]): Promise<void> {
    const netClosed = new Promise<void>((resolve) => {
      // A server that never listened has nothing to close: the callback gets ERR_SERVER_NOT_RUNNING.
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
    this.loop._removeService(this);
    await settleAll(settle, flushTimeoutMs);
  }
}

/**
 * A server of any kind, raw or framed (`FramedServer`), as a layer that
 * works with either takes one (the session binding): its events are those
 * every server has, its clients are `Client`s.
 */
export type AnyServer = Server<Client, ServerBaseEvents<Client>>;

function ignore(): void {}
