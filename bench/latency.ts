/**
 * Latency: a pingpong of small framed messages (64-byte values behind a 4-byte
 * length), one request in flight per connection, with 1 and 100 connections.
 * Reports the p50, p99 and p999 round-trip times of netloop's echo server and,
 * in the same run, of a bare `node:net` echo server written with care (a read
 * offset and one write per read; see `echo-server.ts`).
 *
 * Server and load generator run in separate processes on 127.0.0.1; the load
 * generator is the same for both servers and times each round trip with
 * `process.hrtime.bigint()`. The two servers are measured alternately within
 * each repetition, each repetition starting with the other one, so drift on a
 * shared machine hits both alike; six repetitions (the median is kept) keep
 * one slow phase of the machine from deciding a figure.
 *
 * Target: netloop's p99 within 1.2x of bare `node:net` (a ratio of at least
 * 0.83, since for latency the ratio is baseline / netloop).
 *
 * Standalone: `node dist/bench/latency.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { startEchoChild } from './echo-server.js';
import type { EchoImpl } from './echo-server.js';
import { runFramedLoad } from './framed-load.js';
import { isMain } from './processes.js';
import type { ServerChild } from './processes.js';

/** Value size of every message, in bytes. */
const VALUE_BYTES = 64;
/** Connection counts measured. */
const CONNECTIONS = [1, 100] as const;
/** Timing of each load run and number of repetitions. */
const PLAN = {
  full: { warmupMs: 500, durationMs: 3_000, runs: 6 },
  quick: { warmupMs: 100, durationMs: 400, runs: 1 },
};
const BASELINE: EchoImpl = 'tuned';
const BASELINE_NAME = 'node:net';
const PERCENTILES = ['p50', 'p99', 'p999'] as const;

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const budgetMs = plan.runs * CONNECTIONS.length * 2 * (plan.warmupMs + plan.durationMs + 30_000);
  const impls: EchoImpl[] = ['netloop', BASELINE];
  const servers = new Map<EchoImpl, ServerChild>();
  // samples[connections][impl][percentile] = one value per run
  const samples = new Map<number, Map<EchoImpl, Record<(typeof PERCENTILES)[number], number[]>>>();
  try {
    for (const impl of impls) servers.set(impl, await startEchoChild(impl, budgetMs));
    for (let r = 0; r < plan.runs; r++) {
      for (const connections of CONNECTIONS) {
        // Each repetition starts with the other server: this machine's speed
        // drifts in phases of seconds, and neither side may always get the first slot.
        for (let k = 0; k < impls.length; k++) {
          const impl = impls[(k + r) % impls.length]!;
          options.progress(`run ${r + 1}/${plan.runs}: ${connections} connection(s), ${impl}`);
          const result = await runFramedLoad({
            port: servers.get(impl)!.port,
            connections,
            inflight: 1,
            size: VALUE_BYTES,
            warmupMs: plan.warmupMs,
            durationMs: plan.durationMs,
            latency: true,
          });
          const rtt = result.rtt!;
          let byImpl = samples.get(connections);
          if (byImpl === undefined) samples.set(connections, (byImpl = new Map()));
          let series = byImpl.get(impl);
          if (series === undefined) byImpl.set(impl, (series = { p50: [], p99: [], p999: [] }));
          for (const p of PERCENTILES) series[p].push(rtt[p]);
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.handle.kill()));
  }

  const out: Measurement[] = [];
  for (const connections of CONNECTIONS) {
    const byImpl = samples.get(connections)!;
    for (const p of PERCENTILES) {
      const m = measurement({
        scenario: 'latency',
        params: { connections, inflight: 1, bytes: VALUE_BYTES },
        metric: `rtt_${p}`,
        unit: 'us',
        baselineName: BASELINE_NAME,
        higherIsBetter: false,
        runs: { netloop: byImpl.get('netloop')![p], baseline: byImpl.get(BASELINE)![p] },
      });
      if (p === 'p99') m.target = '>= 0.83x';
      out.push(m);
    }
  }
  return out;
}

/** The latency scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'latency',
  description: 'p50/p99/p999 round trips of 64-byte framed messages, 1 and 100 connections, netloop vs bare node:net',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
