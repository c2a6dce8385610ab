/**
 * The wire side of cellnet's `rpc` package: its two messages, written and
 * read byte for byte as cellnet's protoplus codec does, and the way a user's
 * message travels inside them. With these a netloop peer can answer a Go
 * program's `rpc.Call` / `rpc.CallSync`, and call a cellnet server.
 *
 * What cellnet does (github.com/davyxu/cellnet, `rpc/`):
 *
 * - `rpc/msg.proto` declares `RemoteCallREQ` and `RemoteCallACK`, both
 *   `{ MsgID uint32; Data bytes; CallID int64 }`, marked `[AutoMsgID]`.
 * - The caller encodes its message with that message's own codec, puts the
 *   bytes in `Data` and the message's id in `MsgID`, takes a new `CallID`
 *   and sends a `RemoteCallREQ` (`rpc/req.go`, `request.Send`). The server
 *   decodes `Data` as the message `uint16(MsgID)` (`rpc/msg.go`,
 *   `rpc/proc.go`), and its reply goes back the same way in a
 *   `RemoteCallACK` with the request's `CallID` (`rpc/event.go`, `Reply`).
 *   There is no error reply: a call that fails on the server times out.
 * - cellnet takes each `CallID` from one counter for the whole process,
 *   starting at 1 (`rpc/req.go`); the server only echoes it, so a netloop
 *   caller may number its calls per connection.
 * - Both travel as ordinary `tcp.ltv` frames (the `cellnet` layout preset)
 *   whose type is the message's id and whose value is its protoplus bytes;
 *   the frame's 16-bit length bounds the whole call, inner message included,
 *   to 65,533 bytes.
 * - Their ids are protoplus's `[AutoMsgID]` hash: cellnet's 16-bit string
 *   hash of the package name and the struct name joined with no dot,
 *   `StringHash("rpc" + "RemoteCallREQ")` = 58645 and
 *   `StringHash("rpcRemoteCallACK")` = 20476, the values written in
 *   `rpc/msg_gen.go` (protoplus `msgidutil/msgid.go`, `StructMsgID`). This is
 *   not the `StringHash("rpc.RemoteCallREQ")` that
 *   {@link MessageRegistry.registerCellnet} computes: register them with
 *   {@link registerCellnetRpc}.
 *
 * The protoplus encoding (github.com/davyxu/protoplus at v0.1.0, the version
 * cellnet's `go.mod` requires; package `proto`) is close to protobuf's but
 * not the same: fields are numbered from 0 and its wire types are its own.
 *
 * ```
 *   field      tag · body              tag = varint(index << 3 | wireType)
 *   wireType   1 varint                2 bytes: varint length · bytes
 *              3 zigzag32 (a varint)   4 zigzag64 (a varint)
 *              5 fixed32: 4 bytes LE   6 fixed64: 8 bytes LE
 *
 *   RemoteCallREQ / RemoteCallACK: three fields in this order, each omitted when zero
 *
 *   +------+--------+------+--------+-------+------+---------------------------+
 *   | 0x01 | MsgID  | 0x0A | length | Data  | 0x11 | CallID varint      (> 0)  |
 *   |      | varint |      | varint | bytes | 0x16 | CallID 8 bytes LE  (< 0)  |
 *   +------+--------+------+--------+-------+------+---------------------------+
 *    index 0, varint  index 1, bytes           index 2, varint or fixed64
 * ```
 *
 * A varint is little-endian base 128, at most 10 bytes. protoplus writes a
 * positive int64 as a varint and a negative one as a fixed64 (two's
 * complement), and omits a zero MsgID, an empty Data and a zero CallID, so
 * an all-zero call is zero bytes.
 *
 * Decoding accepts what protoplus's decoder accepts: fields in any order;
 * fields it does not know, of wire types 1 to 6, skipped; a repeated MsgID
 * or CallID (the last wins) and a repeated Data (appended to the first, as
 * its `append` does); a CallID sent as a varint of 2^63 or more read as
 * negative; and a MsgID above 2^32 cut to its low 32 bits. It refuses, with
 * `NETLOOP_BAD_PAYLOAD`, what makes protoplus return an error (a known field
 * of the wrong wire type, wire type 0 or 7, a varint of more than 10 bytes
 * or ending early) and also what makes Go panic or misread: a length past
 * the end of the value, and a fixed64 cut short (protoplus ignores that one
 * and reads the bytes after it as new fields; protoplus itself never writes it).
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import { cellnetStringHash } from './hash.js';
import type { DecodedMessage, MessageMap, MessageRegistry, MessageType, MessageTypeRef } from '../message-registry.js';
import type { Serializer } from '../serializers.js';

/** cellnet's full names of its RPC messages (`path.Base(PkgPath) + "." + Name`, as `MessageMeta.FullName`). */
export const CELLNET_RPC_NAMES = Object.freeze({ REQ: 'rpc.RemoteCallREQ', ACK: 'rpc.RemoteCallACK' } as const);

