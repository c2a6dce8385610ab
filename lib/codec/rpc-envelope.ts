/**
 * netloop's RPC envelope: the bytes of a request, a reply, an error reply or
 * a cancellation, carried as the value of one LTV frame. The frame's type
 * field names the envelope (the RPC layer reserves one type for it); the
 * envelope names the request's own message type inside. This module is the
 * pure codec: it knows nothing of sockets, clocks or pending calls.
 *
 * Every integer is big-endian, like the default `netloop` frame header:
 *
 * ```
 *   request   0      1          5          9
 *             +------+----------+----------+------------------------+
 *             | 0x01 |  callId  |   type   |  payload ...           |
 *             |  u8  |   u32    |   u32    |  (the rest)            |
 *             +------+----------+----------+------------------------+
 *
 *   reply     0      1          5
 *             +------+----------+-----------------------------------+
 *             | 0x02 |  callId  |  payload ...  (the rest)          |
 *             +------+----------+-----------------------------------+
 *
 *   error     0      1          5     6          6+c    8+c           8+c+m
 *             +------+----------+-----+----------+------+-------------+
 *             | 0x03 |  callId  |  c  |   code   |  m   |  message    |
 *             |      |   u32    | u8  | c bytes  | u16  |  m bytes    |
 *             +------+----------+-----+----------+------+-------------+
 *
 *   cancel    0      1          5
 *             +------+----------+
 *             | 0x04 |  callId  |
 *             +------+----------+
 * ```
 *
 * - `kind` (byte 0) is one of the four values above; any other byte is
 *   refused, so a later version can add kinds that an older peer rejects
 *   loudly instead of misreading.
 * - `callId` correlates a reply, an error reply or a cancellation with its
 *   request on one connection. It is a u32: read in one step, always exact in
 *   a JavaScript number (no BigInt on the hot path), and so large a space
 *   that, with a finite limit on calls in flight and a finite timeout, an id
 *   comes round again only after 2^32 - 1 later calls. {@link nextRpcCallId}
 *   counts 1, 2, ..., 2^32 - 1, then 1 again: 0 is never given to a call, so
 *   an error envelope with call id 0 can answer an envelope whose call id
 *   could not be read. The allocator must still skip an id that is in flight
 *   when the counter comes round (a call may outlive 2^32 - 1 others only
 *   when the caller's timeout is very long).
 * - `type` is the request's message type id (the registry's id), a u32 so
 *   that any id a frame's type field can hold fits.
 * - The payload of a request or reply is everything after its header; the
 *   frame's length already bounds it, so no second length is written.
 * - An error reply carries a `code` of 1 to {@link RPC_MAX_ERROR_CODE_BYTES}
 *   bytes and a `message` of at most {@link RPC_MAX_ERROR_MESSAGE_BYTES}
 *   bytes, both well-formed UTF-8, and nothing after them. A cancellation is
 *   exactly five bytes.
 *
 * Decoding reads a range of a caller's buffer and never copies a payload: it
 * is a view of that buffer. Any malformed envelope is a `NetloopError` with
 * code `NETLOOP_BAD_PAYLOAD` whose message and details hold only the reason,
 * the field's name, the kind's name and lengths: never the peer's bytes.
 *
 * @module
 */

import { isUtf8 } from 'node:buffer';
import { ErrorCode, NetloopError } from '../core/errors.js';

/** The kinds of envelope. */
export type RpcKind = 'request' | 'reply' | 'error' | 'cancel';

/** The byte that starts each kind of envelope on the wire. */
export const RPC_KIND_BYTES: Readonly<Record<RpcKind, number>> = Object.freeze({
  request: 0x01,
  reply: 0x02,
  error: 0x03,
  cancel: 0x04,
});

