/**
 * Which etcd client an `EtcdStore` should use: the `etcd3` package (gRPC over
 * HTTP/2, protobuf) or etcd's JSON gateway (grpc-gateway, HTTP/1.1, base64
 * keys) through Node's own HTTP clients. All are measured against the same
 * `etcd`, started here on loopback ports, in one run, alternating:
 *
 * ```
 *                       ┌─ etcd3 (gRPC, one HTTP/2 channel)        raw KV/Lease RPCs, one keep-alive stream
 *   etcd (one member) ◄─┼─ gateway via fetch (undici)              POST /v3/kv/put, /range, /txn, /lease/...
 *                       └─ gateway via node:http (keep-alive agent) the same requests, another HTTP client
 *
 *   1. unary operations   put, get (range), txn (two create-if-absent puts), lease grant,
 *                         lease keep-alive; 1 and 64 in flight; ops/s, p50, p99, client CPU per op
 *   2. watch              time to create a watch; put → event delivery p50/p99 (writer on
 *                         another connection); put throughput with a prefix watcher vs without
 *   3. leases at scale    N sessions with a lease each vs sessions grouped into lease buckets by
 *                         expiry time, each on a fresh etcd: grants, one heartbeat round
 *                         (keep-alives vs batched re-puts), bytes on the wire, etcd memory, expiry
 * ```
 *
 * Every cell runs for a fixed time; each repetition starts with the next
 * client in turn, so no client always gets the first slot of a drifting
 * machine. Figures are medians of the repetitions, with the spread.
 *
 * Run: `node dist/bench/etcd-client.js [--quick] [--sessions N] [--reps N]`.
 * Needs `etcd` on the PATH (Debian: etcd-server) and the `etcd3` package.
 *
 * @module
 */

import * as http from 'node:http';
import { Etcd3 } from 'etcd3';
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { intFlag, isMain, parseFlags, runChildMain } from './processes.js';
import { median } from './scenario.js';
import { describeSystem, loadAverage, systemFacts } from './system.js';
import { startEtcdServer } from '../test/helpers/etcd-server.js';
import type { EtcdServer } from '../test/helpers/etcd-server.js';

// ─── sizes ───────────────────────────────────────────────────────────────────

interface Sizes {
  /** How long each (operation, depth, client) cell runs, in ms. */
  cellMs: number;
  /** Repetitions of every cell; medians are reported. */
  reps: number;
  /** Watch creations timed per client and repetition. */
  watchCreates: number;
  /** Sequential puts whose event delivery is timed, per client and repetition. */
  deliveries: number;
  /** Sessions in the lease comparison. */
  sessions: number;
  /** Repetitions of the lease comparison (each variant on a fresh etcd). */
  leaseReps: number;
}

const SIZES: Record<'quick' | 'full', Sizes> = {
  quick: { cellMs: 40, reps: 3, watchCreates: 5, deliveries: 20, sessions: 500, leaseReps: 1 },
  full: { cellMs: 1_500, reps: 5, watchCreates: 30, deliveries: 400, sessions: 10_000, leaseReps: 3 },
};

const DEPTHS = [1, 64] as const;
/** etcd's own default raft timing (the test harness shortens it to start faster), so figures match a stock etcd. */
const ETCD_DEFAULT_TIMING = ['--heartbeat-interval', '100', '--election-timeout', '1000'];
const VALUE = 'v'.repeat(64);
/** Session TTL of the lease comparison, in seconds; heartbeats come every TTL/3. */
const SESSION_TTL_S = 60;
/** Width of a lease bucket, in seconds: a session may outlive its TTL by up to this much. */
const BUCKET_S = 5;
/** Puts per transaction when bucket sessions are re-attached (etcd's default --max-txn-ops is 128). */
const TXN_OPS = 128;

// ─── one client interface, three implementations ─────────────────────────────

/** A watch that has been created (the server confirmed it). */
interface OpenWatch {
  close(): void;
}

/** What the benchmark asks of a client; each call is one request to etcd. */
interface BenchClient {
  readonly name: string;
  put(key: string, value: string, lease?: string): Promise<void>;
  get(key: string): Promise<string | null>;
  /** One transaction: if neither key exists (create_revision == 0), put both. Resolves whether it succeeded. */
  createBoth(a: string, b: string, value: string): Promise<boolean>;
  /** One transaction of several puts, each with its lease. */
  putMany(puts: ReadonlyArray<{ key: string; value: string; lease: string }>): Promise<void>;
  /** Grants a lease; resolves with its id (decimal string). */
  grant(ttlSeconds: number): Promise<string>;
  /** One keep-alive of one lease; resolves with the TTL etcd granted (0: unknown lease). */
  keepAlive(id: string): Promise<number>;
  /**
   * Keep-alives of several leases sent together (one write each on the gRPC
   * stream; one request whose body holds one line per lease through the gateway).
   */
  keepAliveMany(ids: readonly string[]): Promise<number[]>;
  revoke(id: string): Promise<void>;
  /** Watches every key under `prefix`; resolves once etcd confirmed the watch. */
  watch(prefix: string, onPut: (key: string, value: string) => void): Promise<OpenWatch>;
  close(): void;
}

