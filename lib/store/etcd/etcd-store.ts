/**
 * A {@link SessionStore} in etcd (v3 API), shared by every process and
 * machine that uses the same cluster and key prefix: sessions, their
 * indexes, presence, and a change feed between processes.
 *
 * The `etcd3` package (gRPC) is an optional peer dependency: it is imported
 * the first time a store needs its client, so users of other stores install
 * nothing more.
 *
 * ## Key layout (prefix `P`, default `netloop/`)
 *
 * ```
 *   P s/<id>             the record (JSON)                        ┐ one session's keys, written
 *   P t/<tokenHash>      <id>                                     │ in one transaction, under
 *   P c/<connectionId>   <id>                                     │ the lease of the bucket its
 *   P u/<userId>/<id>    [createdAt, expiresAt, state, user, bound] │ expiry falls in
 *   P l/<id>             [createdAt, expiresAt, state, user, bound] ┘
 *   P e/<id>             tombstone: the last change published for the session (minutes)
 *   P v/<origin>/<seq>   one published change (a minute): what the feed watches
 * ```
 *
 * ## Writes
 *
 * Every write is one transaction over a session and all its index keys,
 * guarded by compares of the revisions it read (`writes.ts`): a reader never
 * sees half a session, two processes never both take a token, connection or
 * id, and `maxPerUser` holds across processes (the create compares the
 * revisions of every key of the user's index). A heartbeat is one round trip
 * when this process knows the session (it read or wrote it before).
 *
 * ## Time
 *
 * Liveness follows the injected clock, as in every store: a record is live
 * while `expiresAt > clock.wallNow()`, and every read checks it. etcd
 * removes a session's keys by itself through leases (`leases.ts`): one per
 * bucket of `leaseBucketMs` of expiry time, so a crashed process's sessions
 * disappear at their expiry plus at most one bucket width (plus
 * `expiryGraceMs`), with no cleanup step and no keep-alive.
 *
 * ## Failures
 *
 * Every operation settles within `commandTimeoutMs`: a server that does not
 * answer (down, frozen, partitioned) rejects it with
 * `NETLOOP_STORE_UNAVAILABLE`, and the next operation tries again. A write
 * whose answer was lost is not retried blindly: it may or may not have been
 * applied, and the session is then either wholly there or wholly absent.
 *
 * ## History
 *
 * Every write is a new etcd revision, kept until compacted. The store
 * compacts behind itself, keeping `compactionRetentionMs` of history
 * (`compactor.ts`); a deployment that sets etcd's
 * `--auto-compaction-retention` can turn that off.
 *
 * ## Files
 *
 * ```
 *   etcd-store.ts       the store: the SessionStore methods, presence
 *   options.ts          its options and events
 *   connection.ts       the etcd3 client, deadlines, fault-handling policies, coded errors
 *   credentials.ts      TLS and authentication options (types only)
 *   keys.ts             the key layout
 *   codec.ts            records and index values to and from bytes
 *   leases.ts           lease buckets
 *   writes.ts           the transactions of create, set, update, delete
 *   touches.ts          heartbeats, batched per turn of the event loop
 *   reads.ts            consistent scans for listing, counting and presence
 *   feed.ts             the change feed's watch
 *   compactor.ts        compaction behind the store
 * ```
 *
 * @module
 */

import { OperationStats } from '../operation-stats.js';
import type { StoreOperationSample } from '../operation-stats.js';
import { randomBytes } from 'node:crypto';
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
  applySessionPatch,
  checkFilter,
  checkMaxPerUser,
  checkOnlinePage,
  checkPage,
  checkSessionChange,
  checkSessionPatch,
  checkSessionRecord,
  checkTouch,
  checkWriteCondition,
  checkUserId,
  compareSessions,
  copySessionChange,
  copySessionRecord,
  matchesFilter,
} from '../record.js';
import type { ListEntry } from './codec.js';
import { decodeListEntry } from './codec.js';
import { Compactor } from './compactor.js';
import { EtcdConnection, RECONNECT_BASE_MS } from './connection.js';
import { ChangeFeed } from './feed.js';
import { listenerFaultError } from '../listener-fault.js';
import { KeySpace, prefixEnd } from './keys.js';
import { LeaseBuckets } from './leases.js';
import { SessionReader } from './reads.js';
import { TouchBatcher } from './touches.js';
import { RecordCache, SessionWriter } from './writes.js';

