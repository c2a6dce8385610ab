/**
 * The Redis store's way to the server: the client (a caller's, or one the
 * store creates, connects, reconnects and closes), the deadline every
 * operation runs under, the scripts sent by SHA, and the coded errors.
 *
 * ```
 *   op(name, body) ───── deadline: commandTimeoutMs ─────▶ NETLOOP_STORE_UNAVAILABLE
 *     body(run, send)
 *       send(command) ──wait for 'ready' (one shared waiter)──▶ client.sendCommand
 *       run(script, args) ──EVALSHA sha 0 prefix now grace ...args
 *                               └─ NOSCRIPT (server restarted) ──▶ EVAL source, once
 *   failures: a server's error reply ──▶ WRONGTYPE: NETLOOP_STORE_CORRUPT
 *                                    └─▶ else NETLOOP_STORE_UNAVAILABLE (details.transient)
 * ```
 *
 * A client of the store's own refuses commands while disconnected instead of
 * queueing them (`disableOfflineQueue`): a timed-out create must not run
 * minutes later.
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import { SCRIPTS } from './scripts/index.js';
import type { ScriptName } from './scripts/index.js';

/**
 * The part of a node-redis v5 client the store uses. A client made by
 * `createClient()` from the `redis` package fits it.
 */
export interface RedisClientLike {
  /** True between `connect()` and `close()`/`destroy()`, also while reconnecting. */
  readonly isOpen: boolean;
  /** True while connected and ready for commands. */
  readonly isReady: boolean;
  /** Sends one raw command. */
  sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>): Promise<T>;
  connect(): Promise<unknown>;
  /** Closes after pending commands are answered. */
  close(): Promise<void>;
  /** Closes at once, rejecting pending commands. */
  destroy(): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Runs one of the store's scripts with its arguments (after prefix, now and grace). */
export type RunScript = (script: ScriptName, args: string[]) => Promise<unknown>;
/** Sends one raw command. */
export type SendCommand = <R = unknown>(args: string[]) => Promise<R>;

/** The connection's settings, validated by the store. */
export interface ConnectionSettings {
  /** A client passed in (never connected or closed by the store), or undefined to create one from `url`. */
  readonly client: RedisClientLike | undefined;
  readonly url: string;
  readonly prefix: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxMs: number;
  readonly maxQueued: number;
  /** `expiryGraceMs` as the scripts' third argument. */
  readonly graceArg: string;
  /** Called with each connection error of a client of the store's own, as a coded error. */
  readonly onConnectionError: (err: NetloopError) => void;
}

/** The first pause between reconnection attempts, doubled on each failure. */
export const RECONNECT_BASE_MS = 50;

/**
 * True for an error reply from the server (node-redis `ErrorReply` and its
 * subclasses), told apart by class name because `redis` is imported lazily.
 */
function isErrorReply(err: unknown): boolean {
  for (let p: unknown = err instanceof Error ? Object.getPrototypeOf(err) : null; p !== null && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === 'ErrorReply') return true;
  }
  return false;
}

/** Redis error replies that mean "not now" rather than "never". */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|MASTERDOWN|READONLY|OOM|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF)\b/;

