/**
 * The parts of the store contract a store shared between processes adds to
 * {@link SessionStore}, as the etcd store implements them: atomic updates,
 * presence, and the change feed with its tombstones; with their checks.
 *
 * ```
 *   update patch ──checkSessionPatch───▶ store      (NETLOOP_INVALID_VALUE)
 *        └──applySessionPatch(record, patch)──▶ the record after the change
 *   presence user id ──checkUserId─────▶ store      (NETLOOP_INVALID_VALUE)
 *   online page ──checkOnlinePage──────▶ { cursor, limit } (NETLOOP_INVALID_OPTION)
 *   published change ──checkSessionChange──▶ feed   (NETLOOP_INVALID_VALUE)
 *   received change ──validateSessionChange──▶ delivered, or dropped as foreign data
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import { checkInteger } from '../../core/validate.js';
import { SESSION_STATES } from '../contract.js';
import type { SessionRecord, SessionState, SessionStats, SessionStore } from '../contract.js';
import { STAT_KEYS, copySessionRecord } from '../record.js';

/**
 * One atomic change to a stored session: metadata merged (a string sets a
 * key, null removes it), counters set and/or added (`set` first, then
 * `add`), the state replaced. Nothing else moves: not the expiry, not the
 * last-active stamp, not the binding.
 */
export interface SessionPatch {
  /** The new state. */
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

/** A page request of `onlineUsers`. */
export interface OnlinePage {
  /** The `cursor` of the previous page; absent or null for the first page. */
  cursor?: string | null;
  /** Most users in the page, an integer >= 1 (default 100, capped by the store's largest page). */
  limit?: number;
}

/** One page of `onlineUsers`. */
export interface OnlineUsersPage {
  /** The users of this page. */
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
 * process sharing the store. Only `'ended'` exists today.
 */
export interface SessionChange {
  /** What happened: the session ended (the only kind so far). */
  kind: 'ended';
  /** The session. */
  id: string;
  /** The connection it was bound to (its id carries the process's prefix), or null. */
  connectionId: string | null;
  /** The session's user, or null for an anonymous session. */
  userId: string | null;
  /** Why it ended. */
  reason: SessionEndReason;
  /** For `'replaced'`: the id of the session that took over. */
  by?: string;
  /** The registry's own reason text (`'logout'`, `'resumed-elsewhere'`, a caller's reason, ...). */
  detail?: string;
  /** The publishing process's id. */
  origin: string;
  /** Wall-clock ms when it was published. */
  at: number;
}

/**
 * The events of a shared store's feed: `'change'` for each change published
 * by another process, and `'feed'` when the subscription is established
 * (`'up'`, the first time and after every reconnection: changes published
 * while it was down may be lost, so the registry reconciles) or lost
 * (`'down'`).
 */
export interface SessionFeedEvents {
  /** A change published by another process (never one of this store's own). */
  change: (change: SessionChange) => void;
  /** `'up'` each time the feed's subscription is established (the first time too), `'down'` when it is lost. */
  feed: (state: 'up' | 'down') => void;
}

/** A store shared between processes: records, presence for every process, the change feed and tombstones. */
export interface SharedStore extends SessionStore {
  /** Applies `patch` to a live record atomically; the record after the change, or null when there is no live record. */
  update(id: string, patch: SessionPatch): Promise<SessionRecord | null>;
  /** True while a live session of `userId` is bound to a connection, in any process. */
  isOnline(userId: string): Promise<boolean>;
  /** How many users are online, in every process. */
  onlineCount(): Promise<number>;
  /** One page of the users online, in the store's order; every user online throughout an iteration comes exactly once. */
  onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage>;
  /** Writes the session's tombstone, then publishes the change to every other process sharing the store. */
  publish(change: SessionChange): Promise<void>;
  /** The last change published for session `id` while its tombstone lives, else null. */
  tombstone(id: string): Promise<SessionChange | null>;
}

// ── Updates ─────────────────────────────────────────────────────────────────

const PATCH_KEYS: ReadonlySet<string> = new Set(['state', 'metadata', 'stats']);
const STATS_PATCH_KEYS: ReadonlySet<string> = new Set(['set', 'add']);

function badPatch(reason: string): NetloopError {
  return new NetloopError(ErrorCode.INVALID_VALUE, `invalid session patch: ${reason}`, { details: { reason } });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkCounters(what: string, v: unknown): void {
  if (v === undefined) return;
  if (!isPlainObject(v)) throw badPatch(`${what} must be an object of counters`);
  for (const k of Object.keys(v)) {
    if (!(STAT_KEYS as readonly string[]).includes(k)) throw badPatch(`${what}.${k} is not a counter`);
    const n = v[k];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || (n as number) < 0) throw badPatch(`${what}.${k} must be an integer >= 0`);
  }
}

/**
 * Refuses a malformed {@link SessionPatch} before anything is stored
 * (`NETLOOP_INVALID_VALUE`, `details.reason`): an object with only `state`,
 * `metadata` and `stats`; a state of {@link SESSION_STATES}; metadata a
 * plain object whose keys are non-empty (and not `__proto__`) and whose
 * values are strings or null; `stats.set` and `stats.add` objects of known
 * counters, each an integer >= 0. Returns the patch.
 */
export function checkSessionPatch(patch: SessionPatch): SessionPatch {
  if (!isPlainObject(patch)) throw badPatch('a patch must be an object');
  for (const k of Object.keys(patch)) if (!PATCH_KEYS.has(k)) throw badPatch(`unknown field ${k}`);
  const state: unknown = patch['state'];
  if (state !== undefined && !(SESSION_STATES as readonly unknown[]).includes(state)) throw badPatch('state is not a session state');
  const m = patch['metadata'] as SessionPatch['metadata'];
  if (m !== undefined) {
    if (!isPlainObject(m)) throw badPatch('metadata must be an object');
    for (const key of Object.keys(m)) {
      if (key.length === 0 || key === '__proto__') throw badPatch('a metadata key must be non-empty and not __proto__');
      const v = m[key];
      if (v !== null && typeof v !== 'string') throw badPatch('a metadata value must be a string or null');
    }
  }
  const st = patch['stats'] as SessionPatch['stats'];
  if (st !== undefined) {
    if (!isPlainObject(st)) throw badPatch('stats must be an object');
    for (const k of Object.keys(st)) if (!STATS_PATCH_KEYS.has(k)) throw badPatch(`unknown field stats.${k}`);
    checkCounters('stats.set', st.set);
    checkCounters('stats.add', st.add);
  }
  return patch as SessionPatch;
}

/**
 * The record after a checked `patch` (a new object; `record` is left as it
 * is): metadata merged (null removes a key), counters `set` then `add`, the
 * state replaced. Expiry, last activity and binding are kept.
 */
export function applySessionPatch(record: SessionRecord, patch: SessionPatch): SessionRecord {
  const next = copySessionRecord(record);
  if (patch.state !== undefined) next.state = patch.state;
  const m = patch.metadata;
  if (m !== undefined) {
    for (const key of Object.keys(m)) {
      const v = m[key];
      if (v === null) delete next.metadata[key];
      else if (v !== undefined) next.metadata[key] = v;
    }
  }
  const set = patch.stats?.set;
  const add = patch.stats?.add;
  for (const k of STAT_KEYS) {
    const s = set?.[k];
    if (s !== undefined) next.stats[k] = s;
    const a = add?.[k];
    if (a !== undefined) next.stats[k] += a;
  }
  return next;
}

// ── Presence ────────────────────────────────────────────────────────────────

/** Refuses a user id of presence that is not a string (`NETLOOP_INVALID_VALUE`). */
export function checkUserId(userId: string): string {
  if (typeof userId !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a user id must be a string', { details: { field: 'userId' } });
  }
  return userId;
}

/** A checked page of `onlineUsers`: the cursor to start after (null: the start) and the limit. */
export interface OnlineBounds {
  cursor: string | null;
  limit: number;
}

/**
 * Checks a page of `onlineUsers`: `limit` an integer >= 1 (default
 * `defaultLimit`, capped by `maxLimit`), `cursor` a string, null or absent
 * (`NETLOOP_INVALID_OPTION` otherwise).
 */
export function checkOnlinePage(page: OnlinePage | undefined, defaultLimit: number, maxLimit: number): OnlineBounds {
  if (page !== undefined && (typeof page !== 'object' || page === null)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'an online page must be an object', { details: { option: 'page' } });
  }
  const limit = checkInteger('page.limit', page?.limit ?? defaultLimit, 1, Number.MAX_SAFE_INTEGER);
  const cursor = page?.cursor ?? null;
  if (cursor !== null && typeof cursor !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'page.cursor must be a string', { details: { option: 'page.cursor' } });
  }
  return { cursor, limit: Math.min(limit, maxLimit) };
}

