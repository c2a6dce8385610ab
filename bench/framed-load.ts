/**
 * The load generator of the latency and pipelined scenarios, run as a child
 * process against any server of `echo-server.ts`:
 *
 * ```
 * node dist/bench/framed-load.js --port P --connections C --inflight D \
 *      --size S --warmup-ms W --duration-ms T [--latency] [--json]
 * ```
 *
 * It opens C loopback connections and keeps D framed requests of S bytes in
 * flight on each: every reply read is answered by as many new requests, sent in
 * one write per read (so the generator costs less per message than the server
 * it measures). Replies during the first W ms are not counted; replies during
 * the next T ms are. With `--latency` it also records each round trip with
 * `process.hrtime.bigint()`, from the write of a request to the read of its
 * reply (requests and replies are matched in order on each connection).
 * Each request's value is S bytes of `a`; with `--json` it is a JSON object of
 * exactly S bytes instead, `{"id":1,"text":"aa…a"}` (S at least 18), for
 * servers that decode their messages as JSON.
 *
 * Prints one JSON line, {@link LoadResult}, and exits.
 *
 * @module
 */

import * as net from 'node:net';
import { emitJson, intFlag, isMain, parseFlags, runChildMain, runToResult, siblingScript } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** What the generator prints when it is done. */
export interface LoadResult {
  connections: number;
  inflight: number;
  size: number;
  /** Replies received inside the measured window. */
  replies: number;
  /** Replies received from the first request to the end of the window (warm-up included). */
  totalReplies: number;
  /** Length of the measured window in seconds. */
  seconds: number;
  /** `replies / seconds`. */
  msgsPerSec: number;
  /** Round-trip percentiles in microseconds (only with `--latency`). */
  rtt?: { samples: number; p50: number; p99: number; p999: number; max: number };
  /** Connections that failed or closed early. */
  errors: number;
}

/** Parameters of one load run (see the module comment for their meaning). */
export interface LoadParams {
  port: number;
  connections: number;
  inflight: number;
  size: number;
  warmupMs: number;
  durationMs: number;
  latency: boolean;
  /** Values are JSON objects (see the module comment) instead of plain bytes. */
  json?: boolean;
}

/**
 * Runs the generator in a child process against a server on `port` and
 * resolves with its result. The child is killed if it runs 30 s past its
 * planned duration; a run in which a connection failed is rejected.
 */
export async function runFramedLoad(params: LoadParams): Promise<LoadResult> {
  const args = [
    '--port', String(params.port),
    '--connections', String(params.connections),
    '--inflight', String(params.inflight),
    '--size', String(params.size),
    '--warmup-ms', String(params.warmupMs),
    '--duration-ms', String(params.durationMs),
  ];
  if (params.latency) args.push('--latency');
  if (params.json === true) args.push('--json');
  const result = await runToResult<LoadResult>({
    script: siblingScript(import.meta.url, 'framed-load.js'),
    args,
    timeoutMs: params.warmupMs + params.durationMs + 30_000,
    name: `load(${params.connections}x${params.inflight})`,
  });
  if (result.errors > 0 || result.replies === 0) {
    throw new NetloopError(ErrorCode.BENCH_FAILED, `load generator saw ${result.errors} connection errors and ${result.replies} replies`, {
      details: { ...result },
    });
  }
  return result;
}

/** At most this many round trips are kept (8 bytes each); later ones are not recorded. */
const MAX_SAMPLES = 4_000_000;
/** Connections opened at once, so the server's accept backlog never overflows. */
const CONNECT_BATCH = 100;
const HEADER_BYTES = 4;

/** The `q`-quantile (0..1) of sorted values, nearest-rank. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * One connection's state: its socket, the requests it owes, and (with
 * latency) a ring of send times matched in order with replies.
 *
 * ```
 *   sentAt ring (capacity = inflight):  [ t0 | t1 | t2 | .. ]
 *                                          ▲ head: oldest request still unanswered
 * ```
 */
