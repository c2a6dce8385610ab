/**
 * Pipelined small messages over loopback: 64-byte values behind a 4-byte
 * length, 1 and 100 connections, 1 and 100 requests in flight per connection.
 * Reports messages per second for netloop's echo server and, in the same run,
 * for two bare `node:net` echo servers (see `echo-server.ts`). netloop's echo
 * uses the raw frame API (`onRawFrame` + `sendRaw`, no Buffer or message
 * object per frame), as a relay or an echo would; the same server with a
 * message object per frame (`onMessage` + `send`, the path typed handlers
 * share) is measured too, beside the hand-tuned server. The baselines:
 * - `naive`: `Buffer.concat` on every chunk, one `socket.write` per message;
 * - `tuned`: a read offset instead of concatenation, one write per batch of replies.
 *
 * Server and load generator run in separate processes on 127.0.0.1; the four
 * servers are measured alternately within each repetition, each repetition
 * starting with the next server in turn, so that none is always measured
 * first. This machine's speed drifts in phases of seconds, so the full plan
 * makes six short repetitions rather than three long ones: every server then
 * samples the same phases, and the median of six shrugs off one slow phase.
 *
 * Targets at 100 connections × 100 in flight: netloop at least 10x the naive
 * server and at least 0.7x the hand-tuned one; with 1 in flight (strict request
 * and response), at least 0.9x the hand-tuned one. The `onMessage` server: at
 * least 0.9x the hand-tuned one with 100 connections, 1 or 100 in flight.
 *
 * Standalone: `node dist/bench/pipelined.js [--quick] [--json [FILE]]`.
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

const VALUE_BYTES = 64;
/** [connections, in flight per connection] points measured. */
const POINTS = [
  [1, 1],
  [1, 100],
  [100, 1],
  [100, 100],
] as const;
const PLAN = {
  full: { warmupMs: 300, durationMs: 1_500, runs: 6 },
  quick: { warmupMs: 100, durationMs: 200, runs: 1 },
};
const IMPLS: readonly EchoImpl[] = ['netloop', 'netloop-message', 'naive', 'tuned'];
const BASELINES: ReadonlyArray<{ impl: EchoImpl; name: string }> = [
  { impl: 'tuned', name: 'node:net hand-tuned' },
  { impl: 'naive', name: 'node:net naive' },
];

/** The target of a point against a baseline, from the figures. */
export function targetFor(connections: number, inflight: number, baseline: EchoImpl): string | undefined {
  if (baseline === 'tuned' && inflight === 1) return '>= 0.9x';
  if (connections === 100 && inflight === 100) return baseline === 'naive' ? '>= 10x' : '>= 0.7x';
  return undefined;
}

/** The target of the `onMessage` server against the hand-tuned one, where it has one. */
export function messageTargetFor(connections: number, inflight: number): string | undefined {
  return connections === 100 && (inflight === 1 || inflight === 100) ? '>= 0.9x' : undefined;
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const budgetMs = plan.runs * POINTS.length * IMPLS.length * (plan.warmupMs + plan.durationMs + 30_000);
  const servers = new Map<EchoImpl, ServerChild>();
  // rates["c x d"][impl] = messages per second, one per run
  const rates = new Map<string, Map<EchoImpl, number[]>>();
  try {
    for (const impl of IMPLS) servers.set(impl, await startEchoChild(impl, budgetMs));
    for (let r = 0; r < plan.runs; r++) {
      for (const [connections, inflight] of POINTS) {
        for (let k = 0; k < IMPLS.length; k++) {
          const impl = IMPLS[(k + r) % IMPLS.length]!;
          options.progress(`run ${r + 1}/${plan.runs}: ${connections} conn × ${inflight} in flight, ${impl}`);
          const result = await runFramedLoad({
            port: servers.get(impl)!.port,
            connections,
            inflight,
            size: VALUE_BYTES,
            warmupMs: plan.warmupMs,
            durationMs: plan.durationMs,
            latency: false,
          });
          const key = `${connections}x${inflight}`;
          let byImpl = rates.get(key);
          if (byImpl === undefined) rates.set(key, (byImpl = new Map()));
          let list = byImpl.get(impl);
          if (list === undefined) byImpl.set(impl, (list = []));
          list.push(Math.round(result.msgsPerSec));
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.handle.kill()));
  }

  const out: Measurement[] = [];
  for (const [connections, inflight] of POINTS) {
    const byImpl = rates.get(`${connections}x${inflight}`)!;
    for (const { impl, name } of BASELINES) {
      const m = measurement({
        scenario: 'pipelined',
        params: { connections, inflight, bytes: VALUE_BYTES, api: 'onRawFrame' },
        metric: 'messages',
        unit: 'msg/s',
        baselineName: name,
        higherIsBetter: true,
        runs: { netloop: byImpl.get('netloop')!, baseline: byImpl.get(impl)! },
      });
      const target = targetFor(connections, inflight, impl);
      if (target !== undefined) m.target = target;
      out.push(m);
    }
    const message = measurement({
      scenario: 'pipelined',
      params: { connections, inflight, bytes: VALUE_BYTES, api: 'onMessage' },
      metric: 'messages',
      unit: 'msg/s',
      baselineName: 'node:net hand-tuned',
      higherIsBetter: true,
      runs: { netloop: byImpl.get('netloop-message')!, baseline: byImpl.get('tuned')! },
    });
    const target = messageTargetFor(connections, inflight);
    if (target !== undefined) message.target = target;
    out.push(message);
  }
  return out;
}

/** The pipelined scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'pipelined',
  description: 'messages/s of pipelined 64-byte framed messages, 1/100 connections × 1/100 in flight, netloop vs naive and hand-tuned node:net',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