/** The largest call id: ids are u32 on the wire. */
export const RPC_MAX_CALL_ID = 0xffffffff;
/** The largest request type id: a u32 on the wire. */
export const RPC_MAX_TYPE = 0xffffffff;
/** The longest error code, in UTF-8 bytes (its length is a u8 on the wire; at least 1). */
export const RPC_MAX_ERROR_CODE_BYTES = 64;
/** The longest error message, in UTF-8 bytes (its length is a u16 on the wire). */
export const RPC_MAX_ERROR_MESSAGE_BYTES = 1024;
/** Bytes before a request's payload: kind, call id, type. */
export const RPC_REQUEST_HEADER_BYTES = 9;
/** Bytes before a reply's payload: kind, call id. */
export const RPC_REPLY_HEADER_BYTES = 5;
/** The size of a cancellation, and of the part every envelope starts with. */
export const RPC_CANCEL_BYTES = 5;
/** The size of an error envelope without its strings: kind, call id, code length, message length. */
const ERROR_FIXED_BYTES = 8;

/** A call's request: `type` is the request's message type id. */
export interface RpcRequest<P extends Uint8Array = Uint8Array> {
  readonly kind: 'request';
  readonly callId: number;
  readonly type: number;
  readonly payload: P;
}

/** The successful answer to a request. */
export interface RpcReply<P extends Uint8Array = Uint8Array> {
  readonly kind: 'reply';
  readonly callId: number;
  readonly payload: P;
}

/** The failed answer to a request: a stable code and a human message. */
export interface RpcErrorReply {
  readonly kind: 'error';
  readonly callId: number;
  readonly code: string;
  readonly message: string;
}

/** The caller gave up on a call (timeout or abort); no answer is expected. */
export interface RpcCancel {
  readonly kind: 'cancel';
  readonly callId: number;
}

/**
 * One envelope, as handed to the encoder (`P` = any Uint8Array) or returned
 * by {@link decodeRpcEnvelope} (`P` = Buffer, a view of the decoded range).
 */
export type RpcEnvelope<P extends Uint8Array = Uint8Array> = RpcRequest<P> | RpcReply<P> | RpcErrorReply | RpcCancel;

/**
 * The call id that follows `previous`: 1, 2, ..., 2^32 - 1, then 1 again,
 * never 0. Start a connection's counter at 0. The caller skips an id still
 * in flight (`do id = nextRpcCallId(id); while (pending.has(id))`), which
 * ends because the calls in flight are fewer than 2^32 - 1.
 *
 * @throws NetloopError INVALID_VALUE when `previous` is not an integer in [0, 2^32 - 1].
 */
export function nextRpcCallId(previous: number): number {
  checkU32('previous call id', previous);
  return previous >= RPC_MAX_CALL_ID ? 1 : previous + 1;
}

/**
 * `text` made fit for an error code or message: lone UTF-16 surrogates
 * become U+FFFD (they have no UTF-8 form), and the text is cut at a code
 * point boundary to at most `maxBytes` UTF-8 bytes. The RPC layer passes a
 * handler's error message through it before encoding, so a long message is
 * shortened instead of failing the reply.
 *
 * @throws NetloopError INVALID_VALUE when `text` is not a string or
 *   `maxBytes` not a non-negative integer.
 */
export function fitRpcErrorText(text: string, maxBytes: number): string {
  if (typeof text !== 'string') throw invalid('error text must be a string', { got: typeof text });
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw invalid('maxBytes must be a non-negative integer', { maxBytes: String(maxBytes) });
  }
  const whole = toWellFormed(text);
  // Most texts are short: one byte count answers without walking them.
  if (whole.length <= maxBytes / 3 || Buffer.byteLength(whole, 'utf8') <= maxBytes) return whole;
  let bytes = 0;
  let i = 0;
  while (i < whole.length) {
    const c = whole.charCodeAt(i);
    const units = c >= 0xd800 && c <= 0xdbff ? 2 : 1;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : units === 2 ? 4 : 3;
    if (bytes + size > maxBytes) break;
    bytes += size;
    i += units;
  }
  return whole.slice(0, i);
}

/**
 * The size in bytes of `envelope` on the wire.
 *
 * @throws NetloopError INVALID_VALUE as {@link encodeRpcEnvelope}.
 */
export function rpcEnvelopeLength(envelope: RpcEnvelope): number {
  return measure(envelope).total;
}