/** See the module documentation. */
export class RedisConnection {
  readonly #s: ConnectionSettings;
  /** True when the store made the client and must close it. */
  readonly #owned: boolean;
  #client: RedisClientLike | undefined;
  #creating: Promise<RedisClientLike> | undefined;
  #readyWaiter: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(settings: ConnectionSettings) {
    this.#s = settings;
    this.#owned = settings.client === undefined;
    this.#client = settings.client;
  }

  /**
   * Runs one operation within the deadline. `body` gets `run(script, args)`
   * and `send(command)`; both wait for a ready connection at most until the
   * deadline and refuse to start once it has passed.
   *
   * Commands are not given an abort signal: node-redis writes a command on
   * the next tick once the connection is ready, so there is nothing left to
   * withdraw, and abort listeners cost a third of the throughput.
   */
  async op<T>(name: string, body: (run: RunScript, send: SendCommand) => Promise<T>): Promise<T> {
    const s = this.#s;
    let timer: NodeJS.Timeout | undefined;
    let timedOut: NetloopError | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        timedOut = new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis store: ${name} got no answer within ${s.timeoutMs} ms`, {
          details: { operation: name, timeoutMs: s.timeoutMs },
        });
        reject(timedOut);
      }, s.timeoutMs);
    });
    // Several sends of one operation may race the deadline; none of them may leave it unhandled.
    deadline.catch(() => undefined);
    const send = async <R = unknown>(args: string[]): Promise<R> => {
      const current = this.#client;
      const client = current !== undefined && current.isReady ? current : await this.#ready(deadline);
      if (timedOut !== undefined) throw timedOut;
      // Checked just before sending: a command is only ever queued on a ready
      // connection, so a caller's client with an offline queue cannot replay it later.
      if (!client.isReady) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: not connected');
      return client.sendCommand<R>(args);
    };
    const run = async (script: ScriptName, args: string[]): Promise<unknown> => {
      const loaded = SCRIPTS[script];
      const argv = [s.prefix, String(s.clock.wallNow()), s.graceArg, ...args];
      try {
        return await send(['EVALSHA', loaded.sha, '0', ...argv]);
      } catch (err) {
        // After a restart (or SCRIPT FLUSH) the server has forgotten the script: send it whole once.
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return send(['EVAL', loaded.source, '0', ...argv]);
      }
    };
    const work = body(run, send);
    // The deadline may win the race; the losing promise must not become an unhandled rejection.
    work.catch(() => undefined);
    try {
      return await Promise.race([work, deadline]);
    } catch (err) {
      throw this.wrap(name, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Closes: a client the store created is closed (pending commands
   * answered, then the connection ends; destroyed if that takes longer than
   * the command timeout); a client passed in is left open. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      let client = this.#client;
      if (client === undefined && this.#creating !== undefined) client = await this.#creating.catch(() => undefined);
      if (!this.#owned || client === undefined || !client.isOpen) return;
      let timer: NodeJS.Timeout | undefined;
      const graceful = client.close().catch(() => undefined);
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), this.#s.timeoutMs);
      });
      if ((await Promise.race([graceful, late])) === 'late') client.destroy();
      clearTimeout(timer);
    })();
    return this.#closing;
  }

  /** A failure as a coded error (see the module documentation); a NetloopError unchanged. */
  wrap(operation: string, err: unknown): NetloopError {
    if (err instanceof NetloopError) return err;
    const message = err instanceof Error ? err.message : String(err);
    const isReply = isErrorReply(err);
    if (isReply && message.startsWith('WRONGTYPE')) {
      return new NetloopError(ErrorCode.STORE_CORRUPT, `redis store: a key under prefix ${this.#s.prefix} holds foreign data (${message})`, {
        cause: err,
        details: { operation, prefix: this.#s.prefix },
      });
    }
    return new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis store: ${operation} failed: ${message}`, {
      cause: err,
      details: { operation, transient: !isReply || TRANSIENT_REPLIES.test(message) },
    });
  }

  /** The client, connected and ready, or a rejection when `deadline` passes first. */
  async #ready(deadline: Promise<never>): Promise<RedisClientLike> {
    const client = this.#client ?? (await Promise.race([this.#createClient(), deadline]));
    if (client.isReady) return client;
    if (!client.isOpen) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: the client is closed');
    if (this.#readyWaiter === undefined) {
      // One shared listener however many operations wait, so waiting never piles up listeners.
      this.#readyWaiter = new Promise<void>((resolve) => {
        const onReady = (): void => {
          client.off('ready', onReady);
          this.#readyWaiter = undefined;
          resolve();
        };
        client.on('ready', onReady);
      });
    }
    await Promise.race([this.#readyWaiter, deadline]);
    return client;
  }

  /** Imports `redis` and creates, configures and starts connecting the store's own client (once). */
  #createClient(): Promise<RedisClientLike> {
    if (this.#creating !== undefined) return this.#creating;
    this.#creating = (async () => {
      let mod: typeof import('redis');
      try {
        mod = await import('redis');
      } catch (err) {
        throw new NetloopError(
          ErrorCode.INVALID_OPTION,
          'RedisStore needs the optional peer dependency "redis" (npm install redis) unless a client is passed in',
          { cause: err, details: { option: 'url' } },
        );
      }
      const s = this.#s;
      const maxDelay = s.reconnectMaxMs;
      const client = mod.createClient({
        url: s.url,
        disableOfflineQueue: true,
        commandsQueueMaxLength: s.maxQueued,
        socket: {
          connectTimeout: s.connectTimeoutMs,
          // Bounded exponential backoff with jitter, forever: the store keeps trying while the process lives.
          reconnectStrategy: (retries: number) => {
            const ceiling = Math.min(maxDelay, RECONNECT_BASE_MS * 2 ** Math.min(retries, 20));
            return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
          },
        },
      }) as unknown as RedisClientLike;
      // Called from the client's socket events: the handler (the store's
      // guarded 'error' event) never lets a listener's fault escape there.
      client.on('error', (err: unknown) => s.onConnectionError(this.wrap('connection', err)));
      if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the redis store is closed');
      this.#client = client;
      // Not awaited: operations wait for 'ready' within their own deadline.
      client.connect().catch(() => undefined);
      return client;
    })();
    return this.#creating;
  }
}
