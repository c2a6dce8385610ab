/**
 * A {@link SessionStore} in Redis, shared by every process and machine that
 * uses the same server (or cluster) and key prefix, with a change feed over
 * pub/sub and presence for every process.
 *
 * The `redis` package (node-redis v5) is an optional peer dependency: it is
 * imported lazily, the first time a store without a ready-made client needs
 * one, so users of the memory and file stores install nothing more.
 *
 * ## Key layout (prefix `P`, default `netloop:`)
 *
 * ```
 *   P s:{<id>}        HASH  j m st b e a t u c k h   PX = expiresAt - now (+ expiryGraceMs)
 *                           (j: the fixed fields as JSON, m: metadata, st: state,
 *                            b: counters, e/a: expiry and last activity, t/u/c: token
 *                            hash, user, connection, k: createdAt, h: index horizon)
 *   P x:{<id>}        STRING the last change published for it   PX = tombstoneTtlMs
 *   P t:{<hash>}      STRING <id>      PX = until the session's horizon  (tokenIndex)
 *   P c:{<conn>}      STRING <id>      PX = until the session's horizon
 *   P u:{u:<user>}    ZSET  <id> → horizon, PX = its latest member's
 *   one node only, listing indexes (option listing, default on there):
 *   P i:created       ZSET  <id> → createdAt ┐
 *   P i:state:<S>     ZSET  <id> → createdAt ├─ PX = the latest expiry of any session
 *   P i:expires       ZSET  <id> → expiresAt │  (+ slack when extended)
 *   P i:online        ZSET  <user> → the latest expiry of its bound sessions
 *   P changes         the change feed's channel
 * ```
 *
 * Each key names its hash slot in braces: a session's keys hash by session,
 * a user's by user, a token hash's and a connection's by themselves. No key
 * is shared by every session but the listing indexes, which exist only when
 * all keys are on one node.
 *
 * **Index entries and their horizon.** The token, connection and user
 * entries of a session point to it and are verified on every read against
 * the session's own hash, so an entry that outlives its session is never
 * believed. They live until the session's *horizon*: its expiry plus a slack
 * (a quarter of the time left, at most a minute). A heartbeat rewrites the
 * session's hash only; its entries move when the expiry passes the horizon,
 * or moves earlier, so a stream of heartbeats moves them now and then.
 *
 * ## Two layouts of work
 *
 * - **One node** (a single Redis, or a cluster with a hash-tagged prefix such
 *   as `{app}:` that pins every key to one slot): every operation is one Lua
 *   script, atomic, that updates the session and all its index entries
 *   together; a reader never sees a half-made session. The touches of one
 *   turn of the event loop go in one script call.
 * - **Spread** (a cluster, prefix without a hash tag): keys spread over every
 *   master; an operation runs in steps per slot, in an order that keeps reads
 *   right if a process dies between them (see `spread.ts`). Listing,
 *   counting and presence listings walk every master with `SCAN`
 *   (see `scan.ts`), as they do on one node with `listing: false`.
 *
 * ## What each index costs (one node)
 *
 * Commands run inside the script per operation; "/batch" is once per
 * script call of a touch batch (the touches of one turn), whatever its size.
 *
 * ```
 *   index           create                 touch (heartbeat)            delete           serves
 *   session hash    HMGET + HSET + PEXPIRE HMGET + HSET + PEXPIRE       HMGET + DEL      everything
 *   token hash      SET NX                 PEXPIRE now and then         MGET of both     getByTokenHash
 *   connection      SET NX                 PEXPIRE now and then         (same DEL)       getByConnection
 *   user            ZCARD (maxPerUser) +   ZADD + PEXPIRE GT            ZREM             getByUser, maxPerUser,
 *                   ZADD + PEXPIRE GT      now and then                                  isOnline, logins
 *   listing (4)     4 ZADD + PTTL +        2 ZADD/batch (exact          3 ZREM + ZCOUNT  list, count,
 *                   PEXPIRE NX + 1/4 prune expiry, presence) +          + ZSCORE, and    onlineCount, onlineUsers
 *                                          PTTL/batch                   2 more when the
 *                                                                       user's latest
 *                                                                       session leaves
 * ```
 *
 * `listing: false` drops the four listing indexes (six of a create's
 * fourteen commands, a heartbeat's two per batch, five of a delete's eleven,
 * seven when the user's latest session leaves): `list`, `count`,
 * `onlineCount` and `onlineUsers` then walk the keys with `SCAN`. `tokenIndex: false` drops
 * the token index (the session registry never looks a token hash up: its
 * tokens name their session); `getByTokenHash` then throws
 * `NETLOOP_INVALID_OPTION`.
 *
 * ## Time
 *
 * Liveness follows the injected clock, as in every store: a record is live
 * while `expiresAt > clock.wallNow()`. The store passes `clock.wallNow()` to
 * each script, which computes `PX = expiresAt - now` (so Redis removes the
 * keys by itself even if no process ever touches them again). Reads check
 * `expiresAt` as well, so an answer follows the clock even where Redis has
 * not removed a key yet (or, with `expiryGraceMs`, deliberately keeps it a
 * little longer).
 *
 * ## Failures
 *
 * Every operation settles within `commandTimeoutMs`: it waits for a
 * (re)connection at most that long, and a command that gets no answer in
 * time is rejected with `NETLOOP_STORE_UNAVAILABLE`. A store that created its
 * own client reconnects by itself with bounded exponential backoff, and
 * refuses commands while disconnected instead of queueing them (a timed-out
 * create must not run minutes later). On one node a write that times out
 * after it reached Redis is either entirely there or entirely absent.
 *
 * ## The change feed
 *
 * `publish(change)` writes the session's tombstone and publishes the change
 * on `P changes` (PUBLISH; SPUBLISH on a cluster, to the channel's shard);
 * the store subscribes when the first `'change'` listener is added (a
 * connection of its own: a duplicate of the client; on a cluster, the
 * cluster's sharded pub/sub client) and says `'feed'` `'up'` each time the
 * subscription is (re)established.
 *
 * ## Files
 *
 * ```
 *   redis-store.ts     the store: the SessionStore methods, touch batches
 *   options.ts         its options and events
 *   connection.ts      the client or cluster, deadlines, the function library, coded errors
 *   keys.ts, slot.ts   key names, horizons, hash slots
 *   codec.ts           record <-> script arguments and hash fields
 *   spread.ts          the spread layout's steps            scan.ts   SCAN-based listing
 *   feed.ts            the change feed                      scripts/  one Lua script per file,
 *                                                                     loaded as one library
 * ```
 *
 * @module
 */

