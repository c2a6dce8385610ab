/**
 * The contract between benchmark scenarios and the suite runner (`bench/run.ts`).
 *
 * A scenario measures netloop and at least one baseline in the same run, repeats
 * each measurement, and reports medians. The runner prints every measurement as a
 * table row, writes them as JSON lines with `--json`, and draws a chart.
 *
 * @module
 */

/** Options the runner passes to every scenario. */
export interface ScenarioOptions {
  /** A short run (the whole suite in quick mode must finish in under 60 s). */
  quick: boolean;
  /** Reports progress of a long run on stderr; cheap to call often. */
  progress(message: string): void;
}

/**
 * One figure of netloop beside one baseline, from repeated runs.
 *
 * `netloop` and `baseline` are medians of `runs.netloop` and `runs.baseline`.
 * `ratio` is `netloop / baseline` when `higherIsBetter`, else `baseline / netloop`,
 * so a ratio above 1 always means netloop is better.
 */
export interface Measurement {
  scenario: string;
  /** The parameters of this point, e.g. `{ connections: 100, bytes: 16384 }`. */
  params: Record<string, string | number | boolean>;
  /** What is measured, e.g. `throughput`, `p99`, `rss_per_conn`. */
  metric: string;
  /** Unit of `netloop` and `baseline`, e.g. `MiB/s`, `us`, `ns/frame`, `B`. */
  unit: string;
  netloop: number;
  baseline: number;
  baselineName: string;
  ratio: number;
  higherIsBetter: boolean;
  runs: { netloop: number[]; baseline: number[] };
  /** An optional target, e.g. `>= 0.95x`, printed beside the ratio. */
  target?: string;
}

/** A benchmark scenario the runner can call. */
export interface Scenario {
  /** Short unique name, used by `--only NAME`. */
  name: string;
  /** One line on what it measures. */
  description: string;
  run(options: ScenarioOptions): Promise<Measurement[]>;
}

/** The median of a non-empty list of numbers. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Builds a {@link Measurement} from repeated runs, computing medians and the
 * ratio so that above 1 means netloop is better.
 */
export function measurement(
  fields: Omit<Measurement, 'netloop' | 'baseline' | 'ratio'>,
): Measurement {
  const netloop = median(fields.runs.netloop);
  const baseline = median(fields.runs.baseline);
  const ratio = fields.higherIsBetter ? netloop / baseline : baseline / netloop;
  return { ...fields, netloop, baseline, ratio };
}
