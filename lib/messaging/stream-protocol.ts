/**
 * The wire format of framed streams: every frame of a stream is one LTV
 * frame of the reserved stream type (default `0xfff2`), so the messages of
 * the connection (and other streams) interleave with its chunks. The value
 * of such a frame starts with the frame's kind and the stream's id:
 *
 * ```
 *   LTV header (the owner's layout) │ value
 *                                   │ 0       1           5
 *                                   │ ┌──────┬───────────┬──────────────────────────────┐
 *                                   │ │ kind │ id u32 BE │ body                         │
 *                                   │ └──────┴───────────┴──────────────────────────────┘
 *   kind 1 OPEN    sender → receiver   body: metadata, 0..maxMetaBytes bytes (the application's)
 *   kind 2 DATA    sender → receiver   body: 1..maxChunkBytes bytes of the stream
 *   kind 3 END     sender → receiver   body: the stream's length, u64 BE (checked by the receiver)
 *   kind 4 ABORT   sender → receiver   body: the error code that cut the stream (ASCII, <= 64 bytes)
 *   kind 5 CANCEL  receiver → sender   body: the error code the receiver stops it with (same)
 * ```
 *
 * Ids are the sender's (1, 2, ... per connection and direction): OPEN, DATA,
 * END and ABORT name a stream of their sender, CANCEL one of its receiver's
 * peer, so both ends may open streams without a clash. A DATA, END or ABORT
 * for an id the receiver does not hold (a stream it refused or cancelled) is
 * dropped; a CANCEL for an id the sender no longer holds too.
 *
 * @module
 */

/** The default reserved frame type of framed streams. */
export const STREAM_FRAME_TYPE = 0xfff2;

/** The kinds of stream frames (the value's first byte). */
export const StreamFrameKind = {
  OPEN: 1,
  DATA: 2,
  END: 3,
  ABORT: 4,
  CANCEL: 5,
} as const;

/** One of the {@link StreamFrameKind}s. */
export type StreamFrameKindValue = (typeof StreamFrameKind)[keyof typeof StreamFrameKind];

/** Bytes of a stream frame's value before its body: the kind and the id. */
export const STREAM_HEADER_BYTES = 5;

/** The longest error code an ABORT or CANCEL carries. */
export const MAX_CODE_BYTES = 64;

/** @internal Writes the kind and the id at `target[offset]`. */
export function writeStreamHeader(target: Uint8Array, offset: number, kind: StreamFrameKindValue, id: number): void {
  target[offset] = kind;
  target[offset + 1] = id >>> 24;
  target[offset + 2] = (id >>> 16) & 0xff;
  target[offset + 3] = (id >>> 8) & 0xff;
  target[offset + 4] = id & 0xff;
}

/** @internal The u32 id at `source[offset + 1]`. */
export function readStreamId(source: Uint8Array, offset: number): number {
  return ((source[offset + 1]! << 24) | (source[offset + 2]! << 16) | (source[offset + 3]! << 8) | source[offset + 4]!) >>> 0;
}

/** @internal The END body: `length` as a u64 BE (lengths are below 2^53). */
export function endBody(length: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 0);
  body.writeUInt32BE(length >>> 0, 4);
  return body;
}

/** @internal The length an END body carries, or -1 when it is not 8 bytes or past 2^53. */
export function readEndBody(source: Buffer, start: number, end: number): number {
  if (end - start !== 8) return -1;
  const hi = source.readUInt32BE(start);
  if (hi >= 0x20_0000) return -1;
  return hi * 0x1_0000_0000 + source.readUInt32BE(start + 4);
}

/** @internal The ABORT / CANCEL body: `code`, cut to {@link MAX_CODE_BYTES} ASCII bytes. */
export function codeBody(code: string): Buffer {
  return Buffer.from(code.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_CODE_BYTES), 'latin1');
}

/** @internal The code an ABORT / CANCEL body carries (printable ASCII), or null when it is malformed. */
export function readCodeBody(source: Buffer, start: number, end: number): string | null {
  if (end - start > MAX_CODE_BYTES) return null;
  for (let i = start; i < end; i++) {
    const b = source[i]!;
    if (b < 0x20 || b > 0x7e) return null;
  }
  return source.toString('latin1', start, end);
}