/** The message ids cellnet registers them under (`rpc/msg_gen.go`): the frame type of each. */
export const CELLNET_RPC_IDS = Object.freeze({ REQ: 58645, ACK: 20476 } as const);

/**
 * protoplus's id for a struct marked `[AutoMsgID]` with no id of its own:
 * cellnet's string hash of `packageName + structName + salt` (no dot; the
 * salt is protoplus's `-MsgIDSalt` flag, empty by default).
 * `protoplusAutoMsgId('rpc', 'RemoteCallREQ')` is 58645.
 *
 * @throws NetloopError INVALID_VALUE when an argument is not a string.
 */
export function protoplusAutoMsgId(packageName: string, structName: string, salt = ''): number {
  for (const [name, value] of [['packageName', packageName], ['structName', structName], ['salt', salt]] as const) {
    if (typeof value !== 'string') throw invalid(`${name} must be a string`, { field: name, got: typeOf(value) });
  }
  return cellnetStringHash(packageName + structName + salt);
}

/**
 * A `RemoteCallREQ` or `RemoteCallACK`. Both have these fields; which one a
 * frame holds is told by the frame's type ({@link CELLNET_RPC_IDS}).
 */
export interface CellnetRemoteCall {
  /** The inner message's id: a uint32, of which cellnet reads the low 16 bits. */
  msgId: number;
  /** The inner message's bytes, in its own codec. */
  data: Uint8Array;
  /** Correlates the ACK with its REQ; a Go int64. */
  callId: bigint;
}

/** A decoded call: `data` is a Buffer viewing the decoded range (see {@link decodeCellnetRemoteCall}). */
export interface DecodedCellnetRemoteCall extends CellnetRemoteCall {
  data: Buffer;
}

/** A call to encode: the `callId` may also be given as a safe integer. */
export interface CellnetRemoteCallInput {
  msgId: number;
  data: Uint8Array;
  callId: bigint | number;
}

// protoplus wire types (proto/wiretype.go, WireVarint = iota + 1, ...).
const WIRE_VARINT = 1;
const WIRE_BYTES = 2;
const WIRE_ZIGZAG32 = 3;
const WIRE_ZIGZAG64 = 4;
const WIRE_FIXED32 = 5;
const WIRE_FIXED64 = 6;

// The tags protoplus writes for the three fields: index << 3 | wire type.
const TAG_MSGID = (0 << 3) | WIRE_VARINT; // 0x01
const TAG_DATA = (1 << 3) | WIRE_BYTES; // 0x0a
const TAG_CALLID_VARINT = (2 << 3) | WIRE_VARINT; // 0x11
const TAG_CALLID_FIXED64 = (2 << 3) | WIRE_FIXED64; // 0x16

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A checked call, split into the 32-bit halves the writer works with. */
interface Plan {
  msgId: number;
  data: Uint8Array;
  /** 0: omitted; 1: varint; -1: fixed64. */
  callSign: number;
  callLo: number;
  callHi: number;
  total: number;
}

