/**
 * The server side of the idle-memory scenario, run as a child process with
 * `--expose-gc`:
 *
 * ```
 * node --expose-gc dist/bench/idle-server.js --impl bare|bare-session|netloop|netloop-session
 * ```
 *
 * It accepts connections on 127.0.0.1 and holds them, doing nothing else. The
 * parent asks for memory figures over stdin: the line `mem N` waits until N
 * connections are open, forces garbage collection, and prints one JSON line
 * {@link MemoryReport}. Stdin closing ends the process.
 *
 * Implementations:
 * - `bare`: a `node:net` server that attaches `data`, `error` and `close`
 *   listeners to each socket (the least any real server does);
 * - `bare-session`: the same plus a `Map` entry holding a small session
 *   object per connection (the least any server with sessions does);
 * - `netloop`, `netloop-session`: netloop's server, without and with its
 *   session registry (see `netloop-servers.ts`).
 *
 * @module
 */

import * as net from 'node:net';
import { announceListening, emitJson, intFlag, isMain, onControl, parseFlags, runChildMain, stringFlag } from './processes.js';
import { listenOn } from './echo-server.js';
import { ErrorCode, NetloopError } from '../lib/errors.js';

/** The implementations this script can serve. */
export const IDLE_IMPLS = ['bare', 'bare-session', 'netloop', 'netloop-session'] as const;
/** One of {@link IDLE_IMPLS}. */
export type IdleImpl = (typeof IDLE_IMPLS)[number];

/** What `mem N` prints. */
export interface MemoryReport {
  connections: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Counts open connections and resolves waiters once a count is reached.
 *
 * ```
 *   count: 1834    waiters: [ (2000, resolve) ]  ── resolved and removed when count >= 2000
 * ```
 */
export class ConnectionCounter {
  private value = 0;
  private waiters: Array<{ wanted: number; resolve: () => void }> = [];

  /** Connections open now. */
  get count(): number {
    return this.value;
  }

  /** One more connection is open. */
  opened(): void {
    this.value++;
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.wanted <= this.value);
    this.waiters = this.waiters.filter((w) => w.wanted > this.value);
    for (const w of ready) w.resolve();
  }

  /** One connection closed. */
  closed(): void {
    this.value--;
  }

  /** Resolves once at least `wanted` connections are open. */
  waitFor(wanted: number): Promise<void> {
    if (this.value >= wanted) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ wanted, resolve }));
  }
}

/** A held-connections server: its port and its connection counter. */
export interface IdleServer {
  port: number;
  counter: ConnectionCounter;
}

/** The small object a session-holding server keeps per connection. */
interface BareSession {
  id: number;
  socket: net.Socket;
  createdAt: number;
  lastSeenAt: number;
  userId: string | null;
  state: 'active' | 'suspended';
}

/** Starts a bare `node:net` holder, with or without a session map. */
export async function startBareIdle(withSessions: boolean): Promise<IdleServer> {
  const counter = new ConnectionCounter();
  let nextId = 1;
  const sessions = new Map<number, BareSession>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    const id = nextId++;
    if (withSessions) {
      const now = Date.now();
      sessions.set(id, { id, socket, createdAt: now, lastSeenAt: now, userId: null, state: 'active' });
    }
    socket.on('data', () => {
      if (withSessions) {
        const session = sessions.get(id);
        if (session !== undefined) session.lastSeenAt = Date.now();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      counter.closed();
      if (withSessions) sessions.delete(id);
    });
    counter.opened();
  });
  server.maxConnections = 1_000_000;
  await listenOn(server, 0);
  return {
    port: (server.address() as net.AddressInfo).port,
    counter,
  };
}

/** Forces a full collection a few times, letting finalizers run in between. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    throw new NetloopError(ErrorCode.BENCH_FAILED, 'idle-server needs node --expose-gc');
  }
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const impl = stringFlag(flags, 'impl', 'bare');
  const maxConnections = intFlag(flags, 'max-connections', 100_000);
  let server: IdleServer;
  if (impl === 'bare' || impl === 'bare-session') {
    server = await startBareIdle(impl === 'bare-session');
  } else if (impl === 'netloop' || impl === 'netloop-session') {
    const { startNetloopIdle } = await import('./netloop-servers.js');
    server = await startNetloopIdle(impl === 'netloop-session', maxConnections);
  } else {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--impl must be one of ${IDLE_IMPLS.join(', ')}, got ${impl}`);
  }

  // Requests are served one at a time, in order.
  let queue = Promise.resolve();
  onControl((line) => {
    const match = /^mem (\d+)$/.exec(line);
    if (match === null) return;
    const wanted = Number(match[1]);
    queue = queue.then(async () => {
      await server.counter.waitFor(wanted);
      await collectGarbage();
      const mem = process.memoryUsage();
      const report: MemoryReport = {
        connections: server.counter.count,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        external: mem.external,
        arrayBuffers: mem.arrayBuffers,
      };
      emitJson(report);
    });
  });
  announceListening(server.port);
}

if (isMain(import.meta.url)) runChildMain(main);
