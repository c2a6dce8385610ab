/**
 * Both processes of the RPC scenario, in one script:
 *
 * ```
 * node dist/bench/rpc-peers.js --role server --impl rpc|map [--port 0]
 * node dist/bench/rpc-peers.js --role load --impl rpc|map --port P --connections C --inflight D \
 *      --size S --warmup-ms W --duration-ms T [--latency]
 * ```
 *
 * Two ways of making calls over netloop's framed connections, each written
 * as its user would write it, on both ends:
 * - `rpc`: netloop's request/response (`enableRpc`, `rpc.handle('Echo', ...)`,
 *   `rpc.call(client, 'Echo', payload)`), with its timeouts, limits and
 *   counters on;
 * - `map`: the hand-written baseline, over raw frames: the caller puts a u32
 *   call id before the payload, sends it with `sendRaw` and keeps the
 *   promise's resolver in a `Map` of call ids; the server echoes each frame
 *   with `onRawFrame` + `sendRaw` (so the id comes back); the reply's id finds
 *   the resolver. No timeout, no limit, no error reply: the least code that
 *   correlates replies.
 *
 * ```
 *   map request / reply    [ call id u32 | payload (S bytes) ]                   frame type 1
 *   rpc request            [ 0x01 | call id u32 | type u32 | payload ]           frame type 0xfff0
 *   rpc reply              [ 0x02 | call id u32 | payload ]
 * ```
 *
 * The load opens C connections (FramedConnectors on one loop) and keeps D
 * calls in flight on each: D loops per connection, each awaiting its call
 * and making the next. Calls completed during the first W ms are not
 * counted; those of the next T ms are. It prints one JSON line
 * ({@link RpcLoadResult}): calls per second, the process's own CPU time per
 * call in the window (`process.cpuUsage`), and, with `--latency`, round-trip
 * percentiles from `process.hrtime.bigint()` around each call.
 *
 * The server prints `listening <port>`, and answers the control line `cpu`
 * with its `process.cpuUsage()` as JSON, so the parent can charge the
 * server's CPU time to the calls of one run.
 *
 * @module
 */

import { EventLoop } from '../lib/reactor/event-loop.js';
import { FramedServer } from '../lib/framing/framed-server.js';
import { FramedConnector } from '../lib/framing/framed-connector.js';
import type { FramedClient } from '../lib/framing/framed-client.js';
import { defineCalls } from '../lib/messaging/rpc-calls.js';
import { enableRpc } from '../lib/messaging/rpc.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';
import {
  announceListening,
  emitJson,
  intFlag,
  isMain,
  onControl,
  parseFlags,
  runChildMain,
  runToResult,
  siblingScript,
  startServer,
  stringFlag,
} from './processes.js';
import type { ServerChild } from './processes.js';
import { quantile } from './framed-load.js';

/** The two implementations compared. */
export type RpcImpl = 'rpc' | 'map';

/** The one call of the benchmark: raw bytes in, the same bytes out. */
const calls = defineCalls({ Echo: { id: 1, request: 'raw', reply: 'raw' } });
/** The frame type of the baseline's calls and replies. */
const MAP_TYPE = 1;
/** Connections opened at once, so the server's accept backlog never overflows. */
const CONNECT_BATCH = 100;
/** At most this many round trips are kept for the percentiles. */
const MAX_SAMPLES = 2_000_000;

/** What the load prints when it is done. */
export interface RpcLoadResult {
  impl: RpcImpl;
  connections: number;
  inflight: number;
  /** Calls completed inside the measured window. */
  calls: number;
  /** Calls completed in the whole run, warm-up included (the server's CPU time is divided by it). */
  totalCalls: number;
  seconds: number;
  callsPerSec: number;
  /** The load process's CPU time (user + system) per call in the window, in microseconds. */
  cpuUsPerCall: number;
  /** Round-trip percentiles in microseconds (with `--latency`). */
  rtt?: { samples: number; p50: number; p99: number; p999: number };
  errors: number;
}

