// The byte sequences in this file are derived by hand from the Go sources of
// cellnet, protoplus and goobjfmt, at the commits below (Go is not part of
// CI, so no Go program produced them):
//
//   cellnet    github.com/davyxu/cellnet    916a7eaabb30c7f29d1f69b977b3ba143162e5c9
//   protoplus  github.com/davyxu/protoplus  v0.1.0 = 2d635c30bd3ac40e786b0eabb0eec807b08bac89
//              (the version cellnet's go.mod requires; package proto)
//   goobjfmt   github.com/davyxu/goobjfmt   v0.1.0 = f9d6e0a29143b4fd9aa7bc8d8ac7dae345185bbf
//
// The rules used below, with their lines:
//   [tag]    protoplus proto/wiretype.go 6-16: WireVarint=1, WireBytes=2,
//            WireZigzag32=3, WireZigzag64=4, WireFixed32=5, WireFixed64=6;
//            tag = fieldIndex<<3 | wireType.
//   [fields] cellnet rpc/msg_gen.go 41-50: Marshal writes MsgID as field 0
//            (MarshalUInt32), Data as field 1 (MarshalBytes), CallID as
//            field 2 (MarshalInt64), in that order; 52-64: Unmarshal.
//   [uint32] protoplus proto/field_marshal.go 39-49: a zero uint32 is
//            omitted, else tag(i, WireVarint) · varint.
//   [bytes]  protoplus proto/slice_marshal.go 7-21: empty bytes omitted, else
//            tag(i, WireBytes) · varint(len) · bytes.
//   [int64]  protoplus proto/field_marshal.go 51-63: > 0 tag(i, WireVarint) ·
//            varint; < 0 tag(i, WireFixed64) · 8 bytes little-endian
//            (EncodeFixed64, proto/buffer.go 70-81); 0 omitted.
//   [varint] protoplus proto/buffer.go 58-65: 7 bits at a time, low first,
//            high bit set on all but the last byte.
//   [ids]    cellnet rpc/msg_gen.go 112-121: RemoteCallREQ ID 58645,
//            RemoteCallACK ID 20476 = protoplus msgidutil/msgid.go 177:
//            StringHash(PackageName + Name + salt), package "rpc", no dot.
//   [ltv]    cellnet util/packet.go 102-111: uint16 LE (2 + value length) ·
//            uint16 LE message id · value.
//   [send]   cellnet rpc/req.go 33-44: Data = the user message encoded by its
//            codec, MsgID = uint32(meta.ID); 55: CallID = atomic.AddInt64 of
//            a process counter starting at 0, so the first call is 1.
//   [reply]  cellnet rpc/event.go 28-41: the ACK carries the reply message
//            the same way, with the request's CallID.
//   [recv]   cellnet rpc/msg.go 3-8 and rpc/proc.go 26: the receiver decodes
//            Data as message uint16(MsgID).
//   [decode] protoplus proto/field_unmarshal.go 186-209: read a tag, hand
//            the field to Unmarshal, skip it (skipField, 157-184) when the
//            index is unknown; 51-65 MsgID takes a varint only, as
//            uint32(v); 67-89 CallID a varint (int64(v)) or a fixed64;
//            proto/slice_unmarshal.go 3-19 Data takes bytes only, appended.

import { test } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../../lib/core/errors.js';
import {
  CELLNET_RPC_IDS,
  CELLNET_RPC_NAMES,
  cellnetRemoteCallACK,
  cellnetRemoteCallLength,
  cellnetRemoteCallREQ,
  cellnetRpcUnwrap,
  cellnetRpcWrap,
  decodeCellnetRemoteCall,
  encodeCellnetRemoteCall,
  encodeCellnetRemoteCallInto,
  protoplusAutoMsgId,
  registerCellnetRpc,
} from '../../../../lib/codec/cellnet/rpc.js';
import type { CellnetRemoteCall, CellnetRemoteCallInput } from '../../../../lib/codec/cellnet/rpc.js';
import { CellnetBinaryReader, CellnetBinaryWriter } from '../../../../lib/codec/cellnet/binary.js';
import { cellnetStringHash } from '../../../../lib/codec/cellnet/hash.js';
import { LtvEncoder } from '../../../../lib/codec/ltv-encoder.js';
import { MessageRegistry } from '../../../../lib/codec/message-registry.js';
import { utf8 } from '../../../../lib/codec/serializers.js';
import type { Serializer } from '../../../../lib/codec/serializers.js';
import { Harness, throwsCode } from '../../../helpers/ltv.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const bytesOf = (call: CellnetRemoteCallInput): string => encodeCellnetRemoteCall(call).toString('hex');
const decodeHex = (s: string): { msgId: number; data: string; callId: bigint } => {
  const c = decodeCellnetRemoteCall(hex(s));
  return { msgId: c.msgId, data: c.data.toString('hex'), callId: c.callId };
};

