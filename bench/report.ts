/**
 * Formats measurements: the suite's table (Markdown, so it can be pasted into
 * `bench/RESULTS.md` as is) and its JSON lines.
 *
 * @module
 */

import type { Measurement } from './scenario.js';

/** A scenario that produced no figures, and why; printed under the table. */
export interface ScenarioFailure {
  scenario: string;
  message: string;
}

/** Facts stamped on every JSON line so a line read alone still says where it came from. */
export interface RunContext {
  command: string;
  quick: boolean;
  node: string;
  cores: number;
  cpuModel: string;
  startedAt: string;
}

/** One JSON line: a {@link Measurement} plus its spread, target verdict and run context. */
export interface MeasurementRecord extends Measurement {
  /**
   * Smallest and largest of each side's runs, and of the ratio over the runs
   * (see {@link ratioRange}).
   */
  spread: { netloop: [number, number]; baseline: [number, number]; ratio: [number, number] };
  /**
   * Whether the measurement meets `target` (every clause of it, ratio and
   * absolute); absent when there is no target or it cannot be judged.
   */
  targetMet?: boolean;
  context: RunContext;
}

/** A comparison of a target clause. */
export type Comparison = '>=' | '<=' | '>' | '<';

/**
 * One clause of a target. A target is free text holding one or more clauses:
 *
 * ```
 *   ">= 0.95x"                      one ratio clause (above 1 means netloop is better)
 *   "<= 200 ns"                     one absolute clause, on netloop's median
 *   "netloop <= 50 ms"              the same; the subject is always netloop
 *   ">= 2x (and <= 100 ns/frame)"   two clauses; both must hold
 *   ">= 1x (within the limit)"      words without a comparison are a note
 * ```
 */
export interface TargetClause {
  /** `ratio` for a bound written in `x`, `absolute` for a bound in a unit. */
  kind: 'ratio' | 'absolute';
  op: Comparison;
  bound: number;
  /** `x` for a ratio clause, else the bound's unit as written (`ns`, `ms`, `B`, `ns/frame`). */
  unit: string;
  /** The clause as written, e.g. `<= 100 ns/frame`. */
  text: string;
}

/** A clause judged against one measurement. */
export interface ClauseCheck {
  clause: TargetClause;
  /**
   * The figure the clause is judged on: the ratio for a ratio clause,
   * netloop's median in the clause's unit for an absolute one; `NaN` when
   * the units cannot be compared.
   */
  figure: number;
  /** `undefined` when the clause cannot be judged (units that do not convert). */
  met: boolean | undefined;
}

/** A whole target judged against one measurement. */
export interface TargetCheck {
  /** `false` when any clause is missed, `true` when every clause is met, else `undefined`. */
  met: boolean | undefined;
  checks: ClauseCheck[];
}

/** What {@link checkTarget} reads of a measurement; `netloop` and `unit` are needed by absolute clauses only. */
export type Judged = Pick<Measurement, 'ratio' | 'target'> & Partial<Pick<Measurement, 'netloop' | 'unit'>>;

