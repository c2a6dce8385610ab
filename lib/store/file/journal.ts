/**
 * The append-only journal's record codec: pure, no file system, no clock.
 *
 * Each record is a 12-byte header and a payload. The header carries its own
 * checksum, so a corrupt length is caught before it is trusted, and the
 * payload carries a second one:
 *
 * ```
 *   offset 0        4          8          12
 *          +--------+----------+----------+----------------------+
 *          | length | crc32    | crc32    | payload              |
 *          | u32 BE | (payload)| (bytes   | (`length` bytes,     |
 *          |        |          |  0..7)   |  1 <= length <= max) |
 *          +--------+----------+----------+----------------------+
 * ```
 *
 * Decoding rules (the same whatever the chunking):
 * - fewer than 12 bytes left at the end, or a valid header whose record runs
 *   past the end: a **truncated tail** (a crash mid-append). It is dropped and
 *   reported, never an error.
 * - a record that fails a checksum and is followed only by zero bytes (or by
 *   nothing): a **torn tail** (a crash before the data reached the disk, which
 *   leaves zero-filled blocks). Dropped and reported.
 * - a record that fails a checksum and is followed by any non-zero byte, or a
 *   valid header with a length of 0 or above the maximum: **corruption in the
 *   middle**, refused with `NETLOOP_JOURNAL_CORRUPT` naming the offset. A
 *   record is never silently skipped.
 *
 * @module
 */

import * as zlib from 'node:zlib';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import { checkInteger } from '../../core/validate.js';

/** Bytes in a record header. */
export const JOURNAL_HEADER_BYTES = 12;

/** Default largest payload accepted, in bytes (4 MiB). */
export const DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024;

let crcTable: Uint32Array | undefined;

/** The table-driven CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320). */
export function crc32Table(data: Uint8Array, value = 0): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// zlib.crc32 exists from Node 20.15 / 22.2; it is native and much faster.
// Older runtimes fall back to the table implementation; both give the same value.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data` (same value as zlib's `crc32`), native when the runtime has it. */
export const crc32: (data: Uint8Array) => number =
  typeof nativeCrc32 === 'function' ? (data) => nativeCrc32(data) >>> 0 : (data) => crc32Table(data);

/** Encodes one record: header then payload. Throws `NETLOOP_INVALID_VALUE` for an empty or oversize payload. */
export function encodeJournalRecord(payload: Uint8Array, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): Buffer {
  if (payload.length === 0 || payload.length > maxRecordBytes) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `journal record payload must hold 1 to ${maxRecordBytes} bytes, got ${payload.length}`, {
      details: { bytes: payload.length, max: maxRecordBytes },
    });
  }
  const out = Buffer.allocUnsafe(JOURNAL_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  out.set(payload, JOURNAL_HEADER_BYTES);
  return out;
}

/** One decoded record. */
export interface JournalRecord {
  /** Byte offset of the record's header in the journal. */
  offset: number;
  /** The payload (a copy, safe to keep). */
  payload: Buffer;
}

/** Why the tail was dropped. */
export type JournalTailReason = 'truncated' | 'torn';

/** A dropped tail, as reported by {@link JournalDecoder.end}. */
export interface JournalTail {
  /** Offset of the first dropped byte: the journal is valid up to here. */
  offset: number;
  /** How many bytes were dropped. */
  bytes: number;
  reason: JournalTailReason;
}

/** The result of {@link JournalDecoder.end} and {@link parseJournal}. */
export interface JournalEnd {
  /** Bytes of valid records from the start (equals `tail.offset` when a tail was dropped). */
  validBytes: number;
  /** The dropped tail, or null when the journal ended on a record boundary. */
  tail: JournalTail | null;
}

/**
 * A streaming journal decoder: feed it chunks in order with
 * {@link JournalDecoder.push}, then call {@link JournalDecoder.end}.
 *
 * ```
 *   states:  RECORDS ──bad checksum──► SUSPECT ──non-zero byte──► throws JOURNAL_CORRUPT
 *              │                          │
 *              └──────── end() ───────────┴──► { validBytes, tail }
 * ```
 *
 * In `SUSPECT` the decoder has seen a record that failed its checksum at
 * `suspectAt`; it stays a torn tail only while everything after the record is
 * zero. Memory held is at most one record (header plus `maxRecordBytes`).
 */
export class JournalDecoder {
  readonly #max: number;
  #pending: Buffer = Buffer.alloc(0);
  /** Chunks received since `#pending` was last assembled, and their total size. */
  #chunks: Buffer[] = [];
  #chunkBytes = 0;
  /** Bytes (pending plus chunks) needed before parsing can make progress; avoids quadratic copying. */
  #need = JOURNAL_HEADER_BYTES;
  /** Absolute offset of `#pending[0]`. */
  #base = 0;
  /** Offset of the record that failed its checksum, or -1. */
  #suspectAt = -1;
  /** Absolute offset from which every byte must be zero while suspect. */
  #zeroFrom = 0;
  #suspectReason = '';
  #ended = false;