import { OperationStats } from '../operation-stats.js';
import { listenerFaultError } from '../listener-fault.js';
import type { StoreOperationSample } from '../operation-stats.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { TypedEmitter, reportFault } from '../../core/emitter.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import { checkInteger } from '../../core/validate.js';
import type {
  CreateOptions,
  OnlinePage,
  OnlineUsersPage,
  Page,
  SessionChange,
  SessionFilter,
  SessionPage,
  SessionPatch,
  SessionRecord,
  SharedSessionStore,
  WriteCondition,
} from '../contract.js';
import {
  checkFilter,
  checkMaxPerUser,
  checkOnlinePage,
  checkPage,
  checkSessionChange,
  checkSessionPatch,
  checkSessionRecord,
  checkTouch,
  checkUserId,
  checkWriteCondition,
  compareSessions,
  conditionFailed,
  copySessionChange,
  matchesFilter,
  onlinePageOf,
  pageOf,
  validateSessionChange,
} from '../record.js';
import { conditionArgs, decodeFields, decodeRows, patchArgs, recordArgs, writeResult } from './codec.js';
import { RECONNECT_BASE_MS, RedisConnection } from './connection.js';
import { RedisFeed } from './feed.js';
import { Keys, horizonOf } from './keys.js';
import { onlineOf, scanSessions, unlinkAll } from './scan.js';
import { CREATE_PRUNE, CREATE_PRUNE_EVERY, MOVED, READ_FIELDS, TOUCH_BATCH } from './scripts/index.js';
import { prefixPinsSlot } from './slot.js';
import { SpreadOps } from './spread.js';
import type { TouchEntry } from './spread.js';