/**
 * cellnet's echo example message, `TestEchoACK { Msg string; Value int32 }`
 * (cellnet examples/echo/proto.go 11-14), in its binary codec: goobjfmt
 * codec.go 84-89 writes a string as uint16 LE length · bytes, 101 an int32
 * as 4 bytes little-endian (binary_writer.go 25: binary.LittleEndian).
 */
interface TestEchoACK {
  msg: string;
  value: number;
}
const testEchoACK: Serializer<TestEchoACK> = {
  encode: (p) => new CellnetBinaryWriter().string(p.msg).int32(p.value).finish(),
  decode: (b) => {
    const r = new CellnetBinaryReader(b);
    const out = { msg: r.string(), value: r.int32() };
    r.end();
    return out;
  },
};

// rpc.CallSync(p, &TestEchoACK{Msg: "hello", Value: 1234}) from cellnet
// examples/echo/client_rpc_sync.go 31-34, the first call of the process:
//   inner message id  StringHash("main.TestEchoACK") (examples/echo/proto.go 23) = 4673 = 0x1241
//   Data (goobjfmt)   05 00 · 68 65 6c 6c 6f ("hello") · d2 04 00 00 (1234)   = 11 bytes
//   MsgID   [uint32]  tag(0, WireVarint) = 0x01 · varint 4673: 0x41|0x80 = c1, 4673>>7 = 0x24
//   Data    [bytes]   tag(1, WireBytes) = 0x0a · varint 11 = 0b · the 11 bytes
//   CallID  [int64]   tag(2, WireVarint) = 0x11 · varint 1 = 01                [send] CallID 1
//   frame   [ltv]     length 2 + 18 = 20 → 14 00 · id 58645 = 0xe515 → 15 e5
const ECHO_DATA = '0500 68656c6c6f d2040000';
const ECHO_VALUE = `01 c124 0a 0b ${ECHO_DATA} 11 01`;
const ECHO_REQ_FRAME = `1400 15e5 ${ECHO_VALUE}`;
// The server's rpcevent.Reply(ack) (examples/echo/server.go 26-35, [reply])
// sends the same message back: the same value, in a frame of id 20476 = 0x4ffc → fc 4f.
const ECHO_ACK_FRAME = `1400 fc4f ${ECHO_VALUE}`;

test('message ids: protoplus AutoMsgID of package "rpc", as rpc/msg_gen.go registers them', () => {
  // [ids]: msg_gen.go 115 and 120 hold 58645 and 20476; msgid.go 177 hashes
  // PackageName + Name with no dot (the dotted full name hashes differently).
  assert.is(CELLNET_RPC_IDS.REQ, 58645);
  assert.is(CELLNET_RPC_IDS.ACK, 20476);
  assert.is(protoplusAutoMsgId('rpc', 'RemoteCallREQ'), 58645);
  assert.is(protoplusAutoMsgId('rpc', 'RemoteCallACK'), 20476);
  assert.is.not(cellnetStringHash(CELLNET_RPC_NAMES.REQ), 58645);
  // msgidutil/flag.go 12: the salt is appended to the name.
  assert.is(protoplusAutoMsgId('rpc', 'RemoteCallREQ', 'x'), cellnetStringHash('rpcRemoteCallREQx'));
  throwsCode(() => protoplusAutoMsgId('rpc', 5 as never), ErrorCode.INVALID_VALUE);
  // cellnet meta.go 39-50: FullName is path.Base(PkgPath) + "." + Name.
  assert.equal({ ...CELLNET_RPC_NAMES }, { REQ: 'rpc.RemoteCallREQ', ACK: 'rpc.RemoteCallACK' });

  const r = new MessageRegistry();
  const types = registerCellnetRpc(r);
  assert.is(types.req.id, 58645);
  assert.is(types.ack.id, 20476);
  assert.is(r.get('rpc.RemoteCallACK'), types.ack);
  throwsCode(() => registerCellnetRpc(r), ErrorCode.DUPLICATE_TYPE);
});

