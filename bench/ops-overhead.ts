/**
 * The cost of watching: the pingpong and pipelined workloads against the
 * same netloop server with and without the operations endpoint (Prometheus
 * metrics registered, the status page open and fed once a second, a scrape
 * every second), measured alternately in the same run. The ratio is
 * with / without, so 1.0 means free; the target is >= 0.97x.
 *
 * ```
 *   parent (this scenario): alternates the two servers, runs the load against one at a time
 *     ├─ child: ops-overhead.js --serve pingpong|pipelined --ops off
 *     ├─ child: ops-overhead.js --serve pingpong|pipelined --ops on --ops-port P
 *     │            (reactorSource + startOpsServer: /metrics, /, /events)
 *     ├─ the "page": the parent reads /events and scrapes /metrics every second
 *     │  while the load runs against the server with ops (as a browser and
 *     │  Prometheus would; the parent does this work, not the server)
 *     └─ load child: pingpong.js --load (16 KiB blocks, 100 sessions) or
 *                    framed-load.js (64-byte frames, 100 connections x 100 in flight)
 * ```
 *
 * Standalone: `node dist/bench/ops-overhead.js [--quick]`.
 *
 * @module
 */

import * as http from 'node:http';
import * as net from 'node:net';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { announceListening, intFlag, isMain, onControl, parseFlags, runChildMain, runToResult, siblingScript, startServer, stringFlag } from './processes.js';
import type { ServerChild } from './processes.js';
import { runFramedLoad } from './framed-load.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** The two workloads. */
type Workload = 'pingpong' | 'pipelined';

const PINGPONG = { sessions: 100, bytes: 16_384 };
const PIPELINED = { connections: 100, inflight: 100, size: 64 };
const PLAN = {
  full: { pingpongSeconds: 3, pipelinedMs: 1_500, warmupMs: 300, runs: 6 },
  quick: { pingpongSeconds: 0.5, pipelinedMs: 200, warmupMs: 100, runs: 1 },
};

/** A free loopback port for the ops endpoint of a child. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * What a browser on the status page and a Prometheus server do: read the
 * event stream, and scrape `/metrics` every second. Returns a stop function
 * that resolves with how many snapshots and scrapes were received.
 */
function watch(opsPort: number): () => Promise<{ events: number; scrapes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let events = 0;
  let scrapes = 0;
  const stream = http.get({ host: '127.0.0.1', port: opsPort, path: '/events', agent: false }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      events += chunk.split('\ndata: ').length - 1 + (chunk.startsWith('data: ') ? 1 : 0);
    });
    res.on('error', () => undefined);
  });
  stream.on('error', () => undefined);
  const scrape = (): void => {
    http
      .get({ host: '127.0.0.1', port: opsPort, path: '/metrics', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) scrapes++;
        });
      })
      .on('error', () => undefined);
  };
  scrape();
  const timer = setInterval(scrape, 1_000);
  return async () => {
    clearInterval(timer);
    stream.destroy();
    agent.destroy();
    return { events, scrapes };
  };
}

async function startChild(workload: Workload, ops: boolean, timeoutMs: number): Promise<ServerChild & { opsPort: number }> {
  const opsPort = ops ? await freePort() : 0;
  const args = ['--serve', workload, '--ops', ops ? 'on' : 'off'];
  if (ops) args.push('--ops-port', String(opsPort));
  const child = await startServer({ script: siblingScript(import.meta.url, 'ops-overhead.js'), args, timeoutMs, name: `${workload}:${ops ? 'ops' : 'plain'}` });
  return { ...child, opsPort };
}

