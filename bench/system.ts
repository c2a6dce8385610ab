/**
 * Facts about the machine a benchmark ran on, printed beside every result so a
 * reader can tell a 2-core laptop from a 64-core server, and a quiet machine
 * from a busy one.
 *
 * @module
 */

import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

/** What the suite prints about the machine before and after a run. */
export interface SystemFacts {
  /** Logical cores the operating system reports. */
  cores: number;
  /** CPU model string of the first core (all cores are assumed alike). */
  cpuModel: string;
  /** `process.version`, e.g. `v20.19.0`. */
  node: string;
  /** `os.platform()` and `os.arch()`, e.g. `linux x64`. */
  platform: string;
  /** Total memory in MiB. */
  totalMemoryMiB: number;
  /** 1, 5 and 15 minute load averages (zeros on Windows). */
  loadAverage: [number, number, number];
  /** The soft limit on open files of a child process, or `Infinity` when unlimited; `undefined` when unknown. */
  fdLimit: number | undefined;
}

/** The three load averages, rounded to two decimals. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = os.loadavg();
  return [round2(a), round2(b), round2(c)];
}

/**
 * The soft limit on open files (`ulimit -n`) that a child process inherits.
 * Each loopback connection costs one descriptor in the server and one in the
 * load generator, so scenarios holding thousands of connections check it first.
 *
 * Returns `Infinity` for `unlimited` and `undefined` where no POSIX shell exists.
 */
export function fdLimit(): number | undefined {
  if (process.platform === 'win32') return undefined;
  try {
    const out = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: 5_000 }).trim();
    if (out === 'unlimited') return Number.POSITIVE_INFINITY;
    const n = Number.parseInt(out, 10);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Collects {@link SystemFacts} now. */
export function systemFacts(): SystemFacts {
  const cpus = os.cpus();
  return {
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpuModel: (cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    totalMemoryMiB: Math.round(os.totalmem() / (1024 * 1024)),
    loadAverage: loadAverage(),
    fdLimit: fdLimit(),
  };
}

/** One human line per fact, for the head of the suite's output. */
export function describeSystem(facts: SystemFacts): string[] {
  return [
    `cores: ${facts.cores}    cpu: ${facts.cpuModel}`,
    `node: ${facts.node}    platform: ${facts.platform}    memory: ${facts.totalMemoryMiB} MiB    ulimit -n: ${
      facts.fdLimit === undefined ? 'unknown' : String(facts.fdLimit)
    }`,
    `load average (1, 5, 15 min): ${facts.loadAverage.join(', ')}`,
  ];
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
