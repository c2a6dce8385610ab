/**
 * The Redis store's way to the server: the client (a caller's single-node
 * client or cluster, or a single-node client the store creates, connects,
 * reconnects and closes), the deadline every operation runs under, the
 * function library (loaded on each node that lacks it), routing by key on a
 * cluster, and the coded errors.
 *
 * ```
 *   op(name, work) ─── deadline: commandTimeoutMs (one timer for every operation in flight) ──▶
 *                                                     NETLOOP_STORE_UNAVAILABLE
 *     send(args, key?) ──wait for 'ready' (one shared waiter)──▶ client.sendCommand(args)
 *                                                              | cluster.sendCommand(key, false, args)
 *     run(script, args, key?) ──FCALL netloop_<hash>_<op> 0 prefix now grace flags ...args
 *                                  ├─ Function not found (restarted, FUNCTION FLUSH, new node)
 *                                  │    ──▶ FUNCTION LOAD (once per node) ──▶ FCALL again
 *                                  └─ unknown command (Redis < 7) ──▶ NETLOOP_UNSUPPORTED
 *   failures: a server's error reply ──▶ WRONGTYPE: NETLOOP_STORE_CORRUPT
 *                                    └─▶ else NETLOOP_STORE_UNAVAILABLE (details.transient)
 * ```
 *
 * **Deadlines.** Every operation carries one deadline, and all of them are
 * watched by one timer: operations are queued in the order they start, and
 * since they share one timeout, that is also the order of their deadlines.
 * The timer is armed for the first unsettled one; a settled one costs a
 * flag. (A timer and a race per operation cost a third of the throughput.)
 *
 * A client of the store's own refuses commands while disconnected instead of
 * queueing them (`disableOfflineQueue`): a timed-out create must not run
 * minutes later.
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import { LIBRARY } from './scripts/index.js';
import type { ScriptName } from './scripts/index.js';
import { keySlot } from './slot.js';

/**
 * The part of a node-redis v5 single-node client the store uses. A client
 * made by `createClient()` from the `redis` package fits it.
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
  /** A new client with the same options (for the store's subscriber). */
  duplicate?(): RedisClientLike;
  /** Subscribes (a client in subscriber mode). */
  subscribe?(channels: string, listener: (message: string, channel: string) => void): Promise<void>;
  unsubscribe?(channels?: string, listener?: (message: string, channel: string) => void): Promise<void>;
}

/** One master of a cluster, as node-redis describes it. */
export interface RedisClusterNodeLike {
  readonly address: string;
  readonly host?: string;
  readonly port?: number;
  /** The node's sharded pub/sub client, once one was made. */
  readonly pubSub?: { readonly client?: RedisClientLike } | undefined;
}

/**
 * The part of a node-redis v5 cluster (`createCluster()`) the store uses.
 * The store neither connects nor closes it.
 */
