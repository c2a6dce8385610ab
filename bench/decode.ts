/**
 * Decode and dispatch: nanoseconds per frame for netloop's LTV decoder beside,
 * in the same run, a naive decoder (`Buffer.concat` on every chunk, the usual
 * hand-written one) and two npm length-prefix decoders.
 *
 * netloop is measured twice: with `onFrame(type, value)`, which creates a
 * Buffer view per frame (what most handlers use), and with the fast path
 * `onRawFrame(type, source, start, end)`, which creates none. Both may keep
 * views of the chunks while a frame cut across them arrives (`retainChunks`,
 * the default with `onFrame`; the framing layer sets it for its raw decoder,
 * as Node never reuses a `'data'` chunk): the chunks here are never rewritten.
 *
 * Payloads: 64-byte values, fed
 * - in socket-like chunks (sizes drawn from 1 B to 64 KiB),
 * - in small chunks (1 to 256 B),
 * - one frame per chunk;
 * plus one 16 MiB value fed in 64 KiB chunks (milliseconds per frame), which
 * shows whether a decoder's cost is linear in the frame size.
 *
 * netloop and the naive decoder read the `netloop` preset (uint32 BE length,
 * uint16 BE type: a 6-byte header). `it-length-prefixed` and
 * `length-prefixed-stream` only speak an unsigned varint length prefix (one
 * byte for a 64-byte value, three for 16 MiB), so they get the same values
 * encoded in their own format and cut by the same sequence of chunk sizes: a
 * slightly shorter stream than netloop's, a format difference that favours
 * them a little. Each handler receives the value as bytes and reads its
 * length; `it-length-prefixed` yields a `Uint8ArrayList`, flattened with
 * `subarray()` (a copy only when the value spans chunks).
 *
 * Chunk sizes come from a seeded PRNG, so every run and every decoder sees the
 * same chunks. Each figure is the median of repeated runs, implementations
 * interleaved within each run, after a warm-up pass. (Forcing a full garbage
 * collection before each run was tried and rejected: it slows every decoder
 * that follows it, netloop's most, and no server runs that way.) The
 * large-frame figures depend on how fast the system hands out 16 MiB of fresh
 * memory, which varies a lot on a shared machine: they take more runs.
 *
 * Standalone: `node dist/bench/decode.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';
import { decode as lpDecode, encode as lpEncode } from 'it-length-prefixed';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { isMain } from './processes.js';
import { LtvDecoder } from '../lib/codec/ltv-decoder.js';
import { LtvEncoder } from '../lib/codec/ltv-encoder.js';
import { ltvLayout } from '../lib/codec/ltv-layout.js';

const require = createRequire(import.meta.url);
/** `length-prefixed-stream` ships CommonJS without types: its decoder is a Transform stream. */
const lps = require('length-prefixed-stream') as { decode(options?: { limit?: number }): Transform };

const PLAN = {
  full: { frames: 200_000, runs: 7, largeRuns: 9 },
  quick: { frames: 40_000, runs: 3, largeRuns: 5 },
};
const VALUE_BYTES = 64;
const LARGE_BYTES = 16 * 1024 * 1024;
const LARGE_CHUNK = 64 * 1024;
const SEED = 0x6e65746c; // "netl"

/** A small seeded PRNG (mulberry32): the same chunk sizes in every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `stream` into chunks whose sizes are drawn uniformly from [min, max] by a seeded PRNG. */
export function cut(stream: Buffer, min: number, max: number, seed: number): Buffer[] {
  const rand = prng(seed);
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; ) {
    const size = min + Math.floor(rand() * (max - min + 1));
    chunks.push(stream.subarray(off, Math.min(stream.length, off + size)));
    off += size;
  }
  return chunks;
}

/** Cuts `stream` at the given frame sizes: one frame per chunk. */
function perFrame(stream: Buffer, frameBytes: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += frameBytes) chunks.push(stream.subarray(off, off + frameBytes));
  return chunks;
}

