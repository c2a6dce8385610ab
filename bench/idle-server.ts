/**
 * The server side of the idle-memory scenario, run as a child process with
 * `--expose-gc`:
 *
 * ```
 * node --expose-gc dist/bench/idle-server.js --impl bare|bare-session|bare-session-addr|netloop|netloop-session|netloop-session-addr
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
 *   session registry (see `netloop-servers.ts`); a session holds what the
 *   bare one does (its connection, from which the peer's address can be read
 *   when wanted);
 * - `bare-session-addr`, `netloop-session-addr`: the same two with the
 *   peer's address read at accept and kept in the session. Reading it makes
 *   Node cache the peer name on the socket (an object and the address
 *   string, about 100 bytes), which both then pay.
 *
 * @module
 */

import * as net from 'node:net';
import { announceListening, emitJson, intFlag, isMain, onControl, parseFlags, runChildMain, stringFlag } from './processes.js';
import { listenOn } from './echo-server.js';
import { ConnectionCounter } from './connection-counter.js';
import type { IdleServer } from './connection-counter.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** The implementations this script can serve. */
export const IDLE_IMPLS = ['bare', 'bare-session', 'bare-session-addr', 'netloop', 'netloop-session', 'netloop-session-addr'] as const;
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

/** The small object a session-holding server keeps per connection. */
interface BareSession {
  id: number;
  socket: net.Socket;
  createdAt: number;
  lastSeenAt: number;
  userId: string | null;
  state: 'active' | 'suspended';
  remoteAddress?: string | null;
}

/** Starts a bare `node:net` holder, with or without a session map (and the peer's address in each session). */
export async function startBareIdle(withSessions: boolean, withAddress = false): Promise<IdleServer> {
  const counter = new ConnectionCounter();
  let nextId = 1;
  const sessions = new Map<number, BareSession>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    const id = nextId++;
    if (withSessions) {
      const now = Date.now();
      const session: BareSession = { id, socket, createdAt: now, lastSeenAt: now, userId: null, state: 'active' };
      if (withAddress) session.remoteAddress = socket.remoteAddress ?? null;
      sessions.set(id, session);
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
  if (impl === 'bare' || impl === 'bare-session' || impl === 'bare-session-addr') {
    server = await startBareIdle(impl !== 'bare', impl === 'bare-session-addr');
  } else if (impl === 'netloop' || impl === 'netloop-session' || impl === 'netloop-session-addr') {
    const { startNetloopIdle } = await import('./netloop-servers.js');
    server = await startNetloopIdle(impl !== 'netloop', maxConnections, impl === 'netloop-session-addr');
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
