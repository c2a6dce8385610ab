/**
 * The session registry: lifecycle, login policy, resume, heartbeats and
 * expiry of sessions, on top of any {@link SessionStore}. It knows nothing of
 * sockets: a server binding tells it about connections (by string id) and
 * turns its events into notices and closes.
 *
 * ```
 *   With the MemoryStore (in place): ONE object per session
 *
 *   MemoryStore                                  SessionRegistry
 *   records  Map<id, entry> ───────┐             wheel  TimingWheel (intrusive:
 *   byUser   Map<user, entry|Set> ─┼──► SessionHandle ◄─── slots   the handle
 *                                  │                    holds its slot and index)
 *   byConn   Map<conn, entry> ─────┘    (record fields + deadline + wheel place)
 *
 *   With any other store (write-behind): the handle is a local copy
 *
 *   SessionRegistry: handles Map<id, handle>, byConn Map<conn, handle>,
 *                    wheel, dirty handle[]  ──create/set/touch/delete──►  store
 * ```
 *
 * **Local sessions and handles.** Every session created or resumed through
 * this registry gets a {@link SessionHandle}, kept until the session ends. The
 * handle is the synchronous fast path: `handle.heartbeat(now)` rewrites the
 * deadline and last-activity numbers of that one object and nothing else (no
 * clock read when the caller passes `now`, no promise, no store call, no
 * allocation).
 *
 * **In place (MemoryStore).** The memory store offers an in-process
 * interface ({@link MemoryStore.adopt}): the registry's handle IS the store's
 * record and its timing-wheel node, so one object and the store's three
 * indexes (id, connection, user) are all a session costs; the registry keeps no map of its own. The
 * store reads `expiresAt` and `lastActiveAt` through accessors derived from
 * the handle's monotonic deadline, so a heartbeat is visible to the store at
 * once and nothing is written behind.
 *
 * **Write-behind (any other store).** A heartbeat (or a stats update through
 * the handle) marks the handle dirty; every audit tick writes the dirty
 * handles to the store (`touch` for an expiry, `set` when stats changed), in
 * slices. The store's copy therefore lags by at most one audit interval
 * (`granularityMs`) plus the time of the write, which is why `granularityMs`
 * may be at most a quarter of `ttlMs`. Every other change (state, metadata,
 * binding, deletion) is written through at once.
 *
 * **Expiry.** Each local session is filed in one hashed timing wheel on the
 * monotonic clock; {@link SessionRegistry.audit} advances it, so an audit
 * costs what expires (plus lazy re-filing), never a scan. The due sessions
 * are expired in slices of at most `auditBudgetMs`; what does not fit is
 * carried over to the next slice, after a turn of the event loop (see
 * {@link SessionRegistry.audit}). Sessions that live only in a shared store
 * (created by another process) expire by the store's TTL.
 *
 * **Deferred cleanup (in place).** Ending an expired session is cheap (its
 * mode and state, the wheel, the counters, the event); taking it out of the
 * memory store's string-keyed Maps is not: at a million sessions each
 * of those Map removals is a few cache misses, about 3 µs per session in
 * all, ten times the rest. So an audit retires expired sessions
 * ({@link MemoryStore.retire}) instead: they are over at once for every read,
 * every count and every new claim of their connection, and the Map removals
 * run afterwards in loop slices of at most `auditBudgetMs`
 * ({@link SessionRegistry.cleanupPending}). A mass expiry thus notifies its
 * clients about ten times sooner, and no slice holds the loop longer than
 * the budget. `flush()`, `close()` and the store's counts and lists complete
 * the cleanup at once.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, NetloopError, checkInteger } from '../core/errors.js';
import { callGuarded, listenerError, reportFault } from '../core/listener-guard.js';
import { EMPTY_METADATA, assignFlatSession, flatSessionRecord, ownMetadata } from '../store/flat-session.js';
import { MemoryStore } from '../store/memory-store.js';
import type { MemoryStoreOwner, OwnedEntry } from '../store/memory-store.js';
import type {
  Page,
  SessionFilter,
  SessionRecord,
  SessionState,
  SessionStats,
  SessionStore,
} from '../store/contract.js';
import { copySessionRecord } from '../store/record.js';
import { createToken, tokenMatches, tokenSessionId } from './token.js';
import { TimingWheel } from './timing-wheel.js';
import type { WheelNode } from './timing-wheel.js';
import { uuidv7, uuidv7Timestamp } from './uuid-v7.js';

// ── Public types ────────────────────────────────────────────────────────────

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

/** Options of {@link SessionRegistry}. Every limit is finite and validated at construction. */
export interface SessionRegistryOptions {
  /** Where sessions live. Default: a new {@link MemoryStore} on the same clock, closed with the registry. */
  store?: SessionStore;
  /** Time source (monotonic for deadlines, wall for stored stamps). Default {@link systemClock}. */
  clock?: Clock;
  /** Time to live: a heartbeat moves the expiry to now + ttl. Default 300,000 ms (5 min); range [1, 2^31). */
  ttlMs?: number;
  /** How long a detached session (its connection closed) may be resumed with its token. Default 30,000 ms; 0 disables resume. */
  resumeWindowMs?: number;
  /** Audit tick and expiry precision: a session expires at most this long after its deadline. Default 1,000 ms; at most ttlMs / 4. */
  granularityMs?: number;
  /** Slots of the timing wheel (a power of two). Default: enough for max(ttl, resume window) in one revolution, in [64, 65536]. */
  wheelSlots?: number;
  /** Run {@link SessionRegistry.audit} every `granularityMs` on an unref'd timer. Default true; a binding that owns a loop timer passes false. */
  autoAudit?: boolean;
  /**
   * Longest synchronous slice of an audit, in ms. When more sessions are due
   * than one slice can expire, the rest is carried over to the next slice,
   * after a turn of the event loop (see {@link SessionRegistry.audit}).
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
}

/** What {@link SessionRegistry.create} accepts. */
export interface CreateSessionInput {
  /** The user, or null/absent for an anonymous session (no login policy applies). */
  userId?: string | null;
  /** The connection the session is bound to, or null/absent for none yet. */
  connectionId?: string | null;
  remoteAddress?: string | null;
  /** Initial metadata; limits are checked before anything is stored. */
  metadata?: Record<string, string>;
  /** Initial state. Default `'ACTIVE'`. */
  state?: 'CONNECTING' | 'ACTIVE';
  /** This session's TTL; default the registry's `ttlMs`. */
  ttlMs?: number;
}

/** The result of {@link SessionRegistry.create}: the only time the token is ever visible. */
export interface CreatedSession {
  session: SessionInfo;
  /** The secret the client must keep to resume; never stored, logged or shown again. */
  token: string;
  /** The local fast-path handle. */
  handle: SessionHandle;
}

/** The result of {@link SessionRegistry.resume}. */
export interface ResumedSession {
  session: SessionInfo;
  handle: SessionHandle;
  /** The connection the session was bound to before, if any (the binding closes it when it differs). */
  previousConnectionId: string | null;
}

/** Payload of the events that end a session. */
export interface SessionEndEvent {
  session: SessionInfo;
  /** The connection the session was bound to when it ended, or null. */
  connectionId: string | null;
  /** Why: `'ttl'`, `'resume-window'`, `'connection-closed'`, `'dead-connection'`, a caller's reason, ... */
  reason: string;
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
  /** Ended by {@link SessionRegistry.delete}. */
  deleted: SessionEndEvent;
  /**
   * A fault that no caller's promise reports: a listener of another event
   * threw or rejected (`operation: 'listener'`, a `NETLOOP_HANDLER_ERROR` with
   * the fault as `cause` and `details.event`, `details.sessionId`,
   * `details.connectionId`), or an audit run by the registry's own timer
   * failed (`operation: 'audit'`, the store's error). Delivered at once,
   * not queued. Without a listener, each is reported as a process warning
   * (rate-limited), never thrown; a listener of `error` that fails is
   * reported the same way. A session binding listens to it and closes the
   * client of the session concerned with `'handler-error'`.
   */
  error: RegistryErrorEvent;
}

/** Payload of the registry's `error` event. */
export interface RegistryErrorEvent {
  error: NetloopError;
  operation: 'listener' | 'audit';
  /** The event whose listener failed (`operation: 'listener'`). */
  event?: Exclude<SessionEventName, 'error'>;
}

/** Names of {@link SessionEvents}. */
export type SessionEventName = keyof SessionEvents;

/** Counters since the registry was created. */
export interface RegistryCounters {
  created: number;
  resumed: number;
  detached: number;
  expired: number;
  replaced: number;
  closed: number;
  deleted: number;
  refused: number;
}

/** What {@link SessionRegistry.stats} reports. */
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
}

/**
 * The allowed state transitions. Setting the current state again is a no-op;
 * CLOSED ends the session (it is removed from the store).
 *
 * ```
 *   CONNECTING ──► ACTIVE ◄──► IDLE
 *        │            │          │
 *        └────────────┴──────────┴──► CLOSED   (terminal: the session is removed)
 * ```
 *
 * A connection closing moves an ACTIVE or IDLE session to IDLE, detached, for
 * the resume window; a CONNECTING one (handshake never finished) is closed.
 */
