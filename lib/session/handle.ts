/**
 * The registry's in-memory handle on one local session, and the small
 * constants the registry, its two storage strategies and the handle share.
 *
 * ```
 *   SessionHandle                       (fields in memory order)
 *     ├─ _reg _st deadline ttl _lastActive heartbeats              what a heartbeat touches
 *     │     (_st = binding mode | write-behind flag << 2)
 *     ├─ _tick _slot _pos connectionId state                       what an audit touches
 *     │     (its place in the wheel; key = this, an accessor)
 *     ├─ id userId remoteAddress remotePort metadata bytesIn bytesOut messagesIn messagesOut
 *     └─ _createdDelta tokenHash
 *   deadline, _lastActive: monotonic ms since the registry's epoch;
 *   expiresAt / lastActiveAt = those + the wall base (accessors);
 *   createdAt = the id's UUIDv7 millisecond + _createdDelta (an accessor)
 *
 *   binding mode (bits 0-1):  ATTACHED ◀──▶ DETACHED      all ──▶ ENDED (final)
 *                             UNBOUND ──resume──▶ ATTACHED  (created without a connection:
 *                                                  heartbeats accepted, no resume window)
 *   write-behind flag (2-3):  CLEAN ──heartbeat──▶ DIRTY_TOUCH ──stats──▶ DIRTY_FULL
 *                             (the flush sets it CLEAN again); IN_PLACE for life
 *                             when the handle is the memory store's own record
 * ```
 *
 * The handle knows its owner only through {@link HandleOwner}, declared here
 * so that this module imports nothing of the registry.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import type { SessionRecord, SessionState, SessionStats } from '../store/contract.js';
import type { FlatSession } from '../store/flat-session.js';
import { assignFlatSession, flatSessionRecord, ownMetadata } from '../store/flat-session.js';
import type { MemoryStoreOwner } from '../store/memory-entry.js';
import type { WheelNode } from './timing-wheel.js';
import type { SessionInfo } from './types.js';
import { uuidv7Timestamp } from './uuid-v7.js';

/** @internal Write-behind flags (bits 2-3 of `_st`); IN_PLACE marks a handle that is the store's own record (never queued). */
export const CLEAN = 0;
/** @internal A heartbeat moved the expiry: a `touch` is due. */
export const DIRTY_TOUCH = 1;
/** @internal The counters changed: a whole `set` is due. */
export const DIRTY_FULL = 2;
/** @internal The handle is the memory store's own record. */
export const IN_PLACE = 3;

/** @internal Binding modes of a handle (bits 0-1 of `_st`). */
export const ATTACHED = 0;
/** @internal Detached: waiting for a resume. */
export const DETACHED = 1;
/** @internal Ended: expired, closed, deleted, kicked or replaced. */
export const ENDED = 2;
/**
 * @internal Created without a connection and never bound since: it accepts
 * heartbeats and lives by its TTL (a detached session, by contrast, waits
 * out a resume window and refuses heartbeats). A resume binds it.
 */
export const UNBOUND = 3;

/** @internal Wheel slot of a node that is not filed (see `timing-wheel.ts`). */
export const NOT_FILED = -1;

/**
 * What a handle needs of its owner (the registry; its members are internal): its clocks,
 * and the calls that keep the wheel and the write-behind queue right. As a
 * memory store's owner it is also told of removals.
 */
export interface HandleOwner extends MemoryStoreOwner {
  /** @internal The clock deadlines are measured on. */
  readonly clock: Clock;
  /** @internal The monotonic time (`clock.now()`) deadlines are relative to. */
  readonly epoch: number;
  /** @internal Wall time at relative time 0. */
  readonly _wallBase: number;
  /** @internal Moves a handle's deadline (either direction) in the wheel. */
  _refile(h: SessionHandle, deadline: number): void;
  /** @internal A store write of a wall-clock expiry: converted to the monotonic deadline and re-filed. */
  _setWallExpiry(h: SessionHandle, wall: number): void;
  /** @internal Queues a handle for the write-behind flush. */
  _markDirty(h: SessionHandle, kind: number): void;
}

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

