import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../lib/core/errors.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import type { FrameSink } from '../../../lib/codec/ltv-encoder.js';
import { ltvLayout } from '../../../lib/codec/ltv-layout.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { Harness, layoutArb, throwsCode } from '../../helpers/ltv.js';

/** A sink like a client's output buffer: records pieces, refuses past `limit` bytes. */
class RecordingSink implements FrameSink {
  readonly pieces: Uint8Array[] = [];
  bytes = 0;
  constructor(readonly limit = Infinity) {}
  appendToOutputBuffer(data: Uint8Array): boolean {
    if (this.bytes + data.length > this.limit) return false;
    this.pieces.push(data);
    this.bytes += data.length;
    return true;
  }
}

test('byte layouts of the presets', () => {
  const v = Buffer.from('hi');
  assert.is(new LtvEncoder({ layout: 'cellnet' }).encode(0x1234, v).toString('hex'), '0400' + '3412' + '6869');
  assert.is(new LtvEncoder({ layout: 'muduo' }).encode(0, v).toString('hex'), '00000002' + '6869');
  assert.is(new LtvEncoder().encode(0x1234, v).toString('hex'), '00000002' + '1234' + '6869');
  assert.is(new LtvEncoder({ layout: 'pomelo' }).encode(4, v).toString('hex'), '04' + '000002' + '6869');
  const full = new LtvEncoder({ layout: { lengthBytes: 2, typeBytes: 1, lengthIncludesLength: true, lengthIncludesType: true } });
  assert.is(full.encode(9, v).toString('hex'), '0005' + '09' + '6869');
});

test('item 16: an oversize value is a synchronous FRAME_TOO_LARGE and nothing is queued', () => {
  const enc = new LtvEncoder({ layout: 'cellnet' });
  const sink = new RecordingSink();
  // cellnet itself would wrap the 16-bit length here and corrupt the stream.
  const err = throwsCode(() => enc.encodeTo(sink, 1, Buffer.alloc(65534)), ErrorCode.FRAME_TOO_LARGE);
  assert.equal(err.details, { declared: 65538, valueLength: 65534, max: 65537 });
  assert.equal(sink.pieces, []);
  throwsCode(() => enc.encode(1, Buffer.alloc(65534)), ErrorCode.FRAME_TOO_LARGE);
  throwsCode(() => enc.header(1, 65534), ErrorCode.FRAME_TOO_LARGE);
  assert.is(enc.encodeTo(sink, 1, Buffer.alloc(65533)), 65537);
  // A large value through a registry: also refused before anything is queued.
  const registry = new MessageRegistry();
  registry.register(7, 'text', 'utf8');
  const s2 = new RecordingSink();
  throwsCode(() => registry.encodeTo(enc, s2, 'text', 'x'.repeat(70_000)), ErrorCode.FRAME_TOO_LARGE);
  assert.equal(s2.pieces, []);
});

