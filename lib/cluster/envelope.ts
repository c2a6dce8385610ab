/**
 * The bytes a broadcast travels in between processes: one Redis pub/sub
 * message per broadcast, written once by the publishing process and read
 * once by each subscribing process.
 *
 * ```
 *   offset  size
 *   0       1     version (1)
 *   1       1     flags: 1 typed · 2 except · 4 exceptRooms
 *   2       1     o: origin id length (1..64)
 *   3       o     origin id (ASCII: the publishing process)
 *   3+o     4     seq, uint32 LE (per origin and channel, for counting what was missed)
 *   7+o     2     t: number of targets (0: every client)
 *           t ×   kind uint8 (0 room, 1 user) · n uint16 LE · n bytes UTF-8
 *   [except]      count uint16 LE · count × (o' uint8 · o' bytes origin · id float64 LE)
 *   [exceptRooms] count uint16 LE · count × (n uint16 LE · n bytes UTF-8)
 *   [typed]       frame type uint32 LE
 *   rest          the payload: the bytes to write (raw), or the frame's value (typed)
 * ```
 *
 * Several envelopes of one publisher and one channel may travel together,
 * as one Redis message (a batch): what one process broadcasts in one
 * synchronous run (a callback and its microtasks) then costs Redis, the
 * publishing client and every subscribing client one message instead of
 * one each. A batch of one is never made: that envelope goes alone.
 *
 * ```
 *   offset  size
 *   0       1     version of the batch (2)
 *   1       1     reserved (0)
 *   2       1     o: origin id length (1..64): the origin field sits where an envelope's does
 *   3       o     origin id
 *   3+o     2     n: number of envelopes (2..65535), uint16 LE
 *   5+o     n ×   length uint32 LE · that many bytes: one envelope (version 1)
 * ```
 *
 * A typed message travels as its frame type and serialized value; every
 * receiving process writes the frame header once per server (its own
 * layout), so a framed message is encoded once per process per broadcast,
 * and the value is never serialized again. The reader never trusts the
 * bytes: anything short or out of range is a coded error, never a throw of
 * a RangeError (another application may publish on the same channel).
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/** The wire format's version byte. */
export const ENVELOPE_VERSION = 1;
/** The version byte of a batch of envelopes. */
export const BATCH_VERSION = 2;
/** The most envelopes one batch holds (its count is a uint16). */
export const MAX_BATCH_ENVELOPES = 0xffff;

const FLAG_TYPED = 1;
const FLAG_EXCEPT = 2;
const FLAG_EXCEPT_ROOMS = 4;

/** What a target names: a room, or a user's connections. */
export const TARGET_ROOM = 0;
/** See {@link TARGET_ROOM}. */
export const TARGET_USER = 1;

/** One addressee of a broadcast. */
export interface Target {
  readonly kind: typeof TARGET_ROOM | typeof TARGET_USER;
  readonly name: string;
}

/** A client named across processes: the process that holds it and its id there. */
export interface ClientRef {
  readonly origin: string;
  readonly id: number;
}

/** What {@link encodeEnvelope} writes. */
export interface EnvelopeInput {
  readonly origin: string;
  readonly seq: number;
  /** Empty: every client of every process. */
  readonly targets: readonly Target[];
  readonly except: readonly ClientRef[];
  readonly exceptRooms: readonly string[];
  /** The frame type of a typed message, or -1 for raw bytes. */
  readonly type: number;
  readonly payload: Uint8Array;
}

/** What {@link decodeEnvelope} reads. */
export interface Envelope {
  readonly origin: string;
  readonly seq: number;
  readonly targets: readonly Target[];
  /** The ids of the excepted clients held by the reading process (others are of no use to it). */
  readonly exceptIds: ReadonlySet<number> | null;
  readonly exceptRooms: readonly string[] | null;
  readonly type: number;
  /** A view into the message (no copy). */
  readonly payload: Buffer;
}

const EMPTY: readonly Target[] = Object.freeze([]);

