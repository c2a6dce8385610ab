/**
 * A dependency-free SVG chart of the suite's results, in two parts.
 *
 * First a summary that fits one screen: a row per measurement with a target
 * (and the rows of scenarios that have none), each the ratio of netloop to
 * its baseline on one shared logarithmic axis, with 1x marked, the target
 * marked, the range over the runs as a whisker, and misses in a colour and
 * shape of their own. An absolute target (`<= 200 ns`) is marked where
 * netloop's figure would meet it against this run's baseline.
 *
 * ```
 *                                0.1x        1x         10x
 *   latency    rtt_p99 · …      ├─◆─┤      ┃ ┆                MISS 0.345x (≥ 0.83x)
 *   pipelined  messages · …                  ┆      ┃ ├─●─┤   ok 13.1x (≥ 10x)
 *
 *   ● met  ◆ missed  ┃ the target  ┆ 1x  ├─┤ the range over the runs
 * ```
 *
 * Then one panel per scenario and metric: a group of bars per parameter set,
 * one bar per implementation (netloop first, then each baseline), the range
 * of the runs as a whisker, the value on the bar, the ratios under each
 * group, a y axis in the metric's unit and a legend. Small panels sit two to
 * a row.
 *
 * ```
 *   latency · p99 (us, lower is better)
 *   │        ▆▆
 *   │   ▆▆   ▆▆
 *   └──────────────
 *      connections=1
 *      ■ 0.35x vs node:net · MISS
 * ```
 *
 * Every text is placed by its estimated width (see `svg.ts`), which is at
 * least what a browser draws: labels that do not fit are wrapped, rotated,
 * thinned or shortened (the full text stays in a tooltip), so no two texts
 * overlap; {@link layoutChart} returns the geometry for tests to check.
 *
 * @module
 */

import type { Measurement } from './scenario.js';
import { checkTarget, clauseRatio, convertUnit, formatNumber, formatParams, minMax, ratioRange } from './report.js';
import type { ClauseCheck } from './report.js';
import {
  baselineOffset,
  boxesOverlap,
  ellipsize,
  lineHeight,
  svgDocument,
  text,
  textWidth,
  wrapWords,
} from './svg.js';
import type { Box, Item, TextItem } from './svg.js';

export { escapeXml } from './svg.js';