/** Checks every field and computes the size; throws before anything is written. */
function plan(call: CellnetRemoteCallInput): Plan {
  if (typeof call !== 'object' || call === null) throw invalid('a RemoteCall must be an object', { got: typeOf(call) });
  const { msgId, data, callId } = call;
  if (typeof msgId !== 'number' || !Number.isInteger(msgId) || msgId < 0 || msgId > 0xffffffff) {
    throw invalid('msgId must be an integer in [0, 4294967295]', { field: 'msgId', value: typeof msgId === 'number' ? msgId : typeOf(msgId) });
  }
  if (!(data instanceof Uint8Array)) throw invalid('data must be a Buffer or Uint8Array', { field: 'data', got: typeOf(data) });
  let big: bigint;
  if (typeof callId === 'bigint') big = callId;
  else if (typeof callId === 'number' && Number.isSafeInteger(callId)) big = BigInt(callId);
  else throw invalid('callId must be a bigint or a safe integer', { field: 'callId', got: typeOf(callId) });
  if (big < INT64_MIN || big > INT64_MAX) throw invalid('callId is outside the int64 range', { field: 'callId' });
  // Two's complement halves: for a negative id they are the fixed64's bytes.
  const u = BigInt.asUintN(64, big);
  const callLo = Number(u & 0xffffffffn);
  const callHi = Number(u >> 32n);
  const callSign = big > 0n ? 1 : big < 0n ? -1 : 0;
  let total = 0;
  if (msgId !== 0) total += 1 + varintSize(msgId, 0);
  if (data.length !== 0) total += 1 + varintSize(data.length, 0) + data.length;
  if (callSign > 0) total += 1 + varintSize(callLo, callHi);
  else if (callSign < 0) total += 1 + 8;
  return { msgId, data, callSign, callLo, callHi, total };
}

/** Writes a planned call at `t[pos]`; returns the offset past it. Mirrors the generated `Marshal`. */
function writePlan(t: Uint8Array, pos: number, p: Plan): number {
  if (p.msgId !== 0) {
    t[pos++] = TAG_MSGID;
    pos = writeVarint(t, pos, p.msgId, 0);
  }
  if (p.data.length !== 0) {
    t[pos++] = TAG_DATA;
    pos = writeVarint(t, pos, p.data.length, 0);
    t.set(p.data, pos);
    pos += p.data.length;
  }
  if (p.callSign > 0) {
    t[pos++] = TAG_CALLID_VARINT;
    pos = writeVarint(t, pos, p.callLo, p.callHi);
  } else if (p.callSign < 0) {
    t[pos++] = TAG_CALLID_FIXED64;
    writeU32LE(t, pos, p.callLo);
    writeU32LE(t, pos + 4, p.callHi);
    pos += 8;
  }
  return pos;
}

/**
 * The size in bytes of `call` in protoplus encoding.
 *
 * @throws NetloopError INVALID_VALUE as {@link encodeCellnetRemoteCall}.
 */
export function cellnetRemoteCallLength(call: CellnetRemoteCallInput): number {
  return plan(call).total;
}

/**
 * `call` in protoplus encoding, as protoplus's `Marshal` writes a
 * `RemoteCallREQ` or `RemoteCallACK`: the value of its `tcp.ltv` frame.
 *
 * @throws NetloopError INVALID_VALUE when `msgId` is not a uint32, `data` not
 *   a Uint8Array, or `callId` not an int64 (a bigint, or a safe integer).
 */
export function encodeCellnetRemoteCall(call: CellnetRemoteCallInput): Buffer {
  const p = plan(call);
  const out = Buffer.allocUnsafe(p.total);
  writePlan(out, 0, p);
  return out;
}

/**
 * Writes `call` in protoplus encoding into `target` at `offset` and returns
 * the offset just past it.
 *
 * @throws NetloopError as {@link encodeCellnetRemoteCall}; INVALID_VALUE when
 *   `offset` is not an integer or the call does not fit (nothing written).
 */
