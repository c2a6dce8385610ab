/**
 * The storage contract shared by every session store (memory, file, Redis).
 *
 * Stores know nothing of servers, clients or sockets: they hold
 * {@link SessionRecord}s and their indexes. The registry (`session-registry.ts`)
 * owns lifecycle, policy and timers, and talks to a store only through this
 * interface, so a store can be local or remote.
 *
 * TTL semantics are identical in every store: a record whose `expiresAt` is at
 * or before the store's current wall time is never returned, counted or listed,
 * even if it has not been physically removed yet. Validation, liveness,
 * ordering ("oldest first": by `createdAt`, then `id`) and paging are shared
 * by every store through `record.ts`; the conformance suite of
 * `netloop/testing` checks a store against this contract.
 *
 * Indexes kept by every store, always consistent with the records:
 *
 * ```
 *   id ─────────────► SessionRecord
 *   tokenHash ──────► id            (one to one)
 *   userId ─────────► {id, id, ...} (one to many)
 *   connectionId ───► id            (one to one, while bound)
 * ```
 *
 * @module
 */

/**
 * Session states and the transitions the registry allows:
 *
 * ```
 *   CONNECTING ──► ACTIVE ◄──► IDLE
 *        │            │          │
 *        └────────────┴──────────┴──► CLOSED   (terminal)
 * ```
 */
export type SessionState = 'CONNECTING' | 'ACTIVE' | 'IDLE' | 'CLOSED';

/** Every session state, in lifecycle order. */
export const SESSION_STATES: readonly SessionState[] = Object.freeze(['CONNECTING', 'ACTIVE', 'IDLE', 'CLOSED']);

/** Traffic counters of one session. */
export interface SessionStats {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  heartbeats: number;
}

/**
 * A session as stored. Holds only the hash of its token, never the token.
 * Times are wall-clock milliseconds since the epoch, because they are persisted
 * and shared between processes; the registry maps them onto its monotonic clock.
 */
export interface SessionRecord {
  /** UUIDv7, time-ordered. */
  id: string;
  /** Hex SHA-256 of the secret token. */
  tokenHash: string;
  /** The user this session belongs to, or null for an anonymous session. */
  userId: string | null;
  /** The connection currently bound to the session (a process-unique string), or null while detached. */
  connectionId: string | null;
  /** Remote address of the bound connection, if known. */
  remoteAddress: string | null;
  /**
   * Remote port of the bound connection (an integer 0 to 65535), where the
   * transport has one; null otherwise. A record stored without it (older
   * data, an older caller) reads as null.
   */
  remotePort: number | null;
  state: SessionState;
  /** Free-form string metadata (merged on update). */
  metadata: Record<string, string>;
  stats: SessionStats;
  createdAt: number;
  lastActiveAt: number;
  /** Wall-clock expiry; a heartbeat moves it to `now + ttl`. */
  expiresAt: number;
  /** Time to live in ms, applied by each heartbeat. */
  ttl: number;
}

/** A filter for {@link SessionStore.list} and {@link SessionStore.count}. */
export interface SessionFilter {
  userId?: string;
  state?: SessionState;
}

/** Paging for {@link SessionStore.list}; `limit` is capped by the store's own maximum. */
export interface Page {
  offset?: number;
  limit?: number;
}

/** One page of sessions and the total that matched the filter. */
export interface SessionPage {
  sessions: SessionRecord[];
  total: number;
}

/** Options for {@link SessionStore.create}. */
export interface CreateOptions {
  /**
   * When set (an integer >= 1, else `NETLOOP_INVALID_OPTION`), the record is
   * only inserted if its user has fewer than this many live sessions; the
   * check and the insert are atomic within the store (across processes for a
   * shared store). Expired sessions never count. Anonymous records (no
   * `userId`) have no per-user limit.
   */
  maxPerUser?: number;
}

/**
 * One atomic change to a stored session ({@link SessionStore.update}):
 * metadata merged (a string sets a key, null removes it), counters set
 * and/or added (`set` first, then `add`), the state replaced. Nothing else
 * moves: not the expiry, not the last-active stamp, not the binding.
 */
export interface SessionPatch {
  /** The new state (any state; the registry checks transitions before it asks). */
  state?: SessionState;
  /** Keys to set (a string) or remove (null); keys not named are kept. */
  metadata?: Readonly<Record<string, string | null>>;
  /** Counters to set to a value, then counters to add to (integers >= 0). */
  stats?: SessionStatsPatch;
}

/** The counters part of a {@link SessionPatch}. */
export interface SessionStatsPatch {
  /** Counters set to these values first. */
  set?: Partial<SessionStats>;
  /** Then these amounts added (what concurrent writers use: no add is lost). */
  add?: Partial<SessionStats>;
}

