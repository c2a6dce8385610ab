/**
 * Helpers of the stream transfer tests: sparse files with markers (large
 * files that cost no disk), the SHA-256 of a file, the file descriptors a
 * process holds on a path, and a reader that reads slowly, then fast.
 *
 * ```
 *   makeSparseFile(path, size): [ zeros ... marker(0) ... zeros ... marker(1) ... ]   a marker every MARKER_EVERY bytes
 *   readSlowThenFast(socket): 1 MiB/s (64 KiB bites) for slowMs, then as fast as it can; hashes all
 * ```
 *
 * @module
 */

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { withTimeout } from './net.js';

/** Distance between two markers of a sparse file: every region of the transfer carries bytes of its own. */
export const MARKER_EVERY = 4 * 1024 * 1024;

/**
 * Creates a sparse file of `size` bytes whose zeros are broken every
 * {@link MARKER_EVERY} bytes by 4 KiB of a pattern that names its offset,
 * so a chunk sent twice, dropped or out of order changes the hash.
 */
export function makeSparseFile(path: string, size: number): void {
  const fd = fs.openSync(path, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (let off = 0; off < size; off += MARKER_EVERY) {
      const n = Math.min(4096, size - off);
      const marker = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) marker[i] = (off / MARKER_EVERY + i * 7 + (i >> 6)) & 0xff;
      fs.writeSync(fd, marker, 0, n, off + (off === 0 ? 0 : 1234));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The SHA-256 (hex) of a file. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** How many file descriptors of this process are open on `path` (Linux: /proc/self/fd). */
export function fdsOn(path: string): number {
  const target = fs.realpathSync(path);
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === target) n++;
    } catch {
      // The descriptor of the directory listing itself, or one closed meanwhile.
    }
  }
  return n;
}

/** What {@link readSlowThenFast} read. */
export interface ReadResult {
  bytes: number;
  sha256: string;
  /** Bytes read during the slow phase. */
  slowBytes: number;
  /** True when the stream ended with a reset or an error rather than the peer's FIN. */
  failed: boolean;
}

/**
 * Reads `socket` to its end: at `slowBytesPerSecond` (64 KiB at a time,
 * default 1 MiB/s) for `slowMs`, then as fast as it can, hashing everything.
 */
export function readSlowThenFast(
  socket: net.Socket,
  options: { slowMs: number; slowBytesPerSecond?: number; ms?: number },
): Promise<ReadResult> {
  const rate = options.slowBytesPerSecond ?? 1024 * 1024;
  const bite = 64 * 1024;
  const hash = createHash('sha256');
  let bytes = 0;
  let slowBytes = 0;
  let failed = false;
  socket.pause();
  const done = new Promise<void>((resolve) => {
    socket.once('end', () => resolve());
    socket.once('error', () => {
      failed = true;
      resolve();
    });
    socket.once('close', () => resolve());
  });
  const run = async (): Promise<void> => {
    const slowUntil = Date.now() + options.slowMs;
    let ended = false;
    void done.then(() => {
      ended = true;
    });
    while (!ended && Date.now() < slowUntil) {
      let n = 0;
      while (n < bite && !ended) {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) {
          await Promise.race([new Promise((r) => socket.once('readable', r)), done]);
          continue;
        }
        hash.update(chunk);
        n += chunk.length;
      }
      bytes += n;
      await new Promise((r) => setTimeout(r, (bite / rate) * 1000));
    }
    slowBytes = bytes;
    for (;;) {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) break;
      hash.update(chunk);
      bytes += chunk.length;
    }
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    socket.resume();
    await done;
  };
  return withTimeout(
    run().then(() => ({ bytes, sha256: hash.digest('hex'), slowBytes, failed })),
    options.ms ?? 120_000,
    'the transfer to be read',
  );
}