/**
 * The registry's in-memory handle on one local session: the synchronous fast
 * path for heartbeats and traffic counters. Obtain it from `create`, `resume`,
 * `SessionRegistry.handle` or `SessionRegistry.handleByConnection`; keep it
 * beside the connection (e.g. in a client's context).
 *
 * The handle holds the session's fields as plain numbers and strings in one
 * object of a stable shape (see the module documentation), and is also the
 * session's timing-wheel node (intrusive links). With the memory store it is
 * the store's record itself; with another store it is the local copy,
 * written behind.
 *
 * The data fields are read-only for users; the registry (and, in place, the
 * memory store) writes them.
 */
export class SessionHandle implements WheelNode<SessionHandle>, FlatSession {
  // Field order matters (1M handles do not fit in any cache): the fields a
  // heartbeat reads and writes come first, right after the object header, and
  // what an audit touches follows, so that each costs as few cache lines as can be.
  /** @internal */
  readonly _reg: HandleOwner;
  /**
   * @internal Two small flags in one integer field (one field less per
   * session): bits 0-1 the binding mode (ATTACHED, DETACHED or ENDED, read
   * through `_mode`), bits 2-3 the write-behind flag (CLEAN, DIRTY_TOUCH,
   * DIRTY_FULL or IN_PLACE, read through `_dirty`).
   */
  _st: number;
  /** The deadline in ms relative to the registry's `epoch` (monotonic). */
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
  /** Remote port of the bound connection, where the transport has one. */
  readonly remotePort: number | null;
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
  constructor(reg: HandleOwner, r: SessionRecord, deadline: number, lastActive: number, inPlace: boolean, unbound = false) {
    this._reg = reg;
    this._st = (r.connectionId !== null ? ATTACHED : unbound ? UNBOUND : DETACHED) | ((inPlace ? IN_PLACE : CLEAN) << 2);
    this.deadline = deadline;
    this.ttl = r.ttl;
    this._lastActive = Math.floor(lastActive);
    this.id = r.id;
    this.userId = r.userId;
    this.connectionId = r.connectionId;
    this.remoteAddress = r.remoteAddress;
    this.remotePort = r.remotePort ?? null;
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
  get _owner(): MemoryStoreOwner | null {
    return this._dirty === IN_PLACE ? this._reg : null;
  }

  /** @internal ATTACHED, DETACHED, ENDED or UNBOUND (bits 0-1 of `_st`). */
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
   * Returns -1, changing nothing, when the session has ended, is detached
   * (its connection closed: it waits for a resume), or its deadline has
   * already passed (a heartbeat never revives an expired session; the next
   * audit reports it). A session created without a connection accepts
   * heartbeats until it is bound.
   *
   * Cost: a few writes to this object, no allocation. Pass `now` (the loop's
   * monotonic time, already read for the event being handled) to avoid a
   * clock read.
   */
  heartbeat(now: number = this._reg.clock.now()): number {
    const reg = this._reg;
    const t = now - reg.epoch;
    const mode = this._mode;
    if ((mode !== ATTACHED && mode !== UNBOUND) || t >= this.deadline) return -1;
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

  /** @internal Copies an update's result (state, metadata, counters) into a write-behind handle. */
  _patch(r: SessionRecord): void {
    const m = this as MutableHandle;
    m.state = r.state;
    m.metadata = ownMetadata(r.metadata);
    m.bytesIn = r.stats.bytesIn;
    m.bytesOut = r.stats.bytesOut;
    m.messagesIn = r.stats.messagesIn;
    m.messagesOut = r.stats.messagesOut;
    m.heartbeats = r.stats.heartbeats;
  }

  /** @internal Marks the handle ended: state CLOSED, no connection, out of the write-behind queue. */
  _finish(): void {
    const m = this as MutableHandle;
    this._mode = ENDED;
    m.state = 'CLOSED';
    m.connectionId = null;
    if (this._dirty !== IN_PLACE) this._dirty = CLEAN;
  }
}

/** @internal The handle as the registry (and the memory store) write it. */
export type MutableHandle = { -readonly [K in keyof SessionHandle]: SessionHandle[K] };