const CLAUSE = /(>=|<=|≥|≤|>|<)\s*([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)(?:e([+-]?[0-9]+))?\s*([^\s,;()]*)/g;

/**
 * The clauses of a target (see {@link TargetClause}), in the order written.
 * A comparison whose bound has no unit is not a clause (it could not be
 * judged); an empty list means the target has no clause this reads.
 */
export function parseTarget(target: string): TargetClause[] {
  const clauses: TargetClause[] = [];
  for (const match of target.matchAll(CLAUSE)) {
    const op = ({ '≥': '>=', '≤': '<=' } as Record<string, Comparison>)[match[1]!] ?? (match[1] as Comparison);
    const bound = Number(match[2]!.replace(/,/g, '')) * 10 ** Number(match[3] ?? 0);
    const unit = match[4]!;
    if (unit === '' || !Number.isFinite(bound)) continue;
    clauses.push({ kind: unit === 'x' ? 'ratio' : 'absolute', op, bound, unit, text: match[0].trim() });
  }
  return clauses;
}

/** `a op b`. */
function compare(a: number, op: Comparison, b: number): boolean {
  switch (op) {
    case '>=':
      return a >= b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    default:
      return a < b;
  }
}

/**
 * Base units the suite's figures use, with their size in the dimension's
 * base (seconds or bytes). A unit may carry a per-item suffix (`ns/frame`,
 * `ns/call`); a target may leave it out (`<= 200 ns` for `ns/call`).
 */
const SCALES: Readonly<Record<string, readonly [dimension: string, factor: number]>> = {
  ns: ['s', 1e-9],
  us: ['s', 1e-6],
  'µs': ['s', 1e-6],
  'μs': ['s', 1e-6],
  ms: ['s', 1e-3],
  s: ['s', 1],
  B: ['B', 1],
  KiB: ['B', 1024],
  MiB: ['B', 1024 ** 2],
  GiB: ['B', 1024 ** 3],
  kB: ['B', 1e3],
  KB: ['B', 1e3],
  MB: ['B', 1e6],
  GB: ['B', 1e9],
};

/**
 * `value` in unit `from` expressed in unit `to`, or `undefined` when they do
 * not convert. Equal units always convert; otherwise both must be time or
 * both sizes, with the same per-item suffix or one of them without one (a
 * target written `<= 200 ns` for a figure in `ns/call`):
 * `convertUnit(227, 'ns/call', 'ns')` is 227, `convertUnit(2.15, 'ms/frame', 'ns/frame')`
 * is 2,150,000, `convertUnit(1, 'msg/s', 'ms')` and `convertUnit(1, 'ns/call', 'ns/frame')`
 * are `undefined`.
 */
export function convertUnit(value: number, from: string, to: string): number | undefined {
  if (from === to) return value;
  const split = (unit: string): [string, string] => {
    const slash = unit.indexOf('/');
    return slash < 0 ? [unit, ''] : [unit.slice(0, slash), unit.slice(slash)];
  };
  const [fromBase, fromPer] = split(from);
  const [toBase, toPer] = split(to);
  const a = SCALES[fromBase];
  const b = SCALES[toBase];
  if (a === undefined || b === undefined || a[0] !== b[0]) return undefined;
  if (toPer !== '' && fromPer !== '' && toPer !== fromPer) return undefined;
  return (value * a[1]) / b[1];
}

/**
 * Judges a measurement against its target: a ratio clause on the ratio, an
 * absolute clause on netloop's median converted to the clause's unit.
 * Returns `undefined` when there is no target.
 */
export function checkTarget(m: Judged): TargetCheck | undefined {
  if (m.target === undefined) return undefined;
  const checks = parseTarget(m.target).map((clause): ClauseCheck => {
    const figure =
      clause.kind === 'ratio'
        ? m.ratio
        : m.netloop === undefined || m.unit === undefined
          ? Number.NaN
          : (convertUnit(m.netloop, m.unit, clause.unit) ?? Number.NaN);
    return { clause, figure, met: Number.isFinite(figure) ? compare(figure, clause.op, clause.bound) : undefined };
  });
  const met = checks.some((c) => c.met === false)
    ? false
    : checks.length > 0 && checks.every((c) => c.met === true)
      ? true
      : undefined;
  return { met, checks };
}

/**
 * Whether a measurement meets its target (see {@link checkTarget}): ratio
 * targets are written against the ratio (above 1 means netloop is better:
 * `>= 0.95x`, `>= 10x`, `<= 1.2x`), absolute ones against netloop's median
 * (`<= 200 ns`, `<= 1024 B`). Returns `undefined` when there is no target or
 * it cannot be judged.
 */
export function meetsTarget(m: Judged): boolean | undefined {
  return checkTarget(m)?.met;
}

/**
 * Where a clause lies on the measurement's ratio axis: a ratio clause at its
 * bound; an absolute clause at the ratio netloop would have if its median
 * were exactly the bound, against this run's baseline (for a lower-is-better
 * metric, `baseline / bound`). An absolute clause `netloop <= b` on such a
 * metric is met exactly when the ratio is at least that mark. `undefined`
 * when the units do not convert or the mark is not a positive finite number.
 */
export function clauseRatio(
  m: Pick<Measurement, 'baseline' | 'unit' | 'higherIsBetter'>,
  clause: TargetClause,
): number | undefined {
  let mark = clause.bound;
  if (clause.kind === 'absolute') {
    const bound = convertUnit(clause.bound, clause.unit, m.unit);
    if (bound === undefined) return undefined;
    mark = m.higherIsBetter ? bound / m.baseline : m.baseline / bound;
  }
  return Number.isFinite(mark) && mark > 0 ? mark : undefined;
}

/**
 * The smallest and largest ratio over the runs, always including the ratio
 * of the medians. When both sides ran the same number of times, run i of one
 * side is paired with run i of the other (the scenarios alternate their
 * repetitions, so a pair saw the same phase of a noisy machine); otherwise
 * each side's runs are taken against the other side's median.
 */
export function ratioRange(m: Pick<Measurement, 'netloop' | 'baseline' | 'ratio' | 'higherIsBetter' | 'runs'>): [number, number] {
  const ratio = (n: number, b: number): number => (m.higherIsBetter ? n / b : b / n);
  const { netloop, baseline } = m.runs;
  const ratios =
    netloop.length === baseline.length
      ? netloop.map((n, i) => ratio(n, baseline[i]!))
      : [...netloop.map((n) => ratio(n, m.baseline)), ...baseline.map((b) => ratio(m.netloop, b))];
  const finite = [m.ratio, ...ratios].filter((r) => Number.isFinite(r));
  return finite.length === 0 ? [Number.NaN, Number.NaN] : minMax(finite);
}

/** Smallest and largest of a list (NaN for an empty one). */
export function minMax(values: readonly number[]): [number, number] {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/**
 * A number with three significant digits and thousands separators:
 * `1234567` → `1,230,000`, `0.012345` → `0.0123`, `72.41` → `72.4`.
 */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(x)));
  const decimals = Math.max(0, 2 - magnitude);
  const rounded = Number(x.toPrecision(3));
  return rounded.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** `12.3 [11.9–13.0]`: the median and the range of the runs (only the median when there is one run). */