export const SESSION_TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = Object.freeze({
  CONNECTING: Object.freeze(['ACTIVE', 'CLOSED'] as SessionState[]),
  ACTIVE: Object.freeze(['IDLE', 'CLOSED'] as SessionState[]),
  IDLE: Object.freeze(['ACTIVE', 'CLOSED'] as SessionState[]),
  CLOSED: Object.freeze([] as SessionState[]),
});

/** True when the state machine allows `from` → `to` (or `from === to`, except for CLOSED). */
export function canTransition(from: SessionState, to: SessionState): boolean {
  return (from === to && from !== 'CLOSED') || SESSION_TRANSITIONS[from].includes(to);
}

// ── Handle ──────────────────────────────────────────────────────────────────

/** Flags of the write-behind queue; IN_PLACE marks a handle that is the store's own record (never queued). */
const CLEAN = 0;
const DIRTY_TOUCH = 1;
const DIRTY_FULL = 2;
const IN_PLACE = 3;

/** The millisecond stamped in a UUIDv7 id, or 0 for any other id: an integer either way. */
function idStamp(id: string): number {
  const ms = id.length === 36 ? uuidv7Timestamp(id) : 0;
  return Number.isInteger(ms) ? ms : 0;
}

/**
 * What a handle keeps of its creation time: an integer time relative to its
 * id's stamp (exact: both are integers below 2^53), anything else as it is
 * (a non-integer is never taken for a relative time).
 */
function createdDelta(id: string, wall: number): number {
  return Number.isInteger(wall) ? wall - idStamp(id) : wall;
}

/** Binding modes of a handle. */
const ATTACHED = 0;
const DETACHED = 1;
const ENDED = 2;

/** Wheel slot of a node that is not filed (see `timing-wheel.ts`). */
const NOT_FILED = -1;

/**
 * The registry's in-memory handle on one local session: the synchronous fast
 * path for heartbeats and traffic counters. Obtain it from `create`, `resume`,
 * {@link SessionRegistry.handle} or {@link SessionRegistry.handleByConnection};
 * keep it beside the connection (e.g. in a client's context).
 *
 * The handle holds the session's fields as plain numbers and strings in one
 * object of a stable shape, and is also the session's timing-wheel node
 * (intrusive links). With the {@link MemoryStore} it is the store's record
 * itself; with another store it is the local copy, written behind.
 *
 * ```
 *   SessionHandle                       (fields in memory order)
 *     ├─ _reg _st deadline ttl _lastActive heartbeats              what a heartbeat touches
 *     │     (_st = binding mode | write-behind flag << 2)
 *     ├─ _tick _slot _pos connectionId state                       what an audit touches
 *     │     (its place in the wheel; key = this, an accessor)
 *     ├─ id userId remoteAddress metadata bytesIn bytesOut messagesIn messagesOut
 *     └─ _createdDelta tokenHash
 *   deadline, _lastActive: monotonic ms since the registry's epoch;
 *   expiresAt / lastActiveAt = those + the wall base (accessors);
 *   createdAt = the id's UUIDv7 millisecond + _createdDelta (an accessor)
 * ```
 *
 * The data fields are read-only for users; the registry (and, in place, the
 * memory store) writes them.
 */
export class SessionHandle implements WheelNode<SessionHandle> {
  // Field order matters (1M handles do not fit in any cache): the fields a
  // heartbeat reads and writes come first, right after the object header, and
  // what an audit touches follows, so that each costs as few cache lines as can be.
  /** @internal */
  readonly _reg: SessionRegistry;
  /**
   * @internal Two small flags in one integer field (one field less per
   * session): bits 0-1 the binding mode (ATTACHED, DETACHED or ENDED, read
   * through `_mode`), bits 2-3 the write-behind flag (CLEAN, DIRTY_TOUCH,
   * DIRTY_FULL or IN_PLACE, read through `_dirty`).
   */
  _st: number;
  /** The deadline in ms relative to {@link SessionRegistry.epoch} (monotonic). */
  deadline: number;
  /** Time to live in ms, applied by each heartbeat. */
  readonly ttl: number;
  /** @internal Last activity, in whole ms relative to the epoch (an integer, so V8 keeps it unboxed). */
  _lastActive: number;
  /** Heartbeats accepted. */
  readonly heartbeats: number = 0;
  // Then what an audit reads and writes: the wheel links, the connection and the state.
  /** @internal */
  _tick = 0;
  /** @internal */
  _slot = NOT_FILED;
  /** @internal */
  _pos = 0;
  /** The bound connection, or null while detached or ended. */
  readonly connectionId: string | null;
  /** The current state (`'CLOSED'` once ended). */
  readonly state: SessionState;
  /** The session id. */
  readonly id: string;
  /** The user, or null. */
  readonly userId: string | null;
  /** Remote address of the bound connection, if known. */
  readonly remoteAddress: string | null;
  /** Metadata (replaced as a whole by updates; never mutate it). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Inbound bytes. */
  readonly bytesIn: number = 0;
  /** Outbound bytes. */
  readonly bytesOut: number = 0;
  /** Inbound messages. */
  readonly messagesIn: number = 0;
  /** Outbound messages. */
  readonly messagesOut: number = 0;
  /**
   * @internal The creation time less the millisecond stamped in the id
   * (UUIDv7), so normally 0: a small integer is kept in the field itself,
   * where a wall-clock time would cost a 16-byte number box per session.
   * Read and written through `createdAt`.
   */
  _createdDelta: number;
  /** @internal Hex SHA-256 of the token (read by the store; never shown). */
  tokenHash: string;
  /** @internal */
  constructor(reg: SessionRegistry, r: SessionRecord, deadline: number, lastActive: number, inPlace: boolean) {
    this._reg = reg;
    this._st = (r.connectionId === null ? DETACHED : ATTACHED) | ((inPlace ? IN_PLACE : CLEAN) << 2);
    this.deadline = deadline;
    this.ttl = r.ttl;
    this._lastActive = Math.floor(lastActive);
    this.id = r.id;
    this.userId = r.userId;
    this.connectionId = r.connectionId;
    this.remoteAddress = r.remoteAddress;
    this.state = r.state;
    this.metadata = ownMetadata(r.metadata);
    this._createdDelta = createdDelta(r.id, r.createdAt);
    this.tokenHash = r.tokenHash;
    const m = this as MutableHandle;
    m.bytesIn = r.stats.bytesIn;
    m.bytesOut = r.stats.bytesOut;
    m.messagesIn = r.stats.messagesIn;
    m.messagesOut = r.stats.messagesOut;
    m.heartbeats = r.stats.heartbeats;
  }

  /**
   * @internal The owner the memory store sees: the registry for a handle that
   * is the store's record (IN_PLACE, which such a handle keeps for life), else
   * null. Derived, not stored: one field less per session.
   */
  get _owner(): SessionRegistry | null {
    return this._dirty === IN_PLACE ? this._reg : null;
  }

  /** @internal ATTACHED, DETACHED or ENDED (bits 0-1 of `_st`). */
  get _mode(): number {
    return this._st & 3;
  }

  set _mode(mode: number) {
    this._st = (this._st & ~3) | mode;
  }

  /** @internal CLEAN, DIRTY_TOUCH, DIRTY_FULL, or IN_PLACE (never queued) (bits 2-3 of `_st`). */
  get _dirty(): number {
    return this._st >>> 2;
  }

  set _dirty(flag: number) {
    this._st = (this._st & 3) | (flag << 2);
  }

  /** Creation, wall-clock ms. */
  get createdAt(): number {
    const d = this._createdDelta;
    return Number.isInteger(d) ? idStamp(this.id) + d : d;
  }

  /** @internal Written by the memory store's `set`. */
  set createdAt(wall: number) {
    this._createdDelta = createdDelta(this.id, wall);
  }

  /** @internal Wheel node: the handle itself (derived, not stored). */
  get key(): SessionHandle {
    return this;
  }

  /** Wall-clock expiry (the monotonic deadline on the wall clock). */
  get expiresAt(): number {
    return this.deadline + this._reg._wallBase;
  }

  /** @internal Written by the memory store's `set`/`touch`: moves the deadline (either way). */
  set expiresAt(wall: number) {
    this._reg._setWallExpiry(this, wall);
  }

  /** Last activity, wall-clock ms. */
  get lastActiveAt(): number {
    return this._lastActive + this._reg._wallBase;
  }

  /** @internal Written by the memory store's `set`/`touch`. */
  set lastActiveAt(wall: number) {
    this._lastActive = Math.floor(wall - this._reg._wallBase);
  }

  /** False once the session ended (expired, closed, deleted, replaced). */
  get alive(): boolean {
    return this._mode !== ENDED;
  }

