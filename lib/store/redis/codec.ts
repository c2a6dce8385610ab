/**
 * How a session record travels to and from Redis: the arguments of the
 * create and set scripts, the decoding of `{rec, exp, la}` triples, and the
 * errors of the scripts' result codes.
 *
 * ```
 *   record ──recordArgs──▶ ARGV[4..14]: id, tok, uid, hasUid, conn, hasConn, st, cr, exp, la, JSON(record)
 *   HASH s:<id> { rec, exp, la, ... } ──decodeRecord──▶ record (exp and la are the hash's own:
 *                                                        a touch rewrites them, not the JSON)
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionRecord } from '../contract.js';
import { validateSessionRecord } from '../record.js';
import { DUP_CONN, DUP_ID, DUP_TOKEN } from './scripts/index.js';

/** ARGV[4..14] of the create and set scripts. */
export function recordArgs(r: SessionRecord): string[] {
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
    JSON.stringify(r),
  ];
}

/**
 * The result of a create or set script: 1 or 0 as they are, a duplicate as
 * `NETLOOP_INVALID_VALUE` (the token hash is never echoed).
 */
export function writeResult(code: number, r: SessionRecord): number {
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
 * A stored session: its JSON with the hash's own expiry and last-active
 * stamp. Anything that is not a valid record is `NETLOOP_STORE_CORRUPT`
 * (foreign data under the prefix), never handed out.
 */
export function decodeRecord(rec: string, exp: unknown, la: unknown, prefix: string): SessionRecord {
  let r: SessionRecord;
  try {
    r = JSON.parse(rec) as SessionRecord;
  } catch (err) {
    throw new NetloopError(ErrorCode.STORE_CORRUPT, 'a session in Redis is not valid JSON', { cause: err, details: { prefix } });
  }
  if (r !== null && typeof r === 'object') {
    r.expiresAt = Number(exp);
    r.lastActiveAt = Number(la);
  }
  const bad = validateSessionRecord(r);
  if (bad !== null) {
    throw new NetloopError(ErrorCode.STORE_CORRUPT, `a session in Redis is not a session record (${bad})`, { details: { prefix, reason: bad } });
  }
  return r;
}

/** Decodes a flat `[rec, exp, la, rec, exp, la, ...]` reply. */
export function decodeRecords(reply: unknown, prefix: string): SessionRecord[] {
  const rows = Array.isArray(reply) ? reply : [];
  const out: SessionRecord[] = [];
  for (let i = 0; i + 2 < rows.length; i += 3) out.push(decodeRecord(String(rows[i]), rows[i + 1], rows[i + 2], prefix));
  return out;
}