/** The page's width in SVG user units (one screen: 1,200 px wide windows show it whole). */
const WIDTH = 1180;
const PAGE_MARGIN = 16;
/** Colours of the summary's verdicts, kept out of the series palette. */
export const STATUS_COLORS = { met: '#1b7f3b', missed: '#d0021b', none: '#8a8a8a' } as const;
/** Series colours of the panels: netloop first, then baselines in order of appearance; no red or green, which mean a verdict. */
const PALETTE = ['#1f77b4', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#e377c2', '#bcbd22', '#7f7f7f'];
const INK = '#222';
const MUTED = '#555';
const GRID = '#e6e6e6';

/** A bar drawn for a finite figure is at least this tall, even at or below the axis's minimum. */
export const MIN_BAR_HEIGHT = 3;
/** Above this spread between the largest and smallest bar, a panel uses a logarithmic axis. */
const LOG_SCALE_SPREAD = 30;
/** The height of a panel's plot area. */
const PLOT_HEIGHT = 160;
/** A scenario without any target shows at most this many rows in the summary. */
const UNTARGETED_ROWS_PER_SCENARIO = 8;

/** A summary row's verdict: its target met, missed, or no target (or none that can be judged). */
export type Status = 'met' | 'missed' | 'none';

/** One row of the summary. */
export interface SummaryRow {
  measurement: Measurement;
  status: Status;
  /** The row's label: metric, baseline and the parameters that vary within its scenario's rows. */
  label: string;
  /** Parameters shared by every row of the scenario (printed under its name). */
  shared: string;
  /** The ratio's range over the runs (see {@link ratioRange}). */
  range: [number, number];
  /** Where each target clause lies on the ratio axis (see {@link clauseRatio}). */
  marks: Array<{ ratio: number; text: string }>;
  /** The verdict column: `MISS 0.345x (≥ 0.83x)`, `ok 54.9 ns/frame (≤ 100)`, `no target`. */
  verdict: string;
}

/** Options of {@link renderChart}. */
export interface ChartOptions {
  /** The chart's title. */
  title: string;
  /** Smaller lines under the title (machine facts, command), separated by `\n`. */
  subtitle?: string;
}

/** The chart's geometry: what {@link renderChart} writes, for tests to inspect. */
export interface ChartLayout {
  width: number;
  height: number;
  items: Item[];
  summary: SummaryRow[];
  /** Measurements not in the summary (they have no target and their scenario has some). */
  notInSummary: number;
  /** The y coordinate where the detailed panels start (the summary's height, title included). */
  summaryBottom: number;
  panels: number;
}

/**
 * Tick values for an axis from 0 to at least `max`: 4 to 6 steps of 1, 2 or
 * 5 times a power of ten.
 */
export function niceTicks(max: number): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = 0; t < max + step * 0.999; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/**
 * Ticks for a logarithmic axis: every power of ten from below `min` to above
 * `max`. The lowest tick is a decade below `min` when `min` is within a
 * seventh of a decade of it, so the smallest bar keeps a visible height.
 */
export function logTicks(min: number, max: number): number[] {
  let lo = Math.floor(Math.log10(min));
  if (Math.log10(min) - lo < 0.15) lo -= 1;
  const hi = Math.ceil(Math.log10(max));
  const ticks: number[] = [];
  for (let e = lo; e <= Math.max(hi, lo + 1); e++) ticks.push(Number((10 ** e).toPrecision(12)));
  return ticks;
}

/** An axis tick as text: `50`, `0.5`, `15,000,000`. */
function formatTick(t: number): string {
  return Number(t.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** A figure short enough for a bar: `54.9`, `848k`, `2.35M`. */
export function formatCompact(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e9) return `${formatNumber(x / 1e9)}G`;
  if (a >= 1e6) return `${formatNumber(x / 1e6)}M`;
  if (a >= 1e4) return `${formatNumber(x / 1e3)}k`;
  return formatNumber(x);
}

const OP_SYMBOL: Record<string, string> = { '>=': '≥', '<=': '≤', '>': '>', '<': '<' };

/** A bound as written in a target: `0.95`, `1,024`, `50`. */
function formatBound(x: number): string {
  return Number(x.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** A clause with a comparison sign: `≥ 0.95x`, `≤ 100 ns/frame`. */
function clauseSymbolic(c: ClauseCheck): string {
  const unit = c.clause.kind === 'ratio' ? 'x' : ` ${c.clause.unit}`;
  return `${OP_SYMBOL[c.clause.op]!} ${formatBound(c.clause.bound)}${unit}`;
}

/** A clause's figure and bound, as the summary prints them: `0.345x (≥ 0.83x)`, `227 ns (≤ 200)`. */
function clauseText(c: ClauseCheck): string {
  const op = OP_SYMBOL[c.clause.op]!;
  if (c.clause.kind === 'ratio') return `${formatNumber(c.figure)}x (${op} ${formatBound(c.clause.bound)}x)`;
  const figure = Number.isFinite(c.figure) ? `${formatNumber(c.figure)} ${c.clause.unit}` : '?';
  return `${figure} (${op} ${formatBound(c.clause.bound)})`;
}

/** Keys of `params` with one value across all of `list`, when `list` has more than one parameter set. */
function sharedKeys(list: readonly Measurement[]): Set<string> {
  if (new Set(list.map((m) => formatParams(m.params))).size < 2) return new Set();
  const first = list[0]!;
  return new Set(Object.keys(first.params).filter((k) => list.every((m) => m.params[k] === first.params[k])));
}

function paramsWithout(params: Measurement['params'], keys: ReadonlySet<string>): string {
  return formatParams(Object.fromEntries(Object.entries(params).filter(([k]) => !keys.has(k))));
}

/**
 * The summary's rows: every measurement with a target, and those of each
 * scenario that has no target at all (at most {@link UNTARGETED_ROWS_PER_SCENARIO}),
 * grouped by scenario in order of appearance.
 */
export function summaryRows(measurements: readonly Measurement[]): { rows: SummaryRow[]; left: number } {
  const byScenario = new Map<string, Measurement[]>();
  for (const m of measurements) byScenario.set(m.scenario, [...(byScenario.get(m.scenario) ?? []), m]);
  const rows: SummaryRow[] = [];
  let shown = 0;
  for (const list of byScenario.values()) {
    const targeted = list.filter((m) => m.target !== undefined);
    const chosen = targeted.length > 0 ? targeted : list.slice(0, UNTARGETED_ROWS_PER_SCENARIO);
    shown += chosen.length;
    const keys = sharedKeys(chosen);
    const shared = formatParams(Object.fromEntries(Object.entries(chosen[0]!.params).filter(([k]) => keys.has(k))));
    for (const m of chosen) {
      const check = checkTarget(m);
      const status: Status = check?.met === true ? 'met' : check?.met === false ? 'missed' : 'none';
      const varying = paramsWithout(m.params, keys);
      const verdict =
        check === undefined
          ? 'no target'
          : check.checks.length === 0 || check.met === undefined
            ? `not judged: ${m.target ?? ''}`
            : `${check.met ? 'ok' : 'MISS'} ${check.checks.map(clauseText).join(', ')}`;
      const marks = (check?.checks ?? []).flatMap((c) => {
        const ratio = clauseRatio(m, c.clause);
        return ratio === undefined ? [] : [{ ratio, text: `target ${c.clause.text}` }];
      });
      rows.push({
        measurement: m,
        status,
        // What tells the rows apart comes first, so that an ellipsis takes the baseline's name rather than them.
        label: varying === '' ? `${m.metric} vs ${m.baselineName}` : `${m.metric} · ${varying} · vs ${m.baselineName}`,
        shared,
        range: ratioRange(m),
        marks,
        verdict,
      });
    }
  }
  return { rows, left: measurements.length - shown };
}

/** A log scale over [lo, hi] (powers of ten) onto [a, b], clamping values outside (and non-positive ones) to the ends. */
function logScale(lo: number, hi: number, a: number, b: number): (v: number) => number {
  const l0 = Math.log10(lo);
  const span = Math.log10(hi) - l0;
  return (v) => {
    if (!(v > 0)) return a;
    const t = Math.min(1, Math.max(0, (Math.log10(v) - l0) / span));
    return a + t * (b - a);
  };
}

/**
 * Which of a row (or column) of tick labels, given by their boxes in order,
 * can be shown without overlapping (`gap` apart): every `stride`-th one,
 * starting at `phase`, so that the label at `anchorIndex` (1x) is among them.
 */
function thin(boxes: readonly Box[], anchorIndex = 0, gap = 4): { stride: number; phase: number } {
  for (let stride = 1; stride <= Math.max(1, boxes.length); stride++) {
    const phase = ((anchorIndex % stride) + stride) % stride;
    const shown = boxes.filter((_, i) => i % stride === phase);
    const clear = shown.every((b, i) => {
      const next = shown[i + 1];
      return next === undefined || !boxesOverlap({ ...b, x: b.x - gap / 2, y: b.y - gap / 2, w: b.w + gap, h: b.h + gap }, next);
    });
    if (clear) return { stride, phase };
  }
  return { stride: Math.max(1, boxes.length), phase: 0 };
}

/** Places a row of legend entries (a swatch or a sample, then a name), wrapping to more lines when they exceed `width`. */
function legend(
  items: Item[],
  x: number,
  y: number,
  width: number,
  entries: ReadonlyArray<{ label: string; draw: (x: number, midY: number) => Item[] }>,
  size = 11,
): number {
  const lh = lineHeight(size);
  let lx = x;
  let top = y;
  for (const entry of entries) {
    const label = ellipsize(entry.label, width - 22, size) ?? '';
    const w = 18 + textWidth(label, size) + 14;
    if (lx > x && lx + w > x + width) {
      lx = x;
      top += lh + 2;
    }
    items.push(...entry.draw(lx, top + lh / 2));
    items.push(text(lx + 18, top + baselineOffset(size), label, size, { fill: MUTED, role: 'legend', ...(label === entry.label ? {} : { title: entry.label }) }));
    lx += w;
  }
  return top + lh - y;
}

// ── The summary ─────────────────────────────────────────────────────────────

/** Summary geometry: columns (x) and row height. */
const SUMMARY = {
  rowHeight: 20,
  scenarioX: PAGE_MARGIN,
  scenarioWidth: 104,
  labelX: PAGE_MARGIN + 112,
  labelWidth: 420,
  plotX: PAGE_MARGIN + 112 + 420 + 16,
  plotWidth: 290,
  verdictX: PAGE_MARGIN + 112 + 420 + 16 + 290 + 16,
  size: 11,
};

function layoutSummary(items: Item[], rows: readonly SummaryRow[], left: number, top: number): number {
  const S = SUMMARY;
  const verdictWidth = WIDTH - PAGE_MARGIN - S.verdictX;
  let y = top;
  items.push(
    text(PAGE_MARGIN, y + baselineOffset(15), 'At a glance: netloop against each baseline measured in the same run', 15, {
      bold: true,
      role: 'heading',
    }),
  );
  y += lineHeight(15) + 2;
  const judged = rows.filter((r) => r.measurement.target !== undefined);
  const count = (s: Status): number => judged.filter((r) => r.status === s).length;
  const unjudged = judged.filter((r) => r.status === 'none').length;
  const counts =
    judged.length === 0
      ? 'No measurement has a target.'
      : `${judged.length} targets: ${count('met')} met, ${count('missed')} missed${unjudged === 0 ? '' : `, ${unjudged} not judged`}.`;
  const more = left === 0 ? '' : ` ${left} further measurements without a target are in the panels below.`;
  const line = `${counts}${more} Ratio on a log scale; right of 1x means netloop is better.`;
  for (const l of wrapWords(line, WIDTH - 2 * PAGE_MARGIN, 11, 3) ?? [ellipsize(line, WIDTH - 2 * PAGE_MARGIN, 11) ?? '']) {
    items.push(text(PAGE_MARGIN, y + baselineOffset(11), l, 11, { fill: MUTED, role: 'note' }));
    y += lineHeight(11);
  }
  y += 2;
  y +=
    legend(items, PAGE_MARGIN, y, WIDTH - 2 * PAGE_MARGIN, [
      { label: 'target met', draw: (x, m) => [{ kind: 'marker', shape: 'circle', x: x + 7, y: m, r: 4.5, fill: STATUS_COLORS.met }] },
      { label: 'target missed', draw: (x, m) => [{ kind: 'marker', shape: 'diamond', x: x + 7, y: m, r: 4.5, fill: STATUS_COLORS.missed }] },
      { label: 'no target', draw: (x, m) => [{ kind: 'marker', shape: 'circle', x: x + 7, y: m, r: 4.5, fill: STATUS_COLORS.none }] },
      { label: '1x: equal', draw: (x, m) => [{ kind: 'line', x1: x + 7, x2: x + 7, y1: m - 7, y2: m + 7, stroke: '#555', width: 1.5, dash: '4 3' }] },
      { label: 'the target', draw: (x, m) => [{ kind: 'line', x1: x + 7, x2: x + 7, y1: m - 7, y2: m + 7, stroke: INK, width: 2.5 }] },
      {
        label: 'range over the runs',
        draw: (x, m) => [
          { kind: 'line', x1: x, x2: x + 14, y1: m, y2: m, stroke: STATUS_COLORS.none, width: 2 },
          { kind: 'line', x1: x, x2: x, y1: m - 3, y2: m + 3, stroke: STATUS_COLORS.none, width: 1.5 },
          { kind: 'line', x1: x + 14, x2: x + 14, y1: m - 3, y2: m + 3, stroke: STATUS_COLORS.none, width: 1.5 },
        ],
      },
      {
        label: 'an absolute target (ns, ms, B) is marked where netloop would meet it against this baseline',
        draw: () => [],
      },
    ]) + 6;

  if (rows.length === 0) return y - top;

  // The shared axis: every decade that holds a ratio, a run's ratio, a target or 1x.
  const values = [1, ...rows.flatMap((r) => [r.measurement.ratio, ...r.range, ...r.marks.map((k) => k.ratio)])].filter(
    (v) => Number.isFinite(v) && v > 0,
  );
  const [vmin, vmax] = minMax(values);
  const lo = 10 ** Math.floor(Math.log10(vmin) - 1e-9);
  const hi = 10 ** Math.max(Math.ceil(Math.log10(vmax) + 1e-9), Math.log10(lo) + 1);
  const decades: number[] = [];
  for (let e = Math.round(Math.log10(lo)); e <= Math.round(Math.log10(hi)); e++) decades.push(Number((10 ** e).toPrecision(12)));
  const x = logScale(lo, hi, S.plotX, S.plotX + S.plotWidth);

  const axisLabels = (baseline: number): void => {
    const labels = decades.map((d) =>
      text(x(d), baseline, `${formatTick(d)}x`, 10, { anchor: 'middle', fill: d === 1 ? INK : MUTED, bold: d === 1, role: 'axis' }),
    );
    const { stride, phase } = thin(
      labels.map((l) => l.box),
      decades.indexOf(1),
    );
    labels.forEach((l, i) => {
      if (i % stride === phase) items.push(l);
    });
  };
  axisLabels(y + baselineOffset(10));
  y += lineHeight(10) + 2;
  const rowsTop = y;
  const rowsBottom = rowsTop + rows.length * S.rowHeight;

  // Bands, grid and the 1x line under the rows.
  rows.forEach((_, i) => {
    if (i % 2 === 1) {
      items.push({ kind: 'rect', x: PAGE_MARGIN, y: rowsTop + i * S.rowHeight, w: WIDTH - 2 * PAGE_MARGIN, h: S.rowHeight, fill: '#f4f4f4' });
    }
  });
  for (const d of decades) {
    for (const m of d === decades[decades.length - 1] ? [1] : [1, 2, 5]) {
      const v = d * m;
      items.push({ kind: 'line', x1: x(v), x2: x(v), y1: rowsTop, y2: rowsBottom, stroke: m === 1 ? '#d0d0d0' : GRID });
    }
  }
  // 1x: dashed, so that a solid target mark beside it stays distinct.
  items.push({ kind: 'line', x1: x(1), x2: x(1), y1: rowsTop - 2, y2: rowsBottom + 2, stroke: '#555', width: 1.5, dash: '4 3', role: 'one', title: '1x: netloop equal to the baseline' });

  let previousScenario = '';
  const groupEnds: number[] = [];
  rows.forEach((row, i) => {
    const top = rowsTop + i * S.rowHeight;
    const mid = top + S.rowHeight / 2;
    const base = mid + 0.35 * S.size;
    const m = row.measurement;
    if (m.scenario !== previousScenario) {
      if (i > 0) groupEnds.push(i);
      previousScenario = m.scenario;
      items.push({ kind: 'line', x1: PAGE_MARGIN, x2: WIDTH - PAGE_MARGIN, y1: top, y2: top, stroke: '#bbbbbb', role: 'separator' });
    }
    const color = STATUS_COLORS[row.status];
    const full = `${m.scenario} · ${row.label}${row.shared === '' ? '' : ` · ${row.shared}`}`;
    const label = ellipsize(row.label, S.labelWidth, S.size) ?? '';
    items.push(text(S.labelX, base, label, S.size, { fill: INK, title: full, role: 'summary-label' }));
    const verdict = ellipsize(row.verdict, verdictWidth, S.size, row.status === 'missed') ?? '';
    items.push(
      text(S.verdictX, base, verdict, S.size, {
        fill: row.status === 'none' ? MUTED : color,
        bold: row.status === 'missed',
        role: 'summary-verdict',
        ...(verdict === row.verdict ? {} : { title: row.verdict }),
      }),
    );
    // The whisker, the targets, then the ratio on top.
    const [r0, r1] = row.range;
    if (Number.isFinite(r0) && Number.isFinite(r1) && x(r1) - x(r0) >= 1) {
      items.push(
        { kind: 'line', x1: x(r0), x2: x(r1), y1: mid, y2: mid, stroke: color, width: 2, role: 'whisker', title: `range over the runs: ${formatNumber(r0)}x – ${formatNumber(r1)}x` },
        { kind: 'line', x1: x(r0), x2: x(r0), y1: mid - 3.5, y2: mid + 3.5, stroke: color, width: 1.5 },
        { kind: 'line', x1: x(r1), x2: x(r1), y1: mid - 3.5, y2: mid + 3.5, stroke: color, width: 1.5 },
      );
    }
    for (const mark of row.marks) {
      items.push({ kind: 'line', x1: x(mark.ratio), x2: x(mark.ratio), y1: mid - 7, y2: mid + 7, stroke: INK, width: 2.5, role: 'target', title: `${mark.text} (at ${formatNumber(mark.ratio)}x)` });
    }
    items.push({
      kind: 'marker',
      shape: row.status === 'missed' ? 'diamond' : 'circle',
      x: x(m.ratio),
      y: mid,
      r: 4.5,
      fill: color,
      stroke: '#ffffff',
      role: `summary-${row.status}`,
      title: `${full}: ${formatNumber(m.ratio)}x${m.target === undefined ? '' : `; target ${m.target}`}`,
    });
  });
  groupEnds.push(rows.length);

  // Scenario names (and their shared parameters) in the first column, as many lines as the group has rows.
  let start = 0;
  for (const end of groupEnds) {
    const row = rows[start]!;
    const top = rowsTop + start * S.rowHeight;
    const lines: Array<{ t: string; bold: boolean }> = [{ t: row.measurement.scenario, bold: true }];
    const room = end - start;
    if (row.shared !== '' && room > 1) {
      const wrapped = wrapWords(row.shared, S.scenarioWidth, 10, room - 1) ?? [];
      for (const w of wrapped) lines.push({ t: w, bold: false });
    }
    lines.forEach((l, k) => {
      const size = l.bold ? S.size : 10;
      const t = ellipsize(l.t, S.scenarioWidth, size, l.bold) ?? '';
      items.push(
        text(S.scenarioX, top + k * S.rowHeight + S.rowHeight / 2 + 0.35 * S.size, t, size, {
          bold: l.bold,
          fill: l.bold ? INK : MUTED,
          role: 'summary-scenario',
          ...(t === l.t ? {} : { title: l.t }),
        }),
      );
    });
    start = end;
  }
  items.push({ kind: 'line', x1: PAGE_MARGIN, x2: WIDTH - PAGE_MARGIN, y1: rowsBottom, y2: rowsBottom, stroke: '#bbbbbb' });
  y = rowsBottom + 2;
  axisLabels(y + baselineOffset(10));
  y += lineHeight(10);
  return y - top;
}

// ── The detailed panels ─────────────────────────────────────────────────────

/** One bar of a group: an implementation's median and the range of its runs. */
interface Bar {
  series: string;
  value: number;
  min: number;
  max: number;
}

/** One ratio printed under a group. */
interface GroupRatio {
  m: Measurement;
}

/** One group of bars: one parameter set of one panel. */
interface Group {
  label: string;
  bars: Bar[];
  ratios: GroupRatio[];
}

/** One panel: one scenario and metric. */
interface Panel {
  title: string;
  unit: string;
  groups: Group[];
  series: string[];
}

/** Groups measurements into panels (scenario × metric) of groups (params) of bars (implementations). */
function panelsOf(measurements: readonly Measurement[]): Panel[] {
  const byPanel = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.scenario}\u0000${m.metric}`;
    byPanel.set(key, [...(byPanel.get(key) ?? []), m]);
  }
  const panels: Panel[] = [];
  for (const list of byPanel.values()) {
    const first = list[0]!;
    const keys = sharedKeys(list);
    const constants = [...keys].map((k) => `${k}=${String(first.params[k])}`).join(' ');
    const panel: Panel = {
      title: `${first.scenario} · ${first.metric} (${first.unit}, ${first.higherIsBetter ? 'higher' : 'lower'} is better)${
        constants === '' ? '' : ` · ${constants}`
      }`,
      unit: first.unit,
      groups: [],
      series: ['netloop'],
    };
    for (const m of list) {
      const label = paramsWithout(m.params, keys) || formatParams(m.params) || '(default)';
      let group = panel.groups.find((g) => g.label === label);
      if (group === undefined) {
        const [min, max] = minMax(m.runs.netloop);
        group = { label, bars: [{ series: 'netloop', value: m.netloop, min, max }], ratios: [] };
        panel.groups.push(group);
      }
      if (!group.bars.some((b) => b.series === m.baselineName)) {
        const [min, max] = minMax(m.runs.baseline);
        group.bars.push({ series: m.baselineName, value: m.baseline, min, max });
      }
      group.ratios.push({ m });
      if (!panel.series.includes(m.baselineName)) panel.series.push(m.baselineName);
    }
    panels.push(panel);
  }
  return panels;
}

/** Whether a panel is small enough to share a row with another. */
function isNarrow(panel: Panel): boolean {
  return panel.groups.length <= 2 && panel.groups.reduce((n, g) => n + g.bars.length, 0) <= 4;
}

/** Absolute target lines of a group: the bound in the panel's unit, and whether it was met. */
function targetLines(group: Group, unit: string): Array<{ value: number; met: boolean | undefined; text: string }> {
  return group.ratios.flatMap(({ m }) =>
    (checkTarget(m)?.checks ?? []).flatMap((c) => {
      if (c.clause.kind !== 'absolute') return [];
      const value = convertUnit(c.clause.bound, c.clause.unit, unit);
      return value === undefined ? [] : [{ value, met: c.met, text: `target: netloop ${c.clause.text}` }];
    }),
  );
}

/** Candidates for a ratio line under a group, longest first: the first that fits is printed. */
function ratioCandidates(m: Measurement): string[] {
  const ratio = `${formatNumber(m.ratio)}x`;
  const check = checkTarget(m);
  if (check === undefined || check.met === undefined) return [`${ratio} vs ${m.baselineName}`, ratio];
  const word = check.met ? 'ok' : 'MISS';
  const target = `${word} (${check.checks.map(clauseSymbolic).join(', ')})`;
  return [
    `${ratio} vs ${m.baselineName} · ${target}`,
    `${ratio} vs ${m.baselineName} · ${word}`,
    `${ratio} · ${target}`,
    `${ratio} · ${word}`,
    ratio,
  ];
}

function layoutPanel(items: Item[], panel: Panel, px: number, top: number, width: number): number {
  const out: Item[] = [];
  let y = top;
  // Title, wrapped.
  const titleSize = 13;
  const titleLines = wrapWords(panel.title, width, titleSize, 3, true) ?? [ellipsize(panel.title, width, titleSize, true) ?? ''];
  for (const line of titleLines) {
    out.push(text(px, y + baselineOffset(titleSize), line, titleSize, { bold: true, role: 'panel-title', ...(titleLines.length === 1 && line !== panel.title ? { title: panel.title } : {}) }));
    y += lineHeight(titleSize);
  }
  y += 18;
  const yTop = y;
  const yBottom = yTop + PLOT_HEIGHT;

  // The y axis: linear, or logarithmic when bars differ by orders of magnitude
  // (a naive server beside a tuned one would vanish on a linear axis).
  const values = panel.groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.min, b.max]).filter((v) => Number.isFinite(v) && v > 0));
  const maxValue = Math.max(0, ...values);
  const minValue = values.length === 0 ? 0 : Math.min(...values);
  const targets = panel.groups.map((g) => targetLines(g, panel.unit));
  const targetValues = targets.flat().map((t) => t.value).filter((v) => v > 0);
  const log = values.length > 0 && maxValue / minValue > LOG_SCALE_SPREAD;
  const ticks = log
    ? logTicks(Math.min(minValue, ...targetValues), Math.max(maxValue, ...targetValues))
    : niceTicks(Math.max(maxValue, ...targetValues));
  const axisMin = log ? ticks[0]! : 0;
  const axisMax = ticks[ticks.length - 1] ?? 1;
  const yOf = (v: number): number => {
    if (!Number.isFinite(v) || v <= axisMin) return yBottom;
    const t = log ? (Math.log10(v) - Math.log10(axisMin)) / (Math.log10(axisMax) - Math.log10(axisMin)) : v / axisMax;
    return yBottom - Math.min(1, t) * (yBottom - yTop);
  };
  const tickLabels = ticks.map((t) => formatTick(t));
  const tickWidth = Math.max(...tickLabels.map((l) => textWidth(l, 10)));
  const unitSize = 11;
  const x0 = px + lineHeight(unitSize) + 4 + tickWidth + 6;
  const x1 = px + width;
  const tickItems = ticks.map((t, i) => text(x0 - 6, yOf(t) + 0.35 * 10, tickLabels[i]!, 10, { anchor: 'end', fill: '#333', role: 'tick' }));
  const { stride, phase } = thin(
    tickItems.map((t) => t.box),
    0,
    1,
  );
  ticks.forEach((t, i) => {
    out.push({ kind: 'line', x1: x0, x2: x1, y1: yOf(t), y2: yOf(t), stroke: GRID });
    if (i % stride === phase) out.push(tickItems[i]!);
  });
  out.push({ kind: 'line', x1: x0, x2: x0, y1: yTop, y2: yBottom, stroke: '#333' });
  out.push({ kind: 'line', x1: x0, x2: x1, y1: yBottom, y2: yBottom, stroke: '#333' });
  const unitLabel = ellipsize(log ? `${panel.unit} (log scale)` : panel.unit, PLOT_HEIGHT, unitSize) ?? '';
  out.push(text(px + baselineOffset(unitSize), (yTop + yBottom) / 2, unitLabel, unitSize, { anchor: 'middle', rotate: true, fill: '#333', role: 'unit' }));

  // Bars, whiskers and values.
  const groupWidth = (x1 - x0) / Math.max(1, panel.groups.length);
  const slot = Math.min(56, (groupWidth * 0.8) / Math.max(1, panel.series.length));
  const valueSize = 10;
  panel.groups.forEach((group, gi) => {
    const gx = x0 + gi * groupWidth;
    const start = gx + (groupWidth - slot * group.bars.length) / 2;
    group.bars.forEach((bar, bi) => {
      const color = PALETTE[panel.series.indexOf(bar.series) % PALETTE.length]!;
      const bx = start + bi * slot;
      const bw = slot - 4;
      // A bar at or below the axis's minimum (a zero, or the smallest value on
      // a log axis) still gets a visible height, so it reads as a figure, not a gap.
      const height = Math.max(MIN_BAR_HEIGHT, yBottom - yOf(bar.value));
      const by = yBottom - height;
      out.push({ kind: 'rect', x: bx, y: by, w: bw, h: height, fill: color, role: 'bar', title: `${bar.series}: ${formatNumber(bar.value)} ${panel.unit}` });
      const cx = bx + bw / 2;
      let labelTop = by;
      if (Number.isFinite(bar.min) && Number.isFinite(bar.max) && bar.max > bar.min) {
        const wy0 = yOf(bar.min);
        const wy1 = yOf(bar.max);
        out.push({ kind: 'line', x1: cx, x2: cx, y1: wy0, y2: wy1, stroke: '#000', width: 1.5, role: 'whisker' });
        labelTop = Math.min(labelTop, wy1);
      }
      // The value: above the bar if it fits the slot, else rotated above or inside it, else only in the tooltip.
      const value = formatCompact(bar.value);
      const w = textWidth(value, valueSize);
      if (w <= slot) {
        out.push(text(cx, labelTop - 4, value, valueSize, { anchor: 'middle', role: 'value' }));
      } else if (lineHeight(valueSize) <= slot) {
        if (labelTop - 4 - w >= yTop - 12) {
          out.push(text(cx + 0.35 * valueSize, labelTop - 4, value, valueSize, { rotate: true, role: 'value' }));
        } else if (height >= w + 8) {
          out.push(text(cx + 0.35 * valueSize, yBottom - 4, value, valueSize, { rotate: true, fill: '#ffffff', role: 'value' }));
        }
      }
    });
    for (const t of targets[gi]!) {
      const ty = yOf(t.value);
      out.push({
        kind: 'line',
        x1: gx + 4,
        x2: gx + groupWidth - 4,
        y1: ty,
        y2: ty,
        stroke: t.met === false ? STATUS_COLORS.missed : t.met === true ? STATUS_COLORS.met : STATUS_COLORS.none,
        width: 1.5,
        dash: '6 3',
        role: 'target',
        title: t.text,
      });
    }
  });

  // Group labels under the axis: one line, else wrapped at spaces, else rotated
  // (every one in the panel alike); rotated labels are thinned when the groups
  // are narrower than a line.
  const labelSize = 11;
  const lh = lineHeight(labelSize);
  const avail = groupWidth - 6;
  let under = yBottom + 4;
  const wrapped = panel.groups.map((g) => wrapWords(g.label, avail, labelSize, 3));
  if (wrapped.every((w) => w !== undefined)) {
    const lines = wrapped as string[][];
    lines.forEach((ls, gi) => {
      const cx = x0 + (gi + 0.5) * groupWidth;
      ls.forEach((l, k) => out.push(text(cx, under + k * lh + baselineOffset(labelSize), l, labelSize, { anchor: 'middle', fill: '#333', role: 'group-label' })));
    });
    under += Math.max(...lines.map((l) => l.length)) * lh;
  } else {
    // Turned labels read bottom to top, hanging from the axis; a long one takes
    // as many columns as the group has room for, else is shortened.
    const maxLength = 160;
    const columns = Math.max(1, Math.floor((groupWidth - 2) / lh));
    const every = Math.max(1, Math.ceil(lh / Math.max(1, groupWidth)));
    let longest = 0;
    panel.groups.forEach((group, gi) => {
      if (gi % every !== 0) return;
      const lines = wrapWords(group.label, maxLength, labelSize, columns) ?? [ellipsize(group.label, maxLength, labelSize) ?? ''];
      const cx = x0 + (gi + 0.5) * groupWidth;
      const shortened = lines.length === 1 && lines[0] !== group.label;
      lines.forEach((l, k) => {
        const lx = cx + 0.35 * labelSize + (k - (lines.length - 1) / 2) * lh;
        const item = text(lx, under + 2, l, labelSize, { anchor: 'end', rotate: true, fill: '#333', role: 'group-label', ...(shortened ? { title: group.label } : {}) });
        out.push(item);
        longest = Math.max(longest, item.box.h);
      });
    });
    under += longest + 4;
  }

  // Ratio lines: each line in its group's slot, the longest form that fits.
  const ratioSize = 10;
  const rlh = lineHeight(ratioSize);
  const ratioLines = Math.max(0, ...panel.groups.map((g) => g.ratios.length));
  if (ratioLines > 0) under += 2;
  panel.groups.forEach((group, gi) => {
    const cx = x0 + (gi + 0.5) * groupWidth;
    group.ratios.forEach(({ m }, k) => {
      const swatch = 10;
      const fit = ratioCandidates(m).find((c) => textWidth(c, ratioSize) + swatch <= groupWidth - 6);
      if (fit === undefined) return;
      const met = checkTarget(m)?.met;
      const total = textWidth(fit, ratioSize) + swatch;
      const lx = cx - total / 2;
      const ty = under + k * rlh;
      const color = PALETTE[panel.series.indexOf(m.baselineName) % PALETTE.length]!;
      out.push({ kind: 'rect', x: lx, y: ty + (rlh - 7) / 2, w: 7, h: 7, fill: color });
      out.push(
        text(lx + swatch, ty + baselineOffset(ratioSize), fit, ratioSize, {
          fill: met === false ? STATUS_COLORS.missed : met === true ? STATUS_COLORS.met : MUTED,
          bold: met === false,
          role: 'ratio',
          title: `netloop vs ${m.baselineName}: ${formatNumber(m.ratio)}x${m.target === undefined ? '' : `; target ${m.target}`}`,
        }),
      );
    });
  });
  under += ratioLines * rlh + 6;

  // Legend.
  const hasTargets = targets.some((t) => t.length > 0);
  under += legend(out, x0, under, x1 - x0, [
    ...panel.series.map((series, si) => ({
      label: series,
      draw: (x: number, mid: number): Item[] => [{ kind: 'rect', x, y: mid - 5, w: 10, h: 10, fill: PALETTE[si % PALETTE.length]! }],
    })),
    ...(hasTargets
      ? [{ label: 'absolute target', draw: (x: number, mid: number): Item[] => [{ kind: 'line', x1: x, x2: x + 14, y1: mid, y2: mid, stroke: STATUS_COLORS.none, width: 1.5, dash: '6 3' }] }]
      : []),
  ]);
  items.push(...out);
  return under + 18 - top;
}

/**
 * Lays the chart out: title, the summary, then the panels. The geometry is
 * returned whole so that tests can check it without a browser.
 */
export function layoutChart(measurements: readonly Measurement[], options: ChartOptions): ChartLayout {
  const items: Item[] = [];
  let y = 10;
  const pageWidth = WIDTH - 2 * PAGE_MARGIN;
  const titleLines = wrapWords(options.title, pageWidth, 18, 2, true) ?? [ellipsize(options.title, pageWidth, 18, true) ?? ''];
  for (const line of titleLines) {
    items.push(text(WIDTH / 2, y + baselineOffset(18), line, 18, { anchor: 'middle', bold: true, role: 'title' }));
    y += lineHeight(18);
  }
  for (const line of options.subtitle === undefined ? [] : options.subtitle.split('\n')) {
    const shown = ellipsize(line, pageWidth, 11) ?? '';
    items.push(text(WIDTH / 2, y + baselineOffset(11), shown, 11, { anchor: 'middle', fill: MUTED, role: 'subtitle', ...(shown === line ? {} : { title: line }) }));
    y += lineHeight(11);
  }
  y += 12;
  if (measurements.length === 0) {
    items.push(text(WIDTH / 2, y + 20, 'no measurements', 14, { anchor: 'middle', fill: '#a00', role: 'note' }));
    return { width: WIDTH, height: y + 60, items, summary: [], notInSummary: 0, summaryBottom: y + 60, panels: 0 };
  }
  const { rows, left } = summaryRows(measurements);
  y += layoutSummary(items, rows, left, y) + 24;
  const summaryBottom = y;

  items.push({ kind: 'line', x1: PAGE_MARGIN, x2: WIDTH - PAGE_MARGIN, y1: y - 12, y2: y - 12, stroke: '#999' });
  items.push(text(PAGE_MARGIN, y + baselineOffset(15), 'Details: every measurement, one panel per scenario and metric', 15, { bold: true, role: 'heading' }));
  y += lineHeight(15) + 10;
  const panels = panelsOf(measurements);
  const gutter = 32;
  const half = (pageWidth - gutter) / 2;
  for (let i = 0; i < panels.length; i++) {
    const panel = panels[i]!;
    const next = panels[i + 1];
    if (isNarrow(panel) && next !== undefined && isNarrow(next)) {
      const h1 = layoutPanel(items, panel, PAGE_MARGIN, y, half);
      const h2 = layoutPanel(items, next, PAGE_MARGIN + half + gutter, y, half);
      y += Math.max(h1, h2);
      i++;
    } else {
      y += layoutPanel(items, panel, PAGE_MARGIN, y, pageWidth);
    }
  }
  return { width: WIDTH, height: y + 8, items, summary: rows, notInSummary: left, summaryBottom, panels: panels.length };
}

/**
 * Renders measurements as one standalone SVG document (a string): no script,
 * no external font or image. An empty list gives a small chart that says so,
 * never an invalid document.
 */
export function renderChart(measurements: readonly Measurement[], options: ChartOptions): string {
  const layout = layoutChart(measurements, options);
  return svgDocument(layout.width, layout.height, layout.items);
}

/** Every pair of texts in a layout whose boxes overlap (none in a good layout). */
export function overlappingTexts(items: readonly Item[]): Array<[TextItem, TextItem]> {
  const texts = items.filter((i): i is TextItem => i.kind === 'text').sort((a, b) => a.box.y - b.box.y);
  const pairs: Array<[TextItem, TextItem]> = [];
  for (let i = 0; i < texts.length; i++) {
    const a = texts[i]!;
    for (let j = i + 1; j < texts.length && texts[j]!.box.y < a.box.y + a.box.h; j++) {
      if (boxesOverlap(a.box, texts[j]!.box)) pairs.push([a, texts[j]!]);
    }
  }
  return pairs;
}
