/**
 * The public types of the session registry: options, inputs, events and
 * figures. The registry's results that carry a handle (`CreatedSession`,
 * `ResumedSession`) live beside it in `session-registry.ts`.
 *
 * @module
 */

import type { DurationSample } from '../core/histogram.js';
import type { Clock } from '../core/clock.js';
import type { NetloopError } from '../core/errors.js';
import type { SessionRecord, SessionState, SessionStore } from '../store/contract.js';

/**
 * What a user may do when they already have sessions:
 * - `'multiple'`: up to `maxPerUser` sessions at once; beyond, `NETLOOP_LOGIN_REFUSED`.
 * - `'replace'`: one session per user; a new login ends the old one (event
 *   `replaced`). The newest login wins: logins of one user in one registry
 *   run one after another in call order, so concurrent ones are never
 *   refused; each replaces the one before it (across processes sharing a
 *   store, a login that loses a race retries the policy a few times).
 * - `'refuse'`: one session per user; a new login is refused while the old one
 *   is live and its connection alive. A detached session, or one whose
 *   connection is dead, never blocks: it is closed and the login proceeds.
 */
export type LoginPolicy = 'multiple' | 'replace' | 'refuse';

/** A session as the registry shows it: the stored record without its token hash. */
export type SessionInfo = Omit<SessionRecord, 'tokenHash'>;

/** Options of `SessionRegistry`. Every limit is finite and validated at construction. */
export interface SessionRegistryOptions {
  /** Where sessions live. Default: a new `MemoryStore` on the same clock, closed with the registry. */
  store?: SessionStore;
  /** Time source (monotonic for deadlines, wall for stored stamps). Default `systemClock`. */
  clock?: Clock;
  /** Time to live: a heartbeat moves the expiry to now + ttl. Default 300,000 ms (5 min); range [1, 2^31). */
  ttlMs?: number;
  /** How long a detached session (its connection closed) may be resumed with its token. Default 30,000 ms; 0 disables resume. */
  resumeWindowMs?: number;
  /** Audit tick and expiry precision: a session expires at most this long after its deadline. Default 1,000 ms; at most ttlMs / 4. */
  granularityMs?: number;
  /** Slots of the timing wheel (a power of two). Default: enough for max(ttl, resume window) in one revolution, in [64, 65536]. */
  wheelSlots?: number;
  /** Run `SessionRegistry.audit` every `granularityMs` on an unref'd timer. Default true; a binding that owns a loop timer passes false. */
  autoAudit?: boolean;
  /**
   * Longest synchronous slice of an audit, in ms. When more sessions are due
   * than one slice can expire, the rest is carried over to the next slice,
   * after a turn of the event loop (see `SessionRegistry.audit`).
   * Default 4 ms; range [1, 1000].
   */
  auditBudgetMs?: number;
  /** Most local sessions this registry holds; beyond, `NETLOOP_SESSION_LIMIT`. Default 1,000,000. */
  maxSessions?: number;
  /** Most live sessions of one user under the `'multiple'` policy. Default 16. */
  maxPerUser?: number;
  /**
   * Under the `'replace'` policy, the logins of one user run one after
   * another, so that the newest wins and none is refused: at most this many
   * may wait for each other; one more is refused (`NETLOOP_LOGIN_REFUSED`,
   * `details.limit`). Default 64; range [1, 1,000,000].
   */
  maxPendingLoginsPerUser?: number;
  /** Login policy. Default `'multiple'`. */
  policy?: LoginPolicy;
  /** Most metadata keys per session. Default 32. */
  maxMetadataKeys?: number;
  /** Longest metadata key, in UTF-16 units. Default 64. */
  maxMetadataKeyLength?: number;
  /** Longest metadata value, in UTF-16 units. Default 1,024. */
  maxMetadataValueLength?: number;
  /** Longest user id, connection id or remote address accepted. Default 256. */
  maxIdLength?: number;
  /**
   * Answers whether a connection is still alive: `false` means dead (its
   * session is cleaned up when it stands in a login's way), `true` or
   * `undefined` mean alive or unknown. A binding answers from its loop
   * (`loop.getClient(id) !== undefined`) for its own connections.
   */
  isConnectionAlive?: (connectionId: string) => boolean | undefined;
  /**
   * This process's name among the processes sharing a store, carried as
   * `origin` by every change it publishes (its own changes are not acted on
   * twice). A non-empty string of at most 256 characters. Default: a random
   * UUID per registry.
   */
  processId?: string;
  /**
   * With a shared store (one with a change feed, such as Redis): how often
   * the sessions bound to this process's connections are checked against the
   * store, in ms, so that a change whose event was lost still reaches its
   * connection (see `SessionRegistry.reconcile`). The feed's reconnections
   * trigger a check too. Default 30,000; 0 checks only on reconnection;
   * range [0, 2^31 - 1].
   */
  reconcileIntervalMs?: number;
}

