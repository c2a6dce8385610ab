/**
 * A dependency-free SVG writer for the suite's results: one panel per
 * scenario and metric, a group of bars per parameter set, one bar per
 * implementation (netloop first, then each baseline), with the range of the
 * repeated runs drawn as a whisker, the value printed on the bar, the ratio
 * printed above each group, a y axis in the metric's unit, and a legend.
 *
 * ```
 *   latency · p99 (us, lower is better)
 *   │        ▆▆                    ▆▆
 *   │   ▆▆   ▆▆              ▆▆    ▆▆
 *   │   ▆▆   ▆▆              ▆▆    ▆▆
 *   └───────────────────────────────────
 *      connections=1        connections=100      ■ netloop ■ node:net
 * ```
 *
 * @module
 */

import type { Measurement } from './scenario.js';
import { formatNumber, formatParams, minMax } from './report.js';

/** Layout constants, in SVG user units. */
const WIDTH = 960;
const PANEL_HEIGHT = 280;
const MARGIN = { top: 48, right: 24, bottom: 64, left: 100 };
const TITLE_HEIGHT = 56;
/** netloop first, then baselines in order of appearance. */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

/** One bar of a group: an implementation's median and the range of its runs. */
interface Bar {
  series: string;
  value: number;
  min: number;
  max: number;
}

/** One group of bars: one parameter set of one panel. */
interface Group {
  label: string;
  bars: Bar[];
  /** `netloop vs baseline: ratio` lines printed above the group. */
  ratios: string[];
}

/** One panel: one scenario and metric. */
interface Panel {
  title: string;
  unit: string;
  groups: Group[];
  series: string[];
}

/** Ratio lines under a group are at most this many; the panel grows to fit them. */
const RATIO_LINE_HEIGHT = 13;
/** Above this spread between the largest and smallest bar, a panel uses a logarithmic axis. */
const LOG_SCALE_SPREAD = 30;

/** Escapes text for SVG content and attributes. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
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

/** Groups measurements into panels (scenario × metric) of groups (params) of bars (implementations). */
function panelsOf(measurements: readonly Measurement[]): Panel[] {
  const panels = new Map<string, Panel>();
  const constants = constantParams(measurements);
  for (const m of measurements) {
    const key = `${m.scenario}\u0000${m.metric}`;
    let panel = panels.get(key);
    if (panel === undefined) {
      panel = {
        title: `${m.scenario} · ${m.metric} (${m.unit}, ${m.higherIsBetter ? 'higher' : 'lower'} is better)${
          constants.get(`${m.scenario}\u0000${m.metric}`)?.label ?? ''
        }`,
        unit: m.unit,
        groups: [],
        series: ['netloop'],
      };
      panels.set(key, panel);
    }
    const varying = Object.fromEntries(
      Object.entries(m.params).filter(([k]) => !(constants.get(key)?.keys.has(k) ?? false)),
    );
    const label = formatParams(varying) || formatParams(m.params) || '(default)';
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
    group.ratios.push(`${formatNumber(m.ratio)}x vs ${m.baselineName}`);
    if (!panel.series.includes(m.baselineName)) panel.series.push(m.baselineName);
  }
  return [...panels.values()];
}

/**
 * For each panel (scenario × metric), the parameters that have one value
 * across all its measurements: they go into the title, not under every group.
 */
