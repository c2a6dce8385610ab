/**
 * What the file store writes into its journal, and how the journal is
 * replayed onto the working set at open.
 *
 * One change, one journal record; its payload is a small JSON operation
 * carrying the change's sequence number `s`:
 *
 * ```
 *   {"s":7,"o":"c","r":{...record...}}      create
 *   {"s":8,"o":"p","r":{...record...}}      put (set)
 *   {"s":9,"o":"t","i":id,"e":expiresAt,"l":lastActiveAt}   touch
 *   {"s":10,"o":"d","i":id}                 delete
 *   {"s":11,"o":"x"}                        clear
 * ```
 *
 * Replay applies the records newer than the snapshot's `seq`, strictly in
 * sequence (a gap is corruption), and refuses a malformed operation by its
 * offset: a record is never silently skipped.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionRecord } from '../contract.js';
import { copySessionRecord, validateSessionRecord } from '../record.js';
import { JournalDecoder, encodeJournalRecord } from './journal.js';
import type { JournalTail } from './journal.js';
import type { WorkingSet } from './working-set.js';

/** One journal operation (see the module documentation). */
export type JournalOp =
  | { s: number; o: 'c' | 'p'; r: SessionRecord }
  | { s: number; o: 't'; i: string; e: number; l: number }
  | { s: number; o: 'd'; i: string }
  | { s: number; o: 'x' };

/** The journal record of `op`; `NETLOOP_INVALID_VALUE` when it exceeds `maxRecordBytes`. */
export function encodeOp(op: JournalOp, maxRecordBytes: number): Buffer {
  return encodeJournalRecord(Buffer.from(JSON.stringify(op)), maxRecordBytes);
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Applies one journal operation to the working set; returns a reason if it is malformed. */
export function applyOp(ws: WorkingSet, op: JournalOp): string | null {
  switch (op.o) {
    case 'c':
    case 'p': {
      const bad = validateSessionRecord(op.r);
      if (bad !== null) return bad;
      const old = ws.held(op.r.id);
      if (old !== undefined) ws.remove(old);
      const holder = ws.tokenHolder(op.r.tokenHash);
      if (holder !== undefined) ws.remove(ws.held(holder)!);
      ws.insert(copySessionRecord(op.r));
      return null;
    }
    case 't': {
      if (typeof op.i !== 'string' || !isNum(op.e) || !isNum(op.l)) return 'bad touch record';
      const r = ws.held(op.i);
      if (r !== undefined) {
        r.expiresAt = op.e;
        r.lastActiveAt = op.l;
      }
      return null;
    }
    case 'd': {
      if (typeof op.i !== 'string') return 'bad delete record';
      const r = ws.held(op.i);
      if (r !== undefined) ws.remove(r);
      return null;
    }
    case 'x':
      ws.clear();
      return null;
    default:
      return `unknown operation ${JSON.stringify((op as { o: unknown }).o)}`;
  }
}

/** What {@link replayJournal} did. */
export interface ReplayResult {
  /** The sequence number of the last change now in the working set. */
  seq: number;
  /** Records applied. */
  applied: number;
  /** A truncated or torn tail that was dropped, or null. */
  tail: JournalTail | null;
}

/**
 * Applies the journal's records newer than `seq` to the working set.
 * Throws `NETLOOP_JOURNAL_CORRUPT` (naming `file` and the offset) for
 * corruption before the tail, a sequence gap or a malformed operation.
 */
export function replayJournal(data: Buffer, ws: WorkingSet, seq: number, maxRecordBytes: number, file: string): ReplayResult {
  const decoder = new JournalDecoder(maxRecordBytes);
  const corrupt = (offset: number, why: string, cause?: unknown): NetloopError =>
    new NetloopError(ErrorCode.JOURNAL_CORRUPT, `journal ${file} corrupt at offset ${offset}: ${why}`, {
      cause,
      details: { file, offset },
    });
  let records;
  try {
    records = decoder.push(data);
  } catch (err) {
    const e = err as NetloopError;
    throw corrupt(Number(e.details?.offset ?? 0), e.message, err);
  }
  const tail = decoder.end().tail;
  let applied = 0;
  for (const rec of records) {
    let op: JournalOp;
    try {
      op = JSON.parse(rec.payload.toString('utf8')) as JournalOp;
    } catch (err) {
      throw corrupt(rec.offset, 'record is not JSON', err);
    }
    if (typeof op !== 'object' || op === null || !Number.isSafeInteger(op.s)) throw corrupt(rec.offset, 'record has no sequence number');
    if (op.s <= seq) continue; // already in the snapshot (a crash between snapshot and truncation)
    if (op.s !== seq + 1) throw corrupt(rec.offset, `sequence gap: expected ${seq + 1}, found ${op.s}`);
    const bad = applyOp(ws, op);
    if (bad !== null) throw corrupt(rec.offset, bad);
    seq = op.s;
    applied++;
  }
  return { seq, applied, tail };
}