export type { EtcdAuth, EtcdCredentials } from './credentials.js';

export type { EtcdStoreOptions, EtcdStoreEvents } from './options.js';
import type { EtcdStoreEvents, EtcdStoreOptions } from './options.js';

/** The SessionStore in etcd; see the module documentation for layout, time and failures. */
export class EtcdStore extends TypedEmitter<EtcdStoreEvents> implements SharedSessionStore {
  /** @inheritDoc */
  readonly kind = 'etcd';
  /** The key prefix of this store. */
  readonly prefix: string;

  readonly #clock: Clock;
  readonly #defaultPage: number;
  readonly #maxPage: number;
  readonly #changeTtlMs: number;
  readonly #tombstoneTtlMs: number;
  readonly #keys: KeySpace;
  readonly #conn: EtcdConnection;
  readonly #leases: LeaseBuckets;
  readonly #cache: RecordCache;
  readonly #writer: SessionWriter;
  readonly #touches: TouchBatcher;
  readonly #reader: SessionReader;
  readonly #feed: ChangeFeed;
  readonly #compactor: Compactor;
  /** This store's own name in the changes' keys (not the change's `origin`, which is the registry's). */
  readonly #self = randomBytes(8).toString('hex');
  #seq = 0;
  #closed = false;

  /** Per-operation timings (see {@link EtcdStore.operationStats}). */
  readonly #ops = new OperationStats();