/** The key just after every key starting with `prefix` (a prefix watch's or range's end). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** etcd3: raw KV and Lease RPCs, and one shared bidirectional keep-alive stream. */
class GrpcClient implements BenchClient {
  readonly name = 'etcd3 (gRPC)';
  private readonly client: Etcd3;
  private keepAliveStream: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | undefined;
  /** Keep-alive replies come back in request order on the one stream. */
  private readonly keepAliveWaiters: Array<{ resolve: (ttl: number) => void; reject: (err: Error) => void }> = [];

  constructor(endpoints: readonly string[]) {
    this.client = new Etcd3({ hosts: [...endpoints] });
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) });
  }

  async get(key: string): Promise<string | null> {
    const res = await this.client.kv.range({ key: Buffer.from(key) });
    const kv = res.kvs[0];
    return kv === undefined ? null : kv.value.toString('utf8');
  }

  async createBoth(a: string, b: string, value: string): Promise<boolean> {
    const ka = Buffer.from(a);
    const kb = Buffer.from(b);
    const v = Buffer.from(value);
    const res = await this.client.kv.txn({
      compare: [
        { key: ka, target: 'Create', result: 'Equal', create_revision: 0 },
        { key: kb, target: 'Create', result: 'Equal', create_revision: 0 },
      ],
      success: [{ request_put: { key: ka, value: v } }, { request_put: { key: kb, value: v } }],
    });
    return res.succeeded;
  }

  async putMany(puts: ReadonlyArray<{ key: string; value: string; lease: string }>): Promise<void> {
    await this.client.kv.txn({
      success: puts.map((p) => ({ request_put: { key: Buffer.from(p.key), value: Buffer.from(p.value), lease: p.lease } })),
    });
  }

  async grant(ttlSeconds: number): Promise<string> {
    return (await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID;
  }

  private stream(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    if (this.keepAliveStream === undefined) {
      this.keepAliveStream = this.client.leaseClient.leaseKeepAlive().then((stream) => {
        stream.on('data', (res: ILeaseKeepAliveResponse) => this.keepAliveWaiters.shift()?.resolve(Number(res.TTL)));
        stream.on('error', (err: Error) => {
          this.keepAliveStream = undefined;
          for (const waiter of this.keepAliveWaiters.splice(0)) waiter.reject(err);
        });
        return stream;
      });
    }
    return this.keepAliveStream;
  }

  async keepAlive(id: string): Promise<number> {
    const stream = await this.stream();
    return new Promise((resolve, reject) => {
      this.keepAliveWaiters.push({ resolve, reject });
      stream.write({ ID: id });
    });
  }

  keepAliveMany(ids: readonly string[]): Promise<number[]> {
    return Promise.all(ids.map((id) => this.keepAlive(id)));
  }

  async revoke(id: string): Promise<void> {
    await this.client.leaseClient.leaseRevoke({ ID: id });
  }

  async watch(prefix: string, onPut: (key: string, value: string) => void): Promise<OpenWatch> {
    const watcher = await this.client.watch().prefix(prefix).create();
    watcher.on('put', (kv) => onPut(kv.key.toString('utf8'), kv.value.toString('utf8')));
    return { close: () => void watcher.cancel() };
  }

  close(): void {
    this.client.close();
  }
}