export function encodeCellnetRemoteCallInto(target: Uint8Array, offset: number, call: CellnetRemoteCallInput): number {
  if (!(target instanceof Uint8Array)) throw invalid('the target must be a Uint8Array', { got: typeOf(target) });
  const p = plan(call);
  const end = offset + p.total;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || end > target.length) {
    throw invalid('the call does not fit in the target buffer', { offset: String(offset), length: p.total, targetLength: target.length });
  }
  writePlan(target, offset, p);
  return end;
}

// The varint just read, as two uint32 halves: module scratch, so reading
// allocates nothing (the decoder is synchronous, so nothing interleaves).
let vLo = 0;
let vHi = 0;
const VARINT_TRUNCATED = -1;
const VARINT_OVERFLOW = -2;

/**
 * Reads a varint at `b[pos]`, not past `end`, into `vLo`/`vHi`, as protoplus's
 * `Buffer.DecodeVarint`: at most 10 bytes; of the tenth only its lowest bit
 * counts (bits past 64 are dropped), and a tenth byte with its high bit set
 * is an overflow. Returns the offset past it, or a negative code.
 */
function readVarint(b: Uint8Array, pos: number, end: number): number {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return VARINT_TRUNCATED;
    const byte = b[pos++]!;
    const bits = byte & 0x7f;
    if (i < 4) lo |= bits << (7 * i);
    else if (i === 4) {
      lo |= (bits & 0x0f) << 28;
      hi |= bits >>> 4;
    } else if (i < 9) hi |= bits << (7 * i - 32);
    else hi |= (bits & 1) << 31;
    if (byte < 0x80) {
      vLo = lo >>> 0;
      vHi = hi >>> 0;
      return pos;
    }
  }
  return VARINT_OVERFLOW;
}

function varintSize(lo: number, hi: number): number {
  let n = 1;
  while (hi !== 0 || lo > 0x7f) {
    lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
    hi >>>= 7;
    n++;
  }
  return n;
}

/** Writes the varint of the uint64 `hi * 2^32 + lo` (both uint32), as protoplus's `EncodeVarint`. */
function writeVarint(t: Uint8Array, pos: number, lo: number, hi: number): number {
  while (hi !== 0 || lo > 0x7f) {
    t[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
    hi >>>= 7;
  }
  t[pos++] = lo;
  return pos;
}

function writeU32LE(t: Uint8Array, pos: number, v: number): void {
  t[pos] = v & 0xff;
  t[pos + 1] = (v >>> 8) & 0xff;
  t[pos + 2] = (v >>> 16) & 0xff;
  t[pos + 3] = v >>> 24;
}

function readU32LE(b: Uint8Array, pos: number): number {
  return (b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16)) + b[pos + 3]! * 0x1000000;
}

/**
 * Reads a `RemoteCallREQ` or `RemoteCallACK` from `source[start, end)` (the
 * value of its frame), as protoplus's `Unmarshal` does; see the module
 * comment for what is accepted and refused. A missing field is zero. `data`
 * is a Buffer viewing `source` (no copy) unless the value repeats the Data
 * field, when the pieces are joined into a new Buffer.
 *
 * @throws NetloopError BAD_PAYLOAD for a malformed value; `details` holds
 *   `reason`, `field` (when known), `offset` (from `start`) and `length`,
 *   never the peer's bytes. INVALID_VALUE when `source` is not a Uint8Array
 *   or the range is not within it.
 */