/**
 * A precondition of a store write ({@link SessionStore.set},
 * {@link SessionStore.delete}, {@link SessionStore.touch},
 * {@link SessionStore.update}), checked in the same atomic step as the
 * write. When the live record does not meet it, nothing changes and the
 * write rejects with `NETLOOP_CONDITION_FAILED`; a record that is gone
 * answers as without a condition (false). A process writing on behalf of a
 * connection it holds names that connection, so that its write cannot undo a
 * resume another process made meanwhile:
 *
 * ```
 *   process A: client's connection a ──drains──────────────────── detach(a): set(..., { ifConnection: a })
 *   process B:              client resumes: set({ connectionId: b })    │
 *   store:     bound to a ─────────────────► bound to b ◄── refused, still b (NETLOOP_CONDITION_FAILED)
 * ```
 */
export interface WriteCondition {
  /** The write applies only while the live record's `connectionId` is this one (null: while it is bound to none). */
  ifConnection?: string | null;
}

/** A page request of {@link SessionStore.onlineUsers}. */
export interface OnlinePage {
  /** The `cursor` of the previous page; absent or null for the first page. */
  cursor?: string | null;
  /** Most users in the page, an integer >= 1 (default 100, capped by the store's largest page). */
  limit?: number;
}

/** One page of {@link SessionStore.onlineUsers}. */
export interface OnlineUsersPage {
  users: string[];
  /** Pass it to get the next page; null when the iteration is complete. */
  cursor: string | null;
}

/** Why a session ended, as the change feed and tombstones say it. */
export type SessionEndReason = 'replaced' | 'kicked' | 'deleted' | 'expired' | 'closed';

/** Every {@link SessionEndReason}. */
export const SESSION_END_REASONS: readonly SessionEndReason[] = Object.freeze(['replaced', 'kicked', 'deleted', 'expired', 'closed']);

/**
 * A change to a session, published by the process that made it to every
 * process sharing the store ({@link SharedSessionStore}). Only `'ended'`
 * exists today; the union is left open for more.
 *
 * ```
 *   process A: registry ends s (replace, kick, delete, ...) ──store.publish(change)──▶ tombstone + feed
 *   process B: store 'change' ──▶ registry: s is bound here? ──▶ ended locally, the binding
 *                                                                 notifies and closes the client
 * ```
 */
export interface SessionChange {
  kind: 'ended';
  /** The session. */
  id: string;
  /** The connection it was bound to (its id carries the process's prefix), or null. */
  connectionId: string | null;
  userId: string | null;
  reason: SessionEndReason;
  /** For `'replaced'`: the id of the session that took over (the same id for a resume elsewhere). */
  by?: string;
  /** The registry's own reason text (`'logout'`, `'resumed-elsewhere'`, a caller's reason, ...). */
  detail?: string;
  /** The publishing process's id (the registry option `processId`). */
  origin: string;
  /** Wall-clock ms when it was published. */
  at: number;
}

/**
 * The events of a {@link SharedSessionStore}: `'change'` for each change
 * published (by another process, and possibly by this one: the registry
 * ignores its own origin), and `'feed'` when the subscription is
 * established (`'up'`, the first time and after every reconnection: changes
 * published while it was down may be lost, so the registry reconciles) or
 * lost (`'down'`).
 */
export interface SessionFeedEvents {
  change: (change: SessionChange) => void;
  feed: (state: 'up' | 'down') => void;
}

/**
 * The interface every store implements. All methods are asynchronous because
 * a store may be remote; a closed store rejects with `NETLOOP_STORE_CLOSED`,
 * an unreachable one with `NETLOOP_STORE_UNAVAILABLE` (never hangs). Records
 * are copied in and out: no caller shares a store's objects. "Oldest first"
 * is ascending `createdAt`, then `id`. The conformance suite of
 * `netloop/testing` (`storeConformance`) checks every point below.
 */