/** Parameters of one load run. */
export interface RpcLoadParams {
  impl: RpcImpl;
  port: number;
  connections: number;
  inflight: number;
  size: number;
  warmupMs: number;
  durationMs: number;
  latency: boolean;
}

/** Starts a server child of `impl`, bounded to `timeoutMs`. */
export function startRpcServer(impl: RpcImpl, timeoutMs: number): Promise<ServerChild> {
  return startServer({
    script: siblingScript(import.meta.url, 'rpc-peers.js'),
    args: ['--role', 'server', '--impl', impl],
    timeoutMs,
    name: `rpc-server:${impl}`,
  });
}

/** The CPU time (user + system, microseconds) a server child has used so far. */
export async function serverCpuUs(server: ServerChild): Promise<number> {
  server.handle.send('cpu');
  const cpu = await server.handle.nextJson<{ user: number; system: number }>(10_000, 'the cpu reply');
  return cpu.user + cpu.system;
}

/** Runs a load child and resolves with its result; a run with errors or no calls is rejected. */
export async function runRpcLoad(p: RpcLoadParams): Promise<RpcLoadResult> {
  const args = [
    '--role', 'load',
    '--impl', p.impl,
    '--port', String(p.port),
    '--connections', String(p.connections),
    '--inflight', String(p.inflight),
    '--size', String(p.size),
    '--warmup-ms', String(p.warmupMs),
    '--duration-ms', String(p.durationMs),
  ];
  if (p.latency) args.push('--latency');
  const result = await runToResult<RpcLoadResult>({
    script: siblingScript(import.meta.url, 'rpc-peers.js'),
    args,
    timeoutMs: p.warmupMs + p.durationMs + 30_000,
    name: `rpc-load:${p.impl}(${p.connections}x${p.inflight})`,
  });
  if (result.errors > 0 || result.calls === 0) {
    throw new NetloopError(ErrorCode.BENCH_FAILED, `rpc load saw ${result.errors} errors and ${result.calls} calls`, { details: { ...result } });
  }
  return result;
}

async function serve(impl: RpcImpl, port: number): Promise<number> {
  const loop = new EventLoop();
  const options = { host: '127.0.0.1', port, backlog: 4096, maxConnections: 100_000 };
  if (impl === 'map') {
    const server = await new FramedServer(loop, {
      ...options,
      // The id travels inside the value: echoing the frame answers the call.
      onRawFrame: (client, type, source, start, end) => void client.sendRaw(type, source, start, end),
    }).listen();
    return server.port;
  }
  const server = await new FramedServer(loop, options).listen();
  enableRpc(server, { calls }).handle('Echo', (_client, bytes) => bytes);
  return server.port;
}

/** The hand-written correlation of the baseline: one per connection. */
interface MapPeer {
  client: FramedClient;
  next: number;
  readonly waiting: Map<number, (reply: Buffer) => void>;
}

