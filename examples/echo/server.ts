/**
 * A raw echo server on netloop: every byte read is written back, with no
 * framing. muduo's `pingpong_client` (and `examples/pingpong/client.ts`) can
 * drive it.
 *
 * ```sh
 * npm run echo                          # 127.0.0.1:2007
 * npm run echo -- --port 9000 --host 0.0.0.0
 * npm run echo -- --help
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

import { EventLoop, Server, closeOnSignals } from 'netloop';
import type { Client, ReadPauseMarks } from 'netloop';
import { defineCommand, isMain, parseCommandLine, runCommand } from '../shared/cli.js';
import type { OptionValues } from '../shared/cli.js';

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

/** The echo server's command line. */
export const ECHO_COMMAND = defineCommand({
  name: 'echo-server',
  usage: 'npm run echo -- [options]',
  summary: 'A raw echo server: every byte read is written back, with no framing. SIGINT or SIGTERM stops it.',
  options: {
    port: { type: 'integer', default: DEFAULT_ECHO_PORT, min: 0, max: 65535, help: 'port to listen on; 0 picks a free one' },
    host: { type: 'string', default: '127.0.0.1', arg: 'H', help: 'address to bind' },
  },
  notes: ['drive it with:', '  node dist/examples/pingpong/client.js --port 2007 --sessions 100 --bytes 16384 --seconds 5'],
});

/**
 * Parses `--port N --host H`.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (`details.option`) for a bad argument.
 */
export function parseEchoArgs(argv: readonly string[]): EchoServerOptions {
  return echoArgs(parseCommandLine(ECHO_COMMAND, argv));
}

function echoArgs(v: OptionValues<typeof ECHO_COMMAND.options>): EchoServerOptions {
  return { port: v.port, host: v.host };
}

async function main(options: EchoServerOptions): Promise<void> {
  const { loop, server } = await startEchoServer(options);
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

if (isMain(import.meta.url)) runCommand(ECHO_COMMAND, process.argv.slice(2), main, echoArgs);
