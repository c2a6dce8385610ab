import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { LtvDecoder, RESERVE_START, decodeFrames } from '../../../lib/codec/ltv-decoder.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { ltvLayout } from '../../../lib/codec/ltv-layout.js';
import type { LtvLayout } from '../../../lib/codec/ltv-layout.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { Harness, bytewise, framesArb, layoutArb, presetArb, split, throwsCode } from '../../helpers/ltv.js';
import type { PlainFrame } from '../../helpers/ltv.js';

const FRAMING_CODES = new Set<string>([ErrorCode.FRAME_TOO_LARGE, ErrorCode.FRAME_TOO_SHORT, ErrorCode.UNKNOWN_TYPE]);

function encodeAll(layout: LtvLayout, frames: readonly PlainFrame[]): Buffer {
  const enc = new LtvEncoder({ layout });
  return Buffer.concat(frames.map((f) => enc.encode(f.type, Buffer.from(f.hex, 'hex'))));
}

/** A header for `layout` with a raw declared length and type, written by hand (not by the encoder). */
function header(layout: LtvLayout, declared: number, type = 0): Buffer {
  const h = Buffer.alloc(layout.headerBytes);
  const le = layout.byteOrder === 'LE';
  const put = (off: number, width: number, v: number): void => {
    for (let i = 0; i < width; i++) h[le ? off + i : off + width - 1 - i] = Math.floor(v / 256 ** i) % 256;
  };
  put(layout.lengthOffset, layout.lengthBytes, declared);
  if (layout.typeBytes > 0) put(layout.typeOffset, layout.typeBytes, type);
  return h;
}

// ---------------------------------------------------------------- properties

test('property: decode(encode(x)) == x for every preset, under random chunking', () => {
  fc.assert(
    fc.property(
      presetArb.chain((layout) => fc.tuple(fc.constant(layout), framesArb(layout), fc.array(fc.nat(), { maxLength: 30 }))),
      ([layout, frames, cuts]) => {
        const h = new Harness({ layout }).feedAll(split(encodeAll(layout, frames), cuts));
        assert.is(h.error, null);
        assert.equal(h.frames, frames);
        assert.is(h.decoder.inFrame, false);
      },
    ),
    { numRuns: 150 },
  );
});