/** The size of the envelope around a payload of `payloadBytes` (for the limits, checked before allocating). */
export function envelopeSize(input: Omit<EnvelopeInput, 'payload' | 'seq'>, payloadBytes: number): number {
  let n = 3 + input.origin.length + 4 + 2;
  for (const t of input.targets) n += 3 + Buffer.byteLength(t.name, 'utf8');
  if (input.except.length > 0) {
    n += 2;
    for (const e of input.except) n += 1 + e.origin.length + 8;
  }
  if (input.exceptRooms.length > 0) {
    n += 2;
    for (const r of input.exceptRooms) n += 2 + Buffer.byteLength(r, 'utf8');
  }
  if (input.type >= 0) n += 4;
  return n + payloadBytes;
}

/**
 * Writes one envelope into a new Buffer of exactly `size` bytes (from
 * {@link envelopeSize}); the payload is copied once, behind the header.
 * Names and counts were checked by the caller (lengths fit their fields).
 */
export function encodeEnvelope(input: EnvelopeInput, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let flags = 0;
  if (input.type >= 0) flags |= FLAG_TYPED;
  if (input.except.length > 0) flags |= FLAG_EXCEPT;
  if (input.exceptRooms.length > 0) flags |= FLAG_EXCEPT_ROOMS;
  out[0] = ENVELOPE_VERSION;
  out[1] = flags;
  out[2] = input.origin.length;
  let off = 3 + out.write(input.origin, 3, 'latin1');
  out.writeUInt32LE(input.seq >>> 0, off);
  out.writeUInt16LE(input.targets.length, off + 4);
  off += 6;
  for (const t of input.targets) {
    out[off] = t.kind;
    const n = out.write(t.name, off + 3, 'utf8');
    out.writeUInt16LE(n, off + 1);
    off += 3 + n;
  }
  if (input.except.length > 0) {
    out.writeUInt16LE(input.except.length, off);
    off += 2;
    for (const e of input.except) {
      out[off] = e.origin.length;
      off += 1 + out.write(e.origin, off + 1, 'latin1');
      out.writeDoubleLE(e.id, off);
      off += 8;
    }
  }
  if (input.exceptRooms.length > 0) {
    out.writeUInt16LE(input.exceptRooms.length, off);
    off += 2;
    for (const r of input.exceptRooms) {
      const n = out.write(r, off + 2, 'utf8');
      out.writeUInt16LE(n, off);
      off += 2 + n;
    }
  }
  if (input.type >= 0) {
    out.writeUInt32LE(input.type, off);
    off += 4;
  }
  out.set(input.payload, off);
  return out;
}

function malformed(why: string, length: number): NetloopError {
  return new NetloopError(ErrorCode.BAD_PAYLOAD, `rooms adapter: a malformed message on the channel (${why})`, {
    details: { length, why },
  });
}

/**
 * Reads an envelope; `self` is the reading process's id (the excepted
 * clients of other processes are skipped without allocating).
 *
 * @throws NetloopError `NETLOOP_BAD_PAYLOAD` for bytes that are not an envelope.
 */
