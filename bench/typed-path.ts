/**
 * The typed message path against a hand-tuned raw path: pipelined 64-byte
 * messages over loopback (the pipelined scenario's load and framing), 100
 * connections with 1 and with 100 requests in flight each. Two pairs, each
 * doing the same work per message (see `typed-echo-server.ts`):
 *
 * ```
 *   bytes   netloop: handle('Echo') + send('Echo'), raw() payloads
 *           baseline: the hand-tuned node:net echo (read offset, one write per read)
 *           floor:    the same echo handing each value on as a Buffer view, as raw()
 *                     promises a handler (no target: it tells what that promise costs)
 *   JSON    netloop: handle('Echo') + send('Echo'), json<Echo>({ validate }) payloads
 *           baseline: the same node:net echo parsing, checking and serializing by hand
 * ```
 *
 * No hook and no reserved type is registered: this is the path most
 * applications run. Server and load generator run in separate processes; the
 * five servers are measured alternately within each repetition, each
 * repetition starting with the next one in turn, and the figures are medians
 * of the repetitions (as in the pipelined scenario).
 *
 * Target at both points: the typed path at least 0.9x its hand-tuned baseline.
 *
 * Beside throughput, each pair's server CPU time per message (user and
 * system, read from `/proc/<pid>/stat` before and after each load run,
 * divided by every reply of the run, warm-up included): on a machine shared
 * with other work, throughput follows whoever else holds the cores, while
 * the CPU a server spends per message changes much less, so this figure
 * tells the cost of the path apart from the machine's load. (Left out where
 * `/proc` is absent.)
 *
 * Standalone: `node dist/bench/typed-path.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { startTypedEchoChild } from './typed-echo-server.js';
import type { TypedEchoImpl } from './typed-echo-server.js';
import { runFramedLoad } from './framed-load.js';
import { readFileSync } from 'node:fs';
import { isMain } from './processes.js';
import type { ServerChild } from './processes.js';

const VALUE_BYTES = 64;
/** [connections, in flight per connection] points measured. */
const POINTS = [
  [100, 1],
  [100, 100],
] as const;
const PLAN = {
  full: { warmupMs: 300, durationMs: 1_500, runs: 6 },
  quick: { warmupMs: 100, durationMs: 200, runs: 1 },
};
const IMPLS: readonly TypedEchoImpl[] = ['typed', 'tuned', 'tuned-view', 'typed-json', 'tuned-json'];
/**
 * Each typed server beside its hand-tuned baseline, with the target; and the
 * bytes server beside the floor of its API (a Buffer view per value, which a
 * `raw()` payload is), without one.
 */
const PAIRS: ReadonlyArray<{
  netloop: TypedEchoImpl;
  baseline: TypedEchoImpl;
  payload: 'bytes' | 'json';
  baselineName: string;
  floor?: 'view';
}> = [
  { netloop: 'typed', baseline: 'tuned', payload: 'bytes', baselineName: 'node:net hand-tuned' },
  { netloop: 'typed', baseline: 'tuned-view', payload: 'bytes', baselineName: 'node:net hand-tuned, a Buffer view per value', floor: 'view' },
  { netloop: 'typed-json', baseline: 'tuned-json', payload: 'json', baselineName: 'node:net hand-tuned JSON' },
];
/** The target of every point. */
export const TARGET = '>= 0.9x';
/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS = 100;

/**
 * The CPU time (user and system) process `pid` has used, in µs, or undefined
 * where `/proc` cannot tell (not Linux, or the process is gone). Fields 14
 * and 15 of `/proc/<pid>/stat`, counted after the command name's closing
 * parenthesis (the name itself may hold spaces).
 */
export function cpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? (ticks * 1_000_000) / CLOCK_TICKS : undefined;
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const budgetMs = plan.runs * POINTS.length * IMPLS.length * (plan.warmupMs + plan.durationMs + 30_000);
  const servers = new Map<TypedEchoImpl, ServerChild>();
  // rates["c x d"][impl] = messages per second, one per run; cpu: µs of server CPU per message
  const rates = new Map<string, Map<TypedEchoImpl, number[]>>();
  const cpu = new Map<string, Map<TypedEchoImpl, number[]>>();
  const push = (table: Map<string, Map<TypedEchoImpl, number[]>>, key: string, impl: TypedEchoImpl, value: number): void => {
    let byImpl = table.get(key);
    if (byImpl === undefined) table.set(key, (byImpl = new Map()));
    let list = byImpl.get(impl);
    if (list === undefined) byImpl.set(impl, (list = []));
    list.push(value);
  };
  try {
    for (const impl of IMPLS) servers.set(impl, await startTypedEchoChild(impl, budgetMs));
    for (let r = 0; r < plan.runs; r++) {
      for (const [connections, inflight] of POINTS) {
        for (let k = 0; k < IMPLS.length; k++) {
          const impl = IMPLS[(k + r) % IMPLS.length]!;
          options.progress(`run ${r + 1}/${plan.runs}: ${connections} conn × ${inflight} in flight, ${impl}`);
          const pid = servers.get(impl)!.handle.child.pid;
          const cpuBefore = cpuMicros(pid);
          const result = await runFramedLoad({
            port: servers.get(impl)!.port,
            connections,
            inflight,
            size: VALUE_BYTES,
            warmupMs: plan.warmupMs,
            durationMs: plan.durationMs,
            latency: false,
            json: impl.endsWith('-json'),
          });
          const cpuAfter = cpuMicros(pid);
          const key = `${connections}x${inflight}`;
          push(rates, key, impl, Math.round(result.msgsPerSec));
          if (cpuBefore !== undefined && cpuAfter !== undefined && result.totalReplies > 0) {
            push(cpu, key, impl, Math.round(((cpuAfter - cpuBefore) / result.totalReplies) * 1000) / 1000);
          }
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.handle.kill()));
  }

  const out: Measurement[] = [];
  for (const [connections, inflight] of POINTS) {
    const byImpl = rates.get(`${connections}x${inflight}`)!;
    for (const pair of PAIRS) {
      const params = { connections, inflight, bytes: VALUE_BYTES, payload: pair.payload, api: 'handle', ...(pair.floor ? { floor: pair.floor } : {}) };
      const m = measurement({
        scenario: 'typed-path',
        params,
        metric: 'messages',
        unit: 'msg/s',
        baselineName: pair.baselineName,
        higherIsBetter: true,
        runs: { netloop: byImpl.get(pair.netloop)!, baseline: byImpl.get(pair.baseline)! },
      });
      if (pair.floor === undefined) m.target = TARGET;
      out.push(m);
      const cpuNetloop = cpu.get(`${connections}x${inflight}`)?.get(pair.netloop);
      const cpuBaseline = cpu.get(`${connections}x${inflight}`)?.get(pair.baseline);
      if (cpuNetloop !== undefined && cpuBaseline !== undefined && cpuNetloop.length === plan.runs && cpuBaseline.length === plan.runs) {
        out.push(
          measurement({
            scenario: 'typed-path',
            params,
            metric: 'cpu_per_msg',
            unit: 'us',
            baselineName: pair.baselineName,
            higherIsBetter: false,
            runs: { netloop: cpuNetloop, baseline: cpuBaseline },
          }),
        );
      }
    }
  }
  return out;
}

/** The typed-path scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'typed-path',
  description: 'messages/s of pipelined 64-byte messages through handle() with raw() and json<T>() payloads, 100 connections × 1/100 in flight, vs hand-tuned node:net doing the same work',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
