/**
 * Shared helpers for the LTV codec tests: fast-check arbitraries for layouts,
 * frames and chunkings, and a decoder harness that records every frame and
 * every allocation.
 */

import * as fc from 'fast-check';
import * as assert from 'uvu/assert';
import { isNetloopError } from '../../lib/core/errors.js';
import { LtvDecoder } from '../../lib/codec/ltv-decoder.js';
import type { LtvDecoderOptions } from '../../lib/codec/ltv-decoder.js';
import { ltvLayout } from '../../lib/codec/ltv-layout.js';
import type { LtvLayout, LtvLayoutOptions } from '../../lib/codec/ltv-layout.js';

/** A frame as plain data, comparable with `assert.equal`. */
export interface PlainFrame {
  type: number;
  hex: string;
}

/** Asserts `fn` throws a NetloopError with `code`; returns it. */
export function throwsCode(fn: () => unknown, code: string): { code: string; details: Record<string, unknown>; cause?: unknown } {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err), `expected a NetloopError ${code}, got ${String(err)}`);
    assert.is((err as { code: string }).code, code);
    return err as { code: string; details: Record<string, unknown> };
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

/**
 * Strings of any code points, lone surrogates included (up to `maxLength`
 * of them): what `fc.string({ unit: 'binary' })` draws, without the table of
 * every code point that arbitrary builds on first use (over a million
 * entries: most of a second of CPU in each test file that uses it).
 */
export function anyTextArb(maxLength = 10): fc.Arbitrary<string> {
  return fc.array(fc.integer({ min: 0, max: 0x10ffff }), { maxLength }).map((codePoints) => String.fromCodePoint(...codePoints));
}

/** Random layout options covering every width, order and inclusion, with a small maxFrameLength. */
export const layoutArb: fc.Arbitrary<LtvLayout> = fc
  .record({
    lengthBytes: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
    typeBytes: fc.constantFrom(0 as const, 1 as const, 2 as const, 4 as const),
    byteOrder: fc.constantFrom('BE' as const, 'LE' as const),
    fieldOrder: fc.constantFrom('length-type' as const, 'type-length' as const),
    lengthIncludesType: fc.boolean(),
    lengthIncludesLength: fc.boolean(),
    extra: fc.integer({ min: 0, max: 400 }),
  })
  .map(({ extra, ...opts }) => {
    const probe = ltvLayout(opts as LtvLayoutOptions);
    // Keep frames small so the properties run fast, within what the length field expresses.
    return ltvLayout({ ...opts, maxFrameLength: Math.min(probe.maxFrameLength, probe.headerBytes + extra) });
  });

/** The presets, as layouts. */
export const presetArb: fc.Arbitrary<LtvLayout> = fc
  .constantFrom('netloop' as const, 'cellnet' as const, 'muduo' as const, 'pomelo' as const)
  .map((preset) => ltvLayout(preset));

/** Frames valid for `layout` (values capped at `maxValue` bytes to stay fast). */
export function framesArb(layout: LtvLayout, maxValue = 300, maxFrames = 20): fc.Arbitrary<PlainFrame[]> {
  return fc.array(
    fc.record({
      type: fc.integer({ min: 0, max: layout.maxType }),
      value: fc.uint8Array({ maxLength: Math.min(maxValue, layout.maxValueLength) }),
    }),
    { maxLength: maxFrames },
  ).map((list) => list.map((f) => ({ type: f.type, hex: Buffer.from(f.value).toString('hex') })));
}

/** Cut points: split `bytes` at the given offsets (taken modulo its length, sorted, deduplicated). */
export function split(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [bytes];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** A decoder that records frames, allocations and the error it failed with. */
export class Harness {
  readonly frames: PlainFrame[] = [];
  readonly values: Buffer[] = [];
  readonly allocations: number[] = [];
  readonly decoder: LtvDecoder;
  error: unknown = null;

  constructor(options: Omit<LtvDecoderOptions, 'onFrame' | 'onRawFrame' | 'allocate'> = {}) {
    this.decoder = new LtvDecoder({
      ...options,
      allocate: (size) => {
        this.allocations.push(size);
        return Buffer.alloc(size);
      },
      onFrame: (type, value) => {
        this.frames.push({ type, hex: value.toString('hex') });
        this.values.push(value);
      },
    });
  }

  /** Feeds every chunk until one throws; records that error. Returns this. */
  feedAll(chunks: readonly Buffer[]): this {
    for (const chunk of chunks) {
      try {
        this.decoder.feed(chunk);
      } catch (err) {
        this.error = err;
        return this;
      }
    }
    return this;
  }
}

/** The byte at a time chunking of `bytes`. */
export function bytewise(bytes: Buffer): Buffer[] {
  return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
}
