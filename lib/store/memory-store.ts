/**
 * The in-process {@link SessionStore}: Maps and indexes, no I/O. The default
 * store of the session registry.
 *
 * ```
 *   records   Map<id, entry>                insertion order = creation order
 *   byToken   Map<tokenHash, entry>         unless indexTokens: false (the registry's own store)
 *   byConn    Map<connectionId, entry>      only while a connection is bound
 *   byUser    Map<userId, entry | Set>      only for sessions with a user; a bare entry for one
 *   expiry    indexed binary min-heap of the store's own records by heap key
 *   retired   [entry, connection] pairs an owner ended, still in the Maps above
 *             until a sweep (`sweepRetired`) takes them out
 *
 *             heap[0] = soonest key
 *            /                 \
 *       heap[1]              heap[2]       each record knows its slot (`heapIndex`)
 * ```
 *
 * An entry is either a record of the store's own (created through the
 * public interface, copied in and out, one flat object of a stable shape) or
 * an adopted entry: an owner's object held as it is ({@link MemoryStore.adopt},
 * the registry's in-process fast path). Adopted entries are not in the heap:
 * their owner expires them (and is asked to, through `_storeSettle`, before
 * the store counts or lists).
 *
 * Liveness follows the injected clock: a record is live while
 * `expiresAt > clock.wallNow()`. Reads check `expiresAt` directly, so an
 * expired record is never returned even before it is purged. Counting and
 * listing first purge: they pop every heap entry whose key has passed and
 * remove the record if it really expired, or re-file it under its current
 * `expiresAt` if it was extended meanwhile. The heap key of a record is
 * therefore always at or before its real expiry (extensions re-file lazily,
 * moves to an earlier expiry re-file at once), which makes `count()` after a
 * purge exact: every record left in the Map is live. Physical removal happens
 * on every count, list and create (amortised O(log n) per expired record), so
 * the store never keeps dead records beyond the next such call, and
 * {@link MemoryStore.purge} lets an owner sweep on its own schedule.
 *
 * An owner may also end an adopted entry and leave its removal from the Maps
 * for later ({@link MemoryStore.retire}): taking a session out of four
 * string-keyed Maps of a million entries costs microseconds of cache misses,
 * which an owner expiring thousands at once would rather spend in idle slices
 * ({@link MemoryStore.sweepRetired}). A retired entry is dead for every read
 * from the moment it is retired (its `alive` is false), it is no longer
 * counted, and it is swept before the store counts, lists or reports its
 * sizes; a new record that claims its connection or id takes its place.
 *
 * Records handed in are copied, and records handed out are copies: callers
 * never share state with the store through the public interface.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, NetloopError, checkInteger } from '../core/errors.js';
import type {
  CreateOptions,
  Page,
  SessionFilter,
  SessionPage,
  SessionRecord,
  SessionState,
  SessionStore,
} from './contract.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** The time source; liveness is judged by `clock.wallNow()`. Default {@link systemClock}. */
  clock?: Clock;
  /** Page size when `list` is given no `limit`. Default 100. */
  defaultPageSize?: number;
  /** The largest page `list` returns, whatever `limit` asks. Default 10,000. */
  maxPageSize?: number;
  /**
   * Keep an index of token hashes, so that {@link MemoryStore.getByTokenHash}
   * works and a token hash held by another live record is refused. Default
   * true. The session registry's own store passes false: its tokens name
   * their session (`<id>.<secret>`), so it resolves them by id, and the index
   * would cost a Map entry (about 45 bytes) per session for nothing. Without
   * it, `getByTokenHash` throws `NETLOOP_INVALID_OPTION`.
   */
  indexTokens?: boolean;
}

/**
 * The owner of entries adopted with {@link MemoryStore.adopt} (the session
 * registry). The store calls it synchronously.
 */