/** What every handler does with a frame: count it and read its length, so nothing is optimised away. */
class Sink {
  frames = 0;
  bytes = 0;
  onFrame = (_type: number, value: Uint8Array): void => {
    this.frames++;
    this.bytes += value.length;
  };
  onRawFrame = (_type: number, _source: Uint8Array, start: number, end: number): void => {
    this.frames++;
    this.bytes += end - start;
  };
}

/** The decoder most hand-written servers start with: concatenate every chunk, then slice frames off the front. */
export function naiveDecode(chunks: readonly Buffer[], onFrame: (type: number, value: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  for (const chunk of chunks) {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 6) {
      const length = buf.readUInt32BE(0);
      if (buf.length < 6 + length) break;
      onFrame(buf.readUInt16BE(4), buf.subarray(6, 6 + length));
      buf = buf.subarray(6 + length);
    }
  }
}

type Impl = 'netloop' | 'netloop-raw' | 'naive' | 'it-length-prefixed' | 'length-prefixed-stream';
type Baseline = Exclude<Impl, 'netloop' | 'netloop-raw'>;
const BASELINES: readonly Baseline[] = ['naive', 'it-length-prefixed', 'length-prefixed-stream'];

/** One workload: the same values as netloop chunks and as varint-prefixed chunks. */
interface Workload {
  name: string;
  frames: number;
  ltv: Buffer[];
  varint: Buffer[];
  maxFrameLength: number;
}

/** Runs one implementation over one workload; resolves with elapsed nanoseconds. */
async function timeOnce(impl: Impl, w: Workload): Promise<number> {
  const sink = new Sink();
  const t0 = process.hrtime.bigint();
  switch (impl) {
    case 'netloop': {
      const decoder = new LtvDecoder({ layout: { preset: 'netloop', maxFrameLength: w.maxFrameLength }, onFrame: sink.onFrame });
      for (const chunk of w.ltv) decoder.feed(chunk);
      break;
    }
    case 'netloop-raw': {
      const decoder = new LtvDecoder({
        layout: { preset: 'netloop', maxFrameLength: w.maxFrameLength },
        onRawFrame: sink.onRawFrame,
        retainChunks: true,
      });
      for (const chunk of w.ltv) decoder.feed(chunk);
      break;
    }
    case 'naive':
      naiveDecode(w.ltv, sink.onFrame);
      break;
    case 'it-length-prefixed':
      for (const list of lpDecode(w.varint, { maxDataLength: w.maxFrameLength })) sink.onFrame(0, list.subarray());
      break;
    case 'length-prefixed-stream': {
      const decoder = lps.decode({ limit: w.maxFrameLength });
      decoder.on('data', (value: Buffer) => sink.onFrame(0, value));
      const ended = new Promise<void>((resolve, reject) => {
        decoder.on('end', resolve);
        decoder.on('error', reject);
      });
      for (const chunk of w.varint) decoder.write(chunk);
      decoder.end();
      await ended;
      break;
    }
  }
  const elapsed = Number(process.hrtime.bigint() - t0);
  if (sink.frames !== w.frames) throw new Error(`${impl} decoded ${sink.frames} frames of ${w.frames} in ${w.name}`);
  return elapsed;
}

/**
 * The workloads, each built only when it runs, so that no workload's chunks
 * (hundreds of thousands of small Buffers) are alive while another is timed:
 * a large live heap makes every garbage collection, and so the large-frame
 * figure, slower.
 */
