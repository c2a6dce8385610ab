/**
 * The etcd store scenario: operations per second of `EtcdStore` (create,
 * create under `maxPerUser`, get, touch as a heartbeat, update, isOnline,
 * delete, and a page of `list`) with 16 operations in flight on one client, beside `etcd3`'s
 * raw `put` and `get` of a value of the record's size at the same depth, on
 * the same etcd in the same run:
 *
 * ```
 *   etcd (started here, one member, loopback, etcd's default raft timing)
 *     ▲                                  ▲
 *     │ EtcdStore (etcd3 inside)          │ etcd3 kv.put / kv.range, one key each
 *     │ 1 client, 16 in flight            │ 1 client, 16 in flight
 *     └─ netloop                          └─ baselines "etcd3 put", "etcd3 get"
 *
 *   per repetition, in turn: store create, create (maxPerUser), get, touch, update, isOnline, list, delete,
 *                            then raw put, raw get; medians over the repetitions
 * ```
 *
 * What each store operation is in etcd: create is one transaction that
 * compares three keys and puts five (a raft write, like a put); with
 * `maxPerUser` it first reads the user's keys (one more round trip); get is
 * one range; touches issued together share transactions (up to 25 sessions
 * each, the session's five keys put again with the lease of their new
 * expiry; a range first for a session the store does not know); update is
 * one transaction guarded by the record's revision (a range first for a
 * session the store does not know); isOnline is one range over the user's
 * index entries (each carries the session's expiry and binding); delete is
 * one transaction deleting the keys; a list page of 100 reads every list entry
 * (`sessions` of them), then the page's records. Write ratios are against a
 * raw put, read ratios against a raw get.
 *
 * Run alone: `node dist/bench/etcd-store.js [--quick]`. Needs `etcd` on the
 * PATH (Debian: etcd-server) and the `etcd3` package.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import type { Watcher } from 'etcd3';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { isMain } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';
import { EtcdStore } from '../lib/store/etcd/etcd-store.js';
import type { SessionChange, SessionRecord } from '../lib/store/contract.js';
import { startEtcdServer } from '../test/helpers/etcd-server.js';
import type { EtcdServer } from '../test/helpers/etcd-server.js';

/** Operations in flight on the one client, for the store and the baselines. */
const DEPTH = 16;
/** etcd's own default raft timing (the test harness shortens it to start faster), so figures match a stock etcd. */
const ETCD_DEFAULT_TIMING = ['--heartbeat-interval', '100', '--election-timeout', '1000'];
const OPS = ['create', 'create-max', 'get', 'touch', 'update', 'is-online', 'delete', 'list'] as const;
type Op = (typeof OPS)[number];
const WRITES: ReadonlySet<Op> = new Set(['create', 'create-max', 'touch', 'update', 'delete']);

interface Sizes {
  /** Sessions per measured batch (each write op runs once per session). */
  n: number;
  /** Reads of a list page per batch. */
  lists: number;
  /** Changes published one at a time per batch, for the feed's latency. */
  changes: number;
  /** Repetitions; medians are reported. */
  runs: number;
}

const SIZES: Record<'quick' | 'full', Sizes> = {
  quick: { n: 400, lists: 30, changes: 100, runs: 1 },
  full: { n: 5_000, lists: 300, changes: 1_000, runs: 5 },
};

/** Runs `count` calls of `fn` with `depth` of them in flight at any time; resolves with ops/s. */
async function drive(count: number, depth: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return count / ((performance.now() - started) / 1_000);
}

/** How long the feed's latency measurement waits for one event before it fails (at-least-once delivery: an event is never expected to be lost while etcd runs). */
const ARRIVAL_TIMEOUT_MS = 30_000;

/** The value at quantile `q` (0..1) of `xs`, nearest rank. */
function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/**
 * Latencies in µs of `count` sends made one at a time, each from the call of
 * `send(i)` to `arrived(i)` resolving (the other end's event for it).
 */
async function oneByOne(count: number, send: (i: number) => Promise<unknown>, arrived: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const seen = arrived(i);
    await send(i);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NetloopError(ErrorCode.BENCH_FAILED, `event ${i} did not arrive within ${ARRIVAL_TIMEOUT_MS} ms`)), ARRIVAL_TIMEOUT_MS);
    });
    try {
      await Promise.race([seen, late]);
    } finally {
      clearTimeout(timer);
    }
    out.push((performance.now() - started) * 1_000);
  }
  return out;
}

