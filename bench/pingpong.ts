/**
 * Pingpong (muduo's `examples/pingpong`): N sessions each bounce a block of
 * B bytes for T seconds; MiB/s received by the clients. netloop's raw echo
 * server (`examples/echo/server.ts`) beside a bare `node:net` echo written the
 * obvious way (`socket.on('data', d => socket.write(d))`), measured in the
 * same run.
 *
 * ```
 *   parent (this scenario)
 *     ├─ child: node dist/bench/pingpong.js --serve netloop|bare   (prints "listening <port>")
 *     └─ child: node dist/bench/pingpong.js --load --port P --sessions N --bytes B --seconds T
 *                  (examples/pingpong/client.ts, the same load for both servers; prints JSON)
 * ```
 *
 * Both children run on 127.0.0.1, each bounded in time. The two servers take
 * turns, in alternating order, so drift on a shared machine hits both alike.
 *
 * Standalone: `node dist/bench/pingpong.js [--quick]` prints the table.
 *
 * @module
 */

import * as net from 'node:net';
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
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** The two servers compared. */
export const PINGPONG_IMPLS = ['netloop', 'bare'] as const;
/** One of {@link PINGPONG_IMPLS}. */
export type PingpongImpl = (typeof PINGPONG_IMPLS)[number];

/** Block size of the scenario. */
export const PINGPONG_BYTES = 16_384;
/** Session counts of the scenario. */
export const PINGPONG_SESSIONS = [1, 100] as const;

/** The length of a run: seconds per measurement and repetitions per side. */
export function pingpongPlan(quick: boolean): { seconds: number; runs: number } {
  return quick ? { seconds: 0.5, runs: 1 } : { seconds: 5, runs: 3 };
}

/** Starts the bare `node:net` echo, the obvious way. */
export function startBareEcho(port: number): Promise<number> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** Starts netloop's echo server: the example, unchanged. */
export async function startNetloopEcho(port: number): Promise<number> {
  const { startEchoServer } = await import('../examples/echo/server.js');
  const { server } = await startEchoServer({ host: '127.0.0.1', port });
  return server.port;
}

/**
 * One measurement: a fresh server child, the load child against it, MiB/s.
 * `serverScript` is the script that serves (by default this one; `ab.ts`
 * passes another build's copy to compare two versions of netloop).
 */
export async function measureOnce(
  impl: PingpongImpl,
  sessions: number,
  bytes: number,
  seconds: number,
  serverScript = siblingScript(import.meta.url, 'pingpong.js'),
): Promise<number> {
  const script = siblingScript(import.meta.url, 'pingpong.js');
  const server = await startServer({ script: serverScript, args: ['--serve', impl], timeoutMs: seconds * 1000 + 60_000, name: `server:${impl}` });
  try {
    const result = await runToResult<{ mibPerSec: number }>({
      script,
      args: ['--load', '--port', String(server.port), '--sessions', String(sessions), '--bytes', String(bytes), '--seconds', String(seconds)],
      timeoutMs: seconds * 1000 + 30_000,
      name: `load:${impl}`,
    });
    if (typeof result.mibPerSec !== 'number' || !(result.mibPerSec > 0)) {
      throw new NetloopError(ErrorCode.BENCH_FAILED, `load:${impl} reported no throughput`, { details: { impl, result } });
    }
    return result.mibPerSec;
  } finally {
    await server.handle.kill();
  }
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const { seconds, runs } = pingpongPlan(options.quick);
  const out: Measurement[] = [];
  for (const sessions of PINGPONG_SESSIONS) {
    const results = { netloop: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < runs; i++) {
      const order: PingpongImpl[] = i % 2 === 0 ? ['bare', 'netloop'] : ['netloop', 'bare'];
      for (const impl of order) {
        options.progress(`${impl}, ${sessions} session(s), run ${i + 1}/${runs}`);
        const mib = await measureOnce(impl, sessions, PINGPONG_BYTES, seconds);
        (impl === 'netloop' ? results.netloop : results.baseline).push(mib);
      }
    }
    out.push(
      measurement({
        scenario: 'pingpong',
        params: { sessions, bytes: PINGPONG_BYTES, seconds },
        metric: 'throughput',
        unit: 'MiB/s',
        baselineName: 'node:net',
        higherIsBetter: true,
        runs: results,
        target: '>= 0.95x',
      }),
    );
  }
  return out;
}

/** The scenario the suite runner calls. */
export const scenario: Scenario = {
  name: 'pingpong',
  description: 'MiB/s of N sessions bouncing 16 KiB blocks (1 and 100 sessions): netloop echo vs bare node:net echo',
  run,
};

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.has('serve')) {
    runChildMain(async () => {
      const impl = stringFlag(flags, 'serve', 'netloop');
      if (impl !== 'netloop' && impl !== 'bare') {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `--serve must be netloop or bare, got ${impl}`, { details: { impl } });
      }
      const port = impl === 'netloop' ? await startNetloopEcho(intFlag(flags, 'port', 0)) : await startBareEcho(intFlag(flags, 'port', 0));
      announceListening(port);
      onControl(() => undefined);
    });
  } else if (flags.has('load')) {
    runChildMain(async () => {
      const { runPingpong } = await import('../examples/pingpong/client.js');
      const r = await runPingpong({
        port: intFlag(flags, 'port', 0),
        sessions: intFlag(flags, 'sessions', 1),
        bytes: intFlag(flags, 'bytes', PINGPONG_BYTES),
        seconds: Number(stringFlag(flags, 'seconds', '5')),
      });
      emitJson(r);
      process.exit(0);
    });
  } else {
    const { runStandalone } = await import('./run.js');
    await runStandalone(scenario);
  }
}