/** What `SessionRegistry.create` accepts. */
export interface CreateSessionInput {
  /** The user, or null/absent for an anonymous session (no login policy applies). */
  userId?: string | null;
  /** The connection the session is bound to, or null/absent for none yet. */
  connectionId?: string | null;
  remoteAddress?: string | null;
  /** The connection's remote port (an integer 0 to 65535), or null/absent when the transport has none. */
  remotePort?: number | null;
  /** Initial metadata; limits are checked before anything is stored. */
  metadata?: Record<string, string>;
  /** Initial state. Default `'ACTIVE'`. */
  state?: 'CONNECTING' | 'ACTIVE';
  /** This session's TTL; default the registry's `ttlMs`. */
  ttlMs?: number;
}

/** Payload of the events that end a session. */
export interface SessionEndEvent {
  session: SessionInfo;
  /** The connection the session was bound to when it ended, or null. */
  connectionId: string | null;
  /** Why: `'ttl'`, `'resume-window'`, `'connection-closed'`, `'dead-connection'`, `'store'`, a caller's reason, ... */
  reason: string;
  /**
   * True when another process sharing the store ended the session (its
   * change reached this process through the store's feed, or a
   * reconciliation found it): this process only let go of its handle and
   * its connection; the store was changed by the other.
   */
  remote?: boolean;
}

/** The registry's events and their payloads. */
export interface SessionEvents {
  created: { session: SessionInfo };
  resumed: { session: SessionInfo; previousConnectionId: string | null };
  /** The connection closed; the session waits `resumeWindowMs` for a resume. */
  detached: { session: SessionInfo; connectionId: string; reason: string };
  /** TTL or resume window elapsed. The binding sends its expiry notice to `connectionId`, then closes it. */
  expired: SessionEndEvent;
  /** A newer login of the same user ended this session (policy `'replace'`); `by` is the new session's id. */
  replaced: SessionEndEvent & { by: string };
  /** Ended because its connection closed without resume, or its state was set to CLOSED. */
  closed: SessionEndEvent;
  /** Ended by `SessionRegistry.delete`. */
  deleted: SessionEndEvent;
  /** Ended by `SessionRegistry.kick` (a session binding's `kick`), in this process or another sharing the store. */
  kicked: SessionEndEvent;
  /**
   * A fault that no caller's promise reports: a listener of another event
   * threw or rejected (`operation: 'listener'`, a `NETLOOP_HANDLER_ERROR` with
   * the fault as `cause` and `details.event`, `details.sessionId`,
   * `details.connectionId`), or an audit run by the registry's own timer
   * failed (`operation: 'audit'`, the store's error). Delivered at once,
   * not queued. Without a listener, each is reported as a process warning,
   * never thrown; a listener of `error` that fails is reported the same
   * way. A session binding listens to it and closes the client of the
   * session concerned (`details.connectionId`) with `'handler-error'`.
   */
  error: RegistryErrorEvent;
}

/** Payload of the registry's `error` event. */
export interface RegistryErrorEvent {
  error: NetloopError;
  /**
   * `'listener'` and `'audit'` as above; `'feed'` a change the registry
   * could not publish or act on (a store that is down); `'reconcile'` a
   * reconciliation that failed (retried at the next one).
   */
  operation: 'listener' | 'audit' | 'feed' | 'reconcile';
  /** The event whose listener failed (`operation: 'listener'`). */
  event?: Exclude<SessionEventName, 'error'>;
}

/** Names of {@link SessionEvents}. */
export type SessionEventName = keyof SessionEvents;

/**
 * The registry's event map (listener signatures) for `on`, `once` and
 * `off`: each listener receives the payload of {@link SessionEvents}. A
 * misspelled event name or a listener of another payload is a compile error.
 */
export type SessionRegistryEvents = { [K in SessionEventName]: (payload: SessionEvents[K]) => void };

/** Counters since the registry was created. */
export interface RegistryCounters {
  created: number;
  resumed: number;
  detached: number;
  expired: number;
  replaced: number;
  closed: number;
  deleted: number;
  kicked: number;
  refused: number;
  /** Sessions ended here because another process ended them (feed or reconciliation); also counted under their kind. */
  endedRemotely: number;
}

/** What `SessionRegistry.stats` reports. */
export interface RegistryStats {
  /** Live sessions in the store (all processes for a shared store). */
  total: number;
  /** Live sessions in the store per state (CLOSED is always 0: closed sessions are removed). */
  byState: Record<SessionState, number>;
  /** Sessions held locally by this registry (bound or waiting for resume). */
  local: number;
  /** Local sessions bound to a connection. */
  attached: number;
  /** Entries in the timing wheel (equals `local`). */
  timers: number;
  counters: RegistryCounters;
  /** How long the audit runs took (each from its start to its end, failed ones included), as a histogram in seconds. */
  audit: DurationSample;
}

