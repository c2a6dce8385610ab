/**
 * Memory per idle connection: a load generator in one process holds 10,000
 * connections (2,000 in quick mode) open to a server in another; the server,
 * started with `--expose-gc`, reports its RSS and heap after a forced
 * collection before and after the connections arrive, and the difference is
 * divided by the number of connections.
 *
 * Servers, each in a fresh process per repetition (see `idle-server.ts`):
 * - netloop's server without sessions, against a bare `node:net` server with
 *   `data`, `error` and `close` listeners (target: at most 1.2x its memory,
 *   a ratio of at least 0.83);
 * - netloop's server with its session registry, against the bare server with a
 *   `Map` entry and a small session object per connection (target: at most
 *   1.3x, a ratio of at least 0.77); each session holds its connection, as
 *   the bare one does;
 * - the same pair with the peer's address read at accept and kept in each
 *   session (both then pay Node's cached peer name, about 100 bytes), held to
 *   the same target.
 * The session pairs are measured once netloop's session registry
 * (`lib/session/session-registry.ts`) exists; until then only the baseline figures
 * appear in the progress output.
 *
 * Each connection costs a file descriptor in each process: when `ulimit -n` is
 * too low the count is lowered and the progress output says so.
 *
 * Standalone: `node dist/bench/idle-memory.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import type { IdleImpl, MemoryReport } from './idle-server.js';
import type { IdleLoadResult } from './idle-load.js';
import { capConnections } from './idle-load.js';
import { isMain, siblingScript, spawnChild, startServer } from './processes.js';
import { fdLimit } from './system.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

const PLAN = {
  full: { connections: 10_000, runs: 3 },
  quick: { connections: 2_000, runs: 1 },
};
/** Time limit for one server + load generator pair. */
const PAIR_TIMEOUT_MS = 120_000;

/** Bytes per connection of one server process, from before/after reports. */
export interface PerConnection {
  connections: number;
  rss: number;
  heap: number;
}

/** Measures one implementation once: a fresh server, `connections` idle connections, memory per connection. */
export async function measureIdle(impl: IdleImpl, connections: number): Promise<PerConnection> {
  const server = await startServer({
    script: siblingScript(import.meta.url, 'idle-server.js'),
    execArgv: ['--expose-gc'],
    args: ['--impl', impl, '--max-connections', String(connections + 100)],
    timeoutMs: PAIR_TIMEOUT_MS,
    name: `idle-server:${impl}`,
  });
  const load = spawnChild({
    script: siblingScript(import.meta.url, 'idle-load.js'),
    args: ['--port', String(server.port), '--connections', String(connections)],
    timeoutMs: PAIR_TIMEOUT_MS,
    name: 'idle-load',
  });
  try {
    server.handle.send('mem 0');
    const before = await server.handle.nextJson<MemoryReport>(30_000, 'a memory report');
    const opened = await load.nextJson<IdleLoadResult>(PAIR_TIMEOUT_MS - 10_000, 'its connection count');
    if (opened.connected === 0) {
      throw new NetloopError(ErrorCode.BENCH_FAILED, `idle-load opened no connection (${opened.errors} errors)`);
    }
    server.handle.send(`mem ${opened.connected}`);
    const after = await server.handle.nextJson<MemoryReport>(60_000, 'a memory report');
    const n = opened.connected;
    return {
      connections: n,
      rss: Math.round((after.rss - before.rss) / n),
      heap: Math.round((after.heapUsed - before.heapUsed) / n),
    };
  } finally {
    await load.kill();
    await server.handle.kill();
  }
}

/** True when netloop's session registry has been built, so the with-sessions pair can run. */
async function sessionsAvailable(): Promise<boolean> {
  try {
    const mod = (await import('./netloop-servers.js')) as { supportsSessions?: () => Promise<boolean> };
    return (await mod.supportsSessions?.()) === true;
  } catch {
    return false;
  }
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  // The server and the generator each hold one descriptor per connection.
  const capped = capConnections(plan.connections, fdLimit());
  if (capped.note !== undefined) options.progress(capped.note);
  const connections = capped.count;

  interface Pair {
    netloop: IdleImpl;
    baseline: IdleImpl;
    name: string;
    params: Record<string, boolean>;
    target: string;
  }
  const pairs: Pair[] = [
    { netloop: 'netloop', baseline: 'bare', name: 'node:net + listeners', params: { sessions: false }, target: '>= 0.83x' },
  ];
  if (await sessionsAvailable()) {
    pairs.push(
      {
        netloop: 'netloop-session',
        baseline: 'bare-session',
        name: 'node:net + Map + session',
        params: { sessions: true },
        target: '>= 0.77x',
      },
      {
        netloop: 'netloop-session-addr',
        baseline: 'bare-session-addr',
        name: 'node:net + Map + session with address',
        params: { sessions: true, remoteAddress: true },
        target: '>= 0.77x',
      },
    );
  } else {
    options.progress('netloop sessions not built yet: measuring the with-sessions baseline only');
  }

  const figures = new Map<IdleImpl, PerConnection[]>();
  const impls = new Set<IdleImpl>(pairs.flatMap((p) => [p.netloop, p.baseline]));
  if (!pairs.some((p) => p.params['sessions'] === true)) impls.add('bare-session');
  for (let r = 0; r < plan.runs; r++) {
    for (const impl of impls) {
      options.progress(`run ${r + 1}/${plan.runs}: ${impl}, ${connections} connections`);
      const result = await measureIdle(impl, connections);
      options.progress(`${impl}: ${result.rss} B RSS, ${result.heap} B heap per connection`);
      let list = figures.get(impl);
      if (list === undefined) figures.set(impl, (list = []));
      list.push(result);
    }
  }

  const out: Measurement[] = [];
  for (const pair of pairs) {
    const nl = figures.get(pair.netloop)!;
    const base = figures.get(pair.baseline)!;
    for (const [metric, pick] of [
      ['rss_per_conn', (p: PerConnection) => p.rss],
      ['heap_per_conn', (p: PerConnection) => p.heap],
    ] as const) {
      const m = measurement({
        scenario: 'idle-memory',
        params: { connections: Math.min(...nl.map((p) => p.connections)), ...pair.params },
        metric,
        unit: 'B',
        baselineName: pair.name,
        higherIsBetter: false,
        runs: { netloop: nl.map(pick), baseline: base.map(pick) },
      });
      m.target = pair.target;
      out.push(m);
    }
  }
  return out;
}

/** The idle-memory scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'idle-memory',
  description: 'RSS and heap per idle connection (10,000 held open), netloop vs bare node:net with listeners',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