function constantParams(measurements: readonly Measurement[]): Map<string, { keys: Set<string>; label: string }> {
  const byPanel = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.scenario}\u0000${m.metric}`;
    byPanel.set(key, [...(byPanel.get(key) ?? []), m]);
  }
  const out = new Map<string, { keys: Set<string>; label: string }>();
  for (const [key, list] of byPanel) {
    const first = list[0]!;
    const groups = new Set(list.map((m) => formatParams(m.params)));
    const keys = new Set(
      groups.size < 2
        ? []
        : Object.keys(first.params).filter((k) => list.every((m) => m.params[k] === first.params[k])),
    );
    const label = keys.size === 0 ? '' : ` · ${[...keys].map((k) => `${k}=${String(first.params[k])}`).join(' ')}`;
    out.set(key, { keys, label });
  }
  return out;
}

/** An axis tick as text: `50`, `0.5`, `15,000,000`. */
function formatTick(t: number): string {
  return Number(t.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** Options of {@link renderChart}. */
export interface ChartOptions {
  /** The chart's title. */
  title: string;
  /** Smaller lines under the title (machine facts, command), separated by `\n`. */
  subtitle?: string;
}

/**
 * Renders measurements as one SVG document (a string). An empty list gives a
 * small chart that says so, never an invalid document.
 */
export function renderChart(measurements: readonly Measurement[], options: ChartOptions): string {
  const panels = panelsOf(measurements);
  const heights = panels.map(panelHeight);
  const subtitleLines = options.subtitle === undefined ? [] : options.subtitle.split('\n');
  const titleHeight = TITLE_HEIGHT + Math.max(0, subtitleLines.length - 1) * 14;
  const height = titleHeight + (panels.length === 0 ? PANEL_HEIGHT : heights.reduce((a, b) => a + b, 0));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="18" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  subtitleLines.forEach((line, i) => {
    out.push(`<text x="${WIDTH / 2}" y="${44 + i * 14}" text-anchor="middle" fill="#555">${escapeXml(line)}</text>`);
  });
  if (panels.length === 0) {
    out.push(`<text x="${WIDTH / 2}" y="${titleHeight + 40}" text-anchor="middle" fill="#a00">no measurements</text>`);
  }
  let top = titleHeight;
  panels.forEach((panel, i) => {
    out.push(renderPanel(panel, top, heights[i]!));
    top += heights[i]!;
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** A panel's height: room for its plot plus one line per ratio under the groups. */
function panelHeight(panel: Panel): number {
  const ratioLines = Math.max(1, ...panel.groups.map((g) => g.ratios.length));
  return PANEL_HEIGHT + (ratioLines - 1) * RATIO_LINE_HEIGHT;
}

/**
 * Ticks for a logarithmic axis: every power of ten from below `min` to above `max`.
 */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const ticks: number[] = [];
  for (let e = lo; e <= Math.max(hi, lo + 1); e++) ticks.push(Number((10 ** e).toPrecision(12)));
  return ticks;
}

function renderPanel(panel: Panel, top: number, height: number): string {
  const out: string[] = [];
  const x0 = MARGIN.left;
  const x1 = WIDTH - MARGIN.right;
  const ratioLines = Math.max(1, ...panel.groups.map((g) => g.ratios.length));
  const yTop = top + MARGIN.top;
  const yBottom = top + height - MARGIN.bottom - (ratioLines - 1) * RATIO_LINE_HEIGHT;
  const values = panel.groups.flatMap((g) =>
    g.bars.flatMap((b) => [b.value, b.min, b.max]).filter((v) => Number.isFinite(v) && v > 0),
  );
  const maxValue = Math.max(0, ...values);
  const minValue = Math.min(...values);
  // Bars that differ by orders of magnitude (a naive server beside a tuned one)
  // would vanish on a linear axis; a log axis keeps every bar readable.
  const log = values.length > 0 && maxValue / minValue > LOG_SCALE_SPREAD;
  const ticks = log ? logTicks(minValue, maxValue) : niceTicks(maxValue);
  const axisMin = log ? ticks[0]! : 0;
  const axisMax = ticks[ticks.length - 1] ?? 1;
  const scale = (v: number): number =>
    log ? (Math.log10(v) - Math.log10(axisMin)) / (Math.log10(axisMax) - Math.log10(axisMin)) : v / axisMax;
  const y = (v: number): number =>
    yBottom - (Number.isFinite(v) && v > axisMin ? Math.min(1, scale(v)) : 0) * (yBottom - yTop);

  out.push(`<g>`);
  out.push(`<text x="${x0}" y="${top + 22}" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`);
  // Axes and grid.
  for (const t of ticks) {
    const ty = y(t).toFixed(1);
    out.push(`<line x1="${x0}" x2="${x1}" y1="${ty}" y2="${ty}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x0 - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle" fill="#333">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`<line x1="${x0}" x2="${x0}" y1="${yTop}" y2="${yBottom}" stroke="#333"/>`);
  out.push(`<line x1="${x0}" x2="${x1}" y1="${yBottom}" y2="${yBottom}" stroke="#333"/>`);
  const midY = (yTop + yBottom) / 2;
  out.push(
    `<text x="16" y="${midY}" text-anchor="middle" transform="rotate(-90 16 ${midY})" fill="#333">${escapeXml(log ? `${panel.unit} (log scale)` : panel.unit)}</text>`,
  );

  // Bars.
  const groupWidth = (x1 - x0) / Math.max(1, panel.groups.length);
  const barWidth = Math.min(56, (groupWidth * 0.8) / Math.max(1, panel.series.length));
  panel.groups.forEach((group, gi) => {
    const gx = x0 + gi * groupWidth;
    const start = gx + (groupWidth - barWidth * group.bars.length) / 2;
    group.bars.forEach((bar, bi) => {
      const color = PALETTE[panel.series.indexOf(bar.series) % PALETTE.length]!;
      const bx = start + bi * barWidth;
      const by = y(bar.value);
      out.push(
        `<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${(barWidth - 4).toFixed(1)}" height="${(yBottom - by).toFixed(1)}" fill="${color}"><title>${escapeXml(
          `${bar.series}: ${formatNumber(bar.value)} ${panel.unit}`,
        )}</title></rect>`,
      );
      const cx = bx + (barWidth - 4) / 2;
      if (Number.isFinite(bar.min) && Number.isFinite(bar.max) && bar.max > bar.min) {
        out.push(
          `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(bar.min).toFixed(1)}" y2="${y(bar.max).toFixed(1)}" stroke="#000" stroke-width="1.5"/>`,
        );
      }
      out.push(
        `<text x="${cx.toFixed(1)}" y="${(Math.min(by, y(bar.max)) - 4).toFixed(1)}" text-anchor="middle" font-size="10">${escapeXml(formatNumber(bar.value))}</text>`,
      );
    });
    out.push(
      `<text x="${(gx + groupWidth / 2).toFixed(1)}" y="${yBottom + 16}" text-anchor="middle" fill="#333">${escapeXml(group.label)}</text>`,
    );
    group.ratios.forEach((ratio, ri) => {
      out.push(
        `<text x="${(gx + groupWidth / 2).toFixed(1)}" y="${yBottom + 30 + ri * RATIO_LINE_HEIGHT}" text-anchor="middle" fill="#555" font-size="11">${escapeXml(ratio)}</text>`,
      );
    });
  });

  // Legend.
  let lx = x0;
  const ly = yBottom + 46 + (ratioLines - 1) * RATIO_LINE_HEIGHT;
  panel.series.forEach((series, si) => {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${PALETTE[si % PALETTE.length]!}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}" fill="#333">${escapeXml(series)}</text>`);
    lx += 24 + series.length * 7;
  });
  out.push(`</g>`);
  return out.join('\n');
}
