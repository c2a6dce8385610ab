/**
 * netloop's benchmark suite runner: `npm run bench -- [flags]`, or
 * `node dist/bench/run.js [flags]`.
 *
 * ```
 *   --quick              a short version of every scenario (the suite in under 60 s)
 *   --only A[,B]         run only these scenarios (repeatable)
 *   --json [FILE]        write one JSON object per measurement (default bench/out/results.jsonl)
 *   --out DIR            where the SVG chart (and the default JSON file) go (default bench/out)
 *   --module FILE        also run the scenario exported by this compiled module (repeatable)
 *   --list               list the registered scenarios and exit
 *   --help               print this help and exit
 * ```
 *
 * It prints the machine's facts and load, runs each scenario in turn (progress
 * on stderr), prints one Markdown table of every measurement (netloop beside the
 * baseline measured in the same run, the ratio, the spread of repeated runs and
 * the target, judged whether it is a ratio or an absolute figure), counts the
 * targets met and missed, writes the chart (a one-screen summary of every
 * ratio against its target, then a panel per scenario and metric), and exits
 * non-zero when a scenario failed or produced no figures. A scenario that is
 * missing or throws is reported and the others still run.
 *
 * Every scenario module can also run standalone (`node dist/bench/latency.js
 * [--quick] [--json [FILE]]`) through {@link runStandalone}.
 *
 * @module
 */

import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Measurement, Scenario } from './scenario.js';
import { registeredSources, SCENARIO_MODULES, sourceOfFile, sourceOfScenario } from './registry.js';
import type { ScenarioSource } from './registry.js';
import { formatFailures, formatTable, formatTargetSummary, toJsonLines } from './report.js';
import type { RunContext, ScenarioFailure } from './report.js';
import { renderChart } from './chart.js';
import { describeSystem, loadAverage, systemFacts } from './system.js';
import { isMain } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** The repository's `bench/out/` folder, resolved from the compiled file (`dist/bench/run.js`). */
export const DEFAULT_OUT_DIR = fileURLToPath(new URL('../../bench/out/', import.meta.url));

/** A scenario gets this long before the runner gives up on it (its children have their own limits). */
const SCENARIO_TIMEOUT_MS = { quick: 120_000, full: 1_800_000 };

/** Parsed command-line flags. */
export interface CliOptions {
  quick: boolean;
  /** Names given to `--only`; empty means all. */
  only: string[];
  /** `undefined`: no JSON; otherwise the file to write. */
  json: string | undefined;
  outDir: string;
  modules: string[];
  list: boolean;
  help: boolean;
}

/** The help text of `--help`. */
export const HELP = `usage: npm run bench -- [flags]    (or: node dist/bench/run.js [flags])

  --quick            a short version of every scenario (the whole suite in under 60 s)
  --only A[,B]       run only the named scenarios (repeatable)
  --json [FILE]      write one JSON object per measurement (default: bench/out/results.jsonl)
  --out DIR          where the SVG chart and the default JSON file go (default: bench/out)
  --module FILE      also run the scenario exported by this compiled module (repeatable)
  --list             list the registered scenarios and exit
  --help             print this help and exit

Scenarios: ${SCENARIO_MODULES.map((e) => e.name).join(', ')}
A ratio above 1 always means netloop is better than the baseline measured in the same run.`;

/**
 * Parses the runner's flags. Unknown flags are a coded error
 * ({@link ErrorCode.INVALID_OPTION}) rather than being silently ignored.
 */
export function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = {
    quick: false,
    only: [],
    json: undefined,
    outDir: DEFAULT_OUT_DIR,
    modules: [],
    list: false,
    help: false,
  };
  let jsonGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `${arg} needs a value`, { details: { option: arg } });
      }
      i++;
      return next;
    };
    switch (arg) {
      case '--quick':
        options.quick = true;
        break;
      case '--only':
        options.only.push(...value().split(',').map((s) => s.trim()).filter((s) => s !== ''));
        break;
      case '--json': {
        jsonGiven = true;
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          options.json = path.resolve(next);
          i++;
        }
        break;
      }
      case '--out':
        options.outDir = path.resolve(value());
        break;
      case '--module':
        options.modules.push(value());
        break;
      case '--list':
        options.list = true;
        break;
      case '--help':
      case '-h':
        options.help = true;
        break;
      default:
        throw new NetloopError(ErrorCode.INVALID_OPTION, `unknown flag ${arg} (see --help)`, { details: { option: arg } });
    }
  }
  if (jsonGiven && options.json === undefined) options.json = path.join(options.outDir, 'results.jsonl');
  return options;
}