/** Sends one JSON body to a gateway path and resolves with the response text. */
type Post = (path: string, body: string) => Promise<string>;
/** Opens a streaming POST (a watch) and resolves with its body chunks once the headers arrived. */
type Stream = (path: string, body: string, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>;

class GatewayError extends Error {
  constructor(path: string, status: number, body: string) {
    super(`${path} answered ${status}: ${body.slice(0, 200)}`);
  }
}

/** fetch (undici, Node's built-in): one request per call; undici pools connections per origin. */
function fetchTransport(base: string): { post: Post; stream: Stream } {
  return {
    async post(path, body) {
      const res = await fetch(base + path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const text = await res.text();
      if (!res.ok) throw new GatewayError(path, res.status, text);
      return text;
    },
    async stream(path, body, signal) {
      const res = await fetch(base + path, { method: 'POST', body, signal, headers: { 'content-type': 'application/json' } });
      if (!res.ok || res.body === null) throw new GatewayError(path, res.status, await res.text());
      return res.body as unknown as AsyncIterable<Uint8Array>;
    },
  };
}

/** node:http with a keep-alive agent (one socket per request in flight, reused). */
function httpTransport(base: string, agent: http.Agent): { post: Post; stream: Stream } {
  const request = (path: string, body: string, signal?: AbortSignal): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = http.request(new URL(path, base), {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        ...(signal === undefined ? {} : { signal }),
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end(body);
    });
  return {
    async post(path, body) {
      const res = await request(path, body);
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      if (res.statusCode !== 200) throw new GatewayError(path, res.statusCode ?? 0, text);
      return text;
    },
    async stream(path, body, signal) {
      const res = await request(path, body, signal);
      if (res.statusCode !== 200) throw new GatewayError(path, res.statusCode ?? 0, '');
      res.on('error', () => undefined); // An aborted watch ends its response with an error.
      return res;
    },
  };
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | undefined): string => (text === undefined ? '' : Buffer.from(text, 'base64').toString('utf8'));

/**
 * etcd's JSON gateway: proto3 JSON, so bytes are base64, 64-bit integers are
 * strings, and fields holding their zero value are left out (a failed
 * transaction has no `succeeded`, an unknown lease's keep-alive no `TTL`).
 */
class GatewayClient implements BenchClient {
  private readonly post: Post;
  private readonly streamPost: Stream;

  constructor(
    readonly name: string,
    transport: { post: Post; stream: Stream },
    private readonly onClose: () => void = () => undefined,
  ) {
    this.post = transport.post;
    this.streamPost = transport.stream;
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.post('/v3/kv/put', JSON.stringify({ key: b64(key), value: b64(value), ...(lease === undefined ? {} : { lease }) }));
  }

  async get(key: string): Promise<string | null> {
    const res = JSON.parse(await this.post('/v3/kv/range', JSON.stringify({ key: b64(key) }))) as { kvs?: Array<{ value?: string }> };
    return res.kvs === undefined ? null : unb64(res.kvs[0]!.value);
  }

  async createBoth(a: string, b: string, value: string): Promise<boolean> {
    const ka = b64(a);
    const kb = b64(b);
    const v = b64(value);
    const res = JSON.parse(
      await this.post(
        '/v3/kv/txn',
        JSON.stringify({
          compare: [
            { key: ka, target: 'CREATE', result: 'EQUAL', create_revision: '0' },
            { key: kb, target: 'CREATE', result: 'EQUAL', create_revision: '0' },
          ],
          success: [{ request_put: { key: ka, value: v } }, { request_put: { key: kb, value: v } }],
        }),
      ),
    ) as { succeeded?: boolean };
    return res.succeeded === true;
  }

  async putMany(puts: ReadonlyArray<{ key: string; value: string; lease: string }>): Promise<void> {
    await this.post(
      '/v3/kv/txn',
      JSON.stringify({ success: puts.map((p) => ({ request_put: { key: b64(p.key), value: b64(p.value), lease: p.lease } })) }),
    );
  }

  async grant(ttlSeconds: number): Promise<string> {
    return (JSON.parse(await this.post('/v3/lease/grant', JSON.stringify({ TTL: String(ttlSeconds) }))) as { ID: string }).ID;
  }

  async keepAlive(id: string): Promise<number> {
    // A bidirectional stream behind the gateway; one body line, one result line, then the request ends.
    const res = JSON.parse(await this.post('/v3/lease/keepalive', JSON.stringify({ ID: id }))) as { result?: { TTL?: string } };
    return Number(res.result?.TTL ?? 0);
  }

  /** Keep-alive answers the gateway dropped in {@link keepAliveMany} (each resent), and those asked for. */
  lostAnswers = 0;
  askedAnswers = 0;

  async keepAliveMany(ids: readonly string[]): Promise<number[]> {
    // The gateway decodes the body as a stream of messages and answers each on the response
    // stream, but it ends the response when the request body ends, dropping answers still in
    // flight (about half of 64, often). The unanswered are sent again until all are answered.
    const ttl = new Map<string, number>();
    let pending = [...new Set(ids)];
    while (pending.length > 0) {
      this.askedAnswers += pending.length;
      const text = await this.post('/v3/lease/keepalive', pending.map((ID) => JSON.stringify({ ID })).join('\n'));
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        const result = (JSON.parse(line) as { result?: { ID?: string; TTL?: string } }).result;
        if (result?.ID !== undefined) ttl.set(result.ID, Number(result.TTL ?? 0));
      }
      const answered = pending.length;
      pending = pending.filter((id) => !ttl.has(id));
      this.lostAnswers += pending.length;
      if (pending.length === answered) throw new Error('the gateway answered no keep-alive');
    }
    return ids.map((id) => ttl.get(id)!);
  }

  async revoke(id: string): Promise<void> {
    await this.post('/v3/lease/revoke', JSON.stringify({ ID: id }));
  }

  async watch(prefix: string, onPut: (key: string, value: string) => void): Promise<OpenWatch> {
    const key = Buffer.from(prefix);
    const abort = new AbortController();
    const body = await this.streamPost(
      '/v3/watch',
      JSON.stringify({ create_request: { key: key.toString('base64'), range_end: prefixEnd(key).toString('base64') } }),
      abort.signal,
    );
    let confirm: () => void = () => undefined;
    let fail: (err: Error) => void = () => undefined;
    const created = new Promise<void>((resolve, reject) => {
      confirm = resolve;
      fail = reject;
    });
    // The response is newline-delimited JSON: {"result":{"created":true}}, then {"result":{"events":[...]}}.
    void (async () => {
      const decoder = new TextDecoder();
      let partial = '';
      try {
        for await (const chunk of body) {
          const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) {
            if (line.trim() === '') continue;
            const msg = JSON.parse(line) as {
              result?: { created?: boolean; events?: Array<{ type?: string; kv: { key: string; value?: string } }> };
            };
            if (msg.result?.created === true) confirm();
            for (const event of msg.result?.events ?? []) {
              if (event.type === undefined) onPut(unb64(event.kv.key), unb64(event.kv.value));
            }
          }
        }
        fail(new Error('the watch stream ended'));
      } catch (err) {
        fail(err as Error);
      }
    })();
    await created;
    return { close: () => abort.abort() };
  }

  close(): void {
    this.onClose();
  }
}

