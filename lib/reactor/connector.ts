/**
 * An outbound connection that reconnects: muduo's `Connector` plus
 * `TcpClient(loop, ...)`, with the jitter muduo lacks (PR #172) and a bound
 * on attempts. Built on a loop, then started: `new Connector(loop,
 * options).connect()`.
 *
 * ```
 *          connect() / retry timer
 *   idle ──────────────────────▶ connecting ── 'connect' ──▶ connected (client)
 *     ▲                             │ error / timeout            │ close
 *     │  delay = min(max, initial·factor^(n-1)) · (1 - jitter·rand)
 *     └──── 'connect-error' ◀───────┘◀───────────────────────────┘ (reconnect)
 *   attempts > maxAttempts ──▶ 'give-up' (stopped)
 * ```
 *
 * The connect timeout and the backoff delay are entries of the loop's shared
 * timer queue, so they follow its monotonic clock.
 *
 * @module
 */

import type * as net from 'node:net';
import type { EventLoop } from './event-loop.js';
import { Client, routeListenerFault } from './client.js';
import type { ClientOwner } from './client.js';
import type { CloseReason } from './close-reason.js';
import type { TimerEntry } from './timer-queue.js';
import { TypedEmitter, reportFault } from '../core/emitter.js';
import type { EventMap } from '../core/emitter.js';
import type { ConnectErrorInfo, ConnectorBaseEvents, ConnectorEvents, ReadTap } from './callbacks.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkNumber, checkString } from '../core/validate.js';
import { openSocket } from './tls-transport.js';
import type { TlsConnectOptions } from './tls-transport.js';
import { noteConnect } from './diagnostics.js';
import { applySocketOptions, clientConfig } from './client-limits.js';
import type { ClientConfig, ClientLimitOptions } from './client-limits.js';
import { DEFAULT_FLUSH_TIMEOUT_MS } from './graceful-close.js';
import type { LoopService } from './loop-member.js';

/** Backoff between connection attempts. */
export interface ReconnectOptions {
  /** Delay before the first retry; default 100 ms. */
  initialDelayMs?: number;
  /** Largest delay; default 30_000 ms. */
  maxDelayMs?: number;
  /** Growth of the delay per failed attempt; default 2. */
  factor?: number;
  /** Random reduction of each delay, in [0, 1]: `delay * (1 - jitter * random())`; default 0.5. */
  jitter?: number;
  /** Failed attempts in a row after which the connector gives up; default 20. */
  maxAttempts?: number;
}

/** Options of a {@link Connector}. */
export interface ConnectorOptions extends ClientLimitOptions {
  /** Host to connect to; default `'127.0.0.1'`. */
  host?: string;
  /** Port to connect to (required). */
  port: number;
  /** How long one attempt may take; default 10_000 ms. */
  connectTimeoutMs?: number;
  /** Reconnect after a failure or a close: `true` (default, with default backoff), `false`, or backoff options. */
  reconnect?: boolean | ReconnectOptions;
  /** The random source of the jitter, returning [0, 1); default `Math.random`. A seam for tests. */
  random?: () => number;
  /** Connect over TLS through `node:tls` with these options (`ca`, `servername`, ...); default: plain TCP. The connection counts as made once the certificate is verified. */
  tls?: TlsConnectOptions | null;
}

const RECONNECT_DEFAULTS = { initialDelayMs: 100, maxDelayMs: 30_000, factor: 2, jitter: 0.5, maxAttempts: 20 } as const;
const MAX_MS = 2 ** 31 - 1;

/**
 * An outbound client that (re)connects (see the module comment).
 *
 * ```ts
 * const connector = new Connector(loop, { port: 7000 });
 * connector.on('connected', (client) => client.write('hello\n'));
 * connector.connect();
 * ```
 *
 * Its events are {@link ConnectorEvents} (`'connected'`, `'data'`, `'end'`,
 * `'close'`, `'connect-error'`, `'give-up'`, `'error'`). As on a `Server`,
 * every listener may be `async`: a throw or a rejected promise closes only
 * the connection concerned (`'handler-error'`) and never the process.
 *
 * `C` is the class of its connections and `E` its event map: a subclass
 * with clients of its own (the framing layer's `FramedConnector`) sets both
 * and overrides {@link Connector._createClient}.
 */