export interface MemoryStoreOwner {
  /**
   * The store removed one of this owner's entries on its own account: a
   * public `delete`, `clear`, a `set`/`touch` to a past expiry, or an expired
   * entry evicted because a new record claims its token or connection. The
   * entry is already out of every index; the owner forgets it too.
   */
  _storeRemoved(entry: OwnedEntry): void;
  /**
   * Expire now every owned entry whose expiry is at or before wall time
   * `now` (removing each with {@link MemoryStore.release}). Called before the
   * store counts or lists, so that counts stay exact.
   */
  _storeSettle(now: number): void;
}

/**
 * The data of a session as one flat object (counters as plain numbers, no
 * nested `stats`): a record of the store's own, an adopted entry, and the
 * session registry's handle all have this shape, and
 * {@link flatSessionRecord} / {@link assignFlatSession} convert it to and
 * from the public {@link SessionRecord}.
 */
export interface FlatSession {
  readonly id: string;
  tokenHash: string;
  userId: string | null;
  connectionId: string | null;
  remoteAddress: string | null;
  state: SessionState;
  /** Never mutated in place: replaced as a whole. */
  metadata: Record<string, string>;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  heartbeats: number;
  createdAt: number;
  lastActiveAt: number;
  expiresAt: number;
  ttl: number;
}

/**
 * A session object owned by an in-process owner and held by the store
 * itself, without a copy: the same object is the store's record, the
 * owner's handle and (for the registry) its timing-wheel node. Counters are
 * flat numbers so that no nested object is allocated per session.
 * `expiresAt` and `lastActiveAt` may be accessors (the registry derives them
 * from its monotonic deadline); the store writes them only through
 * {@link MemoryStore.set} and {@link MemoryStore.touch}.
 */
export interface OwnedEntry extends FlatSession {
  /** The owner; never null for an adopted entry. */
  readonly _owner: MemoryStoreOwner;
  /**
   * False once the owner ended the entry (see {@link MemoryStore.retire});
   * the store then never reports it live. Absent means alive.
   */
  readonly alive?: boolean;
}

/**
 * A record created through the public interface: the same flat fields, a
 * stable shape (one hidden class), and its place in the expiry heap.
 */
class StoredRecord {
  readonly _owner: null = null;
  id: string;
  tokenHash: string;
  userId: string | null;
  connectionId: string | null;
  remoteAddress: string | null;
  state: SessionState;
  metadata: Record<string, string>;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  heartbeats: number;
  createdAt: number;
  lastActiveAt: number;
  expiresAt: number;
  ttl: number;
  /** The expiry the record is filed under in the heap; never after `expiresAt`. */
  heapKey: number;
  /** Index in the heap array, or -1 once removed. */
  heapIndex = -1;

  constructor(r: SessionRecord) {
    this.id = r.id;
    this.tokenHash = r.tokenHash;
    this.userId = r.userId;
    this.connectionId = r.connectionId;
    this.remoteAddress = r.remoteAddress;
    this.state = r.state;
    this.metadata = ownMetadata(r.metadata);
    this.bytesIn = r.stats.bytesIn;
    this.bytesOut = r.stats.bytesOut;
    this.messagesIn = r.stats.messagesIn;
    this.messagesOut = r.stats.messagesOut;
    this.heartbeats = r.stats.heartbeats;
    this.createdAt = r.createdAt;
    this.lastActiveAt = r.lastActiveAt;
    this.expiresAt = r.expiresAt;
    this.ttl = r.ttl;
    this.heapKey = r.expiresAt;
  }
}

/** What the indexes hold: the store's own records and adopted entries. */
type Entry = StoredRecord | OwnedEntry;

/** Live at wall time `now`: not expired and, for an adopted entry, not ended by its owner. Pure. */
function isAlive(r: Entry, now: number): boolean {
  return r.expiresAt > now && (r._owner === null || r.alive !== false);
}