export interface RedisClusterLike {
  readonly isOpen: boolean;
  /** Sends one raw command to the master of `firstKey`'s slot (following MOVED and ASK). */
  sendCommand<T = unknown>(firstKey: string | undefined, isReadonly: boolean | undefined, args: ReadonlyArray<string | Buffer>): Promise<T>;
  /** The masters. */
  readonly masters: ReadonlyArray<RedisClusterNodeLike>;
  /** The shards by slot: `slots[slot].master`. */
  readonly slots: ReadonlyArray<{ readonly master: RedisClusterNodeLike }>;
  /** The client of one node. */
  nodeClient(node: RedisClusterNodeLike): Promise<RedisClientLike> | RedisClientLike;
  sSubscribe(channels: string, listener: (message: string, channel: string) => void): Promise<void>;
  sUnsubscribe(channels: string, listener?: (message: string, channel: string) => void): Promise<void>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** True for a node-redis cluster (it routes by key: `sendCommand(firstKey, isReadonly, args)`). */
export function isClusterClient(client: RedisClientLike | RedisClusterLike): client is RedisClusterLike {
  return typeof (client as Partial<RedisClusterLike>).nodeClient === 'function' && 'masters' in client;
}

/**
 * Runs one of the store's scripts with its arguments (after prefix, now,
 * grace and flags), routed by `key` on a cluster; `now` is the wall time to
 * run at (default: the clock's now).
 */
export type RunScript = (script: ScriptName, args: readonly string[], key?: string, now?: string) => Promise<unknown>;
/** Sends one raw command, routed by `key` on a cluster. */
export type SendCommand = <R = unknown>(args: readonly string[], key?: string) => Promise<R>;

/** The connection's settings, validated by the store. */
export interface ConnectionSettings {
  /** A client passed in (never connected or closed by the store), or undefined to create one from `url`. */
  readonly client: RedisClientLike | RedisClusterLike | undefined;
  readonly url: string;
  readonly prefix: string;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxMs: number;
  readonly maxQueued: number;
  /** `expiryGraceMs` as the scripts' third argument. */
  readonly graceArg: string;
  /** The scripts' fourth argument: `L` listing indexes, `T` token index. */
  readonly flags: string;
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

/** An operation in flight, watched by the one deadline timer. */
interface Pending {
  /** `performance.now()` past which it fails. */
  readonly at: number;
  readonly name: string;
  settled: boolean;
  readonly reject: (err: NetloopError) => void;
}

/** A server that has no `FCALL` (Redis before 7.0): the store needs Functions. */
function noFunctions(cause: Error): NetloopError {
  return new NetloopError(ErrorCode.UNSUPPORTED, 'redis store: the server has no FCALL; the Redis store needs Redis 7.0 or later (Functions)', {
    cause,
    details: { option: 'redis', needs: 'Redis >= 7.0' },
  });
}

/** Bounded exponential backoff with jitter, forever: the store keeps trying while the process lives. */
export function reconnectDelay(retries: number, maxDelay: number): number {
  const ceiling = Math.min(maxDelay, RECONNECT_BASE_MS * 2 ** Math.min(retries, 20));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** See the module documentation. */
export class RedisConnection {
  readonly #s: ConnectionSettings;
  /** True when the store made the client and must close it. */
  readonly #owned: boolean;
  /** The cluster, when the store was given one. */
  readonly cluster: RedisClusterLike | null;
  #client: RedisClientLike | undefined;
  #creating: Promise<RedisClientLike> | undefined;
  #readyWaiter: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Operations in flight, oldest first: `#inflight[#head..]`. */
  #inflight: Pending[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Library loads in flight, by node (`nodeOf`). */
  readonly #loading = new Map<string, Promise<void>>();

  constructor(settings: ConnectionSettings) {
    this.#s = settings;
    this.#owned = settings.client === undefined;
    const given = settings.client;
    this.cluster = given !== undefined && isClusterClient(given) ? given : null;
    this.#client = given !== undefined && !isClusterClient(given) ? given : undefined;
  }

  /** The single-node client, once there is one (the cluster's: none). */
  get client(): RedisClientLike | undefined {
    return this.#client;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one operation within the deadline: resolves what `work` resolves,
   * or rejects with its failure as a coded error, or with
   * `NETLOOP_STORE_UNAVAILABLE` when the deadline passes first.
   */
  op<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#operate<T, T>(name, work, undefined);
  }

  /**
   * One command as one operation, its reply mapped by `decode`: what
   * `op(name, () => send(args, key)).then(decode)` does, with one promise
   * and one reaction less (the store's hottest read goes this way). A throw
   * of `decode` rejects, as a coded error.
   */
  sendOp<R, T>(name: string, args: readonly string[], key: string | undefined, decode: (reply: R) => T): Promise<T> {
    return this.#operate(name, () => this.send<R>(args, key), decode);
  }

  /**
   * {@link op} and {@link sendOp}: `work` started under the operation's
   * deadline, its result mapped by `decode` (when given) in the same
   * reaction that settles the operation.
   */
  #operate<R, T>(name: string, work: () => Promise<R>, decode: ((reply: R) => T) | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { at: performance.now() + this.#s.timeoutMs, name, settled: false, reject };
      this.#watch(entry);
      let p: Promise<R>;
      try {
        p = work();
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (reply) => {
          if (entry.settled) return;
          entry.settled = true;
          this.#advance();
          if (decode === undefined) {
            resolve(reply as unknown as T);
            return;
          }
          try {
            resolve(decode(reply));
          } catch (err) {
            reject(this.wrap(name, err));
          }
        },
        (err: unknown) => {
          if (entry.settled) return;
          entry.settled = true;
          this.#advance();
          reject(this.wrap(name, err));
        },
      );
    });
  }

