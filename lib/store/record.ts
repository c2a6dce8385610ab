/**
 * What every store does the same way with records: validates them, decides
 * liveness, orders them, filters them and cuts pages. One module, so that the
 * memory, file and Redis stores (and any store written against the
 * contract) refuse the same inputs with the same codes and list the same
 * records in the same order.
 *
 * ```
 *   input record ──checkSessionRecord──▶ store      (NETLOOP_INVALID_VALUE, details.reason)
 *   touch(id, e, l) ──checkTouch───────▶ store      (NETLOOP_INVALID_VALUE)
 *   create options ──checkMaxPerUser───▶ number     (NETLOOP_INVALID_OPTION)
 *   filter, page ──checkFilter/checkPage─▶ bounds   (NETLOOP_INVALID_OPTION)
 *   update patch ──checkSessionPatch───▶ store      (NETLOOP_INVALID_VALUE)
 *        └──applySessionPatch(record, patch)──▶ the record after the change
 *   online page ──checkOnlinePage──────▶ { cursor, limit } (NETLOOP_INVALID_OPTION)
 *   published change ──checkSessionChange──▶ feed   (NETLOOP_INVALID_VALUE)
 *
 *   candidates ──isLive, matchesFilter──▶ kept ──compareSessions──▶ ordered
 *                                                      │
 *                              [offset, offset + limit)┴─▶ SessionPage { sessions, total }
 * ```
 *
 * The rules, in one place:
 * - A record is live while `expiresAt > now` (the store's wall time); an
 *   expired record is never returned, counted or listed.
 * - "Oldest first" means ascending `createdAt`, ties broken by `id` (UUIDv7
 *   ids are time-ordered, so within one millisecond this is creation order
 *   too), whatever order the records were stored in.
 * - A page is `[offset, offset + limit)` of that order; `limit` is capped by
 *   the store's own maximum; `total` counts every match.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import { SESSION_END_REASONS, SESSION_STATES } from './contract.js';
import type {
  OnlinePage,
  Page,
  SessionChange,
  SessionFilter,
  SessionPage,
  SessionPatch,
  SessionRecord,
  SessionState,
  SessionStats,
  WriteCondition,
} from './contract.js';

/** The counters of {@link SessionStats}, in their canonical order. */
export const STAT_KEYS: readonly (keyof SessionStats)[] = Object.freeze(['bytesIn', 'bytesOut', 'messagesIn', 'messagesOut', 'heartbeats']);

const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** A remote port: absent (older records), null, or an integer 0 to 65535. */
const isPortOrAbsent = (v: unknown): boolean => v === undefined || v === null || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65_535);

/**
 * Checks the shape of a record (from a caller, a file or a server): returns
 * why it is not a valid {@link SessionRecord}, or null when it is. Ids and
 * token hashes are non-empty strings; user, connection and address are
 * strings or null; the remote port is an integer 0 to 65535, null, or
 * absent (a record of older data, read as null); the state is one of {@link SESSION_STATES}; metadata
 * holds strings only; counters and times are finite numbers.
 */
export function validateSessionRecord(x: unknown): string | null {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const r = x as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id.length === 0) return 'bad id';
  if (typeof r.tokenHash !== 'string' || r.tokenHash.length === 0) return 'bad tokenHash';
  if (!isStrOrNull(r.userId) || !isStrOrNull(r.connectionId) || !isStrOrNull(r.remoteAddress)) return 'bad userId, connectionId or remoteAddress';
  if (!isPortOrAbsent(r.remotePort)) return 'bad remotePort';
  if (!(SESSION_STATES as readonly unknown[]).includes(r.state)) return 'bad state';
  if (typeof r.metadata !== 'object' || r.metadata === null || Array.isArray(r.metadata)) return 'bad metadata';
  for (const v of Object.values(r.metadata)) if (typeof v !== 'string') return 'bad metadata value';
  if (typeof r.stats !== 'object' || r.stats === null) return 'bad stats';
  const stats = r.stats as Record<string, unknown>;
  for (const k of STAT_KEYS) if (!isNum(stats[k])) return `bad stats.${k}`;
  if (!isNum(r.createdAt) || !isNum(r.lastActiveAt) || !isNum(r.expiresAt) || !isNum(r.ttl)) return 'bad time fields';
  return null;
}

