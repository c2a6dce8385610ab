import { test } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../../lib/core/errors.js';
import {
  CELLNET_CHAT_NAMES,
  CellnetBinaryReader,
  CellnetBinaryWriter,
  cellnetChatACK,
  cellnetChatREQ,
} from '../../../../lib/codec/cellnet/binary.js';
import { cellnetStringHash } from '../../../../lib/codec/cellnet/hash.js';
import { LtvEncoder } from '../../../../lib/codec/ltv-encoder.js';
import { MessageRegistry } from '../../../../lib/codec/message-registry.js';
import { throwsCode } from '../../../helpers/ltv.js';

test('ChatREQ and ChatACK bytes as cellnet writes them, inside a tcp.ltv frame', () => {
  const r = new MessageRegistry();
  r.registerCellnet(CELLNET_CHAT_NAMES.REQ, cellnetChatREQ);
  r.registerCellnet(CELLNET_CHAT_NAMES.ACK, cellnetChatACK);
  const enc = new LtvEncoder({ layout: 'cellnet' });
  const req = r.encode(CELLNET_CHAT_NAMES.REQ, { content: 'hi' });
  // LTV: length 6 (type + value), type StringHash("proto.ChatREQ") LE, value: uint16 LE 2, "hi".
  const id = cellnetStringHash('proto.ChatREQ');
  assert.is(enc.encode(req.id, req.value).toString('hex'), '0600' + Buffer.from([id & 0xff, id >> 8]).toString('hex') + '0200' + '6869');
  const ack = cellnetChatACK.encode({ content: 'hi', id: 258n });
  assert.is(Buffer.from(ack).toString('hex'), '0200' + '6869' + '0201000000000000');
  assert.equal(cellnetChatACK.decode(Buffer.from(ack)), { content: 'hi', id: 258n });
  assert.equal(cellnetChatACK.decode(Buffer.from(cellnetChatACK.encode({ content: '', id: -1 as never }))).id, -1n);
  assert.equal(cellnetChatREQ.decode(Buffer.from('02006869', 'hex')), { content: 'hi' });
});

test('chat payloads: missing or trailing bytes are BAD_PAYLOAD; wrong fields are INVALID_VALUE', () => {
  throwsCode(() => cellnetChatREQ.decode(Buffer.from('0500686869', 'hex')), ErrorCode.BAD_PAYLOAD);
  throwsCode(() => cellnetChatREQ.decode(Buffer.from('02', 'hex')), ErrorCode.BAD_PAYLOAD);
  throwsCode(() => cellnetChatREQ.decode(Buffer.from('0100686869', 'hex')), ErrorCode.BAD_PAYLOAD);
  throwsCode(() => cellnetChatACK.decode(Buffer.from('0000010203', 'hex')), ErrorCode.BAD_PAYLOAD);
  throwsCode(() => cellnetChatREQ.encode(null as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => cellnetChatREQ.encode({ content: 5 } as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => cellnetChatREQ.encode({ content: 'x'.repeat(65536) }), ErrorCode.INVALID_VALUE);
  throwsCode(() => cellnetChatACK.encode({ content: '', id: 1.5 as never }), ErrorCode.INVALID_VALUE);
  throwsCode(() => cellnetChatACK.encode({ content: '', id: 2n ** 63n }), ErrorCode.INVALID_VALUE);
});

test('property: every field type round-trips through writer and reader', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.integer({ min: -128, max: 127 }),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: -32768, max: 32767 }),
      fc.integer({ min: 0, max: 65535 }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      fc.nat({ max: 0xffffffff }),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.double({ noNaN: true }),
      fc.string({ unit: 'grapheme', maxLength: 50 }),
      fc.uint8Array({ maxLength: 50 }),
      (b, i8, u8, i16, u16, i32, u32, i64, u64, f64, s, bytes) => {
        const w = new CellnetBinaryWriter(8)
          .bool(b).int8(i8).uint8(u8).int16(i16).uint16(u16).int32(i32).uint32(u32)
          .int64(i64).uint64(u64).float32(1.5).float64(f64).string(s).bytes(bytes);
        const r = new CellnetBinaryReader(new Uint8Array(w.finish()));
        assert.is(r.bool(), b);
        assert.is(r.int8(), i8);
        assert.is(r.uint8(), u8);
        assert.is(r.int16(), i16);
        assert.is(r.uint16(), u16);
        assert.is(r.int32(), i32);
        assert.is(r.uint32(), u32);
        assert.is(r.int64(), i64);
        assert.is(r.uint64(), u64);
        assert.is(r.float32(), 1.5);
        assert.ok(Object.is(r.float64(), f64));
        assert.is(r.string(), s);
        assert.ok(r.bytes().equals(Buffer.from(bytes)));
        assert.is(r.remaining, 0);
        r.end();
      },
    ),
    { numRuns: 200 },
  );
});

test('writer range checks', () => {
  const w = new CellnetBinaryWriter();
  throwsCode(() => w.int8(128), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.uint8(-1), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.int16(40000), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.uint16(70000), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.int32(2 ** 31), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.uint32(2 ** 32), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.uint64(-1n), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.int64('1' as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.bool(1 as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.float32('x' as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.float64('x' as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.string(1 as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.bytes('x' as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => w.bytes(new Uint8Array(65536)), ErrorCode.INVALID_VALUE);
  assert.is(w.finish().length, 0);
});

test.run();