/**
 * The envelope as one new Buffer (a payload is copied once).
 *
 * @throws NetloopError INVALID_VALUE for an unknown kind, a call id or type
 *   outside [0, 2^32 - 1], a payload that is not a Uint8Array, or an error
 *   code or message that is not a well-formed string within its limit (an
 *   empty code included). Nothing is allocated before the checks pass.
 */
export function encodeRpcEnvelope(envelope: RpcEnvelope): Buffer {
  const m = measure(envelope);
  const out = Buffer.allocUnsafe(m.total);
  write(out, 0, envelope, m, true);
  return out;
}

/**
 * Writes the envelope into `target` at `offset` (for example just behind a
 * frame header the caller wrote) and returns the offset just past it.
 *
 * @throws NetloopError as {@link encodeRpcEnvelope}; INVALID_VALUE when
 *   `offset` is not an integer or the envelope does not fit in `target`
 *   (nothing written).
 */
export function encodeRpcEnvelopeInto(target: Uint8Array, offset: number, envelope: RpcEnvelope): number {
  if (!(target instanceof Uint8Array)) throw invalid('the target must be a Uint8Array', { got: typeOf(target) });
  const m = measure(envelope);
  const end = offset + m.total;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || end > target.length) {
    throw invalid('the envelope does not fit in the target buffer', {
      offset: String(offset),
      envelopeLength: m.total,
      targetLength: target.length,
    });
  }
  write(target, offset, envelope, m, true);
  return end;
}

/**
 * The envelope without its payload, as a new Buffer: the 9-byte header of a
 * request, the 5-byte header of a reply, or the whole of an error or a
 * cancellation. A large payload can then be queued after it as it is,
 * uncopied; the frame's value length is `header.length + payload.length`.
 *
 * @throws NetloopError as {@link encodeRpcEnvelope}.
 */
export function encodeRpcEnvelopeHeader(envelope: RpcEnvelope): Buffer {
  const m = measure(envelope);
  const out = Buffer.allocUnsafe(m.total - m.payloadLength);
  write(out, 0, envelope, m, false);
  return out;
}

/**
 * Reads the envelope in `source[start, end)`. A request's or reply's payload
 * is a Buffer that views `source` (no copy): it changes if `source` is
 * reused, so a caller that keeps it past the frame copies it.
 *
 * @throws NetloopError BAD_PAYLOAD for an empty range, an unknown kind, a
 *   range shorter than its kind's header, an error reply whose code is empty
 *   or over {@link RPC_MAX_ERROR_CODE_BYTES}, whose message is over
 *   {@link RPC_MAX_ERROR_MESSAGE_BYTES}, whose strings are not well-formed
 *   UTF-8 or run past the range, and an error reply or cancellation followed
 *   by extra bytes. `details` holds `reason`, `length` (of the range) and,
 *   where they apply, `kind` and `field`. INVALID_VALUE when `source` is not a
 *   Uint8Array or the range is not within it (a caller's mistake, not the peer's).
 */