export class Connector<C extends Client = Client, E extends ConnectorBaseEvents<C> & EventMap<E> = ConnectorEvents<C>>
  extends TypedEmitter<E>
  implements ClientOwner, LoopService
{
  /** The loop this connector belongs to. */
  readonly loop: EventLoop;
  /** @internal Connectors have no read taps (see `Server.addReadTap`). */
  readonly _readTap: ReadTap<Client> | null = null;
  /** @internal For `loop.stats()`. */
  readonly _serviceKind = 'connector' as const;
  /** @internal The limits every connection shares. */
  readonly _cfg: ClientConfig;
  readonly #host: string;
  readonly #port: number;
  readonly #connectTimeoutMs: number;
  readonly #noDelay: boolean;
  readonly #reconnect: Required<ReconnectOptions> | null;
  readonly #random: () => number;
  readonly #tls: TlsConnectOptions | null;
  #client: C | null = null;
  #socket: net.Socket | null = null;
  #attempts = 0;
  #timer: TimerEntry | null = null;
  #connectTimer: TimerEntry | null = null;
  #started = false;
  #stopping: Promise<void> | null = null;
  #stopped = false;
  #stopWaiter: (() => void) | null = null;

  /**
   * Validates every option; connects nothing yet (see {@link Connector.connect}).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(loop: EventLoop, options: ConnectorOptions) {
    super();
    this.loop = loop;
    if (typeof options !== 'object' || options === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'a connector needs options with a port', { details: { option: 'port' } });
    }
    this.#host = checkString('host', options.host ?? '127.0.0.1');
    this.#port = checkInteger('port', options.port, 1, 65535);
    this.#connectTimeoutMs = checkNumber('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, 1, MAX_MS);
    this.#noDelay = checkBoolean('noDelay', options.noDelay ?? true);
    this._cfg = clientConfig(options, 0);
    this.#tls = options.tls ?? null;
    const r = options.reconnect ?? true;
    if (r === false) this.#reconnect = null;
    else {
      const o = r === true ? {} : r;
      this.#reconnect = {
        initialDelayMs: checkNumber('reconnect.initialDelayMs', o.initialDelayMs ?? RECONNECT_DEFAULTS.initialDelayMs, 0, MAX_MS),
        maxDelayMs: checkNumber('reconnect.maxDelayMs', o.maxDelayMs ?? RECONNECT_DEFAULTS.maxDelayMs, 0, MAX_MS),
        factor: checkNumber('reconnect.factor', o.factor ?? RECONNECT_DEFAULTS.factor, 1, 100),
        jitter: checkNumber('reconnect.jitter', o.jitter ?? RECONNECT_DEFAULTS.jitter, 0, 1),
        maxAttempts: checkInteger('reconnect.maxAttempts', o.maxAttempts ?? RECONNECT_DEFAULTS.maxAttempts, 1, 1_000_000),
      };
    }
    this.#random = options.random ?? Math.random;
  }

  /**
   * Starts connecting (the first attempt begins now; the outcome is an
   * event: `'connected'` or `'connect-error'`), and returns the connector.
   * From then on the loop holds it, and `loop.close()` closes it. Calling it
   * again while it runs does nothing.
   *
   * @throws NetloopError `NETLOOP_LOOP_CLOSED` once the loop or the connector is closing.
   */
  connect(): this {
    if (this.#stopping !== null || this.#stopped) {
      throw new NetloopError(ErrorCode.LOOP_CLOSED, 'cannot connect a closed connector', { details: { host: this.#host, port: this.#port } });
    }
    if (this.#started) return this;
    this.loop._addService(this);
    this.#started = true;
    this.#attempt();
    return this;
  }

  /** A listener failed: the connection its event is about answers for it; any other fault goes to the `'error'` path. */
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    routeListenerFault(this, fault, name, args);
  }

  /** @internal A fault no open client answers for: the `'error'` listeners, or a process warning when there are none. */
  _fault(error: NetloopError): void {
    if (this.listenerCount('error') > 0) this.#emit('error', error);
    else reportFault(error, this.constructor.name, this);
  }



  /**
   * The client factory: makes the {@link Client} of a connected socket. A
   * subclass whose clients are of another class overrides it.
   */
  protected _createClient(socket: net.Socket): C {
    return new Client(this.loop, socket, this, this._cfg) as C;
  }

  /** The connected client, or null between connections. */
  get client(): C | null {
    return this.#client;
  }

  /** Failed attempts in the current series (reset to 0 on each successful connection). */
  get attempts(): number {
    return this.#attempts;
  }

  /** True once stopped: closed ({@link Connector.close} or the loop's close), or given up. */
  get stopped(): boolean {
    return this.#stopping !== null || this.#stopped;
  }

  /**
   * Closes: no more attempts; an attempt under way is abandoned; the current
   * connection flushes its queued output and closes (`'server-close'`),
   * destroyed after `flushTimeoutMs` (default 5000). Resolves once, after
   * its close. A connector never connected closes at once.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  close(options: { flushTimeoutMs?: number } = {}): Promise<void> {
    const ms = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS, 0, MAX_MS);
    return (this.#stopping ??= this.#doStop('server-close', ms));
  }

  /** @internal */
  _clientData(client: Client, chunk: Buffer): void {
    // E extends the base events only: a raw connector's map has 'data' (a cast for the compiler alone).
    (this as unknown as Connector<C, ConnectorEvents<C>>).emit('data', client as C, chunk);
  }

  /** @internal */
  _clientEnd(client: Client): void {
    this.#emit('end', client);
  }

  /** @internal */
  _clientClosed(client: Client, reason: CloseReason, error: NetloopError | undefined): void {
    if (this.#client === client) this.#client = null;
    if (this.#stopWaiter !== null) this.#stopWaiter();
    else if (this.#stopping === null && !this.#stopped) {
      if (this.#reconnect !== null) this.#scheduleRetry(this.#reconnect.initialDelayMs);
      else this.#finish();
    }
    this.#emit('close', client, reason, error);
  }

  /** Emits one of the events every connector has (E extends them; the cast is for the compiler alone). */
  #emit(name: keyof ConnectorBaseEvents<C> & string, ...args: unknown[]): void {
    (this.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args);
  }

  #attempt(): void {
    this.#timer = null;
    const { socket, readyEvent } = openSocket(this.#host, this.#port, this.#noDelay, this.#tls);
    this.#socket = socket;
    const timer = this.loop._timers.schedule(this.loop.now() + this.#connectTimeoutMs, () => {
      const err = Object.assign(new Error(`connect timed out after ${this.#connectTimeoutMs} ms`), { code: 'ETIMEDOUT' });
      socket.destroy(err);
    });
    this.#connectTimer = timer;
    const onError = (err: Error): void => {
      this.loop._timers.remove(timer);
      this.#connectTimer = null;
      socket.off(readyEvent, onConnect);
      if (this.#socket === socket) this.#socket = null;
      socket.destroy();
      this.#failed(err);
    };
    const onConnect = (): void => {
      this.loop._timers.remove(timer);
      this.#connectTimer = null;
      socket.off('error', onError);
      this.#socket = null;
      this.#attempts = 0;
      applySocketOptions(socket, this._cfg);
      const client = this._createClient(socket);
      this.#client = client;
      noteConnect(client);
      this.#emit('connected', client);
    };
    socket.once('error', onError);
    socket.once(readyEvent, onConnect);
  }

  #failed(cause: Error): void {
    if (this.#stopping !== null) return;
    this.#attempts++;
    const attempt = this.#attempts;
    const r = this.#reconnect;
    const more = r !== null && attempt < r.maxAttempts;
    const nextDelayMs = more ? this.#delay(attempt) : null;
    const error = new NetloopError(ErrorCode.CONNECT_FAILED, `cannot connect to ${this.#host}:${this.#port}: ${cause.message}`, {
      cause,
      details: { host: this.#host, port: this.#port, attempt, syscallCode: (cause as NodeJS.ErrnoException).code },
    });
    const info: ConnectErrorInfo = { attempt, nextDelayMs };
    if (nextDelayMs !== null) this.#scheduleRetry(nextDelayMs);
    this.#emit('connect-error', error, info);
    if (nextDelayMs === null && this.#stopping === null) {
      this.#finish();
      this.#emit(
        'give-up',
        new NetloopError(ErrorCode.RECONNECT_EXHAUSTED, `gave up connecting to ${this.#host}:${this.#port} after ${attempt} attempts`, {
          cause: error,
          details: { host: this.#host, port: this.#port, attempts: attempt },
        }),
      );
    }
  }

  /** The delay after the `attempt`-th failure: exponential, capped, with jitter. */
  #delay(attempt: number): number {
    const r = this.#reconnect!;
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** (attempt - 1));
    return Math.max(0, base * (1 - r.jitter * this.#random()));
  }

  #scheduleRetry(delayMs: number): void {
    this.#timer = this.loop._timers.schedule(this.loop.now() + delayMs, () => this.#attempt());
  }

  #finish(): void {
    this.#stopped = true;
    this.loop._removeService(this);
  }

  async #doStop(reason: CloseReason, flushTimeoutMs: number): Promise<void> {
    if (this.#timer !== null) {
      this.loop._timers.remove(this.#timer);
      this.#timer = null;
    }
    if (this.#connectTimer !== null) {
      this.loop._timers.remove(this.#connectTimer);
      this.#connectTimer = null;
    }
    const socket = this.#socket;
    if (socket !== null) {
      // An attempt under way is abandoned; a late error from it is ignored.
      this.#socket = null;
      socket.on('error', () => undefined);
      socket.destroy();
    }
    const client = this.#client;
    if (client !== null && !client.closed) {
      await new Promise<void>((resolve) => {
        this.#stopWaiter = resolve;
        client._beginGracefulClose(reason, flushTimeoutMs);
      });
    }
    this.#finish();
  }
}
