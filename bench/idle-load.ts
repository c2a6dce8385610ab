/**
 * The client side of the idle-memory scenario, run as a child process:
 * `node dist/bench/idle-load.js --port P --connections N`.
 *
 * It opens N loopback connections (a hundred at a time, so the server's
 * accept backlog never overflows), holds them without sending a byte, prints
 * one JSON line {@link IdleLoadResult}, and keeps them open until its stdin
 * closes. Every connection costs a file descriptor here and one in the server;
 * when `ulimit -n` is too low for N, it opens fewer and says so.
 *
 * @module
 */

import * as net from 'node:net';
import { emitJson, intFlag, isMain, onControl, parseFlags, runChildMain } from './processes.js';
import { fdLimit } from './system.js';

/** What the generator prints once its connections are open. */
export interface IdleLoadResult {
  /** Connections asked for. */
  requested: number;
  /** Connections open (fewer than asked when the fd limit is too low). */
  connected: number;
  /** Connections that failed to open or closed early. */
  errors: number;
  /** Why `connected` is below `requested`, if it is. */
  note?: string;
}

/** Descriptors kept free for stdio, the runtime and the server's listening socket. */
export const FD_RESERVE = 64;
const CONNECT_BATCH = 100;

/**
 * How many connections a process may hold under an fd limit: the limit minus
 * a reserve, never more than requested.
 */
export function capConnections(requested: number, limit: number | undefined): { count: number; note?: string } {
  if (limit === undefined || limit - FD_RESERVE >= requested) return { count: requested };
  const count = Math.max(1, limit - FD_RESERVE);
  return {
    count,
    note: `ulimit -n is ${limit}: holding ${count} connections instead of ${requested} (raise it with \`ulimit -n ${
      requested + FD_RESERVE
    }\` for the full count)`,
  };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const port = intFlag(flags, 'port', 0);
  const requested = intFlag(flags, 'connections', 1_000);
  const capped = capConnections(requested, fdLimit());
  if (capped.note !== undefined) process.stderr.write(`idle-load: ${capped.note}\n`);

  let errors = 0;
  const sockets: net.Socket[] = [];
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        sockets.push(socket);
        resolve();
      });
      socket.on('error', () => {
        errors++;
        resolve();
      });
    });
  for (let i = 0; i < capped.count; i += CONNECT_BATCH) {
    await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, capped.count - i) }, open));
  }
  const result: IdleLoadResult = { requested, connected: sockets.length, errors };
  if (capped.note !== undefined) result.note = capped.note;
  emitJson(result);
  onControl(() => undefined, () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}

if (isMain(import.meta.url)) runChildMain(main);
