/**
 * The in-process {@link SessionStore}: Maps and indexes, no I/O. The default
 * store of the session registry.
 *
 * ```
 *   MemoryIndex (memory-index.ts)       records by id; byToken, byConn, byUser
 *   heap       ExpiryHeap               the store's own records by expiry key
 *   retired    [entry, connection]      entries an owner ended, still in the
 *                                       Maps until a sweep (`sweepRetired`)
 * ```
 *
 * An entry is either a record of the store's own (created through the
 * public interface, copied in and out, one flat object of a stable shape) or
 * an adopted entry: an owner's object held as it is ({@link MemoryStore.adopt},
 * the registry's in-process fast path; see `memory-entry.ts`). Adopted
 * entries are not in the heap: their owner expires them (and is asked to,
 * through `_storeSettle`, before the store counts or lists).
 *
 * Liveness follows the injected clock: a record is live while
 * `expiresAt > clock.wallNow()` (`record.ts`). Reads check `expiresAt`
 * directly, so an expired record is never returned even before it is
 * purged. Counting and listing first purge: they pop every heap entry whose
 * key has passed and remove the record if it really expired, or re-file it
 * under its current `expiresAt` if it was extended meanwhile. The heap key of
 * a record is therefore always at or before its real expiry (extensions
 * re-file lazily, moves to an earlier expiry re-file at once), which makes
 * `count()` after a purge exact: every record left in the Map is live.
 * Physical removal happens on every count, list and create (amortised
 * O(log n) per expired record), so the store never keeps dead records beyond
 * the next such call, and {@link MemoryStore.purge} lets an owner sweep on
 * its own schedule.
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
 * The store's contract and the owners' fast path (adopt, retire, sweep)
 * stay in this one class past the usual size: both act on the same Maps,
 * heap and retired list under the same invariants (an entry in the Maps is
 * live or retired, the heap key never after the real expiry), which one
 * class keeps private. The Maps themselves are in `memory-index.ts`, the
 * entries' shapes in `memory-entry.ts`.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import type { CreateOptions, OnlinePage, OnlineUsersPage, Page, SessionFilter, SessionPage, SessionPatch, SessionRecord, SessionStore, WriteCondition } from './contract.js';
import { ExpiryHeap } from './expiry-heap.js';
import { assignFlatSession, flatSessionRecord, ownMetadata } from './flat-session.js';
import type { Entry, MemoryStoreOwner, OwnedEntry } from './memory-entry.js';
import { StoredRecord, isAlive } from './memory-entry.js';
import { MemoryIndex } from './memory-index.js';
import {
  assertCondition,
  checkWriteCondition,
  STAT_KEYS,
  applySessionPatch,
  checkFilter,
  checkMaxPerUser,
  checkOnlinePage,
  checkPage,
  checkSessionPatch,
  checkSessionRecord,
  checkTouch,
  checkUserId,
  compareSessions,
  matchesFilter,
  onlinePageOf,
  pageOf,
} from './record.js';

export type { MemoryStoreOwner, OwnedEntry } from './memory-entry.js';

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
 * A {@link SessionStore} kept in this process's memory. Fast and exact, lost on
 * restart, not shared between processes.
 */