export type { RedisClientLike, RedisClusterLike, RedisClusterNodeLike } from './connection.js';

export type { RedisStoreOptions, RedisStoreEvents } from './options.js';
import type { RedisStoreEvents, RedisStoreOptions } from './options.js';

/** A touch waiting for its batch. */
interface QueuedTouch extends TouchEntry {
  resolve(ok: boolean): void;
  reject(err: unknown): void;
}

/** The SessionStore in Redis; see the module documentation for layout, time and failures. */
export class RedisStore extends TypedEmitter<RedisStoreEvents> implements SharedSessionStore {
  /** @inheritDoc */
  readonly kind = 'redis';
  /** The key prefix of this store. */
  readonly prefix: string;
  /** True when the keys spread over a cluster's masters (a cluster, and a prefix without a hash tag). */
  readonly spread: boolean;
  /** True when the listing indexes are kept. */
  readonly listing: boolean;

  readonly #clock: Clock;
  readonly #keys: Keys;
  readonly #defaultPage: number;
  readonly #maxPage: number;
  readonly #pruneBatch: number;
  readonly #tombstoneTtl: string;
  readonly #tokens: boolean;
  readonly #conn: RedisConnection;
  readonly #spreadOps: SpreadOps | null;
  /** On a cluster with a pinned prefix: a key of that slot, which routes every script. */
  readonly #route: string | undefined;
  readonly #feed: RedisFeed;
  readonly #graceMs: number;
  /** Creates sent on one node, for the pruning cadence. */
  #creates = 0;
  #touches: QueuedTouch[] = [];
  #touchQueued = false;
  #closed = false;

  /** Per-operation timings (see {@link RedisStore.operationStats}). */
  readonly #ops = new OperationStats();