export function decodeRpcEnvelope(source: Uint8Array, start = 0, end: number = source?.length): RpcEnvelope<Buffer> {
  if (!(source instanceof Uint8Array)) throw invalid('the source must be a Uint8Array', { got: typeOf(source) });
  if (
    typeof start !== 'number' ||
    typeof end !== 'number' ||
    !Number.isInteger(start) ||
    !Number.isInteger(end) ||
    start < 0 ||
    end < start ||
    end > source.length
  ) {
    throw invalid('the range is not within the source', {
      start: String(start),
      end: String(end),
      sourceLength: source.length,
    });
  }
  const length = end - start;
  if (length === 0) throw bad('empty', length);
  const kindByte = source[start]!;
  let kind: RpcKind;
  let minimum: number;
  switch (kindByte) {
    case 0x01:
      kind = 'request';
      minimum = RPC_REQUEST_HEADER_BYTES;
      break;
    case 0x02:
      kind = 'reply';
      minimum = RPC_REPLY_HEADER_BYTES;
      break;
    case 0x03:
      kind = 'error';
      minimum = ERROR_FIXED_BYTES;
      break;
    case 0x04:
      kind = 'cancel';
      minimum = RPC_CANCEL_BYTES;
      break;
    default:
      throw bad('unknown-kind', length);
  }
  if (length < minimum) throw bad('truncated', length, kind);
  const callId = readU32(source, start + 1);
  switch (kind) {
    case 'request':
      return {
        kind,
        callId,
        type: readU32(source, start + 5),
        payload: view(source, start + RPC_REQUEST_HEADER_BYTES, end),
      };
    case 'reply':
      return { kind, callId, payload: view(source, start + RPC_REPLY_HEADER_BYTES, end) };
    case 'cancel':
      if (length !== RPC_CANCEL_BYTES) throw bad('trailing-bytes', length, kind);
      return { kind, callId };
    default: {
      const codeLength = source[start + 5]!;
      if (codeLength === 0) throw bad('empty', length, kind, 'code');
      if (codeLength > RPC_MAX_ERROR_CODE_BYTES) throw bad('too-long', length, kind, 'code');
      const codeStart = start + 6;
      const codeEnd = codeStart + codeLength;
      // The message length (2 bytes) must follow the code within the range.
      if (codeEnd + 2 > end) throw bad('truncated', length, kind, 'code');
      const messageLength = (source[codeEnd]! << 8) | source[codeEnd + 1]!;
      if (messageLength > RPC_MAX_ERROR_MESSAGE_BYTES) throw bad('too-long', length, kind, 'message');
      const messageStart = codeEnd + 2;
      const messageEnd = messageStart + messageLength;
      if (messageEnd > end) throw bad('truncated', length, kind, 'message');
      if (messageEnd !== end) throw bad('trailing-bytes', length, kind);
      return {
        kind,
        callId,
        code: utf8(source, codeStart, codeEnd, length, 'code'),
        message: utf8(source, messageStart, messageEnd, length, 'message'),
      };
    }
  }
}

/** What {@link measure} learns about an envelope: sizes only, after every check. */
interface Measured {
  kindByte: number;
  total: number;
  payloadLength: number;
  codeBytes: number;
  messageBytes: number;
}

/** Checks every field of `envelope` and returns its sizes; throws before anything is written. */
function measure(envelope: RpcEnvelope): Measured {
  if (typeof envelope !== 'object' || envelope === null) {
    throw invalid('an RPC envelope must be an object', { got: typeOf(envelope) });
  }
  const kind = envelope.kind;
  if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(RPC_KIND_BYTES, kind)) {
    throw invalid('unknown RPC envelope kind', { kind: typeof kind === 'string' ? kind : typeOf(kind) });
  }
  checkU32('callId', envelope.callId);
  const m: Measured = { kindByte: RPC_KIND_BYTES[kind], total: 0, payloadLength: 0, codeBytes: 0, messageBytes: 0 };
  switch (envelope.kind) {
    case 'request':
      checkU32('type', envelope.type);
      m.payloadLength = checkPayload(envelope.payload);
      m.total = RPC_REQUEST_HEADER_BYTES + m.payloadLength;
      break;
    case 'reply':
      m.payloadLength = checkPayload(envelope.payload);
      m.total = RPC_REPLY_HEADER_BYTES + m.payloadLength;
      break;
    case 'error':
      m.codeBytes = checkText('code', envelope.code, 1, RPC_MAX_ERROR_CODE_BYTES);
      m.messageBytes = checkText('message', envelope.message, 0, RPC_MAX_ERROR_MESSAGE_BYTES);
      m.total = ERROR_FIXED_BYTES + m.codeBytes + m.messageBytes;
      break;
    default:
      m.total = RPC_CANCEL_BYTES;
  }
  return m;
}