test('rpc.CallSync of the echo example: the REQ frame and the ACK frame byte for byte', () => {
  // See ECHO_VALUE above for the derivation.
  const registry = new MessageRegistry();
  registerCellnetRpc(registry);
  const echo = registry.registerCellnet('main.TestEchoACK', testEchoACK).resolve('main.TestEchoACK');
  assert.is(echo.id, 4673);
  const encoder = new LtvEncoder({ layout: 'cellnet' });

  const req = cellnetRpcWrap(registry, echo, { msg: 'hello', value: 1234 }, 1);
  assert.is(Buffer.from(req.data).toString('hex'), hex(ECHO_DATA).toString('hex'));
  assert.is(req.msgId, 4673);
  const value = encodeCellnetRemoteCall(req);
  assert.is(value.toString('hex'), hex(ECHO_VALUE).toString('hex'));
  assert.is(cellnetRemoteCallLength(req), 18);
  assert.is(encoder.encode(CELLNET_RPC_IDS.REQ, value).toString('hex'), hex(ECHO_REQ_FRAME).toString('hex'));
  // Through the registry, as a server would send the ACK.
  const ack = registry.encode(CELLNET_RPC_NAMES.ACK, { ...cellnetRpcWrap(registry, echo, { msg: 'hello', value: 1234 }, 1n) } as CellnetRemoteCall);
  assert.is(encoder.encode(ack.id, ack.value).toString('hex'), hex(ECHO_ACK_FRAME).toString('hex'));

  // Reading both frames back as a netloop peer does: frame, call, message [recv].
  const h = new Harness({ layout: 'cellnet' }).feedAll([hex(ECHO_REQ_FRAME + ECHO_ACK_FRAME)]);
  assert.is(h.error, null);
  assert.equal(h.frames.map((f) => f.type), [58645, 20476]);
  for (const [i, frame] of h.values.entries()) {
    const got = registry.decode(h.frames[i]!.type, frame);
    assert.is(got.type?.name, i === 0 ? 'rpc.RemoteCallREQ' : 'rpc.RemoteCallACK');
    const call = got.payload as CellnetRemoteCall;
    assert.equal({ msgId: call.msgId, callId: call.callId }, { msgId: 4673, callId: 1n });
    const inner = cellnetRpcUnwrap(registry, call);
    assert.is(inner.type, echo);
    assert.equal(inner.payload, { msg: 'hello', value: 1234 });
  }
});

test('zero fields are omitted: a zero MsgID, an empty Data and a zero CallID write nothing', () => {
  // [uint32] value == 0 returns before writing; [bytes] size == 0 likewise;
  // [int64] neither case of the switch matches 0.
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: 0n }), '');
  assert.is(bytesOf({ msgId: 0, data: hex('aa'), callId: 0 }), '0a01aa');
  assert.is(bytesOf({ msgId: 7, data: Buffer.alloc(0), callId: 0n }), '0107');
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: 300 }), '11ac02'); // 300 = 0b10_0101100 → ac 02
  // [decode] the loop ends at once on an empty value: every field zero.
  assert.equal(decodeHex(''), { msgId: 0, data: '', callId: 0n });
  // A 128-byte Data has a two-byte length: varint 128 = 80 01.
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(128, 1), callId: 0n }).slice(0, 6), '0a8001');
});

