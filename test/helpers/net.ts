/**
 * Socket helpers for the reactor's tests: raw peers on 127.0.0.1, bounded
 * waits for events and conditions, byte collection and a slow reader.
 *
 * Every wait has a deadline and fails with a message naming what it waited
 * for, so a broken test fails clearly instead of hanging the suite.
 *
 * @module
 */

import * as net from 'node:net';
import { createHash } from 'node:crypto';

/** Default deadline of the waits below. */
export const WAIT_MS = 5_000;

/** Rejects with a clear message when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Anything with `on` and `off`: a Node EventEmitter (a socket) or one of
 * netloop's typed emitters (a server, a connector).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Listenable = { on(event: any, listener: any): unknown; off(event: any, listener: any): unknown };

/**
 * Resolves with the arguments of the next `event` on `emitter` (that passes
 * `filter`, if given); rejects after `ms`.
 */
export function waitFor<A extends unknown[] = unknown[]>(
  emitter: Listenable,
  event: string,
  options: { ms?: number; filter?: (...args: A) => boolean } = {},
): Promise<A> {
  const { ms = WAIT_MS, filter } = options;
  let listener: ((...args: unknown[]) => void) | undefined;
  const p = new Promise<A>((resolve) => {
    listener = (...args: unknown[]) => {
      if (filter !== undefined && !filter(...(args as A))) return;
      emitter.off(event, listener!);
      resolve(args as A);
    };
    emitter.on(event, listener);
  });
  const out = withTimeout(p, ms, `event '${event}'`).finally(() => emitter.off(event, listener!));
  // A wait set up before an action that then failed is abandoned by its test
  // (which has already failed, or moved on): its timeout must not surface later
  // as an unhandled rejection that ends the whole run. Whoever awaits `out`
  // still gets the rejection.
  out.catch(() => undefined);
  return out;
}

/** The longest pause between two polls of {@link until}. */
const POLL_MAX_MS = 8;

/**
 * Polls `cond` until it holds; rejects after `ms` naming `what`. The pause
 * between polls starts at 1 ms and doubles up to {@link POLL_MAX_MS}: a
 * condition that holds soon is seen within a millisecond or two, and a long
 * wait (a child process starting, a TTL running out) wakes the process about
 * a hundred times a second instead of a thousand, which across the suite's
 * many waits is CPU the other test files can use.
 */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  let pause = 1;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, POLL_MAX_MS);
  }
}

/** Connects a raw socket (allowHalfOpen as asked) to 127.0.0.1:`port`; resolves once connected. */
export function connectRaw(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  return withTimeout(
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    }),
    WAIT_MS,
    `a connection to port ${port}`,
  );
}

/**
 * Collects every byte the socket receives until the peer's FIN or the close;
 * `reset` is true when the connection ended with an error (ECONNRESET).
 */
export function collectAll(socket: net.Socket, ms = WAIT_MS): Promise<{ data: Buffer; reset: boolean }> {
  const chunks: Buffer[] = [];
  let reset = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {
    reset = true;
  });
  return withTimeout(
    new Promise<{ data: Buffer; reset: boolean }>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        resolve({ data: Buffer.concat(chunks), reset });
      };
      socket.once('end', finish);
      socket.once('close', finish);
    }),
    ms,
    'the peer to finish sending',
  );
}

/**
 * A peer that reads slowly: after every chunk it pauses, and resumes after
 * `pauseMs` (a macrotask), so the sender meets a full socket again and again.
 * Resolves with all bytes once `expected` bytes arrived.
 */
export function slowRead(socket: net.Socket, expected: number, pauseMs = 1, ms = 20_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return withTimeout(
    new Promise<Buffer>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got >= expected) {
          resolve(Buffer.concat(chunks));
          return;
        }
        socket.pause();
        setTimeout(() => socket.resume(), pauseMs);
      });
      socket.resume();
    }),
    ms,
    `${expected} bytes from a slow reader`,
  );
}