export class MemoryStore implements SessionStore {
  /** @inheritDoc */
  readonly kind = 'memory';
  readonly #clock: Clock;
  readonly #defaultPage: number;
  readonly #maxPage: number;
  readonly #ix: MemoryIndex;
  readonly #heap = new ExpiryHeap<StoredRecord>();
  readonly #owners = new Set<MemoryStoreOwner>();
  /** Retired entries and the connection each was indexed under: `#retired[i]`, `#retiredConn[i]` for i >= `#retiredPos`. */
  #retired: OwnedEntry[] = [];
  #retiredConn: (string | null)[] = [];
  #retiredPos = 0;
  #owned = 0;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 1, this.#maxPage);
    const indexTokens = options.indexTokens ?? true;
    if (typeof indexTokens !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'indexTokens must be a boolean', { details: { option: 'indexTokens' } });
    }
    this.#ix = new MemoryIndex(indexTokens);
  }

  /** Records physically held, live or not yet purged (for leak checks and diagnostics). */
  get size(): number {
    return this.#ix.records.size;
  }

  /**
   * Entries held by each index and the heap, for leak checks: all return to 0
   * when the store is empty. Retired entries are swept first, so the sizes
   * are exact.
   */
  indexSizes(): { records: number; tokens: number; connections: number; users: number; heap: number } {
    this.sweepRetired();
    const ix = this.#ix;
    return {
      records: ix.records.size,
      tokens: ix.byToken === null ? 0 : ix.byToken.size,
      connections: ix.byConn.size,
      users: ix.byUser.size,
      heap: this.#heap.size,
    };
  }

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    const max = checkMaxPerUser(options.maxPerUser);
    const now = this.#clock.wallNow();
    this.#purgeHeap(now);
    if (this.#ix.records.has(record.id)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: record.id } });
    }
    if (max !== undefined && record.userId !== null && this.#liveCountOfUser(record.userId, now) >= max) return false;
    this.#dropIndexHolders(record.id, record.tokenHash, record.connectionId, now);
    const stored = new StoredRecord(record);
    this.#ix.put(stored);
    this.#ix.index(stored);
    this.#heap.push(stored);
    return true;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    const r = this.#live(id, this.#clock.wallNow());
    return r === undefined ? null : flatSessionRecord(r);
  }

  /** @inheritDoc */
  async set(record: SessionRecord, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    return this.setSync(record, condition);
  }

  /**
   * Synchronous {@link MemoryStore.set}, for in-process owners. Updates the
   * held object in place (an adopted entry stays the same object).
   */
  setSync(record: SessionRecord, condition?: WriteCondition): boolean {
    checkSessionRecord(record);
    const expected = checkWriteCondition(condition);
    const now = this.#clock.wallNow();
    const r = this.#live(record.id, now);
    if (r === undefined) return false;
    assertCondition(r.id, r.connectionId, expected);
    const ix = this.#ix;
    ix.unindex(r);
    try {
      this.#dropIndexHolders(record.id, record.tokenHash, record.connectionId, now);
    } catch (err) {
      ix.index(r);
      throw err;
    }
    if (record.createdAt !== r.createdAt) ix.reordered();
    assignFlatSession(r, record);
    r.lastActiveAt = record.lastActiveAt;
    this.#setExpiry(r, record.expiresAt);
    ix.index(r);
    // An adopted entry set to a past expiry is left to its owner, which expires it (with its own reason).
    if (!(r.expiresAt > now) && r._owner === null) this.#remove(r);
    return true;
  }

  /** @inheritDoc */
  async touch(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    return this.touchSync(id, expiresAt, lastActiveAt, condition);
  }

  /**
   * Synchronous {@link MemoryStore.touch}, for in-process owners that must not
   * allocate a promise per heartbeat.
   */
  touchSync(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): boolean {
    checkTouch(id, expiresAt, lastActiveAt);
    const expected = checkWriteCondition(condition);
    const now = this.#clock.wallNow();
    const r = this.#live(id, now);
    if (r === undefined) return false;
    assertCondition(id, r.connectionId, expected);
    r.lastActiveAt = lastActiveAt;
    this.#setExpiry(r, expiresAt);
    if (!(r.expiresAt > now) && r._owner === null) this.#remove(r);
    return true;
  }

  /** @inheritDoc */
  async update(id: string, patch: SessionPatch, condition?: WriteCondition): Promise<SessionRecord | null> {
    this.#open();
    checkSessionPatch(patch);
    return this.updateSync(id, patch, condition);
  }

  /**
   * Synchronous {@link MemoryStore.update} of a checked patch, for in-process
   * owners: the held object is changed in place (an adopted entry stays the
   * same object). Nothing it changes is indexed, so no index moves.
   */
  updateSync(id: string, patch: SessionPatch, condition?: WriteCondition): SessionRecord | null {
    const expected = checkWriteCondition(condition);
    const r = this.#live(id, this.#clock.wallNow());
    if (r === undefined) return null;
    assertCondition(id, r.connectionId, expected);
    const next = applySessionPatch(flatSessionRecord(r), patch);
    r.state = next.state;
    if (patch.metadata !== undefined) r.metadata = ownMetadata(next.metadata);
    if (patch.stats !== undefined) for (const k of STAT_KEYS) r[k] = next.stats[k];
    return flatSessionRecord(r);
  }

  /**
   * This process's sessions only (the memory store is not shared). Cost:
   * O(sessions of the user).
   */
  async isOnline(userId: string): Promise<boolean> {
    this.#open();
    checkUserId(userId);
    return this.#online(userId, this.#clock.wallNow());
  }

  /** Cost: O(sessions with a user). */
  async onlineCount(): Promise<number> {
    this.#open();
    const now = this.#clock.wallNow();
    let n = 0;
    for (const userId of this.#ix.byUser.keys()) if (this.#online(userId, now)) n++;
    return n;
  }

  /**
   * Ascending user id; the cursor is the last user of the page. Cost: O(s +
   * u log u) per page for s sessions with a user and u users online.
   */
  async onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage> {
    this.#open();
    const bounds = checkOnlinePage(page, this.#defaultPage, this.#maxPage);
    const now = this.#clock.wallNow();
    const users: string[] = [];
    for (const userId of this.#ix.byUser.keys()) if (this.#online(userId, now)) users.push(userId);
    return onlinePageOf(users, bounds);
  }

  /** @inheritDoc */
  async delete(id: string, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    return this.deleteSync(id, condition);
  }

  /** Synchronous {@link MemoryStore.delete}; true if a live record was removed. */
  deleteSync(id: string, condition?: WriteCondition): boolean {
    const expected = checkWriteCondition(condition);
    const r = this.#ix.records.get(id);
    if (r === undefined) return false;
    const wasLive = isAlive(r, this.#clock.wallNow());
    if (wasLive) assertCondition(id, r.connectionId, expected);
    this.#evict(r);
    return wasLive;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    const tokens = this.#ix.byToken;
    if (tokens === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'this memory store was created with indexTokens: false; look the session up by the id its token names', {
        details: { option: 'indexTokens' },
      });
    }
    const r = tokens.get(tokenHash);
    return r === undefined || !this.#isLive(r, this.#clock.wallNow()) ? null : flatSessionRecord(r);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    const r = this.#ix.byConn.get(connectionId);
    return r === undefined || !this.#isLive(r, this.#clock.wallNow()) ? null : flatSessionRecord(r);
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return this.#userRecords(userId, this.#clock.wallNow()).map(flatSessionRecord);
  }

  /**
   * Live records matching `filter`, oldest first, one page of them, with the
   * total that matched. `NETLOOP_INVALID_OPTION` for a page whose offset or
   * limit is not an integer >= 0, or a filter with an unknown state.
   *
   * Cost: O(n) over the records held (over the user's with a `userId`),
   * copying only the page; O(n log n) while the records were not stored
   * oldest first (see `MemoryIndex.inOrder`), which a registry creating its
   * sessions as time goes never causes.
   */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const f = checkFilter(filter);
    const bounds = checkPage(page, this.#defaultPage, this.#maxPage);
    const now = this.#clock.wallNow();
    this.purge(now);
    if (f.userId !== undefined) {
      const mine = this.#userRecords(f.userId, now);
      return pageOf(f.state === undefined ? mine : mine.filter((r) => r.state === f.state), bounds, flatSessionRecord, true);
    }
    const records = this.#ix.records;
    if (f.state === undefined && bounds.limit === 0) return { sessions: [], total: records.size };
    const matching = f.state === undefined ? records.values() : filtered(records.values(), f);
    return pageOf(matching, bounds, flatSessionRecord, this.#ix.inOrder);
  }

  /** @inheritDoc */
  async count(filter: SessionFilter = {}): Promise<number> {
    this.#open();
    const f = checkFilter(filter);
    const now = this.#clock.wallNow();
    this.purge(now);
    if (f.userId !== undefined) {
      const mine = this.#userRecords(f.userId, now);
      return f.state === undefined ? mine.length : mine.filter((r) => r.state === f.state).length;
    }
    if (f.state === undefined) return this.#ix.records.size;
    let n = 0;
    for (const r of this.#ix.records.values()) if (r.state === f.state) n++;
    return n;
  }

  /** @inheritDoc */
  async clear(): Promise<void> {
    this.#open();
    const owned: OwnedEntry[] = [];
    for (const r of this.#ix.records.values()) if (r._owner !== null) owned.push(r);
    this.#ix.clear();
    this.#heap.clear();
    this.#retired = [];
    this.#retiredConn = [];
    this.#retiredPos = 0;
    this.#owned = 0;
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
    let existing = this.#ix.records.get(entry.id);
    if (existing === entry) return true;
    if (existing !== undefined && existing._owner !== null && existing.alive === false) {
      // A retired entry still waiting for its sweep is no record any more.
      this.#remove(existing);
      existing = undefined;
    }
    if (existing !== undefined && options.replace !== true) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: entry.id } });
    }
    const max = checkMaxPerUser(options.maxPerUser);
    if (max !== undefined && entry.userId !== null && this.#liveCountOfUser(entry.userId, now) >= max) return false;
    if (existing !== undefined) {
      this.#remove(existing);
      if (existing._owner !== null) existing._owner._storeRemoved(existing);
    }
    this.#dropIndexHolders(entry.id, entry.tokenHash, entry.connectionId, now);
    this.#ix.put(entry);
    this.#owners.add(entry._owner);
    this.#owned++;
    this.#ix.index(entry);
    return true;
  }

  /** The adopted entry with this id (live or not), or undefined: one Map lookup. */
  ownedById(id: string): OwnedEntry | undefined {
    const r = this.#ix.records.get(id);
    return r === undefined || r._owner === null ? undefined : r;
  }

  /** The adopted entry bound to this connection, or undefined. */
  ownedByConnection(connectionId: string): OwnedEntry | undefined {
    const r = this.#ix.byConn.get(connectionId);
    return r === undefined || r._owner === null ? undefined : r;
  }

  /** Removes an adopted entry and its indexes without telling its owner; true if it was held. */
  release(entry: OwnedEntry): boolean {
    if (this.#ix.records.get(entry.id) !== entry) return false;
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
    if (conn !== null) this.#ix.ownedBound--;
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
    const ix = this.#ix;
    let i = this.#retiredPos;
    while (i < list.length) {
      const r = list[i]!;
      const conn = conns[i]!;
      list[i] = undefined as unknown as OwnedEntry; // let it be collected now, not when the array is reset
      i++;
      ix.delete(r);
      ix.unindexKeys(r, conn);
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
    if (this.#ix.records.get(entry.id) !== entry) return false;
    const copy = new StoredRecord(flatSessionRecord(entry));
    this.#remove(entry);
    this.#ix.put(copy);
    this.#ix.index(copy);
    this.#heap.push(copy);
    return true;
  }

  /** Every adopted entry of `owner` (a scan: for an owner's close, not for hot paths). */
  ownedEntries(owner: MemoryStoreOwner): OwnedEntry[] {
    const out: OwnedEntry[] = [];
    for (const r of this.#ix.records.values()) if (r._owner === owner && r.alive !== false) out.push(r);
    return out;
  }

  /** Stops calling `owner` back (`_storeSettle`); its entries should be released or disowned first. */
  forgetOwner(owner: MemoryStoreOwner): void {
    this.#owners.delete(owner);
  }

  /** Adopted entries held, and how many of them are bound to a connection. */
  ownedSizes(): { entries: number; bound: number } {
    return { entries: this.#owned, bound: this.#ix.ownedBound };
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
    for (let top = heap.peek(); top !== undefined && top.heapKey <= now; top = heap.peek()) {
      if (top.expiresAt <= now) {
        this.#remove(top);
        removed++;
      } else {
        // Extended in place since it was filed: re-file under its real expiry.
        top.heapKey = top.expiresAt;
        heap.topRaised();
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
    const r = this.#ix.records.get(id);
    return r !== undefined && this.#isLive(r, now) ? r : undefined;
  }

  /** A user's live records, oldest first. */
  #userRecords(userId: string, now: number): Entry[] {
    const out: Entry[] = [];
    for (const r of this.#ix.userEntries(userId)) if (this.#isLive(r, now)) out.push(r);
    if (out.length > 1) out.sort(compareSessions);
    return out;
  }

  /** True when a live entry of `userId` is bound to a connection (pure: removes nothing, so it may run inside an iteration of the Maps). */
  #online(userId: string, now: number): boolean {
    const entry = this.#ix.byUser.get(userId);
    if (entry === undefined) return false;
    if (!(entry instanceof Set)) return entry.connectionId !== null && isAlive(entry, now);
    for (const r of entry) if (r.connectionId !== null && isAlive(r, now)) return true;
    return false;
  }

  #liveCountOfUser(userId: string, now: number): number {
    const entry = this.#ix.byUser.get(userId);
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
    const tokenHolder = this.#ix.byToken?.get(tokenHash);
    if (tokenHolder !== undefined && tokenHolder.id !== id) {
      if (this.#isLive(tokenHolder, now)) {
        throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session has this token hash', { details: { id } });
      }
      this.#evict(tokenHolder);
    }
    if (connectionId !== null) {
      const connHolder = this.#ix.byConn.get(connectionId);
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

  /** Removes a record (no word to an owner). */
  #remove(r: Entry): void {
    if (this.#ix.records.get(r.id) === r) this.#removeHeld(r);
  }

  /** Removes a record known to be held. */
  #removeHeld(r: Entry): void {
    this.#ix.delete(r);
    this.#ix.unindex(r);
    if (r._owner === null) this.#heap.remove(r);
    else if (r.alive !== false) this.#owned--; // a retired entry was uncounted when it retired
  }

  /** Removes a record on the store's own account, telling the owner of an adopted one. */
  #evict(r: Entry): void {
    if (this.#ix.records.get(r.id) !== r) return;
    this.#remove(r);
    if (r._owner !== null && r.alive !== false) r._owner._storeRemoved(r);
  }

  /** Sets the expiry; an earlier one re-files at once so the heap key never passes the real expiry. */
  #setExpiry(r: Entry, expiresAt: number): void {
    r.expiresAt = expiresAt;
    if (r._owner === null && expiresAt < r.heapKey) {
      r.heapKey = expiresAt;
      this.#heap.keyLowered(r);
    }
  }
}

/** The entries of `entries` that match `filter`, lazily. */
function* filtered(entries: Iterable<Entry>, filter: SessionFilter): Iterable<Entry> {
  for (const r of entries) if (matchesFilter(r, filter)) yield r;
}
