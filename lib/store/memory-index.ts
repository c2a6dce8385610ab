/**
 * The memory store's Maps: records by id and the three indexes, kept
 * consistent with each other, and whether the records Map iterates oldest
 * first.
 *
 * ```
 *   records   Map<id, entry>                insertion order; `inOrder` says whether
 *                                           that is also oldest-first order
 *   byToken   Map<tokenHash, entry>         unless indexTokens: false (the registry's own store)
 *   byConn    Map<connectionId, entry>      only while a connection is bound
 *   byUser    Map<userId, entry | Set>      only for sessions with a user; a bare entry for one
 * ```
 *
 * Each removal is identity-checked (an index entry is only deleted where it
 * still points at the record being removed), so removing a record that a
 * newer one displaced costs nothing more and never unindexes the newer one.
 *
 * @module
 */

import type { Entry } from './memory-entry.js';
import { compareSessions } from './record.js';

/** See the module documentation. */
export class MemoryIndex {
  /** Every held entry by id, live or not yet purged. */
  readonly records = new Map<string, Entry>();
  /** Token hash to entry, or null when token hashes are not indexed. */
  readonly byToken: Map<string, Entry> | null;
  /** Bound connection to entry. */
  readonly byConn = new Map<string, Entry>();
  /** User to entry (one) or entries (several). */
  readonly byUser = new Map<string, Entry | Set<Entry>>();
  /** Adopted entries indexed under a connection (a retired one is uncounted when it retires). */
  ownedBound = 0;
  /** True while the records Map iterates oldest first (see {@link compareSessions}). */
  #inOrder = true;
  /** The entry inserted last, the bound a new entry is compared with. */
  #last: Entry | undefined = undefined;

  constructor(indexTokens: boolean) {
    this.byToken = indexTokens ? new Map() : null;
  }

  /**
   * True while iterating {@link MemoryIndex.records} yields the records
   * oldest first. It stays true as long as records are inserted in that
   * order (as a registry creating sessions as time goes does), and turns
   * false (until the store is empty again) when one is not, or when a
   * record's `createdAt` changes: listing then sorts.
   */
  get inOrder(): boolean {
    return this.#inOrder;
  }

  /** Inserts `r` into the records Map (not the indexes), keeping {@link MemoryIndex.inOrder}. */
  put(r: Entry): void {
    const last = this.#last;
    if (last !== undefined && this.#inOrder && compareSessions(last, r) > 0) this.#inOrder = false;
    this.#last = r;
    this.records.set(r.id, r);
  }

  /** Takes `r` out of the records Map if it is the entry held under its id (not the indexes). */
  delete(r: Entry): void {
    const records = this.records;
    if (records.get(r.id) === r) records.delete(r.id);
    if (records.size === 0) this.#reset();
  }

  /** A record's `createdAt` changed in place: the insertion order may no longer be oldest first. */
  reordered(): void {
    this.#inOrder = false;
  }

  /** Indexes `r` by token hash, connection and user. */
  index(r: Entry): void {
    this.byToken?.set(r.tokenHash, r);
    if (r.connectionId !== null) {
      this.byConn.set(r.connectionId, r);
      if (r._owner !== null) this.ownedBound++;
    }
    if (r.userId !== null) {
      const entry = this.byUser.get(r.userId);
      if (entry === undefined) this.byUser.set(r.userId, r);
      else if (entry instanceof Set) entry.add(r);
      else this.byUser.set(r.userId, new Set([entry, r]));
    }
  }

  /** Takes `r` out of the indexes under the keys it names now. */
  unindex(r: Entry): void {
    // A retired entry's bound connection was uncounted when it retired.
    if (this.unindexKeys(r, r.connectionId) && r._owner !== null && r.alive !== false) this.ownedBound--;
  }

  /**
   * Takes `r` out of the token, connection and user indexes, each only where
   * it is the holder. The connection is passed in: a retired entry's owner may
   * have cleared it, so the sweep passes the one it was indexed under.
   * Returns whether a connection entry was removed.
   */
  unindexKeys(r: Entry, conn: string | null): boolean {
    const tokens = this.byToken;
    if (tokens !== null && tokens.get(r.tokenHash) === r) tokens.delete(r.tokenHash);
    const connRemoved = conn !== null && this.byConn.get(conn) === r && this.byConn.delete(conn);
    const userId = r.userId;
    if (userId !== null) {
      const entry = this.byUser.get(userId);
      if (entry === r) this.byUser.delete(userId);
      else if (entry instanceof Set) {
        entry.delete(r);
        if (entry.size === 1) this.byUser.set(userId, entry.values().next().value as Entry);
        else if (entry.size === 0) this.byUser.delete(userId);
      }
    }
    return connRemoved;
  }

  /** Every entry indexed under `userId` (live or not), in no particular order. */
  userEntries(userId: string): Entry[] {
    const entry = this.byUser.get(userId);
    if (entry === undefined) return [];
    return entry instanceof Set ? [...entry] : [entry];
  }

  /** Empties every Map. */
  clear(): void {
    this.records.clear();
    this.byToken?.clear();
    this.byConn.clear();
    this.byUser.clear();
    this.ownedBound = 0;
    this.#reset();
  }

  #reset(): void {
    this.#inOrder = true;
    this.#last = undefined;
  }
}