/** A copy of a flat session in the public {@link SessionRecord} form (own `metadata` and `stats` objects). */
export function flatSessionRecord(r: Readonly<FlatSession>): SessionRecord {
  return {
    id: r.id,
    tokenHash: r.tokenHash,
    userId: r.userId,
    connectionId: r.connectionId,
    remoteAddress: r.remoteAddress,
    state: r.state,
    metadata: { ...r.metadata },
    stats: { bytesIn: r.bytesIn, bytesOut: r.bytesOut, messagesIn: r.messagesIn, messagesOut: r.messagesOut, heartbeats: r.heartbeats },
    createdAt: r.createdAt,
    lastActiveAt: r.lastActiveAt,
    expiresAt: r.expiresAt,
    ttl: r.ttl,
  };
}

/** Shared by every record with no metadata (never mutated: metadata is replaced, not edited). */
export const EMPTY_METADATA: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** `m` copied, or the shared empty object when it has no key. */
export function ownMetadata(m: Record<string, string>): Record<string, string> {
  for (const _ in m) return { ...m };
  return EMPTY_METADATA;
}

/**
 * Writes the fields of a public record into a flat session, in place, all
 * but `id`, `expiresAt` and `lastActiveAt` (which its owner sets in its own
 * way: the store last, after the rest; the registry's handle derives them
 * from its monotonic clock).
 */
export function assignFlatSession(r: FlatSession, from: SessionRecord): void {
  r.tokenHash = from.tokenHash;
  r.userId = from.userId;
  r.connectionId = from.connectionId;
  r.remoteAddress = from.remoteAddress;
  r.state = from.state;
  r.metadata = ownMetadata(from.metadata);
  r.bytesIn = from.stats.bytesIn;
  r.bytesOut = from.stats.bytesOut;
  r.messagesIn = from.stats.messagesIn;
  r.messagesOut = from.stats.messagesOut;
  r.heartbeats = from.stats.heartbeats;
  r.createdAt = from.createdAt;
  r.ttl = from.ttl;
}

function checkRecord(r: SessionRecord): void {
  if (r === null || typeof r !== 'object' || typeof r.id !== 'string' || r.id.length === 0 || typeof r.tokenHash !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session record needs a string id and token hash');
  }
  if (typeof r.expiresAt !== 'number' || Number.isNaN(r.expiresAt)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session record needs a numeric expiresAt', { details: { id: r.id } });
  }
}