  /** @param maxRecordBytes largest payload accepted (default 4 MiB). */
  constructor(maxRecordBytes = DEFAULT_MAX_RECORD_BYTES) {
    this.#max = checkInteger('maxRecordBytes', maxRecordBytes, 1, 0x7fffffff);
  }

  /** Decodes what `chunk` completes; throws `NETLOOP_JOURNAL_CORRUPT` on corruption in the middle. */
  push(chunk: Uint8Array): JournalRecord[] {
    if (this.#ended) throw new NetloopError(ErrorCode.INVALID_VALUE, 'JournalDecoder.push after end()');
    if (chunk.length === 0) return [];
    if (this.#suspectAt >= 0) {
      this.#checkSuspectBytes(chunk, this.#base);
      this.#base += chunk.length;
      return [];
    }
    this.#chunks.push(Buffer.from(chunk));
    this.#chunkBytes += chunk.length;
    if (this.#pending.length + this.#chunkBytes < this.#need) return [];
    const buf = Buffer.concat([this.#pending, ...this.#chunks]);
    this.#chunks = [];
    this.#chunkBytes = 0;
    const out: JournalRecord[] = [];
    let pos = 0;
    this.#need = JOURNAL_HEADER_BYTES;
    while (buf.length - pos >= JOURNAL_HEADER_BYTES) {
      const at = this.#base + pos;
      const length = buf.readUInt32BE(pos);
      const payloadCrc = buf.readUInt32BE(pos + 4);
      const headerCrc = buf.readUInt32BE(pos + 8);
      if (crc32(buf.subarray(pos, pos + 8)) !== headerCrc) {
        // A header that fails its own check: a torn tail only if all that follows the header is zero.
        this.#enterSuspect(at, at + JOURNAL_HEADER_BYTES, 'header checksum mismatch');
        break;
      }
      if (length === 0 || length > this.#max) {
        throw this.#corrupt(at, `record length ${length} outside [1, ${this.#max}]`);
      }
      if (buf.length - pos - JOURNAL_HEADER_BYTES < length) {
        this.#need = JOURNAL_HEADER_BYTES + length; // wait for the rest of the record
        break;
      }
      const payload = buf.subarray(pos + JOURNAL_HEADER_BYTES, pos + JOURNAL_HEADER_BYTES + length);
      if (crc32(payload) !== payloadCrc) {
        this.#enterSuspect(at, at + JOURNAL_HEADER_BYTES + length, 'payload checksum mismatch');
        break;
      }
      out.push({ offset: at, payload: Buffer.from(payload) });
      pos += JOURNAL_HEADER_BYTES + length;
    }
    if (this.#suspectAt >= 0) {
      const rest = buf.subarray(this.#suspectAt - this.#base);
      const restBase = this.#suspectAt;
      this.#pending = Buffer.alloc(0);
      this.#base = restBase;
      this.#checkSuspectBytes(rest, restBase);
      this.#base = restBase + rest.length;
      return out;
    }
    this.#pending = buf.subarray(pos);
    this.#base += pos;
    return out;
  }

  /** Finishes decoding: reports how much was valid and any dropped tail. */
  end(): JournalEnd {
    this.#ended = true;
    if (this.#suspectAt >= 0) {
      return { validBytes: this.#suspectAt, tail: { offset: this.#suspectAt, bytes: this.#base - this.#suspectAt, reason: 'torn' } };
    }
    const left = this.#pending.length + this.#chunkBytes;
    if (left > 0) {
      return { validBytes: this.#base, tail: { offset: this.#base, bytes: left, reason: 'truncated' } };
    }
    return { validBytes: this.#base, tail: null };
  }

  #enterSuspect(at: number, zeroFrom: number, reason: string): void {
    this.#suspectAt = at;
    this.#zeroFrom = zeroFrom;
    this.#suspectReason = reason;
  }

  /** Throws unless every byte of `bytes` (starting at absolute `base`) at or after `#zeroFrom` is zero. */
  #checkSuspectBytes(bytes: Uint8Array, base: number): void {
    const start = Math.max(0, this.#zeroFrom - base);
    for (let i = start; i < bytes.length; i++) {
      if (bytes[i] !== 0) {
        throw this.#corrupt(this.#suspectAt, `${this.#suspectReason}, followed by more data at offset ${base + i}`);
      }
    }
  }

  #corrupt(offset: number, why: string): NetloopError {
    this.#ended = true;
    return new NetloopError(ErrorCode.JOURNAL_CORRUPT, `journal corrupt at offset ${offset}: ${why}`, { details: { offset } });
  }
}

/** Decodes a whole journal buffer; see {@link JournalDecoder} for the rules. */
export function parseJournal(buffer: Uint8Array, maxRecordBytes = DEFAULT_MAX_RECORD_BYTES): JournalEnd & { records: JournalRecord[] } {
  const decoder = new JournalDecoder(maxRecordBytes);
  const records = decoder.push(buffer);
  return { records, ...decoder.end() };
}