test('large values: a uint32 MsgID of 5 varint bytes, the largest int64 CallID in 9', () => {
  // [varint] 0xffffffff: four 7-bit groups of 1s (ff ff ff ff) and 0b1111 (0f).
  assert.is(bytesOf({ msgId: 0xffffffff, data: Buffer.alloc(0), callId: 0n }), '01ffffffff0f');
  // [int64] > 0 is a varint: 2^63 - 1 is nine groups, 8 of ff and 7f.
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: 2n ** 63n - 1n }), '11ffffffffffffffff7f');
  // 2^53 + 1 (beyond a double's exact range): 2^53 = bit 53 → 8th group (bits 49-55) holds 0x10.
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: 2n ** 53n + 1n }), '1181808080808080' + '10');
  assert.equal(decodeHex('11ffffffffffffffff7f'), { msgId: 0, data: '', callId: 2n ** 63n - 1n });
  assert.equal(decodeHex('118180808080808010'), { msgId: 0, data: '', callId: 2n ** 53n + 1n });
  assert.equal(decodeHex('01ffffffff0f'), { msgId: 0xffffffff, data: '', callId: 0n });
});

test('negative CallID: protoplus writes it as a fixed64 (wire type 6), two\'s complement little-endian', () => {
  // [int64] value < 0: tag(2, WireFixed64) = 2<<3|6 = 0x16 · EncodeFixed64(uint64(value)).
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: -1n }), '16ffffffffffffffff');
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: -2 }), '16feffffffffffffff');
  assert.is(bytesOf({ msgId: 0, data: Buffer.alloc(0), callId: -(2n ** 63n) }), '160000000000000080');
  assert.equal(decodeHex('16feffffffffffffff'), { msgId: 0, data: '', callId: -2n });
  assert.equal(decodeHex('160000000000000080'), { msgId: 0, data: '', callId: -(2n ** 63n) });
  // [decode] 67-76: a varint CallID is int64(v): 2^64 - 1 (ten bytes) reads as -1.
  assert.equal(decodeHex('11ffffffffffffffffff01'), { msgId: 0, data: '', callId: -1n });
  // A fixed64 CallID with a positive value is read too (the decoder takes either).
  assert.equal(decodeHex('160500000000000000'), { msgId: 0, data: '', callId: 5n });
});

test('what the Go decoder accepts: any field order, repeats, non-minimal varints, bits past 64', () => {
  // [decode] fields are handled one by one as they come, in any order.
  assert.equal(decodeHex(`11 01 0a 0b ${ECHO_DATA} 01 c124`), decodeHex(ECHO_VALUE));
  // A repeated MsgID or CallID: each assignment replaces the last.
  assert.equal(decodeHex('0105 0107 1105 16ffffffffffffffff'), { msgId: 7, data: '', callId: -1n });
  // A repeated Data: slice_unmarshal.go 12 appends to what was read before.
  assert.equal(decodeHex('0a01aa 0105 0a02bbcc'), { msgId: 5, data: 'aabbcc', callId: 0n });
  // buffer.go 131-152, 158-252: a varint with redundant high groups is accepted (tag 81 00 = 1, MsgID 85 00 = 5).
  assert.equal(decodeHex('8100 8500'), { msgId: 5, data: '', callId: 0n });
  // field_unmarshal.go 59: uint32(v) keeps the low 32 bits of a 64-bit MsgID.
  assert.equal(decodeHex('01 ffffffffffffffffff01'), { msgId: 0xffffffff, data: '', callId: 0n });
  assert.equal(decodeHex('01 8080808010'), { msgId: 0, data: '', callId: 0n }); // 2^32 → 0
  // buffer.go 240-245: of a tenth byte only its lowest bit is kept (b << 63).
  assert.equal(decodeHex('11 ffffffffffffffffff7f'), { msgId: 0, data: '', callId: -1n });
  // An explicit empty Data field (protoplus never writes one) reads as empty.
  assert.equal(decodeHex('0a00'), { msgId: 0, data: '', callId: 0n });
});