test('property: decode(encode(x)) == x for random layouts, identical under any chunking and byte by byte', () => {
  fc.assert(
    fc.property(
      layoutArb.chain((layout) =>
        fc.tuple(fc.constant(layout), framesArb(layout, 120, 12), fc.array(fc.nat(), { maxLength: 40 }), fc.boolean()),
      ),
      ([layout, frames, cuts, copy]) => {
        const bytes = encodeAll(layout, frames);
        const whole = new Harness({ layout, copy }).feedAll([bytes]);
        const cut = new Harness({ layout, copy }).feedAll(split(bytes, cuts));
        const single = new Harness({ layout, copy }).feedAll(bytewise(bytes));
        for (const h of [whole, cut, single]) {
          assert.is(h.error, null);
          assert.equal(h.frames, frames);
          assert.is(h.decoder.bufferedBytes, 0);
          for (const size of h.allocations) assert.ok(size <= layout.maxFrameLength);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('property: arbitrary bytes never throw anything but a coded error, never allocate past the maximum', () => {
  fc.assert(
    fc.property(
      fc.oneof(layoutArb, presetArb),
      fc.uint8Array({ maxLength: 600 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (layout, bytes, cuts) => {
        const registry = new MessageRegistry({ maxId: 0xffffffff });
        registry.register(0, 'zero');
        registry.register(1, 'one');
        for (const isKnownType of [null, registry.isKnownType]) {
          const h = new Harness({ layout, isKnownType }).feedAll(split(Buffer.from(bytes), cuts));
          if (h.error !== null) {
            assert.ok(isNetloopError(h.error), String(h.error));
            assert.ok(FRAMING_CODES.has(h.error.code), h.error.code);
            // The failed state sticks.
            assert.is(throwsCode(() => h.decoder.feed(Buffer.from([0])), h.error.code), h.error);
            assert.is(h.decoder.bufferedBytes, 0);
          }
          for (const size of h.allocations) assert.ok(size <= layout.maxFrameLength, `allocated ${size}`);
          assert.ok(h.decoder.bufferedBytes <= layout.maxFrameLength);
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ------------------------------------ faults.test.ts item 1, in the codec alone

test('item 1: length 0 is an empty value; cellnet length 0 is too short (it must count the type)', () => {
  const netloop = ltvLayout('netloop');
  const h = new Harness({ layout: netloop }).feedAll([header(netloop, 0, 7)]);
  assert.is(h.error, null);
  assert.equal(h.frames, [{ type: 7, hex: '' }]);
  assert.equal(h.allocations, []);

  const cellnet = ltvLayout('cellnet');
  const c = new Harness({ layout: cellnet }).feedAll([header(cellnet, 0, 7)]);
  const err = throwsCode(() => {
    throw c.error;
  }, ErrorCode.FRAME_TOO_SHORT);
  assert.equal(err.details, { declared: 0, min: 2 });
  // Length 2 is exactly the type: an empty value.
  assert.equal(new Harness({ layout: cellnet }).feedAll([header(cellnet, 2, 7)]).frames, [{ type: 7, hex: '' }]);
});

test('item 1: a frame of exactly maxFrameLength is accepted, in one chunk and cut', () => {
  for (const preset of ['netloop', 'cellnet', 'muduo', 'pomelo'] as const) {
    const layout = ltvLayout({ preset, maxFrameLength: 1000 });
    const value = Buffer.alloc(1000 - layout.headerBytes, 0x5a);
    const bytes = new LtvEncoder({ layout }).encode(layout.typeBytes === 0 ? 0 : 3, value);
    assert.is(bytes.length, 1000);
    for (const chunks of [[bytes], split(bytes, [1, 500, 999])]) {
      const h = new Harness({ layout }).feedAll(chunks);
      assert.is(h.error, null, preset);
      assert.is(h.values.length, 1);
      assert.ok(h.values[0]!.equals(value));
    }
  }
});

test('item 1: max + 1 is FRAME_TOO_LARGE from the header alone, reporting the declared size, nothing allocated', () => {
  const layout = ltvLayout({ preset: 'netloop', maxFrameLength: 1000 });
  const declared = 1000 - 6 + 1;
  // Only the header arrives: the error must not wait for the value.
  const h = new Harness({ layout }).feedAll(bytewise(header(layout, declared, 1)));
  const err = throwsCode(() => {
    throw h.error;
  }, ErrorCode.FRAME_TOO_LARGE);
  assert.equal(err.details, { declared, frameLength: 1001, max: 1000 });
  // The split header is held without allocating.
  assert.equal(h.allocations, []);
  assert.is(h.decoder.inFrame, false);
});

test('item 1: length 0xFFFFFFFF and lengths with the high bit set are huge, never negative', () => {
  const muduo = ltvLayout('muduo');
  for (const declared of [0xffffffff, 0x80000000, 0x80000001, 0xfffffffe]) {
    for (const layout of [muduo, ltvLayout({ preset: 'muduo', byteOrder: 'LE' }), ltvLayout('netloop')]) {
      const h = new Harness({ layout }).feedAll([Buffer.concat([header(layout, declared, 1), Buffer.alloc(16)])]);
      const err = throwsCode(() => {
        throw h.error;
      }, ErrorCode.FRAME_TOO_LARGE);
      assert.is(err.details.declared, declared);
      assert.ok((err.details.declared as number) > 0);
      assert.equal(h.frames, []);
      assert.equal(h.allocations, []);
    }
  }
  // muduo's own bound: 65,536 is the largest length it accepts.
  assert.is(new Harness({ layout: muduo }).feedAll([header(muduo, 65536), Buffer.alloc(65536)]).values.length, 1);
  const over = new Harness({ layout: muduo }).feedAll([header(muduo, 65537)]);
  assert.is((over.error as { code: string }).code, ErrorCode.FRAME_TOO_LARGE);
});

// ------------------------------------------------ item 2

test('item 2: a length smaller than the header it includes is FRAME_TOO_SHORT', () => {
  const layout = ltvLayout({ lengthBytes: 4, typeBytes: 2, lengthIncludesLength: true, lengthIncludesType: true });
  assert.is(layout.adjustment, 6);
  for (let declared = 0; declared < 6; declared++) {
    const h = new Harness({ layout }).feedAll([header(layout, declared, 1), Buffer.alloc(8)]);
    const err = throwsCode(() => {
      throw h.error;
    }, ErrorCode.FRAME_TOO_SHORT);
    assert.equal(err.details, { declared, min: 6 });
  }
  // Exactly the header: an empty value.
  assert.equal(new Harness({ layout }).feedAll([header(layout, 6, 9)]).frames, [{ type: 9, hex: '' }]);
  // Frames before the bad one are still delivered, in order.
  const good = new LtvEncoder({ layout }).encode(2, Buffer.from('ok'));
  const h = new Harness({ layout }).feedAll([Buffer.concat([good, good, header(layout, 3, 1)])]);
  assert.is(h.frames.length, 2);
  assert.is((h.error as { code: string }).code, ErrorCode.FRAME_TOO_SHORT);
});

// ------------------------------------------------ item 3

test('item 3: the same stream cut at every offset, and byte by byte, decodes identically', () => {
  for (const preset of ['netloop', 'cellnet', 'muduo', 'pomelo'] as const) {
    const layout = ltvLayout(preset);
    const t = layout.typeBytes === 0 ? () => 0 : (i: number) => (i * 37) % (layout.maxType + 1);
    const frames: PlainFrame[] = [0, 1, 2, 5, 13, 64, 200].map((n, i) => ({
      type: t(i),
      hex: Buffer.alloc(n, i + 1).toString('hex'),
    }));
    const bytes = encodeAll(layout, frames);
    for (let k = 0; k <= bytes.length; k++) {
      const h = new Harness({ layout }).feedAll([bytes.subarray(0, k), bytes.subarray(k)]);
      assert.equal(h.frames, frames, `${preset} cut at ${k}`);
    }
    assert.equal(new Harness({ layout }).feedAll(bytewise(bytes)).frames, frames);
  }
});

// ------------------------------------------------ item 4

test('item 4: many frames and a partial one in one chunk', () => {
  const layout = ltvLayout('netloop');
  const enc = new LtvEncoder({ layout });
  const frames = Array.from({ length: 100 }, (_, i) => enc.encode(i, Buffer.alloc(i, i)));
  const last = enc.encode(999, Buffer.alloc(5000, 0xee));
  const chunk = Buffer.concat([...frames, last.subarray(0, 1234)]);
  const h = new Harness({ layout }).feedAll([chunk]);
  assert.is(h.frames.length, 100);
  assert.ok(h.frames.every((f, i) => f.type === i && f.hex === Buffer.alloc(i, i).toString('hex')));
  assert.is(h.decoder.inFrame, true);
  assert.is(h.decoder.bufferedBytes, 1234 - 6);
  // Exactly one buffer, at the value's exact declared length.
  assert.equal(h.allocations, [5000]);
  h.feedAll([last.subarray(1234, 3000), last.subarray(3000)]);
  assert.is(h.frames.length, 101);
  assert.equal(h.frames[100], { type: 999, hex: Buffer.alloc(5000, 0xee).toString('hex') });
  assert.is(h.decoder.inFrame, false);
  assert.equal(h.allocations, [5000]);
});

// ------------------------------------------------ item 5

test('item 5: an unknown type is UNKNOWN_TYPE from the header, before its value is buffered', () => {
  const registry = new MessageRegistry();
  registry.register(1, 'known', 'utf8');
  const layout = ltvLayout('netloop');
  const enc = new LtvEncoder({ layout });
  const bytes = Buffer.concat([enc.encode(1, Buffer.from('hi')), enc.encode(2, Buffer.alloc(50_000))]);
  const h = new Harness({ layout, isKnownType: registry.isKnownType }).feedAll([bytes.subarray(0, 20)]);
  assert.equal(h.frames, [{ type: 1, hex: Buffer.from('hi').toString('hex') }]);
  const err = throwsCode(() => {
    throw h.error;
  }, ErrorCode.UNKNOWN_TYPE);
  assert.equal(err.details, { type: 2 });
  assert.equal(h.allocations, []);
  // The same when the header itself is split.
  const s = new Harness({ layout, isKnownType: registry.isKnownType }).feedAll(bytewise(bytes.subarray(8, 20)));
  assert.is((s.error as { code: string }).code, ErrorCode.UNKNOWN_TYPE);
  assert.equal(s.allocations, []);
});

// ------------------------------------------------ item 6

test('item 6: random bytes end in a coded error or partial frame, within the limit', () => {
  // A fixed pseudo-random stream, so this named case is reproducible; the property above covers the rest.
  const rand = fc.sample(fc.uint8Array({ minLength: 4096, maxLength: 4096 }), { numRuns: 1, seed: 42 })[0]!;
  for (const preset of ['netloop', 'cellnet', 'muduo', 'pomelo'] as const) {
    const layout = ltvLayout(preset);
    const h = new Harness({ layout }).feedAll(split(Buffer.from(rand), [100, 1000, 3000]));
    if (h.error !== null) assert.ok(FRAMING_CODES.has((h.error as { code: string }).code));
    for (const size of h.allocations) assert.ok(size <= layout.maxFrameLength);
  }
});

test('item 6: a NUL then a flood (desync) is refused or bounded by the limit', () => {
  const flood = (byte: number): Buffer[] => [Buffer.from([0]), ...Array.from({ length: 64 }, () => Buffer.alloc(16384, byte))];
  // 00 FF FF FF declares 16 MiB - 1 bytes: over netloop's 16 MiB - 6 value limit.
  const h = new Harness({ layout: 'netloop' }).feedAll(flood(0xff));
  assert.is((h.error as { code: string }).code, ErrorCode.FRAME_TOO_LARGE);
  assert.is((h.error as { details: { declared: number } }).details.declared, 0xffffff);
  assert.equal(h.allocations, []);
  // A flood that declares a length within the limit waits for it, holding at most that much.
  const small = ltvLayout({ preset: 'netloop', maxFrameLength: 64 * 1024 });
  const a = new Harness({ layout: small }).feedAll(flood(0x41));
  assert.is((a.error as { code: string }).code, ErrorCode.FRAME_TOO_LARGE);
  const cellnet = ltvLayout('cellnet');
  const c = new Harness({ layout: cellnet }).feedAll(flood(0x41));
  // 00 41 (LE) declares 16,640 bytes: frames of type 0x4141 keep coming, each within the limit.
  assert.is(c.error, null);
  assert.ok(c.frames.length > 0);
  assert.ok(c.frames.every((f) => f.type === 0x4141));
  for (const size of c.allocations) assert.ok(size <= cellnet.maxFrameLength);
});

// ------------------------------------------------ zero copy, copy mode, raw handler

test('values inside one chunk are views of it; a frame spanning chunks is handed out in a buffer of its exact length', () => {
  const layout = ltvLayout('netloop');
  const enc = new LtvEncoder({ layout });
  const chunk = Buffer.concat([enc.encode(1, Buffer.from('abc')), enc.encode(2, Buffer.from('defg'))]);
  const h = new Harness({ layout }).feedAll([chunk]);
  assert.is(h.values.length, 2);
  for (const v of h.values) assert.is(v.buffer, chunk.buffer);
  assert.is(h.values[1]!.byteOffset, chunk.byteOffset + 9 + 6);
  assert.equal(h.allocations, []);

  // 1 MiB in 1 KiB chunks (each too small to keep a view of): copied into segments that
  // double from RESERVE_START, not concatenated per chunk, then once into one buffer of
  // the value's exact length.
  const big = enc.encode(3, Buffer.alloc(1 << 20, 7));
  const cuts = Array.from({ length: 1024 }, (_, i) => i * 1024 + 7);
  const b = new Harness({ layout }).feedAll(split(big, cuts));
  assert.equal(b.allocations, [16, 16, 32, 64, 128, 256, 512, 1024].map((k) => k * 1024));
  assert.is(b.values[0]!.length, 1 << 20);
  assert.ok(b.values[0]!.equals(Buffer.alloc(1 << 20, 7)));
  // In 64 KiB chunks it is held as views of them: one allocation, the value, when it completes.
  const chunks64 = split(big, Array.from({ length: 16 }, (_, i) => (i + 1) * 65536));
  const v = new Harness({ layout }).feedAll(chunks64);
  assert.equal(v.allocations, [1 << 20]);
  assert.ok(v.values[0]!.equals(Buffer.alloc(1 << 20, 7)));
  // Unless the chunks may be reused by their producer: then they are copied as they come,
  // into segments that double (65530, 65536, 131066, ...), then into the value.
  const r = new Harness({ layout, retainChunks: false }).feedAll(chunks64);
  assert.equal(r.allocations.slice(0, 3), [65530, 65536, 131066]);
  assert.ok(r.allocations.length <= 8);
  assert.is(r.allocations.reduce((a, n) => a + n, 0), 2 << 20, 'segments hold the value once, the value once more');
  assert.is(r.allocations.at(-1), 1 << 20);
  assert.ok(r.values[0]!.equals(Buffer.alloc(1 << 20, 7)));

  // A split header whose value then lies inside the next chunk: still a view of that chunk.
  const frame = enc.encode(4, Buffer.from('view'));
  const second = frame.subarray(3);
  const s = new Harness({ layout }).feedAll([frame.subarray(0, 3), second]);
  assert.is(s.values[0]!.buffer, second.buffer);
  assert.equal(s.allocations, []);
});

// ------------------------------------------------ memory follows bytes received

test('a header declaring 16 MiB and a few bytes reserve RESERVE_START, not 16 MiB', () => {
  const MiB16 = 16 * 1024 * 1024;
  const layout = ltvLayout({ preset: 'netloop', maxFrameLength: MiB16 });
  for (const options of [{}, { copy: true }, { retainChunks: true }, { retainChunks: false }]) {
    const h = new Harness({ layout, ...options });
    h.decoder.feed(header(layout, MiB16 - 6, 1));
    // The header alone: the value is started, and nothing is set aside for it.
    assert.is(h.decoder.inFrame, true);
    assert.equal([h.decoder.bufferedBytes, h.decoder.reservedBytes], [0, 0]);
    h.decoder.feed(Buffer.from('a few bytes'));
    assert.is(h.decoder.bufferedBytes, 11);
    assert.is(h.decoder.reservedBytes, RESERVE_START);
    // What was allocated, through the seam: one segment of RESERVE_START (16 KiB), far from the 16 MiB claimed.
    assert.equal(h.allocations, [RESERVE_START]);
    h.decoder.feed(Buffer.alloc(RESERVE_START - 11));
    assert.equal([h.decoder.bufferedBytes, h.decoder.reservedBytes], [RESERVE_START, RESERVE_START]);
  }
  assert.ok(RESERVE_START <= 64 * 1024);
  // The same with the header cut in two: a held header reserves nothing.
  const cut = new Harness({ layout });
  cut.decoder.feed(header(layout, MiB16 - 6, 1).subarray(0, 3));
  assert.is(cut.decoder.bufferedBytes, 3);
  assert.is(cut.decoder.reservedBytes, 0);
  cut.decoder.feed(Buffer.concat([header(layout, MiB16 - 6, 1).subarray(3), Buffer.from('xyz')]));
  assert.equal([cut.decoder.bufferedBytes, cut.decoder.reservedBytes], [3, RESERVE_START]);
  assert.equal(cut.allocations, [RESERVE_START]);
  // Reset releases the reservation.
  cut.decoder.reset();
  assert.equal([cut.decoder.bufferedBytes, cut.decoder.reservedBytes, cut.decoder.inFrame], [0, 0, false]);
});

test('a large value is reserved as its bytes arrive: at most twice them, O(n) bytes allocated and copied', () => {
  // An odd length (not a power of two) in chunks of random sizes, small and large, in every mode.
  const length = 3_000_017;
  const value = Buffer.alloc(length);
  for (let i = 0; i < length; i++) value[i] = (i * 31 + 7) & 0xff;
  const layout = ltvLayout({ preset: 'netloop', maxFrameLength: 4 * 1024 * 1024 });
  const bytes = new LtvEncoder({ layout }).encode(9, value);
  for (const [max, options] of [
    [200_000, {}],
    [200_000, { retainChunks: false }],
    [9_000, {}],
    [9_000, { copy: true }],
  ] as const) {
    const sizes = fc.sample(fc.integer({ min: 1, max }), { numRuns: 2000, seed: 7 });
    const h = new Harness({ layout, ...options });
    let off = 0;
    for (let i = 0; off < bytes.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, bytes.length - off);
      h.decoder.feed(bytes.subarray(off, off + n));
      off += n;
      if (!h.decoder.inFrame) break;
      const { bufferedBytes: held, reservedBytes: reserved } = h.decoder;
      const what = `${JSON.stringify(options)}: reserved ${reserved} for ${held} bytes held`;
      assert.ok(reserved >= held, what);
      // At most what arrived, plus the room of one segment (no larger than what arrived, or RESERVE_START).
      assert.ok(reserved <= held + Math.max(held, RESERVE_START), what);
    }
    assert.is(h.frames.length, 1);
    assert.is(h.values[0]!.length, length);
    assert.ok(h.values[0]!.equals(value));
    // Segments are filled in order and never reach past the value, so together they hold
    // at most its length; the value's own buffer is the last allocation. So at most twice
    // the value is allocated, and each byte is copied at most twice. A buffer grown by one
    // chunk at a time (or a concatenation per chunk) would fail this.
    const total = h.allocations.reduce((a, b) => a + b, 0);
    assert.ok(total <= 2 * length, `${JSON.stringify(options)}: allocated ${total} bytes for a ${length}-byte value`);
    assert.is(h.allocations.at(-1), length);
    // Segments double: a few dozen allocations at most, not one per chunk.
    assert.ok(h.allocations.length < 40, `${h.allocations.length} allocations`);
    assert.is(h.decoder.reservedBytes, 0);
  }
});

test('property: large values cut anywhere decode intact as views or copies; a producer that reuses its chunk is safe unless retainChunks', () => {
  const layout = ltvLayout({ preset: 'netloop', maxFrameLength: 1 << 20 });
  const enc = new LtvEncoder({ layout });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 30 }),
      (specs, sizes) => {
        const values = specs.map(([n, seed]) => {
          const v = Buffer.allocUnsafe(n);
          for (let i = 0; i < n; i++) v[i] = (i * 7 + seed) & 0xff;
          return v;
        });
        const stream = Buffer.concat(values.map((v, i) => enc.encode(i, v)));
        const chunks: Buffer[] = [];
        for (let off = 0, i = 0; off < stream.length; i++) {
          const n = sizes[i % sizes.length]!;
          chunks.push(stream.subarray(off, off + n));
          off += n;
        }
        // Chunks that stay as they are: views are kept where they may be.
        const kept = new Harness({ layout }).feedAll(chunks);
        assert.is(kept.error, null);
        assert.equal(kept.values.length, values.length);
        kept.values.forEach((v, i) => assert.ok(v.equals(values[i]!), `value ${i} (views)`));
        // One scratch buffer, rewritten after every feed: with retainChunks false, or in raw
        // mode (copying the value in the handler), nothing the decoder kept is damaged.
        const scratch = Buffer.alloc(70_000);
        const reused = new Harness({ layout, copy: true });
        const raw: Buffer[] = [];
        const rawDecoder = new LtvDecoder({ layout, onRawFrame: (_t, src, a, b) => void raw.push(Buffer.from(src.subarray(a, b))) });
        for (const c of chunks) {
          c.copy(scratch);
          reused.decoder.feed(scratch.subarray(0, c.length));
          scratch.fill(0xee);
          c.copy(scratch);
          rawDecoder.feed(scratch.subarray(0, c.length));
          scratch.fill(0xdd);
        }
        reused.values.forEach((v, i) => assert.ok(v.equals(values[i]!), `value ${i} (copy mode, reused chunk)`));
        raw.forEach((v, i) => assert.ok(v.equals(values[i]!), `value ${i} (raw mode, reused chunk)`));
        assert.equal([reused.values.length, raw.length], [values.length, values.length]);
      },
    ),
    { numRuns: 60 },
  );
});

test('copy mode hands out buffers of their own', () => {
  const layout = ltvLayout('cellnet');
  const enc = new LtvEncoder({ layout });
  const chunk = Buffer.concat([enc.encode(1, Buffer.from('abc')), enc.encode(2, Buffer.from('defg'))]);
  const h = new Harness({ layout, copy: true }).feedAll([chunk]);
  assert.equal(h.allocations, [3, 4]);
  chunk.fill(0);
  assert.equal(h.values.map((v) => v.toString()), ['abc', 'defg']);
  // A spanning frame is not copied twice.
  const c = new Harness({ layout, copy: true }).feedAll(bytewise(enc.encode(9, Buffer.from('xyz'))));
  assert.equal(c.allocations, [3]);
  assert.equal(c.frames, [{ type: 9, hex: Buffer.from('xyz').toString('hex') }]);
});

test('the raw handler gets (type, source, start, end) with no view created', () => {
  const layout = ltvLayout('netloop');
  const enc = new LtvEncoder({ layout });
  const chunk = Buffer.concat([enc.encode(1, Buffer.from('abc')), enc.encode(2, Buffer.from('de'))]);
  const seen: Array<[number, boolean, number, number]> = [];
  const d = new LtvDecoder({ layout, onRawFrame: (type, source, start, end) => seen.push([type, source === chunk, start, end]) });
  d.feed(chunk.subarray(0, 4));
  d.feed(chunk.subarray(4));
  assert.equal(seen.slice(1), [[2, false, 15 - 4, 17 - 4]]);
  assert.equal(seen[0]!.slice(0, 1), [1]);
  const whole: Array<[number, boolean, number, number]> = [];
  new LtvDecoder({ layout, onRawFrame: (t, s, a, b) => whole.push([t, s === chunk, a, b]) }).feed(chunk);
  assert.equal(whole, [
    [1, true, 6, 9],
    [2, true, 15, 17],
  ]);
  // A spanning value arrives as its own buffer, start 0.
  let raw: [number, number, number] | null = null;
  const r = new LtvDecoder({ layout, onRawFrame: (t, s, a, b) => (raw = [t, a, b - s.length]) });
  for (const piece of bytewise(enc.encode(5, Buffer.from('hello')))) r.feed(piece);
  assert.equal(raw, [5, 0, 0]);
});

// ------------------------------------------------ failure, handlers, options

test('a throwing handler propagates once, then the decoder is failed with HANDLER_ERROR', () => {
  const boom = new Error('boom');
  let calls = 0;
  const d = new LtvDecoder({
    layout: 'netloop',
    onFrame: () => {
      calls++;
      throw boom;
    },
  });
  const enc = new LtvEncoder();
  const two = Buffer.concat([enc.encode(1, Buffer.from('a')), enc.encode(1, Buffer.from('b'))]);
  try {
    d.feed(two);
    assert.unreachable('should throw');
  } catch (err) {
    assert.is(err, boom);
  }
  assert.is(calls, 1);
  const err = throwsCode(() => d.feed(two), ErrorCode.HANDLER_ERROR);
  assert.is(err.cause, boom);
  d.reset();
  assert.is(d.error, null);
  assert.throws(() => d.feed(two), (e: unknown) => e === boom);
});

test('reset drops a partial frame; Uint8Array chunks are accepted; other chunks are INVALID_VALUE', () => {
  const layout = ltvLayout('netloop');
  const h = new Harness({ layout });
  const frame = new LtvEncoder({ layout }).encode(1, Buffer.from('abcdef'));
  h.decoder.feed(frame.subarray(0, 8));
  assert.is(h.decoder.inFrame, true);
  h.decoder.reset();
  assert.is(h.decoder.inFrame, false);
  h.decoder.feed(new Uint8Array(frame));
  assert.equal(h.frames, [{ type: 1, hex: Buffer.from('abcdef').toString('hex') }]);
  throwsCode(() => h.decoder.feed('text' as unknown as Buffer), ErrorCode.INVALID_VALUE);
});

test('constructor options are validated', () => {
  throwsCode(() => new LtvDecoder({}), ErrorCode.INVALID_OPTION);
  throwsCode(() => new LtvDecoder({ onFrame: () => {}, onRawFrame: () => {} }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new LtvDecoder({ onFrame: 5 as never }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new LtvDecoder({ onFrame: () => {}, allocate: 'x' as never }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new LtvDecoder({ onFrame: () => {}, retainChunks: 'yes' as never }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new LtvDecoder({ onFrame: () => {}, layout: { lengthBytes: 5 as never } }), ErrorCode.INVALID_OPTION);
  assert.is(new LtvDecoder({ onFrame: () => {} }).layout.maxFrameLength, 16 * 1024 * 1024);
  const layout = ltvLayout('cellnet');
  assert.is(new LtvDecoder({ onFrame: () => {}, layout }).layout, layout);
});

test('decodeFrames gives the object form', () => {
  const enc = new LtvEncoder({ layout: 'muduo' });
  const frames = decodeFrames(Buffer.concat([enc.encode(0, Buffer.from('x')), enc.encode(0, Buffer.from('yz'))]), {
    layout: 'muduo',
  });
  assert.equal(
    frames.map((f) => [f.type, f.value.toString()]),
    [
      [0, 'x'],
      [0, 'yz'],
    ],
  );
});

test('an idle decoder holds no buffer between frames', () => {
  const h = new Harness({ layout: 'netloop' });
  const frame = new LtvEncoder().encode(1, Buffer.alloc(100));
  for (let i = 0; i < 10; i++) h.decoder.feed(frame);
  assert.is(h.decoder.inFrame, false);
  assert.is(h.decoder.bufferedBytes, 0);
  assert.equal(h.allocations, []);
});

test.run();
