/**
 * The in-process {@link SessionStore}: Maps and indexes, no I/O. The default
 * store of the session registry.
 *
 * ```
 *   records   Map<id, StoredRecord>        insertion order = creation order
 *   byToken   Map<tokenHash, id>
 *   byConn    Map<connectionId, id>        only while a connection is bound
 *   byUser    Map<userId, id | Set<id>>    a bare id for the common single session
 *   expiry    indexed binary min-heap of StoredRecord by heap key
 *
 *             heap[0] = soonest key
 *            /                 \
 *       heap[1]              heap[2]       each record knows its slot (`heapIndex`)
 * ```
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
 * Records handed in are copied, and records handed out are copies: callers
 * never share state with the store through the public interface. The
 * in-process fast path {@link MemoryStore.liveRecord} is the one exception; it
 * exists so the registry can update a heartbeat in place (see there).
 *
 * @module
 */

import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { ErrorCode, NetloopError, checkInteger } from './errors.js';
import type {
  CreateOptions,
  Page,
  SessionFilter,
  SessionPage,
  SessionRecord,
  SessionStore,
} from './session-store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** The time source; liveness is judged by `clock.wallNow()`. Default {@link systemClock}. */
  clock?: Clock;
  /** Page size when `list` is given no `limit`. Default 100. */
  defaultPageSize?: number;
  /** The largest page `list` returns, whatever `limit` asks. Default 10,000. */
  maxPageSize?: number;
}

/** A record as held by the store: the public fields plus its place in the expiry heap. */
interface StoredRecord extends SessionRecord {
  /** The expiry the record is filed under in the heap; never after `expiresAt`. */
  heapKey: number;
  /** Index in the heap array, or -1 once removed. */
  heapIndex: number;
}

function copyOut(r: SessionRecord): SessionRecord {
  return {
    id: r.id,
    tokenHash: r.tokenHash,
    userId: r.userId,
    connectionId: r.connectionId,
    remoteAddress: r.remoteAddress,
    state: r.state,
    metadata: { ...r.metadata },
    stats: {
      bytesIn: r.stats.bytesIn,
      bytesOut: r.stats.bytesOut,
      messagesIn: r.stats.messagesIn,
      messagesOut: r.stats.messagesOut,
      heartbeats: r.stats.heartbeats,
    },
    createdAt: r.createdAt,
    lastActiveAt: r.lastActiveAt,
    expiresAt: r.expiresAt,
    ttl: r.ttl,
  };
}

/** Shared by every stored record with no metadata (never mutated: metadata is replaced, not edited, by `set`). */
const EMPTY_METADATA: Record<string, string> = Object.freeze({}) as Record<string, string>;

