/**
 * The Redis store scenario: operations per second of `RedisStore` (create,
 * get, touch as a heartbeat, delete) with many operations in flight on one
 * connection, beside the server's own ceiling for plain `SET` at the same
 * pipeline depth, measured on the same server in the same run:
 *
 * ```
 *   redis-server (started here, loopback, persistence off)
 *     ▲                      ▲                                ▲
 *     │ RedisStore            │ node-redis SET                 │ redis-benchmark -t set
 *     │ 1 connection,         │ 1 connection,                  │ -c 1 -P <depth>
 *     │ <depth> in flight     │ <depth> in flight              │ (C, no Node at all)
 *     └─ netloop              └─ baseline "node-redis SET"     └─ baseline "redis-benchmark SET"
 * ```
 *
 * Each store operation is one Lua script that updates the session and its
 * indexes (several keys), so it does more work per call than one `SET`; the
 * ratio says how much of the server's plain-SET ceiling a session operation
 * reaches. When `redis-benchmark` is not installed, only the node-redis
 * baseline is measured, and the progress output says so.
 *
 * Run alone: `node dist/bench/redis-store.js [--quick]`. Needs `redis-server`
 * on the PATH.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { isMain } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';
import { RedisStore } from '../lib/store/redis/redis-store.js';
import type { SessionRecord } from '../lib/store/contract.js';
import { findExecutable, startRedisServer } from '../test/helpers/redis-server.js';
import type { RedisServer } from '../test/helpers/redis-server.js';

/** Operations in flight on the one connection, for the store and both baselines. */
const PIPELINE = 16;
const OPS = ['create', 'get', 'touch', 'delete'] as const;
type Op = (typeof OPS)[number];

interface Sizes {
  /** Operations per measured batch. */
  n: number;
  /** Repetitions; medians are reported. */
  runs: number;
}

const SIZES: Record<'quick' | 'full', Sizes> = {
  quick: { n: 4_000, runs: 3 },
  full: { n: 40_000, runs: 7 },
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

function records(n: number, run: number): SessionRecord[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const tag = `${run}-${i}`;
    return {
      id: `bench-${tag}`,
      tokenHash: createHash('sha256').update(tag).digest('hex'),
      userId: `user-${i % 1_000}`,
      connectionId: `conn-${tag}`,
      remoteAddress: '127.0.0.1',
      remotePort: 50_000,
      state: 'ACTIVE',
      metadata: { room: 'lobby' },
      stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
      createdAt: now,
      lastActiveAt: now,
      expiresAt: now + 600_000,
      ttl: 600_000,
    };
  });
}

/** One `redis-benchmark` run; resolves with SET requests per second. */
function redisBenchmark(executable: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new NetloopError(ErrorCode.BENCH_FAILED, `redis-benchmark failed to start: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      // -q prints progress lines ending in \r, then "SET: 123456.79 requests per second, p50=...".
      const matches = [...out.matchAll(/SET: ([\d.]+) requests per second/g)];
      const rps = Number(matches.at(-1)?.[1]);
      if (code === 0 && Number.isFinite(rps) && rps > 0) resolve(rps);
      else reject(new NetloopError(ErrorCode.BENCH_FAILED, `redis-benchmark gave no figure (exit ${code})`, { details: { output: out.slice(-500) } }));
    });
  });
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  let server: RedisServer;
  try {
    server = await startRedisServer();
  } catch (err) {
    throw new NetloopError(ErrorCode.BENCH_FAILED, `cannot start redis-server: ${(err as Error).message}`, { cause: err });
  }
  options.progress(`${server.commandLine}`);
  const benchExe = findExecutable('redis-benchmark');
  const benchArgs = ['-h', server.host, '-p', String(server.port), '-t', 'set', '-c', '1', '-P', String(PIPELINE), '-q', '-n', String(sizes.n * 5)];
  if (benchExe === null) {
    options.progress('redis-benchmark is not installed; measuring against a node-redis SET pipeline only');
  } else {
    options.progress(`${[benchExe, ...benchArgs].join(' ')}`);
  }

  const store = new RedisStore({ url: server.url, prefix: 'bench:' });
  const raw = createClient({ url: server.url });
  raw.on('error', () => undefined);
  const ours: Record<Op, number[]> = { create: [], get: [], touch: [], delete: [] };
  const rawSet: number[] = [];
  const serverSet: number[] = [];
  try {
    await raw.connect();
    await store.count(); // Connects and loads nothing: the first measured call is not a connect.
    for (let r = 0; r < sizes.runs; r++) {
      options.progress(`run ${r + 1}/${sizes.runs}`);
      const recs = records(sizes.n, r);
      ours.create.push(await drive(sizes.n, PIPELINE, (i) => store.create(recs[i]!, { maxPerUser: 1_000 })));
      ours.get.push(await drive(sizes.n, PIPELINE, (i) => store.get(recs[i]!.id)));
      const later = Date.now() + 900_000;
      ours.touch.push(await drive(sizes.n, PIPELINE, (i) => store.touch(recs[i]!.id, later, later - 600_000)));
      ours.delete.push(await drive(sizes.n, PIPELINE, (i) => store.delete(recs[i]!.id)));
      rawSet.push(await drive(sizes.n, PIPELINE, (i) => raw.sendCommand(['SET', `raw:${i}`, 'x'.repeat(64)])));
      if (benchExe !== null) serverSet.push(await redisBenchmark(benchExe, benchArgs));
    }
    const left = await store.count();
    if (left !== 0) throw new NetloopError(ErrorCode.BENCH_FAILED, `the store should be empty after the deletes, holds ${left}`);
  } finally {
    await store.close();
    await raw.close().catch(() => undefined);
    await server.stop();
  }

  const out: Measurement[] = [];
  for (const op of OPS) {
    const params = { op, pipeline: PIPELINE };
    if (benchExe !== null) {
      out.push(
        measurement({
          scenario: 'redis-store',
          params,
          metric: 'throughput',
          unit: 'ops/s',
          baselineName: `redis-benchmark SET -c 1 -P ${PIPELINE}`,
          higherIsBetter: true,
          runs: { netloop: ours[op], baseline: serverSet },
        }),
      );
    }
    out.push(
      measurement({
        scenario: 'redis-store',
        params,
        metric: 'throughput',
        unit: 'ops/s',
        baselineName: `node-redis SET, ${PIPELINE} in flight`,
        higherIsBetter: true,
        runs: { netloop: ours[op], baseline: rawSet },
      }),
    );
  }
  return out;
}

/** The Redis store scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'redis-store',
  description: `RedisStore create/get/touch/delete ops/s with ${PIPELINE} in flight vs redis-benchmark SET -P ${PIPELINE} and a node-redis SET pipeline, same server, same run`,
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