/** Resolves `arrived(i)` when the i-th event comes in (events named by their index). */
class Arrivals {
  readonly #waiting = new Map<number, () => void>();
  readonly #early = new Set<number>();
  arrived(i: number): Promise<void> {
    if (this.#early.delete(i)) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.set(i, resolve));
  }
  saw(i: number): void {
    const resolve = this.#waiting.get(i);
    if (resolve === undefined) this.#early.add(i);
    else {
      this.#waiting.delete(i);
      resolve();
    }
  }
}

function records(n: number, run: number, tag: string): SessionRecord[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const name = `${tag}-${run}-${i}`;
    return {
      id: `bench-${name}`,
      tokenHash: createHash('sha256').update(name).digest('hex'),
      userId: `user-${i % 1_000}`,
      connectionId: `conn-${name}`,
      remoteAddress: '127.0.0.1',
      remotePort: null,
      state: 'ACTIVE',
      metadata: { room: 'lobby' },
      stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
      createdAt: now,
      lastActiveAt: now,
      expiresAt: now + 600_000,
      ttl: 600_000,
    } as SessionRecord;
  });
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  let server: EtcdServer;
  try {
    server = await startEtcdServer({ extraArgs: ETCD_DEFAULT_TIMING });
  } catch (err) {
    throw new NetloopError(ErrorCode.BENCH_FAILED, `cannot start etcd: ${(err as Error).message}`, { cause: err });
  }
  options.progress(server.commandLine);
  const store = new EtcdStore({ hosts: [...server.endpoints], prefix: 'bench/', commandTimeoutMs: 30_000 });
  const raw = new Etcd3({ hosts: [...server.endpoints] });
  // The feed: a second store on the prefix (another process's view) and a second raw client.
  const peer = new EtcdStore({ hosts: [...server.endpoints], prefix: 'bench/', commandTimeoutMs: 30_000 });
  const rawWatchClient = new Etcd3({ hosts: [...server.endpoints] });
  const feed = { p50: [] as number[], p99: [] as number[] };
  const rawFeed = { p50: [] as number[], p99: [] as number[] };
  let watcher: Watcher | undefined;
  const ours: Record<Op, number[]> = { create: [], 'create-max': [], get: [], touch: [], update: [], 'is-online': [], delete: [], list: [] };
  const rawPut: number[] = [];
  const rawGet: number[] = [];
  const rawCreate: number[] = [];
  try {
    await store.ping(); // Connects: the first measured call is not a connect.
    const value = Buffer.from(JSON.stringify(records(1, 0, 'size')[0]));
    const key = (i: number): Buffer => Buffer.from(`raw/${i}`);
    await raw.kv.put({ key: key(0), value });
    const lease = (await raw.leaseClient.leaseGrant({ TTL: 3_600, ID: 0 })).ID;
    const storeArrivals = new Arrivals();
    let feedBatch = 0;
    peer.on('change', (c) => {
      const [batch, i] = c.id.slice('feed-'.length).split('-').map(Number);
      if (batch === feedBatch) storeArrivals.saw(i!);
    });
    await new Promise<void>((resolve) => (peer.feedUp ? resolve() : peer.once('feed', () => resolve())));
    const rawArrivals = new Arrivals();
    watcher = await rawWatchClient.watch().prefix('rawfeed/').create();
    watcher.on('put', (kv) => {
      const [batch, i] = kv.key.toString().slice('rawfeed/'.length).split('-').map(Number);
      if (batch === feedBatch) rawArrivals.saw(i!);
    });
    for (let r = 0; r < sizes.runs; r++) {
      options.progress(`run ${r + 1}/${sizes.runs}`);
      const recs = records(sizes.n, r, 'a');
      const limited = records(sizes.n, r, 'b');
      ours.create.push(await drive(sizes.n, DEPTH, (i) => store.create(recs[i]!)));
      ours['create-max'].push(await drive(sizes.n, DEPTH, (i) => store.create(limited[i]!, { maxPerUser: 1_000 })));
      ours.get.push(await drive(sizes.n, DEPTH, (i) => store.get(recs[i]!.id)));
      const later = Date.now() + 900_000;
      ours.touch.push(await drive(sizes.n, DEPTH, (i) => store.touch(recs[i]!.id, later, later - 600_000)));
      ours.update.push(await drive(sizes.n, DEPTH, (i) => store.update(recs[i]!.id, { metadata: { room: 'hall' }, stats: { add: { messagesIn: 1 } } })));
      ours['is-online'].push(await drive(sizes.n, DEPTH, (i) => store.isOnline(recs[i]!.userId!)));
      ours.list.push(await drive(sizes.lists, DEPTH, (i) => store.list({}, { offset: (i * 100) % sizes.n, limit: 100 })));
      ours.delete.push(await drive(sizes.n, DEPTH, (i) => store.delete(recs[i]!.id)));
      await drive(sizes.n, DEPTH, (i) => store.delete(limited[i]!.id));
      rawPut.push(await drive(sizes.n, DEPTH, (i) => raw.kv.put({ key: key(i), value })));
      rawGet.push(await drive(sizes.n, DEPTH, (i) => raw.kv.range({ key: key(i) })));
      rawCreate.push(await drive(sizes.n, DEPTH, (i) => raw.kv.txn(createFloor(`floor/${r}/${i}`, value, lease))));
      feedBatch = r;
      const change = (i: number): SessionChange => ({ kind: 'ended', id: `feed-${r}-${i}`, connectionId: `c-${i}`, userId: `user-${i}`, reason: 'kicked', origin: 'bench', at: Date.now() });
      const ended = await oneByOne(sizes.changes, (i) => store.publish(change(i)), (i) => storeArrivals.arrived(i));
      const rawEnded = await oneByOne(
        sizes.changes,
        (i) => raw.kv.put({ key: Buffer.from(`rawfeed/${r}-${i}`), value: Buffer.from(JSON.stringify(change(i))), lease }),
        (i) => rawArrivals.arrived(i),
      );
      feed.p50.push(quantile(ended, 0.5));
      feed.p99.push(quantile(ended, 0.99));
      rawFeed.p50.push(quantile(rawEnded, 0.5));
      rawFeed.p99.push(quantile(rawEnded, 0.99));
    }
    const left = await store.count();
    if (left !== 0) throw new NetloopError(ErrorCode.BENCH_FAILED, `the store should be empty after the deletes, holds ${left}`);
  } finally {
    await store.close();
    await peer.close();
    raw.close();
    // A watcher left open keeps etcd3 reconnecting after its client is closed: cancel it first.
    await watcher?.cancel();
    rawWatchClient.close();
    await server.stop();
  }

  const out: Measurement[] = [];
  for (const op of OPS) {
    const write = WRITES.has(op);
    out.push(
      measurement({
        scenario: 'etcd-store',
        params: op === 'list' ? { op, page: 100, sessions: sizes.n, inFlight: DEPTH } : { op, inFlight: DEPTH },
        metric: 'throughput',
        unit: 'ops/s',
        baselineName: `etcd3 ${write ? 'put' : 'get'} of a record-sized value, ${DEPTH} in flight`,
        higherIsBetter: true,
        runs: { netloop: ours[op], baseline: write ? rawPut : rawGet },
      }),
    );
  }
  out.push(
    measurement({
      scenario: 'etcd-store',
      params: { op: 'create', inFlight: DEPTH },
      metric: 'throughput',
      unit: 'ops/s',
      baselineName: `etcd3 txn of a create's own keys (3 compares, 5 puts on a lease), ${DEPTH} in flight`,
      higherIsBetter: true,
      runs: { netloop: ours.create, baseline: rawCreate },
    }),
  );
  for (const p of ['p50', 'p99'] as const) {
    out.push(
      measurement({
        scenario: 'etcd-store',
        params: { op: 'publish-to-change', inFlight: 1 },
        metric: `latency_${p}`,
        unit: 'us',
        baselineName: `etcd3 put on one client to its watch event on another, 1 in flight`,
        higherIsBetter: false,
        runs: { netloop: feed[p], baseline: rawFeed[p] },
      }),
    );
  }
  return out;
}

/** The floor of a create: the same compares and puts (with a lease) as the store's transaction, built by hand (no checks, no JSON). */
function createFloor(name: string, value: Buffer, lease: string): Parameters<Etcd3['kv']['txn']>[0] {
  const keys = ['s', 't', 'c', 'u', 'l'].map((k) => Buffer.from(`${k}/${name}`));
  const small = Buffer.from('['.padEnd(60, '0'));
  return {
    compare: keys.slice(0, 3).map((key) => ({ key, target: 'Mod' as const, result: 'Equal' as const, mod_revision: 0 })),
    success: keys.map((key, i) => ({ request_put: { key, value: i === 0 ? value : small, lease } })),
  };
}

/** The etcd store scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'etcd-store',
  description: `EtcdStore create/get/touch/update/isOnline/delete/list ops/s with ${DEPTH} in flight vs etcd3's raw put and get, same etcd, same run`,
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