function ownMetadata(m: Record<string, string>): Record<string, string> {
  for (const _ in m) return { ...m };
  return EMPTY_METADATA;
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
  readonly #records = new Map<string, StoredRecord>();
  readonly #byToken = new Map<string, string>();
  readonly #byConn = new Map<string, string>();
  readonly #byUser = new Map<string, string | Set<string>>();
  readonly #heap: StoredRecord[] = [];
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 1, this.#maxPage);
  }

  /** Records physically held, live or not yet purged (for leak checks and diagnostics). */
  get size(): number {
    return this.#records.size;
  }

  /** Entries held by each index and the heap, for leak checks: all return to 0 when the store is empty. */
  indexSizes(): { records: number; tokens: number; connections: number; users: number; heap: number } {
    return {
      records: this.#records.size,
      tokens: this.#byToken.size,
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
    this.purge(now);
    const max = options.maxPerUser;
    if (max !== undefined) checkInteger('maxPerUser', max, 0, Number.MAX_SAFE_INTEGER);
    if (this.#records.has(record.id)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: record.id } });
    }
    if (max !== undefined && record.userId !== null && this.#liveCountOfUser(record.userId, now) >= max) return false;
    this.#dropIndexHolders(record, now);
    const stored = copyOut(record) as StoredRecord;
    stored.metadata = ownMetadata(record.metadata);
    stored.heapKey = stored.expiresAt;
    stored.heapIndex = -1;
    this.#records.set(stored.id, stored);
    this.#index(stored);
    this.#heapPush(stored);
    return true;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    const r = this.#live(id, this.#clock.wallNow());
    return r === undefined ? null : copyOut(r);
  }

  /** @inheritDoc */
  async set(record: SessionRecord): Promise<boolean> {
    this.#open();
    checkRecord(record);
    const now = this.#clock.wallNow();
    const r = this.#live(record.id, now);
    if (r === undefined) return false;
    this.#unindex(r);
    this.#dropIndexHolders(record, now);
    // Update in place so that holders of `liveRecord()` keep a valid reference.
    r.tokenHash = record.tokenHash;
    r.userId = record.userId;
    r.connectionId = record.connectionId;
    r.remoteAddress = record.remoteAddress;
    r.state = record.state;
    r.metadata = ownMetadata(record.metadata);
    r.stats = { ...record.stats };
    r.createdAt = record.createdAt;
    r.lastActiveAt = record.lastActiveAt;
    r.ttl = record.ttl;
    this.#setExpiry(r, record.expiresAt);
    this.#index(r);
    if (!(r.expiresAt > now)) this.#remove(r);
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
    if (!(r.expiresAt > now)) this.#remove(r);
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
    const wasLive = r.expiresAt > this.#clock.wallNow();
    this.#remove(r);
    return wasLive;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    const id = this.#byToken.get(tokenHash);
    const r = id === undefined ? undefined : this.#live(id, this.#clock.wallNow());
    return r === undefined ? null : copyOut(r);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    const id = this.#byConn.get(connectionId);
    const r = id === undefined ? undefined : this.#live(id, this.#clock.wallNow());
    return r === undefined ? null : copyOut(r);
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return this.#userRecords(userId, this.#clock.wallNow()).map(copyOut);
  }

  /** @inheritDoc */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const { offset, limit } = checkPage(page, this.#defaultPage, this.#maxPage);
    const now = this.#clock.wallNow();
    this.purge(now);
    const sessions: SessionRecord[] = [];
    let total = 0;
    const consider = (r: StoredRecord): void => {
      if (filter.state !== undefined && r.state !== filter.state) return;
      if (total >= offset && sessions.length < limit) sessions.push(copyOut(r));
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
    this.#records.clear();
    this.#byToken.clear();
    this.#byConn.clear();
    this.#byUser.clear();
    this.#heap.length = 0;
  }

  /** @inheritDoc */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** True once {@link MemoryStore.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The store's own live record object for `id` (not a copy), or undefined.
   *
   * In-process fast path for the session registry: the holder may write
   * `expiresAt` to a LATER time, `lastActiveAt` and the `stats` counters in
   * place (a heartbeat then costs a few field writes, no promise and no copy);
   * the expiry heap re-files extended records lazily. Every other change
   * (token hash, user, connection, state, metadata, an earlier expiry) must go
   * through {@link MemoryStore.set} or {@link MemoryStore.touch}, which keep
   * the indexes and the heap right and update this same object in place.
   */
  liveRecord(id: string): SessionRecord | undefined {
    if (this.#closed) return undefined;
    return this.#live(id, this.#clock.wallNow());
  }

  /**
   * Removes every record whose expiry has passed at wall time `now` (default:
   * the clock's). Cost: O(log n) per heap entry whose key has passed.
   * Returns how many records were removed.
   */
  purge(now: number = this.#clock.wallNow()): number {
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

  /** The record if present and live; an expired one found here is removed on the way. */
  #live(id: string, now: number): StoredRecord | undefined {
    const r = this.#records.get(id);
    if (r === undefined) return undefined;
    if (r.expiresAt > now) return r;
    this.#remove(r);
    return undefined;
  }

  #userRecords(userId: string, now: number): StoredRecord[] {
    const entry = this.#byUser.get(userId);
    if (entry === undefined) return [];
    const ids = typeof entry === 'string' ? [entry] : [...entry];
    const out: StoredRecord[] = [];
    for (const id of ids) {
      const r = this.#live(id, now);
      if (r !== undefined) out.push(r);
    }
    if (out.length > 1) out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  #liveCountOfUser(userId: string, now: number): number {
    const entry = this.#byUser.get(userId);
    if (entry === undefined) return 0;
    if (typeof entry === 'string') return this.#live(entry, now) === undefined ? 0 : 1;
    let n = 0;
    for (const id of [...entry]) if (this.#live(id, now) !== undefined) n++;
    return n;
  }

  /**
   * A token hash or connection is unique among live records. If an expired,
   * not yet purged record still holds one that `record` claims, that record
   * is removed first; a live holder is a caller error.
   */
  #dropIndexHolders(record: SessionRecord, now: number): void {
    const tokenHolder = this.#byToken.get(record.tokenHash);
    if (tokenHolder !== undefined && tokenHolder !== record.id && this.#live(tokenHolder, now) !== undefined) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session has this token hash', { details: { id: record.id } });
    }
    if (record.connectionId !== null) {
      const connHolder = this.#byConn.get(record.connectionId);
      if (connHolder !== undefined && connHolder !== record.id && this.#live(connHolder, now) !== undefined) {
        throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session is bound to this connection', {
          details: { id: record.id, connectionId: record.connectionId, holder: connHolder },
        });
      }
    }
  }

  #index(r: StoredRecord): void {
    this.#byToken.set(r.tokenHash, r.id);
    if (r.connectionId !== null) this.#byConn.set(r.connectionId, r.id);
    if (r.userId !== null) {
      const entry = this.#byUser.get(r.userId);
      if (entry === undefined) this.#byUser.set(r.userId, r.id);
      else if (typeof entry === 'string') this.#byUser.set(r.userId, new Set([entry, r.id]));
      else entry.add(r.id);
    }
  }

  #unindex(r: StoredRecord): void {
    if (this.#byToken.get(r.tokenHash) === r.id) this.#byToken.delete(r.tokenHash);
    if (r.connectionId !== null && this.#byConn.get(r.connectionId) === r.id) this.#byConn.delete(r.connectionId);
    if (r.userId !== null) {
      const entry = this.#byUser.get(r.userId);
      if (entry === r.id) this.#byUser.delete(r.userId);
      else if (typeof entry === 'object') {
        entry.delete(r.id);
        if (entry.size === 1) this.#byUser.set(r.userId, entry.values().next().value as string);
        else if (entry.size === 0) this.#byUser.delete(r.userId);
      }
    }
  }

  #remove(r: StoredRecord): void {
    if (this.#records.get(r.id) !== r) return;
    this.#records.delete(r.id);
    this.#unindex(r);
    this.#heapRemove(r);
  }

  /** Sets the expiry; an earlier one re-files at once so the heap key never passes the real expiry. */
  #setExpiry(r: StoredRecord, expiresAt: number): void {
    r.expiresAt = expiresAt;
    if (expiresAt < r.heapKey) {
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
