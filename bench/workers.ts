/**
 * One port, many processes: the pingpong and the pipelined load against a
 * {@link WorkerPool} of 2 worker processes, beside the same pool with 1
 * worker, measured in the same run. Two figures per point:
 * - throughput, as the load generator measures it (MiB/s, msg/s);
 * - CPU time per message, from the servers' own accounts: the sum of
 *   `process.cpuUsage()` of every worker and of the primary, over the
 *   messages the workers handled in the same window (a pingpong "message" is
 *   one 16 KiB block, counted from the bytes read; a pipelined one is a frame).
 *
 * ```
 *   parent (this scenario)
 *     ├─ child: node dist/bench/workers.js --serve raw|framed --workers 1   (a cluster primary; prints "listening <port>")
 *     ├─ child: node dist/bench/workers.js --serve raw|framed --workers 2
 *     │     stdin "stats" ─▶ the primary asks each worker over IPC ─▶ {"cpuUs":…,"messages":…,"perWorker":[…]}
 *     └─ child: the load generator (pingpong.js --load, or framed-load.js), one process, against either pool
 * ```
 *
 * The load generator is one process, so it can use one core at most: on a
 * machine with two cores, the workers and the generator share them, and the
 * throughput ratio shows what the machine allows, not what a second worker
 * adds; CPU per message is the figure that carries over to bigger machines
 * (see docs/guides/many-processes.md for the scaling model). The two pools
 * take turns, in alternating order, and the figures are medians.
 *
 * Standalone: `node dist/bench/workers.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import cluster from 'node:cluster';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
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
import { runFramedLoad } from './framed-load.js';
import { PINGPONG_BYTES } from './pingpong.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';
import { EventLoop } from '../lib/reactor/event-loop.js';
import { FramedServer } from '../lib/framing/framed-server.js';
import type { Server } from '../lib/reactor/server.js';
import type { FramedClient } from '../lib/framing/framed-client.js';
import { WorkerPool } from '../lib/cluster/worker-pool.js';
import { joinWorkerPool } from '../lib/cluster/join-worker-pool.js';

/** The two servers: the raw echo (pingpong) and the framed echo (pipelined). */
export type WorkersServe = 'raw' | 'framed';

/** What a pool reports on `stats`: CPU of every process and messages handled so far. */
export interface PoolStats {
  /** User + system CPU of the workers and the primary, in µs, since each started. */
  cpuUs: number;
  /** Messages the workers handled (pingpong: bytes read / block size; pipelined: frames). */
  messages: number;
  /** Each worker's messages, by slot. */
  perWorker: number[];
}

const PIPELINED_BYTES = 64;
/** [connections, in flight per connection] of the pipelined points. */
const PIPELINED_POINTS = [
  [100, 1],
  [100, 100],
] as const;
const PINGPONG_SESSIONS = 100;
const PLAN = {
  full: { runs: 5, pingpongSeconds: 3, warmupMs: 300, durationMs: 2_000 },
  quick: { runs: 1, pingpongSeconds: 1, warmupMs: 100, durationMs: 300 },
};
const WORKER_COUNTS = [1, 2] as const;

