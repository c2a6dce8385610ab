/**
 * The benchmark suite runner, its report, chart and child-process helpers.
 * Runs tiny fake scenarios (and one real echo server with a very short load)
 * so CI proves the runner, JSON and chart writing work; asserts that figures
 * exist, never a timing.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs, runSuite, checkMeasurements } from '../../bench/run.js';
import type { SuiteIo } from '../../bench/run.js';
import { sourceOf, sourceOfScenario, SCENARIO_MODULES, isScenario } from '../../bench/registry.js';
import { measurement } from '../../bench/scenario.js';
import type { Measurement, Scenario } from '../../bench/scenario.js';
import { convertUnit, formatNumber, formatTable, formatTargetSummary, meetsTarget, parseTarget, ratioRange, toJsonLines } from '../../bench/report.js';
import { escapeXml, logTicks, niceTicks, renderChart } from '../../bench/chart.js';
import { spawnChild, startServer, parseFlags, intFlag } from '../../bench/processes.js';
import { startEchoChild } from '../../bench/echo-server.js';
import { runFramedLoad, quantile } from '../../bench/framed-load.js';
import { capConnections } from '../../bench/idle-load.js';
import { messageTargetFor, targetFor } from '../../bench/pipelined.js';
import { describeSystem, systemFacts } from '../../bench/system.js';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const runScript = path.join(here, '..', '..', 'bench', 'run.js');

function fakeMeasurement(scenario: string, metric: string, netloop: number[], baseline: number[], target?: string): Measurement {
  const m = measurement({
    scenario,
    params: { connections: 1 },
    metric,
    unit: 'msg/s',
    baselineName: 'node:net',
    higherIsBetter: true,
    runs: { netloop, baseline },
  });
  if (target !== undefined) m.target = target;
  return m;
}

const good: Scenario = {
  name: 'good',
  description: 'a fake scenario with two figures',
  run: async ({ progress }) => {
    progress('working');
    return [
      fakeMeasurement('good', 'messages', [10, 12, 11], [5, 6, 7], '>= 1.5x'),
      fakeMeasurement('good', 'bytes', [3], [4], '>= 1x'),
    ];
  },
};
const throwing: Scenario = {
  name: 'throwing',
  description: 'a fake scenario that throws',
  run: () => Promise.reject(new Error('boom')),
};
const empty: Scenario = { name: 'empty', description: 'produces nothing', run: () => Promise.resolve([]) };

function capture(): SuiteIo & { outText(): string; errText(): string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    outText: () => out.join('\n'),
    errText: () => err.join('\n'),
  };
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'netloop-'));
}

test('runSuite reports every scenario, continues past failures, writes chart and JSON lines', async () => {
  const dir = await tempDir();
  try {
    const io = capture();
    const missing = sourceOf({ name: 'missing', module: './no-such-scenario.js' });
    const result = await runSuite({
      sources: [sourceOfScenario(good), sourceOfScenario(throwing), missing, sourceOfScenario(empty)],
      quick: true,
      json: path.join(dir, 'out.jsonl'),
      outDir: dir,
      command: 'test',
      io,
    });
    assert.is(result.exitCode, 1);
    assert.equal(result.succeeded, ['good']);
    assert.equal(
      result.failures.map((f) => f.scenario),
      ['throwing', 'missing', 'empty'],
    );
    assert.match(result.failures[0]!.message, 'boom');
    assert.match(result.failures[1]!.message, 'not found');
    assert.match(result.failures[2]!.message, 'no figures');
    assert.is(result.measurements.length, 2);

    const text = io.outText();
    assert.match(text, 'cores:');
    assert.match(text, 'command: test');
    assert.match(text, 'load average before');
    assert.match(text, '| good');
    assert.match(text, '1.83x');
    assert.match(text, 'FAILED throwing: boom');
    assert.match(text, 'targets: 2, met 1, missed 1');
    assert.match(io.errText(), 'good: working');

    const lines = (await readFile(path.join(dir, 'out.jsonl'), 'utf8')).trim().split('\n');
    assert.is(lines.length, 2);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const field of ['scenario', 'params', 'metric', 'unit', 'netloop', 'baseline', 'baselineName', 'ratio', 'runs']) {
      assert.ok(field in first, `JSON line has ${field}`);
    }
    assert.is(first.netloop, 11);
    assert.is(first.baseline, 6);
    assert.is(first.targetMet, true);

    const svg = await readFile(result.chartFile, 'utf8');
    assert.ok(svg.startsWith('<svg'));
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    assert.match(svg, 'good · messages');
    assert.match(svg, 'At a glance');
    assert.match(svg, 'node:net');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('runSuite --only selects scenarios and refuses an unknown name with a coded error', async () => {
  const dir = await tempDir();
  try {
    const sources = [sourceOfScenario(good), sourceOfScenario(throwing)];
    const result = await runSuite({ sources, quick: true, only: ['good'], outDir: dir, command: 'test', io: capture() });
    assert.is(result.exitCode, 0);
    assert.is(result.jsonFile, undefined);
    try {
      await runSuite({ sources, quick: true, only: ['nope'], outDir: dir, command: 'test', io: capture() });
      assert.unreachable('an unknown scenario must be refused');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a scenario that overruns its time limit is reported as failed', async () => {
  const dir = await tempDir();
  try {
    let release: () => void = () => undefined;
    const slow: Scenario = {
      name: 'slow',
      description: 'never finishes on its own',
      run: () => new Promise<Measurement[]>((resolve) => (release = () => resolve([]))),
    };
    const result = await runSuite({
      sources: [sourceOfScenario(slow)],
      quick: true,
      outDir: dir,
      command: 'test',
      io: capture(),
      scenarioTimeoutMs: 50,
    });
    release();
    assert.is(result.exitCode, 1);
    assert.match(result.failures[0]!.message, 'did not finish');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('parseArgs reads every flag and refuses unknown ones', () => {
  const o = parseArgs(['--quick', '--only', 'a,b', '--only', 'c', '--json', '--out', 'x', '--module', 'm.js']);
  assert.is(o.quick, true);
  assert.equal(o.only, ['a', 'b', 'c']);
  assert.is(o.json, path.join(path.resolve('x'), 'results.jsonl'));
  assert.equal(o.modules, ['m.js']);
  assert.is(parseArgs(['--json', 'r.jsonl']).json, path.resolve('r.jsonl'));
  assert.is(parseArgs([]).json, undefined);
  assert.ok(parseArgs(['--help']).help);
  assert.ok(parseArgs(['--list']).list);
  assert.throws(() => parseArgs(['--frobnicate']), (err: unknown) => isNetloopError(err, ErrorCode.INVALID_OPTION));
  assert.throws(() => parseArgs(['--only']), (err: unknown) => isNetloopError(err, ErrorCode.INVALID_OPTION));
});

test('the registry lists every scenario module once', () => {
  const names = SCENARIO_MODULES.map((e) => e.name);
  for (const name of ['pingpong', 'latency', 'pipelined', 'decode', 'idle-memory', 'sessions', 'file-store', 'redis-store']) {
    assert.ok(names.includes(name), `registry lists ${name}`);
  }
  assert.is(new Set(names).size, names.length);
  assert.ok(isScenario(good));
  assert.not.ok(isScenario({ name: 'x' }));
});

test('the CLI runs a scenario module given by file, in quick mode, and writes JSON and SVG', async () => {
  const dir = await tempDir();
  try {
    const modulePath = path.join(dir, 'fake.mjs');
    await writeFile(
      modulePath,
      `export const scenario = { name: 'fake', description: 'fake', async run({ quick }) {
        return [{ scenario: 'fake', params: { quick }, metric: 'm', unit: 'x', netloop: 2, baseline: 1,
          baselineName: 'base', ratio: 2, higherIsBetter: true, runs: { netloop: [2], baseline: [1] } }];
      } };\n`,
    );
    const { stdout } = await execFileP(
      process.execPath,
      [runScript, '--quick', '--module', modulePath, '--only', 'fake', '--json', path.join(dir, 'r.jsonl'), '--out', dir],
      { timeout: 30_000 },
    );
    assert.match(stdout, 'netloop benchmark suite (quick)');
    assert.match(stdout, '| fake');
    const line = JSON.parse((await readFile(path.join(dir, 'r.jsonl'), 'utf8')).trim()) as Measurement & {
      context: { quick: boolean };
    };
    assert.is(line.ratio, 2);
    assert.is(line.context.quick, true);
    assert.match(await readFile(path.join(dir, 'results.svg'), 'utf8'), '<svg');

    // A failing selection gives a non-zero exit code.
    const failing = await execFileP(process.execPath, [runScript, '--only', 'nope', '--out', dir], { timeout: 30_000 }).then(
      () => 0,
      (err: { code?: number }) => err.code ?? -1,
    );
    assert.is(failing, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('report: numbers, targets and the table', () => {
  assert.is(formatNumber(1234567), '1,230,000');
  assert.is(formatNumber(72.41), '72.4');
  assert.is(formatNumber(0.012345), '0.0123');
  assert.is(formatNumber(0), '0');
  assert.is(meetsTarget({ ratio: 0.9, target: '>= 0.83x' }), true);
  assert.is(meetsTarget({ ratio: 0.8, target: '>= 0.83x' }), false);
  assert.is(meetsTarget({ ratio: 1.1, target: '<= 1.2x' }), true);
  assert.is(meetsTarget({ ratio: 1, target: undefined }), undefined);
  const m = fakeMeasurement('s', 'm', [1, 2, 3], [2, 2, 2], '>= 10x');
  const table = formatTable([m]);
  assert.match(table, '2.00 [1.00–3.00]');
  assert.match(table, 'MISS');
  assert.is(table.split('\n').length, 3);
  const json = toJsonLines([m], { command: 'c', quick: false, node: 'v', cores: 2, cpuModel: 'cpu', startedAt: 'now' });
  assert.equal((JSON.parse(json) as { spread: { netloop: number[] } }).spread.netloop, [1, 3]);
  assert.is(checkMeasurements([]), 'produced no figures');
  assert.match(checkMeasurements([{ ...m, netloop: Number.NaN }]) ?? '', 'no finite figure');
});

test('report: absolute targets (ns, ms, B) are judged on netloop\'s figure, in the table too', () => {
  // The forms the scenarios write.
  assert.equal(
    parseTarget('>= 2x (and <= 100 ns/frame)').map((c) => [c.kind, c.op, c.bound, c.unit]),
    [
      ['ratio', '>=', 2, 'x'],
      ['absolute', '<=', 100, 'ns/frame'],
    ],
  );
  assert.equal(parseTarget('netloop <= 50 ms').map((c) => c.text), ['<= 50 ms']);
  assert.equal(parseTarget('>= 1x (within the limit)').length, 1);
  assert.equal(parseTarget('fast enough'), []);

  assert.is(meetsTarget({ ratio: 1.15, target: '<= 200 ns', netloop: 227, unit: 'ns/call' }), false);
  assert.is(meetsTarget({ ratio: 0.33, target: '<= 50 ns', netloop: 49.9, unit: 'ns/call' }), true);
  assert.is(meetsTarget({ ratio: 1.52, target: '<= 1024 B', netloop: 503, unit: 'B' }), true);
  assert.is(meetsTarget({ ratio: 15.6, target: 'netloop <= 50 ms', netloop: 19.4, unit: 'ms' }), true);
  assert.is(meetsTarget({ ratio: 1.33, target: '<= 3 ms', netloop: 2_500, unit: 'us' }), true);
  assert.is(meetsTarget({ ratio: 1.33, target: '<= 3 ms', netloop: 3_500, unit: 'us' }), false);
  // Both clauses must hold.
  assert.is(meetsTarget({ ratio: 2.57, target: '>= 2x (and <= 100 ns/frame)', netloop: 54.9, unit: 'ns/frame' }), true);
  assert.is(meetsTarget({ ratio: 2.57, target: '>= 2x (and <= 100 ns/frame)', netloop: 120, unit: 'ns/frame' }), false);
  assert.is(meetsTarget({ ratio: 1.5, target: '>= 2x (and <= 100 ns/frame)', netloop: 54.9, unit: 'ns/frame' }), false);
  // Units that do not convert, or no figure, cannot be judged.
  assert.is(meetsTarget({ ratio: 2, target: '<= 3 ms', netloop: 1, unit: 'msg/s' }), undefined);
  assert.is(meetsTarget({ ratio: 2, target: '<= 3 ms' }), undefined);
  assert.is(convertUnit(2.15, 'ms/frame', 'ns/frame'), 2_150_000);
  assert.is(convertUnit(1, 'MiB', 'B'), 1_048_576);
  assert.is(convertUnit(1, 'ns/call', 'ns/frame'), undefined);

  const heartbeat = measurement({
    scenario: 'sessions',
    params: { sessions: 100000 },
    metric: 'heartbeat_by_id',
    unit: 'ns/call',
    baselineName: 'Map.get + expiry write',
    higherIsBetter: false,
    runs: { netloop: [227, 212, 467], baseline: [260, 182, 350] },
  });
  heartbeat.target = '<= 200 ns';
  const table = formatTable([heartbeat]);
  assert.match(table, '<= 200 ns MISS (227 ns)');
  assert.equal(formatTargetSummary([heartbeat, fakeMeasurement('s', 'm', [2], [1], '>= 1x')]).slice(0, 1), ['targets: 2, met 1, missed 1']);
  const record = JSON.parse(toJsonLines([heartbeat], { command: 'c', quick: false, node: 'v', cores: 2, cpuModel: 'cpu', startedAt: 'now' })) as {
    targetMet: boolean;
    spread: { ratio: number[] };
  };
  assert.is(record.targetMet, false);
  // Runs paired by index: 260/227, 182/212, 350/467 (lower is better, so baseline / netloop).
  assert.equal(record.spread.ratio, ratioRange(heartbeat));
  assert.ok(Math.abs(record.spread.ratio[0]! - 350 / 467) < 1e-12 && Math.abs(record.spread.ratio[1]! - 260 / 227) < 1e-12);
});

test('chart: ticks, escaping and an empty chart stay valid', () => {
  assert.equal(niceTicks(9), [0, 2, 4, 6, 8, 10]);
  assert.equal(niceTicks(0), [0, 1]);
  assert.equal(logTicks(9_000, 2_000_000), [1_000, 10_000, 100_000, 1_000_000, 10_000_000]);
  assert.is(escapeXml('<a & "b">'), '&lt;a &amp; &quot;b&quot;&gt;');
  const empty = renderChart([], { title: 'none' });
  assert.match(empty, 'no measurements');
  const svg = renderChart(
    [fakeMeasurement('s', 'm', [1, 2], [3, 4]), { ...fakeMeasurement('s', 'm', [1, 2], [5]), baselineName: 'other' }],
    { title: 't <x>', subtitle: 'sub' },
  );
  assert.match(svg, 't &lt;x&gt;');
  assert.match(svg, 'other');
  assert.ok((svg.match(/<rect /g) ?? []).length >= 4);
  // Bars 100x apart switch the panel to a logarithmic axis.
  const wide = renderChart([fakeMeasurement('s', 'm', [1_000_000], [10_000])], { title: 'wide' });
  assert.match(wide, 'log scale');
});

test('processes: a real echo server child and a short load run produce figures', async () => {
  const server = await startEchoChild('tuned', 20_000);
  try {
    assert.ok(server.port > 0);
    const result = await runFramedLoad({
      port: server.port,
      connections: 2,
      inflight: 2,
      size: 64,
      warmupMs: 20,
      durationMs: 100,
      latency: true,
    });
    assert.ok(result.replies > 0);
    assert.ok(result.msgsPerSec > 0);
    assert.ok(result.rtt !== undefined && result.rtt.samples > 0 && result.rtt.p99 > 0);
  } finally {
    await server.handle.kill();
  }
});

test('processes: a child that exits early or never announces is a coded failure', async () => {
  const dir = await tempDir();
  try {
    const exits = path.join(dir, 'exits.mjs');
    await writeFile(exits, `console.error('bad start'); process.exit(3);\n`);
    try {
      await startServer({ script: exits, timeoutMs: 10_000, name: 'exits' });
      assert.unreachable('must reject');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.BENCH_FAILED));
      assert.match((err as Error).message, 'bad start');
    }
    const silent = path.join(dir, 'silent.mjs');
    await writeFile(silent, `setInterval(() => {}, 1000); process.stdin.resume();\n`);
    try {
      await startServer({ script: silent, timeoutMs: 10_000, startTimeoutMs: 100, name: 'silent' });
      assert.unreachable('must reject');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.BENCH_FAILED));
      assert.match((err as Error).message, 'within 100 ms');
    }
    const hangs = spawnChild({ script: silent, timeoutMs: 100, name: 'hangs' });
    const exit = await hangs.exited;
    assert.ok(exit.timedOut);
    try {
      await hangs.result();
      assert.unreachable('must reject');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.BENCH_FAILED));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('helpers: flags, quantiles, fd caps, targets, system facts', () => {
  const flags = parseFlags(['--port', '5', '--latency', '--x']);
  assert.is(intFlag(flags, 'port', 0), 5);
  assert.is(intFlag(flags, 'missing', 7), 7);
  assert.is(flags.get('latency'), true);
  assert.throws(() => intFlag(parseFlags(['--port', 'x']), 'port', 0), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  assert.is(quantile(new Float64Array([1, 2, 3, 4]), 0.5), 2);
  assert.is(quantile(new Float64Array([1, 2, 3, 4]), 0.99), 4);
  assert.equal(capConnections(100, 20_000), { count: 100 });
  const capped = capConnections(10_000, 1_024);
  assert.is(capped.count, 960);
  assert.match(capped.note ?? '', 'ulimit -n');
  assert.is(targetFor(100, 100, 'naive'), '>= 10x');
  assert.is(targetFor(100, 100, 'tuned'), '>= 0.7x');
  assert.is(targetFor(1, 1, 'tuned'), '>= 0.9x');
  assert.is(targetFor(1, 100, 'naive'), undefined);
  assert.equal([messageTargetFor(100, 1), messageTargetFor(100, 100), messageTargetFor(1, 1), messageTargetFor(1, 100)], ['>= 0.9x', '>= 0.9x', undefined, undefined]);
  const facts = systemFacts();
  assert.ok(facts.cores >= 1);
  assert.match(describeSystem(facts).join('\n'), 'node: v');
});

test.run();