  /** Sends one raw command (waiting for a connection within the operation's deadline), routed by `key` on a cluster. */
  readonly send: SendCommand = <R = unknown>(args: readonly string[], key?: string): Promise<R> => {
    const cluster = this.cluster;
    if (cluster !== null) {
      if (!cluster.isOpen) return Promise.reject(new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: the cluster client is closed'));
      return cluster.sendCommand<R>(key, false, args);
    }
    const current = this.#client;
    if (current !== undefined && current.isReady) return current.sendCommand<R>(args);
    const started = performance.now();
    return this.#ready().then((client) => {
      // Never sent once the operation's deadline (at most a timeout after this call) has
      // passed: a create that timed out while the server was away must not run when it returns.
      if (performance.now() - started >= this.#s.timeoutMs) {
        throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: the connection came back after the deadline');
      }
      // Checked just before sending: a command is only ever queued on a ready
      // connection, so a caller's client with an offline queue cannot replay it later.
      if (!client.isReady) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: not connected');
      return client.sendCommand<R>(args);
    });
  };

  /**
   * Runs one of the library's functions (`FCALL`), routed by `key` on a
   * cluster. A server without the library (restarted without persistence,
   * `FUNCTION FLUSH`, a node not used before) answers "Function not found":
   * the library is loaded there (`FUNCTION LOAD`, once per node however many
   * calls wait for it) and the call sent again. `now` is the wall time the
   * call runs at, when the caller derived other arguments from it.
   */
  readonly run: RunScript = (script: ScriptName, args: readonly string[], key?: string, now?: string): Promise<unknown> => {
    const s = this.#s;
    const command = ['FCALL', LIBRARY.functions[script], '0', s.prefix, now ?? String(s.clock.wallNow()), s.graceArg, s.flags, ...args];
    return this.send(command, key).catch((err: unknown) => {
      if (!(err instanceof Error)) throw err;
      if (/^ERR unknown command [`'"]?fcall/i.test(err.message)) throw noFunctions(err);
      if (!err.message.includes('Function not found')) throw err;
      return this.#load(key).then(() => this.send(command, key));
    });
  };

  /** Loads the library on the node of `key` (one load per node at a time); a library already there is no failure. */
  #load(key: string | undefined): Promise<void> {
    const node = key === undefined ? '' : this.nodeOf(key);
    let loading = this.#loading.get(node);
    if (loading === undefined) {
      loading = this.send(['FUNCTION', 'LOAD', LIBRARY.source], key)
        .then(
          () => undefined,
          (err: unknown) => {
            // Another process, or another connection of this one, loaded it first.
            if (err instanceof Error && err.message.includes('already exists')) return;
            throw err;
          },
        )
        .finally(() => this.#loading.delete(node));
      this.#loading.set(node, loading);
    }
    return loading;
  }

  /**
   * The master that holds `key`'s slot, as `host:port` (on a single node,
   * ''): the batches of a cluster are grouped by it.
   */
  nodeOf(key: string): string {
    const cluster = this.cluster;
    if (cluster === null) return '';
    return cluster.slots[keySlot(key)]?.master.address ?? '';
  }

  /**
   * A function sending a command to each master (on a single node, its
   * client): what `SCAN` walks. Resolves once every master's client is at hand.
   */
  async masters(): Promise<Array<<R = unknown>(args: readonly string[]) => Promise<R>>> {
    const cluster = this.cluster;
    if (cluster === null) return [(args) => this.send(args)];
    const out: Array<<R = unknown>(args: readonly string[]) => Promise<R>> = [];
    for (const master of cluster.masters) {
      const client = await cluster.nodeClient(master);
      out.push(<R = unknown>(args: readonly string[]) => client.sendCommand<R>(args));
    }
    return out;
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
      await closeClient(client, this.#s.timeoutMs);
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

  /**
   * Makes a new single-node client for the store's subscriber: a duplicate
   * of the client (given or the store's own), connected. Not for a cluster
   * (its sharded pub/sub has clients of its own).
   */
  async subscriberClient(): Promise<RedisClientLike> {
    const base = this.#client ?? (await this.#createClient());
    if (typeof base.duplicate !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'the redis client cannot be duplicated for the change feed', { details: { option: 'client' } });
    }
    const sub = base.duplicate();
    sub.on('error', (err: unknown) => this.#s.onConnectionError(this.wrap('subscriber', err)));
    return sub;
  }

  // ── Deadlines ───────────────────────────────────────────────────────────

  #watch(entry: Pending): void {
    this.#inflight.push(entry);
    if (this.#timer === null) this.#arm(entry.at);
  }

  /** Drops settled operations from the front of the queue (they mostly settle in order). */
  #advance(): void {
    const q = this.#inflight;
    let head = this.#head;
    while (head < q.length && q[head]!.settled) head++;
    if (head === q.length) {
      q.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > q.length) {
      q.splice(0, head);
      head = 0;
    }
    this.#head = head;
  }

  #arm(at: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(0, Math.ceil(at - performance.now())));
    this.#timer.unref();
  }

  /** The timer: every operation past its deadline fails; the timer is armed again for the next. */
  readonly #expire = (): void => {
    this.#timer = null;
    const q = this.#inflight;
    const now = performance.now();
    let head = this.#head;
    while (head < q.length) {
      const entry = q[head]!;
      if (!entry.settled) {
        if (entry.at > now) break;
        entry.settled = true;
        entry.reject(
          new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis store: ${entry.name} got no answer within ${this.#s.timeoutMs} ms`, {
            details: { operation: entry.name, timeoutMs: this.#s.timeoutMs },
          }),
        );
      }
      head++;
    }
    this.#head = head;
    this.#advance();
    if (this.#head < q.length) this.#arm(q[this.#head]!.at);
  };

  // ── The client ──────────────────────────────────────────────────────────

  /** The client, connected and ready (the operation's own deadline bounds the wait). */
  async #ready(): Promise<RedisClientLike> {
    const client = this.#client ?? (await this.#createClient());
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
    await this.#readyWaiter;
    return client;
  }

  /** Imports `redis` and creates, configures and starts connecting the store's own client (once). */
  #createClient(): Promise<RedisClientLike> {
    if (this.#creating !== undefined) return this.#creating;
    this.#creating = (async () => {
      const s = this.#s;
      const client = await createOwnClient(s.url, s.connectTimeoutMs, s.reconnectMaxMs, s.maxQueued);
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

/** Imports `redis` and creates a single-node client of the store's settings (not connected). */
export async function createOwnClient(url: string, connectTimeoutMs: number, reconnectMaxMs: number, maxQueued: number): Promise<RedisClientLike> {
  let mod: typeof import('redis');
  try {
    mod = await import('redis');
  } catch (err) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'RedisStore needs the optional peer dependency "redis" (npm install redis) unless a client is passed in', {
      cause: err,
      details: { option: 'url' },
    });
  }
  return mod.createClient({
    url,
    disableOfflineQueue: true,
    commandsQueueMaxLength: maxQueued,
    socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: (retries: number) => reconnectDelay(retries, reconnectMaxMs) },
  }) as unknown as RedisClientLike;
}

/** Closes a client gracefully, or destroys it when that takes longer than `timeoutMs`. */
export async function closeClient(client: RedisClientLike, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const graceful = client.close().catch(() => undefined);
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  if ((await Promise.race([graceful, late])) === 'late') client.destroy();
  clearTimeout(timer);
}