test('unknown fields of every wire type are skipped, as skipField does', () => {
  // field_unmarshal.go 197-201: Unmarshal returns ErrUnknownField for an
  // index other than 0, 1, 2 (msg_gen.go 63), then skipField (157-184) reads
  // past it by wire type. Index 3: tag = 3<<3|wt = 0x18|wt.
  const unknown = [
    '19 9601', // WireVarint: varint 150
    '1a 03 010203', // WireBytes: length 3, 3 bytes
    '1b 03', // WireZigzag32: a varint
    '1c 8001', // WireZigzag64: a varint
    '1d 01020304', // WireFixed32: 4 bytes
    '1e 0102030405060708', // WireFixed64: 8 bytes
    'c23e 02 abcd', // index 1000: tag 1000<<3|2 = 8002 = c2 3e (varint), bytes of length 2
  ];
  for (const field of unknown) {
    assert.equal(decodeHex(`${field} ${ECHO_VALUE} ${field}`), decodeHex(ECHO_VALUE), field);
  }
  // A huge tag whose low three bits are a valid wire type is an unknown field too:
  // tag 2^64 - 7 (ten bytes, low bits 001 = WireVarint) followed by varint 0.
  assert.equal(decodeHex('f9ffffffffffffffff01 00 0107'), { msgId: 7, data: '', callId: 0n });
});

test('malformed values are BAD_PAYLOAD: wrong wire types, wire types 0 and 7, bad varints, cuts', () => {
  const reason = (s: string): unknown => throwsCode(() => decodeCellnetRemoteCall(hex(s)), ErrorCode.BAD_PAYLOAD).details['reason'];
  // field_unmarshal.go 60, slice_unmarshal.go 14, field_unmarshal.go 84: ErrBadWireType for a known field.
  assert.is(reason('02 00'), 'wrong-wire-type'); // MsgID as bytes
  assert.is(reason('09 01'), 'wrong-wire-type'); // Data as a varint
  assert.is(reason('15 01000000'), 'wrong-wire-type'); // CallID as a fixed32
  assert.is(reason('13 01'), 'wrong-wire-type'); // CallID as a zigzag32
  // Protobuf's own numbering (field 1 varint = 0x08) is wire type 0 here: index 1 (Data), wrong type.
  assert.is(reason('08 01'), 'wrong-wire-type');
  // skipField's default case (179-180): wire types 0 and 7 of an unknown field.
  assert.is(reason('18 00'), 'bad-wire-type');
  assert.is(reason('1f 00'), 'bad-wire-type');
  // buffer.go 247 / 150: a varint of more than ten bytes overflows.
  assert.is(reason('01 ffffffffffffffffffff01'), 'varint-overflow');
  assert.is(reason('ffffffffffffffffffff01'), 'varint-overflow');
  // io.ErrUnexpectedEOF: a varint cut short, in a tag or a value.
  assert.is(reason('81'), 'truncated');
  assert.is(reason('01 c1'), 'truncated');
  assert.is(reason('19 96'), 'truncated');
  // Lengths past the end: ConsumeBytes would slice out of range (a Go panic).
  assert.is(reason('0a 05 0102'), 'truncated');
  assert.is(reason('1a 05 0102'), 'truncated');
  assert.is(reason('0a ffffffffffffffffff01'), 'truncated'); // a length of 2^64 - 1
  assert.is(reason('1d 010203'), 'truncated');
  assert.is(reason('1e 01020304050607'), 'truncated');
  // A short fixed64 CallID: protoplus v0.1.0 (field_unmarshal.go 77-81) ignores the
  // error and reads on; later protoplus (api/golang/wire) returns it. Refused here.
  assert.is(reason('16 ffffffff'), 'truncated');

  // Every cut of the echo value: inside a field it is BAD_PAYLOAD; at a field
  // boundary (0, 3, 16, 18) the fields so far decode, since protoplus has no end marker.
  const value = hex(ECHO_VALUE);
  for (let cut = 0; cut <= value.length; cut++) {
    if ([0, 3, 16, 18].includes(cut)) {
      const c = decodeCellnetRemoteCall(value, 0, cut);
      assert.is(c.msgId, cut >= 3 ? 4673 : 0);
      assert.is(c.data.length, cut >= 16 ? 11 : 0);
      assert.is(c.callId, cut >= 18 ? 1n : 0n);
    } else {
      const err = throwsCode(() => decodeCellnetRemoteCall(value, 0, cut), ErrorCode.BAD_PAYLOAD);
      assert.is(err.details['reason'], 'truncated', `cut ${cut}`);
    }
  }
  // The peer's bytes never appear in the error.
  const err = throwsCode(() => decodeCellnetRemoteCall(Buffer.concat([hex('0a7f'), Buffer.from('SECRET')])), ErrorCode.BAD_PAYLOAD);
  assert.equal(Object.keys(err.details).sort(), ['field', 'length', 'offset', 'reason']);
  assert.not.ok(JSON.stringify(err.details).includes('SECRET') || (err as unknown as Error).message.includes('SECRET'));
  // Through the registry, a malformed REQ is BAD_PAYLOAD too.
  const r = new MessageRegistry();
  registerCellnetRpc(r);
  throwsCode(() => r.decode(CELLNET_RPC_IDS.REQ, hex('0a05')), ErrorCode.BAD_PAYLOAD);
});

