/**
 * A raw echo server on netloop: every byte read is written back, with no
 * framing. muduo's `pingpong_client` (and `examples/pingpong/client.ts`) can
 * drive it.
 *
 * ```sh
 * npm run echo                          # 127.0.0.1:2007
 * npm run echo -- --port 9000 --host 0.0.0.0
 * ```
 *
 * Prints where it listens; stops cleanly (flushing, then closing every
 * connection) on SIGINT or SIGTERM.
 *
 * Backpressure from output to input: a client that sends without reading
 * would make its echoes pile up in the server until the hard output limit
 * closed it. Instead, reading that client pauses while its queued echoes
 * are at {@link ECHO_READ_PAUSE}`.high` bytes or more, and resumes once they
 * drained to `.low` (muduo's echo and relay examples stop reading at the
 * high-water mark and resume at write-complete): the client is slowed down
 * by TCP flow control, and the server holds at most about the high mark
 * per client.
 *
 * @module
 */

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { closeOnSignals } from '../../lib/reactor/close-on-signals.js';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import { Server } from '../../lib/reactor/server.js';
import type { Client } from '../../lib/reactor/client.js';
import type { ReadPauseMarks } from '../../lib/reactor/client-limits.js';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';

/** The port the example listens on when none is given (muduo's echo examples use it too). */
export const DEFAULT_ECHO_PORT = 2007;

/** The echo server's read-pause marks: queued output bytes at which a client's reading pauses, and resumes. */
export const ECHO_READ_PAUSE: ReadPauseMarks = { high: 1024 * 1024, low: 256 * 1024 };

/** Options of {@link startEchoServer}. */
export interface EchoServerOptions {
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default {@link DEFAULT_ECHO_PORT}; 0 for an ephemeral port. */
  port?: number;
  /** Default 10_000. */
  maxConnections?: number;
  /** Default {@link ECHO_READ_PAUSE}. */
  readPauseOutputBytes?: ReadPauseMarks;
}

/** Starts the echo server on its own loop. */
export async function startEchoServer(options: EchoServerOptions = {}): Promise<{ loop: EventLoop; server: Server }> {
  const loop = new EventLoop();
  const server = await new Server(loop, {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? DEFAULT_ECHO_PORT,
    maxConnections: options.maxConnections ?? 10_000,
    backlog: 4096,
    readPauseOutputBytes: options.readPauseOutputBytes ?? ECHO_READ_PAUSE,
  }).listen();
  // The chunk Node read is ours: it is queued by reference, and every chunk
  // read in this turn leaves in one write.
  server.on('data', (client: Client, chunk: Buffer) => {
    client.write(chunk);
  });
  return { loop, server };
}

/** Parses `--port N --host H`. */
export function parseEchoArgs(argv: readonly string[]): EchoServerOptions {
  const options: EchoServerOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--port' && value !== undefined) {
      const port = Number(value);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `--port must be an integer in [0, 65535], got ${value}`, {
          details: { option: 'port', value },
        });
      }
      options.port = port;
      i++;
    } else if (arg === '--host' && value !== undefined) {
      options.host = value;
      i++;
    } else {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `unknown argument ${String(arg)} (usage: --port N [--host H])`, {
        details: { option: arg },
      });
    }
  }
  return options;
}

async function main(): Promise<void> {
  const { loop, server } = await startEchoServer(parseEchoArgs(process.argv.slice(2)));
  const { address, port } = server.address();
  process.stdout.write(`netloop echo server listening on ${address}:${port}\n`);
  // On SIGINT or SIGTERM: stop accepting, let queued echoes flush for up to
  // 2 s, close every connection, then exit with code 0.
  closeOnSignals(loop, {
    flushTimeoutMs: 2_000,
    exit: false,
    onDone: (signal) => {
      process.stdout.write(`${signal}: closed every connection\n`);
      process.exit(0);
    },
  });
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