/** Writes a measured envelope at `target[off]`; the payload only when `withPayload`. */
function write(target: Uint8Array, off: number, envelope: RpcEnvelope, m: Measured, withPayload: boolean): void {
  target[off] = m.kindByte;
  writeU32(target, off + 1, envelope.callId);
  switch (envelope.kind) {
    case 'request':
      writeU32(target, off + 5, envelope.type);
      if (withPayload) target.set(envelope.payload, off + RPC_REQUEST_HEADER_BYTES);
      return;
    case 'reply':
      if (withPayload) target.set(envelope.payload, off + RPC_REPLY_HEADER_BYTES);
      return;
    case 'error': {
      const buf = asBuffer(target);
      target[off + 5] = m.codeBytes;
      buf.write(envelope.code, off + 6, m.codeBytes, 'utf8');
      const at = off + 6 + m.codeBytes;
      target[at] = m.messageBytes >>> 8;
      target[at + 1] = m.messageBytes & 0xff;
      buf.write(envelope.message, at + 2, m.messageBytes, 'utf8');
      return;
    }
    default:
      return;
  }
}

function checkU32(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw invalid(`${field} must be an integer in [0, ${0xffffffff}]`, {
      field,
      value: typeof value === 'number' ? value : typeOf(value),
    });
  }
}

function checkPayload(payload: unknown): number {
  if (!(payload instanceof Uint8Array)) throw invalid('an RPC payload must be a Buffer or Uint8Array', { got: typeOf(payload) });
  return payload.byteLength;
}

/** Checks an error string and returns its UTF-8 length. */
function checkText(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'string') throw invalid(`the error ${field} must be a string`, { field, got: typeOf(value) });
  if (!isWellFormed(value)) {
    throw invalid(`the error ${field} holds a lone UTF-16 surrogate; pass it through fitRpcErrorText`, { field });
  }
  // A UTF-16 code unit is at most 3 UTF-8 bytes: refuse a very long string
  // before counting its bytes.
  const bytes = value.length > max ? max + 1 : Buffer.byteLength(value, 'utf8');
  if (bytes < min || bytes > max) {
    throw invalid(`the error ${field} must be ${min} to ${max} UTF-8 bytes`, { field, min, max });
  }
  return bytes;
}

/** Well-formed UTF-16 (no lone surrogate), so that UTF-8 round-trips it. */
function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function toWellFormed(s: string): string {
  return (s as unknown as { toWellFormed(): string }).toWellFormed();
}

function readU32(b: Uint8Array, off: number): number {
  // Multiplying the top byte keeps the result a positive number.
  return b[off]! * 0x1000000 + ((b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!);
}

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** A Buffer viewing `source[from, to)`: the same memory, whatever kind of Uint8Array `source` is. */
function view(source: Uint8Array, from: number, to: number): Buffer {
  return Buffer.from(source.buffer, source.byteOffset + from, to - from);
}

function asBuffer(target: Uint8Array): Buffer {
  return Buffer.isBuffer(target) ? target : Buffer.from(target.buffer, target.byteOffset, target.byteLength);
}

/** Strict UTF-8: malformed bytes are refused rather than turned into U+FFFD, so strings round-trip. */
function utf8(source: Uint8Array, from: number, to: number, length: number, field: string): string {
  const bytes = view(source, from, to);
  if (!isUtf8(bytes)) throw bad('bad-utf8', length, 'error', field);
  return bytes.toString('utf8');
}

function typeOf(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

function invalid(message: string, details: Record<string, unknown>): NetloopError {
  return new NetloopError(ErrorCode.INVALID_VALUE, message, { details });
}

/**
 * A malformed envelope. The message and details name the reason, the kind
 * and the field, and the range's length: nothing read from the peer's bytes.
 */
function bad(reason: string, length: number, kind?: RpcKind, field?: string): NetloopError {
  const where = kind === undefined ? '' : field === undefined ? ` ${kind}` : ` ${kind} ${field}`;
  const details: Record<string, unknown> = { reason, length };
  if (kind !== undefined) details['kind'] = kind;
  if (field !== undefined) details['field'] = field;
  return new NetloopError(ErrorCode.BAD_PAYLOAD, `malformed RPC envelope${where}: ${reason} (${length} bytes)`, { details });
}