function checkPage(page: Page | undefined, def: number, max: number): { offset: number; limit: number } {
  const offset = page?.offset ?? 0;
  const limit = page?.limit ?? def;
  checkInteger('page.offset', offset, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('page.limit', limit, 0, Number.MAX_SAFE_INTEGER);
  return { offset, limit: Math.min(limit, max) };
}

/**
 * A {@link SessionStore} kept in this process's memory. Fast and exact, lost on
 * restart, not shared between processes.
 */
export class MemoryStore implements SessionStore {
  /** @inheritDoc */
  readonly kind = 'memory';
  readonly #clock: Clock;
  readonly #defaultPage: number;
  readonly #maxPage: number;
  readonly #records = new Map<string, Entry>();
  readonly #byToken: Map<string, Entry> | null;
  readonly #byConn = new Map<string, Entry>();
  readonly #byUser = new Map<string, Entry | Set<Entry>>();
  readonly #heap: StoredRecord[] = [];
  readonly #owners = new Set<MemoryStoreOwner>();
  /** Retired entries and the connection each was indexed under: `#retired[i]`, `#retiredConn[i]` for i >= `#retiredPos`. */
  #retired: OwnedEntry[] = [];
  #retiredConn: (string | null)[] = [];
  #retiredPos = 0;
  #owned = 0;
  #ownedBound = 0;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 1, this.#maxPage);
    const indexTokens = options.indexTokens ?? true;
    if (typeof indexTokens !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'indexTokens must be a boolean', { details: { option: 'indexTokens' } });
    }
    this.#byToken = indexTokens ? new Map() : null;
  }

  /** Records physically held, live or not yet purged (for leak checks and diagnostics). */
  get size(): number {
    return this.#records.size;
  }

  /**
   * Entries held by each index and the heap, for leak checks: all return to 0
   * when the store is empty. Retired entries are swept first, so the sizes
   * are exact.
   */
  indexSizes(): { records: number; tokens: number; connections: number; users: number; heap: number } {
    this.sweepRetired();
    return {
      records: this.#records.size,
      tokens: this.#byToken === null ? 0 : this.#byToken.size,
      connections: this.#byConn.size,
      users: this.#byUser.size,
      heap: this.#heap.length,
    };
  }

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#open();
    checkRecord(record);
    const now = this.#clock.wallNow();
    this.#purgeHeap(now);
    const max = options.maxPerUser;
    if (max !== undefined) checkInteger('maxPerUser', max, 0, Number.MAX_SAFE_INTEGER);
    if (this.#records.has(record.id)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: record.id } });
    }
    if (max !== undefined && record.userId !== null && this.#liveCountOfUser(record.userId, now) >= max) return false;
    this.#dropIndexHolders(record.id, record.tokenHash, record.connectionId, now);
    const stored = new StoredRecord(record);
    this.#records.set(stored.id, stored);
    this.#index(stored);
    this.#heapPush(stored);
    return true;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    const r = this.#live(id, this.#clock.wallNow());
    return r === undefined ? null : flatSessionRecord(r);
  }

  /** @inheritDoc */
  async set(record: SessionRecord): Promise<boolean> {
    this.#open();
    return this.setSync(record);
  }

  /**
   * Synchronous {@link MemoryStore.set}, for in-process owners. Updates the
   * held object in place (an adopted entry stays the same object).
   */
  setSync(record: SessionRecord): boolean {
    checkRecord(record);
    const now = this.#clock.wallNow();
    const r = this.#live(record.id, now);
    if (r === undefined) return false;
    this.#unindex(r);
    try {
      this.#dropIndexHolders(record.id, record.tokenHash, record.connectionId, now);
    } catch (err) {
      this.#index(r);
      throw err;
    }
    assignFlatSession(r, record);
    r.lastActiveAt = record.lastActiveAt;
    this.#setExpiry(r, record.expiresAt);
    this.#index(r);
    // An adopted entry set to a past expiry is left to its owner, which expires it (with its own reason).
    if (!(r.expiresAt > now) && r._owner === null) this.#remove(r);
    return true;
  }

  /** @inheritDoc */
  async touch(id: string, expiresAt: number, lastActiveAt: number): Promise<boolean> {
    this.#open();
    return this.touchSync(id, expiresAt, lastActiveAt);
  }

  /**
   * Synchronous {@link MemoryStore.touch}, for in-process owners that must not
   * allocate a promise per heartbeat.
   */
  touchSync(id: string, expiresAt: number, lastActiveAt: number): boolean {
    const now = this.#clock.wallNow();
    const r = this.#live(id, now);
    if (r === undefined) return false;
    r.lastActiveAt = lastActiveAt;
    this.#setExpiry(r, expiresAt);
    if (!(r.expiresAt > now) && r._owner === null) this.#remove(r);
    return true;
  }

  /** @inheritDoc */
  async delete(id: string): Promise<boolean> {
    this.#open();
    return this.deleteSync(id);
  }

  /** Synchronous {@link MemoryStore.delete}; true if a live record was removed. */
  deleteSync(id: string): boolean {
    const r = this.#records.get(id);
    if (r === undefined) return false;
    const wasLive = isAlive(r, this.#clock.wallNow());
    this.#evict(r);
    return wasLive;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    if (this.#byToken === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'this memory store was created with indexTokens: false; look the session up by the id its token names', {
        details: { option: 'indexTokens' },
      });
    }
    const r = this.#byToken.get(tokenHash);
    return r === undefined || !this.#isLive(r, this.#clock.wallNow()) ? null : flatSessionRecord(r);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    const r = this.#byConn.get(connectionId);
    return r === undefined || !this.#isLive(r, this.#clock.wallNow()) ? null : flatSessionRecord(r);
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return this.#userRecords(userId, this.#clock.wallNow()).map(flatSessionRecord);
  }

  /** @inheritDoc */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const { offset, limit } = checkPage(page, this.#defaultPage, this.#maxPage);
    const now = this.#clock.wallNow();
    this.purge(now);
    const sessions: SessionRecord[] = [];
    let total = 0;
    const consider = (r: Entry): void => {
      if (filter.state !== undefined && r.state !== filter.state) return;
      if (total >= offset && sessions.length < limit) sessions.push(flatSessionRecord(r));
      total++;
    };
    if (filter.userId !== undefined) {
      for (const r of this.#userRecords(filter.userId, now)) consider(r);
    } else if (filter.state === undefined && limit === 0) {
      total = this.#records.size;
    } else {
      for (const r of this.#records.values()) consider(r);
    }
    return { sessions, total };
  }

  /** @inheritDoc */
  async count(filter: SessionFilter = {}): Promise<number> {
    this.#open();
    const now = this.#clock.wallNow();
    this.purge(now);
    if (filter.userId !== undefined) {
      const mine = this.#userRecords(filter.userId, now);
      return filter.state === undefined ? mine.length : mine.filter((r) => r.state === filter.state).length;
    }
    if (filter.state === undefined) return this.#records.size;
    let n = 0;
    for (const r of this.#records.values()) if (r.state === filter.state) n++;
    return n;
  }

  /** @inheritDoc */
  async clear(): Promise<void> {
    this.#open();
    const owned: OwnedEntry[] = [];
    for (const r of this.#records.values()) if (r._owner !== null) owned.push(r);
    this.#records.clear();
    this.#byToken?.clear();
    this.#byConn.clear();
    this.#byUser.clear();
    this.#heap.length = 0;
    this.#retired = [];
    this.#retiredConn = [];
    this.#retiredPos = 0;
    this.#owned = 0;
    this.#ownedBound = 0;
    for (const r of owned) if (r.alive !== false) r._owner._storeRemoved(r);
  }

  /** @inheritDoc */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Resolves while the store is open (it lives in this process); `NETLOOP_STORE_CLOSED` once closed. */
  async ping(): Promise<void> {
    this.#open();
  }

  /** True once {@link MemoryStore.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ── In-process owners ─────────────────────────────────────────────────────

  /**
   * Inserts an owner's own object as the record (no copy), with its indexes;
   * the in-process fast path of the session registry. The owner keeps the
   * object and may write its `lastActiveAt`, counters and (as accessors)
   * `expiresAt` directly: they are plain reads for the store. The owner also
   * manages its expiry (the entry is not in the store's heap): it removes the
   * entry with {@link MemoryStore.release} when it expires, and the store
   * asks it to (`_storeSettle`) before counting. Every change to the token
   * hash, user, connection, state or metadata goes through
   * {@link MemoryStore.setSync} (or `set`), which keeps the indexes right.
   *
   * With `replace`, an existing record of the same id is taken over (its
   * previous owner, if any, is told through `_storeRemoved`). Returns false
   * when `maxPerUser` refused it; throws like {@link MemoryStore.create}.
   */
  adopt(entry: OwnedEntry, options: CreateOptions & { replace?: boolean } = {}): boolean {
    this.#open();
    const now = this.#clock.wallNow();
    this.#purgeHeap(now);
    let existing = this.#records.get(entry.id);
    if (existing === entry) return true;
    if (existing !== undefined && existing._owner !== null && existing.alive === false) {
      // A retired entry still waiting for its sweep is no record any more.
      this.#remove(existing);
      existing = undefined;
    }
    if (existing !== undefined && options.replace !== true) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: entry.id } });
    }
    const max = options.maxPerUser;
    if (max !== undefined) {
      checkInteger('maxPerUser', max, 0, Number.MAX_SAFE_INTEGER);
      if (entry.userId !== null && this.#liveCountOfUser(entry.userId, now) >= max) return false;
    }
    if (existing !== undefined) {
      this.#remove(existing);
      if (existing._owner !== null) existing._owner._storeRemoved(existing);
    }
    this.#dropIndexHolders(entry.id, entry.tokenHash, entry.connectionId, now);
    this.#records.set(entry.id, entry);
    this.#owners.add(entry._owner);
    this.#owned++;
    this.#index(entry);
    return true;
  }

  /** The adopted entry with this id (live or not), or undefined: one Map lookup. */
  ownedById(id: string): OwnedEntry | undefined {
    const r = this.#records.get(id);
    return r === undefined || r._owner === null ? undefined : r;
  }

  /** The adopted entry bound to this connection, or undefined. */
  ownedByConnection(connectionId: string): OwnedEntry | undefined {
    const r = this.#byConn.get(connectionId);
    return r === undefined || r._owner === null ? undefined : r;
  }

  /** Removes an adopted entry and its indexes without telling its owner; true if it was held. */
  release(entry: OwnedEntry): boolean {
    if (this.#records.get(entry.id) !== entry) return false;
    this.#removeHeld(entry);
    return true;
  }

  /**
   * The owner ended a held, live adopted entry; its removal from the Maps is
   * left to {@link MemoryStore.sweepRetired}. Call it while the entry still
   * names its connection and before its `alive` turns false: the store
   * remembers the connection it was indexed under, so the owner may clear it
   * at once. From then on the entry is not counted, and every read treats it
   * as absent once `alive` is false. O(1), no Map access; the owner must only
   * retire an entry the store holds (the store tells it through
   * `_storeRemoved` whenever it drops one on its own account).
   */
  retire(entry: OwnedEntry): void {
    const conn = entry.connectionId;
    this.#retired.push(entry);
    this.#retiredConn.push(conn);
    this.#owned--;
    if (conn !== null) this.#ownedBound--;
  }

  /** Retired entries not yet swept out of the Maps. */
  get retiredCount(): number {
    return this.#retired.length - this.#retiredPos;
  }

  /**
   * Takes retired entries out of every Map, oldest first, until none is left
   * or `performance.now()` passes `until` (checked every 64 entries; default:
   * no limit). Each removal is identity-checked, so an entry that a new
   * record displaced or a delete removed meanwhile costs nothing more.
   * Returns how many are left.
   */
  sweepRetired(until: number = Number.POSITIVE_INFINITY): number {
    const list = this.#retired;
    const conns = this.#retiredConn;
    let i = this.#retiredPos;
    while (i < list.length) {
      const r = list[i]!;
      const conn = conns[i]!;
      list[i] = undefined as unknown as OwnedEntry; // let it be collected now, not when the array is reset
      i++;
      if (this.#records.get(r.id) === r) this.#records.delete(r.id);
      this.#unindexKeys(r, conn);
      if ((i & 63) === 0 && performance.now() >= until) break;
    }
    if (i >= list.length) {
      this.#retired = [];
      this.#retiredConn = [];
      this.#retiredPos = 0;
      return 0;
    }
    this.#retiredPos = i;
    return list.length - i;
  }

  /**
   * Gives an adopted entry back to the store: it is replaced by a record of
   * the store's own with the same fields (a copy), whose expiry the store
   * then manages. For an owner that goes away but leaves its sessions stored.
   */
  disown(entry: OwnedEntry): boolean {
    if (this.#records.get(entry.id) !== entry) return false;
    const copy = new StoredRecord(flatSessionRecord(entry));
    this.#remove(entry);
    this.#records.set(copy.id, copy);
    this.#index(copy);
    this.#heapPush(copy);
    return true;
  }

  /** Every adopted entry of `owner` (a scan: for an owner's close, not for hot paths). */
  ownedEntries(owner: MemoryStoreOwner): OwnedEntry[] {
    const out: OwnedEntry[] = [];
    for (const r of this.#records.values()) if (r._owner === owner && r.alive !== false) out.push(r);
    return out;
  }

  /** Stops calling `owner` back (`_storeSettle`); its entries should be released or disowned first. */
  forgetOwner(owner: MemoryStoreOwner): void {
    this.#owners.delete(owner);
  }

  /** Adopted entries held, and how many of them are bound to a connection. */
  ownedSizes(): { entries: number; bound: number } {
    return { entries: this.#owned, bound: this.#ownedBound };
  }

  /**
   * Removes every record whose expiry has passed at wall time `now` (default:
   * the clock's), after asking each owner of adopted entries to expire its
   * own. Cost: O(log n) per heap entry whose key has passed, plus what the
   * owners expire. Returns how many of the store's own records were removed.
   */
  purge(now: number = this.#clock.wallNow()): number {
    for (const owner of this.#owners) owner._storeSettle(now);
    this.sweepRetired();
    return this.#purgeHeap(now);
  }

  #purgeHeap(now: number): number {
    const heap = this.#heap;
    let removed = 0;
    while (heap.length > 0) {
      const top = heap[0]!;
      if (top.heapKey > now) break;
      if (top.expiresAt <= now) {
        this.#remove(top);
        removed++;
      } else {
        // Extended in place since it was filed: re-file under its real expiry.
        top.heapKey = top.expiresAt;
        this.#siftDown(0);
      }
    }
    return removed;
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the memory store is closed');
  }

  /**
   * Liveness of an entry. An expired record of the store's own is removed on
   * the way; an expired adopted entry is left to its owner (which expires it
   * within its own granularity), but is never reported live.
   */
  #isLive(r: Entry, now: number): boolean {
    if (isAlive(r, now)) return true;
    if (r._owner === null) this.#remove(r);
    return false;
  }

  /** The record if present and live. */
  #live(id: string, now: number): Entry | undefined {
    const r = this.#records.get(id);
    return r !== undefined && this.#isLive(r, now) ? r : undefined;
  }

  #userRecords(userId: string, now: number): Entry[] {
    const entry = this.#byUser.get(userId);
    if (entry === undefined) return [];
    const all = entry instanceof Set ? [...entry] : [entry];
    const out: Entry[] = [];
    for (const r of all) if (this.#isLive(r, now)) out.push(r);
    if (out.length > 1) out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  #liveCountOfUser(userId: string, now: number): number {
    const entry = this.#byUser.get(userId);
    if (entry === undefined) return 0;
    if (!(entry instanceof Set)) return this.#isLive(entry, now) ? 1 : 0;
    let n = 0;
    for (const r of [...entry]) if (this.#isLive(r, now)) n++;
    return n;
  }

  /**
   * A token hash or connection is unique among live records. If an expired
   * record still holds one that a new record claims, that record is removed
   * first (an adopted one with word to its owner); a live holder is a caller
   * error.
   */
  #dropIndexHolders(id: string, tokenHash: string, connectionId: string | null, now: number): void {
    const tokenHolder = this.#byToken?.get(tokenHash);
    if (tokenHolder !== undefined && tokenHolder.id !== id) {
      if (this.#isLive(tokenHolder, now)) {
        throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session has this token hash', { details: { id } });
      }
      this.#evict(tokenHolder);
    }
    if (connectionId !== null) {
      const connHolder = this.#byConn.get(connectionId);
      if (connHolder !== undefined && connHolder.id !== id) {
        if (this.#isLive(connHolder, now)) {
          throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session is bound to this connection', {
            details: { id, connectionId, holder: connHolder.id },
          });
        }
        this.#evict(connHolder);
      }
    }
  }

  #index(r: Entry): void {
    this.#byToken?.set(r.tokenHash, r);
    if (r.connectionId !== null) {
      this.#byConn.set(r.connectionId, r);
      if (r._owner !== null) this.#ownedBound++;
    }
    if (r.userId !== null) {
      const entry = this.#byUser.get(r.userId);
      if (entry === undefined) this.#byUser.set(r.userId, r);
      else if (entry instanceof Set) entry.add(r);
      else this.#byUser.set(r.userId, new Set([entry, r]));
    }
  }

  #unindex(r: Entry): void {
    // A retired entry's bound connection was uncounted when it retired.
    if (this.#unindexKeys(r, r.connectionId) && r._owner !== null && r.alive !== false) this.#ownedBound--;
  }

  /**
   * Takes `r` out of the token, connection and user indexes, each only where
   * it is the holder. The connection is passed in: a retired entry's owner may
   * have cleared it, so the sweep passes the one it was indexed under.
   * Returns whether a connection entry was removed.
   */
  #unindexKeys(r: Entry, conn: string | null): boolean {
    const tokens = this.#byToken;
    if (tokens !== null && tokens.get(r.tokenHash) === r) tokens.delete(r.tokenHash);
    const connRemoved = conn !== null && this.#byConn.get(conn) === r && this.#byConn.delete(conn);
    const userId = r.userId;
    if (userId !== null) {
      const entry = this.#byUser.get(userId);
      if (entry === r) this.#byUser.delete(userId);
      else if (entry instanceof Set) {
        entry.delete(r);
        if (entry.size === 1) this.#byUser.set(userId, entry.values().next().value as Entry);
        else if (entry.size === 0) this.#byUser.delete(userId);
      }
    }
    return connRemoved;
  }

  /** Removes a record (no word to an owner). */
  #remove(r: Entry): void {
    if (this.#records.get(r.id) === r) this.#removeHeld(r);
  }

  /** Removes a record known to be held. */
  #removeHeld(r: Entry): void {
    this.#records.delete(r.id);
    this.#unindex(r);
    if (r._owner === null) this.#heapRemove(r);
    else if (r.alive !== false) this.#owned--; // a retired entry was uncounted when it retired
  }

  /** Removes a record on the store's own account, telling the owner of an adopted one. */
  #evict(r: Entry): void {
    if (this.#records.get(r.id) !== r) return;
    this.#remove(r);
    if (r._owner !== null && r.alive !== false) r._owner._storeRemoved(r);
  }

  /** Sets the expiry; an earlier one re-files at once so the heap key never passes the real expiry. */
  #setExpiry(r: Entry, expiresAt: number): void {
    r.expiresAt = expiresAt;
    if (r._owner === null && expiresAt < r.heapKey) {
      r.heapKey = expiresAt;
      this.#siftUp(r.heapIndex);
    }
  }

  #heapPush(r: StoredRecord): void {
    r.heapIndex = this.#heap.length;
    this.#heap.push(r);
    this.#siftUp(r.heapIndex);
  }

  #heapRemove(r: StoredRecord): void {
    const heap = this.#heap;
    const i = r.heapIndex;
    if (i < 0) return;
    r.heapIndex = -1;
    const last = heap.pop()!;
    if (i === heap.length) return;
    heap[i] = last;
    last.heapIndex = i;
    this.#siftUp(i);
    this.#siftDown(last.heapIndex);
  }

  #siftUp(i: number): void {
    const heap = this.#heap;
    const r = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.heapKey <= r.heapKey) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    heap[i] = r;
    r.heapIndex = i;
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const r = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const rr = l + 1;
      const c = rr < n && heap[rr]!.heapKey < heap[l]!.heapKey ? rr : l;
      const child = heap[c]!;
      if (child.heapKey >= r.heapKey) break;
      heap[i] = child;
      child.heapIndex = i;
      i = c;
    }
    heap[i] = r;
    r.heapIndex = i;
  }
}
