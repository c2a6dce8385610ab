#!/usr/bin/env node
// @ts-check
/**
 * Runs compiled test files, several at a time, each in a process of its own.
 *
 * Every test file ends with uvu's `test.run()`, so `node file.test.js` runs
 * it alone and sets a failing exit code when a test fails. Each file still
 * runs its own tests one after another, exactly as alone. c8 follows the
 * child processes (they inherit NODE_V8_COVERAGE), so coverage is unchanged;
 * the tests' own children that run only tools opt out
 * (test/helpers/child-env.ts).
 *
 * How many at once. Some files mostly compute (a TypeScript program, a fuzz
 * loop, a conformance suite), others mostly wait (a store's timeout, a
 * cluster's start, a client's reconnection), so a fixed number of lanes
 * either leaves the cores idle while waiting files hold every lane, or
 * crowds them with computing files, which adds contention and the risk of a
 * timing bound missed. The runner keeps `--jobs` files running (default 4:
 * two per core of a two-core machine), and starts one more, up to
 * `--max-jobs` (default twice `--jobs`), when the machine's cores were at
 * least a quarter idle over the last half second (Linux's `/proc/stat`,
 * every process counted, so a machine busy with other work gets no extra
 * file); one at a time, so that each has started computing before the next
 * is weighed. Where `/proc/stat` cannot be read, the runner keeps to
 * `--jobs`. A figure of a file's own CPU time would not serve: measured
 * while files share the cores, it shrinks with the crowding it should
 * prevent.
 *
 * The order matters as much: a long file started last leaves the other
 * lanes idle while it runs alone. Files start longest first, by the
 * durations of the last run (dist/.test-times.json, written at the end of
 * each run); a file that run did not time takes its duration from
 * scripts/test-times.json, committed, so that a fresh clone (CI's first and
 * only run) is ordered as well as a working copy. That file is only a hint:
 * a stale or missing entry changes the order, never a result. To refresh it,
 * copy dist/.test-times.json over it after a full run. The summary gives the
 * CPU time of the run (the test files and every process they waited for,
 * from the runner's `cutime` and `cstime` in `/proc/self/stat`), which says
 * whether a run was bound by the cores or by waiting.
 *
 * ```
 *   files (<root>/<suite>/**\/*.test.js), longest first (the last run's durations, else the committed ones)
 *     ──▶ start one whenever running < jobs, and one more every half second while running < max-jobs
 *         and the cores were a quarter idle or more:   node <file>   (output captured, printed whole when it ends)
 *     ──▶ summary: files, tests passed / failed, CPU time, the slowest files, exit 1 on any failure
 * ```
 *
 * Each file runs in a fixed environment: the caller's, with colour off and
 * without `NODE_EXTRA_CA_CERTS`. Node reads and parses the certificate
 * bundle that variable names when a process starts, before any code runs
 * (several hundred certificates when it names the system's whole bundle,
 * which some machines set for every program), and a run starts a few hundred
 * Node processes: test files, examples, fixtures, doc blocks. The tests talk
 * only to servers on loopback, with their own certificates where they use
 * TLS, so none of those processes ever verifies a public certificate.
 *
 * Usage: `node scripts/run-tests.mjs [--jobs N] [--max-jobs M] [--idle-share F] [--timeout-s S] [--root DIR] <suite> [<suite> ...]`
 * where a suite is a folder under the test root (dist/test by default:
 * unit, conformance, integration, stress, packaging). `--jobs` defaults to 4
 * (`NETLOOP_TEST_JOBS` overrides), `--max-jobs` to twice `--jobs`;
 * `--idle-share` is the idle share of the cores that lets one more start
 * (default 0.25; 0 starts one every half second up to `--max-jobs`); a file
 * that runs longer than `--timeout-s` (default 300) is killed and fails.
 * `--root` runs the suites of another folder (the runner's own tests); the
 * figures of a run are written beside that folder, as `.test-times.json`.
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let testRoot = path.join(root, 'dist', 'test');
const seedTimesFile = path.join(root, 'scripts', 'test-times.json');

let jobs = Number(process.env['NETLOOP_TEST_JOBS'] ?? 4);
/** @type {number | undefined} */
let maxJobs;
let timeoutS = 300;
let idleShare = 0.25;
/** @type {string[]} */
const suites = [];
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i] ?? '';
  if (arg === '--jobs') jobs = Number(process.argv[++i]);
  else if (arg === '--max-jobs') maxJobs = Number(process.argv[++i]);
  else if (arg === '--timeout-s') timeoutS = Number(process.argv[++i]);
  else if (arg === '--idle-share') idleShare = Number(process.argv[++i]);
  else if (arg === '--root') testRoot = path.resolve(process.argv[++i] ?? fail('--root needs a folder'));
  else if (arg.startsWith('-')) fail(`unknown option ${arg}`);
  else suites.push(arg);
}
if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) fail(`--jobs must be an integer in [1, 64], got ${jobs}`);
maxJobs ??= 2 * jobs;
if (!Number.isInteger(maxJobs) || maxJobs < jobs || maxJobs > 128) fail(`--max-jobs must be an integer in [--jobs, 128], got ${maxJobs}`);
if (!(timeoutS > 0)) fail(`--timeout-s must be positive, got ${timeoutS}`);
if (!(idleShare >= 0 && idleShare <= 1)) fail(`--idle-share must be a fraction in [0, 1], got ${idleShare}`);
if (suites.length === 0) fail('name at least one suite (a folder under dist/test), e.g. unit integration');
const timesFile = path.join(path.dirname(testRoot), '.test-times.json');

