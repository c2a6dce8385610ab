/**
 * A {@link SessionStore} in Redis, shared by every process and machine that
 * uses the same server and key prefix.
 *
 * The `redis` package (node-redis v5) is an optional peer dependency: it is
 * imported lazily, the first time a store without a ready-made client needs
 * one, so users of the memory and file stores install nothing more.
 *
 * ## Key layout (prefix `P`, default `netloop:`)
 *
 * ```
 *   P s:<id>            HASH  rec (JSON of the record), exp, la, tok, uid?, conn?, st, cr
 *                             PX = expiresAt - now (+ expiryGraceMs)   ── the session
 *   P t:<tokenHash>     STRING <id>          PX = the session's         ┐
 *   P c:<connectionId>  STRING <id>          PX = the session's         │ one-to-one indexes
 *   P u:<userId>        ZSET  <id> → expiresAt, PX = latest member's    ┘ one-to-many index
 *   P i:created         ZSET  <id> → createdAt ┐  list order; PX = the latest
 *   P i:state:<STATE>   ZSET  <id> → createdAt ├─ expiry of any session, so
 *   P i:expires         ZSET  <id> → expiresAt ┘  they vanish with the last one
 * ```
 *
 * Every write is one Lua script, so a session and all its index entries change
 * together (atomically, across processes); a reader never sees a half-made
 * session, and an index key never outlives its session: the one-to-one keys
 * carry the session's own TTL, and the sorted sets carry the TTL of their
 * latest member and are pruned of expired members lazily. When a sorted set's
 * TTL must grow (a new latest expiry, which every heartbeat is), it grows by
 * an eighth more (at most a minute more), so a stream of heartbeats re-extends
 * the shared keys only now and then; when its latest member leaves or moves
 * earlier, the TTL is fitted exactly again.
 *
 * ## Time
 *
 * Liveness follows the injected clock, as in every store: a record is live
 * while `expiresAt > clock.wallNow()`. The store passes `clock.wallNow()` to
 * each script, which computes `PX = expiresAt - now` (so Redis removes the
 * keys by itself even if no process ever touches them again) and judges
 * sorted-set members by their `expiresAt` score. Reads check `expiresAt` as
 * well, so an answer follows the clock even where Redis has not removed a key
 * yet (or, with `expiryGraceMs`, deliberately keeps it a little longer).
 *
 * ## Failures
 *
 * Every operation settles within `commandTimeoutMs`: it waits for a
 * (re)connection at most that long, and a command that gets no answer in time
 * is rejected with `NETLOOP_STORE_UNAVAILABLE`. A store that created its own client reconnects by itself with
 * bounded exponential backoff, and refuses commands while disconnected instead
 * of queueing them (a timed-out create must not run minutes later). A write
 * that times out after it reached Redis may or may not have been applied: the
 * session is then either entirely there or entirely absent, never half.
 *
 * ## Redis Cluster
 *
 * The scripts derive index keys from the session's fields, so every key of a
 * store must live on one node: on a cluster, use a hash-tagged prefix such as
 * `{netloop}:`.
 *
 * ## Files
 *
 * ```
 *   redis-store.ts     the store: options, the SessionStore methods, events
 *   connection.ts      the client, deadlines, scripts by SHA, coded errors
 *   codec.ts           record <-> script arguments and replies
 *   scripts/*.ts       one Lua script per file, after the prelude of common.ts
 * ```
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { TypedEmitter, reportFault } from '../../core/emitter.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import { checkInteger } from '../../core/validate.js';
import type { CreateOptions, Page, SessionFilter, SessionPage, SessionRecord, SessionStore } from '../contract.js';
import { checkFilter, checkMaxPerUser, checkPage, checkSessionRecord, checkTouch, compareSessions, pageOf } from '../record.js';
import { decodeRecord, decodeRecords, recordArgs, writeResult } from './codec.js';
import { RECONNECT_BASE_MS, RedisConnection } from './connection.js';
import type { RedisClientLike } from './connection.js';

export type { RedisClientLike } from './connection.js';

/** Options of {@link RedisStore}. Give `client` or `url`, not both. */
export interface RedisStoreOptions {
  /**
   * A node-redis client made by the caller. The store neither connects nor
   * closes it; connect it yourself, and give it an `'error'` listener. Create
   * it with `disableOfflineQueue: true`: otherwise commands cut off by a
   * dropped connection are replayed after the reconnection, after the store
   * has already reported them failed.
   */
  client?: RedisClientLike;
  /** A `redis://` or `rediss://` URL; the store creates, connects and closes its own client. Default `redis://127.0.0.1:6379` when no `client` is given. */
  url?: string;
  /** The prefix of every key. Default `'netloop:'`. Stores with different prefixes never see each other's sessions. */
  prefix?: string;
  /** The time source; liveness is judged by `clock.wallNow()`. Default {@link systemClock}. */
  clock?: Clock;
  /** The longest any operation takes before it rejects with `NETLOOP_STORE_UNAVAILABLE`, in ms. Default 2,000. */
  commandTimeoutMs?: number;
  /** Own client only: the longest one connection attempt may take, in ms. Default 2,000. */
  connectTimeoutMs?: number;
  /** Own client only: the longest pause between reconnection attempts, in ms (backoff doubles from 50 ms up to this). Default 2,000. */
  reconnectMaxDelayMs?: number;
  /** Own client only: the most commands queued or awaiting replies; more are refused. Default 100,000. */
  maxQueuedCommands?: number;
  /** Page size when `list` is given no `limit`. Default 100. */
  defaultPageSize?: number;
  /** The largest page `list` returns, whatever `limit` asks. Default 10,000. */
  maxPageSize?: number;
  /** How many expired sessions one pruning script removes before yielding to other clients. Default 1,000. */
  pruneBatch?: number;
  /**
   * How much longer than its logical expiry a session's keys live in Redis, in
   * ms. Default 0: `PX = expiresAt - now`. Liveness is always judged by
   * `expiresAt` against the clock, so a grace never revives a session; it only
   * keeps the keys around while processes whose clocks lag the writer's
   * (clock skew between machines) may still consider the session live.
   */
  expiryGraceMs?: number;
  /**
   * Own client only: called with each connection error (wrapped as
   * `NETLOOP_STORE_UNAVAILABLE`); the client keeps reconnecting. A shorthand
   * for `store.on('error', onError)`: called guarded, a throw or a rejected
   * promise of it is reported as a process warning
   * (`NETLOOP_HANDLER_ERROR`), never thrown.
   */
  onError?: (err: NetloopError) => void;
}