export interface SessionStore {
  /** A short name for diagnostics: 'memory', 'file', 'redis', 'etcd'. */
  readonly kind: string;
  /**
   * Inserts a new record and its indexes. Resolves false when `maxPerUser`
   * refused it (nothing stored). `NETLOOP_INVALID_VALUE` for a malformed
   * record, or an id, token hash or connection a live record holds (an
   * expired holder is evicted instead); `NETLOOP_INVALID_OPTION` for a bad
   * `maxPerUser`. A record already expired is accepted and never seen.
   */
  create(record: SessionRecord, options?: CreateOptions): Promise<boolean>;
  /** The live record with this id, or null. */
  get(id: string): Promise<SessionRecord | null>;
  /**
   * Replaces an existing live record (indexes follow its new token hash, user
   * and connection; an expiry in the past ends it). Resolves false if it is
   * gone, storing nothing. `NETLOOP_INVALID_VALUE` like `create`;
   * `NETLOOP_CONDITION_FAILED` when the live record does not meet `condition`
   * (see {@link WriteCondition}), nothing stored.
   */
  set(record: SessionRecord, condition?: WriteCondition): Promise<boolean>;
  /**
   * Moves a live record's expiry (either way; into the past ends it) and its
   * last-active stamp; resolves false if it is gone (never revives it).
   * `NETLOOP_INVALID_VALUE` for a time that is not a finite number;
   * `NETLOOP_CONDITION_FAILED` when the live record does not meet
   * `condition` (see {@link WriteCondition}), nothing moved.
   */
  touch(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): Promise<boolean>;
  /**
   * Removes a record and its indexes; resolves true if a live one existed.
   * `NETLOOP_CONDITION_FAILED` when the live record does not meet
   * `condition` (see {@link WriteCondition}), nothing removed.
   */
  delete(id: string, condition?: WriteCondition): Promise<boolean>;
  /** The live record whose token hashes to `tokenHash`, or null. */
  getByTokenHash(tokenHash: string): Promise<SessionRecord | null>;
  /** The live record bound to this connection, or null. */
  getByConnection(connectionId: string): Promise<SessionRecord | null>;
  /** Every live record of a user, oldest first. */
  getByUser(userId: string): Promise<SessionRecord[]>;
  /**
   * Live records matching `filter`, oldest first, one page of them, with the
   * total that matched. `NETLOOP_INVALID_OPTION` for a page whose offset or
   * limit is not an integer >= 0, or a filter with an unknown state.
   */
  list(filter?: SessionFilter, page?: Page): Promise<SessionPage>;
  /** How many live records match `filter` (refused like `list`'s). */
  count(filter?: SessionFilter): Promise<number>;
  /**
   * Applies `patch` to a live record in one atomic step (concurrent updates
   * of one record lose nothing: each applies to the result of the one
   * before) and resolves the record as it is afterwards; null when there is
   * no live record (never revives one). `NETLOOP_INVALID_VALUE` for a
   * malformed patch (see `checkSessionPatch`), nothing changed;
   * `NETLOOP_CONDITION_FAILED` when the live record does not meet
   * `condition` (see {@link WriteCondition}), nothing changed.
   */
  update(id: string, patch: SessionPatch, condition?: WriteCondition): Promise<SessionRecord | null>;
  /**
   * True while at least one live record of `userId` is bound to a
   * connection (`connectionId !== null`). A shared store answers for every
   * process; a crashed process's sessions stop counting at their expiry, with
   * no cleanup step. `NETLOOP_INVALID_VALUE` for a user id that is not a string.
   */
  isOnline(userId: string): Promise<boolean>;
  /** How many users are online (see {@link SessionStore.isOnline}). */
  onlineCount(): Promise<number>;
  /**
   * One page of the users online, in an order of the store's choosing: over a
   * whole iteration (following `cursor` until it is null) every user online
   * throughout is returned exactly once. A page may hold fewer than `limit`
   * users while `cursor` is not null. `NETLOOP_INVALID_OPTION` for a limit
   * that is not an integer >= 1 or a cursor that is not a string.
   */
  onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage>;
  /** Removes every record. */
  clear(): Promise<void>;
  /** Flushes what must be flushed and releases resources; idempotent. Every later call rejects with `NETLOOP_STORE_CLOSED`. */
  close(): Promise<void>;
  /**
   * Asks whether the store answers now, so that a server can say at start-up
   * (or a health check at any time) whether its sessions can be kept.
   * Resolves once the store answered; rejects with a coded error within the
   * store's own bound (a remote store's command timeout), never hangs:
   * `NETLOOP_STORE_UNAVAILABLE` (unreachable, no answer in time),
   * `NETLOOP_STORE_CLOSED`, or `NETLOOP_STORE_IO` (a file store whose saves
   * are failing). Optional for stores written outside netloop:
   * the registry's `ping()` falls back to `count()`.
   */
  ping?(): Promise<void>;
  /**
   * Present on a store shared between processes (see
   * {@link SharedSessionStore}): writes the change's tombstone, then
   * publishes it to every process subscribed.
   */
  publish?(change: SessionChange): Promise<void>;
}

/**
 * A store shared between processes (Redis, etcd): beside the records, a
 * change feed and tombstones.
 *
 * - `publish(change)` writes the tombstone of `change.id` (kept
 *   `tombstoneTtlMs`, a few minutes), then publishes the change; a malformed
 *   change is `NETLOOP_INVALID_VALUE` (see `checkSessionChange`). Delivery is
 *   at least once, best effort: a subscriber that was disconnected misses
 *   what was published meanwhile, and says so with `'feed'` `'up'` when it
 *   is back.
 * - `tombstone(id)`: the last change published for that session while its
 *   tombstone lives, else null. Reconciliation reads it to end a session
 *   with the right reason when its event was lost.
 * - Events ({@link SessionFeedEvents}): the store subscribes when the first
 *   `'change'` listener is added and unsubscribes at `close()`.
 */
export interface SharedSessionStore extends SessionStore {
  publish(change: SessionChange): Promise<void>;
  tombstone(id: string): Promise<SessionChange | null>;
  on<K extends keyof SessionFeedEvents>(name: K, listener: SessionFeedEvents[K]): unknown;
  off<K extends keyof SessionFeedEvents>(name: K, listener: SessionFeedEvents[K]): unknown;
}

/** True for a store with a change feed ({@link SharedSessionStore}). */
export function isSharedStore(store: SessionStore): store is SharedSessionStore {
  const s = store as Partial<SharedSessionStore>;
  return typeof s.publish === 'function' && typeof s.tombstone === 'function' && typeof s.on === 'function' && typeof s.off === 'function';
}