export function decodeCellnetRemoteCall(
  source: Uint8Array,
  start = 0,
  end: number = source?.length,
): DecodedCellnetRemoteCall {
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
    throw invalid('the range is not within the source', { start: String(start), end: String(end), sourceLength: source.length });
  }
  const length = end - start;
  let msgId = 0;
  let data: Buffer | null = null;
  let callId = 0n;
  let pos = start;
  // protoplus's rawUnmarshalStruct: read a tag, then the field, until the value ends.
  while (pos < end) {
    const tagAt = pos;
    pos = readVarint(source, pos, end);
    if (pos < 0) throw varintError(pos, 'tag', tagAt - start, length);
    // A tag of 24 or more names a field index of 3 or more: unknown here.
    // Its wire type is the tag's low three bits either way.
    const index = vHi === 0 && vLo < 24 ? vLo >>> 3 : -1;
    const wireType = vLo & 7;
    const fieldAt = pos - start;
    switch (index) {
      case 0: // MsgID uint32: UnmarshalUInt32 takes a varint only, and keeps uint32(v).
        if (wireType !== WIRE_VARINT) throw bad('wrong-wire-type', 'MsgID', fieldAt, length);
        pos = readVarint(source, pos, end);
        if (pos < 0) throw varintError(pos, 'MsgID', fieldAt, length);
        msgId = vLo;
        break;
      case 1: {
        // Data bytes: UnmarshalBytes takes bytes only, and appends.
        if (wireType !== WIRE_BYTES) throw bad('wrong-wire-type', 'Data', fieldAt, length);
        pos = readVarint(source, pos, end);
        if (pos < 0) throw varintError(pos, 'Data', fieldAt, length);
        if (vHi !== 0 || vLo > end - pos) throw bad('truncated', 'Data', fieldAt, length);
        const piece = Buffer.from(source.buffer, source.byteOffset + pos, vLo);
        data = data === null ? piece : Buffer.concat([data, piece]);
        pos += vLo;
        break;
      }
      case 2: // CallID int64: UnmarshalInt64 takes a varint (as int64(v)) or a fixed64.
        if (wireType === WIRE_VARINT) {
          pos = readVarint(source, pos, end);
          if (pos < 0) throw varintError(pos, 'CallID', fieldAt, length);
        } else if (wireType === WIRE_FIXED64) {
          if (end - pos < 8) throw bad('truncated', 'CallID', fieldAt, length);
          vLo = readU32LE(source, pos);
          vHi = readU32LE(source, pos + 4);
          pos += 8;
        } else {
          throw bad('wrong-wire-type', 'CallID', fieldAt, length);
        }
        callId = BigInt.asIntN(64, (BigInt(vHi) << 32n) | BigInt(vLo));
        break;
      default:
        pos = skipField(source, pos, end, wireType, fieldAt, length);
    }
  }
  return { msgId, data: data ?? Buffer.alloc(0), callId };
}

/** protoplus's skipField: passes over an unknown field of wire type 1 to 6. */
function skipField(b: Uint8Array, pos: number, end: number, wireType: number, fieldAt: number, length: number): number {
  switch (wireType) {
    case WIRE_VARINT:
    case WIRE_ZIGZAG32:
    case WIRE_ZIGZAG64: {
      const next = readVarint(b, pos, end);
      if (next < 0) throw varintError(next, 'unknown', fieldAt, length);
      return next;
    }
    case WIRE_BYTES: {
      const next = readVarint(b, pos, end);
      if (next < 0) throw varintError(next, 'unknown', fieldAt, length);
      if (vHi !== 0 || vLo > end - next) throw bad('truncated', 'unknown', fieldAt, length);
      return next + vLo;
    }
    case WIRE_FIXED32:
      if (end - pos < 4) throw bad('truncated', 'unknown', fieldAt, length);
      return pos + 4;
    case WIRE_FIXED64:
      if (end - pos < 8) throw bad('truncated', 'unknown', fieldAt, length);
      return pos + 8;
    default: // 0 and 7: ErrBadWireType.
      throw bad('bad-wire-type', 'unknown', fieldAt, length);
  }
}

function varintError(code: number, field: string, offset: number, length: number): NetloopError {
  return bad(code === VARINT_OVERFLOW ? 'varint-overflow' : 'truncated', field, offset, length);
}

/** The protoplus serializer of `RemoteCallREQ`, for a {@link MessageRegistry}. */
export const cellnetRemoteCallREQ: Serializer<CellnetRemoteCall> = Object.freeze({
  encode(payload: CellnetRemoteCall): Uint8Array {
    return encodeCellnetRemoteCall(payload);
  },
  decode(bytes: Buffer): CellnetRemoteCall {
    return decodeCellnetRemoteCall(bytes, 0, bytes.length);
  },
});

