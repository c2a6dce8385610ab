/**
 * The file store's working set: every record in memory, with the indexes
 * kept consistent with them. The disk holds what the working set held at the
 * last save (plus the journal); reads are answered from here alone.
 *
 * ```
 *   records       Map<id, record>       records as stored (copies of the callers')
 *   byToken       Map<tokenHash, id>    one to one
 *   byConnection  Map<connectionId, id> one to one, while bound
 *   byUser        Map<userId, Set<id>>  one to many
 * ```
 *
 * Expired records stay until something needs their place (an id, token hash
 * or connection claimed by a new record evicts an expired holder) or the
 * periodic sweep drops them; every read judges liveness itself (`isLive`),
 * so an expired record is never returned.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionFilter, SessionRecord } from '../contract.js';
import { compareSessions, isLive, matchesFilter } from '../record.js';

/** See the module documentation. */
export class WorkingSet {
  readonly #records = new Map<string, SessionRecord>();
  readonly #byToken = new Map<string, string>();
  readonly #byConnection = new Map<string, string>();
  readonly #byUser = new Map<string, Set<string>>();

  /** Records held, expired ones not yet swept included. */
  get size(): number {
    return this.#records.size;
  }

  /** The record with this id, live or not. */
  held(id: string): SessionRecord | undefined {
    return this.#records.get(id);
  }

  /** The id holding this token hash, live or not. */
  tokenHolder(tokenHash: string): string | undefined {
    return this.#byToken.get(tokenHash);
  }

  /** The record if present and live at `now`. */
  live(id: string, now: number): SessionRecord | null {
    const r = this.#records.get(id);
    return r !== undefined && isLive(r, now) ? r : null;
  }

  /** The live record holding this token hash. */
  liveByToken(tokenHash: string, now: number): SessionRecord | null {
    const id = this.#byToken.get(tokenHash);
    return id === undefined ? null : this.live(id, now);
  }

  /** The live record bound to this connection. */
  liveByConnection(connectionId: string, now: number): SessionRecord | null {
    const id = this.#byConnection.get(connectionId);
    return id === undefined ? null : this.live(id, now);
  }

  /** The user's live records, in no particular order. */
  liveOfUser(userId: string, now: number): SessionRecord[] {
    const ids = this.#byUser.get(userId);
    const out: SessionRecord[] = [];
    if (ids === undefined) return out;
    for (const id of ids) {
      const r = this.live(id, now);
      if (r !== null) out.push(r);
    }
    return out;
  }

  /** True when a live record of `userId` is bound to a connection. */
  isOnline(userId: string, now: number): boolean {
    const ids = this.#byUser.get(userId);
    if (ids === undefined) return false;
    for (const id of ids) {
      const r = this.live(id, now);
      if (r !== null && r.connectionId !== null) return true;
    }
    return false;
  }

  /** Every user with a live record bound to a connection, in no particular order. */
  onlineUsers(now: number): string[] {
    const out: string[] = [];
    for (const userId of this.#byUser.keys()) if (this.isOnline(userId, now)) out.push(userId);
    return out;
  }

  /** The live records matching `filter` (checked), in no particular order. */
  matching(filter: SessionFilter, now: number): SessionRecord[] {
    const source = filter.userId !== undefined ? this.liveOfUser(filter.userId, now) : this.#records.values();
    const out: SessionRecord[] = [];
    for (const r of source) if (isLive(r, now) && matchesFilter(r, filter)) out.push(r);
    return out;
  }

  /** The live records, oldest first (what a snapshot holds). */
  liveRecords(now: number): SessionRecord[] {
    const live: SessionRecord[] = [];
    for (const r of this.#records.values()) if (isLive(r, now)) live.push(r);
    return live.sort(compareSessions);
  }

  /** Removes the record with this id if it has expired. */
  evictIfExpired(id: string | undefined, now: number): void {
    if (id === undefined) return;
    const r = this.#records.get(id);
    if (r !== undefined && !isLive(r, now)) this.remove(r);
  }

  /**
   * Throws `NETLOOP_INVALID_VALUE` if the record's token hash or connection
   * belongs to another live record; evicts expired holders.
   */
  checkIndexFree(r: SessionRecord, now: number): void {
    this.evictIfExpired(this.#byToken.get(r.tokenHash), now);
    const tokenOwner = this.#byToken.get(r.tokenHash);
    if (tokenOwner !== undefined && tokenOwner !== r.id) throw conflict('tokenHash', r.tokenHash);
    if (r.connectionId !== null) {
      this.evictIfExpired(this.#byConnection.get(r.connectionId), now);
      const connOwner = this.#byConnection.get(r.connectionId);
      if (connOwner !== undefined && connOwner !== r.id) throw conflict('connectionId', r.connectionId);
    }
  }

  /** Adds `r` (already checked) and its index entries. */
  insert(r: SessionRecord): void {
    this.#records.set(r.id, r);
    this.#byToken.set(r.tokenHash, r.id);
    if (r.connectionId !== null) this.#byConnection.set(r.connectionId, r.id);
    if (r.userId !== null) {
      let set = this.#byUser.get(r.userId);
      if (set === undefined) this.#byUser.set(r.userId, (set = new Set()));
      set.add(r.id);
    }
  }

  /** Removes `r` and the index entries that point at it. */
  remove(r: SessionRecord): void {
    this.#records.delete(r.id);
    if (this.#byToken.get(r.tokenHash) === r.id) this.#byToken.delete(r.tokenHash);
    if (r.connectionId !== null && this.#byConnection.get(r.connectionId) === r.id) this.#byConnection.delete(r.connectionId);
    if (r.userId !== null) {
      const set = this.#byUser.get(r.userId);
      set?.delete(r.id);
      if (set?.size === 0) this.#byUser.delete(r.userId);
    }
  }

  /** Drops every expired record; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const r of [...this.#records.values()]) {
      if (!isLive(r, now)) {
        this.remove(r);
        n++;
      }
    }
    return n;
  }

  /** Removes every record. */
  clear(): void {
    this.#records.clear();
    this.#byToken.clear();
    this.#byConnection.clear();
    this.#byUser.clear();
  }
}

/** The error of a record claiming an id, token hash or connection a live record holds. */
export function conflict(field: string, value: string): NetloopError {
  // A token hash is not the token, but it is still not echoed: only the field is named.
  return new NetloopError(ErrorCode.INVALID_VALUE, `another live session already holds this ${field}`, {
    details: field === 'id' ? { field, id: value } : { field },
  });
}