const callArb: fc.Arbitrary<CellnetRemoteCall> = fc.record({
  msgId: fc.oneof(fc.constant(0), fc.nat({ max: 0xffff }), fc.nat({ max: 0xffffffff })),
  data: fc.uint8Array({ maxLength: 200 }),
  callId: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -1000n, max: 1000n })),
});

test('property: decode(encode(x)) equals x, into a range of a larger buffer and through the serializers', () => {
  fc.assert(
    fc.property(callArb, fc.nat({ max: 10 }), fc.nat({ max: 10 }), (call, before, after) => {
      const whole = encodeCellnetRemoteCall(call);
      assert.is(whole.length, cellnetRemoteCallLength(call));
      const back = decodeCellnetRemoteCall(whole);
      assert.equal({ ...back, data: Buffer.from(back.data) }, { ...call, data: Buffer.from(call.data) });
      const target = new Uint8Array(before + whole.length + after).fill(0xee);
      assert.is(encodeCellnetRemoteCallInto(target, before, call), before + whole.length);
      const ranged = decodeCellnetRemoteCall(target, before, before + whole.length);
      assert.equal(ranged.callId, call.callId);
      assert.equal(Buffer.from(ranged.data), Buffer.from(call.data));
      // Data is a view of the source, not a copy.
      if (call.data.length > 0) assert.is(ranged.data.buffer, target.buffer);
      for (const ser of [cellnetRemoteCallREQ, cellnetRemoteCallACK]) {
        const again = ser.decode(Buffer.from(ser.encode(call)));
        assert.is(again.callId, call.callId);
        assert.is(again.msgId, call.msgId);
      }
      // Canonical: what the encoder writes is the shortest form, so re-encoding a decode gives the same bytes.
      assert.equal(encodeCellnetRemoteCall(back), whole);
    }),
    { numRuns: 600 },
  );
});

test('property: arbitrary bytes decode or fail with BAD_PAYLOAD, nothing else', () => {
  const tagged = fc
    .array(fc.tuple(fc.constantFrom(0x01, 0x02, 0x0a, 0x11, 0x16, 0x19, 0x1a, 0x1d, 0x1e, 0x18, 0x1f, 0x80), fc.uint8Array({ maxLength: 12 })), {
      maxLength: 6,
    })
    .map((parts) => Buffer.concat(parts.map(([t, rest]) => Buffer.concat([Buffer.from([t]), rest]))));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), tagged), (bytes) => {
      try {
        const c = decodeCellnetRemoteCall(bytes);
        assert.ok(Number.isInteger(c.msgId) && c.msgId >= 0 && c.msgId <= 0xffffffff);
        assert.ok(c.callId >= -(2n ** 63n) && c.callId < 2n ** 63n);
        assert.ok(c.data.length <= bytes.length);
      } catch (err) {
        assert.is((err as { code?: unknown }).code, ErrorCode.BAD_PAYLOAD, String(err));
      }
    }),
    { numRuns: 3000 },
  );
});