/** Where the runner writes its human output; injectable so tests can capture it. */
export interface SuiteIo {
  out(line: string): void;
  err(line: string): void;
}

/** Everything {@link runSuite} needs. */
export interface SuiteOptions {
  sources: readonly ScenarioSource[];
  quick: boolean;
  /** Names to run; empty runs every source. */
  only?: readonly string[];
  /** A JSON Lines file to write, if any. */
  json?: string | undefined;
  outDir: string;
  /** The chart's file name inside `outDir`. */
  chartName?: string;
  /** The command line printed with the results. */
  command: string;
  io?: SuiteIo;
  /** Per-scenario time limit in ms (default: 2 min quick, 30 min full). */
  scenarioTimeoutMs?: number;
}

/** What {@link runSuite} produced. */
export interface SuiteResult {
  measurements: Measurement[];
  failures: ScenarioFailure[];
  /** The scenarios that ran and produced figures. */
  succeeded: string[];
  chartFile: string;
  jsonFile: string | undefined;
  /** 0 when every selected scenario produced figures, 1 otherwise. */
  exitCode: number;
}

const defaultIo: SuiteIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/**
 * Runs the selected scenarios one after another and reports them. Never
 * throws for a scenario's failure: it is recorded in `failures` and the
 * others still run. Throws only for an `--only` name that matches nothing.
 */
export async function runSuite(options: SuiteOptions): Promise<SuiteResult> {
  const io = options.io ?? defaultIo;
  const only = options.only ?? [];
  const known = new Set(options.sources.map((s) => s.name));
  const unknown = only.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new NetloopError(
      ErrorCode.INVALID_OPTION,
      `unknown scenario ${unknown.join(', ')}; known: ${[...known].join(', ')}`,
      { details: { unknown } },
    );
  }
  const selected = only.length === 0 ? options.sources : options.sources.filter((s) => only.includes(s.name));

  const facts = systemFacts();
  const context: RunContext = {
    command: options.command,
    quick: options.quick,
    node: facts.node,
    cores: facts.cores,
    cpuModel: facts.cpuModel,
    startedAt: new Date().toISOString(),
  };
  io.out(`netloop benchmark suite${options.quick ? ' (quick)' : ''}`);
  io.out(`command: ${options.command}`);
  for (const line of describeSystem(facts)) io.out(line);
  io.out('');

  const measurements: Measurement[] = [];
  const failures: ScenarioFailure[] = [];
  const succeeded: string[] = [];
  const suiteStart = Date.now();
  const limitMs = options.scenarioTimeoutMs ?? (options.quick ? SCENARIO_TIMEOUT_MS.quick : SCENARIO_TIMEOUT_MS.full);

  for (const source of selected) {
    const start = Date.now();
    const progress = (message: string): void => {
      io.err(`[${((Date.now() - suiteStart) / 1000).toFixed(1)}s] ${source.name}: ${message}`);
    };
    progress('starting');
    try {
      const scenario = await source.load();
      const produced = await withTimeout(
        scenario.run({ quick: options.quick, progress }),
        limitMs,
        `${source.name} did not finish within ${limitMs / 1000} s`,
      );
      const bad = checkMeasurements(produced);
      if (bad !== undefined) {
        failures.push({ scenario: source.name, message: bad });
        measurements.push(...produced.filter(isComplete));
        progress(`FAILED: ${bad}`);
      } else {
        measurements.push(...produced);
        succeeded.push(source.name);
        progress(`done: ${produced.length} measurements in ${((Date.now() - start) / 1000).toFixed(1)} s`);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      failures.push({ scenario: source.name, message });
      progress(`FAILED: ${message}`);
    }
  }

  const loadAfter = loadAverage();
  io.out(formatTable(measurements));
  io.out('');
  io.out('ratio: netloop against the baseline measured in the same run; above 1 means netloop is better.');
  io.out('Figures are medians of the runs; [min–max] is their range.');
  for (const line of formatTargetSummary(measurements)) io.out(line);
  io.out(`load average before: ${facts.loadAverage.join(', ')}    after: ${loadAfter.join(', ')}`);
  io.out(`total time: ${((Date.now() - suiteStart) / 1000).toFixed(1)} s`);

  await mkdir(options.outDir, { recursive: true });
  const chartFile = path.join(options.outDir, options.chartName ?? 'results.svg');
  await writeFile(
    chartFile,
    renderChart(measurements, {
      title: `netloop vs baselines${options.quick ? ' (quick run)' : ''}`,
      subtitle: `${facts.cores} cores · ${facts.cpuModel} · Node ${facts.node} · load ${facts.loadAverage[0]} → ${loadAfter[0]} · ${context.startedAt}\n${options.command}`,
    }),
  );
  io.out(`chart: ${chartFile}`);
  let jsonFile: string | undefined;
  if (options.json !== undefined) {
    jsonFile = options.json;
    await mkdir(path.dirname(jsonFile), { recursive: true });
    await writeFile(jsonFile, toJsonLines(measurements, context));
    io.out(`json: ${jsonFile} (${measurements.length} lines)`);
  }
  if (failures.length > 0) {
    io.out('');
    io.out(formatFailures(failures));
  }
  return { measurements, failures, succeeded, chartFile, jsonFile, exitCode: failures.length > 0 ? 1 : 0 };
}

