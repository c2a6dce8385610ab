/**
 * UUID version 7 (RFC 9562): a 48-bit Unix millisecond timestamp followed by
 * random bits, so ids sort by creation time and index well in ordered stores.
 *
 * Layout of the 128 bits produced here (RFC 9562 §5.7, with the optional
 * monotonic counter of §6.2 "method 1" in `rand_a`):
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * ┌───────────────────────────────────────────────────────────────┐
 * │                      unix_ts_ms (32 high bits)                │
 * ├───────────────────────────────┬───────┬───────────────────────┤
 * │   unix_ts_ms (16 low bits)    │ ver=7 │ counter (12 bits)     │
 * ├───┬───────────────────────────┴───────┴───────────────────────┤
 * │var│                    rand_b (62 random bits)                │
 * ├───┴───────────────────────────────────────────────────────────┤
 * │                         rand_b (cont.)                        │
 * └───────────────────────────────────────────────────────────────┘
 * ```
 *
 * Monotonic within a millisecond: the first id of a millisecond seeds the
 * 12-bit counter with a random value below 2048 (leaving at least 2048
 * increments of headroom); each further id in the same millisecond adds one.
 * When the counter would overflow, or the clock goes backwards, the timestamp
 * is carried forward by one millisecond instead, so the sequence of ids of one
 * process is strictly increasing in byte (and string) order.
 *
 * Random bits come from `node:crypto` through a pooled buffer so that a burst
 * of creations does not pay one system call per id.
 *
 * @module
 */

import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 16 * 512;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

/** Returns `n` (at most 64) fresh random bytes as a view into the shared pool, valid until the next call. */
function randomBytesFromPool(n: number): Buffer {
  if (poolOffset + n > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const view = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return view;
}

/** ASCII codes of the hex digits. */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** The 36 characters of an id being built; the dashes never change. */
const text = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

function putHex(o: Buffer, at: number, byte: number): void {
  o[at] = HEX_DIGITS[byte >>> 4]!;
  o[at + 1] = HEX_DIGITS[byte & 0x0f]!;
}

let lastMs = -1;
let counter = 0;

/**
 * Returns a new UUIDv7 string such as `0190a4b2-7c3e-7a41-9f2b-4c8e1d0a6b3f`.
 *
 * @param nowMs the wall-clock millisecond to stamp (default `Date.now()`);
 *   ids stay strictly increasing even if it goes backwards.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const rnd = randomBytesFromPool(10);
  let ms = Math.floor(nowMs);
  if (ms > lastMs) {
    lastMs = ms;
    counter = ((rnd[0]! & 0x07) << 8) | rnd[1]!; // < 2048
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted within this millisecond: borrow the next one.
      lastMs = ++ms;
      counter = ((rnd[0]! & 0x07) << 8) | rnd[1]!;
    }
  }
  const hi = Math.floor(ms / 0x1000000); // high 24 bits of the 48-bit stamp
  const lo = ms % 0x1000000; // low 24 bits
  // Written as ASCII into a scratch buffer and decoded once: the id is one flat
  // string. Joining 2-character pieces with `+` would build a rope of ~20
  // cons-string nodes, several hundred bytes of heap per id until flattened.
  const o = text;
  putHex(o, 0, (hi >>> 16) & 0xff);
  putHex(o, 2, (hi >>> 8) & 0xff);
  putHex(o, 4, hi & 0xff);
  putHex(o, 6, (lo >>> 16) & 0xff);
  putHex(o, 9, (lo >>> 8) & 0xff);
  putHex(o, 11, lo & 0xff);
  putHex(o, 14, 0x70 | (counter >>> 8));
  putHex(o, 16, counter & 0xff);
  putHex(o, 19, 0x80 | (rnd[2]! & 0x3f));
  putHex(o, 21, rnd[3]!);
  for (let i = 0; i < 6; i++) putHex(o, 24 + 2 * i, rnd[4 + i]!);
  return o.toString('latin1', 0, 36);
}

/** The pattern every UUIDv7 produced by {@link uuidv7} matches (lower-case hex). */
export const UUID_V7_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The millisecond timestamp embedded in a UUIDv7 string. */
export function uuidv7Timestamp(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