  /** Traffic counters, as a new object. */
  get stats(): SessionStats {
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      heartbeats: this.heartbeats,
    };
  }

  /** Milliseconds left before expiry at monotonic time `now` (default: the clock's), 0 if ended. */
  timeLeft(now: number = this._reg.clock.now()): number {
    return this._mode === ENDED ? 0 : Math.max(0, this.deadline - (now - this._reg.epoch));
  }

  /**
   * Extends the expiry to `now + ttl` and returns the time left (the TTL).
   * Returns -1, changing nothing, when the session has ended, is detached, or
   * its deadline has already passed (a heartbeat never revives an expired
   * session; the next audit reports it).
   *
   * Cost: a few writes to this object, no allocation. Pass `now` (the loop's
   * monotonic time, already read for the event being handled) to avoid a
   * clock read.
   */
  heartbeat(now: number = this._reg.clock.now()): number {
    const reg = this._reg;
    const t = now - reg.epoch;
    if (this._mode !== ATTACHED || t >= this.deadline) return -1;
    const ttl = this.ttl;
    const deadline = Math.ceil(t + ttl);
    // A later deadline is only written (the wheel re-files lazily); an earlier one re-files now.
    if (deadline >= this.deadline) this.deadline = deadline;
    else reg._refile(this, deadline);
    this._lastActive = Math.floor(t);
    (this as MutableHandle).heartbeats++;
    if (this._dirty === CLEAN) reg._markDirty(this, DIRTY_TOUCH);
    return ttl;
  }

  /** Adds inbound traffic to the stats. */
  recordIn(bytes: number, messages = 1): void {
    if (this._mode === ENDED) return;
    const m = this as MutableHandle;
    m.bytesIn += bytes;
    m.messagesIn += messages;
    if (this._dirty < DIRTY_FULL) this._reg._markDirty(this, DIRTY_FULL);
  }

  /** Adds outbound traffic to the stats. */
  recordOut(bytes: number, messages = 1): void {
    if (this._mode === ENDED) return;
    const m = this as MutableHandle;
    m.bytesOut += bytes;
    m.messagesOut += messages;
    if (this._dirty < DIRTY_FULL) this._reg._markDirty(this, DIRTY_FULL);
  }

  /** A copy of the session as it stands (without its token hash). */
  snapshot(): SessionInfo {
    const { tokenHash: _secret, ...info } = this._toRecord();
    return info;
  }

  /** @internal A full record copy, with the token hash, for a store write. */
  _toRecord(): SessionRecord {
    return flatSessionRecord(this);
  }

  /** @internal Copies a record's fields (not its expiry or last activity) into a write-behind handle. */
  _assign(r: SessionRecord): void {
    assignFlatSession(this as MutableHandle, r);
  }
}

/** The handle as the registry (and the memory store) write it. */
type MutableHandle = { -readonly [K in keyof SessionHandle]: SessionHandle[K] };

// ── Events ──────────────────────────────────────────────────────────────────

type Listener<E extends SessionEventName> = (payload: SessionEvents[E]) => void;

/**
 * A small typed emitter. Events are queued and delivered from one microtask
 * per batch, in order, exactly once each: a listener never runs inside the
 * registry call (or the connection-close path) that caused its event, and an
 * audit that expires thousands of sessions schedules one microtask, not one
 * per session. Every listener is called guarded: a throw or a rejected
 * promise does not stop the others and goes to the `error` event (see
 * {@link SessionEvents.error}), never up the stack.
 *
 * ```
 *   emit(name, payload) ─▶ queue [[name, payload], ...] ─▶ one microtask ─▶ #drain
 *   #drain: each listener, guarded ── fault ──▶ fail(error) ─▶ 'error' listeners | report
 * ```
 */
class SessionEmitter {
  readonly #listeners = new Map<SessionEventName, Set<(payload: never) => void>>();
  #queue: [SessionEventName, unknown][] = [];
  #scheduled = false;

  on<E extends SessionEventName>(name: E, fn: Listener<E>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) this.#listeners.set(name, (set = new Set()));
    set.add(fn as (payload: never) => void);
    return () => this.off(name, fn);
  }

  off<E extends SessionEventName>(name: E, fn: Listener<E>): void {
    this.#listeners.get(name)?.delete(fn as (payload: never) => void);
  }

  /** True when `name` has a listener: callers skip building a payload nobody reads. */
  has(name: SessionEventName): boolean {
    const set = this.#listeners.get(name);
    return set !== undefined && set.size > 0;
  }

  emit<E extends SessionEventName>(name: E, payload: SessionEvents[E]): void {
    if (!this.has(name)) return;
    this.#queue.push([name, payload]);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#drain());
    }
  }

  /**
   * Delivers a fault to the `error` listeners at once (each guarded; the
   * fault of one is reported), or reports it when there is none.
   */
  fail(payload: RegistryErrorEvent): void {
    const set = this.#listeners.get('error');
    if (set === undefined || set.size === 0) {
      reportFault(this, 'session registry', payload.error);
      return;
    }
    for (const fn of [...set]) {
      callGuarded(fn, undefined, [payload], (err, rejected) =>
        reportFault(this, 'session registry error listener', listenerError("a session registry 'error' listener", err, rejected, { event: 'error' }), false),
      );
    }
  }

  #drain(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    for (const [name, payload] of batch) {
      const set = this.#listeners.get(name);
      if (set === undefined) continue;
      for (const fn of [...set]) callGuarded(fn, undefined, [payload], (err, rejected) => this.#listenerFault(name, payload, err, rejected));
    }
  }

  #listenerFault(name: SessionEventName, payload: unknown, err: unknown, rejected: boolean): void {
    const p = payload as { session?: SessionInfo; connectionId?: string | null };
    const session = p.session;
    // The connection the event concerns: the one it names, else the session's own.
    const connectionId = p.connectionId ?? session?.connectionId ?? null;
    const error = listenerError(`a session registry '${name}' listener`, err, rejected, {
      event: name,
      sessionId: session?.id ?? null,
      connectionId,
    });
    this.fail({ error, operation: 'listener', event: name as Exclude<SessionEventName, 'error'> });
  }
}

// ── Helpers ─────────────────────────────────────────────────────────────────