  constructor(options: RedisStoreOptions = {}) {
    super();
    this.#ops.wrap(this);
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
    for (const name of ['listing', 'tokenIndex'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'boolean') {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a boolean`, { details: { option: name } });
      }
    }
    this.prefix = prefix;
    this.#keys = new Keys(prefix);
    this.#clock = options.clock ?? systemClock;
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 0, this.#maxPage);
    this.#pruneBatch = checkInteger('pruneBatch', options.pruneBatch ?? 1_000, 1, 100_000);
    this.#tombstoneTtl = String(checkInteger('tombstoneTtlMs', options.tombstoneTtlMs ?? 300_000, 1_000, 86_400_000));
    const timeoutMs = checkInteger('commandTimeoutMs', options.commandTimeoutMs ?? 2_000, 1, 600_000);
    const graceMs = checkInteger('expiryGraceMs', options.expiryGraceMs ?? 0, 0, 86_400_000);
    this.#graceMs = graceMs;
    this.#tokens = options.tokenIndex ?? true;
    const cluster = options.client !== undefined && 'masters' in options.client;
    this.spread = cluster && !prefixPinsSlot(prefix);
    if (this.spread && options.listing === true) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'listing indexes need every key on one node: on a cluster, use a hash-tagged prefix such as {app}:', {
        details: { option: 'listing' },
      });
    }
    this.listing = !this.spread && (options.listing ?? true);
    this.#route = cluster && !this.spread ? `${prefix}i:created` : undefined;
    this.#conn = new RedisConnection({
      client: options.client,
      url: options.url ?? 'redis://127.0.0.1:6379',
      prefix,
      clock: this.#clock,
      timeoutMs,
      connectTimeoutMs: checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? 2_000, 1, 600_000),
      reconnectMaxMs: checkInteger('reconnectMaxDelayMs', options.reconnectMaxDelayMs ?? 2_000, RECONNECT_BASE_MS, 600_000),
      maxQueued: checkInteger('maxQueuedCommands', options.maxQueuedCommands ?? 100_000, 1, 10_000_000),
      graceArg: String(graceMs),
      flags: `${this.listing ? 'L' : ''}${this.#tokens ? 'T' : ''}`,
      onConnectionError: (err) => this.emit('error', err),
    });
    this.#spreadOps = this.spread
      ? new SpreadOps({ conn: this.#conn, keys: this.#keys, clock: this.#clock, graceMs, tokens: this.#tokens, pendingMs: 2 * timeoutMs + 1_000 })
      : null;
    this.#feed = new RedisFeed(
      this.#conn,
      this.#keys.channel,
      {
        change: (change) => this.emit('change', change),
        state: (state) => this.emit('feed', state),
        error: (err) => this.emit('error', err),
      },
      timeoutMs,
    );
    if (options.onError !== undefined) this.on('error', options.onError);
  }

  /**
   * Adds a listener (see {@link RedisStoreEvents}); the first `'change'`
   * listener starts the store's subscription to the change feed.
   */
  override on<K extends keyof RedisStoreEvents>(name: K, listener: RedisStoreEvents[K]): this {
    super.on(name, listener);
    if (name === 'change' && !this.#closed) this.#feed.start();
    return this;
  }

  /**
   * How long each operation took and how often it failed, by operation, for
   * the operations called at least once since the store was created (read
   * by netloop/ops at scrape time). Durations are histograms in seconds,
   * from the call to the settling of its promise; failures are counted by
   * their stable code.
   */
  operationStats(): StoreOperationSample[] {
    return this.#ops.sample();
  }

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    // The scripts' 0 means no limit (a checked limit is at least 1).
    const max = checkMaxPerUser(options.maxPerUser) ?? 0;
    const spread = this.#spreadOps;
    if (spread !== null) return this.#conn.op('create', () => spread.create(record, max));
    // The PXs and the horizon are computed here, at the now the script runs at: number
    // conversions cost Lua more than the commands around them.
    const now = this.#clock.wallNow();
    const e = record.expiresAt;
    const h = horizonOf(e, now);
    const grace = this.#graceMs;
    // Every CREATE_PRUNE_EVERY-th create prunes (CREATE_PRUNE sessions at most): at that rate the
    // pruning still outpaces the sessions that expire unattended (at most one per create).
    const prune = this.#creates++ % CREATE_PRUNE_EVERY === 0 ? String(CREATE_PRUNE) : '0';
    const args = [...recordArgs(record), String(max), e > now ? String(Math.ceil(e - now) + grace) : '', String(h), String(Math.ceil(h - now) + grace), prune];
    const res = await this.#conn.op('create', () => this.#conn.run('create', args, this.#route, String(now)));
    return writeResult(Number(res), record) === 1;
  }

  /** @inheritDoc */
  get(id: string): Promise<SessionRecord | null> {
    if (this.#closed) return Promise.reject(closedError());
    const key = this.#keys.session(id);
    // On one node no create is ever staged, so the pending field is not asked for: one reply
    // element less to parse, on the store's hottest read.
    const args = this.#spreadOps === null ? ['HMGET', key, 'j', 'm', 'st', 'b', 'e', 'a'] : ['HMGET', key, ...READ_FIELDS];
    return this.#conn.sendOp('get', args, key, this.#decodeGet);
  }

  /** A session's read fields (`get`) as its record, or null when missing, staged or expired. */
  readonly #decodeGet = (f: unknown[]): SessionRecord | null => {
    if (f[4] === null || !(Number(f[4]) > this.#clock.wallNow())) return null;
    return decodeFields(f, 0, this.prefix, f[6]);
  };

  /** @inheritDoc */
  async set(record: SessionRecord, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    const expected = checkWriteCondition(condition);
    const spread = this.#spreadOps;
    if (spread !== null) return this.#conn.op('set', () => spread.set(record, expected));
    const res = await this.#conn.op('set', () => this.#conn.run('set', [...recordArgs(record), ...conditionArgs(expected)], this.#route));
    return writeResult(Number(res), record) === 1;
  }

  /**
   * The touches made in one turn of the event loop (until the microtasks
   * of the turn have run) travel together: one script call per batch of
   * up to 512 on one node, one per master on a spread cluster.
   */
  touch(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): Promise<boolean> {
    let expected: string | null | undefined;
    try {
      this.#open();
      checkTouch(id, expiresAt, lastActiveAt);
      expected = checkWriteCondition(condition);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<boolean>((resolve, reject) => {
      this.#touches.push({ id, expiresAt, lastActiveAt, expected, resolve, reject });
      if (!this.#touchQueued) {
        this.#touchQueued = true;
        process.nextTick(this.#flushTouches);
      }
    });
  }

  /** @inheritDoc */
  async delete(id: string, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    const expected = checkWriteCondition(condition);
    const spread = this.#spreadOps;
    if (spread !== null) return this.#conn.op('delete', () => spread.delete(id, expected));
    const res = Number(await this.#conn.op('delete', () => this.#conn.run('delete', [id, ...conditionArgs(expected)], this.#route)));
    if (res === MOVED) throw conditionFailed(id);
    return res === 1;
  }

  /** @inheritDoc */
  async update(id: string, patch: SessionPatch, condition?: WriteCondition): Promise<SessionRecord | null> {
    this.#open();
    checkSessionPatch(patch);
    const expected = checkWriteCondition(condition);
    const key = this.#route ?? this.#keys.session(id);
    const reply = await this.#conn.op('update', () => this.#conn.run('update', [id, ...patchArgs(patch), ...conditionArgs(expected)], key));
    if (!Array.isArray(reply) && Number(reply) === MOVED) throw conditionFailed(id);
    return decodeRows(reply, this.prefix)[0] ?? null;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    if (!this.#tokens) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'this redis store was created with tokenIndex: false; look the session up by the id its token names', {
        details: { option: 'tokenIndex' },
      });
    }
    return this.#lookup('getByTokenHash', 't', tokenHash);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    return this.#lookup('getByConnection', 'c', connectionId);
  }

  async #lookup(name: string, kind: 't' | 'c', value: string): Promise<SessionRecord | null> {
    const spread = this.#spreadOps;
    if (spread !== null) return this.#conn.op(name, () => spread.lookup(kind, value));
    const reply = await this.#conn.op(name, () => this.#conn.run('lookup', [kind, value], this.#route));
    return decodeRows(reply, this.prefix)[0] ?? null;
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    const spread = this.#spreadOps;
    if (spread !== null) return this.#conn.op('getByUser', () => spread.user(userId));
    const reply = await this.#conn.op('getByUser', () => this.#conn.run('user', [userId], this.#route));
    return decodeRows(reply, this.prefix).sort(compareSessions);
  }

  /**
   * Live records matching `filter`, oldest first, one page of them, with the total.
   *
   * Cost, with the listing indexes: a page of all sessions, or of one state,
   * is O(log N + limit) (a range of a sorted set), after removing the
   * sessions that expired since the last prune (amortised O(1) each, in
   * batches of `pruneBatch` so Redis is never blocked long). With a
   * `userId`, the user's sessions are read and filtered: O(sessions of the
   * user). Without the listing indexes (or spread over a cluster): a `SCAN`
   * of every key, O(keys), each call.
   */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const f = checkFilter(filter);
    const bounds = checkPage(page, this.#defaultPage, this.#maxPage);
    if (f.userId !== undefined) {
      const mine = await this.getByUser(f.userId);
      return pageOf(f.state === undefined ? mine : mine.filter((r) => r.state === f.state), bounds, (r) => r, true);
    }
    if (!this.listing) {
      const all = await this.#conn.op('list', () => scanSessions(this.#conn, this.#keys, this.#clock));
      return pageOf(
        all.filter((r) => matchesFilter(r, f)),
        bounds,
        (r) => r,
      );
    }
    const state = f.state ?? '';
    const { offset, limit } = bounds;
    const reply = await this.#conn.op('list', async () => {
      for (;;) {
        const out = await this.#conn.run('list', [state, String(offset), String(limit), String(this.#pruneBatch)], this.#route);
        if (!Array.isArray(out) || Number(out[0]) !== -1) return out;
      }
    });
    const rows = reply as unknown[];
    return { sessions: decodeRows(rows, this.prefix, 1), total: Number(rows[0]) };
  }

  /** How many live records match `filter`; the cost of {@link RedisStore.list} with an empty page. */
  async count(filter: SessionFilter = {}): Promise<number> {
    return (await this.list(filter, { offset: 0, limit: 0 })).total;
  }

  /**
   * Cost: O(sessions of the user) (each entry verified against its session),
   * on every layout.
   */
  async isOnline(userId: string): Promise<boolean> {
    this.#open();
    checkUserId(userId);
    const spread = this.#spreadOps;
    if (spread !== null) return this.#conn.op('isOnline', () => spread.isOnline(userId));
    return Number(await this.#conn.op('isOnline', () => this.#conn.run('online', [userId], this.#route))) === 1;
  }

  /** Cost: O(log N) with the listing indexes (after pruning the users who went offline); O(keys) without. */
  async onlineCount(): Promise<number> {
    this.#open();
    if (!this.listing) return onlineOf(await this.#conn.op('onlineCount', () => scanSessions(this.#conn, this.#keys, this.#clock))).length;
    const reply = (await this.#conn.op('onlineCount', () => this.#conn.run('presence', ['0'], this.#route))) as unknown[];
    return Number(reply[0]);
  }

  /**
   * Ascending user id (JavaScript order); the cursor is the last user of the
   * page. Cost: O(users online) per page with the listing indexes, O(keys)
   * without.
   */
  async onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage> {
    this.#open();
    const bounds = checkOnlinePage(page, Math.max(1, this.#defaultPage), this.#maxPage);
    let users: string[];
    if (!this.listing) users = onlineOf(await this.#conn.op('onlineUsers', () => scanSessions(this.#conn, this.#keys, this.#clock)));
    else users = ((await this.#conn.op('onlineUsers', () => this.#conn.run('presence', ['1'], this.#route))) as unknown[]).slice(1).map(String);
    return onlinePageOf(users, bounds);
  }

  /**
   * Removes every session of this prefix and its index entries: with the
   * listing indexes, in batches of `pruneBatch` sessions (each batch
   * atomic), keys of other prefixes left alone; without them, every key of
   * the prefix is removed (`SCAN` and `UNLINK`, tombstones included).
   */
  async clear(): Promise<void> {
    this.#open();
    if (!this.listing) {
      await this.#conn.op('clear', () => unlinkAll(this.#conn, this.#keys));
      return;
    }
    await this.#conn.op('clear', async () => {
      while (Number(await this.#conn.run('clear', [String(this.#pruneBatch)], this.#route)) > 0) {
        // Each round removes one batch; sessions created meanwhile are removed too.
      }
    });
  }

  /**
   * Removes every key under the prefix, whatever it holds, with `SCAN` and
   * `UNLINK` on every master (O(keys in the database)). For tests and
   * maintenance; not atomic.
   */
  async purgeKeys(): Promise<number> {
    this.#open();
    return this.#conn.op('purgeKeys', () => unlinkAll(this.#conn, this.#keys));
  }

  /**
   * One node: one script writes the tombstone and publishes. Spread: the
   * tombstone (in the session's slot), then SPUBLISH to the channel's shard.
   */
  async publish(change: SessionChange): Promise<void> {
    this.#open();
    const json = JSON.stringify(copySessionChange(checkSessionChange(change)));
    const conn = this.#conn;
    if (this.#spreadOps === null) {
      await conn.op('publish', () => conn.run('publish', [change.id, json, this.#tombstoneTtl, this.#keys.channel], this.#route));
      return;
    }
    const tomb = this.#keys.tombstone(change.id);
    const channel = this.#keys.channel;
    await conn.op('publish', async () => {
      await conn.send(['SET', tomb, json, 'PX', this.#tombstoneTtl], tomb);
      await conn.send(['SPUBLISH', channel, json], channel);
    });
  }

  /** @inheritDoc */
  async tombstone(id: string): Promise<SessionChange | null> {
    this.#open();
    const key = this.#route ?? this.#keys.tombstone(id);
    const json = await this.#conn.op('tombstone', () => this.#conn.send<unknown>(['GET', this.#keys.tombstone(id)], key));
    if (typeof json !== 'string') return null;
    let change: unknown;
    try {
      change = JSON.parse(json);
    } catch {
      change = undefined;
    }
    const bad = validateSessionChange(change);
    if (bad !== null) {
      throw new NetloopError(ErrorCode.STORE_CORRUPT, `redis store: the tombstone of ${id} is not a session change (${bad})`, {
        details: { prefix: this.prefix, reason: bad },
      });
    }
    return copySessionChange(change as SessionChange);
  }

  /**
   * One round trip to Redis (`PING`): resolves once the server answered.
   * Rejects with `NETLOOP_STORE_UNAVAILABLE` when it is unreachable or does
   * not answer within `commandTimeoutMs` (the wait for a connection
   * included), and with `NETLOOP_STORE_CLOSED` once the store is closed.
   */
  async ping(): Promise<void> {
    this.#open();
    const reply = await this.#conn.op('ping', () => this.#conn.send<unknown>(['PING'], this.#route ?? this.#keys.channel));
    if (String(reply) !== 'PONG') {
      throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: PING got an unexpected reply', { details: { operation: 'ping' } });
    }
  }

  /**
   * Closes the store: later calls reject with `NETLOOP_STORE_CLOSED`; the
   * change feed's subscription ends. A client the store created is closed
   * (pending commands answered, then the connection ends; destroyed if that
   * takes longer than `commandTimeoutMs`); a client passed in is left open.
   * Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#feed.stop();
    await this.#conn.close();
  }

  /**
   * A listener of the store's events threw or its promise rejected: reported
   * as a process warning (`NETLOOP_HANDLER_ERROR`, the fault as `cause`),
   * never thrown into the client's socket events.
   */
  protected override _listenerFault(fault: unknown, name: string, _args: readonly unknown[]): void {
    reportFault(listenerFaultError('a redis store', name, fault, { prefix: this.prefix }), 'redis store', this);
  }

  /** Sends the touches queued this turn, in batches. */
  readonly #flushTouches = (): void => {
    this.#touchQueued = false;
    const all = this.#touches;
    this.#touches = [];
    for (let i = 0; i < all.length; i += TOUCH_BATCH) this.#sendTouches(all.slice(i, i + TOUCH_BATCH));
  };

  #sendTouches(batch: QueuedTouch[]): void {
    const conn = this.#conn;
    const spread = this.#spreadOps;
    let work: Promise<number[]>;
    if (this.#closed) {
      work = Promise.reject(new NetloopError(ErrorCode.STORE_CLOSED, 'the redis store is closed'));
    } else if (spread !== null) {
      work = conn.op('touch', () => spread.touch(batch));
    } else {
      // As for a create, the hash's PX is computed here, at the script's now. The horizon is
      // not: the script needs it only when the expiry passes it (now and then), and computes it
      // then; sending it with every touch cost every heartbeat two arguments.
      const now = this.#clock.wallNow();
      const grace = this.#graceMs;
      const args: string[] = [String(batch.length)];
      for (const t of batch) {
        const e = t.expiresAt;
        const [kind, conn] = conditionArgs(t.expected);
        args.push(t.id, String(e), String(t.lastActiveAt), e > now ? String(Math.ceil(e - now) + grace) : '', kind, conn);
      }
      work = conn.op('touch', () => conn.run('touch', args, this.#route, String(now))).then((out) => (out as unknown[]).map(Number));
    }
    work.then(
      (results) => {
        for (let i = 0; i < batch.length; i++) {
          const t = batch[i]!;
          if (results[i] === MOVED) t.reject(conditionFailed(t.id));
          else t.resolve(results[i] === 1);
        }
      },
      (err: unknown) => {
        for (const t of batch) t.reject(err);
      },
    );
  }

  #open(): void {
    if (this.#closed) throw closedError();
  }
}

function closedError(): NetloopError {
  return new NetloopError(ErrorCode.STORE_CLOSED, 'the redis store is closed');
}
