/**
 * How the registry keeps its sessions in its store: ONE interface, two
 * strategies, chosen once when the registry is built.
 *
 * ```
 *   SessionRegistry ──(lifecycle, policy, events)──▶ SessionStorage
 *                                                       ├─ InPlaceStorage      the MemoryStore: the handle IS
 *                                                       │   (in-place-storage.ts)   the store's record; no copy,
 *                                                       │                           no write-behind, expired
 *                                                       │                           sessions swept in slices
 *                                                       └─ WriteBehindStorage  any other store: the handle is a
 *                                                           (write-behind-storage.ts) local copy; heartbeats and
 *                                                                                   counters written behind at
 *                                                                                   each audit, the rest through
 * ```
 *
 * The registry picks one when it is built (a `MemoryStore` is kept in
 * place, anything else written behind) and never asks again: every place
 * where the two differ is a method here. Both index the registry's local
 * handles by id and by bound connection (in place, the memory store's own
 * Maps do it).
 *
 * @module
 */

import type { CreateOptions, SessionRecord, SessionStore, WriteCondition } from '../store/contract.js';
import { copySessionRecord } from '../store/record.js';
import type { HandleOwner, SessionHandle } from './handle.js';
import type { SessionInfo } from './types.js';

/** A stored record as the registry shows it: a copy without its token hash. */
export function sessionInfo(r: SessionRecord): SessionInfo {
  const { tokenHash: _secret, ...info } = copySessionRecord(r);
  return info;
}

/** What a storage strategy asks of the registry. */
export interface StorageHost {
  /** The registry, owner of every handle (and, in place, of the memory store's adopted entries). */
  readonly owner: HandleOwner;
  /** The store sessions live in. */
  readonly store: SessionStore;
  /** The longest synchronous slice of cleanup or write-behind work, in ms (`auditBudgetMs`). */
  readonly budgetMs: number;
  /** True once the registry is closed. */
  isClosed(): boolean;
  /** True while an audit runs (cleanup slices give way to it). */
  isAuditing(): boolean;
  /** A write behind found the session gone from the store: end it locally (event `expired`, reason `'store'`, or its tombstone's). */
  lost(h: SessionHandle): void;
  /** True when the store is shared between processes (it has a change feed). */
  readonly shared: boolean;
  /**
   * A store write made on behalf of a connection failed with `err`: true
   * (and counted) when it is the store's refusal of a conditional write
   * (the session was bound to another connection meanwhile), false for any
   * other failure.
   */
  superseded(err: unknown): boolean;
}

/**
 * The strategy interface (see the module documentation). Handles passed in
 * are this registry's; "local" means held by this registry.
 */
export interface SessionStorage {
  /** True when heartbeats and counters are written behind (any store but the memory store). */
  readonly writeBehind: boolean;
  /** Expired sessions not yet taken out of the store's Maps (in place; 0 otherwise). */
  readonly cleanupPending: number;
  /** Handles waiting for the write-behind flush. */
  readonly dirtyCount: number;

  /** The local handle with this id (even ended or past its deadline), or undefined. */
  get(id: string): SessionHandle | undefined;
  /** The local handle indexed under this connection (check its mode), or undefined. */
  getByConnection(connectionId: string): SessionHandle | undefined;

  /**
   * Stores a new session under `options.maxPerUser` and returns its local
   * handle, indexed but not yet filed in the wheel; null when the store
   * refused it (the policy's limit). Synchronous in place. A record without
   * a connection gets an UNBOUND handle (heartbeats accepted, no resume window).
   */
  insert(record: SessionRecord, deadline: number, lastActive: number, options: CreateOptions): SessionHandle | null | Promise<SessionHandle | null>;
  /** Undoes an {@link SessionStorage.insert} that finished after the registry closed. */
  abandon(h: SessionHandle): Promise<void>;
  /** Creates and indexes the local handle of a record already in the store (a resume of a session not held here). */
  adopt(record: SessionRecord, deadline: number, lastActive: number): SessionHandle;

  /** A detach is about to be written: `h` no longer answers for `connectionId` locally. */
  unbind(h: SessionHandle, connectionId: string): void;
  /**
   * The store accepted `next` for the live local handle `h` (a detach, a
   * state, metadata or stats update): bring the handle's fields up to date.
   * In place the store's write already did.
   */
  stored(h: SessionHandle, next: SessionRecord): void;
  /**
   * The store accepted `next`, binding the live local handle `h` to
   * `next.connectionId` (a resume): its fields and connection index follow;
   * `previousConnectionId` is the connection it leaves, if any. In place the
   * store's write already did.
   */
  rebound(h: SessionHandle, next: SessionRecord, previousConnectionId: string | null): void;

  /**
   * The store applied an update (`next`, the record after it) to the live
   * local handle `h`: its state, metadata and counters follow (nothing
   * else: the binding is this process's to change). In place the store's
   * write already did.
   */
  patched(h: SessionHandle, next: SessionRecord): void;
  /** Every local handle bound to a connection (a new array). */
  bound(): SessionHandle[];

  /** Takes an ending handle out of the local indexes (in place, out of the store too). Call before it is marked ended. */
  release(h: SessionHandle): void;
  /**
   * Same for an expiring handle; returns the store deletion still pending,
   * or null. In place the store retires it: over for every read at once,
   * out of its Maps in a later sweep slice.
   */
  retire(h: SessionHandle): Promise<unknown> | null;
  /**
   * Deletes an ended session from the store; `released` says its local
   * handle was just released (in place that already removed it). Resolves
   * (or returns) whether a live session was there; with `condition` (an end
   * on behalf of a connection), rejects `NETLOOP_CONDITION_FAILED` when the
   * stored session is bound to another connection (nothing deleted).
   */
  deleteEnded(id: string, released: boolean, condition?: WriteCondition): boolean | Promise<boolean>;

  /** The freshest view of a stored record: the local handle's, when there is one. */
  info(r: SessionRecord): SessionInfo;
  /** Queues a handle whose expiry (DIRTY_TOUCH) or counters (DIRTY_FULL) changed for the write-behind flush. */
  markDirty(h: SessionHandle, kind: number): void;

  /** Writes what is queued behind, and completes deferred cleanup; resolves when done. */
  flush(): Promise<void>;
  /** After an audit: the write-behind flush (a promise), or scheduling the cleanup slices (null). */
  afterAudit(): Promise<void> | null;

  /**
   * Releases every local handle and returns them (the registry marks them
   * ended). When the store outlives the registry (`keepStore`), the sessions
   * bound to this process's connections are first left as `park` says: the
   * record to leave (detached), or null to delete it; each write only while
   * the stored session is still bound to the handle's connection.
   */
  close(keepStore: boolean, park: (h: SessionHandle) => SessionRecord | null): Promise<SessionHandle[]>;
}
