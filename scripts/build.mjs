#!/usr/bin/env node
// @ts-check
/**
 * One incremental TypeScript build of the whole project (tsconfig.json: lib,
 * test, bench, examples) into dist/, under a lock. `npm run build`,
 * `prepare` (so `npm install` and `npm pack`), `npm test` and every script
 * that runs compiled code (`start`, `chat`, `echo`, `bench`) call it, so
 *
 * - a script started after `npm install` finds everything up to date and
 *   compiles nothing (`tsc -b` compares timestamps and exits);
 * - after an edit, only the changed files and their dependants are checked
 *   and emitted (`incremental`, state in dist/.tsbuildinfo);
 * - two scripts started together never write dist/ under each other: the
 *   second waits for the first's lock, then finds everything up to date.
 *
 * ```
 *   npm start ───┐                       ┌─ lock free: take it, tidy dist/, tsc -b, release
 *   npm test ────┼──▶ scripts/build.mjs ─┤
 *   npm run … ───┘                       └─ lock held by a live process: wait, then as above
 *                                            (held by a dead one: take it over)
 * ```
 *
 * dist/ is kept a mirror of the sources: output whose source is gone (a file
 * moved or deleted) is removed before compiling, so it can neither run as a
 * stale test nor ship in the package; and since an incremental build only
 * emits what changed, an output that went missing (deleted by hand) forces a
 * full build.
 *
 * Usage: `node scripts/build.mjs [--force] [--verbose] [--clean] [--project
 * <tsconfig.json>]`; `--clean` empties the output folder (under the lock) and
 * builds nothing; `--project` builds another configuration (tsconfig.json by
 * default; the tests of this script build small projects of their own).
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// require(), not import: importing CommonJS from an ES module makes Node scan
// typescript.js (9 MB) for its export names first, which costs about a second.
/** @type {typeof import('typescript')} */
const ts = createRequire(import.meta.url)('typescript');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let configPath = path.join(root, 'tsconfig.json');
const args = new Set();
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i] ?? '';
  if (arg === '--force' || arg === '--verbose' || arg === '--clean') args.add(arg);
  else if (arg === '--project' && i + 1 < process.argv.length) configPath = path.resolve(process.argv[++i] ?? '');
  else fail(`unknown argument ${arg} (expected --force, --verbose, --clean or --project <tsconfig.json>)`);
}

const config = readConfig();
const outDir = config.options.outDir ?? fail('tsconfig.json sets no outDir');
const rootDir = config.options.rootDir ?? fail('tsconfig.json sets no rootDir');
const lockDir = path.join(outDir, '.lock');

await acquireLock();
let status = 0;
try {
  if (args.has('--clean')) {
    for (const name of fs.existsSync(outDir) ? fs.readdirSync(outDir) : []) {
      if (name !== '.lock') fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
    }
  } else {
    const force = args.has('--force') || tidyOutputs();
    status = build(force);
  }
} finally {
  fs.rmSync(lockDir, { recursive: true, force: true });
}
process.exit(status);

/** @returns {import('typescript').ParsedCommandLine} */
function readConfig() {
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  });
  if (!parsed) fail('cannot read tsconfig.json');
  if (parsed.errors.length > 0) fail(parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n'));
  return parsed;
}

/**
 * Removes every output whose source is no longer compiled, and reports
 * whether the build must be full: a compiled source has no JavaScript output
 * although the incremental state says it was built.
 */
function tidyOutputs() {
  const sources = new Set(config.fileNames.map((/** @type {string} */ f) => path.resolve(f)));
  const buildInfo = ts.getTsBuildInfoEmitOutputFilePath(config.options);
  /** @param {string} dir @returns {boolean} whether dir is now empty */
  const walk = (dir) => {
    let empty = true;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.name.startsWith('.') || full === buildInfo) { empty = false; continue; } // .lock, .tsbuildinfo
      if (entry.isDirectory()) {
        if (walk(full)) fs.rmdirSync(full);
        else empty = false;
      } else if (!sourcesOf(full).some((s) => sources.has(s))) {
        fs.rmSync(full);
      } else {
        empty = false;
      }
    }
    return empty;
  };
  walk(outDir);
  if (buildInfo === undefined || !fs.existsSync(buildInfo)) return false;
  return [...sources].some((source) => !/\.d\.[cm]?ts$/.test(source) && !fs.existsSync(outputOf(source)));
}

