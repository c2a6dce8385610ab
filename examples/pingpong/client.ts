/**
 * A pingpong client in the manner of muduo's `examples/pingpong`: N sessions
 * each send one block of B bytes, then echo back whatever they receive, for T
 * seconds; the throughput is the bytes received per second, in MiB/s.
 *
 * ```sh
 * npm run echo -- --port 2007 &
 * node dist/examples/pingpong/client.js --port 2007 --sessions 100 --bytes 16384 --seconds 5
 * ```
 *
 * Every session is a netloop {@link Connector} (no reconnect) on one loop.
 *
 * @module
 */

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { Client } from '../../lib/reactor/client.js';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';
import { checkInteger, checkNumber } from '../../lib/core/validate.js';
import { Connector } from '../../lib/reactor/connector.js';

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
  const port = checkInteger('port', options.port, 1, 65535);
  const sessions = checkInteger('sessions', options.sessions ?? 1, 1, 100_000);
  const bytes = checkInteger('bytes', options.bytes ?? 16_384, 1, 64 << 20);
  const seconds = checkNumber('seconds', options.seconds ?? 5, 0.01, 3600);
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

/** Parses `--host H --port N --sessions N --bytes B --seconds T [--json]`. */
export function parsePingpongArgs(argv: readonly string[]): PingpongOptions & { json: boolean } {
  const out: Partial<PingpongOptions> & { json: boolean } = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') {
      out.json = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || !['--host', '--port', '--sessions', '--bytes', '--seconds'].includes(arg)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `bad argument ${arg} (usage: --port N [--host H] [--sessions N] [--bytes B] [--seconds T] [--json])`, {
        details: { option: arg },
      });
    }
    i++;
    if (arg === '--host') out.host = value;
    else (out as Record<string, unknown>)[arg.slice(2)] = Number(value);
  }
  if (out.port === undefined) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, '--port is required', { details: { option: 'port' } });
  }
  return out as PingpongOptions & { json: boolean };
}

async function main(): Promise<void> {
  const options = parsePingpongArgs(process.argv.slice(2));
  const r = await runPingpong(options);
  if (options.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    process.stdout.write(
      `${r.sessions} session(s) x ${r.bytes} B for ${r.seconds.toFixed(2)} s: ${r.mibPerSec.toFixed(1)} MiB/s (${r.totalBytes} bytes)\n`,
    );
  }
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