async function load(p: RpcLoadParams): Promise<RpcLoadResult> {
  const loop = new EventLoop();
  const payload = Buffer.alloc(p.size, 0x61);
  const samples = new Float64Array(p.latency ? MAX_SAMPLES : 0);
  let sampleCount = 0;
  let measuring = false;
  let stopped = false;
  let counted = 0;
  let total = 0;
  let errors = 0;

  // One caller per connection: `call()` returns the reply's promise.
  let makeCaller: (connector: FramedConnector) => (client: FramedClient) => Promise<Buffer>;
  let framing: { onRawFrame?: (client: FramedClient, type: number, source: Buffer, start: number, end: number) => void };
  if (p.impl === 'map') {
    framing = {
      onRawFrame(client, _type, source, start, end) {
        const peer = client.context as MapPeer;
        const id = source.readUInt32BE(start);
        const resolve = peer.waiting.get(id);
        if (resolve === undefined) return;
        peer.waiting.delete(id);
        resolve(source.subarray(start + 4, end));
      },
    };
    makeCaller = () => (client) => {
      let peer = client.context as MapPeer | undefined;
      if (peer === undefined) client.context = peer = { client, next: 0, waiting: new Map() };
      const id = (peer.next = peer.next >= 0xffffffff ? 1 : peer.next + 1);
      const frame = Buffer.allocUnsafe(4 + payload.length);
      frame.writeUInt32BE(id, 0);
      payload.copy(frame, 4);
      client.sendRaw(MAP_TYPE, frame);
      const waiting = peer.waiting;
      return new Promise<Buffer>((resolve) => waiting.set(id, resolve));
    };
  } else {
    framing = {};
    makeCaller = (connector) => {
      const rpc = enableRpc(connector, { calls });
      return (client) => rpc.call(client, 'Echo', payload);
    };
  }

  const open = async (): Promise<{ client: FramedClient; call: (client: FramedClient) => Promise<Buffer> }> => {
    const connector = new FramedConnector(loop, { host: '127.0.0.1', port: p.port, reconnect: false, ...framing });
    const call = makeCaller(connector);
    const client = await new Promise<FramedClient>((resolve, reject) => {
      connector.once('connected', resolve);
      connector.once('connect-error', reject);
      connector.connect();
    });
    connector.on('close', () => {
      if (!stopped) errors++;
    });
    return { client, call };
  };
  const conns: Array<{ client: FramedClient; call: (client: FramedClient) => Promise<Buffer> }> = [];
  for (let i = 0; i < p.connections; i += CONNECT_BATCH) {
    const group = Math.min(CONNECT_BATCH, p.connections - i);
    conns.push(...(await Promise.all(Array.from({ length: group }, open))));
  }

  const worker = async (conn: { client: FramedClient; call: (client: FramedClient) => Promise<Buffer> }): Promise<void> => {
    while (!stopped) {
      const t0 = p.latency ? process.hrtime.bigint() : 0n;
      const reply = await conn.call(conn.client);
      if (reply.length !== p.size) errors++;
      total++;
      if (measuring) {
        counted++;
        if (p.latency && sampleCount < MAX_SAMPLES) samples[sampleCount++] = Number(process.hrtime.bigint() - t0) / 1000;
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  for (const conn of conns) for (let k = 0; k < p.inflight; k++) workers.push(worker(conn).catch(() => void errors++));

  await delay(p.warmupMs);
  measuring = true;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  await delay(p.durationMs);
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  stopped = true;
  const result: RpcLoadResult = {
    impl: p.impl,
    connections: p.connections,
    inflight: p.inflight,
    calls: counted,
    totalCalls: total,
    seconds,
    callsPerSec: counted / seconds,
    cpuUsPerCall: (cpu.user + cpu.system) / Math.max(1, counted),
    errors,
  };
  if (p.latency) {
    const sorted = samples.subarray(0, sampleCount).sort();
    result.rtt = { samples: sampleCount, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999) };
  }
  return result;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function implFlag(flags: Map<string, string | true>): RpcImpl {
  const impl = stringFlag(flags, 'impl', 'rpc');
  if (impl !== 'rpc' && impl !== 'map') throw new NetloopError(ErrorCode.INVALID_OPTION, `--impl must be rpc or map, got ${impl}`);
  return impl;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const role = stringFlag(flags, 'role', 'server');
  const impl = implFlag(flags);
  if (role === 'server') {
    const port = await serve(impl, intFlag(flags, 'port', 0));
    onControl((line) => {
      if (line === 'cpu') emitJson(process.cpuUsage());
    });
    announceListening(port);
    return;
  }
  const params: RpcLoadParams = {
    impl,
    port: intFlag(flags, 'port', 0),
    connections: intFlag(flags, 'connections', 1),
    inflight: intFlag(flags, 'inflight', 1),
    size: intFlag(flags, 'size', 64),
    warmupMs: intFlag(flags, 'warmup-ms', 200),
    durationMs: intFlag(flags, 'duration-ms', 1_000),
    latency: flags.has('latency'),
  };
  if (params.port === 0 || params.connections < 1 || params.inflight < 1) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, '--port, --connections and --inflight must be positive');
  }
  emitJson(await load(params));
  process.exit(0);
}

if (isMain(import.meta.url)) runChildMain(main);