test('encoders refuse bad values with INVALID_VALUE before writing; decode refuses a bad range', () => {
  const bads: unknown[] = [
    null,
    { msgId: -1, data: Buffer.alloc(0), callId: 0n },
    { msgId: 2 ** 32, data: Buffer.alloc(0), callId: 0n },
    { msgId: 1.5, data: Buffer.alloc(0), callId: 0n },
    { msgId: 1, data: 'x', callId: 0n },
    { msgId: 1, data: Buffer.alloc(0), callId: 2n ** 63n },
    { msgId: 1, data: Buffer.alloc(0), callId: -(2n ** 63n) - 1n },
    { msgId: 1, data: Buffer.alloc(0), callId: 2 ** 53 },
    { msgId: 1, data: Buffer.alloc(0), callId: '1' },
  ];
  for (const call of bads) {
    const target = Buffer.alloc(64, 0xee);
    throwsCode(() => encodeCellnetRemoteCall(call as CellnetRemoteCallInput), ErrorCode.INVALID_VALUE);
    throwsCode(() => cellnetRemoteCallLength(call as CellnetRemoteCallInput), ErrorCode.INVALID_VALUE);
    throwsCode(() => encodeCellnetRemoteCallInto(target, 0, call as CellnetRemoteCallInput), ErrorCode.INVALID_VALUE);
    assert.ok(target.every((b) => b === 0xee));
  }
  const ok: CellnetRemoteCallInput = { msgId: 1, data: hex('aabb'), callId: 1 };
  const small = Buffer.alloc(5, 0xee);
  throwsCode(() => encodeCellnetRemoteCallInto(small, 0, ok), ErrorCode.INVALID_VALUE);
  throwsCode(() => encodeCellnetRemoteCallInto(Buffer.alloc(10), -1, ok), ErrorCode.INVALID_VALUE);
  throwsCode(() => encodeCellnetRemoteCallInto('x' as never, 0, ok), ErrorCode.INVALID_VALUE);
  assert.ok(small.every((b) => b === 0xee));
  assert.is(encodeCellnetRemoteCallInto(Buffer.alloc(8), 0, ok), 8); // 01 01 · 0a 02 aa bb · 11 01
  throwsCode(() => decodeCellnetRemoteCall('0107' as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeCellnetRemoteCall(hex('0107'), 1, 3), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeCellnetRemoteCall(hex('0107'), 2, 1), ErrorCode.INVALID_VALUE);
  assert.equal(decodeCellnetRemoteCall(hex('ff0107ff'), 1, 3).msgId, 7);
});

test('wrap and unwrap: ids above 16 bits refused on send, uint16(MsgID) used on receipt', () => {
  const registry = new MessageRegistry({ maxId: 0xffffffff });
  const typed = registry.register(0x10005, 'big', utf8()).register(5, 'small', utf8());
  const big = typed.resolve('big');
  const small = typed.resolve('small');
  throwsCode(() => cellnetRpcWrap(registry, big, 'x', 1), ErrorCode.INVALID_VALUE);
  const call = cellnetRpcWrap(registry, small, 'hi', 9n);
  assert.equal({ ...call, data: Buffer.from(call.data).toString() }, { msgId: 5, data: 'hi', callId: 9n });
  // [recv] rpc/msg.go 3: GetMsgID() is uint16(self.MsgID): 0x10005 names message 5.
  const got = cellnetRpcUnwrap(registry, { msgId: 0x10005, data: new Uint8Array(Buffer.from('yo')), callId: 1n });
  assert.is(got.type, small);
  assert.is(got.payload, 'yo');
  // An unregistered inner message in a strict registry, and an undecodable one.
  throwsCode(() => cellnetRpcUnwrap(registry, { msgId: 77, data: Buffer.alloc(0), callId: 1n }), ErrorCode.UNKNOWN_TYPE);
  const r2 = new MessageRegistry();
  const echo = r2.registerCellnet('main.TestEchoACK', testEchoACK).resolve('main.TestEchoACK');
  throwsCode(() => cellnetRpcUnwrap(r2, { msgId: echo.id, data: hex('0500'), callId: 1n }), ErrorCode.BAD_PAYLOAD);
  throwsCode(() => cellnetRpcWrap(r2, 'nope', {}, 1), ErrorCode.UNKNOWN_TYPE);
});

test.run();
