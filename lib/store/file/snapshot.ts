/**
 * The snapshot file format: one JSON document, one session per line, so the
 * file stays readable and diffable.
 *
 * ```
 *   {"format":"netloop-sessions","version":1,"seq":42,"savedAt":1767225600000,"sessions":[
 *   {"id":"0190...","tokenHash":"9f86...", ... },
 *   {"id":"0190...","tokenHash":"2c26...", ... }
 *   ]}
 * ```
 *
 * `seq` is the last change the snapshot holds; journal records with a higher
 * sequence number are replayed on top of it.
 *
 * @module
 */

import type { SessionRecord } from '../contract.js';

/** The snapshot file format identifier. */
export const SNAPSHOT_FORMAT = 'netloop-sessions';
/** The snapshot format version this code writes and reads. */
export const SNAPSHOT_VERSION = 1;

/** The bytes of a snapshot of `sessions` (live, oldest first) at change `seq`, saved at wall time `now`. */
export function encodeSnapshot(sessions: readonly SessionRecord[], seq: number, now: number): Buffer {
  const head = JSON.stringify({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, seq, savedAt: now });
  const body = sessions.map((r) => JSON.stringify(r)).join(',\n');
  const text = `${head.slice(0, -1)},"sessions":[${sessions.length > 0 ? `\n${body}\n` : ''}]}\n`;
  return Buffer.from(text, 'utf8');
}

/**
 * Parses a snapshot's envelope: its `seq` and its (unchecked) sessions, or
 * why it is not a snapshot this code reads. The sessions are validated one
 * by one by the caller.
 */
export function decodeSnapshot(data: Buffer): { seq: number; sessions: unknown[] } | { why: string } {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as Record<string, unknown>;
  } catch (err) {
    return { why: err instanceof Error ? err.message : String(err) };
  }
  if (typeof doc !== 'object' || doc === null || doc.format !== SNAPSHOT_FORMAT) return { why: 'not a netloop sessions file' };
  if (doc.version !== SNAPSHOT_VERSION) return { why: `unsupported version ${String(doc.version)}` };
  if (!Number.isSafeInteger(doc.seq) || (doc.seq as number) < 0) return { why: 'bad seq' };
  if (!Array.isArray(doc.sessions)) return { why: 'sessions is not an array' };
  return { seq: doc.seq as number, sessions: doc.sessions };
}