type ClientKind = 'grpc' | 'fetch' | 'http';
const KINDS: readonly ClientKind[] = ['grpc', 'fetch', 'http'];

function makeClient(kind: ClientKind, server: EtcdServer): BenchClient {
  if (kind === 'grpc') return new GrpcClient(server.endpoints);
  if (kind === 'fetch') return new GatewayClient('gateway via fetch', fetchTransport(server.url));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return new GatewayClient('gateway via node:http', httpTransport(server.url, agent), () => agent.destroy());
}

// ─── measuring ───────────────────────────────────────────────────────────────

interface CellResult {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this (client) process per operation, in µs: user + system. */
  cpuUsPerOp: number;
  /** CPU time of etcd per operation, in µs (its process_cpu_seconds_total, 10 ms resolution). */
  serverCpuUsPerOp: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * Runs `op` with `depth` calls in flight until `durationMs` has passed (calls
 * already started finish) and measures throughput, latency and client CPU.
 */
async function drive(durationMs: number, depth: number, op: (i: number) => Promise<unknown>): Promise<CellResult> {
  const latencies: number[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const end = started + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      await op(next++);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const sorted = Float64Array.from(latencies).sort();
  return {
    opsPerSec: (latencies.length / elapsed) * 1_000,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    cpuUsPerOp: (cpu.user + cpu.system) / latencies.length,
    serverCpuUsPerOp: Number.NaN,
  };
}

/** One sample of etcd's /metrics (NaN when absent). */
const metric = (m: Map<string, number>, name: string): number => m.get(name) ?? Number.NaN;

/** etcd's CPU time so far, in µs. */
async function serverCpuUs(server: EtcdServer): Promise<number> {
  return metric(await server.metrics(), 'process_cpu_seconds_total') * 1e6;
}

/** {@link drive}, also charging etcd's CPU time over the cell to its operations. */
async function driveWithServer(server: EtcdServer, durationMs: number, depth: number, op: (i: number) => Promise<unknown>): Promise<CellResult> {
  const before = await serverCpuUs(server);
  let calls = 0;
  const r = await drive(durationMs, depth, (i) => {
    calls++;
    return op(i);
  });
  return { ...r, serverCpuUsPerOp: ((await serverCpuUs(server)) - before) / calls };
}

/** A cell whose calls each carried `perCall` operations: throughput and CPU per operation, latency per call. */
function scaled(r: CellResult, perCall: number): CellResult {
  return { ...r, opsPerSec: r.opsPerSec * perCall, cpuUsPerOp: r.cpuUsPerOp / perCall, serverCpuUsPerOp: r.serverCpuUsPerOp / perCall };
}

/** Runs `count` calls of `fn` with `depth` in flight; resolves with the elapsed ms. */
async function batch(count: number, depth: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(depth, count) }, worker));
  return performance.now() - started;
}

/** The clients in the order of repetition `rep`: each repetition starts with the next one. */
function rotation<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

const fmt = (x: number, digits = 0): string =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–';
const spread = (xs: readonly number[]): string => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;

