/**
 * A fault-injecting file-system facade for tests: real files underneath,
 * with faults (ENOSPC, EIO, ...) injected at chosen calls, torn (partial)
 * writes, gates that hold a call until released, and per-call counters. Pass
 * it as the file store's `fs` option to see what the store does when the
 * disk fails at any step of a save.
 *
 * ```
 *   FileStore ──► FaultyFs ──(fault? gate? count)──► realFs (or another FsFacade)
 *
 *   const fs = new FaultyFs();
 *   const store = await FileStore.open({ path, fs });
 *   fs.fail('sync', 'EIO', { times: 1 });           // the next fsync fails
 *   fs.fail('write', 'ENOSPC', { partial: 0.5 });   // half a write lands, then ENOSPC
 *   const held = fs.gate('rename');                 // the next rename waits ...
 *   await held.reached; held.release();             // ... until released
 * ```
 *
 * @module
 */

import * as path from 'node:path';
import type { FsFacade, FsFileHandle } from '../store/file/fs-facade.js';
import { realFs } from '../store/file/fs-facade.js';

/** The calls that can be counted and failed. */
export type FsOp = 'open' | 'write' | 'sync' | 'truncate' | 'close' | 'rename' | 'readFile' | 'unlink' | 'readdir' | 'mkdir';

interface Fault {
  op: FsOp;
  code: string;
  /** Calls left to fail; Infinity for always. */
  times: number;
  match: (file: string) => boolean;
  /** For writes: write this fraction of the bytes before failing (a torn write). */
  partial: number;
}

/** Builds an errno-style error (`code`, `syscall`, `path`) as Node's fs does. */
export function errnoError(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${syscall} '${path.basename(file)}'`), { code, syscall, path: file });
}

/** See the module documentation. */
export class FaultyFs implements FsFacade {
  /** Calls made of each kind, failed ones included. */
  readonly counts: Record<FsOp, number> = {
    open: 0, write: 0, sync: 0, truncate: 0, close: 0, rename: 0, readFile: 0, unlink: 0, readdir: 0, mkdir: 0,
  };
  /** Every call, in order, as `op basename`. */
  readonly log: string[] = [];
  readonly #inner: FsFacade;
  #faults: Fault[] = [];
  /** Held calls, one per kind. */
  #gates = new Map<FsOp, { match: (f: string) => boolean; promise: Promise<void>; release: () => void; entered: () => void; reached: Promise<void> }>();
  readonly #open = new Set<FsFileHandle>();

  /** @param inner the facade the calls reach when no fault applies (default the real file system). */
  constructor(inner: FsFacade = realFs) {
    this.#inner = inner;
  }

  /** Fails the next `times` calls of `op` on files matching `match` with `code`. */
  fail(op: FsOp, code: string, options: { times?: number; match?: (file: string) => boolean; partial?: number } = {}): void {
    this.#faults.push({ op, code, times: options.times ?? 1, match: options.match ?? (() => true), partial: options.partial ?? 0 });
  }

  /** Removes every pending fault. */
  heal(): void {
    this.#faults = [];
  }

  /**
   * Holds the next call of `op` (on a matching file) until the returned
   * `release` is called; `reached` resolves when the call is being held.
   */
  gate(op: FsOp, match: (file: string) => boolean = () => true): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let entered!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (entered = r));
    this.#gates.set(op, { match, promise, release, entered, reached });
    return { reached, release };
  }

  /** Closes every handle still open, as a process death would. */
  async closeAll(): Promise<void> {
    for (const h of [...this.#open]) await h.close().catch(() => undefined);
    this.#open.clear();
  }

  async #enter(op: FsOp, file: string): Promise<Fault | null> {
    this.counts[op]++;
    this.log.push(`${op} ${path.basename(file)}`);
    const g = this.#gates.get(op);
    if (g !== undefined && g.match(file)) {
      this.#gates.delete(op);
      g.entered();
      await g.promise;
    }
    const i = this.#faults.findIndex((f) => f.op === op && f.match(file));
    if (i < 0) return null;
    const f = this.#faults[i]!;
    if (--f.times <= 0) this.#faults.splice(i, 1);
    return f;
  }

  async #call<T>(op: FsOp, file: string, fn: () => Promise<T>): Promise<T> {
    const f = await this.#enter(op, file);
    if (f !== null) throw errnoError(f.code, op, file);
    return fn();
  }

  #wrap(h: FsFileHandle, file: string): FsFileHandle {
    const self = this;
    const wrapped: FsFileHandle = {
      async write(buffer, offset, length, position) {
        const f = await self.#enter('write', file);
        if (f !== null) {
          const n = Math.floor(length * f.partial);
          if (n > 0) await h.write(buffer, offset, n, position);
          throw errnoError(f.code, 'write', file);
        }
        return h.write(buffer, offset, length, position);
      },
      sync: () => self.#call('sync', file, () => h.sync()),
      truncate: (len) => self.#call('truncate', file, () => h.truncate(len)),
      async close() {
        self.#open.delete(wrapped);
        await self.#call('close', file, () => h.close());
      },
    };
    this.#open.add(wrapped);
    return wrapped;
  }

  /** @inheritDoc */
  async open(file: string, flags: string): Promise<FsFileHandle> {
    const h = await this.#call('open', file, () => this.#inner.open(file, flags));
    return this.#wrap(h, file);
  }
  /** @inheritDoc */
  rename(from: string, to: string): Promise<void> {
    return this.#call('rename', from, () => this.#inner.rename(from, to));
  }
  /** @inheritDoc */
  readFile(file: string): Promise<Buffer> {
    return this.#call('readFile', file, () => this.#inner.readFile(file));
  }
  /** @inheritDoc */
  unlink(file: string): Promise<void> {
    return this.#call('unlink', file, () => this.#inner.unlink(file));
  }
  /** @inheritDoc */
  readdir(dir: string): Promise<string[]> {
    return this.#call('readdir', dir, () => this.#inner.readdir(dir));
  }
  /** @inheritDoc */
  mkdir(dir: string): Promise<void> {
    return this.#call('mkdir', dir, () => this.#inner.mkdir(dir));
  }
}