/**
 * Refuses a malformed record from a caller before anything is stored:
 * `NETLOOP_INVALID_VALUE` with `details.reason` (see
 * {@link validateSessionRecord}). Returns the record.
 */
export function checkSessionRecord(record: SessionRecord): SessionRecord {
  const bad = validateSessionRecord(record);
  if (bad !== null) {
    const id = typeof (record as { id?: unknown } | null)?.id === 'string' ? record.id : undefined;
    throw new NetloopError(ErrorCode.INVALID_VALUE, `invalid session record: ${bad}`, { details: id === undefined ? { reason: bad } : { reason: bad, id } });
  }
  return record;
}

/** Refuses a `touch` whose times are not finite numbers (`NETLOOP_INVALID_VALUE`), before anything is stored. */
export function checkTouch(id: string, expiresAt: number, lastActiveAt: number): void {
  if (!isNum(expiresAt) || !isNum(lastActiveAt)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'touch needs finite expiresAt and lastActiveAt', { details: { id } });
  }
}

/**
 * A {@link WriteCondition}, checked: the connection the live record must be
 * bound to (null: to none), or undefined when there is no condition.
 * `NETLOOP_INVALID_VALUE` for a condition that is not an object, or an
 * `ifConnection` that is neither a string nor null.
 */
export function checkWriteCondition(condition: WriteCondition | undefined): string | null | undefined {
  if (condition === undefined) return undefined;
  if (condition === null || typeof condition !== 'object') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a write condition must be an object');
  }
  const c = condition.ifConnection;
  if (c === undefined || c === null || typeof c === 'string') return c;
  throw new NetloopError(ErrorCode.INVALID_VALUE, 'ifConnection must be a string or null');
}

/**
 * Throws `NETLOOP_CONDITION_FAILED` when a live record bound to
 * `connectionId` does not meet the checked condition `expected` (see
 * {@link checkWriteCondition}).
 */
export function assertCondition(id: string, connectionId: string | null, expected: string | null | undefined): void {
  if (expected !== undefined && connectionId !== expected) throw conditionFailed(id);
}

/** The error of a conditional write refused (`NETLOOP_CONDITION_FAILED`). */
export function conditionFailed(id: string): NetloopError {
  return new NetloopError(ErrorCode.CONDITION_FAILED, 'the session is bound to another connection than the write expects', { details: { id } });
}

/**
 * The `maxPerUser` of create options, checked: an integer >= 1
 * (`NETLOOP_INVALID_OPTION` otherwise: a limit of no session at all is a
 * mistake, not a policy), or undefined for no limit. Anonymous sessions have
 * no per-user limit.
 */
export function checkMaxPerUser(maxPerUser: number | undefined): number | undefined {
  return maxPerUser === undefined ? undefined : checkInteger('maxPerUser', maxPerUser, 1, Number.MAX_SAFE_INTEGER);
}

/**
 * A copy of a record holding only the fields of {@link SessionRecord}, with
 * its own `metadata` and `stats` objects: what a store persists or hands out,
 * so nothing foreign is kept and no caller shares a store's objects. An
 * absent `remotePort` (older data) becomes null.
 */
export function copySessionRecord(r: SessionRecord): SessionRecord {
  return {
    id: r.id,
    tokenHash: r.tokenHash,
    userId: r.userId,
    connectionId: r.connectionId,
    remoteAddress: r.remoteAddress,
    remotePort: r.remotePort ?? null,
    state: r.state,
    metadata: { ...r.metadata },
    stats: {
      bytesIn: r.stats.bytesIn,
      bytesOut: r.stats.bytesOut,
      messagesIn: r.stats.messagesIn,
      messagesOut: r.stats.messagesOut,
      heartbeats: r.stats.heartbeats,
    },
    createdAt: r.createdAt,
    lastActiveAt: r.lastActiveAt,
    expiresAt: r.expiresAt,
    ttl: r.ttl,
  };
}

/** The liveness rule of every store: live while `expiresAt` is after the store's wall time `now`. */
export function isLive(r: { readonly expiresAt: number }, now: number): boolean {
  return r.expiresAt > now;
}