export function decodeEnvelope(buf: Buffer, self: string): Envelope {
  const len = buf.length;
  if (len < 3 || buf[0] !== ENVELOPE_VERSION) throw malformed(len < 3 ? 'too short' : 'unknown version', len);
  const flags = buf[1]!;
  const o = buf[2]!;
  let off = 3 + o;
  if (o === 0 || off + 6 > len) throw malformed('bad origin', len);
  const origin = buf.toString('latin1', 3, off);
  const seq = buf.readUInt32LE(off);
  const t = buf.readUInt16LE(off + 4);
  off += 6;
  let targets = EMPTY;
  if (t > 0) {
    const list: Target[] = [];
    for (let i = 0; i < t; i++) {
      if (off + 3 > len) throw malformed('truncated target', len);
      const kind = buf[off]!;
      const n = buf.readUInt16LE(off + 1);
      if (kind > TARGET_USER || off + 3 + n > len) throw malformed('bad target', len);
      list.push({ kind: kind as Target['kind'], name: buf.toString('utf8', off + 3, off + 3 + n) });
      off += 3 + n;
    }
    targets = list;
  }
  let exceptIds: Set<number> | null = null;
  if ((flags & FLAG_EXCEPT) !== 0) {
    if (off + 2 > len) throw malformed('truncated except', len);
    const count = buf.readUInt16LE(off);
    off += 2;
    for (let i = 0; i < count; i++) {
      if (off + 1 > len) throw malformed('truncated except', len);
      const eo = buf[off]!;
      if (off + 1 + eo + 8 > len) throw malformed('truncated except', len);
      // Compared as bytes: an id of another process costs no string.
      const mine = eo === self.length && buf.toString('latin1', off + 1, off + 1 + eo) === self;
      if (mine) (exceptIds ??= new Set()).add(buf.readDoubleLE(off + 1 + eo));
      off += 1 + eo + 8;
    }
  }
  let exceptRooms: string[] | null = null;
  if ((flags & FLAG_EXCEPT_ROOMS) !== 0) {
    if (off + 2 > len) throw malformed('truncated exceptRooms', len);
    const count = buf.readUInt16LE(off);
    off += 2;
    exceptRooms = [];
    for (let i = 0; i < count; i++) {
      if (off + 2 > len) throw malformed('truncated exceptRooms', len);
      const n = buf.readUInt16LE(off);
      if (off + 2 + n > len) throw malformed('truncated exceptRooms', len);
      exceptRooms.push(buf.toString('utf8', off + 2, off + 2 + n));
      off += 2 + n;
    }
  }
  let type = -1;
  if ((flags & FLAG_TYPED) !== 0) {
    if (off + 4 > len) throw malformed('truncated type', len);
    type = buf.readUInt32LE(off);
    off += 4;
  }
  return { origin, seq, targets, exceptIds, exceptRooms, type, payload: buf.subarray(off) };
}

/** The bytes a batch adds before its envelopes, for an origin field of `originField` bytes (see {@link encodeBatch}). */
export function batchHeaderSize(originField: number): number {
  return 2 + originField + 2;
}

/** The bytes a batch adds per envelope (its length field). */
export const BATCH_ENTRY_OVERHEAD = 4;

/**
 * Writes a batch of `envelopes` (at least two, at most
 * {@link MAX_BATCH_ENVELOPES}) into a new Buffer of exactly `size` bytes:
 * the batch header, `originField` (the origin length byte then its id, as
 * an envelope carries it), then each envelope behind its length.
 */
export function encodeBatch(originField: Buffer, envelopes: readonly Buffer[], size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  out[0] = BATCH_VERSION;
  out[1] = 0;
  originField.copy(out, 2);
  let off = 2 + originField.length;
  out.writeUInt16LE(envelopes.length, off);
  off += 2;
  for (const e of envelopes) {
    out.writeUInt32LE(e.length, off);
    out.set(e, off + 4);
    off += 4 + e.length;
  }
  return out;
}

/**
 * The envelopes of a batch, as views into it (no copy), in order. The
 * framing is checked whole before anything is returned, so a truncated or
 * padded batch is refused entirely; each envelope is read (and may be
 * refused) on its own by {@link decodeEnvelope}.
 *
 * @throws NetloopError `NETLOOP_BAD_PAYLOAD` for bytes that are not a batch.
 */
export function splitBatch(buf: Buffer): Buffer[] {
  const len = buf.length;
  if (len < 3 || buf[0] !== BATCH_VERSION) throw malformed(len < 3 ? 'too short' : 'not a batch', len);
  const o = buf[2]!;
  let off = 3 + o;
  if (o === 0 || off + 2 > len) throw malformed('bad batch origin', len);
  const n = buf.readUInt16LE(off);
  off += 2;
  if (n < 2) throw malformed('a batch of fewer than two', len);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (off + 4 > len) throw malformed('truncated batch', len);
    const size = buf.readUInt32LE(off);
    if (off + 4 + size > len) throw malformed('truncated batch', len);
    out.push(buf.subarray(off + 4, off + 4 + size));
    off += 4 + size;
  }
  if (off !== len) throw malformed('bytes after the batch', len);
  return out;
}

/** How many envelopes a message holds: 1 for an envelope, n for a batch (whose header was checked), 0 when it is neither. */
export function envelopeCount(buf: Buffer): number {
  if (buf.length < 3) return 0;
  if (buf[0] === ENVELOPE_VERSION) return 1;
  const at = 3 + buf[2]!;
  return buf[0] === BATCH_VERSION && at + 2 <= buf.length ? buf.readUInt16LE(at) : 0;
}
