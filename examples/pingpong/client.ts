/**
 * A pingpong client in the manner of muduo's `examples/pingpong`: N sessions
 * each send one block of B bytes, then echo back whatever they receive, for T
 * seconds; the throughput is the bytes received per second, in MiB/s.
 *
 * ```sh
 * npm run echo -- --port 2007 &
 * node dist/examples/pingpong/client.js --port 2007 --sessions 100 --bytes 16384 --seconds 5
 * node dist/examples/pingpong/client.js --help
 * ```
 *
 * Every session is a netloop {@link Connector} (no reconnect) on one loop.
 *
 * @module
 */

import { Connector, ErrorCode, EventLoop, NetloopError } from 'netloop';
import type { Client } from 'netloop';
import { checkIntegerOption, defineCommand, isMain, parseCommandLine, runCommand, usageError } from '../shared/cli.js';
import type { OptionValues } from '../shared/cli.js';

/** Options of {@link runPingpong}. */
export interface PingpongOptions {
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** The echo server's port (required). */
  port: number;
  /** Concurrent sessions; default 1. */
  sessions?: number;
  /** Block size in bytes; default 16384. */
  bytes?: number;
  /** Duration in seconds; default 5. */
  seconds?: number;
}

/** What one run measured. */
export interface PingpongResult {
  sessions: number;
  bytes: number;
  /** Measured duration in seconds (from the first block sent). */
  seconds: number;
  /** Bytes received by all sessions together. */
  totalBytes: number;
  /** `totalBytes / seconds` in MiB/s. */
  mibPerSec: number;
}

/** Runs the pingpong against an echo server and resolves with the throughput. */
export async function runPingpong(options: PingpongOptions): Promise<PingpongResult> {
  const host = options.host ?? '127.0.0.1';
  const port = checkIntegerOption('port', options.port, 1, 65535);
  const sessions = checkIntegerOption('sessions', options.sessions ?? 1, 1, 100_000);
  const bytes = checkIntegerOption('bytes', options.bytes ?? 16_384, 1, 64 << 20);
  const seconds = options.seconds ?? 5;
  if (!(seconds >= 0.01 && seconds <= 3600)) throw usageError(`seconds must be a number in [0.01, 3600], got ${String(seconds)}`, 'seconds');
  const loop = new EventLoop();
  const block = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) block[i] = i % 128;
  let totalBytes = 0;
  let counting = false;
  try {
    const clients = await new Promise<Client[]>((resolve, reject) => {
      const up: Client[] = [];
      for (let i = 0; i < sessions; i++) {
        const connector = new Connector(loop, { host, port, reconnect: false, maxOutputBytes: Math.max(bytes * 4, 1 << 20) }).connect();
        connector.on('connected', (client: Client) => {
          up.push(client);
          if (up.length === sessions) resolve(up);
        });
        connector.on('data', (client: Client, chunk: Buffer) => {
          if (counting) totalBytes += chunk.length;
          client.write(chunk);
        });
        connector.on('connect-error', (err: NetloopError) => reject(err));
        connector.on('close', (_client: Client, reason: string, err?: NetloopError) => {
          if (counting) {
            reject(new NetloopError(ErrorCode.SOCKET_ERROR, `a session closed during the run (${reason})`, { cause: err, details: { reason } }));
          }
        });
      }
    });
    const start = loop.now();
    counting = true;
    for (const client of clients) client.write(block);
    await new Promise<void>((resolve) => loop.runAfter(seconds * 1000, resolve));
    counting = false;
    const elapsed = (loop.now() - start) / 1000;
    return { sessions, bytes, seconds: elapsed, totalBytes, mibPerSec: totalBytes / elapsed / (1 << 20) };
  } finally {
    counting = false;
    await loop.close({ flushTimeoutMs: 0 });
  }
}

/** The pingpong client's command line. */
export const PINGPONG_COMMAND = defineCommand({
  name: 'pingpong',
  usage: 'node dist/examples/pingpong/client.js --port N [options]',
  summary:
    "muduo's pingpong client: each session sends one block, then echoes back whatever it receives, for a while;\n" +
    'prints the throughput (bytes received per second). Run an echo server first (npm run echo).',
  options: {
    port: { type: 'integer', required: true, min: 1, max: 65535, help: "the echo server's port" },
    host: { type: 'string', default: '127.0.0.1', arg: 'H', help: "the echo server's address" },
    sessions: { type: 'integer', default: 1, min: 1, max: 100_000, help: 'concurrent connections' },
    bytes: { type: 'integer', default: 16_384, min: 1, max: 64 << 20, help: 'block size in bytes' },
    seconds: { type: 'string', default: '5', arg: 'T', check: checkSeconds, help: 'how long to run, in seconds (0.01 to 3600)' },
    json: { type: 'flag', help: 'print the result as one JSON line' },
  },
});

function checkSeconds(value: string): string | null {
  const n = Number(value);
  return value.trim() !== '' && n >= 0.01 && n <= 3600 ? null : 'must be a number of seconds in [0.01, 3600]';
}

/**
 * Parses `--port N [--host H] [--sessions N] [--bytes B] [--seconds T] [--json]`.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (`details.option`) for a bad or missing argument.
 */
export function parsePingpongArgs(argv: readonly string[]): PingpongOptions & { json: boolean } {
  return pingpongArgs(parseCommandLine(PINGPONG_COMMAND, argv));
}

function pingpongArgs(v: OptionValues<typeof PINGPONG_COMMAND.options>): PingpongOptions & { json: boolean } {
  return { port: v.port, host: v.host, sessions: v.sessions, bytes: v.bytes, seconds: Number(v.seconds), json: v.json };
}

async function main(options: PingpongOptions & { json: boolean }): Promise<void> {
  const r = await runPingpong(options);
  if (options.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    process.stdout.write(
      `${r.sessions} session(s) x ${r.bytes} B for ${r.seconds.toFixed(2)} s: ${r.mibPerSec.toFixed(1)} MiB/s (${r.totalBytes} bytes)\n`,
    );
  }
}

if (isMain(import.meta.url)) runCommand(PINGPONG_COMMAND, process.argv.slice(2), main, pingpongArgs);