/** @type {string[]} */
const files = [];
for (const suite of suites) {
  const dir = path.join(testRoot, suite);
  if (!fs.existsSync(dir)) continue; // a suite with no files yet (conformance before its first store)
  for (const f of walk(dir)) if (f.endsWith('.test.js')) files.push(f);
}
if (files.length === 0) fail(`no test files under ${suites.map((s) => path.join(testRoot, s)).join(', ')}`);

/** @type {Record<string, number>} */
const lastTimes = readTimes(timesFile); // first run, or a cleaned dist: the committed durations order the files
/** @type {Record<string, number>} */
const seedTimes = readTimes(seedTimesFile); // none committed: files the last run did not time count as equally short
const rel = (/** @type {string} */ f) => path.relative(testRoot, f);
// Longest first, so the long files start at once and the short ones fill the gaps.
const hint = (/** @type {string} */ f) => lastTimes[rel(f)] ?? seedTimes[rel(f)] ?? 1;
files.sort((a, b) => hint(b) - hint(a) || a.localeCompare(b));

/** The environment of every test file (see the header). @type {NodeJS.ProcessEnv} */
const fileEnv = { ...process.env, FORCE_COLOR: '0' };
delete fileEnv['NODE_EXTRA_CA_CERTS'];

const started = Date.now();
const cpuAtStart = childrenCpuMs();
/** @type {Array<{ file: string; ms: number; code: number | null; total: number; passed: number; skipped: number; timedOut: boolean }>} */
const results = [];
let running = 0;
let next = 0;
await new Promise((resolve) => {
  const start = () => {
    const file = /** @type {string} */ (files[next++]);
    running++;
    void runFile(file).then((r) => {
      running--;
      results.push(r);
      while (running < jobs && next < files.length) start();
      if (running === 0 && next >= files.length) {
        clearInterval(extra);
        resolve(undefined);
      }
    });
  };
  while (running < jobs && next < files.length) start();
  // An extra file while the cores idle (see the header).
  let last = cpuTimes();
  const extra = setInterval(() => {
    const now = cpuTimes();
    if (last !== undefined && now !== undefined && now.total > last.total) {
      const idle = (now.idle - last.idle) / (now.total - last.total);
      if (idle >= idleShare && running < /** @type {number} */ (maxJobs) && next < files.length) start();
    }
    last = now;
  }, 500);
});

const failed = results.filter((r) => r.code !== 0 || r.passed < r.total);
const sum = (/** @type {'total' | 'passed' | 'skipped'} */ k) => results.reduce((n, r) => n + r[k], 0);
const times = { ...lastTimes };
for (const r of results) times[rel(r.file)] = r.ms;
try {
  fs.writeFileSync(timesFile, `${JSON.stringify(times, null, 1)}\n`);
} catch {
  // Only a scheduling hint.
}
const cpuAtEnd = childrenCpuMs();
const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5);
process.stdout.write(
  `\n${files.length} files (${suites.join(', ')}), ${jobs} at a time (up to ${maxJobs} while the cores idle), ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
    (cpuAtStart === undefined || cpuAtEnd === undefined ? '' : `  CPU:     ${((cpuAtEnd - cpuAtStart) / 1000).toFixed(1)} s (the test files and every process they waited for)\n`) +
    `  Total:   ${sum('total')}\n  Passed:  ${sum('passed')}\n  Skipped: ${sum('skipped')}\n` +
    `  Slowest: ${slowest.map((r) => `${rel(r.file)} ${(r.ms / 1000).toFixed(1)} s`).join(', ')}\n`,
);
if (failed.length > 0) {
  process.stdout.write(`  FAILED:  ${failed.map((r) => `${rel(r.file)}${r.timedOut ? ' (timed out)' : ''}`).join(', ')}\n`);
  process.exitCode = 1;
}

/** @param {string} file */
function runFile(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    /** @type {Buffer[]} */
    const out = [];
    const child = spawn(process.execPath, [file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: fileEnv });
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => out.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString('utf8');
      const count = (/** @type {string} */ label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);
      const r = { file, ms: Date.now() - t0, code: timedOut ? null : code, total: count('Total'), passed: count('Passed'), skipped: count('Skipped'), timedOut };
      process.stdout.write(`\n── ${rel(file)} (${(r.ms / 1000).toFixed(1)} s)${r.code === 0 && r.passed >= r.total ? "" : " FAILED"}\n${text}`);
      resolve(r);
    });
  });
}

/**
 * CPU time, in ms, of the runner's children that have ended and been waited
 * for (and of everything they waited for), from Linux's `/proc/self/stat`
 * (fields 16 and 17, `cutime` and `cstime`, in clock ticks: Linux reports
 * them in USER_HZ, 100 a second on every architecture Node runs on);
 * undefined elsewhere.
 */
function childrenCpuMs() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[13]) + Number(fields[14]); // fields 16 and 17 of the whole line
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The machine's CPU time so far, all cores (the first line of Linux's
 * `/proc/stat`, in clock ticks): idle (idle and waiting for I/O) and total;
 * undefined elsewhere.
 */
function cpuTimes() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    if (ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return undefined;
    return { idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), total: ticks.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

/** @param {string} file @returns {Record<string, number>} */
function readTimes(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/** @param {string} dir @returns {Generator<string>} */
function* walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

/** @param {string} message @returns {never} */
function fail(message) {
  process.stderr.write(`run-tests: ${message}\n`);
  process.exit(2);
}