/** The protoplus serializer of `RemoteCallACK` (the same fields as the REQ). */
export const cellnetRemoteCallACK: Serializer<CellnetRemoteCall> = Object.freeze({
  encode(payload: CellnetRemoteCall): Uint8Array {
    return encodeCellnetRemoteCall(payload);
  },
  decode(bytes: Buffer): CellnetRemoteCall {
    return decodeCellnetRemoteCall(bytes, 0, bytes.length);
  },
});

/** The two RPC message types as registered by {@link registerCellnetRpc}. */
export interface CellnetRpcTypes {
  readonly req: MessageType<CellnetRemoteCall>;
  readonly ack: MessageType<CellnetRemoteCall>;
}

/**
 * Registers `rpc.RemoteCallREQ` (58645) and `rpc.RemoteCallACK` (20476) in
 * `registry`, with their protoplus serializers, under cellnet's own ids.
 *
 * @throws NetloopError DUPLICATE_TYPE when either id or name is taken.
 */
export function registerCellnetRpc(registry: MessageRegistry<MessageMap>): CellnetRpcTypes {
  registry.register(CELLNET_RPC_IDS.REQ, CELLNET_RPC_NAMES.REQ, cellnetRemoteCallREQ).register(CELLNET_RPC_IDS.ACK, CELLNET_RPC_NAMES.ACK, cellnetRemoteCallACK);
  return Object.freeze({
    req: registry.resolve<CellnetRemoteCall>(CELLNET_RPC_IDS.REQ),
    ack: registry.resolve<CellnetRemoteCall>(CELLNET_RPC_IDS.ACK),
  });
}

/**
 * Puts a user's message into a call, as cellnet's `request.Send` and
 * `RecvMsgEvent.Reply` do: `data` is the message encoded by its own
 * serializer and `msgId` its registered id. The same call fields serve a
 * REQ (a new `callId`) and an ACK (the REQ's `callId`).
 *
 * @throws NetloopError as {@link MessageRegistry.encode}; INVALID_VALUE when
 *   the message's id is above 0xffff (cellnet reads only `uint16(MsgID)`).
 */
export function cellnetRpcWrap<T>(
  registry: MessageRegistry,
  ref: MessageTypeRef<T>,
  payload: T,
  callId: bigint | number,
): CellnetRemoteCallInput {
  const { id, value } = registry.encode(ref, payload);
  if (id > 0xffff) {
    throw invalid('a message sent through cellnet rpc must have an id of at most 0xffff', { field: 'msgId', id });
  }
  return { msgId: id, data: value, callId };
}

/**
 * Takes the user's message out of a received call, as cellnet's
 * `rpc.ResolveInboundEvent` does: `data` decoded as the registered type
 * `uint16(msgId)`. The payload may view the call's `data` (see
 * {@link decodeCellnetRemoteCall}).
 *
 * @throws NetloopError as {@link MessageRegistry.decode}: UNKNOWN_TYPE for an
 *   unregistered id in a strict registry, BAD_PAYLOAD when `data` does not decode.
 */
export function cellnetRpcUnwrap(registry: MessageRegistry, call: CellnetRemoteCall): DecodedMessage {
  const data = call.data;
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return registry.decode(call.msgId & 0xffff, bytes);
}

function typeOf(value: unknown): string {
  return value === null ? 'null' : typeof value;
}

function invalid(message: string, details: Record<string, unknown>): NetloopError {
  return new NetloopError(ErrorCode.INVALID_VALUE, message, { details });
}

/** A malformed value: the reason, the field and where, never the peer's bytes. */
function bad(reason: string, field: string, offset: number, length: number): NetloopError {
  return new NetloopError(
    ErrorCode.BAD_PAYLOAD,
    `malformed cellnet RemoteCall: ${reason} in ${field} field at offset ${offset} of ${length}`,
    { details: { reason, field, offset, length } },
  );
}
