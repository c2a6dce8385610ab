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
import { SESSION_STATES } from './contract.js';
import type { Page, SessionFilter, SessionPage, SessionRecord, SessionState, SessionStats } from './contract.js';

/** The counters of {@link SessionStats}, in their canonical order. */
export const STAT_KEYS: readonly (keyof SessionStats)[] = Object.freeze(['bytesIn', 'bytesOut', 'messagesIn', 'messagesOut', 'heartbeats']);

const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Checks the shape of a record (from a caller, a file or a server): returns
 * why it is not a valid {@link SessionRecord}, or null when it is. Ids and
 * token hashes are non-empty strings; user, connection and address are
 * strings or null; the state is one of {@link SESSION_STATES}; metadata
 * holds strings only; counters and times are finite numbers.
 */
export function validateSessionRecord(x: unknown): string | null {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const r = x as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id.length === 0) return 'bad id';
  if (typeof r.tokenHash !== 'string' || r.tokenHash.length === 0) return 'bad tokenHash';
  if (!isStrOrNull(r.userId) || !isStrOrNull(r.connectionId) || !isStrOrNull(r.remoteAddress)) return 'bad userId, connectionId or remoteAddress';
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
 * so nothing foreign is kept and no caller shares a store's objects.
 */
export function copySessionRecord(r: SessionRecord): SessionRecord {
  return {
    id: r.id,
    tokenHash: r.tokenHash,
    userId: r.userId,
    connectionId: r.connectionId,
    remoteAddress: r.remoteAddress,
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