/** A message of the bench's own, over the cluster IPC channel: the primary asks, each worker answers. */
interface StatsAsk {
  bench: 'stats';
}
interface StatsAnswer {
  bench: 'stats';
  cpuUs: number;
  messages: number;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// ─── the worker ──────────────────────────────────────────────────────────────

async function serveWorker(serve: WorkersServe): Promise<void> {
  let messages = 0;
  let server: Server | FramedServer;
  if (serve === 'raw') {
    // The echo example's server, with a tap counting what it reads.
    const { startEchoServer } = await import('../examples/echo/server.js');
    server = (await startEchoServer({ host: '127.0.0.1', port: 0 })).server;
    let bytes = 0;
    server.addReadTap((_c, chunk) => {
      bytes += chunk.length;
      messages = Math.floor(bytes / PINGPONG_BYTES);
    });
  } else {
    // The pipelined scenario's netloop echo (the raw frame API), counting frames.
    server = await new FramedServer(new EventLoop(), {
      host: '127.0.0.1',
      port: 0,
      backlog: 4096,
      maxConnections: 100_000,
      layout: 'muduo',
      onRawFrame(client: FramedClient, type: number, source: Buffer, start: number, end: number): void {
        messages++;
        client.sendRaw(type, source, start, end);
      },
    }).listen();
  }
  process.on('message', (msg: StatsAsk) => {
    if (msg?.bench === 'stats') process.send!({ bench: 'stats', cpuUs: cpuUs(), messages } satisfies StatsAnswer);
  });
  joinWorkerPool(server, { flushTimeoutMs: 1_000 });
}

// ─── the primary ─────────────────────────────────────────────────────────────

async function servePrimary(workers: number): Promise<void> {
  let port = 0;
  cluster.once('listening', (_w, address) => (port = address.port));
  const pool = await new WorkerPool({ workers, drainTimeoutMs: 3_000 }).start();
  const stats = async (): Promise<PoolStats> => {
    const answers = await Promise.all(
      pool.workers().map(
        (w) =>
          new Promise<StatsAnswer>((resolve) => {
            const onMessage = (msg: StatsAnswer): void => {
              if (msg?.bench !== 'stats') return;
              w.worker.off('message', onMessage);
              resolve(msg);
            };
            w.worker.on('message', onMessage);
            w.worker.send({ bench: 'stats' } satisfies StatsAsk);
          }),
      ),
    );
    return {
      cpuUs: cpuUs() + answers.reduce((s, a) => s + a.cpuUs, 0),
      messages: answers.reduce((s, a) => s + a.messages, 0),
      perWorker: answers.map((a) => a.messages),
    };
  };
  onControl(
    (line) => {
      if (line === 'stats') void stats().then((s) => emitJson(s));
    },
    () => void pool.close().then(() => process.exit(0)),
  );
  announceListening(port);
}

// ─── the scenario ────────────────────────────────────────────────────────────

async function startPool(serve: WorkersServe, workers: number, budgetMs: number): Promise<ServerChild> {
  return startServer({
    script: siblingScript(import.meta.url, 'workers.js'),
    args: ['--serve', serve, '--workers', String(workers)],
    timeoutMs: budgetMs,
    name: `pool:${serve}x${workers}`,
    startTimeoutMs: 30_000,
  });
}

async function poolStats(pool: ServerChild): Promise<PoolStats> {
  pool.handle.send('stats');
  return pool.handle.nextJson<PoolStats>(10_000, 'the pool stats');
}

/** One load against one pool: its throughput and the servers' CPU per message (µs). */
interface Sample {
  throughput: number;
  cpuPerMessage: number;
  /** The busiest worker's share of the messages (1 with one worker; 0.5 is even). */
  busiestShare: number;
}

async function sample(pool: ServerChild, load: () => Promise<number>): Promise<Sample> {
  const before = await poolStats(pool);
  const throughput = await load();
  const after = await poolStats(pool);
  const messages = after.messages - before.messages;
  if (!(messages > 0)) throw new NetloopError(ErrorCode.BENCH_FAILED, 'the workers counted no messages', { details: { before, after } });
  const per = after.perWorker.map((m, i) => m - (before.perWorker[i] ?? 0));
  return { throughput, cpuPerMessage: (after.cpuUs - before.cpuUs) / messages, busiestShare: Math.max(...per) / messages };
}

interface Point {
  scenario: 'pingpong' | 'pipelined';
  params: Record<string, number>;
  unit: string;
  serve: WorkersServe;
  load: (port: number) => Promise<number>;
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const points: Point[] = [
    {
      scenario: 'pingpong',
      params: { sessions: PINGPONG_SESSIONS, bytes: PINGPONG_BYTES },
      unit: 'MiB/s',
      serve: 'raw',
      load: async (port) => {
        const r = await runToResult<{ mibPerSec: number }>({
          script: siblingScript(import.meta.url, 'pingpong.js'),
          args: ['--load', '--port', String(port), '--sessions', String(PINGPONG_SESSIONS), '--bytes', String(PINGPONG_BYTES), '--seconds', String(plan.pingpongSeconds)],
          timeoutMs: plan.pingpongSeconds * 1000 + 30_000,
          name: 'load:pingpong',
        });
        return r.mibPerSec;
      },
    },
    ...PIPELINED_POINTS.map(
      ([connections, inflight]): Point => ({
        scenario: 'pipelined',
        params: { connections, inflight, bytes: PIPELINED_BYTES },
        unit: 'msg/s',
        serve: 'framed',
        load: async (port) =>
          (await runFramedLoad({ port, connections, inflight, size: PIPELINED_BYTES, warmupMs: plan.warmupMs, durationMs: plan.durationMs, latency: false }))
            .msgsPerSec,
      }),
    ),
  ];
  const budgetMs = 30 * 60_000;
  const pools = new Map<string, ServerChild>();
  const out: Measurement[] = [];
  try {
    for (const serve of ['raw', 'framed'] as const) {
      for (const n of WORKER_COUNTS) pools.set(`${serve}x${n}`, await startPool(serve, n, budgetMs));
    }
    for (const point of points) {
      const samples = new Map<number, Sample[]>(WORKER_COUNTS.map((n) => [n, []]));
      for (let r = 0; r < plan.runs; r++) {
        const order = r % 2 === 0 ? [...WORKER_COUNTS] : [...WORKER_COUNTS].reverse();
        for (const n of order) {
          options.progress(`${point.scenario} ${JSON.stringify(point.params)}, ${n} worker(s), run ${r + 1}/${plan.runs}`);
          const pool = pools.get(`${point.serve}x${n}`)!;
          samples.get(n)!.push(await sample(pool, () => point.load(pool.port)));
        }
      }
      const two = samples.get(2)!;
      const one = samples.get(1)!;
      const shares = two.map((s) => s.busiestShare.toFixed(2)).join(', ');
      options.progress(`${point.scenario}: busiest of 2 workers handled ${shares} of the messages`);
      const base = { scenario: `workers-${point.scenario}`, baselineName: '1 worker' };
      out.push(
        measurement({
          ...base,
          params: { ...point.params, workers: 2 },
          metric: 'throughput',
          unit: point.unit,
          higherIsBetter: true,
          runs: { netloop: two.map((s) => s.throughput), baseline: one.map((s) => s.throughput) },
        }),
        measurement({
          ...base,
          params: { ...point.params, workers: 2 },
          metric: 'cpu_per_msg',
          unit: 'us/msg',
          higherIsBetter: false,
          runs: { netloop: two.map((s) => round3(s.cpuPerMessage)), baseline: one.map((s) => round3(s.cpuPerMessage)) },
        }),
      );
    }
  } finally {
    await Promise.all([...pools.values()].map((p) => p.handle.kill()));
  }
  return out;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The workers scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'workers',
  description: 'pingpong and pipelined against a node:cluster pool of 2 workers on one port vs 1 worker: throughput and CPU µs per message',
  run,
};

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.has('serve')) {
    runChildMain(async () => {
      const serve = stringFlag(flags, 'serve', 'raw');
      if (serve !== 'raw' && serve !== 'framed') {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `--serve must be raw or framed, got ${serve}`, { details: { serve } });
      }
      if (cluster.isPrimary) await servePrimary(intFlag(flags, 'workers', 1));
      else await serveWorker(serve);
    });
  } else {
    const { runStandalone } = await import('./run.js');
    await runStandalone(scenario);
  }
}
