/**
 * How a session record travels to and from Redis: the arguments of the
 * create and set scripts, the decoding of a session's read fields, the
 * errors of the scripts' result codes, and the arguments of an update.
 *
 * ```
 *   record ──recordArgs──▶ id, tok, uid, hasUid, conn, hasConn, st, k, e, a, j, m, b
 *     j  JSON of the fields a session keeps for life or a `set` rewrites:
 *        { id, tokenHash, userId, connectionId, remoteAddress, remotePort, createdAt, ttl }
 *     m  JSON of the metadata ('{}' when empty)        st  the state
 *     b  the five counters as decimal words            e, a  expiresAt, lastActiveAt
 *   HASH fields j m st b e a (p) ──decodeFields──▶ record (null while p, a staged create, is set)
 * ```
 *
 * The state, metadata and counters are fields of their own because an
 * update changes them in place (atomically, in Lua); expiry and last
 * activity because a touch does.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionPatch, SessionRecord, SessionStats } from '../contract.js';
import { STAT_KEYS, conditionFailed, validateSessionRecord } from '../record.js';
import { DUP_CONN, DUP_ID, DUP_TOKEN, MOVED } from './scripts/index.js';

/** The five counters as one field: decimal words separated by spaces, in {@link STAT_KEYS} order. */
export function statsWords(s: SessionStats): string {
  return `${s.bytesIn} ${s.bytesOut} ${s.messagesIn} ${s.messagesOut} ${s.heartbeats}`;
}

/** ARGV[5..17] of the create, set and spread scripts (see `fields()` in the Lua prelude). */
export function recordArgs(r: SessionRecord): string[] {
  const fixed = {
    id: r.id,
    tokenHash: r.tokenHash,
    userId: r.userId,
    connectionId: r.connectionId,
    remoteAddress: r.remoteAddress,
    remotePort: r.remotePort ?? null,
    createdAt: r.createdAt,
    ttl: r.ttl,
  };
  let m = '{}';
  for (const _ in r.metadata) {
    m = JSON.stringify(r.metadata);
    break;
  }
  return [
    r.id,
    r.tokenHash,
    r.userId ?? '',
    r.userId === null ? '0' : '1',
    r.connectionId ?? '',
    r.connectionId === null ? '0' : '1',
    r.state,
    String(r.createdAt),
    String(r.expiresAt),
    String(r.lastActiveAt),
    JSON.stringify(fixed),
    m,
    statsWords(r.stats),
  ];
}

/**
 * The result of a create or set script: 1 or 0 as they are, a duplicate as
 * `NETLOOP_INVALID_VALUE` (the token hash is never echoed).
 */
export function writeResult(code: number, r: SessionRecord): number {
  if (code === MOVED) throw conditionFailed(r.id);
  if (code === DUP_ID) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: r.id } });
  }
  if (code === DUP_TOKEN) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session has this token hash', { details: { id: r.id } });
  }
  if (code === DUP_CONN) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session is bound to this connection', {
      details: { id: r.id, connectionId: r.connectionId },
    });
  }
  return code;
}

/**
 * A checked write condition (see `checkWriteCondition`) as two script
 * arguments, read by `meets()` in the scripts' prelude:
 * `'0', ''` none, `'1', <connection>` bound to it, `'2', ''` bound to none.
 */
export function conditionArgs(expected: string | null | undefined): [string, string] {
  if (expected === undefined) return ['0', ''];
  return expected === null ? ['2', ''] : ['1', expected];
}

function corrupt(prefix: string, reason: string, cause?: unknown): NetloopError {
  return new NetloopError(ErrorCode.STORE_CORRUPT, `a session in Redis is not a session record (${reason})`, {
    ...(cause === undefined ? {} : { cause }),
    details: { prefix, reason },
  });
}

/**
 * A stored session from its read fields `j, m, st, b, e, a` (a `p` after
 * them: a staged create, not a session yet). Anything that is not a valid
 * record is `NETLOOP_STORE_CORRUPT` (foreign data under the prefix), never
 * handed out. Returns null for a staged create or a missing hash.
 */
export function decodeFields(f: readonly unknown[], offset: number, prefix: string, pending: unknown = null): SessionRecord | null {
  const j = f[offset];
  if (j === null || j === undefined) return null;
  if (pending !== null && pending !== undefined) return null;
  let fixed: Record<string, unknown>;
  let metadata: Record<string, string>;
  try {
    fixed = JSON.parse(String(j)) as Record<string, unknown>;
    const m = f[offset + 1];
    metadata = m === '{}' || m === null || m === undefined ? {} : (JSON.parse(String(m)) as Record<string, string>);
  } catch (err) {
    throw corrupt(prefix, 'not valid JSON', err);
  }
  if (fixed === null || typeof fixed !== 'object') throw corrupt(prefix, 'not an object');
  const words = String(f[offset + 3] ?? '').split(' ');
  const stats = {} as SessionStats;
  for (let i = 0; i < STAT_KEYS.length; i++) stats[STAT_KEYS[i]!] = Number(words[i]);
  const r = {
    id: fixed['id'],
    tokenHash: fixed['tokenHash'],
    userId: fixed['userId'],
    connectionId: fixed['connectionId'],
    remoteAddress: fixed['remoteAddress'],
    remotePort: fixed['remotePort'] ?? null,
    state: f[offset + 2],
    metadata,
    stats,
    createdAt: fixed['createdAt'],
    lastActiveAt: Number(f[offset + 5]),
    expiresAt: Number(f[offset + 4]),
    ttl: fixed['ttl'],
  } as SessionRecord;
  const bad = validateSessionRecord(r);
  if (bad !== null) throw corrupt(prefix, bad);
  return r;
}

/** Decodes a flat reply of six read fields per live session. */
export function decodeRows(reply: unknown, prefix: string, from = 0): SessionRecord[] {
  const rows = Array.isArray(reply) ? reply : [];
  const out: SessionRecord[] = [];
  for (let i = from; i + 5 < rows.length; i += 6) {
    const r = decodeFields(rows, i, prefix);
    if (r !== null) out.push(r);
  }
  return out;
}

/** ARGV[6..9] of the update script: the state, the metadata patch's JSON, the counters to set and to add. */
export function patchArgs(patch: SessionPatch): string[] {
  const words = (part: Partial<SessionStats> | undefined): string => {
    if (part === undefined) return '';
    let any = false;
    const out = STAT_KEYS.map((k) => {
      const v = part[k];
      if (v === undefined) return '-';
      any = true;
      return String(v);
    });
    return any ? out.join(' ') : '';
  };
  const m = patch.metadata;
  return [patch.state ?? '', m === undefined ? '' : JSON.stringify(m), words(patch.stats?.set), words(patch.stats?.add)];
}