test('item 16: a value or type of the wrong type is INVALID_VALUE and nothing is queued', () => {
  const enc = new LtvEncoder({ layout: 'netloop' });
  const sink = new RecordingSink();
  for (const value of ['text', 42, null, undefined, { length: 3 }, [1, 2]]) {
    throwsCode(() => enc.encodeTo(sink, 1, value as never), ErrorCode.INVALID_VALUE);
  }
  for (const type of [-1, 0x10000, 1.5, Number.NaN, '1', null]) {
    throwsCode(() => enc.encodeTo(sink, type as never, Buffer.alloc(1)), ErrorCode.INVALID_VALUE);
  }
  throwsCode(() => new LtvEncoder({ layout: 'muduo' }).encode(1, Buffer.alloc(1)), ErrorCode.INVALID_VALUE);
  const registry = new MessageRegistry();
  registry.register(1, 'text', 'utf8');
  registry.register(2, 'json', 'json');
  throwsCode(() => registry.encodeTo(enc, sink, 'text', 5 as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => registry.encodeTo(enc, sink, 'json', 10n as never), ErrorCode.INVALID_VALUE);
  assert.equal(sink.pieces, []);
});

test('encodeTo: small values in one piece, large ones uncopied after a separate header', () => {
  const enc = new LtvEncoder({ layout: 'netloop', copyThreshold: 16 });
  const sink = new RecordingSink();
  const small = Buffer.from('small');
  const large = Buffer.alloc(100, 1);
  assert.is(enc.encodeTo(sink, 1, small), 11);
  assert.is(enc.encodeTo(sink, 2, large), 106);
  assert.is(sink.pieces.length, 3);
  assert.is(sink.pieces[2], large);
  const h = new Harness({ layout: 'netloop' }).feedAll(sink.pieces.map((p) => Buffer.from(p)));
  assert.equal(h.frames.map((f) => f.type), [1, 2]);
  // A refusing sink: nothing of the frame queued, -1.
  const full = new RecordingSink(3);
  assert.is(enc.encodeTo(full, 1, small), -1);
  assert.is(enc.encodeTo(full, 1, large), -1);
  assert.equal(full.pieces, []);
  // Header accepted, value refused: the sink is closing; reported as -1.
  const half = new RecordingSink(50);
  assert.is(enc.encodeTo(half, 1, large), -1);
  throwsCode(() => new LtvEncoder({ copyThreshold: -1 }), ErrorCode.INVALID_OPTION);
});

test('encodeInto coalesces frames into one buffer and refuses what does not fit', () => {
  const enc = new LtvEncoder({ layout: 'cellnet' });
  const target = Buffer.alloc(20);
  let off = enc.encodeInto(target, 0, 1, Buffer.from('ab'));
  off = enc.encodeInto(target, off, 2, Buffer.from('cde'));
  assert.is(off, 13);
  const h = new Harness({ layout: 'cellnet' }).feedAll([target.subarray(0, off)]);
  assert.equal(h.frames.map((f) => [f.type, Buffer.from(f.hex, 'hex').toString()]), [
    [1, 'ab'],
    [2, 'cde'],
  ]);
  const before = Buffer.from(target);
  throwsCode(() => enc.encodeInto(target, 15, 3, Buffer.from('xyz')), ErrorCode.INVALID_VALUE);
  throwsCode(() => enc.encodeInto(target, -1, 3, Buffer.from('x')), ErrorCode.INVALID_VALUE);
  assert.ok(target.equals(before));
});

test('header() gives the header alone; frameLength adds the header size', () => {
  const enc = new LtvEncoder();
  assert.is(enc.header(3, 10).toString('hex'), '0000000a0003');
  assert.is(enc.frameLength(10), 16);
  throwsCode(() => enc.header(3, -1), ErrorCode.INVALID_VALUE);
  throwsCode(() => enc.header(3, 1.5), ErrorCode.INVALID_VALUE);
});

test('property: every valid frame of a random layout encodes to header + value and decodes back', () => {
  fc.assert(
    fc.property(
      layoutArb.chain((layout) =>
        fc.tuple(
          fc.constant(layout),
          fc.integer({ min: 0, max: layout.maxType }),
          fc.uint8Array({ maxLength: Math.min(200, layout.maxValueLength) }),
        ),
      ),
      ([layout, type, value]) => {
        const enc = new LtvEncoder({ layout });
        const frame = enc.encode(type, value);
        assert.is(frame.length, layout.headerBytes + value.length);
        const sink = new RecordingSink();
        enc.encodeTo(sink, type, value);
        assert.ok(Buffer.concat(sink.pieces).equals(frame));
        const h = new Harness({ layout }).feedAll([frame]);
        assert.equal(h.frames, [{ type, hex: Buffer.from(value).toString('hex') }]);
      },
    ),
    { numRuns: 200 },
  );
  assert.is(ltvLayout('netloop').headerBytes, 6);
});

test.run();
