/**
 * What the memory store holds: records of its own, and entries lent by an
 * in-process owner (the session registry's handles), behind one type.
 *
 * ```
 *   Entry = StoredRecord            created through the public interface: a copy,
 *                                   filed in the store's expiry heap, _owner null
 *         | OwnedEntry              an owner's own object, held as it is (no copy),
 *                                   expired by its owner, _owner set
 * ```
 *
 * @module
 */

import type { SessionRecord, SessionState } from './contract.js';
import type { HeapNode } from './expiry-heap.js';
import type { FlatSession } from './flat-session.js';
import { ownMetadata } from './flat-session.js';
import { isLive } from './record.js';

/**
 * The owner of entries adopted with `MemoryStore.adopt` (the session
 * registry). The store calls it synchronously.
 */
export interface MemoryStoreOwner {
  /**
   * @internal The store removed one of this owner's entries on its own account: a
   * public `delete`, `clear`, a `set`/`touch` to a past expiry, or an expired
   * entry evicted because a new record claims its token or connection. The
   * entry is already out of every index; the owner forgets it too.
   */
  _storeRemoved(entry: OwnedEntry): void;
  /**
   * @internal Expire now every owned entry whose expiry is at or before wall time
   * `now` (removing each with `MemoryStore.release` or `retire`). Called
   * before the store counts or lists, so that counts stay exact.
   */
  _storeSettle(now: number): void;
}

/**
 * A session object owned by an in-process owner and held by the store
 * itself, without a copy: the same object is the store's record, the
 * owner's handle and (for the registry) its timing-wheel node. Counters are
 * flat numbers so that no nested object is allocated per session.
 * `expiresAt` and `lastActiveAt` may be accessors (the registry derives them
 * from its monotonic deadline); the store writes them only through
 * `MemoryStore.set` and `MemoryStore.touch`.
 */
export interface OwnedEntry extends FlatSession {
  /** The owner; never null for an adopted entry. */
  readonly _owner: MemoryStoreOwner;
  /**
   * False once the owner ended the entry (see `MemoryStore.retire`); the
   * store then never reports it live. Absent means alive.
   */
  readonly alive?: boolean;
}

/**
 * A record created through the public interface: the same flat fields, a
 * stable shape (one hidden class), and its place in the expiry heap.
 */
export class StoredRecord implements FlatSession, HeapNode {
  readonly _owner: null = null;
  id: string;
  tokenHash: string;
  userId: string | null;
  connectionId: string | null;
  remoteAddress: string | null;
  remotePort: number | null;
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
    this.remotePort = r.remotePort ?? null;
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
export type Entry = StoredRecord | OwnedEntry;

/** Live at wall time `now`: not expired and, for an adopted entry, not ended by its owner. Pure. */
export function isAlive(r: Entry, now: number): boolean {
  return isLive(r, now) && (r._owner === null || r.alive !== false);
}