interface Conn {
  socket: net.Socket;
  tail: Buffer | null;
  sentAt: Float64Array | null;
  head: number;
  count: number;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const port = intFlag(flags, 'port', 0);
  const connections = intFlag(flags, 'connections', 1);
  const inflight = intFlag(flags, 'inflight', 1);
  const size = intFlag(flags, 'size', 64);
  const warmupMs = intFlag(flags, 'warmup-ms', 200);
  const durationMs = intFlag(flags, 'duration-ms', 1_000);
  const latency = flags.has('latency');
  const json = flags.has('json');
  if (port === 0 || connections < 1 || inflight < 1) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, '--port, --connections and --inflight must be positive');
  }
  if (json && size < JSON_MIN_BYTES) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--size must be at least ${JSON_MIN_BYTES} with --json`, { details: { size } });
  }

  // One request repeated `inflight` times: a batch of n requests is a prefix of it.
  const frameBytes = HEADER_BYTES + size;
  const batch = Buffer.alloc(frameBytes * inflight, 0x61);
  const value = json ? jsonValue(size) : null;
  for (let i = 0; i < inflight; i++) {
    batch.writeUInt32BE(size, i * frameBytes);
    if (value !== null) value.copy(batch, i * frameBytes + HEADER_BYTES);
  }

  const samples = new Float64Array(latency ? MAX_SAMPLES : 0);
  let sampleCount = 0;
  let measuring = false;
  let stopped = false;
  let replies = 0;
  let totalReplies = 0;
  let errors = 0;

  const sendN = (conn: Conn, n: number): void => {
    if (conn.sentAt !== null) {
      const now = Number(process.hrtime.bigint());
      const cap = conn.sentAt.length;
      for (let i = 0; i < n; i++) conn.sentAt[(conn.head + conn.count + i) % cap] = now;
      conn.count += n;
    }
    conn.socket.write(n === inflight ? batch : batch.subarray(0, n * frameBytes));
  };

  const onData = (conn: Conn, chunk: Buffer): void => {
    let data = chunk;
    if (conn.tail !== null) {
      data = Buffer.concat([conn.tail, chunk]);
      conn.tail = null;
    }
    let off = 0;
    let n = 0;
    while (data.length - off >= HEADER_BYTES) {
      const len = data.readUInt32BE(off);
      if (data.length - off < HEADER_BYTES + len) break;
      off += HEADER_BYTES + len;
      n++;
    }
    if (off < data.length) conn.tail = Buffer.from(data.subarray(off));
    if (n === 0) return;
    if (conn.sentAt !== null) {
      const now = Number(process.hrtime.bigint());
      const cap = conn.sentAt.length;
      for (let i = 0; i < n; i++) {
        const sent = conn.sentAt[conn.head]!;
        conn.head = (conn.head + 1) % cap;
        conn.count--;
        if (measuring && sampleCount < MAX_SAMPLES) samples[sampleCount++] = now - sent;
      }
    }
    if (measuring) replies += n;
    if (!stopped) {
      totalReplies += n;
      sendN(conn, n);
    }
  };

  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      const conn: Conn = { socket, tail: null, sentAt: latency ? new Float64Array(inflight) : null, head: 0, count: 0 };
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', () => {
          errors++;
        });
        socket.on('close', () => {
          if (!stopped) errors++;
        });
        socket.on('data', (chunk: Buffer) => onData(conn, chunk));
        resolve(conn);
      });
      socket.once('error', reject);
    });

  const conns: Conn[] = [];
  for (let i = 0; i < connections; i += CONNECT_BATCH) {
    const group = Math.min(CONNECT_BATCH, connections - i);
    conns.push(...(await Promise.all(Array.from({ length: group }, open))));
  }

  for (const conn of conns) sendN(conn, inflight);
  await delay(warmupMs);
  measuring = true;
  const start = process.hrtime.bigint();
  await delay(durationMs);
  measuring = false;
  stopped = true;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  for (const conn of conns) conn.socket.destroy();

  const result: LoadResult = {
    connections,
    inflight,
    size,
    replies,
    totalReplies,
    seconds,
    msgsPerSec: replies / seconds,
    errors,
  };
  if (latency) {
    const sorted = samples.subarray(0, sampleCount).sort();
    const us = (ns: number): number => Math.round(ns / 10) / 100;
    result.rtt = {
      samples: sampleCount,
      p50: us(quantile(sorted, 0.5)),
      p99: us(quantile(sorted, 0.99)),
      p999: us(quantile(sorted, 0.999)),
      max: us(sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN),
    };
  }
  emitJson(result);
}

/** The smallest `--json` value: `{"id":1,"text":""}`. */
const JSON_MIN_BYTES = 18;

/** A JSON object of exactly `size` bytes (ASCII): `{"id":1,"text":"aa…a"}`. */
export function jsonValue(size: number): Buffer {
  return Buffer.from(`{"id":1,"text":"${'a'.repeat(size - JSON_MIN_BYTES)}"}`, 'utf8');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (isMain(import.meta.url)) runChildMain(main);