/** A description of what is wrong with a scenario's output, or `undefined` when it is fine. */
export function checkMeasurements(produced: unknown): string | undefined {
  if (!Array.isArray(produced) || produced.length === 0) return 'produced no figures';
  const incomplete = (produced as Measurement[]).filter((m) => !isComplete(m));
  if (incomplete.length > 0) {
    return `${incomplete.length} of ${produced.length} measurements have no finite figure (${incomplete
      .map((m) => `${String(m?.metric)}`)
      .join(', ')})`;
  }
  return undefined;
}

function isComplete(m: Measurement): boolean {
  return (
    typeof m === 'object' &&
    m !== null &&
    Number.isFinite(m.netloop) &&
    Number.isFinite(m.baseline) &&
    Number.isFinite(m.ratio)
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NetloopError(ErrorCode.BENCH_FAILED, message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The command line as typed, for the output: `npm run bench -- ...` when run through npm. */
export function commandLine(argv: readonly string[] = process.argv): string {
  const args = argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args === '' ? '' : ` -- ${args}`}`;
  const script = argv[1] === undefined ? '' : path.relative(process.cwd(), argv[1]);
  return `node ${script}${args === '' ? '' : ` ${args}`}`;
}

/** The suite's command-line entry point; resolves with the process exit code. */
export async function main(argv: readonly string[] = process.argv.slice(2), io: SuiteIo = defaultIo): Promise<number> {
  let options: CliOptions;
  try {
    options = parseArgs(argv);
  } catch (err) {
    io.err(err instanceof Error ? err.message : String(err));
    return 2;
  }
  if (options.help) {
    io.out(HELP);
    return 0;
  }
  const sources = [...registeredSources(), ...options.modules.map(sourceOfFile)];
  if (options.list) {
    for (const s of sources) io.out(s.name);
    return 0;
  }
  try {
    const result = await runSuite({
      sources,
      quick: options.quick,
      only: options.only,
      json: options.json,
      outDir: options.outDir,
      command: commandLine(),
      io,
    });
    return result.exitCode;
  } catch (err) {
    io.err(err instanceof Error ? err.message : String(err));
    return 2;
  }
}

/**
 * Runs one scenario on its own (`node dist/bench/NAME.js [--quick] [--json [FILE]] [--out DIR]`):
 * the same header, table, chart (`bench/out/NAME.svg`) and JSON as the suite.
 * Sets `process.exitCode`.
 */
export async function runStandalone(scenario: Scenario, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  let options: CliOptions;
  try {
    options = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    process.stdout.write(`usage: node ${commandLine().split(' ')[1] ?? ''} [--quick] [--json [FILE]] [--out DIR]\n${scenario.description}\n`);
    return;
  }
  const result = await runSuite({
    sources: [sourceOfScenario(scenario)],
    quick: options.quick,
    json: options.json,
    outDir: options.outDir,
    chartName: `${scenario.name}.svg`,
    command: commandLine(),
  });
  process.exitCode = result.exitCode;
}

if (isMain(import.meta.url)) {
  main().then(
    (code) => {
      // Exit explicitly: a scenario that timed out may still hold handles until its children are killed.
      process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