/** Reads exactly `n` bytes from the socket (more are kept for the next call). */
export function readBytes(socket: net.Socket, n: number, ms = WAIT_MS): Promise<Buffer> {
  const reader = readerOf(socket);
  return withTimeout(reader.read(n), ms, `${n} bytes`);
}

interface Reader {
  buf: Buffer;
  want: { n: number; resolve: (b: Buffer) => void } | null;
  read(n: number): Promise<Buffer>;
}
const readers = new WeakMap<net.Socket, Reader>();

function readerOf(socket: net.Socket): Reader {
  let r = readers.get(socket);
  if (r !== undefined) return r;
  const reader: Reader = {
    buf: Buffer.alloc(0),
    want: null,
    read(n: number): Promise<Buffer> {
      return new Promise<Buffer>((resolve) => {
        reader.want = { n, resolve };
        check();
      });
    },
  };
  const check = (): void => {
    const w = reader.want;
    if (w !== null && reader.buf.length >= w.n) {
      reader.want = null;
      const out = reader.buf.subarray(0, w.n);
      reader.buf = reader.buf.subarray(w.n);
      w.resolve(Buffer.from(out));
    }
  };
  socket.on('data', (c: Buffer) => {
    reader.buf = Buffer.concat([reader.buf, c]);
    check();
  });
  readers.set(socket, reader);
  r = reader;
  return r;
}

/**
 * Counts the writes the socket hands to libuv: each call of Node's internal
 * `_writeGeneric` is one write or one writev, whatever was queued before it.
 */
export function countWrites(socket: net.Socket): { readonly count: number; readonly sizes: number[] } {
  const s = socket as net.Socket & { _writeGeneric: (writev: boolean, data: unknown, enc: string, cb: unknown) => unknown };
  const original = s._writeGeneric;
  const state = { count: 0, sizes: [] as number[] };
  s._writeGeneric = function (this: unknown, writev: boolean, data: unknown, enc: string, cb: unknown) {
    state.count++;
    if (writev) {
      let n = 0;
      for (const c of data as Array<{ chunk: Uint8Array }>) n += c.chunk.length;
      state.sizes.push(n);
    } else state.sizes.push((data as Uint8Array).length);
    return original.call(this, writev, data, enc, cb);
  };
  return state;
}

/** SHA-256 of a buffer, in hex, for comparing large payloads. */
export function digest(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * A deterministic pattern of `n` bytes starting at `seed` (no randomness:
 * failures replay). Byte `i` is `(i * 31 + seed * 7 + (i >> 8)) & 0xff`,
 * which repeats every 65,536 bytes: the cycle of each seed is computed once
 * and copied, so the tests' megabytes of payload cost a copy, not a loop
 * over every byte.
 */
export function pattern(n: number, seed = 0): Buffer {
  const cycle = patternCycle(seed);
  const b = Buffer.allocUnsafe(n);
  for (let at = 0; at < n; at += cycle.length) cycle.copy(b, at, 0, Math.min(cycle.length, n - at));
  return b;
}

/** One period of {@link pattern} for `seed` (only `seed * 7` modulo 256 matters). */
const patternCycles = new Map<number, Buffer>();
function patternCycle(seed: number): Buffer {
  const offset = (seed * 7) & 0xff;
  let cycle = patternCycles.get(offset);
  if (cycle === undefined) {
    cycle = Buffer.allocUnsafe(65_536);
    for (let i = 0; i < cycle.length; i++) cycle[i] = (i * 31 + offset + (i >> 8)) & 0xff;
    patternCycles.set(offset, cycle);
  }
  return cycle;
}

/** Destroys sockets, ignoring errors, and resolves once each has closed. */
export async function destroyAll(...sockets: Array<net.Socket | undefined>): Promise<void> {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s === undefined || s.closed) return resolve();
          s.on('error', () => undefined);
          s.once('close', () => resolve());
          s.destroy();
        }),
    ),
  );
}

/** A free TCP port on 127.0.0.1 that refuses connections (bound, then closed). */
export async function refusedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