/** Compacts etcd's history to the current revision and drops the benchmark's keys, so repetitions start alike. */
async function resetStore(server: EtcdServer): Promise<void> {
  const del = await fetch(`${server.url}/v3/kv/deleterange`, {
    method: 'POST',
    body: JSON.stringify({ key: b64('bench/'), range_end: prefixEnd(Buffer.from('bench/')).toString('base64') }),
  });
  const revision = (JSON.parse(await del.text()) as { header: { revision: string } }).header.revision;
  await (await fetch(`${server.url}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) })).text();
}

// ─── 1. unary operations ─────────────────────────────────────────────────────

const UNARY_OPS = ['put', 'get', 'txn', 'lease grant', 'keep-alive', 'keep-alive x64'] as const;
type UnaryOp = (typeof UNARY_OPS)[number];
/** Keep-alives per call of 'keep-alive x64', which runs one call at a time. */
const KEEPALIVE_BATCH = 64;
const depthsOf = (op: UnaryOp): readonly number[] => (op === 'keep-alive x64' ? [1] : DEPTHS);
const opsPerCall = (op: UnaryOp): number => (op === 'keep-alive x64' ? KEEPALIVE_BATCH : 1);

async function unary(server: EtcdServer, sizes: Sizes, log: (line: string) => void): Promise<string[]> {
  const clients = new Map(KINDS.map((k) => [k, makeClient(k, server)] as const));
  const admin = clients.get('grpc') as GrpcClient;
  const results = new Map<string, CellResult[]>(); // `${op}|${depth}|${kind}` → one per repetition
  const granted: string[] = [];
  const lost: string[] = [];
  try {
    await admin.put('bench/get', VALUE);
    // Leases kept alive in turn by the keep-alive cells, granted once.
    const kept = await Promise.all(Array.from({ length: 64 }, () => admin.grant(600)));
    const runOp = (client: BenchClient, op: UnaryOp, tag: string): ((i: number) => Promise<unknown>) => {
      switch (op) {
        case 'put':
          return (i) => client.put(`bench/put/${i % 1_000}`, VALUE);
        case 'get':
          return () => client.get('bench/get');
        case 'txn':
          return async (i) => {
            if (!(await client.createBoth(`bench/txn/${tag}/${i}/a`, `bench/txn/${tag}/${i}/b`, VALUE))) throw new Error('txn failed');
          };
        case 'lease grant':
          return async () => granted.push(await client.grant(600));
        case 'keep-alive':
          return async (i) => {
            if ((await client.keepAlive(kept[i % kept.length]!)) <= 0) throw new Error('keep-alive of an unknown lease');
          };
        case 'keep-alive x64':
          return async () => {
            if ((await client.keepAliveMany(kept)).some((ttl) => ttl <= 0)) throw new Error('keep-alive of an unknown lease');
          };
      }
    };
    // Warm-up: connections opened, code paths compiled.
    for (const [kind, client] of clients) {
      for (const op of UNARY_OPS) await drive(Math.min(200, sizes.cellMs), 64, runOp(client, op, `warm-${kind}`));
    }
    for (let rep = 0; rep < sizes.reps; rep++) {
      log(`unary operations: repetition ${rep + 1}/${sizes.reps} (load ${loadAverage().join(', ')})`);
      for (const op of UNARY_OPS) {
        for (const depth of depthsOf(op)) {
          for (const kind of rotation(KINDS, rep + UNARY_OPS.indexOf(op))) {
            const r = scaled(await driveWithServer(server, sizes.cellMs, depth, runOp(clients.get(kind)!, op, `${kind}-${rep}-${depth}`)), opsPerCall(op));
            const key = `${op}|${depth}|${kind}`;
            results.set(key, [...(results.get(key) ?? []), r]);
          }
        }
      }
      // Untimed cleanup, so every repetition starts from the same store.
      await batch(granted.length, 64, (i) => admin.revoke(granted[i]!));
      granted.length = 0;
      await resetStore(server);
      await admin.put('bench/get', VALUE);
    }
    for (const [kind, client] of clients) {
      if (client instanceof GatewayClient && client.askedAnswers > 0) {
        lost.push(`${clientName(kind)}: ${fmt((100 * client.lostAnswers) / client.askedAnswers, 1)} % of ${fmt(client.askedAnswers)} batched keep-alives unanswered and resent`);
      }
    }
  } finally {
    for (const client of clients.values()) client.close();
  }

  const lines = [
    '| operation | in flight | client | ops/s (median) | spread | vs etcd3 | p50 ms | p99 ms | client CPU µs/op | etcd CPU µs/op |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const op of UNARY_OPS) {
    for (const depth of depthsOf(op)) {
      const base = median(results.get(`${op}|${depth}|grpc`)!.map((r) => r.opsPerSec));
      for (const kind of KINDS) {
        const rs = results.get(`${op}|${depth}|${kind}`)!;
        const ops = rs.map((r) => r.opsPerSec);
        lines.push(
          `| ${op} | ${opsPerCall(op) === 1 ? depth : `${depth} call of ${opsPerCall(op)}`} | ${clientName(kind)} | ${fmt(median(ops))} | ${spread(ops)} | ${fmt(median(ops) / base, 2)}x | ${fmt(
            median(rs.map((r) => r.p50Ms)),
            2,
          )} | ${fmt(median(rs.map((r) => r.p99Ms)), 2)} | ${fmt(median(rs.map((r) => r.cpuUsPerOp)))} | ${fmt(
            median(rs.map((r) => r.serverCpuUsPerOp)),
          )} |`,
        );
      }
    }
  }
  if (lost.length > 0) lines.push('', `keep-alive x64 through the gateway: ${lost.join('; ')}.`);
  return lines;
}

function clientName(kind: ClientKind): string {
  return kind === 'grpc' ? 'etcd3 (gRPC)' : kind === 'fetch' ? 'gateway, fetch' : 'gateway, node:http';
}

// ─── 2. watch ────────────────────────────────────────────────────────────────

interface WatchResult {
  createMs: number[];
  deliveryMs: number[];
  /** Put ops/s at 64 in flight: without a watcher, then with a prefix watcher receiving every event. */
  putsPlain: number;
  putsWatched: number;
  /** Client CPU per put while watched (writer and watcher are both in this process). */
  cpuUsWatched: number;
  cpuUsPlain: number;
}

async function watchOnce(kind: ClientKind, server: EtcdServer, sizes: Sizes, rep: number): Promise<WatchResult> {
  const watcherClient = makeClient(kind, server);
  const writer = makeClient(kind, server); // Another connection (another channel or pool).
  const prefix = `bench/watch/${kind}/${rep}/`;
  try {
    const createMs: number[] = [];
    for (let i = 0; i < sizes.watchCreates; i++) {
      const t = performance.now();
      const w = await watcherClient.watch(`${prefix}create/${i}/`, () => undefined);
      createMs.push(performance.now() - t);
      w.close();
    }

    // Delivery: one put at a time from the writer; the time from the put's start to the event's arrival.
    const sentAt = new Map<string, number>();
    const deliveryMs: number[] = [];
    let arrived: (() => void) | undefined;
    const w = await watcherClient.watch(`${prefix}d/`, (key) => {
      const t = sentAt.get(key);
      if (t !== undefined) {
        deliveryMs.push(performance.now() - t);
        sentAt.delete(key);
        arrived?.();
      }
    });
    for (let i = 0; i < sizes.deliveries; i++) {
      const key = `${prefix}d/${i}`;
      const seen = new Promise<void>((resolve) => (arrived = resolve));
      sentAt.set(key, performance.now());
      await writer.put(key, VALUE);
      await seen;
    }
    w.close();

    // Throughput: puts at 64 in flight, alone, then with a watcher of their prefix in this process.
    const plain = await drive(sizes.cellMs, 64, (i) => writer.put(`${prefix}t/${i % 1_000}`, VALUE));
    let events = 0;
    const tw = await watcherClient.watch(`${prefix}w/`, () => events++);
    const watched = await drive(sizes.cellMs, 64, (i) => writer.put(`${prefix}w/${i % 1_000}`, VALUE));
    tw.close();
    if (events === 0) throw new Error(`${kind}: the watcher saw no event`);
    return {
      createMs,
      deliveryMs,
      putsPlain: plain.opsPerSec,
      putsWatched: watched.opsPerSec,
      cpuUsPlain: plain.cpuUsPerOp,
      cpuUsWatched: watched.cpuUsPerOp,
    };
  } finally {
    watcherClient.close();
    writer.close();
  }
}

async function watchSection(server: EtcdServer, sizes: Sizes, log: (line: string) => void): Promise<string[]> {
  const results = new Map<ClientKind, WatchResult[]>();
  for (let rep = 0; rep < sizes.reps; rep++) {
    log(`watch: repetition ${rep + 1}/${sizes.reps}`);
    for (const kind of rotation(KINDS, rep)) {
      results.set(kind, [...(results.get(kind) ?? []), await watchOnce(kind, server, sizes, rep)]);
    }
  }
  const lines = [
    '| client | watch created, p50 ms | put → event p50 ms | p99 ms | puts/s at 64, no watcher | with watcher | ratio | client CPU µs/put, no watcher | with watcher |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const kind of KINDS) {
    const rs = results.get(kind)!;
    const all = (pick: (r: WatchResult) => number[]): Float64Array => Float64Array.from(rs.flatMap(pick)).sort();
    const plain = median(rs.map((r) => r.putsPlain));
    const watched = median(rs.map((r) => r.putsWatched));
    lines.push(
      `| ${clientName(kind)} | ${fmt(percentile(all((r) => r.createMs), 0.5), 2)} | ${fmt(percentile(all((r) => r.deliveryMs), 0.5), 2)} | ${fmt(
        percentile(all((r) => r.deliveryMs), 0.99),
        2,
      )} | ${fmt(plain)} | ${fmt(watched)} | ${fmt(watched / plain, 2)}x | ${fmt(median(rs.map((r) => r.cpuUsPlain)))} | ${fmt(
        median(rs.map((r) => r.cpuUsWatched)),
      )} |`,
    );
  }
  return lines;
}

// ─── 3. lease per session vs lease buckets ───────────────────────────────────

interface LeaseResult {
  leases: number;
  grantMs: number;
  attachMs: number;
  /** One heartbeat of every session: a keep-alive each, or re-puts in transactions. */
  heartbeatMs: number;
  heartbeatRequests: number;
  /** Bytes etcd received and sent on its client gRPC port during the heartbeat round. */
  heartbeatBytes: number;
  /** etcd's growth from start to after the heartbeat round. */
  dbBytes: number;
  heapBytes: number;
  rssBytes: number;
  /** etcd's CPU time over the heartbeat round, in ms. */
  heartbeatCpuMs: number;
  /** Revoking every lease (what expiry costs etcd: each revoke deletes its keys). */
  expireMs: number;
  /** etcd's CPU time over the revocations, in ms. */
  expireCpuMs: number;
}

const grpcBytes = (m: Map<string, number>): number =>
  metric(m, 'etcd_network_client_grpc_received_bytes_total') + metric(m, 'etcd_network_client_grpc_sent_bytes_total');

async function leaseVariant(
  variant: 'per-session' | 'buckets',
  kind: ClientKind,
  sessions: number,
  log: (line: string) => void,
): Promise<LeaseResult> {
  const server = await startEtcdServer({ extraArgs: ETCD_DEFAULT_TIMING });
  const client = makeClient(kind, server);
  try {
    const before = await server.metrics();
    const keys = Array.from({ length: sessions }, (_, i) => `bench/session/${i}`);
    let leases: string[];
    let leaseOf: (i: number) => string;
    let grantMs: number;
    if (variant === 'per-session') {
      leases = new Array<string>(sessions);
      grantMs = await batch(sessions, 64, async (i) => (leases[i] = await client.grant(SESSION_TTL_S)));
      leaseOf = (i) => leases[i]!;
    } else {
      // Expiry times spread evenly over one TTL (sessions arrive at random): a bucket per BUCKET_S,
      // each lease living until its bucket's end.
      const buckets = Math.ceil(SESSION_TTL_S / BUCKET_S) + 1;
      leases = new Array<string>(buckets);
      grantMs = await batch(buckets, 64, async (b) => (leases[b] = await client.grant(SESSION_TTL_S + b * BUCKET_S)));
      leaseOf = (i) => leases[Math.floor((i * (buckets - 1)) / sessions)]!;
    }
    const attachMs = await batch(sessions, 64, (i) => client.put(keys[i]!, VALUE, leaseOf(i)));

    const mid = await server.metrics();
    let heartbeatMs: number;
    let heartbeatRequests: number;
    if (variant === 'per-session') {
      heartbeatRequests = sessions;
      heartbeatMs = await batch(sessions, 64, (i) => client.keepAlive(leases[i]!));
    } else {
      // A heartbeat moves the session to the newest bucket: re-put with that lease, TXN_OPS per transaction.
      const newest = leases.at(-1)!;
      heartbeatRequests = Math.ceil(sessions / TXN_OPS);
      heartbeatMs = await batch(heartbeatRequests, 64, (t) =>
        client.putMany(keys.slice(t * TXN_OPS, (t + 1) * TXN_OPS).map((key) => ({ key, value: VALUE, lease: newest }))),
      );
    }
    const after = await server.metrics();
    const expireCpu0 = await serverCpuUs(server);
    const expireMs = await batch(leases.length, 64, (i) => client.revoke(leases[i]!));
    const expireCpuMs = ((await serverCpuUs(server)) - expireCpu0) / 1_000;
    const result: LeaseResult = {
      leases: leases.length,
      grantMs,
      attachMs,
      heartbeatMs,
      heartbeatRequests,
      heartbeatBytes: grpcBytes(after) - grpcBytes(mid),
      heartbeatCpuMs: (metric(after, 'process_cpu_seconds_total') - metric(mid, 'process_cpu_seconds_total')) * 1_000,
      dbBytes: metric(after, 'etcd_mvcc_db_total_size_in_bytes') - metric(before, 'etcd_mvcc_db_total_size_in_bytes'),
      heapBytes: metric(after, 'go_memstats_heap_inuse_bytes') - metric(before, 'go_memstats_heap_inuse_bytes'),
      rssBytes: metric(after, 'process_resident_memory_bytes') - metric(before, 'process_resident_memory_bytes'),
      expireMs,
      expireCpuMs,
    };
    log(`leases, ${variant}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    client.close();
    await server.stop();
  }
}

async function leaseSection(kind: ClientKind, sizes: Sizes, log: (line: string) => void): Promise<string[]> {
  const variants = ['per-session', 'buckets'] as const;
  const results = new Map<string, LeaseResult[]>();
  for (let rep = 0; rep < sizes.leaseReps; rep++) {
    for (const variant of rotation(variants, rep)) {
      log(`leases: ${variant}, repetition ${rep + 1}/${sizes.leaseReps}, ${sizes.sessions} sessions`);
      results.set(variant, [...(results.get(variant) ?? []), await leaseVariant(variant, kind, sizes.sessions, log)]);
    }
  }
  const period = SESSION_TTL_S / 3;
  const med = (variant: string, pick: (r: LeaseResult) => number): number => median(results.get(variant)!.map(pick));
  const mib = (x: number): string => fmt(x / (1024 * 1024), 1);
  const lines = [
    `| ${sizes.sessions.toLocaleString('en-US')} sessions, TTL ${SESSION_TTL_S} s, heartbeat every ${period} s | lease per session | lease buckets (${BUCKET_S} s) |`,
    '|---|---:|---:|',
    `| leases granted | ${fmt(med('per-session', (r) => r.leases))} | ${fmt(med('buckets', (r) => r.leases))} |`,
    `| grant all, ms | ${fmt(med('per-session', (r) => r.grantMs))} | ${fmt(med('buckets', (r) => r.grantMs))} |`,
    `| put every session key with its lease, ms | ${fmt(med('per-session', (r) => r.attachMs))} | ${fmt(med('buckets', (r) => r.attachMs))} |`,
    `| one heartbeat round: requests | ${fmt(med('per-session', (r) => r.heartbeatRequests))} keep-alives | ${fmt(
      med('buckets', (r) => r.heartbeatRequests),
    )} txns of ${TXN_OPS} puts |`,
    `| one heartbeat round, ms | ${fmt(med('per-session', (r) => r.heartbeatMs))} | ${fmt(med('buckets', (r) => r.heartbeatMs))} |`,
    `| one heartbeat round, etcd CPU ms | ${fmt(med('per-session', (r) => r.heartbeatCpuMs))} | ${fmt(med('buckets', (r) => r.heartbeatCpuMs))} |`,
    `| one heartbeat round, KiB on etcd's client port | ${fmt(med('per-session', (r) => r.heartbeatBytes) / 1024)} | ${fmt(
      med('buckets', (r) => r.heartbeatBytes) / 1024,
    )} |`,
    `| steady heartbeat load, requests/s | ${fmt(sizes.sessions / period)} | ${fmt(sizes.sessions / period / TXN_OPS, 1)} (+ ${fmt(
      1 / BUCKET_S,
      1,
    )} grants/s) |`,
    `| etcd db growth, MiB | ${mib(med('per-session', (r) => r.dbBytes))} | ${mib(med('buckets', (r) => r.dbBytes))} |`,
    `| etcd heap in use growth, MiB | ${mib(med('per-session', (r) => r.heapBytes))} | ${mib(med('buckets', (r) => r.heapBytes))} |`,
    `| etcd RSS growth, MiB | ${mib(med('per-session', (r) => r.rssBytes))} | ${mib(med('buckets', (r) => r.rssBytes))} |`,
    `| expire all (revoke every lease), ms | ${fmt(med('per-session', (r) => r.expireMs))} | ${fmt(med('buckets', (r) => r.expireMs))} |`,
    `| expire all, etcd CPU ms | ${fmt(med('per-session', (r) => r.expireCpuMs))} | ${fmt(med('buckets', (r) => r.expireCpuMs))} |`,
  ];
  return lines;
}

// ─── main ────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const base = flags.has('quick') ? SIZES.quick : SIZES.full;
  const sizes: Sizes = {
    ...base,
    reps: intFlag(flags, 'reps', base.reps),
    sessions: intFlag(flags, 'sessions', base.sessions),
    leaseReps: intFlag(flags, 'lease-reps', base.leaseReps),
  };
  const leaseClient = (flags.get('lease-client') ?? 'grpc') as ClientKind;
  const log = (line: string): void => void process.stderr.write(`etcd-client: ${line}\n`);
  const started = performance.now();
  const out: string[] = [`# etcd clients: etcd3 (gRPC) vs the JSON gateway (${flags.has('quick') ? 'quick' : 'full'} run)`, ''];
  out.push(...describeSystem(systemFacts()).map((l) => `    ${l}`), '');

  const server = await startEtcdServer({ extraArgs: ETCD_DEFAULT_TIMING });
  try {
    const version = JSON.parse((await (await fetch(`${server.url}/version`)).text())) as { etcdserver: string };
    out.push(`    etcd ${version.etcdserver}: ${server.commandLine}`, '');
    out.push(`## Unary operations (${sizes.cellMs} ms per cell, ${sizes.reps} repetitions, medians)`, '');
    out.push(...(await unary(server, sizes, log)), '');
    out.push(`## Watch (${sizes.reps} repetitions; latencies pooled over them)`, '');
    out.push(...(await watchSection(server, sizes, log)), '');
  } finally {
    await server.stop();
  }
  out.push(`## Lease per session vs lease buckets (${clientName(leaseClient)}, each variant on a fresh etcd, ${sizes.leaseReps} repetitions, medians)`, '');
  out.push(...(await leaseSection(leaseClient, sizes, log)), '');
  out.push(`load average at the end: ${loadAverage().join(', ')}; took ${fmt((performance.now() - started) / 1_000, 1)} s`);
  process.stdout.write(`${out.join('\n')}\n`);
}

if (isMain(import.meta.url)) runChildMain(main);
