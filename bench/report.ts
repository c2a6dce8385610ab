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
  /** Smallest and largest of each side's runs. */
  spread: { netloop: [number, number]; baseline: [number, number] };
  /** Whether the ratio meets `target`; absent when there is no target. */
  targetMet?: boolean;
  context: RunContext;
}

/**
 * Whether a measurement meets its target. Targets are written against the
 * ratio (above 1 means netloop is better): `>= 0.95x`, `>= 10x`, `<= 1.2x`.
 * Returns `undefined` when there is no target or it cannot be read.
 */
export function meetsTarget(m: Pick<Measurement, 'ratio' | 'target'>): boolean | undefined {
  if (m.target === undefined) return undefined;
  const match = /^\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)\s*x/.exec(m.target);
  if (match === null || !Number.isFinite(m.ratio)) return undefined;
  const bound = Number(match[2]);
  switch (match[1]) {
    case '>=':
      return m.ratio >= bound;
    case '>':
      return m.ratio > bound;
    case '<=':
      return m.ratio <= bound;
    default:
      return m.ratio < bound;
  }
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

/** One table row (cells as text) for a measurement. */
export function tableRow(m: Measurement): string[] {
  const verdict = meetsTarget(m);
  const target = m.target === undefined ? '' : `${m.target} ${verdict === undefined ? '' : verdict ? 'ok' : 'MISS'}`.trim();
  return [
    m.scenario,
    formatParams(m.params),
    `${m.metric} (${m.unit}${m.higherIsBetter ? ', higher is better' : ', lower is better'})`,
    formatWithSpread(m.netloop, m.runs.netloop),
    `${m.baselineName}: ${formatWithSpread(m.baseline, m.runs.baseline)}`,
    `${formatNumber(m.ratio)}x`,
    target,
    String(Math.min(m.runs.netloop.length, m.runs.baseline.length)),
  ];
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
    spread: { netloop: minMax(m.runs.netloop), baseline: minMax(m.runs.baseline) },
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