/** A failure as a coded error: a NetloopError unchanged, anything else as `NETLOOP_STORE_UNAVAILABLE` with it as `cause`. */
function asStoreError(err: unknown): NetloopError {
  if (err instanceof NetloopError) return err;
  return new NetloopError(ErrorCode.STORE_UNAVAILABLE, `the session store failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function infoOf(r: SessionRecord): SessionInfo {
  const { tokenHash: _secret, ...info } = copySessionRecord(r);
  return info;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const LOGIN_RETRIES = 3;

/** What {@link SessionRegistry.create} checked, handed to the insertion. */
interface NewSession {
  userId: string | null;
  connectionId: string | null;
  remoteAddress: string | null;
  state: 'CONNECTING' | 'ACTIVE';
  ttl: number;
  metadata: Readonly<Record<string, string>>;
}
const WRITE_BATCH = 256;
/** Due sessions expired between two reads of the time in an audit slice. */
const SLICE_CHECK = 64;
/** Rounds of advance-and-expire one audit run makes before it leaves the rest to the next call. */
const AUDIT_ROUNDS = 4;

// ── Registry ────────────────────────────────────────────────────────────────

/**
 * Sessions: create, look up, heartbeat, resume, expire, end; see the module
 * documentation for the design and the README section `sessions` for usage.
 * Every method that may reach the store returns a promise; the handle and
 * `touch` are synchronous.
 */
export class SessionRegistry implements MemoryStoreOwner {
  /** The clock deadlines are measured on. */
  readonly clock: Clock;
  /** The store sessions live in. */
  readonly store: SessionStore;
  /** Resolved options (defaults applied). */
  readonly options: Readonly<Required<Omit<SessionRegistryOptions, 'store' | 'clock' | 'isConnectionAlive'>>>;

  /** The monotonic time (`clock.now()`) at construction: deadlines are kept in ms relative to it. */
  readonly epoch: number;
  /** @internal Wall time at relative time 0, refreshed by every audit (follows wall-clock steps). */
  _wallBase: number;
  /** @internal True when the store is not updated in place (heartbeats are written behind). */
  readonly _writeBehind: boolean;

  readonly #ownsStore: boolean;
  /** The memory store when sessions live in it in place, else null. */
  readonly #mem: MemoryStore | null;
  readonly #isConnectionAlive: ((connectionId: string) => boolean | undefined) | undefined;
  /** Write-behind only: local handles by id and by bound connection (in place, the store's indexes serve). */
  readonly #handles = new Map<string, SessionHandle>();
  readonly #byConn = new Map<string, SessionHandle>();
  readonly #wheel: TimingWheel<SessionHandle>;
  readonly #emitter = new SessionEmitter();
  /** Due sessions not yet expired: `#backlog[#backlogPos..]` (carried over between audit slices). */
  #backlog: SessionHandle[] = [];
  #backlogPos = 0;
  #local = 0;
  #attached = 0;
  #dirty: SessionHandle[] = [];
  #timer: NodeJS.Timeout | null = null;
  #auditing: Promise<number> | null = null;
  /** A sweep slice of the memory store's retired entries is queued (see {@link SessionRegistry.cleanupPending}). */
  #sweepQueued = false;
  #closed = false;
  /** Logins of one user waiting for each other under 'replace' (see #inLoginChain). */
  readonly #loginChains = new Map<string, { tail: Promise<unknown>; size: number }>();
  readonly #counters: RegistryCounters = {
    created: 0,
    resumed: 0,
    detached: 0,
    expired: 0,
    replaced: 0,
    closed: 0,
    deleted: 0,
    refused: 0,
  };

  constructor(options: SessionRegistryOptions = {}) {
    this.clock = options.clock ?? systemClock;
    const ttlMs = checkInteger('ttlMs', options.ttlMs ?? 300_000, 1, 2 ** 31 - 1);
    const resumeWindowMs = checkInteger('resumeWindowMs', options.resumeWindowMs ?? 30_000, 0, 2 ** 31 - 1);
    const granularityMs = checkInteger(
      'granularityMs',
      options.granularityMs ?? Math.min(1_000, Math.max(1, Math.floor(ttlMs / 4))),
      1,
      Math.max(1, Math.floor(ttlMs / 4)),
    );
    const horizon = Math.ceil(Math.max(ttlMs, resumeWindowMs) / granularityMs) + 2;
    const wheelSlots = checkInteger('wheelSlots', options.wheelSlots ?? Math.min(65_536, Math.max(64, nextPow2(horizon))), 2, 1 << 20);
    const policy = options.policy ?? 'multiple';
    if (policy !== 'multiple' && policy !== 'replace' && policy !== 'refuse') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `policy must be 'multiple', 'replace' or 'refuse'`, {
        details: { option: 'policy', value: String(policy) },
      });
    }
    if (options.isConnectionAlive !== undefined && typeof options.isConnectionAlive !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'isConnectionAlive must be a function', {
        details: { option: 'isConnectionAlive' },
      });
    }
    this.options = Object.freeze({
      ttlMs,
      resumeWindowMs,
      granularityMs,
      wheelSlots,
      autoAudit: options.autoAudit ?? true,
      auditBudgetMs: checkInteger('auditBudgetMs', options.auditBudgetMs ?? 4, 1, 1_000),
      maxSessions: checkInteger('maxSessions', options.maxSessions ?? 1_000_000, 1, 100_000_000),
      maxPerUser: checkInteger('maxPerUser', options.maxPerUser ?? 16, 1, 1_000_000),
      maxPendingLoginsPerUser: checkInteger('maxPendingLoginsPerUser', options.maxPendingLoginsPerUser ?? 64, 1, 1_000_000),
      policy,
      maxMetadataKeys: checkInteger('maxMetadataKeys', options.maxMetadataKeys ?? 32, 0, 10_000),
      maxMetadataKeyLength: checkInteger('maxMetadataKeyLength', options.maxMetadataKeyLength ?? 64, 1, 65_536),
      maxMetadataValueLength: checkInteger('maxMetadataValueLength', options.maxMetadataValueLength ?? 1_024, 0, 16 * 1024 * 1024),
      maxIdLength: checkInteger('maxIdLength', options.maxIdLength ?? 256, 1, 65_536),
    });
    this.#isConnectionAlive = options.isConnectionAlive;
    this.#ownsStore = options.store === undefined;
    // Tokens name their session, so the registry's own store needs no token index.
    this.store = options.store ?? new MemoryStore({ clock: this.clock, indexTokens: false });
    this.#mem = this.store instanceof MemoryStore ? this.store : null;
    this._writeBehind = this.#mem === null;
    this.epoch = this.clock.now();
    this._wallBase = this.clock.wallNow();
    this.#wheel = new TimingWheel<SessionHandle>({
      tickMs: granularityMs,
      slots: wheelSlots,
      start: 0,
      indexByKey: false,
    });
    if (this.options.autoAudit) this.#arm();
  }

  // ── Events ────────────────────────────────────────────────────────────────

  /** Subscribes to an event; returns a function that unsubscribes. Delivery is deferred (see {@link SessionEvents}). */
  on<E extends SessionEventName>(name: E, listener: (payload: SessionEvents[E]) => void): () => void {
    return this.#emitter.on(name, listener);
  }

  /** Unsubscribes a listener. */
  off<E extends SessionEventName>(name: E, listener: (payload: SessionEvents[E]) => void): void {
    this.#emitter.off(name, listener);
  }

  // ── Create ────────────────────────────────────────────────────────────────

  /**
   * Creates a session under the login policy and returns it with its token
   * (the only time the token is visible) and its local handle.
   *
   * Errors: `NETLOOP_LOGIN_REFUSED` (policy), `NETLOOP_SESSION_LIMIT`
   * (`maxSessions`), `NETLOOP_INVALID_VALUE` (bad input, metadata over a
   * limit), `NETLOOP_ALREADY_BOUND` (the connection is bound to a session),
   * `NETLOOP_REGISTRY_CLOSED`, and the store's (`NETLOOP_STORE_UNAVAILABLE`
   * within its bound when it is down).
   */
  create(input: CreateSessionInput = {}): Promise<CreatedSession> {
    // Not an async function: returning the insertion's own promise costs no extra turns of the microtask queue.
    let fields: NewSession;
    try {
      fields = this.#checkNew(input);
    } catch (err) {
      return Promise.reject(err);
    }
    const userId = fields.userId;
    // Under 'replace', one user's logins run one after another, in call order:
    // each finds the one before it and replaces it, so the newest wins and none is refused.
    if (userId !== null && this.options.policy === 'replace') return this.#inLoginChain(userId, () => this.#insertSession(fields));
    return this.#insertSession(fields);
  }

  /** Validates a create's input (every limit before anything is stored). */
  #checkNew(input: CreateSessionInput): NewSession {
    this.#open();
    const userId = this.#checkId('userId', input.userId ?? null);
    const connectionId = this.#checkId('connectionId', input.connectionId ?? null);
    const remoteAddress = this.#checkId('remoteAddress', input.remoteAddress ?? null);
    const state = input.state ?? 'ACTIVE';
    if (state !== 'ACTIVE' && state !== 'CONNECTING') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `a session starts CONNECTING or ACTIVE, not ${String(state)}`);
    }
    const ttl = input.ttlMs === undefined ? this.options.ttlMs : checkInteger('ttlMs', input.ttlMs, 1, 2 ** 31 - 1);
    const metadata = input.metadata === undefined ? EMPTY_METADATA : ownMetadata(this.#mergeMetadata({}, input.metadata));
    if (this.#local >= this.options.maxSessions) {
      this.#counters.refused++;
      throw new NetloopError(ErrorCode.SESSION_LIMIT, 'the session registry is full', {
        details: { maxSessions: this.options.maxSessions },
      });
    }
    if (connectionId !== null) this.#checkConnectionFree(connectionId);
    return { userId, connectionId, remoteAddress, state, ttl, metadata };
  }

  /**
   * Runs `login` after every earlier login of `userId` in this registry has
   * settled. The chain holds at most `maxPendingLoginsPerUser` logins; one
   * more is refused (`NETLOOP_LOGIN_REFUSED`, `details.limit`) rather than
   * queued without bound.
   *
   * ```
   *   loginChains: Map<userId, { tail, size }>
   *     tail: the promise that settles when the last queued login settled
   *     size: logins queued or running; the entry is removed when it drops to 0
   * ```
   */
  #inLoginChain<T>(userId: string, login: () => Promise<T>): Promise<T> {
    let chain = this.#loginChains.get(userId);
    if (chain === undefined) {
      chain = { tail: Promise.resolve(), size: 0 };
      this.#loginChains.set(userId, chain);
    } else if (chain.size >= this.options.maxPendingLoginsPerUser) {
      this.#counters.refused++;
      const max = this.options.maxPendingLoginsPerUser;
      return Promise.reject(
        new NetloopError(ErrorCode.LOGIN_REFUSED, `more than ${max} logins of one user are waiting for each other`, {
          details: { policy: 'replace', limit: 'maxPendingLoginsPerUser', max },
        }),
      );
    }
    const entry = chain;
    entry.size++;
    const run = entry.tail.then(login);
    const done = (): void => {
      if (--entry.size === 0 && this.#loginChains.get(userId) === entry) this.#loginChains.delete(userId);
    };
    entry.tail = run.then(done, done);
    return run;
  }

  /** Applies the login policy and inserts the session (create's second half). */
  async #insertSession(fields: NewSession): Promise<CreatedSession> {
    const { userId, connectionId, remoteAddress, state, ttl, metadata } = fields;
    this.#open();
    const policy = this.options.policy;
    for (let attempt = 0; ; attempt++) {
      let maxPerUser: number | undefined;
      let replaced: SessionRecord[] = [];
      if (userId !== null) {
        if (policy === 'multiple') maxPerUser = this.options.maxPerUser;
        else {
          maxPerUser = 1;
          const existing = await this.store.getByUser(userId);
          if (policy === 'replace') replaced = existing;
          else {
            for (const rec of existing) {
              if (this.#connectionDead(rec)) await this.#end(rec.id, 'closed', 'dead-connection', rec);
            }
          }
        }
      }
      const nowRel = this.#rel();
      const wall = nowRel + this._wallBase;
      // Whole milliseconds, as the id's stamp: the creation time is then the stamp (see `_createdDelta`).
      const createdAt = Math.floor(wall);
      const id = uuidv7(createdAt);
      // The token names its session (a split token): resolving it is one lookup by id.
      const { token, hash } = createToken(id);
      const record: SessionRecord = {
        id,
        tokenHash: hash,
        userId,
        connectionId,
        remoteAddress,
        state,
        metadata,
        stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
        createdAt,
        lastActiveAt: wall,
        expiresAt: wall + ttl,
        ttl,
      };
      for (const old of replaced) await this.#end(old.id, 'replaced', 'replaced', old, record.id);
      this.#open();
      if (connectionId !== null) this.#checkConnectionFree(connectionId);
      const options = maxPerUser === undefined ? {} : { maxPerUser };
      let handle: SessionHandle | null = null;
      let ok: boolean;
      const mem = this.#mem;
      if (mem !== null) {
        // In place: the handle is the record; no copy, no promise.
        handle = new SessionHandle(this, record, Math.ceil(nowRel + ttl), nowRel, true);
        ok = mem.adopt(handle as unknown as OwnedEntry, options);
      } else {
        ok = await this.store.create(record, options);
      }
      if (!ok) {
        // Another login of the same user won a race (possibly in another process): retry the policy, boundedly.
        if (policy === 'replace' && attempt + 1 < LOGIN_RETRIES) continue;
        this.#counters.refused++;
        throw new NetloopError(ErrorCode.LOGIN_REFUSED, 'the login policy refused a new session for this user', {
          details: { policy, maxPerUser },
        });
      }
      if (this.#closed) {
        if (handle !== null) mem?.release(handle as unknown as OwnedEntry);
        else await this.store.delete(record.id).catch(() => undefined);
        this.#open();
      }
      if (handle === null) handle = this.#adopt(record, Math.ceil(nowRel + ttl), nowRel);
      else this.#track(handle);
      this.#counters.created++;
      const session = handle.snapshot();
      this.#emitter.emit('created', { session });
      return { session, token, handle };
    }
  }

  // ── Lookups ───────────────────────────────────────────────────────────────

  /** The local handle of a session, or undefined (synchronous; local sessions only). */
  handle(id: string): SessionHandle | undefined {
    const h = this.#get(id);
    return h === undefined || h._mode === ENDED ? undefined : h;
  }

  /** The local handle bound to a connection, or undefined (synchronous). */
  handleByConnection(connectionId: string): SessionHandle | undefined {
    const h = this.#getByConn(connectionId);
    return h === undefined || h._mode !== ATTACHED ? undefined : h;
  }

  /**
   * Synchronous heartbeat by id: the local handle's {@link SessionHandle.heartbeat}
   * (one Map lookup more). Returns the time left, or -1 when the session is
   * not local, detached, ended or past its deadline.
   */
  touch(id: string, now?: number): number {
    const h = this.#get(id);
    return h === undefined ? -1 : h.heartbeat(now);
  }

  /** The live session with this id, or null. */
  async get(id: string): Promise<SessionInfo | null> {
    this.#open();
    const h = this.#liveHandle(id);
    if (h !== undefined) return h.snapshot();
    const rec = await this.store.get(id);
    return rec === null || this.#get(rec.id) !== undefined ? null : infoOf(rec);
  }

  /**
   * The live session whose token this is, or null. The token is hashed and
   * checked in constant time; a malformed token is simply not found.
   */
  async getByToken(token: string): Promise<SessionInfo | null> {
    this.#open();
    const rec = await this.#recordByToken(token);
    if (rec === null) return null;
    const h = this.#liveHandle(rec.id);
    return h !== undefined ? h.snapshot() : this.#get(rec.id) !== undefined ? null : infoOf(rec);
  }

  /** The live session bound to this connection, or null. */
  async getByConnection(connectionId: string): Promise<SessionInfo | null> {
    this.#open();
    const h = this.#getByConn(connectionId);
    if (h !== undefined && h._mode === ATTACHED) return this.#liveHandle(h.id)?.snapshot() ?? null;
    const rec = await this.store.getByConnection(connectionId);
    return rec === null || this.#get(rec.id) !== undefined ? null : infoOf(rec);
  }

  /** Every live session of a user, oldest first. */
  async getByUser(userId: string): Promise<SessionInfo[]> {
    this.#open();
    return (await this.store.getByUser(userId)).map((r) => this.#fresh(r));
  }

  /** One page of the live sessions matching `filter`, oldest first, with the total that matched. */
  async list(filter: SessionFilter = {}, page?: Page): Promise<{ sessions: SessionInfo[]; total: number }> {
    this.#open();
    const res = await this.store.list(filter, page);
    return { sessions: res.sessions.map((r) => this.#fresh(r)), total: res.total };
  }

  // ── Updates ───────────────────────────────────────────────────────────────

  /**
   * Extends a session's expiry by its TTL and resolves the time left. Works for
   * sessions held only in the store too. `NETLOOP_SESSION_EXPIRED` when the
   * deadline has passed, `NETLOOP_SESSION_NOT_FOUND` when there is no such
   * live session, or it is detached (waiting for a resume).
   */
  async heartbeat(id: string): Promise<number> {
    this.#open();
    const h = this.#get(id);
    if (h !== undefined) {
      const left = h.heartbeat(this.clock.now());
      if (left >= 0) return left;
      if (h._mode === ATTACHED) throw this.#expiredError(id);
      throw this.#notFound(id);
    }
    const rec = await this.store.get(id);
    if (rec === null || rec.connectionId === null) throw this.#notFound(id);
    const wall = this.clock.wallNow();
    rec.stats.heartbeats++;
    rec.expiresAt = wall + rec.ttl;
    rec.lastActiveAt = wall;
    if (!(await this.store.set(rec))) throw this.#notFound(id);
    return rec.ttl;
  }

  /**
   * Changes a session's state along {@link SESSION_TRANSITIONS}; `'CLOSED'`
   * ends it (event `closed`, reason `'state-closed'`). Resolves the session as
   * it is afterwards. `NETLOOP_INVALID_TRANSITION` for a move the machine
   * does not allow.
   */
  async updateState(id: string, state: SessionState): Promise<SessionInfo> {
    this.#open();
    const rec = await this.#current(id);
    if (!canTransition(rec.state, state)) {
      throw new NetloopError(ErrorCode.INVALID_TRANSITION, `a session cannot go from ${rec.state} to ${String(state)}`, {
        details: { id, from: rec.state, to: state },
      });
    }
    if (state === 'CLOSED') {
      const info = await this.#end(id, 'closed', 'state-closed', rec);
      if (info === null) throw this.#notFound(id);
      return info;
    }
    if (rec.state === state) return this.#fresh(rec);
    return this.#write(id, { ...rec, state });
  }

  /**
   * Merges `patch` into the session's metadata: a string sets a key, null
   * removes it. Limits (`maxMetadataKeys`, key and value lengths) are checked
   * on the merged result before anything is stored (`NETLOOP_INVALID_VALUE`).
   */
  async updateMetadata(id: string, patch: Record<string, string | null>): Promise<SessionInfo> {
    this.#open();
    const rec = await this.#current(id);
    const metadata = this.#mergeMetadata(rec.metadata, patch);
    return this.#write(id, { ...rec, metadata });
  }

  /** Adds `delta` (non-negative integers) to the session's traffic counters. */
  async updateStats(id: string, delta: Partial<SessionStats>): Promise<SessionInfo> {
    this.#open();
    const keys = ['bytesIn', 'bytesOut', 'messagesIn', 'messagesOut', 'heartbeats'] as const;
    for (const k of Object.keys(delta)) {
      if (!(keys as readonly string[]).includes(k)) throw new NetloopError(ErrorCode.INVALID_VALUE, `unknown stats field ${k}`);
    }
    for (const k of keys) {
      const v = delta[k];
      if (v !== undefined) checkInteger(`stats.${k}`, v, 0, Number.MAX_SAFE_INTEGER);
    }
    const rec = await this.#current(id);
    const stats = { ...rec.stats };
    for (const k of keys) stats[k] += delta[k] ?? 0;
    return this.#write(id, { ...rec, stats });
  }

  /** Ends a session (event `deleted` with `reason`). Resolves false if there was no live session. */
  async delete(id: string, reason = 'deleted'): Promise<boolean> {
    this.#open();
    return (await this.#end(id, 'deleted', String(reason))) !== null;
  }

  // ── Connections ───────────────────────────────────────────────────────────

  /**
   * Tells the registry that a connection closed, for whatever reason. The
   * binding calls it on EVERY close (peer FIN, reset, error, timeouts, server
   * close, after an expiry notice). The session bound to it, if any, is kept
   * detached for `resumeWindowMs` (state IDLE, event `detached`), or closed
   * (event `closed`) when resume is disabled or the session was still
   * CONNECTING. Idempotent; resolves the session's state afterwards or null.
   */
  async detach(connectionId: string, reason = 'connection-closed'): Promise<SessionInfo | null> {
    this.#open();
    const found = this.#getByConn(connectionId);
    const h = found !== undefined && found._mode === ATTACHED ? found : undefined;
    let rec: SessionRecord | null;
    if (h !== undefined) {
      rec = h._toRecord();
    } else {
      rec = await this.store.getByConnection(connectionId);
      if (rec === null) return null;
    }
    if (this.options.resumeWindowMs === 0 || rec.state === 'CONNECTING') {
      return this.#end(rec.id, 'closed', String(reason), rec, undefined, connectionId);
    }
    const now = this.#rel();
    const deadline = Math.min(h !== undefined ? h.deadline : now + (rec.expiresAt - this.clock.wallNow()), now + this.options.resumeWindowMs);
    const next: SessionRecord = { ...rec, connectionId: null, state: 'IDLE', expiresAt: deadline + this._wallBase };
    if (h !== undefined) {
      if (this.#byConn.get(connectionId) === h) this.#byConn.delete(connectionId);
      this.#setMode(h, DETACHED);
      this.#wheel.rescheduleEntry(h, Math.ceil(deadline));
    }
    const ok = await this.store.set(next);
    if (!ok) {
      // Gone from the store meanwhile (expired or deleted elsewhere).
      if (h !== undefined) this.#dropLocal(h);
      return null;
    }
    if (h !== undefined && h._mode !== ENDED && h._owner === null) h._assign(next);
    const session = h !== undefined && h._mode !== ENDED ? h.snapshot() : infoOf(next);
    this.#counters.detached++;
    this.#emitter.emit('detached', { session, connectionId, reason: String(reason) });
    return session;
  }

  /**
   * Binds a session to a new connection, given its token. Works for a
   * detached session within its resume window and for a session still bound
   * elsewhere (a reconnect before the old connection was noticed dead): then
   * `previousConnectionId` names the old connection, which the binding
   * closes. The session becomes ACTIVE with a fresh TTL.
   *
   * `NETLOOP_BAD_TOKEN` for a malformed, unknown, expired or deleted token
   * (the error never says which, and never holds the token);
   * `NETLOOP_ALREADY_BOUND` when `connectionId` is bound to another session.
   */
  async resume(token: string, connectionId: string, remoteAddress: string | null = null): Promise<ResumedSession> {
    this.#open();
    this.#checkId('connectionId', connectionId);
    this.#checkId('remoteAddress', remoteAddress);
    const found = await this.#recordByToken(token);
    const known = found === null ? undefined : this.#get(found.id);
    const local = known !== undefined && known._mode !== ENDED ? known : undefined;
    const rec = local !== undefined ? local._toRecord() : found;
    if (rec === null || (local !== undefined && this.#liveHandle(local.id) === undefined)) throw this.#badToken();
    const holder = this.#getByConn(connectionId);
    if (holder !== undefined && holder._mode === ATTACHED && holder.id !== rec.id) {
      throw new NetloopError(ErrorCode.ALREADY_BOUND, 'this connection is already bound to another session', {
        details: { connectionId },
      });
    }
    const previousConnectionId = rec.connectionId === connectionId ? null : rec.connectionId;
    const now = this.#rel();
    const deadline = Math.ceil(now + rec.ttl);
    const wall = now + this._wallBase;
    const next: SessionRecord = {
      ...rec,
      connectionId,
      remoteAddress: remoteAddress ?? rec.remoteAddress,
      state: 'ACTIVE',
      lastActiveAt: wall,
      expiresAt: deadline + this._wallBase,
    };
    if (!(await this.store.set(next))) {
      if (local !== undefined) this.#dropLocal(local);
      throw this.#badToken();
    }
    this.#open();
    let handle: SessionHandle;
    if (local !== undefined && local._mode !== ENDED) {
      handle = local;
      if (local._owner === null) {
        if (previousConnectionId !== null && this.#byConn.get(previousConnectionId) === local) this.#byConn.delete(previousConnectionId);
        local._assign(next);
        this.#byConn.set(connectionId, local);
      }
      this.#setMode(local, ATTACHED);
      local._lastActive = Math.floor(now);
      this.#wheel.rescheduleEntry(local, deadline);
    } else {
      handle = this.#adopt(next, deadline, now);
    }
    this.#counters.resumed++;
    const session = handle.snapshot();
    this.#emitter.emit('resumed', { session, previousConnectionId });
    return { session, handle, previousConnectionId };
  }

  // ── Audit ─────────────────────────────────────────────────────────────────

  /**
   * Expires every local session whose deadline has passed (events `expired`,
   * delivered in one batch per slice), then writes the dirty handles behind
   * to the store. Cost: what is due plus the wheel slots passed, never a scan.
   *
   * The due sessions are expired in synchronous slices of at most
   * `auditBudgetMs`, separated by a turn of the event loop (`setImmediate`),
   * so no audit blocks the loop longer than about the budget. Normally one
   * slice suffices and every session expires within `granularityMs` of its
   * deadline. When more are due than one slice can expire, the rest is
   * carried over to the following slices of the same run; expiry then lags by
   * the backlog (each slice expires roughly `auditBudgetMs` worth, oldest tick
   * first), and a due session is refused by every lookup and heartbeat in the
   * meantime, so it is never seen alive. Concurrent calls share one run; a
   * run re-reads the clock after its backlog and continues (at most a few
   * rounds) so that ticks that passed meanwhile are not left waiting.
   * Resolves how many sessions expired.
   */
  audit(): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    if (this.#auditing !== null) return this.#auditing;
    const run = this.#runAudit();
    this.#auditing = run;
    return run;
  }

  async #runAudit(): Promise<number> {
    // The run clears #auditing itself as it ends (its own `finally` rather
    // than a chained `.finally()`: fewer promise hops per tick).
    try {
      await null; // never run listeners' work inside the caller's frame
      const budget = this.options.auditBudgetMs;
      let expired = 0;
      for (let round = 0; round < AUDIT_ROUNDS && !this.#closed; round++) {
        // The slice that advances the wheel counts the advance too (collecting
        // thousands of cold handles is itself a few ms at scale).
        let until = performance.now() + budget;
        const now = this.#rel();
        this._wallBase = this.clock.wallNow() - now;
        this.#wheel.advanceInto(now, this.#backlog);
        if (this.#backlogPos >= this.#backlog.length) break;
        while (this.#backlogPos < this.#backlog.length && !this.#closed) {
          const pending: Promise<unknown>[] | null = this.#mem === null ? [] : null;
          expired += this.#expireDue(until, pending);
          if (pending !== null && pending.length > 0) await Promise.all(pending);
          if (this.#backlogPos < this.#backlog.length) await yieldToLoop();
          until = performance.now() + budget;
        }
      }
      if (this.#dirty.length > 0) await this.#flush();
      this.#scheduleSweep();
      return expired;
    } finally {
      this.#auditing = null;
    }
  }

  /**
   * Expires the backlog of due sessions until it is empty or the
   * performance clock passes `until`; store deletions still in flight are
   * pushed to `pending` (write-behind stores only). Returns how many expired.
   */
  #expireDue(until: number, pending: Promise<unknown>[] | null): number {
    const due = this.#backlog;
    const now = this.#rel();
    let i = this.#backlogPos;
    let expired = 0;
    while (i < due.length) {
      const h = due[i]!;
      i++;
      if (h._mode === ENDED) continue;
      if (h.deadline > now) {
        // Its deadline moved later after it was found due (a store write): file it again.
        if (h._slot === NOT_FILED) this.#wheel.scheduleEntry(h);
        continue;
      }
      expired++;
      const p = this.#expireLocal(h, h._mode === DETACHED ? 'resume-window' : 'ttl');
      if (p !== null && pending !== null) pending.push(p);
      if (i % SLICE_CHECK === 0 && performance.now() >= until) break;
    }
    if (i >= due.length) {
      due.length = 0;
      this.#backlogPos = 0;
    } else {
      this.#backlogPos = i;
    }
    return expired;
  }

  /**
   * Writes every dirty handle to the store now (the write-behind queue) and
   * completes the removal of expired sessions from the memory store's Maps
   * ({@link SessionRegistry.cleanupPending}); resolves when done.
   */
  async flush(): Promise<void> {
    this.#open();
    await this.#flush();
    this.#mem?.sweepRetired();
  }

  async #flush(): Promise<void> {
    if (this.#dirty.length === 0) return;
    const batch = this.#dirty;
    this.#dirty = [];
    let sliceStart = performance.now();
    for (let i = 0; i < batch.length; i += WRITE_BATCH) {
      const writes: Promise<void>[] = [];
      for (const h of batch.slice(i, i + WRITE_BATCH)) {
        const kind = h._dirty;
        h._dirty = CLEAN;
        if (h._mode === ENDED || kind === CLEAN) continue;
        const write = kind === DIRTY_FULL ? this.store.set(h._toRecord()) : this.store.touch(h.id, h.expiresAt, h.lastActiveAt);
        writes.push(
          write.then((ok) => {
            // The store lost the session (its TTL ran out there, or another process deleted it): end it here too.
            if (!ok && h._mode !== ENDED) this.#endLocalOnly(h, 'store');
          }),
        );
      }
      await Promise.all(writes);
      if (performance.now() - sliceStart > this.options.auditBudgetMs) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  }

  // ── Statistics and close ──────────────────────────────────────────────────

  /**
   * Asks the store whether it answers now: resolves once it did, rejects with
   * its coded error within the store's own bound, never hangs. Call it at
   * start-up to say whether the store answered (a server may start anyway:
   * logins and resumes then reject with the same code until the store is
   * back), or from a health check.
   *
   * ```ts
   * try { await registry.ping(); log(`store ${registry.store.kind}: answered`); }
   * catch (err) { log(`store ${registry.store.kind}: ${(err as NetloopError).code}`); }
   * ```
   *
   * Rejects with `NETLOOP_STORE_UNAVAILABLE` (Redis unreachable, or no answer
   * within its `commandTimeoutMs`), `NETLOOP_STORE_IO` (a file store whose
   * saves are failing), `NETLOOP_STORE_CLOSED`, `NETLOOP_REGISTRY_CLOSED`. A
   * store without `ping()` is asked for `count()`; an uncoded failure of it
   * is reported as `NETLOOP_STORE_UNAVAILABLE` with the failure as `cause`.
   */
  async ping(): Promise<void> {
    this.#open();
    const store = this.store;
    try {
      if (typeof store.ping === 'function') await store.ping();
      else await store.count();
    } catch (err) {
      throw asStoreError(err);
    }
  }

  /** Totals from the store (per state) and this registry's local figures and counters. */
  async stats(): Promise<RegistryStats> {
    this.#open();
    const [total, connecting, active, idle] = await Promise.all([
      this.store.count(),
      this.store.count({ state: 'CONNECTING' }),
      this.store.count({ state: 'ACTIVE' }),
      this.store.count({ state: 'IDLE' }),
    ]);
    return {
      total,
      byState: { CONNECTING: connecting, ACTIVE: active, IDLE: idle, CLOSED: 0 },
      local: this.#local,
      attached: this.#attached,
      timers: this.#wheel.size,
      counters: { ...this.#counters },
    };
  }

  /**
   * Expired sessions (in place, in the memory store) that are over for every
   * read but not yet taken out of the store's Maps. An audit ends each due
   * session at once (state, counters, event) and leaves the removal from the
   * store's string-keyed Maps to sweep slices of at most
   * `auditBudgetMs` each, run from the loop after the audit; `flush()`,
   * `close()` and the store's counts complete it at once.
   */
  get cleanupPending(): number {
    return this.#mem === null ? 0 : this.#mem.retiredCount;
  }

  /** Sizes of the local structures, for leak checks: all 0 when no session is held. */
  localSizes(): { handles: number; connections: number; timers: number; dirty: number } {
    return { handles: this.#local, connections: this.#attached, timers: this.#wheel.size, dirty: this.#dirty.length };
  }

  /** True once {@link SessionRegistry.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops the audit timer, writes the dirty handles behind, and releases the
   * local sessions. With a store of its own (the default memory store) the
   * store is closed too. With a store passed in, the sessions bound to this
   * process's connections are left detached in it (resumable within the
   * window, then expired by the store; deleted when resume is disabled) so
   * that no stale binding can lock a user out, and the other local sessions
   * are left as they are (a memory store takes its records back as its own);
   * the store is left open (its owner closes it). No events are emitted.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#auditing !== null) await this.#auditing.catch(() => undefined);
    const now = this.#rel();
    const mem = this.#mem;
    if (mem !== null) {
      mem.sweepRetired();
      const mine = mem.ownedEntries(this) as unknown as SessionHandle[];
      for (const h of mine) {
        if (!this.#ownsStore) {
          if (h._mode === ATTACHED) {
            if (this.options.resumeWindowMs === 0 || h.state === 'CONNECTING') mem.release(h as unknown as OwnedEntry);
            else {
              const deadline = Math.min(h.deadline, now + this.options.resumeWindowMs);
              mem.setSync({ ...h._toRecord(), connectionId: null, state: 'IDLE', expiresAt: deadline + this._wallBase });
            }
          }
          mem.disown(h as unknown as OwnedEntry);
        }
        this.#finish(h);
      }
      mem.forgetOwner(this);
    } else {
      if (!this.#ownsStore) {
        await this.#flush().catch(() => undefined);
        const writes: Promise<unknown>[] = [];
        for (const h of this.#byConn.values()) {
          const r = h._toRecord();
          if (this.options.resumeWindowMs === 0 || r.state === 'CONNECTING') writes.push(this.store.delete(r.id));
          else {
            const deadline = Math.min(h.deadline, now + this.options.resumeWindowMs);
            writes.push(this.store.set({ ...r, connectionId: null, state: 'IDLE', expiresAt: deadline + this._wallBase }));
          }
          if (writes.length >= WRITE_BATCH) await Promise.allSettled(writes.splice(0));
        }
        await Promise.allSettled(writes);
      }
      for (const h of this.#handles.values()) this.#finish(h);
    }
    this.#handles.clear();
    this.#byConn.clear();
    this.#wheel.clear();
    this.#backlog = [];
    this.#backlogPos = 0;
    this.#local = 0;
    this.#attached = 0;
    this.#dirty = [];
    if (this.#ownsStore) await this.store.close();
  }

  // ── Internals shared with SessionHandle and the memory store ─────────────

  /** @internal Moves a handle's deadline (either direction) in the wheel. */
  _refile(h: SessionHandle, deadline: number): void {
    this.#wheel.rescheduleEntry(h, deadline);
  }

  /** @internal A store write of a wall-clock expiry: converted to the monotonic deadline and re-filed. */
  _setWallExpiry(h: SessionHandle, wall: number): void {
    // The epsilon absorbs the rounding of (deadline + base) - base, so an unchanged expiry stays unchanged.
    const deadline = Math.ceil(wall - this._wallBase - 1e-6);
    if (deadline === h.deadline) return;
    if (h._mode === ENDED) h.deadline = deadline;
    else this.#wheel.rescheduleEntry(h, deadline);
  }

  /** @internal Queues a handle for the write-behind flush. */
  _markDirty(h: SessionHandle, kind: number): void {
    if (h._dirty === IN_PLACE) return;
    if (h._dirty === CLEAN) this.#dirty.push(h);
    if (kind > h._dirty) h._dirty = kind;
  }

  /** @internal {@link MemoryStoreOwner}: the memory store removed one of our sessions (public delete, clear, eviction). */
  _storeRemoved(entry: OwnedEntry): void {
    const h = entry as unknown as SessionHandle;
    if (h._reg !== this || h._mode === ENDED) return;
    this.#endLocalOnly(h, 'store');
  }

  /** @internal {@link MemoryStoreOwner}: expire now, in one go, every local session that is due (before the store counts). */
  _storeSettle(_now: number): void {
    if (this.#closed) return;
    this.#wheel.advanceInto(this.#rel(), this.#backlog);
    if (this.#backlogPos < this.#backlog.length) this.#expireDue(Number.POSITIVE_INFINITY, null);
  }

  // ── Private ───────────────────────────────────────────────────────────────

  /** Queues a sweep slice when expired sessions wait for their removal from the memory store. */
  #scheduleSweep(): void {
    const mem = this.#mem;
    if (mem === null || this.#sweepQueued || this.#closed || mem.retiredCount === 0) return;
    this.#sweepQueued = true;
    setImmediate(this.#sweepSlice);
  }

  /** One slice of at most `auditBudgetMs`; an audit in progress takes precedence and queues the next slice when it ends. */
  readonly #sweepSlice = (): void => {
    this.#sweepQueued = false;
    const mem = this.#mem;
    if (mem === null || this.#closed || this.#auditing !== null) return;
    if (mem.sweepRetired(performance.now() + this.options.auditBudgetMs) > 0) this.#scheduleSweep();
  };

  #arm(): void {
    const tick = (): void => {
      this.#timer = null;
      if (this.#closed) return;
      this.audit()
        .catch((err: unknown) => {
          // Nobody awaits this audit: its failure (a store that is down) goes to the 'error' path.
          if (!this.#closed) this.#emitter.fail({ error: asStoreError(err), operation: 'audit' });
        })
        .finally(() => {
          if (!this.#closed && this.#timer === null) this.#arm();
        });
    };
    this.#timer = setTimeout(tick, this.options.granularityMs);
    this.#timer.unref();
  }

  /** Monotonic now, relative to {@link SessionRegistry.epoch}. */
  #rel(): number {
    return this.clock.now() - this.epoch;
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.REGISTRY_CLOSED, 'the session registry is closed');
  }

  #notFound(id: string): NetloopError {
    return new NetloopError(ErrorCode.SESSION_NOT_FOUND, 'no live session with this id', { details: { id } });
  }

  #expiredError(id: string): NetloopError {
    return new NetloopError(ErrorCode.SESSION_EXPIRED, 'the session has expired', { details: { id } });
  }

  #badToken(): NetloopError {
    return new NetloopError(ErrorCode.BAD_TOKEN, 'the session token was refused');
  }

  /** The local handle with this id (even ended or past its deadline), or undefined. */
  #get(id: string): SessionHandle | undefined {
    const mem = this.#mem;
    if (mem === null) return this.#handles.get(id);
    // In place every handle of this registry is the store's record; another owner's entry has another (or no) `_reg`.
    const e = mem.ownedById(id) as unknown as SessionHandle | undefined;
    return e !== undefined && e._reg === this ? e : undefined;
  }

  /** The local handle indexed under this connection, or undefined. */
  #getByConn(connectionId: string): SessionHandle | undefined {
    const mem = this.#mem;
    if (mem === null) return this.#byConn.get(connectionId);
    const e = mem.ownedByConnection(connectionId) as unknown as SessionHandle | undefined;
    return e !== undefined && e._owner === this ? e : undefined;
  }

  #checkId(name: string, value: string | null): string | null {
    if (value === null) return null;
    if (typeof value !== 'string' || value.length === 0 || value.length > this.options.maxIdLength) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `${name} must be a non-empty string of at most ${this.options.maxIdLength} characters`, {
        details: { field: name, maxLength: this.options.maxIdLength },
      });
    }
    return value;
  }

  #checkConnectionFree(connectionId: string): void {
    const h = this.#getByConn(connectionId);
    if (h !== undefined && h._mode === ATTACHED) {
      throw new NetloopError(ErrorCode.ALREADY_BOUND, 'this connection is already bound to a session', { details: { connectionId } });
    }
  }

  /** Validates and merges metadata; limits are checked on the result, before anything is stored. */
  #mergeMetadata(base: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'metadata must be an object of strings');
    }
    const o = this.options;
    const out: Record<string, string> = { ...base };
    for (const key of Object.keys(patch)) {
      const value = patch[key];
      if (key.length === 0 || key.length > o.maxMetadataKeyLength || key === '__proto__') {
        throw new NetloopError(ErrorCode.INVALID_VALUE, `metadata keys must be 1 to ${o.maxMetadataKeyLength} characters (and not __proto__)`, {
          details: { limit: 'maxMetadataKeyLength', max: o.maxMetadataKeyLength, keyLength: key.length },
        });
      }
      if (value === null) {
        delete out[key];
        continue;
      }
      if (typeof value !== 'string' || value.length > o.maxMetadataValueLength) {
        throw new NetloopError(ErrorCode.INVALID_VALUE, `metadata values must be strings of at most ${o.maxMetadataValueLength} characters`, {
          details: { limit: 'maxMetadataValueLength', max: o.maxMetadataValueLength, key },
        });
      }
      out[key] = value;
    }
    if (Object.keys(out).length > o.maxMetadataKeys) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `a session holds at most ${o.maxMetadataKeys} metadata keys`, {
        details: { limit: 'maxMetadataKeys', max: o.maxMetadataKeys },
      });
    }
    return out;
  }

  /** Creates the local handle of a record already in the store, and indexes it. */
  #adopt(record: SessionRecord, deadline: number, lastActive: number): SessionHandle {
    const mem = this.#mem;
    const h = new SessionHandle(this, record, deadline, lastActive, mem !== null);
    if (mem !== null) mem.adopt(h as unknown as OwnedEntry, { replace: true });
    else {
      this.#handles.set(h.id, h);
      if (record.connectionId !== null) this.#byConn.set(record.connectionId, h);
    }
    this.#track(h);
    return h;
  }

  /** Counts a new local handle and files it in the wheel. */
  #track(h: SessionHandle): void {
    this.#local++;
    if (h._mode === ATTACHED) this.#attached++;
    this.#wheel.scheduleEntry(h);
  }

  /** Moves a live handle between ATTACHED and DETACHED, keeping the count of attached ones. */
  #setMode(h: SessionHandle, mode: number): void {
    if (h._mode === ENDED || h._mode === mode) return;
    if (h._mode === ATTACHED) this.#attached--;
    if (mode === ATTACHED) this.#attached++;
    h._mode = mode;
  }

  /** A local handle that is live now; one past its deadline is left for the audit (which reports it). */
  #liveHandle(id: string): SessionHandle | undefined {
    const h = this.#get(id);
    if (h === undefined || h._mode === ENDED || this.#rel() >= h.deadline) return undefined;
    return h;
  }

  /** The freshest view of a stored record: the local handle's when there is one. */
  #fresh(r: SessionRecord): SessionInfo {
    if (this.#mem !== null) return infoOf(r); // in place, the store's copy is the handle's own fields
    const h = this.#handles.get(r.id);
    return h !== undefined && h._mode !== ENDED ? h.snapshot() : infoOf(r);
  }

  /** The current record of a live session (local or stored), or NOT_FOUND / EXPIRED. */
  async #current(id: string): Promise<SessionRecord> {
    const h = this.#get(id);
    if (h !== undefined && h._mode !== ENDED) {
      if (this.#rel() >= h.deadline) throw this.#expiredError(id);
      return h._toRecord();
    }
    const rec = await this.store.get(id);
    if (rec === null) throw this.#notFound(id);
    return rec;
  }

  /** Writes a changed record through to the store and the local handle. */
  async #write(id: string, next: SessionRecord): Promise<SessionInfo> {
    const h = this.#get(id);
    const local = h !== undefined && h._mode !== ENDED ? h : undefined;
    if (local !== undefined) {
      // Keep the local expiry, which may be ahead of `next` (heartbeats are written behind).
      next.expiresAt = local.expiresAt;
      next.lastActiveAt = local.lastActiveAt;
    }
    if (!(await this.store.set(next))) {
      if (local !== undefined && local._mode !== ENDED) this.#endLocalOnly(local, 'store');
      throw this.#notFound(id);
    }
    if (local !== undefined && local._mode !== ENDED) {
      if (local._owner === null) local._assign(next);
      return local.snapshot();
    }
    return infoOf(next);
  }

  /**
   * The live record a token resolves to, or null: the token names its session
   * id, the record is looked up by that id (no index of token hashes), and the
   * token is accepted only if it hashes to the record's token hash.
   */
  async #recordByToken(token: string): Promise<SessionRecord | null> {
    const id = tokenSessionId(token);
    if (id === null) return null;
    const rec = await this.store.get(id);
    if (rec === null || !tokenMatches(token, rec.tokenHash)) return null;
    return rec;
  }

  /** Whether a session's connection is known dead (detached, or reported dead by the hook). */
  #connectionDead(rec: SessionRecord): boolean {
    if (rec.connectionId === null) return true;
    const local = this.#getByConn(rec.connectionId);
    if (local !== undefined && local.id !== rec.id) return true;
    const hook = this.#isConnectionAlive;
    if (hook !== undefined && hook(rec.connectionId) === false) return true;
    return false;
  }

  /** Marks a handle ended: state CLOSED, no connection, out of the write-behind queue. */
  #finish(h: SessionHandle): void {
    const m = h as MutableHandle;
    h._mode = ENDED;
    m.state = 'CLOSED';
    m.connectionId = null;
    if (h._dirty !== IN_PLACE) h._dirty = CLEAN;
  }

  /**
   * Removes a handle from every local structure, and in place from the store
   * (synchronous, idempotent). With `deferStoreRemoval` (an expiry) the memory
   * store retires it instead: over for every read now, out of its Maps in a
   * later sweep slice.
   */
  #dropLocal(h: SessionHandle, deferStoreRemoval = false): void {
    if (h._mode === ENDED) return;
    const mem = this.#mem;
    // Retired (deferred) before #finish clears the connection the store indexed it under.
    if (mem !== null) {
      if (deferStoreRemoval) mem.retire(h as unknown as OwnedEntry);
      else mem.release(h as unknown as OwnedEntry);
    } else {
      if (this.#handles.get(h.id) === h) this.#handles.delete(h.id);
      const conn = h.connectionId;
      if (conn !== null && this.#byConn.get(conn) === h) this.#byConn.delete(conn);
    }
    this.#wheel.removeEntry(h);
    if (h._mode === ATTACHED) this.#attached--;
    this.#local--;
    this.#finish(h);
  }

  /** The event payload of a session that is ending (built only when someone listens). */
  #endPayload(name: SessionEventName, h: SessionHandle): SessionInfo | null {
    if (!this.#emitter.has(name)) return null;
    const session = h.snapshot();
    session.state = 'CLOSED';
    session.connectionId = null;
    return session;
  }

  /** Ends a local session that the store already lost; emits `expired` with `reason`. */
  #endLocalOnly(h: SessionHandle, reason: string): void {
    const connectionId = h._mode === ATTACHED ? h.connectionId : null;
    const session = this.#endPayload('expired', h);
    this.#dropLocal(h);
    this.#counters.expired++;
    if (session !== null) this.#emitter.emit('expired', { session, connectionId, reason });
  }

  /**
   * Expires a due local handle; returns the store write still pending
   * (write-behind stores), or null. In place, the handle is retired rather
   * than released: it is over at once for every read, and its removal from
   * the store's Maps (the bulk of an expiry's cost at scale) is swept later.
   */
  #expireLocal(h: SessionHandle, reason: string): Promise<unknown> | null {
    const connectionId = h._mode === ATTACHED ? h.connectionId : null;
    const session = this.#endPayload('expired', h);
    this.#dropLocal(h, true);
    this.#counters.expired++;
    if (session !== null) this.#emitter.emit('expired', { session, connectionId, reason });
    if (this.#mem !== null) return null;
    return this.store.delete(h.id).catch(() => undefined);
  }

  /**
   * The one path that ends a session (local or store-only) other than expiry:
   * drops it locally, deletes it from the store, counts it and emits exactly
   * one event. Resolves the final session, or null if it was already gone.
   */
  async #end(
    id: string,
    kind: 'closed' | 'deleted' | 'replaced',
    reason: string,
    known?: SessionRecord,
    by?: string,
    connectionOverride?: string,
  ): Promise<SessionInfo | null> {
    const h = this.#get(id);
    let base: SessionRecord | undefined;
    let connectionId: string | null = null;
    if (h !== undefined && h._mode !== ENDED) {
      base = h._toRecord();
      connectionId = h._mode === ATTACHED ? h.connectionId : null;
      this.#dropLocal(h);
    }
    if (base === undefined && known === undefined) {
      known = (await this.store.get(id)) ?? undefined;
      if (known === undefined) return null;
    }
    // In place, dropping the handle already removed it from the store.
    const removed = base !== undefined && this.#mem !== null ? true : await this.store.delete(id);
    if (base === undefined) {
      if (!removed) return null;
      base = known;
      connectionId = known?.connectionId ?? null;
    }
    if (base === undefined) return null;
    if (connectionOverride !== undefined) connectionId = connectionOverride;
    const session = infoOf(base);
    session.state = 'CLOSED';
    session.connectionId = null;
    this.#counters[kind]++;
    if (kind === 'replaced') this.#emitter.emit('replaced', { session, connectionId, reason, by: by ?? '' });
    else this.#emitter.emit(kind, { session, connectionId, reason });
    return session;
  }
}
