/**
 * How a session travels to and from etcd: the record as JSON, and the small
 * values of its index keys (see the key layout in `keys.ts`).
 *
 * ```
 *   record ──encodeRecord──▶ JSON of copySessionRecord(record)      P s/<id>
 *          ──userValue────▶ "[expiresAt,bound]"                     P u/<user>/<id>
 *          ──listValue────▶ "[createdAt,expiresAt,state,userId,bound]"  P l/<id>
 *   bytes ──decodeRecord / decodeListEntry / decodeUserEntry──▶ values, or
 *           NETLOOP_STORE_CORRUPT for anything that is not what the store writes
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import { SESSION_STATES } from '../contract.js';
import type { SessionRecord, SessionState } from '../contract.js';
import { copySessionRecord, validateSessionRecord } from '../record.js';

/** The record as stored under `s/<id>`: only its own fields, as JSON. */
export function encodeRecord(r: SessionRecord): Buffer {
  return Buffer.from(JSON.stringify(copySessionRecord(r)));
}

function corrupt(what: string, prefix: string, cause?: unknown): NetloopError {
  return new NetloopError(ErrorCode.STORE_CORRUPT, `etcd store: ${what} under prefix ${prefix} is not what the store writes`, {
    cause,
    details: { prefix, reason: what },
  });
}

function parse(bytes: Buffer, what: string, prefix: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    throw corrupt(what, prefix, err);
  }
}

/**
 * A stored record, checked (`NETLOOP_STORE_CORRUPT` for foreign data: never
 * handed out), holding only the fields of a record (a field added to
 * records since it was written reads as its default).
 */
export function decodeRecord(bytes: Buffer, prefix: string): SessionRecord {
  const r = parse(bytes, 'a session record', prefix);
  const bad = validateSessionRecord(r);
  if (bad !== null) throw corrupt(`a session record (${bad})`, prefix);
  return copySessionRecord(r as SessionRecord);
}

/** The value of `u/<user>/<id>`. */
export function userValue(r: SessionRecord): Buffer {
  return Buffer.from(`[${r.expiresAt},${r.connectionId === null ? 0 : 1}]`);
}

/** A decoded `u/<user>/<id>` value. */
export interface UserEntry {
  readonly expiresAt: number;
  readonly bound: boolean;
}

/** Decodes a `u/<user>/<id>` value. */
export function decodeUserEntry(bytes: Buffer, prefix: string): UserEntry {
  const v = parse(bytes, 'a user index entry', prefix);
  if (!Array.isArray(v) || typeof v[0] !== 'number' || (v[1] !== 0 && v[1] !== 1)) throw corrupt('a user index entry', prefix);
  return { expiresAt: v[0], bound: v[1] === 1 };
}

/** The value of `l/<id>`. */
export function listValue(r: SessionRecord): Buffer {
  return Buffer.from(JSON.stringify([r.createdAt, r.expiresAt, r.state, r.userId, r.connectionId === null ? 0 : 1]));
}

/** A decoded `l/<id>` entry: what listing, counting and presence read of a session. */
export interface ListEntry {
  readonly id: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly state: SessionState;
  readonly userId: string | null;
  readonly bound: boolean;
}

/** Decodes an `l/<id>` value. */
export function decodeListEntry(id: string, bytes: Buffer, prefix: string): ListEntry {
  const v = parse(bytes, 'a list entry', prefix);
  if (
    !Array.isArray(v) ||
    typeof v[0] !== 'number' ||
    typeof v[1] !== 'number' ||
    !SESSION_STATES.includes(v[2] as SessionState) ||
    (v[3] !== null && typeof v[3] !== 'string') ||
    (v[4] !== 0 && v[4] !== 1)
  ) {
    throw corrupt('a list entry', prefix);
  }
  return { id, createdAt: v[0], expiresAt: v[1], state: v[2] as SessionState, userId: v[3] as string | null, bound: v[4] === 1 };
}