  constructor(options: EtcdStoreOptions = {}) {
    super();
    this.#ops.wrap(this);
    const prefix = options.prefix ?? 'netloop/';
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'prefix must be a non-empty string', { details: { option: 'prefix' } });
    }
    const hosts = typeof options.hosts === 'string' ? [options.hosts] : [...(options.hosts ?? ['http://127.0.0.1:2379'])];
    if (hosts.length === 0 || hosts.some((h) => typeof h !== 'string' || h.length === 0)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'hosts must be one or more non-empty strings', { details: { option: 'hosts' } });
    }
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'onError must be a function', { details: { option: 'onError' } });
    }
    this.prefix = prefix;
    this.#clock = options.clock ?? systemClock;
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 1, this.#maxPage);
    this.#changeTtlMs = checkInteger('changeTtlMs', options.changeTtlMs ?? 60_000, 1_000, 86_400_000);
    this.#tombstoneTtlMs = checkInteger('tombstoneTtlMs', options.tombstoneTtlMs ?? 300_000, 1_000, 86_400_000);
    const bucketMs = checkInteger('leaseBucketMs', options.leaseBucketMs ?? 5_000, 1_000, 3_600_000);
    const graceMs = checkInteger('expiryGraceMs', options.expiryGraceMs ?? 0, 0, 86_400_000);
    const reconnectMaxMs = checkInteger('reconnectMaxDelayMs', options.reconnectMaxDelayMs ?? 2_000, RECONNECT_BASE_MS, 600_000);
    this.#keys = new KeySpace(prefix);
    this.#conn = new EtcdConnection({
      hosts,
      credentials: options.credentials,
      auth: options.auth,
      timeoutMs: checkInteger('commandTimeoutMs', options.commandTimeoutMs ?? 2_000, 1, 600_000),
      connectTimeoutMs: checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? 2_000, 1, 600_000),
      reconnectMaxMs,
      keepAliveMs: 10_000,
    });
    this.#leases = new LeaseBuckets(bucketMs, graceMs);
    this.#cache = new RecordCache(checkInteger('cacheSize', options.cacheSize ?? 10_000, 0, 10_000_000));
    this.#writer = new SessionWriter(this.#conn, this.#keys, this.#leases, this.#cache, this.#clock);
    this.#touches = new TouchBatcher(this.#conn, this.#keys, this.#leases, this.#cache, this.#clock);
    this.#reader = new SessionReader(this.#conn, this.#keys, checkInteger('scanBatch', options.scanBatch ?? 1_000, 1, 100_000));
    const report = (err: NetloopError): void => void this.emit('error', err);
    this.#feed = new ChangeFeed(
      this.#conn,
      this.#keys,
      this.#keys.changesOf(this.#self),
      { change: (c) => this.emit('change', c), state: (s) => this.emit('feed', s), error: report },
      reconnectMaxMs,
    );
    this.#compactor = new Compactor(this.#conn, checkInteger('compactionRetentionMs', options.compactionRetentionMs ?? 300_000, 0, 86_400_000 * 30), report);
    if (options.onError !== undefined) this.on('error', options.onError);
  }

  /** Adds a listener; the first `'change'` listener starts the feed's watch. */
  override on<K extends keyof EtcdStoreEvents & string>(name: K, listener: EtcdStoreEvents[K]): this {
    super.on(name, listener);
    if (name === 'change') this.#startFeed();
    return this;
  }

  /** Adds a one-time listener; a `'change'` listener starts the feed's watch. */
  override once<K extends keyof EtcdStoreEvents & string>(name: K, listener: EtcdStoreEvents[K]): this {
    super.once(name, listener);
    if (name === 'change') this.#startFeed();
    return this;
  }

  /** True while the feed's watch is established (after a `'change'` listener was added). */
  get feedUp(): boolean {
    return this.#feed.up;
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
    const max = checkMaxPerUser(options.maxPerUser);
    this.#compactor.start();
    return this.#writer.create(record, max);
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    const now = this.#clock.wallNow();
    const stored = await this.#conn.op('get', (client, call) => this.#writer.read(client, call, id));
    return stored !== null && stored.rec.expiresAt > now ? copySessionRecord(stored.rec) : null;
  }

  /** @inheritDoc */
  async set(record: SessionRecord, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    const expected = checkWriteCondition(condition);
    const next = record;
    return this.#writer.rewrite({
      name: 'set',
      id: record.id,
      gone: false,
      expected,
      decide: () => ({ next, result: true }),
      claims: (cur, n) => {
        const out: Array<'token' | 'connection'> = [];
        if (n.tokenHash !== cur.tokenHash) out.push('token');
        if (n.connectionId !== null && n.connectionId !== cur.connectionId) out.push('connection');
        return out;
      },
    });
  }

  /**
   * Moves a live record's expiry and last-active stamp (see
   * {@link SessionStore.touch}). The touches of one turn of the event loop
   * go to etcd together, up to 25 sessions per transaction.
   */
  async touch(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    checkTouch(id, expiresAt, lastActiveAt);
    const expected = checkWriteCondition(condition);
    const batched = this.#touches.touch(id, expiresAt, lastActiveAt, expected);
    if (batched !== null) return batched;
    // This turn already touches the session under another condition: this one goes alone.
    return this.#writer.rewrite({
      name: 'touch',
      id,
      gone: false,
      expected,
      decide: (cur) => ({ next: { ...copySessionRecord(cur), expiresAt, lastActiveAt }, result: true }),
    });
  }

  /**
   * Applies `patch` to a live record in one atomic step (a transaction that
   * compares the record's revision; concurrent updates each apply to the
   * result of the one before) and resolves the record afterwards; null when
   * there is no live record (never revives one). `NETLOOP_INVALID_VALUE` for
   * a malformed patch, nothing changed.
   */
  async update(id: string, patch: SessionPatch, condition?: WriteCondition): Promise<SessionRecord | null> {
    this.#open();
    checkSessionPatch(patch);
    const expected = checkWriteCondition(condition);
    return this.#writer.rewrite<SessionRecord | null>({
      name: 'update',
      id,
      gone: null,
      expected,
      decide: (cur) => {
        const next = applySessionPatch(cur, patch);
        return { next, result: applySessionPatch(next, {}) };
      },
    });
  }

  /** @inheritDoc */
  async delete(id: string, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    const expected = checkWriteCondition(condition);
    return this.#writer.rewrite({ name: 'delete', id, gone: false, expected, removeExpired: true, decide: () => ({ next: null, result: true }) });
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    return this.#lookup('getByTokenHash', this.#keys.token(tokenHash), (r) => r.tokenHash === tokenHash);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    return this.#lookup('getByConnection', this.#keys.connection(connectionId), (r) => r.connectionId === connectionId);
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return (await this.#page('getByUser', { userId }, 0, Number.MAX_SAFE_INTEGER)).sessions;
  }

  /**
   * Live records matching `filter`, oldest first, one page of them, with the
   * total, all read at one etcd revision.
   *
   * Cost: every list entry of the store is read (a few dozen bytes per
   * session, `scanBatch` per request), or only the user's with a `userId`;
   * then the page's records, in one more round trip.
   */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const f = checkFilter(filter);
    const { offset, limit } = checkPage(page, this.#defaultPage, this.#maxPage);
    return this.#page('list', f, offset, limit);
  }

  /** How many live records match `filter`; the cost of {@link EtcdStore.list} without fetching a page. */
  async count(filter: SessionFilter = {}): Promise<number> {
    return (await this.list(filter, { offset: 0, limit: 0 })).total;
  }

  /** The records of `[offset, offset + limit)` of the live records matching `f`, oldest first, and their total, at one revision. */
  #page(name: string, f: SessionFilter, offset: number, limit: number): Promise<SessionPage> {
    const now = this.#clock.wallNow();
    const range = f.userId !== undefined ? this.#keys.user(f.userId) : this.#keys.list;
    return this.#conn.op(name, (client, call) =>
      this.#reader.consistent(async () => {
        const { entries, revision } = await this.#reader.entries(client, call, range);
        const kept = entries.filter((e) => e.expiresAt > now && matchesFilter(e, f)).sort(compareSessions);
        const ids = kept.slice(offset, offset + limit).map((e) => e.id);
        const sessions = ids.length === 0 ? [] : await this.#reader.fetch(client, call, ids, revision);
        return { sessions, total: kept.length };
      }),
    );
  }

  /** True while a live session of `userId` is bound to a connection, in any process. Reads that user's index entries only. */
  async isOnline(userId: string): Promise<boolean> {
    this.#open();
    checkUserId(userId);
    const now = this.#clock.wallNow();
    const range = this.#keys.user(userId);
    return this.#conn.op('isOnline', async (client, call) => {
      const { entries } = await this.#reader.entries(client, call, range);
      return entries.some((e) => online(e, now));
    });
  }

  /** How many users are online (see {@link EtcdStore.isOnline}), in every process. Reads the whole user index: O(sessions with a user). */
  async onlineCount(): Promise<number> {
    this.#open();
    const now = this.#clock.wallNow();
    return this.#conn.op('onlineCount', async (client, call) => {
      const { kvs } = await this.#reader.scan(client, call, this.#keys.users);
      const users = new Set<string>();
      for (const kv of kvs) {
        if (online(decodeListEntry('', kv.value, this.prefix), now)) users.add(this.#keys.userOf(kv.key));
      }
      return users.size;
    });
  }

  /**
   * One page of the users online, in key order (ascending user id for ids of
   * letters, digits and most punctuation: `%` and `/` are escaped in keys).
   * Reads the user index from the cursor on, until the page is full and one
   * more online user is seen (so the last page says `cursor: null`).
   */
  async onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage> {
    this.#open();
    const { cursor, limit } = checkOnlinePage(page, this.#defaultPage, this.#maxPage);
    const now = this.#clock.wallNow();
    const users = this.#keys.users;
    const from = cursor === null ? users.key : prefixEnd(this.#keys.user(cursor).key);
    return this.#conn.op('onlineUsers', async (client, call) => {
      const found: string[] = [];
      let revision = 0;
      let key = from;
      let last: string | undefined;
      for (;;) {
        const res = await client.kv.range({ key, range_end: users.end, limit: 1_000, revision }, call);
        const rev = this.#conn.observe(res.header);
        if (revision === 0) revision = rev;
        for (const kv of res.kvs) {
          const user = this.#keys.userOf(kv.key);
          if (user === last || !online(decodeListEntry('', kv.value, this.prefix), now)) continue;
          if (found.length === limit) return { users: found, cursor: found[found.length - 1]! };
          found.push(user);
          last = user;
        }
        if (!res.more || res.kvs.length === 0) return { users: found, cursor: null };
        key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
      }
    });
  }

  /**
   * Publishes a change to every process watching this store's feed: one
   * transaction puts the session's tombstone (kept `tombstoneTtlMs`) and the
   * change (kept `changeTtlMs` for watchers that reconnect). A malformed
   * change is refused with `NETLOOP_INVALID_VALUE`.
   */
  async publish(change: SessionChange): Promise<void> {
    this.#open();
    const c = copySessionChange(checkSessionChange(change));
    const seq = ++this.#seq;
    const value = Buffer.from(JSON.stringify(c));
    await this.#conn.op('publish', async (client, call) => {
      const now = this.#clock.wallNow();
      for (;;) {
        const tombLease = await this.#leases.leaseFor(now + this.#tombstoneTtlMs, now, client, call);
        const changeLease = await this.#leases.leaseFor(now + this.#changeTtlMs, now, client, call);
        const tomb = Buffer.from(JSON.stringify({ change: c, expiresAt: now + this.#tombstoneTtlMs }));
        try {
          const res = await client.kv.txn(
            {
              success: [
                { request_put: { key: this.#keys.tombstone(c.id), value: tomb, lease: tombLease } },
                { request_put: { key: this.#keys.change(this.#self, seq), value, lease: changeLease } },
              ],
            },
            call,
          );
          this.#conn.observe(res.header);
          return;
        } catch (err) {
          if (!this.#conn.isLeaseNotFound(err)) throw err;
          await this.#leases.forget(tombLease);
          await this.#leases.forget(changeLease);
        }
      }
    });
  }

  /** The last change published for session `id` while its tombstone lives (`tombstoneTtlMs`, by the store's clock), else null. */
  async tombstone(id: string): Promise<SessionChange | null> {
    this.#open();
    const now = this.#clock.wallNow();
    return this.#conn.op('tombstone', async (client, call) => {
      const res = await client.kv.range({ key: this.#keys.tombstone(id) }, call);
      this.#conn.observe(res.header);
      const kv = res.kvs[0];
      if (kv === undefined) return null;
      let stored: { change?: unknown; expiresAt?: unknown };
      try {
        stored = JSON.parse(kv.value.toString('utf8')) as typeof stored;
      } catch (err) {
        throw new NetloopError(ErrorCode.STORE_CORRUPT, `etcd store: a tombstone under prefix ${this.prefix} is not valid JSON`, { cause: err, details: { prefix: this.prefix } });
      }
      if (typeof stored !== 'object' || stored === null || typeof stored.expiresAt !== 'number') {
        throw new NetloopError(ErrorCode.STORE_CORRUPT, `etcd store: a tombstone under prefix ${this.prefix} is not what the store writes`, { details: { prefix: this.prefix } });
      }
      if (!(stored.expiresAt > now)) return null;
      return copySessionChange(checkStoredChange(stored.change, this.prefix));
    });
  }

  /** Removes every session of this prefix and its index keys, in one transaction. Tombstones and changes are left to their TTLs. */
  async clear(): Promise<void> {
    this.#open();
    await this.#conn.op('clear', async (client, call) => {
      const res = await client.kv.txn({ success: this.#keys.sessionRanges.map((r) => ({ request_delete_range: { key: r.key, range_end: r.end } })) }, call);
      this.#conn.observe(res.header);
      this.#cache.clear();
    });
  }

  /** Removes every key under the prefix, whatever it holds, in one request. For tests and maintenance. Resolves how many keys were removed. */
  async purgeKeys(): Promise<number> {
    this.#open();
    return this.#conn.op('purgeKeys', async (client, call) => {
      const res = await client.kv.deleteRange({ key: this.#keys.all.key, range_end: this.#keys.all.end }, call);
      this.#conn.observe(res.header);
      this.#cache.clear();
      return Number(res.deleted);
    });
  }

  /**
   * One linearizable read of etcd (a count of one key): resolves once the
   * cluster answered with a leader. Rejects with `NETLOOP_STORE_UNAVAILABLE`
   * when it is unreachable or does not answer within `commandTimeoutMs`, and
   * with `NETLOOP_STORE_CLOSED` once the store is closed.
   */
  async ping(): Promise<void> {
    this.#open();
    await this.#conn.op('ping', async (client, call) => {
      this.#conn.observe((await client.kv.range({ key: this.#keys.pingKey, count_only: true }, call)).header);
    });
  }

  /**
   * Closes the store: later calls reject with `NETLOOP_STORE_CLOSED`; the
   * feed's watch and compaction stop, operations in flight settle, and the
   * client closes. Sessions and their leases stay in etcd (other processes
   * may resume them). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return this.#conn.close();
    this.#closed = true;
    await Promise.all([this.#feed.stop(), this.#compactor.stop()]);
    await this.#conn.close();
  }

  /**
   * A listener of the store's events threw or its promise rejected: reported
   * as a process warning (`NETLOOP_HANDLER_ERROR`, the fault as `cause`).
   */
  protected override _listenerFault(fault: unknown, name: string, _args: readonly unknown[]): void {
    reportFault(listenerFaultError('an etcd store', name, fault, { prefix: this.prefix }), 'etcd store', this);
  }

  /** A one-to-one index key's session, if it is live and still holds the key. */
  #lookup(name: string, key: Buffer, holds: (r: SessionRecord) => boolean): Promise<SessionRecord | null> {
    const now = this.#clock.wallNow();
    return this.#conn.op(name, async (client, call) => {
      const res = await client.kv.range({ key }, call);
      this.#conn.observe(res.header);
      const kv = res.kvs[0];
      if (kv === undefined) return null;
      const stored = await this.#writer.read(client, call, kv.value.toString('utf8'));
      return stored !== null && stored.rec.expiresAt > now && holds(stored.rec) ? copySessionRecord(stored.rec) : null;
    });
  }

  #startFeed(): void {
    if (this.#closed) return;
    this.#feed.start();
    this.#compactor.start();
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the etcd store is closed');
  }
}

/** A user index entry that makes its user online at `now`: live and bound. */
function online(e: ListEntry, now: number): boolean {
  return e.bound && e.expiresAt > now;
}

/** A tombstone's change, checked (`NETLOOP_STORE_CORRUPT` for foreign data). */
function checkStoredChange(change: unknown, prefix: string): SessionChange {
  try {
    return checkSessionChange(change as SessionChange);
  } catch (err) {
    throw new NetloopError(ErrorCode.STORE_CORRUPT, `etcd store: a tombstone under prefix ${prefix} is not a session change`, { cause: err, details: { prefix } });
  }
}