/** The events of a Redis store. */
export interface RedisStoreEvents {
  /**
   * A connection error of a client the store created (wrapped as
   * `NETLOOP_STORE_UNAVAILABLE`); the client keeps reconnecting, and every
   * operation meanwhile rejects on its own within `commandTimeoutMs`.
   * Nothing is reported when nobody listens. A listener that throws or
   * rejects is reported as a process warning (`NETLOOP_HANDLER_ERROR`).
   */
  error: (err: NetloopError) => void;
}

/** Escapes glob characters so a prefix matches itself in `SCAN MATCH`. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** The SessionStore in Redis; see the module documentation for layout, time and failures. */
export class RedisStore extends TypedEmitter<RedisStoreEvents> implements SessionStore {
  /** @inheritDoc */
  readonly kind = 'redis';
  /** The key prefix of this store. */
  readonly prefix: string;

  readonly #clock: Clock;
  readonly #defaultPage: number;
  readonly #maxPage: number;
  readonly #pruneBatch: number;
  readonly #conn: RedisConnection;
  #closed = false;

  constructor(options: RedisStoreOptions = {}) {
    super();
    if (options.client !== undefined && options.url !== undefined) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'give RedisStore either client or url, not both', { details: { option: 'client' } });
    }
    const prefix = options.prefix ?? 'netloop:';
    if (typeof prefix !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'prefix must be a string', { details: { option: 'prefix' } });
    }
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'onError must be a function', { details: { option: 'onError' } });
    }
    this.prefix = prefix;
    this.#clock = options.clock ?? systemClock;
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 0, this.#maxPage);
    this.#pruneBatch = checkInteger('pruneBatch', options.pruneBatch ?? 1_000, 1, 100_000);
    this.#conn = new RedisConnection({
      client: options.client,
      url: options.url ?? 'redis://127.0.0.1:6379',
      prefix,
      clock: this.#clock,
      timeoutMs: checkInteger('commandTimeoutMs', options.commandTimeoutMs ?? 2_000, 1, 600_000),
      connectTimeoutMs: checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? 2_000, 1, 600_000),
      reconnectMaxMs: checkInteger('reconnectMaxDelayMs', options.reconnectMaxDelayMs ?? 2_000, RECONNECT_BASE_MS, 600_000),
      maxQueued: checkInteger('maxQueuedCommands', options.maxQueuedCommands ?? 100_000, 1, 10_000_000),
      graceArg: String(checkInteger('expiryGraceMs', options.expiryGraceMs ?? 0, 0, 86_400_000)),
      onConnectionError: (err) => this.emit('error', err),
    });
    if (options.onError !== undefined) this.on('error', options.onError);
  }

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    // The script's 0 means no limit (a checked limit is at least 1).
    const max = checkMaxPerUser(options.maxPerUser) ?? 0;
    const res = await this.#conn.op('create', (run) => run('create', [...recordArgs(record), String(max)]));
    return writeResult(Number(res), record) === 1;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    const now = this.#clock.wallNow();
    const reply = await this.#conn.op('get', (_run, send) => send<unknown[]>(['HMGET', `${this.prefix}s:${id}`, 'rec', 'exp', 'la']));
    const [rec, exp, la] = reply;
    if (typeof rec !== 'string' || !(Number(exp) > now)) return null;
    return decodeRecord(rec, exp, la, this.prefix);
  }

  /** @inheritDoc */
  async set(record: SessionRecord): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    const res = await this.#conn.op('set', (run) => run('set', recordArgs(record)));
    return writeResult(Number(res), record) === 1;
  }

  /** @inheritDoc */
  async touch(id: string, expiresAt: number, lastActiveAt: number): Promise<boolean> {
    this.#open();
    checkTouch(id, expiresAt, lastActiveAt);
    const res = await this.#conn.op('touch', (run) => run('touch', [id, String(expiresAt), String(lastActiveAt)]));
    return Number(res) === 1;
  }

  /** @inheritDoc */
  async delete(id: string): Promise<boolean> {
    this.#open();
    const res = await this.#conn.op('delete', (run) => run('delete', [id]));
    return Number(res) === 1;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    const reply = await this.#conn.op('getByTokenHash', (run) => run('lookup', ['t', tokenHash]));
    return decodeRecords(reply, this.prefix)[0] ?? null;
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    const reply = await this.#conn.op('getByConnection', (run) => run('lookup', ['c', connectionId]));
    return decodeRecords(reply, this.prefix)[0] ?? null;
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    const reply = await this.#conn.op('getByUser', (run) => run('user', [userId]));
    return decodeRecords(reply, this.prefix).sort(compareSessions);
  }

  /**
   * Live records matching `filter`, oldest first, one page of them, with the total.
   *
   * Cost: a page of all sessions, or of one state, is O(log N + limit) (a
   * range of a sorted set), after removing the sessions that expired since the
   * last prune (amortised O(1) each, in batches of `pruneBatch` so Redis is
   * never blocked long). With a `userId`, the user's sessions are read and
   * filtered: O(sessions of the user).
   */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const f = checkFilter(filter);
    const bounds = checkPage(page, this.#defaultPage, this.#maxPage);
    if (f.userId !== undefined) {
      const mine = await this.getByUser(f.userId);
      return pageOf(f.state === undefined ? mine : mine.filter((r) => r.state === f.state), bounds, (r) => r, true);
    }
    const state = f.state ?? '';
    const { offset, limit } = bounds;
    const reply = await this.#conn.op('list', async (run) => {
      for (;;) {
        const out = await run('list', [state, String(offset), String(limit), String(this.#pruneBatch)]);
        if (!Array.isArray(out) || Number(out[0]) !== -1) return out;
      }
    });
    const rows = reply as unknown[];
    return { sessions: decodeRecords(rows.slice(1), this.prefix), total: Number(rows[0]) };
  }

  /** How many live records match `filter`; the cost of {@link RedisStore.list} with an empty page. */
  async count(filter: SessionFilter = {}): Promise<number> {
    return (await this.list(filter, { offset: 0, limit: 0 })).total;
  }

  /**
   * Removes every session of this prefix and its index entries, in batches
   * of `pruneBatch` sessions (each batch atomic). Keys of other prefixes are
   * left alone.
   */
  async clear(): Promise<void> {
    this.#open();
    await this.#conn.op('clear', async (run) => {
      while (Number(await run('clear', [String(this.#pruneBatch)])) > 0) {
        // Each round removes one batch; sessions created meanwhile are removed too.
      }
    });
  }

  /**
   * Removes every key under the prefix, whatever it holds, with `SCAN` and
   * `UNLINK` (O(keys in the database)). For tests and maintenance; not atomic.
   */
  async purgeKeys(): Promise<number> {
    this.#open();
    return this.#conn.op('purgeKeys', async (_run, send) => {
      let cursor = '0';
      let removed = 0;
      do {
        const [next, keys] = await send<[string, string[]]>(['SCAN', cursor, 'MATCH', `${globEscape(this.prefix)}*`, 'COUNT', '1000']);
        cursor = String(next);
        if (keys.length > 0) removed += Number(await send(['UNLINK', ...keys]));
      } while (cursor !== '0');
      return removed;
    });
  }

  /**
   * One round trip to Redis (`PING`): resolves once the server answered.
   * Rejects with `NETLOOP_STORE_UNAVAILABLE` when it is unreachable or does
   * not answer within `commandTimeoutMs` (the wait for a connection
   * included), and with `NETLOOP_STORE_CLOSED` once the store is closed.
   */
  async ping(): Promise<void> {
    this.#open();
    const reply = await this.#conn.op('ping', (_run, send) => send<unknown>(['PING']));
    if (String(reply) !== 'PONG') {
      throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: PING got an unexpected reply', { details: { operation: 'ping' } });
    }
  }

  /**
   * Closes the store: later calls reject with `NETLOOP_STORE_CLOSED`. A client
   * the store created is closed (pending commands answered, then the
   * connection ends; destroyed if that takes longer than `commandTimeoutMs`);
   * a client passed in is left open. Idempotent.
   */
  close(): Promise<void> {
    this.#closed = true;
    return this.#conn.close();
  }

  /**
   * A listener of the store's events threw or its promise rejected: reported
   * as a process warning (`NETLOOP_HANDLER_ERROR`, the fault as `cause`),
   * never thrown into the client's socket events.
   */
  protected override _listenerFault(fault: unknown, name: string, _args: readonly unknown[]): void {
    const message = fault instanceof Error ? fault.message : String(fault);
    const error = new NetloopError(ErrorCode.HANDLER_ERROR, `a redis store '${name}' listener failed: ${message}`, {
      cause: fault,
      details: { event: name, prefix: this.prefix },
    });
    reportFault(error, 'redis store', this);
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the redis store is closed');
  }
}
