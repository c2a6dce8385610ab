/**
 * Request/response: netloop's RPC (`enableRpc`, `rpc.call`) beside a
 * hand-written correlation map over raw frames (a u32 call id before the
 * payload, `sendRaw`, and a `Map` of call ids to resolvers; the server
 * echoes with `onRawFrame` + `sendRaw`), measured in the same run (see
 * `rpc-peers.ts` for both). 64-byte payloads over loopback; server and load
 * in separate processes.
 *
 * - Round trips per second at 100 connections × 10 calls in flight.
 *   Target: at least 0.85x the baseline.
 * - Round-trip p99 (and p50) at 1 connection × 1 call in flight.
 *   Target: within 1.2x of the baseline's (ratio at least 0.83).
 * - CPU time per call, measured in each process with `process.cpuUsage()`
 *   (the load's over its measured window; the server's over the whole load
 *   run, divided by every call of it): on a shared machine a rate moves with
 *   the neighbours, CPU per call much less.
 *
 * The two implementations alternate within each repetition, each repetition
 * starting with the other one, and the figures are medians of the
 * repetitions (six in the full plan, one in `--quick`, which takes about
 * 6 s).
 *
 * Standalone: `node dist/bench/rpc.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { isMain } from './processes.js';
import type { ServerChild } from './processes.js';
import { runRpcLoad, serverCpuUs, startRpcServer } from './rpc-peers.js';
import type { RpcImpl } from './rpc-peers.js';

const PAYLOAD_BYTES = 64;
const THROUGHPUT = { connections: 100, inflight: 10 } as const;
const LATENCY = { connections: 1, inflight: 1 } as const;
const PLAN = {
  full: { warmupMs: 500, durationMs: 2_000, runs: 6 },
  quick: { warmupMs: 150, durationMs: 400, runs: 1 },
};
const IMPLS: readonly RpcImpl[] = ['rpc', 'map'];
const BASELINE_NAME = 'hand-written call map';

/** The series of one implementation, one value per repetition. */
interface Series {
  callsPerSec: number[];
  p50: number[];
  p99: number[];
  loadCpu: number[];
  serverCpu: number[];
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const budgetMs = plan.runs * 2 * IMPLS.length * (plan.warmupMs + plan.durationMs + 30_000);
  const servers = new Map<RpcImpl, ServerChild>();
  const series = new Map<RpcImpl, Series>(IMPLS.map((i) => [i, { callsPerSec: [], p50: [], p99: [], loadCpu: [], serverCpu: [] }]));
  try {
    for (const impl of IMPLS) servers.set(impl, await startRpcServer(impl, budgetMs));
    for (let r = 0; r < plan.runs; r++) {
      for (let k = 0; k < IMPLS.length; k++) {
        const impl = IMPLS[(k + r) % IMPLS.length]!;
        const server = servers.get(impl)!;
        const s = series.get(impl)!;
        options.progress(`run ${r + 1}/${plan.runs}: ${impl}, ${THROUGHPUT.connections} conn × ${THROUGHPUT.inflight} in flight`);
        const cpu0 = await serverCpuUs(server);
        const t = await runRpcLoad({ impl, port: server.port, ...THROUGHPUT, size: PAYLOAD_BYTES, ...plan, latency: false });
        const cpu1 = await serverCpuUs(server);
        s.callsPerSec.push(Math.round(t.callsPerSec));
        s.loadCpu.push(round2(t.cpuUsPerCall));
        s.serverCpu.push(round2((cpu1 - cpu0) / t.totalCalls));
        options.progress(`run ${r + 1}/${plan.runs}: ${impl}, 1 conn × 1 in flight (latency)`);
        const l = await runRpcLoad({ impl, port: server.port, ...LATENCY, size: PAYLOAD_BYTES, ...plan, latency: true });
        s.p50.push(round2(l.rtt!.p50));
        s.p99.push(round2(l.rtt!.p99));
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.handle.kill()));
  }

  const rpc = series.get('rpc')!;
  const map = series.get('map')!;
  const common = { scenario: 'rpc', baselineName: BASELINE_NAME };
  const throughputParams = { ...THROUGHPUT, bytes: PAYLOAD_BYTES };
  const latencyParams = { ...LATENCY, bytes: PAYLOAD_BYTES };
  return [
    {
      ...measurement({
        ...common,
        params: throughputParams,
        metric: 'round_trips',
        unit: 'calls/s',
        higherIsBetter: true,
        runs: { netloop: rpc.callsPerSec, baseline: map.callsPerSec },
      }),
      target: '>= 0.85x',
    },
    measurement({ ...common, params: { ...throughputParams, side: 'server' }, metric: 'cpu_per_call', unit: 'us', higherIsBetter: false, runs: { netloop: rpc.serverCpu, baseline: map.serverCpu } }),
    measurement({ ...common, params: { ...throughputParams, side: 'load' }, metric: 'cpu_per_call', unit: 'us', higherIsBetter: false, runs: { netloop: rpc.loadCpu, baseline: map.loadCpu } }),
    measurement({ ...common, params: latencyParams, metric: 'rtt_p50', unit: 'us', higherIsBetter: false, runs: { netloop: rpc.p50, baseline: map.p50 } }),
    {
      ...measurement({ ...common, params: latencyParams, metric: 'rtt_p99', unit: 'us', higherIsBetter: false, runs: { netloop: rpc.p99, baseline: map.p99 } }),
      target: '>= 0.83x',
    },
  ];
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The rpc scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'rpc',
  description: 'request/response: calls/s at 100 conn × 10 in flight, p99 at 1 × 1, CPU per call, netloop RPC vs a hand-written call map over raw frames',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