export function formatWithSpread(medianValue: number, runs: readonly number[]): string {
  if (runs.length <= 1) return formatNumber(medianValue);
  const [min, max] = minMax(runs);
  return `${formatNumber(medianValue)} [${formatNumber(min)}–${formatNumber(max)}]`;
}

/** `a=1 b=x` from a params object, in insertion order. */
export function formatParams(params: Measurement['params']): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/** The column headers of the suite's table. */
export const TABLE_HEADERS = [
  'scenario',
  'params',
  'metric',
  'netloop [min–max]',
  'baseline [min–max]',
  'ratio',
  'target',
  'runs',
] as const;

/**
 * The verdict on a measurement's target as the table prints it: the target
 * as written, `ok`, `MISS` or `not judged`, and for an absolute clause the
 * figure judged, in the clause's unit: `>= 0.95x ok`, `<= 200 ns MISS (227 ns)`,
 * `>= 2x (and <= 100 ns/frame) ok (54.9 ns/frame)`. Empty without a target.
 */
export function formatTargetVerdict(m: Judged): string {
  const check = checkTarget(m);
  if (check === undefined) return '';
  const word = check.met === undefined ? 'not judged' : check.met ? 'ok' : 'MISS';
  return `${m.target} ${word}${judgedFigures(check)}`;
}

/** ` (227 ns)`: the figures an absolute clause judged, in its unit; empty for ratio clauses. */
function judgedFigures(check: TargetCheck): string {
  const figures = check.checks
    .filter((c) => c.clause.kind === 'absolute' && Number.isFinite(c.figure))
    .map((c) => `${formatNumber(c.figure)} ${c.clause.unit}`);
  return figures.length === 0 ? '' : ` (${figures.join(', ')})`;
}

/** One table row (cells as text) for a measurement. */
export function tableRow(m: Measurement): string[] {
  return [
    m.scenario,
    formatParams(m.params),
    `${m.metric} (${m.unit}${m.higherIsBetter ? ', higher is better' : ', lower is better'})`,
    formatWithSpread(m.netloop, m.runs.netloop),
    `${m.baselineName}: ${formatWithSpread(m.baseline, m.runs.baseline)}`,
    `${formatNumber(m.ratio)}x`,
    formatTargetVerdict(m),
    String(Math.min(m.runs.netloop.length, m.runs.baseline.length)),
  ];
}

/**
 * Lines that sum up the targets under the table: how many were met, missed
 * or could not be judged, then one line per miss. Empty when no measurement
 * has a target.
 */
export function formatTargetSummary(measurements: readonly Measurement[]): string[] {
  const judged = measurements
    .filter((m) => m.target !== undefined)
    .map((m) => ({ m, met: meetsTarget(m) }));
  if (judged.length === 0) return [];
  const count = (met: boolean | undefined): number => judged.filter((j) => j.met === met).length;
  const unjudged = count(undefined);
  const lines = [
    `targets: ${judged.length}, met ${count(true)}, missed ${count(false)}${unjudged === 0 ? '' : `, not judged ${unjudged}`}`,
  ];
  for (const { m } of judged.filter((j) => j.met === false)) {
    lines.push(
      `  MISS ${m.scenario} ${m.metric} ${formatParams(m.params)} vs ${m.baselineName}: ${formatNumber(m.ratio)}x, target ${m.target ?? ''}${judgedFigures(checkTarget(m)!)}`,
    );
  }
  return lines;
}

/**
 * A Markdown table of measurements with aligned columns. The ratio is always
 * "above 1 means netloop is better" (see {@link Measurement.ratio}).
 */
export function formatTable(measurements: readonly Measurement[]): string {
  const rows = [TABLE_HEADERS.slice() as string[], ...measurements.map(tableRow)];
  const widths = TABLE_HEADERS.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, col) => c.padEnd(widths[col] ?? 0)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n');
}

/** The JSON record of one measurement (see {@link MeasurementRecord}). */
export function toRecord(m: Measurement, context: RunContext): MeasurementRecord {
  const record: MeasurementRecord = {
    ...m,
    spread: { netloop: minMax(m.runs.netloop), baseline: minMax(m.runs.baseline), ratio: ratioRange(m) },
    context,
  };
  const met = meetsTarget(m);
  if (met !== undefined) record.targetMet = met;
  return record;
}

/** One JSON object per line, newline-terminated (JSON Lines). */
export function toJsonLines(measurements: readonly Measurement[], context: RunContext): string {
  return measurements.map((m) => `${JSON.stringify(toRecord(m, context))}\n`).join('');
}

/** Lines naming the scenarios that failed, for the end of the output. */
export function formatFailures(failures: readonly ScenarioFailure[]): string {
  return failures.map((f) => `FAILED ${f.scenario}: ${f.message}`).join('\n');
}
