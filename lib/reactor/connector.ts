/**
 * An outbound connection that reconnects: muduo's `Connector` plus
 * `TcpClient`, with the jitter muduo lacks (PR #172) and a bound on attempts.
 *
 * ```
 *          start / retry timer
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

import * as net from 'node:net';
import type { EventLoop } from './event-loop.js';
import { DEFAULT_FLUSH_TIMEOUT_MS } from './event-loop.js';
import { Client, routeListenerFault } from './client.js';
import type { ClientConfig, ClientOwner } from './client.js';
import type { CloseReason } from './close-reason.js';
import type { TimerEntry } from './timer-queue.js';
import { clientConfig } from './server.js';
import { TypedEmitter, reportFault } from '../core/emitter.js';
import type { ConnectErrorInfo, ConnectorEvents } from './callbacks.js';
import type { FramedMessage } from '../framing/framed-protocol.js';
import type { ClientLimitOptions } from './server.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkNumber } from '../core/validate.js';
import { FramedProtocol } from '../framing/framed-protocol.js';
import type { FramingOptions } from '../framing/framed-protocol.js';
import { openSocket } from './tls-transport.js';
import type { TlsConnectOptions } from './tls-transport.js';
import { noteConnect } from './diagnostics.js';

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

/** Options of {@link EventLoop.connect}. */
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
  /**
   * LTV framing for every connection (see {@link FramingOptions}; before
   * `markAuthenticated()` a connector accepts frames up to `maxFrameLength`
   * unless `preAuthMaxFrameLength` is given). Default: raw bytes.
   */
  framing?: FramingOptions;
  /** Connect over TLS through `node:tls` with these options (`ca`, `servername`, ...); default: plain TCP. The connection counts as made once the certificate is verified. */
  tls?: TlsConnectOptions | null;
}

const RECONNECT_DEFAULTS = { initialDelayMs: 100, maxDelayMs: 30_000, factor: 2, jitter: 0.5, maxAttempts: 20 } as const;
const MAX_MS = 2 ** 31 - 1;

/**
 * An outbound client that (re)connects; created by {@link EventLoop.connect}.
 *
 * Events:
 * - `'connected'` `(client)`;
 * - `'message'` `(client, message: FramedMessage)`: with the `framing` option and no `framing.onMessage`;
 * - `'data'` `(client, chunk: Buffer)`;
 * - `'end'` `(client)`: the peer sent FIN and `halfOpen` is set;
 * - `'close'` `(client, reason, error?)`: exactly once per connection;
 * - `'connect-error'` `(error: NetloopError CONNECT_FAILED, info: ConnectErrorInfo)`;
 * - `'give-up'` `(error: NetloopError RECONNECT_EXHAUSTED)`: no more attempts; the connector is stopped;
 * - `'error'` `(NetloopError HANDLER_ERROR)`: a listener or callback failed
 *   when no open client answers for it (a `'connect-error'`, `'give-up'` or
 *   `'close'` listener, a close callback); nobody listening, a process warning.
 *
 * As on a {@link Server}, every listener may be `async`: a throw or a
 * rejected promise closes only the connection concerned (`'handler-error'`)
 * and never the process.
 */
export class Connector extends TypedEmitter<ConnectorEvents & { message: (client: Client, message: FramedMessage) => void }> implements ClientOwner {
  /** The loop this connector belongs to. */
  readonly loop: EventLoop;
  readonly #host: string;
  readonly #port: number;
  readonly #connectTimeoutMs: number;
  readonly #noDelay: boolean;
  readonly #reconnect: Required<ReconnectOptions> | null;
  readonly #random: () => number;
  readonly #cfg: ClientConfig;
  readonly #framing: FramedProtocol | null;
  readonly #tls: TlsConnectOptions | null;
  #client: Client | null = null;
  #socket: net.Socket | null = null;
  #attempts = 0;
  #timer: TimerEntry | null = null;
  #connectTimer: TimerEntry | null = null;
  #stopping: Promise<void> | null = null;
  #stopped = false;
  #stopWaiter: (() => void) | null = null;

  /** @internal Use {@link EventLoop.connect}. */
  constructor(loop: EventLoop, options: ConnectorOptions) {
    super();
    this.loop = loop;
    this.#host = options.host ?? '127.0.0.1';
    if (typeof this.#host !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'host must be a string', { details: { option: 'host' } });
    }
    this.#port = checkInteger('port', options.port, 1, 65535);
    this.#connectTimeoutMs = checkNumber('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, 1, MAX_MS);
    this.#noDelay = checkBoolean('noDelay', options.noDelay ?? true);
    this.#cfg = clientConfig(options, 0);
    this.#framing = options.framing === undefined ? null : new FramedProtocol(this, options.framing, 'connector');
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
    this.#attempt();
  }

  /** A listener failed: the connection its event is about answers for it; any other fault goes to the `'error'` path. */
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    routeListenerFault(this, fault, name, args);
  }

  /** @internal A fault no open client answers for: the `'error'` listeners, or a process warning when there are none. */
  _fault(error: NetloopError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else reportFault(error, this.constructor.name);
  }

  /** @internal A decoded message of a connection, for the `'message'` listeners. */
  _emitMessage(client: Client, message: FramedMessage): void {
    this.emit('message', client, message);
  }

  /** @internal The framing of every connection, or null for raw bytes. */
  get _framing(): FramedProtocol | null {
    return this.#framing;
  }

  /** The connected client, or null between connections. */
  get client(): Client | null {
    return this.#client;
  }

  /** Failed attempts in the current series (reset to 0 on each successful connection). */
  get attempts(): number {
    return this.#attempts;
  }

  /** True once stopped (by {@link Connector.stop}, the loop's close, or giving up). */
  get stopped(): boolean {
    return this.#stopping !== null || this.#stopped;
  }

  /**
   * Stops: no more attempts; an attempt under way is abandoned; the current
   * client flushes its queued output and closes (`'shutdown'`), destroyed after
   * `flushTimeoutMs` (default 5000). Resolves once, after its close.
   */
  stop(options: { flushTimeoutMs?: number } = {}): Promise<void> {
    const ms = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS, 0, MAX_MS);
    return this._stop('shutdown', ms);
  }

  /** @internal */
  _stop(reason: CloseReason, flushTimeoutMs: number): Promise<void> {
    return (this.#stopping ??= this.#doStop(reason, flushTimeoutMs));
  }

  /** @internal */
  _clientData(client: Client, chunk: Buffer): void {
    this.emit('data', client, chunk);
  }

  /** @internal */
  _clientEnd(client: Client): void {
    this.emit('end', client);
  }

  /** @internal */
  _clientClosed(client: Client, reason: CloseReason, error: NetloopError | undefined): void {
    if (this.#client === client) this.#client = null;
    if (this.#stopWaiter !== null) this.#stopWaiter();
    else if (this.#stopping === null && !this.#stopped) {
      if (this.#reconnect !== null) this.#scheduleRetry(this.#reconnect.initialDelayMs);
      else this.#finish();
    }
    this.emit('close', client, reason, error);
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
      const client = new Client(this.loop, socket, this, this.#cfg);
      if (this.#framing !== null) client._protocol = this.#framing;
      this.#client = client;
      noteConnect(client);
      this.emit('connected', client);
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
    this.emit('connect-error', error, info);
    if (nextDelayMs === null && this.#stopping === null) {
      this.#finish();
      this.emit(
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
    this.loop._connectorDone(this);
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
