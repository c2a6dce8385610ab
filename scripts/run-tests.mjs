#!/usr/bin/env node
// @ts-check
/**
 * Runs compiled test files, several at a time, each in a process of its own.
 *
 * Every test file ends with uvu's `test.run()`, so `node file.test.js` runs
 * it alone and sets a failing exit code when a test fails. About half of a
 * file's time is spent waiting (servers starting, sockets, child processes,
 * timers), not computing, so several files at once cut the wall time. Four
 * lanes already keep two cores busy: more lanes do not shorten a run on a
 * machine the suite has to itself (they only take a larger share of a
 * machine shared with other work), while they add contention, CPU time and
 * the risk of a timing bound missed. Each file still runs its own tests one
 * after another, exactly as alone. c8 follows the child processes (they inherit
 * NODE_V8_COVERAGE), so coverage is unchanged; the tests' own children that
 * run only tools opt out (test/helpers/child-env.ts).
 *
 * The order matters as much as the number of lanes: a long file started
 * last leaves the other lanes idle while it runs alone. Files start longest
 * first, by the durations of the last run (dist/.test-times.json, written at
 * the end of each run); a file that run did not time takes its duration from
 * scripts/test-times.json, committed, so that a fresh clone (CI's first and
 * only run) is ordered as well as a working copy. That file is only a hint:
 * a stale or missing entry changes the order, never a result. To refresh it,
 * copy dist/.test-times.json over it after a full run.
 *
 * ```
 *   files (dist/test/<suite>/**\/*.test.js), longest first (durations of the last run, else the committed ones)
 *     ──▶ N lanes: node <file>   (output captured, printed whole when the file ends)
 *     ──▶ summary: files, tests passed / failed, the slowest files, exit 1 on any failure
 * ```
 *
 * Usage: `node scripts/run-tests.mjs [--jobs N] [--timeout-s S] <suite> [<suite> ...]`
 * where a suite is a folder under dist/test (unit, conformance, integration,
 * stress, packaging). `--jobs` defaults to 4 (`NETLOOP_TEST_JOBS` overrides);
 * a file that runs longer than `--timeout-s` (default 300) is killed and fails.
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = path.join(root, 'dist', 'test');
const timesFile = path.join(root, 'dist', '.test-times.json');
const seedTimesFile = path.join(root, 'scripts', 'test-times.json');

let jobs = Number(process.env['NETLOOP_TEST_JOBS'] ?? 4);
let timeoutS = 300;
/** @type {string[]} */
const suites = [];
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i] ?? '';
  if (arg === '--jobs') jobs = Number(process.argv[++i]);
  else if (arg === '--timeout-s') timeoutS = Number(process.argv[++i]);
  else if (arg.startsWith('-')) fail(`unknown option ${arg}`);
  else suites.push(arg);
}
if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) fail(`--jobs must be an integer in [1, 64], got ${jobs}`);
if (!(timeoutS > 0)) fail(`--timeout-s must be positive, got ${timeoutS}`);
if (suites.length === 0) fail('name at least one suite (a folder under dist/test), e.g. unit integration');

/** @type {string[]} */
const files = [];
for (const suite of suites) {
  const dir = path.join(testRoot, suite);
  if (!fs.existsSync(dir)) continue; // a suite with no files yet (conformance before its first store)
  for (const f of walk(dir)) if (f.endsWith('.test.js')) files.push(f);
}
if (files.length === 0) fail(`no test files under ${suites.map((s) => `dist/test/${s}`).join(', ')}`);

/** @type {Record<string, number>} */
let lastTimes = {};
try {
  lastTimes = JSON.parse(fs.readFileSync(timesFile, 'utf8'));
} catch {
  // First run, or a cleaned dist: the committed durations order the files.
}
/** @type {Record<string, number>} */
let seedTimes = {};
try {
  seedTimes = JSON.parse(fs.readFileSync(seedTimesFile, 'utf8'));
} catch {
  // No committed durations: files that the last run did not time count as equally short.
}
const rel = (/** @type {string} */ f) => path.relative(testRoot, f);
// Longest first, so the long files start at once and the short ones fill the gaps.
const hint = (/** @type {string} */ f) => lastTimes[rel(f)] ?? seedTimes[rel(f)] ?? 1;
files.sort((a, b) => hint(b) - hint(a) || a.localeCompare(b));

const started = Date.now();
/** @type {Array<{ file: string; ms: number; code: number | null; total: number; passed: number; skipped: number; timedOut: boolean }>} */
const results = [];
let next = 0;
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, () => lane()));

const failed = results.filter((r) => r.code !== 0 || r.passed < r.total);
const sum = (/** @type {'total' | 'passed' | 'skipped'} */ k) => results.reduce((n, r) => n + r[k], 0);
const times = { ...lastTimes };
for (const r of results) times[rel(r.file)] = r.ms;
try {
  fs.writeFileSync(timesFile, JSON.stringify(times, null, 1));
} catch {
  // Only a scheduling hint.
}
const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5);
process.stdout.write(
  `\n${files.length} files (${suites.join(', ')}), ${jobs} at a time, ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
    `  Total:   ${sum('total')}\n  Passed:  ${sum('passed')}\n  Skipped: ${sum('skipped')}\n` +
    `  Slowest: ${slowest.map((r) => `${rel(r.file)} ${(r.ms / 1000).toFixed(1)} s`).join(', ')}\n`,
);
if (failed.length > 0) {
  process.stdout.write(`  FAILED:  ${failed.map((r) => `${rel(r.file)}${r.timedOut ? ' (timed out)' : ''}`).join(', ')}\n`);
  process.exitCode = 1;
}

async function lane() {
  while (next < files.length) {
    const file = /** @type {string} */ (files[next++]);
    results.push(await runFile(file));
  }
}

/** @param {string} file */
function runFile(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    /** @type {Buffer[]} */
    const out = [];
    const child = spawn(process.execPath, [file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
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
