/**
 * scripts/run-tests.mjs, the runner of `npm test`: a file fails on a failing
 * exit status or on fewer tests passed than run, the summary counts every
 * test, the files start longest first by the last run's durations (and those
 * are written back), one more file starts beside `--jobs` while the cores
 * idle, each file gets the runner's fixed environment, a file past its time
 * limit is killed, and a bad option is refused. Each test runs the runner on suites of small test files
 * in a temporary folder (`--root`), which print the summary uvu prints.
 *
 * ```
 *   <tmp>/tests/s/a.test.js, b.test.js, ...   ──run-tests --root <tmp>/tests s──▶  summary, exit status
 *   <tmp>/.test-times.json                    (read for the order, written at the end)
 * ```
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { suite } from '../helpers/uvu.js';
import { withTimeout } from '../helpers/net.js';
import { uncoveredEnv } from '../helpers/child-env.js';

const RUNNER = fileURLToPath(new URL('../../../scripts/run-tests.mjs', import.meta.url));

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the runner on `<dir>/tests`, with `env` added to this process's environment. */
function runner(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  // The runner and these files run nothing of the library: no coverage to collect.
  const child = spawn(process.execPath, [RUNNER, '--root', path.join(dir, 'tests'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: uncoveredEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return withTimeout(done, 60_000, 'the runner to exit');
}

/** A test file printing uvu's summary for `total` tests of which `passed` passed, then exiting with `status`. */
function testFile(total: number, passed: number, status: number, before = ''): string {
  return `${before}\nconsole.log('  Total:     ${total}\\n  Passed:    ${passed}\\n  Skipped:   0');\nprocess.exitCode = ${status};\n`;
}

const test = suite<{ dir: string }>('test runner', { dir: '' });

test.before.each((ctx) => {
  ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-runner-'));
  fs.mkdirSync(path.join(ctx.dir, 'tests', 's'), { recursive: true });
});

test.after.each((ctx) => {
  fs.rmSync(ctx.dir, { recursive: true, force: true });
});

const write = (dir: string, name: string, text: string): void => fs.writeFileSync(path.join(dir, 'tests', 's', name), text);

test('a file fails on a failing exit status, or on fewer tests passed than run; the summary counts every test and exits 1', async ({ dir }) => {
  write(dir, 'good.test.js', testFile(3, 3, 0));
  write(dir, 'status.test.js', testFile(2, 2, 1));
  write(dir, 'short.test.js', testFile(2, 1, 0));
  write(dir, 'not-a-test.js', 'process.exit(1);\n');
  const r = await runner(dir, ['s']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^3 files \(s\), \d+ at a time/m);
  assert.match(r.stdout, /^ {2}Total: {3}7$/m);
  assert.match(r.stdout, /^ {2}Passed: {2}6$/m);
  const failed = /^ {2}FAILED: {2}(.*)$/m.exec(r.stdout)?.[1]?.split(', ').sort();
  assert.equal(failed, ['s/short.test.js', 's/status.test.js']);
  assert.match(r.stdout, /── s\/good\.test\.js \([\d.]+ s\)\n/, 'a passing file is not marked');
});

test('all passing: exit 0, no FAILED line', async ({ dir }) => {
  write(dir, 'a.test.js', testFile(1, 1, 0));
  write(dir, 'b.test.js', testFile(1, 1, 0));
  const r = await runner(dir, ['s']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.not.match(r.stdout, 'FAILED');
});

test('files start longest first by the last run, and the run writes its durations beside the test folder', async ({ dir }) => {
  for (const name of ['a', 'b', 'c']) write(dir, `${name}.test.js`, testFile(1, 1, 0));
  fs.writeFileSync(path.join(dir, '.test-times.json'), JSON.stringify({ 's/a.test.js': 1_000_000, 's/b.test.js': 3_000_000, 's/c.test.js': 2_000_000 }));
  const r = await runner(dir, ['--jobs', '1', '--max-jobs', '1', 's']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const order = [...r.stdout.matchAll(/── (s\/\w+\.test\.js)/g)].map((m) => m[1]);
  assert.equal(order, ['s/b.test.js', 's/c.test.js', 's/a.test.js']);
  const times = JSON.parse(fs.readFileSync(path.join(dir, '.test-times.json'), 'utf8')) as Record<string, number>;
  assert.equal(Object.keys(times).sort(), ['s/a.test.js', 's/b.test.js', 's/c.test.js']);
  // Each now holds this run's duration (under the runner's 300 s limit), not the one it was given.
  assert.ok(Object.values(times).every((ms) => Number.isInteger(ms) && ms >= 0 && ms < 300_000), JSON.stringify(times));
});

test('while the cores idle, one more file starts beside --jobs, up to --max-jobs: two files that each wait for the other both finish', async ({ dir }) => {
  // Each file connects to the rendezvous below and waits for its "go", sent once both are connected:
  // with one lane and no extra file, the first would wait until the runner's timeout killed it.
  const file = (name: string): string =>
    testFile(1, 1, 0, `import * as net from 'node:net';\nconst s = net.connect(Number(process.env.NETLOOP_RUNNER_PORT), '127.0.0.1', () => s.write('${name}'));\nawait new Promise((resolve) => s.once('data', resolve));\ns.destroy();`);
  write(dir, 'first.test.js', file('first'));
  write(dir, 'second.test.js', file('second'));
  fs.writeFileSync(path.join(dir, 'tests', 'package.json'), '{ "type": "module" }\n');
  const waiting: net.Socket[] = [];
  const rendezvous = net.createServer((socket) => {
    waiting.push(socket);
    if (waiting.length === 2) for (const w of waiting) w.write('go');
  });
  await new Promise<void>((resolve) => rendezvous.listen(0, '127.0.0.1', resolve));
  try {
    const port = String((rendezvous.address() as net.AddressInfo).port);
    // --idle-share 0: the extra file starts at the next half second whatever the machine's load.
    const r = await runner(dir, ['--jobs', '1', '--max-jobs', '2', '--idle-share', '0', '--timeout-s', '30', 's'], { NETLOOP_RUNNER_PORT: port });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^2 files \(s\), 1 at a time \(up to 2 while the cores idle\)/m);
    assert.is(waiting.length, 2);
  } finally {
    for (const w of waiting) w.destroy();
    await new Promise<void>((resolve) => rendezvous.close(() => resolve()));
  }
});

test("each file runs with colour off and without NODE_EXTRA_CA_CERTS, whatever the runner's environment", async ({ dir }) => {
  const check = `const env = process.env;\nif (env.NODE_EXTRA_CA_CERTS !== undefined || env.FORCE_COLOR !== '0' || env.NETLOOP_RUNNER_PROBE !== 'kept') { console.log(JSON.stringify(env)); process.exit(1); }`;
  write(dir, 'env.test.js', testFile(1, 1, 0, check));
  const certs = path.join(dir, 'certs.pem');
  fs.writeFileSync(certs, '');
  const r = await runner(dir, ['s'], { NODE_EXTRA_CA_CERTS: certs, FORCE_COLOR: '1', NETLOOP_RUNNER_PROBE: 'kept' });
  assert.is(r.code, 0, r.stdout + r.stderr);
});

test('a bad option or no suite is refused with exit status 2, naming the problem', async ({ dir }) => {
  write(dir, 'a.test.js', testFile(1, 1, 0));
  const cases: Array<[string[], RegExp]> = [
    [['--jobs', '0', 's'], /--jobs must be an integer in \[1, 64\], got 0/],
    [['--jobs', '4', '--max-jobs', '2', 's'], /--max-jobs must be an integer in \[--jobs, 128\], got 2/],
    [['--timeout-s', '-1', 's'], /--timeout-s must be positive/],
    [['--idle-share', '1.5', 's'], /--idle-share must be a fraction in \[0, 1\], got 1\.5/],
    [['--bogus', 's'], /unknown option --bogus/],
    [[], /name at least one suite/],
    [['nothing-here'], /no test files under /],
  ];
  for (const [args, message] of cases) {
    const r = await runner(dir, args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('a file that outlives --timeout-s is killed and fails as timed out', async ({ dir }) => {
  write(dir, 'hang.test.js', 'setInterval(() => {}, 1_000);\n');
  write(dir, 'ok.test.js', testFile(1, 1, 0));
  const r = await runner(dir, ['--timeout-s', '1', 's']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}FAILED: {2}s\/hang\.test\.js \(timed out\)$/m);
});

test.run();