async function loadOnce(workload: Workload, port: number, plan: (typeof PLAN)['full']): Promise<number> {
  if (workload === 'pingpong') {
    const r = await runToResult<{ mibPerSec: number }>({
      script: siblingScript(import.meta.url, 'pingpong.js'),
      args: ['--load', '--port', String(port), '--sessions', String(PINGPONG.sessions), '--bytes', String(PINGPONG.bytes), '--seconds', String(plan.pingpongSeconds)],
      timeoutMs: plan.pingpongSeconds * 1000 + 30_000,
      name: 'load:pingpong',
    });
    if (!(r.mibPerSec > 0)) throw new NetloopError(ErrorCode.BENCH_FAILED, 'pingpong load reported no throughput', { details: { ...r } });
    return r.mibPerSec;
  }
  const r = await runFramedLoad({ port, ...PIPELINED, warmupMs: plan.warmupMs, durationMs: plan.pipelinedMs, latency: false });
  return Math.round(r.msgsPerSec);
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const plan = options.quick ? PLAN.quick : PLAN.full;
  const out: Measurement[] = [];
  for (const workload of ['pingpong', 'pipelined'] as const) {
    const budget = plan.runs * 2 * (plan.pingpongSeconds * 1000 + plan.pipelinedMs + 40_000);
    const plain = await startChild(workload, false, budget);
    const watched = await startChild(workload, true, budget).catch(async (err: unknown) => {
      await plain.handle.kill();
      throw err;
    });
    const runs = { netloop: [] as number[], baseline: [] as number[] };
    let seen = { events: 0, scrapes: 0 };
    try {
      for (let i = 0; i < plan.runs; i++) {
        const order = i % 2 === 0 ? [false, true] : [true, false];
        for (const ops of order) {
          options.progress(`${workload}, ${ops ? 'with' : 'without'} ops, run ${i + 1}/${plan.runs}`);
          if (!ops) {
            runs.baseline.push(await loadOnce(workload, plain.port, plan));
            continue;
          }
          const stop = watch(watched.opsPort);
          try {
            runs.netloop.push(await loadOnce(workload, watched.port, plan));
          } finally {
            const s = await stop();
            seen = { events: seen.events + s.events, scrapes: seen.scrapes + s.scrapes };
          }
        }
      }
    } finally {
      await Promise.all([plain.handle.kill(), watched.handle.kill()]);
    }
    if (seen.scrapes === 0 || seen.events === 0) {
      throw new NetloopError(ErrorCode.BENCH_FAILED, 'the ops endpoint was not watched during the load', { details: { workload, ...seen } });
    }
    out.push(
      measurement({
        scenario: 'ops-overhead',
        params:
          workload === 'pingpong'
            ? { workload, sessions: PINGPONG.sessions, bytes: PINGPONG.bytes }
            : { workload, connections: PIPELINED.connections, inflight: PIPELINED.inflight, bytes: PIPELINED.size },
        metric: workload === 'pingpong' ? 'throughput' : 'messages',
        unit: workload === 'pingpong' ? 'MiB/s' : 'msg/s',
        baselineName: 'the same server without ops',
        higherIsBetter: true,
        runs,
        target: '>= 0.97x',
      }),
    );
  }
  return out;
}

/** The scenario the suite runner calls. */
export const scenario: Scenario = {
  name: 'ops-overhead',
  description: 'pingpong and pipelined with metrics registered, the status page open and a scrape a second, vs the same server without (ratio with/without)',
  run,
};

/** The child: a netloop server of the workload, with or without the ops endpoint. */
async function serve(workload: string, ops: boolean, opsPort: number): Promise<void> {
  const { EventLoop } = await import('../lib/reactor/event-loop.js');
  const loop = new EventLoop();
  const { FramedServer } = await import('../lib/framing/framed-server.js');
  let server: import('../lib/reactor/server.js').AnyServer;
  if (workload === 'pingpong') {
    const { startEchoServer } = await import('../examples/echo/server.js');
    const started = await startEchoServer({ host: '127.0.0.1', port: 0 });
    await loop.close();
    server = started.server;
    if (ops) await watchWith(started.loop, server, opsPort);
  } else if (workload === 'pipelined') {
    // netloop's raw-frame echo, as in the pipelined scenario: onRawFrame + sendRaw on the muduo layout.
    server = await new FramedServer(loop, {
      host: '127.0.0.1',
      port: 0,
      backlog: 4096,
      maxConnections: 100_000,
      layout: 'muduo',
      onRawFrame(client, type, source, start, end): void {
        client.sendRaw(type, source, start, end);
      },
    }).listen();
    if (ops) await watchWith(loop, server, opsPort);
  } else {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--serve must be pingpong or pipelined, got ${workload}`, { details: { workload } });
  }
  announceListening(server.port);
  onControl(() => undefined);
}

async function watchWith(loop: import('../lib/reactor/event-loop.js').EventLoop, server: import('../lib/reactor/server.js').AnyServer, opsPort: number): Promise<void> {
  const { reactorSource } = await import('../lib/ops/sources.js');
  const { startOpsServer } = await import('../lib/ops/ops-server.js');
  await startOpsServer({ sources: { reactor: reactorSource(loop, { servers: { echo: server } }) }, port: opsPort });
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.has('serve')) {
    runChildMain(() => serve(stringFlag(flags, 'serve', 'pingpong'), stringFlag(flags, 'ops', 'off') === 'on', intFlag(flags, 'ops-port', 0)));
  } else {
    const { runStandalone } = await import('./run.js');
    await runStandalone(scenario);
  }
}
