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
 * The interface every store implements. All methods are asynchronous because
 * a store may be remote; a closed store rejects with `NETLOOP_STORE_CLOSED`,
 * an unreachable one with `NETLOOP_STORE_UNAVAILABLE` (never hangs). Records
 * are copied in and out: no caller shares a store's objects. "Oldest first"
 * is ascending `createdAt`, then `id`. The conformance suite of
 * `netloop/testing` (`storeConformance`) checks every point below.
 */
export interface SessionStore {
  /** A short name for diagnostics: 'memory', 'file', 'redis'. */
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
   * gone, storing nothing. `NETLOOP_INVALID_VALUE` like `create`.
   */
  set(record: SessionRecord): Promise<boolean>;
  /**
   * Moves a live record's expiry (either way; into the past ends it) and its
   * last-active stamp; resolves false if it is gone (never revives it).
   * `NETLOOP_INVALID_VALUE` for a time that is not a finite number.
   */
  touch(id: string, expiresAt: number, lastActiveAt: number): Promise<boolean>;
  /** Removes a record and its indexes; resolves true if a live one existed. */
  delete(id: string): Promise<boolean>;
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
}