function workloads(frames: number): Array<() => Workload> {
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const max = ltvLayout('netloop').maxFrameLength;
  const streams = (): { ltv: Buffer; varint: Buffer } => {
    const encoder = new LtvEncoder({ layout: 'netloop' });
    const varintFrame = Buffer.from(lpEncode.single(value).subarray());
    return {
      ltv: Buffer.concat(Array.from({ length: frames }, (_, i) => encoder.encode(i & 0xffff, value))),
      varint: Buffer.concat(Array.from({ length: frames }, () => varintFrame)),
    };
  };
  return [
    () => {
      const { ltv, varint } = streams();
      return { name: 'socket-like', frames, ltv: cut(ltv, 1, 65536, SEED), varint: cut(varint, 1, 65536, SEED), maxFrameLength: max };
    },
    () => {
      const { ltv, varint } = streams();
      return { name: 'small', frames, ltv: cut(ltv, 1, 256, SEED + 1), varint: cut(varint, 1, 256, SEED + 1), maxFrameLength: max };
    },
    () => {
      const { ltv, varint } = streams();
      return {
        name: 'one-per-chunk',
        frames,
        ltv: perFrame(ltv, 6 + VALUE_BYTES),
        varint: perFrame(varint, 1 + VALUE_BYTES),
        maxFrameLength: max,
      };
    },
    () => {
      const large = Buffer.alloc(LARGE_BYTES, 0x62);
      const ltv = new LtvEncoder({ layout: { preset: 'netloop', maxFrameLength: 2 * LARGE_BYTES } }).encode(1, large);
      const varint = Buffer.from(lpEncode.single(large, { maxDataLength: 2 * LARGE_BYTES }).subarray());
      return {
        name: 'large-16MiB',
        frames: 1,
        ltv: perFrame(ltv, LARGE_CHUNK),
        varint: perFrame(varint, LARGE_CHUNK),
        maxFrameLength: 2 * LARGE_BYTES,
      };
    },
  ];
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const out: Measurement[] = [];
  for (const build of workloads(plan.frames)) {
    const w = build();
    const large = w.frames === 1;
    const runs = large ? plan.largeRuns : plan.runs;
    // Nanoseconds per frame for the small workloads, milliseconds for the large frame.
    const scale = large ? 1e-6 : 1 / w.frames;
    const impls: Impl[] = ['netloop', 'netloop-raw', ...BASELINES];
    // Warm-up: let every implementation reach optimised code before timing it.
    for (let i = 0; i < (large ? 1 : 2); i++) for (const impl of impls) await timeOnce(impl, w);
    const figures = new Map<Impl, number[]>(impls.map((i) => [i, []]));
    for (let r = 0; r < runs; r++) {
      for (const impl of impls) figures.get(impl)!.push((await timeOnce(impl, w)) * scale);
      options.progress(`${w.name} run ${r + 1}/${runs}: ${impls.map((i) => `${i} ${figures.get(i)!.at(-1)!.toFixed(1)}`).join(', ')}`);
    }
    const pairs: Array<[Impl, Baseline]> = [
      ...BASELINES.map((b): [Impl, Baseline] => ['netloop', b]),
      ['netloop-raw', 'naive'],
    ];
    for (const [impl, baseline] of pairs) {
      const m = measurement({
        scenario: 'decode',
        params: {
          chunks: large ? '64KiB' : w.name,
          valueBytes: large ? LARGE_BYTES : VALUE_BYTES,
          frames: w.frames,
          api: impl === 'netloop' ? 'onFrame' : 'onRawFrame',
        },
        metric: large ? 'decode_ms_per_frame' : 'decode_ns_per_frame',
        unit: large ? 'ms/frame' : 'ns/frame',
        baselineName: baseline === 'naive' ? 'naive Buffer.concat' : `${baseline} (varint prefix)`,
        higherIsBetter: false,
        runs: { netloop: figures.get(impl)!, baseline: figures.get(baseline)! },
      });
      if (impl === 'netloop' && baseline === 'naive' && w.name === 'socket-like') m.target = '>= 2x (and <= 100 ns/frame)';
      if (impl === 'netloop' && baseline === 'naive' && large) m.target = '>= 50x';
      out.push(m);
    }
  }
  return out;
}

/** The decode scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'decode',
  description:
    'LTV decode + dispatch, ns per 64-byte frame (socket-like, small, one-per-chunk) and one 16 MiB frame in 64 KiB chunks, vs naive Buffer.concat and npm length-prefix decoders',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
