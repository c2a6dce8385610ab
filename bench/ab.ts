/**
 * Two versions of netloop, side by side: the servers of `pingpong`,
 * `pipelined` and `fanout` from this build (B) and from another checkout's
 * build (A, `--base DIR`), alternating A and B run by run, against the same
 * load generators (this build's). Prints the medians, the range of the runs
 * and B / A for each; a ratio within the runs' spread is noise.
 *
 * ```
 *   this process
 *     ├─ A: node DIR/dist/bench/<scenario>.js --serve netloop     ┐ taking turns: A B, B A, A B, ...
 *     ├─ B: node dist/bench/<scenario>.js --serve netloop         ┘
 *     └─ load: node dist/bench/<load>.js --port P ...              (this build's, for both)
 * ```
 *
 * Usage: build the other version (`git worktree add /tmp/base <commit>`, then
 * `npm install && npm run build` there; its bench scripts must serve with
 * the same flags), then `node dist/bench/ab.js --base /tmp/base [--runs 6]
 * [--seconds 3] [--only pingpong,pipelined,fanout] [--impl netloop|netloop-message]`
 * (`--impl`: the pipelined echo's API, raw frames or a message object per
 * frame). Not part of the suite (it needs a second build); `bench/RESULTS.md`
 * records its output with the command.
 *
 * @module
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { measureOnce as pingpongOnce, PINGPONG_BYTES } from './pingpong.js';
import { measureOnce as fanoutOnce } from './fanout.js';
import { runFramedLoad } from './framed-load.js';
import { isMain, parseFlags, intFlag, stringFlag, siblingScript, startServer } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** One compared figure: the runs of each version. */
export interface AbResult {
  scenario: string;
  params: string;
  unit: string;
  a: number[];
  b: number[];
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One line of the printed table: medians, ranges and B / A. */
export function formatAb(r: AbResult): string {
  const range = (xs: number[]): string => `[${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}]`;
  const ratio = median(r.b) / median(r.a);
  return `| ${r.scenario} | ${r.params} | ${r.unit} | ${Math.round(median(r.a))} ${range(r.a)} | ${Math.round(median(r.b))} ${range(r.b)} | ${ratio.toFixed(3)}x |`;
}

/** Runs `measure` for A and B in turns (A first on even runs, B first on odd ones). */
async function alternate(runs: number, measure: (side: 'a' | 'b') => Promise<number>, log: (s: string) => void): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < runs; i++) {
    for (const side of i % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
      const v = await measure(side);
      out[side].push(v);
      log(`  run ${i + 1}/${runs} ${side === 'a' ? 'A (base)' : 'B (this)'}: ${Math.round(v)}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const base = stringFlag(flags, 'base', '');
  if (base === '') throw new NetloopError(ErrorCode.INVALID_OPTION, '--base DIR (a built checkout of the other version) is required', { details: { option: 'base' } });
  const baseBench = path.resolve(base, 'dist', 'bench');
  for (const f of ['pingpong.js', 'echo-server.js', 'fanout.js']) {
    if (!fs.existsSync(path.join(baseBench, f))) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `${path.join(baseBench, f)} is missing: build the other version first`, { details: { option: 'base' } });
    }
  }
  const runs = intFlag(flags, 'runs', 6);
  const seconds = intFlag(flags, 'seconds', 3);
  const only = new Set(stringFlag(flags, 'only', 'pingpong,pipelined,fanout').split(','));
  // The pipelined echo's API: the raw frame path (netloop) or a message object per frame (netloop-message).
  const impl = stringFlag(flags, 'impl', 'netloop');
  if (impl !== 'netloop' && impl !== 'netloop-message') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--impl must be netloop or netloop-message, got ${impl}`, { details: { option: 'impl' } });
  }
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const results: AbResult[] = [];
  const here = (f: string): string => siblingScript(import.meta.url, f);
  const there = (f: string): string => path.join(baseBench, f);
  const scriptOf = (side: 'a' | 'b', f: string): string => (side === 'a' ? there(f) : here(f));

  if (only.has('pingpong')) {
    for (const sessions of [1, 100]) {
      log(`pingpong, ${sessions} session(s), ${PINGPONG_BYTES} bytes, ${seconds} s`);
      const r = await alternate(runs, (side) => pingpongOnce('netloop', sessions, PINGPONG_BYTES, seconds, scriptOf(side, 'pingpong.js')), log);
      results.push({ scenario: 'pingpong', params: `sessions=${sessions} bytes=${PINGPONG_BYTES}`, unit: 'MiB/s', ...r });
    }
  }
  if (only.has('pipelined')) {
    const servers = {
      a: await startServer({ script: there('echo-server.js'), args: ['--impl', impl], timeoutMs: 3_600_000, name: 'echo:A' }),
      b: await startServer({ script: here('echo-server.js'), args: ['--impl', impl], timeoutMs: 3_600_000, name: 'echo:B' }),
    };
    try {
      for (const [connections, inflight] of [[1, 100], [100, 1], [100, 100]] as const) {
        log(`pipelined (${impl}), ${connections} connection(s) × ${inflight} in flight, 64 bytes`);
        const r = await alternate(
          runs,
          async (side) =>
            (await runFramedLoad({ port: servers[side].port, connections, inflight, size: 64, warmupMs: 300, durationMs: seconds * 500, latency: false })).msgsPerSec,
          log,
        );
        results.push({ scenario: 'pipelined', params: `connections=${connections} inflight=${inflight}${impl === 'netloop' ? '' : ' api=onMessage'}`, unit: 'msg/s', ...r });
      }
    } finally {
      await Promise.all([servers.a.handle.kill(), servers.b.handle.kill()]);
    }
  }
  if (only.has('fanout')) {
    const clients = 1_000;
    log(`fanout, ${clients} clients, ${seconds} s`);
    const r = await alternate(runs, async (side) => (await fanoutOnce('netloop', clients, seconds, 0, scriptOf(side, 'fanout.js'))).load.rate, log);
    results.push({ scenario: 'fanout', params: `clients=${clients}`, unit: 'deliveries/s', ...r });
  }

  console.log(`node dist/bench/ab.js ${process.argv.slice(2).join(' ')}`);
  console.log('| scenario | params | unit | A (base) | B (this) | B / A |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) console.log(formatAb(r));
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