/** The JavaScript file tsc emits for a source. @param {string} source */
function outputOf(source) {
  const rel = path.relative(rootDir, source);
  return path.join(outDir, rel.replace(/\.([cm]?)tsx?$/, '.$1js'));
}

/** The sources an output may come from. @param {string} output @returns {string[]} */
function sourcesOf(output) {
  const rel = path.relative(outDir, output);
  const match = /^(.*?)(\.d)?\.([cm]?)js(\.map)?$|^(.*?)\.d\.([cm]?)ts(\.map)?$/.exec(rel);
  if (!match) return [];
  const base = match[1] ?? match[5] ?? '';
  const kind = match[3] ?? match[6] ?? '';
  const stem = path.join(rootDir, base);
  return kind === '' ? [`${stem}.ts`, `${stem}.tsx`] : [`${stem}.${kind}ts`];
}

/** Runs `tsc -b` in this process. @param {boolean} force @returns {number} the exit status */
function build(force) {
  const pretty = process.stdout.isTTY === true;
  /** @type {import('typescript').FormatDiagnosticsHost} */
  const formatHost = {
    getCanonicalFileName: (fileName) => fileName,
    getCurrentDirectory: () => ts.sys.getCurrentDirectory(),
    getNewLine: () => ts.sys.newLine,
  };
  const host = ts.createSolutionBuilderHost(
    ts.sys,
    undefined,
    (diagnostic) => ts.sys.write(pretty ? ts.formatDiagnosticsWithColorAndContext([diagnostic], formatHost) : ts.formatDiagnostic(diagnostic, formatHost)),
    (status) => ts.sys.write(`${ts.flattenDiagnosticMessageText(status.messageText, ts.sys.newLine)}${ts.sys.newLine}`),
  );
  const builder = ts.createSolutionBuilder(host, [configPath], { force, verbose: args.has('--verbose') });
  return builder.build() === ts.ExitStatus.Success ? 0 : 1;
}

/**
 * Takes the lock: a directory (mkdir is atomic) holding the owner's pid. A
 * lock whose owner is dead (a build killed by Ctrl-C or SIGKILL) is taken
 * over; only the holder of a second directory, `.lock.takeover`, may remove
 * it, so two waiters that both find it dead never remove each other's fresh
 * lock.
 */
async function acquireLock() {
  fs.mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  let told = false;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), `${process.pid}\n`);
      return;
    } catch (error) {
      if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error;
    }
    const owner = lockOwner();
    if (owner === 'dead') {
      takeOver();
      continue;
    }
    if (!told && Date.now() - started > 1000) {
      told = true;
      console.error(`build: waiting for another build (pid ${owner}) to finish`);
    }
    if (Date.now() - started > 15 * 60_000) {
      fail(`another build (pid ${owner}) has held ${lockDir} for 15 minutes; remove it if no build is running`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** @returns {number | 'dead'} the live owner's pid, or 'dead' */
function lockOwner() {
  let pid;
  try {
    pid = Number.parseInt(fs.readFileSync(path.join(lockDir, 'pid'), 'utf8'), 10);
  } catch {
    // Between the owner's mkdir and its pid write, or already released. A
    // lock without a pid for a minute belongs to a process that died there.
    try {
      return Date.now() - fs.statSync(lockDir).mtimeMs > 60_000 ? 'dead' : 0;
    } catch {
      return 0;
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return 'dead';
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return /** @type {NodeJS.ErrnoException} */ (error).code === 'ESRCH' ? 'dead' : pid;
  }
}

function takeOver() {
  const takeover = `${lockDir}.takeover`;
  try {
    fs.mkdirSync(takeover);
  } catch {
    // Another waiter is taking over (it takes milliseconds); one that died
    // doing so left this behind, so a takeover older than 10 s is cleared.
    try {
      if (Date.now() - fs.statSync(takeover).mtimeMs > 10_000) fs.rmSync(takeover, { recursive: true, force: true });
    } catch {}
    return;
  }
  try {
    if (lockOwner() === 'dead') fs.rmSync(lockDir, { recursive: true, force: true });
  } finally {
    fs.rmSync(takeover, { recursive: true, force: true });
  }
}

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`build: ${message}`);
  process.exit(2);
}