/** What ordering reads of a record. */
export interface Ordered {
  readonly createdAt: number;
  readonly id: string;
}

/** Oldest first: ascending `createdAt`, ties by `id` (time-ordered for UUIDv7 ids). A comparator for `Array.prototype.sort`. */
export function compareSessions(a: Ordered, b: Ordered): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Checks a filter of `list`/`count`: `userId` a string, `state` one of
 * {@link SESSION_STATES} (`NETLOOP_INVALID_OPTION` otherwise). Returns it,
 * or an empty filter for undefined.
 */
export function checkFilter(filter: SessionFilter | undefined): SessionFilter {
  if (filter === undefined || filter === null) return {};
  if (typeof filter !== 'object') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'a session filter must be an object', { details: { option: 'filter' } });
  }
  if (filter.userId !== undefined && typeof filter.userId !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'filter.userId must be a string', { details: { option: 'filter.userId' } });
  }
  if (filter.state !== undefined && !SESSION_STATES.includes(filter.state)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'filter.state is not a session state', {
      details: { option: 'filter.state', value: String(filter.state) },
    });
  }
  return filter;
}

/** What filtering reads of a record. */
export interface Filterable {
  readonly userId: string | null;
  readonly state: SessionState;
}

/** True when `r` matches every field `filter` sets. */
export function matchesFilter(r: Filterable, filter: SessionFilter): boolean {
  return (filter.userId === undefined || r.userId === filter.userId) && (filter.state === undefined || r.state === filter.state);
}

/** A checked page: the first index and how many to return. */
export interface PageBounds {
  offset: number;
  limit: number;
}

/**
 * Checks a page of `list` (`offset` and `limit` integers >= 0,
 * `NETLOOP_INVALID_OPTION` otherwise) and applies the store's default and
 * maximum `limit`.
 */
export function checkPage(page: Page | undefined, defaultLimit: number, maxLimit: number): PageBounds {
  const offset = checkInteger('page.offset', page?.offset ?? 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = checkInteger('page.limit', page?.limit ?? defaultLimit, 0, Number.MAX_SAFE_INTEGER);
  return { offset, limit: Math.min(limit, maxLimit) };
}

/**
 * One page of `candidates`, oldest first, and how many there are. The
 * candidates are the records that match (the caller filtered them). With
 * `ordered` the caller promises they already come oldest first: the page is
 * then taken in one pass, copying only what it returns; otherwise they are
 * sorted first.
 */
export function pageOf<R extends Ordered>(candidates: Iterable<R>, bounds: PageBounds, toRecord: (r: R) => SessionRecord, ordered = false): SessionPage {
  const { offset, limit } = bounds;
  const end = offset + limit;
  if (ordered) {
    const sessions: SessionRecord[] = [];
    let total = 0;
    for (const r of candidates) {
      if (total >= offset && total < end) sessions.push(toRecord(r));
      total++;
    }
    return { sessions, total };
  }
  const all = Array.isArray(candidates) ? (candidates as R[]) : [...candidates];
  all.sort(compareSessions);
  const sessions: SessionRecord[] = [];
  for (let i = offset; i < end && i < all.length; i++) sessions.push(toRecord(all[i]!));
  return { sessions, total: all.length };
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

/**
 * One page of online users from `users` (every online user, in any order,
 * each once): ascending by id (JavaScript string order), those after
 * `bounds.cursor`, at most `bounds.limit`; the cursor is the last user of
 * the page while more follow.
 */
export function onlinePageOf(users: Iterable<string>, bounds: OnlineBounds): { users: string[]; cursor: string | null } {
  const after = bounds.cursor;
  const rest: string[] = [];
  for (const u of users) if (after === null || u > after) rest.push(u);
  rest.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const page = rest.length > bounds.limit ? rest.slice(0, bounds.limit) : rest;
  return { users: page, cursor: rest.length > bounds.limit ? page[page.length - 1]! : null };
}

// ── The change feed ─────────────────────────────────────────────────────────

/**
 * Checks the shape of a {@link SessionChange}: returns why it is not one, or
 * null. Used on what a store publishes and on what it receives (foreign
 * data on a channel is dropped, never delivered).
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
  if (!isNum(c.at)) return 'bad at';
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