// ── The change feed ─────────────────────────────────────────────────────────

const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';

/**
 * Checks the shape of a {@link SessionChange}: returns why it is not one, or
 * null. Used on what a store publishes and on what it receives (foreign
 * data in the feed is dropped, never delivered).
 */
export function validateSessionChange(x: unknown): string | null {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const c = x as Record<string, unknown>;
  if (c.kind !== 'ended') return 'bad kind';
  if (typeof c.id !== 'string' || c.id.length === 0) return 'bad id';
  if (!isStrOrNull(c.connectionId) || !isStrOrNull(c.userId)) return 'bad connectionId or userId';
  if (!(SESSION_END_REASONS as readonly unknown[]).includes(c.reason)) return 'bad reason';
  if (c.by !== undefined && typeof c.by !== 'string') return 'bad by';
  if (c.detail !== undefined && typeof c.detail !== 'string') return 'bad detail';
  if (typeof c.origin !== 'string' || c.origin.length === 0) return 'bad origin';
  if (typeof c.at !== 'number' || !Number.isFinite(c.at)) return 'bad at';
  return null;
}

/** Refuses a malformed change before it is published (`NETLOOP_INVALID_VALUE`, `details.reason`). Returns it. */
export function checkSessionChange(change: SessionChange): SessionChange {
  const bad = validateSessionChange(change);
  if (bad !== null) throw new NetloopError(ErrorCode.INVALID_VALUE, `invalid session change: ${bad}`, { details: { reason: bad } });
  return change;
}

/** A copy of a change holding only its own fields (optional ones only when set). */
export function copySessionChange(c: SessionChange): SessionChange {
  const out: SessionChange = { kind: c.kind, id: c.id, connectionId: c.connectionId, userId: c.userId, reason: c.reason, origin: c.origin, at: c.at };
  if (c.by !== undefined) out.by = c.by;
  if (c.detail !== undefined) out.detail = c.detail;
  return out;
}
