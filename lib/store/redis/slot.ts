/**
 * Redis Cluster's hash slots: which of the 16,384 slots a key belongs to
 * (CRC16/XMODEM of the key, or of its hash tag, modulo 16,384), as the
 * cluster computes it, so that the store can group a batch by the master
 * that holds each key and know whether a prefix pins every key to one slot.
 *
 * ```
 *   "netloop:s:{0190...}"   tag "0190..."   slot = crc16(tag) % 16384
 *   "{app}:s:{0190...}"     tag "app"       (the first tag wins: one slot for the prefix)
 *   "netloop:i:created"     no tag          slot = crc16(key) % 16384
 * ```
 *
 * @module
 */

/** The number of hash slots of a Redis Cluster. */
export const SLOTS = 16_384;

/** CRC16/XMODEM (polynomial 0x1021), the cluster's key hash, table-driven. */
const TABLE = ((): Uint16Array => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** Where a key's hash tag is (`[start, end)` of its bytes), or null when it has none. */
function tagOf(bytes: Uint8Array): [number, number] | null {
  const open = bytes.indexOf(0x7b);
  if (open === -1) return null;
  const close = bytes.indexOf(0x7d, open + 1);
  return close > open + 1 ? [open + 1, close] : null;
}

/** The hash slot of `key`. */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const tag = tagOf(bytes);
  return (tag === null ? crc16(bytes, 0, bytes.length) : crc16(bytes, tag[0], tag[1])) % SLOTS;
}

/** True when every key that starts with `prefix` hashes by the prefix's own tag (one slot). */
export function prefixPinsSlot(prefix: string): boolean {
  return tagOf(Buffer.from(prefix, 'utf8')) !== null;
}
