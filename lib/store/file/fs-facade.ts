/**
 * A small file-system facade: the only way the file store reaches the disk.
 *
 * It holds exactly the calls the store needs (open, positional write, fsync,
 * truncate, rename, read, unlink, list, mkdir), so a test can wrap the real
 * implementation and inject faults (ENOSPC, EIO) at any step of a save, and a
 * benchmark can count writes and fsyncs.
 *
 * ```
 *   FileStore ──► FsFacade ──► node:fs/promises      (realFs)
 *                    ▲
 *                    └── countingFs(inner): counts every call, then delegates
 * ```
 *
 * @module
 */

import * as fsp from 'node:fs/promises';

/** An open file, as the store uses it. */
export interface FsFileHandle {
  /**
   * Writes `length` bytes of `buffer` from `offset` at file `position`.
   * May write fewer bytes than asked (the caller loops).
   */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** fsync(2): the file's data and metadata reach stable storage. */
  sync(): Promise<void>;
  /** ftruncate(2) to `length` bytes. */
  truncate(length: number): Promise<void>;
  /** Releases the descriptor. */
  close(): Promise<void>;
}

/** The file-system calls the file store makes; see {@link realFs}. */
export interface FsFacade {
  /** open(2) with Node's string flags (`'w'`, `'r'`, `'r+'`, `'a'`). */
  open(path: string, flags: string): Promise<FsFileHandle>;
  /** rename(2): atomically replaces `to` when both are in the same folder. */
  rename(from: string, to: string): Promise<void>;
  /** The whole content of a file. */
  readFile(path: string): Promise<Buffer>;
  /** unlink(2). */
  unlink(path: string): Promise<void>;
  /** The names in a folder. */
  readdir(path: string): Promise<string[]>;
  /** mkdir -p. */
  mkdir(path: string): Promise<void>;
}

/** The facade over `node:fs/promises` that production code uses. */
export const realFs: FsFacade = Object.freeze({
  open: (path: string, flags: string) => fsp.open(path, flags) as Promise<FsFileHandle>,
  rename: (from: string, to: string) => fsp.rename(from, to),
  readFile: (path: string) => fsp.readFile(path),
  unlink: (path: string) => fsp.unlink(path),
  readdir: (path: string) => fsp.readdir(path),
  mkdir: async (path: string): Promise<void> => {
    await fsp.mkdir(path, { recursive: true });
  },
});

/** Counters kept by {@link countingFs}. */
export interface FsCounts {
  /** `open` calls. */
  opens: number;
  /** `write` calls on any handle. */
  writes: number;
  /** Bytes passed to successful writes. */
  bytesWritten: number;
  /** `sync` (fsync) calls on any handle, files and folders alike. */
  fsyncs: number;
  /** `truncate` calls. */
  truncates: number;
  /** `rename` calls. */
  renames: number;
  /** `readFile` calls. */
  reads: number;
  /** `unlink` calls. */
  unlinks: number;
}

/** A facade that counts calls, with its counters; see {@link countingFs}. */
export interface CountingFs extends FsFacade {
  /** Live counters; {@link CountingFs.reset} zeroes them. */
  readonly counts: FsCounts;
  /** Sets every counter back to zero. */
  reset(): void;
}

function zeroCounts(): FsCounts {
  return { opens: 0, writes: 0, bytesWritten: 0, fsyncs: 0, truncates: 0, renames: 0, reads: 0, unlinks: 0 };
}

/**
 * Wraps `inner` (default {@link realFs}) and counts every call, so a benchmark
 * or a test can compare how often two stores touch the disk. Calls are counted
 * when made, whether or not they succeed; `bytesWritten` only counts successes.
 */
export function countingFs(inner: FsFacade = realFs): CountingFs {
  const counts = zeroCounts();
  const wrap = (h: FsFileHandle): FsFileHandle => ({
    async write(buffer, offset, length, position) {
      counts.writes++;
      const r = await h.write(buffer, offset, length, position);
      counts.bytesWritten += r.bytesWritten;
      return r;
    },
    sync() {
      counts.fsyncs++;
      return h.sync();
    },
    truncate(length) {
      counts.truncates++;
      return h.truncate(length);
    },
    close: () => h.close(),
  });
  return {
    counts,
    reset() {
      Object.assign(counts, zeroCounts());
    },
    async open(path, flags) {
      counts.opens++;
      return wrap(await inner.open(path, flags));
    },
    rename(from, to) {
      counts.renames++;
      return inner.rename(from, to);
    },
    readFile(path) {
      counts.reads++;
      return inner.readFile(path);
    },
    unlink(path) {
      counts.unlinks++;
      return inner.unlink(path);
    },
    readdir: (path) => inner.readdir(path),
    mkdir: (path) => inner.mkdir(path),
  };
}
