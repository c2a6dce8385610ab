/**
 * The benchmark chart's layout, checked without a browser: the SVG's texts
 * are read back from the document and their boxes estimated the way the
 * layout estimates them (at least as wide as a browser draws them), so
 * "no two texts overlap" and "every bar has a visible height" are checked on
 * what is written, not on what the layout meant to write.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { measurement } from '../../bench/scenario.js';
import type { Measurement } from '../../bench/scenario.js';
import { layoutChart, renderChart, STATUS_COLORS } from '../../bench/chart.js';
import { boxesOverlap, text, textWidth } from '../../bench/svg.js';
import type { MarkerItem, TextItem } from '../../bench/svg.js';

/** A measurement with the given figures (one run each unless lists are given). */
function m(
  scenario: string,
  metric: string,
  params: Measurement['params'],
  baselineName: string,
  netloop: number | number[],
  baseline: number | number[],
  options: { target?: string; unit?: string; higherIsBetter?: boolean } = {},
): Measurement {
  const out = measurement({
    scenario,
    params,
    metric,
    unit: options.unit ?? 'msg/s',
    baselineName,
    higherIsBetter: options.higherIsBetter ?? true,
    runs: { netloop: Array.isArray(netloop) ? netloop : [netloop], baseline: Array.isArray(baseline) ? baseline : [baseline] },
  });
  if (options.target !== undefined) out.target = options.target;
  return out;
}

/** Many groups with long labels, long baseline names, values over six decades, a zero and an unbreakable label. */
function crowded(): Measurement[] {
  const out: Measurement[] = [];
  const baselines = ['node:net hand-tuned server with a long name', 'a naive Buffer.concat server', 'redis-benchmark SET -c 1 -P 16'];
  for (let i = 0; i < 14; i++) {
    const params = { mode: `mode-with-a-rather-long-name-${i}`, connections: 10 ** (i % 6), payloadBytes: 16384 };
    baselines.forEach((b, k) => {
      out.push(
        m('crowd', 'throughput_with_a_long_metric_name', params, b, [1234567 * (i + 1), 1500000 * (i + 1)], [10 ** (k + 1) * (i + 1), 0], {
          ...(k === 0 ? { target: '>= 0.9x' } : {}),
        }),
      );
    });
  }
  out.push(
    m('tiny', 'p99', { path: '/a/very/long/path/without/any/spaces/in/it/at/all/0123456789abcdefghijklmnop' }, 'node:net', 582, 201, {
      unit: 'us',
      higherIsBetter: false,
      target: '>= 0.83x',
    }),
    m('tiny', 'p999', { path: '/another/very/long/path/without/spaces' }, 'node:net', 2960, 1520, { unit: 'us', higherIsBetter: false }),
    m('pause', 'max_loop_pause', { sessions: 100000 }, 'full Map scan (one block)', 0.001, 2.16, {
      unit: 'ms',
      higherIsBetter: false,
      target: '<= 10 ms',
    }),
    m('pause', 'stall_max', { clients: 200 }, 'bare-each', 19.4, 0, { unit: 'ms', higherIsBetter: false }),
    m('big', 'deliveries', { clients: 200, bytes: 100 }, 'bare-batched', 17_600_000_000, 15_200_000_000, { target: '>= 0.8x' }),
  );
  return out;
}

/** A run shaped like the suite's quick run: 29 targets (ratio and absolute) and about 50 figures without one, in 9 scenarios. */
function suiteLike(): Measurement[] {
  const out: Measurement[] = [];
  for (const s of [1, 100]) out.push(m('pingpong', 'throughput', { sessions: s, bytes: 16384 }, 'node:net', 1080, 1010, { unit: 'MiB/s', target: '>= 0.95x' }));
  for (const c of [1, 100]) {
    for (const p of ['rtt_p50', 'rtt_p99', 'rtt_p999']) {
      out.push(m('latency', p, { connections: c, inflight: 1 }, 'node:net', 582, 201, { unit: 'us', higherIsBetter: false, ...(p === 'rtt_p99' ? { target: '>= 0.83x' } : {}) }));
    }
  }
  for (const c of [1, 100]) {
    for (const f of [1, 100]) {
      for (const api of ['onRawFrame', 'onMessage']) {
        const raw = api === 'onRawFrame';
        out.push(m('pipelined', 'messages', { connections: c, inflight: f, bytes: 64, api }, 'node:net hand-tuned', 45900 * c, 55000 * c, raw && (f === 1 || c === 100) ? { target: f === 1 ? '>= 0.9x' : '>= 0.7x' } : {}));
        out.push(m('pipelined', 'messages', { connections: c, inflight: f, bytes: 64, api }, 'node:net naive', 45900 * c, 5220 * c, raw && c === 100 && f === 100 ? { target: '>= 10x' } : {}));
      }
    }
  }
  for (const chunks of ['socket-like', 'small', 'one-per-chunk']) {
    for (const b of ['naive Buffer.concat', 'it-length-prefixed (varint prefix)', 'length-prefixed-stream (varint prefix)']) {
      out.push(m('decode', 'decode_ns_per_frame', { chunks, valueBytes: 64 }, b, [54.9, 54.4, 87.1], [141, 140, 169], { unit: 'ns/frame', higherIsBetter: false, ...(chunks === 'socket-like' && b.startsWith('naive') ? { target: '>= 2x (and <= 100 ns/frame)' } : {}) }));
    }
  }
  for (const sessions of [false, true, 'with address']) {
    for (const metric of ['rss_per_conn', 'heap_per_conn']) {
      out.push(m('idle-memory', metric, { connections: 2000, sessions }, 'node:net + listeners', 1270, 1030, { unit: 'B', higherIsBetter: false, target: '>= 0.83x' }));
    }
  }
  out.push(
    m('sessions', 'heap_per_session', { sessions: 100000 }, 'Map of plain objects (naive)', 503, 766, { unit: 'B', higherIsBetter: false, target: '<= 1024 B' }),
    m('sessions', 'heartbeat_by_id', { sessions: 100000 }, 'Map.get + expiry write', [227, 212, 467], [260, 182, 350], { unit: 'ns/call', higherIsBetter: false, target: '<= 200 ns' }),
    m('sessions', 'heartbeat_by_handle', { sessions: 100000 }, 'bare field write', [59.4, 57, 117], [19.6, 17.3, 71], { unit: 'ns/call', higherIsBetter: false, target: '<= 50 ns' }),
    m('sessions', 'audit_tick', { sessions: 100000, expiring: '0.01%' }, 'full Map scan', 0.0312, 0.366, { unit: 'ms', higherIsBetter: false, target: '>= 50x' }),
    m('sessions', 'audit_tick', { sessions: 100000, expiring: '1%' }, 'full Map scan', 0.541, 0.719, { unit: 'ms', higherIsBetter: false, target: '<= 3 ms' }),
    m('sessions', 'audit_max_loop_pause', { sessions: 100000 }, 'full Map scan (one block)', 0.001, 2.16, { unit: 'ms', higherIsBetter: false, target: '<= 10 ms' }),
  );
  for (const load of ['paced', 'burst']) {
    for (const mode of ['snapshot', 'journal']) {
      out.push(m('file-store', 'writes_per_1000_changes', { load, mode, changes: 200 }, 'naive (save per change)', 15, 1000, { unit: 'writes', higherIsBetter: false, target: '>= 10x' }));
    }
  }
  for (const op of ['create', 'get', 'touch', 'delete']) {
    for (const mode of ['snapshot', 'journal']) out.push(m('file-store', 'ops_per_s', { op, mode, sessions: 2000 }, 'memory store', 476000, 885000, { unit: 'ops/s' }));
  }
  for (const op of ['create', 'get', 'touch', 'delete']) {
    for (const b of ['redis-benchmark SET -c 1 -P 16', 'node-redis SET, 16 in flight']) out.push(m('redis-store', 'throughput', { op, pipeline: 16 }, b, 18300, 465000, { unit: 'ops/s' }));
  }
  out.push(
    m('fanout', 'deliveries', { clients: 200 }, 'bare-batched', 17.6e6, 15.2e6, { target: '>= 0.8x' }),
    m('fanout', 'stall_max', { clients: 200 }, 'bare-batched', 19.4, 303, { unit: 'ms', higherIsBetter: false, target: 'netloop <= 50 ms' }),
    m('fanout', 'stall_max', { clients: 200 }, 'bare-each', 19.4, 0, { unit: 'ms', higherIsBetter: false }),
    m('fanout', 'others_rate_one_stalled', { clients: 200, stallSeconds: 2 }, 'netloop, before the stall', 77900, 87900, { unit: 'msg/s/client', target: '>= 0.9x' }),
    m('fanout', 'rss_growth_one_stalled', { clients: 200, stallSeconds: 2 }, 'hard output limit', 11.3, 64, { unit: 'MiB', higherIsBetter: false, target: '>= 1x (within the limit)' }),
  );
  return out;
}

function unescape(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

function attributes(source: string): Record<string, string> {
  return Object.fromEntries([...source.matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
}

/** Every text of an SVG document with its box, estimated as the layout does (the root's font size is 12). */
function textsOf(svg: string): TextItem[] {
  return [...svg.matchAll(/<text ([^>]*)>(?:<title>[^<]*<\/title>)?([^<]*)<\/text>/g)].map((match) => {
    const a = attributes(match[1]!);
    const size = Number(a['font-size'] ?? 12);
    // A text centred on its y (dominant-baseline="middle") sits 0.35 em lower than one on its baseline.
    const y = Number(a.y) + (a['dominant-baseline'] === 'middle' ? 0.35 * size : 0);
    return text(Number(a.x), y, unescape(match[2]!), size, {
      anchor: (a['text-anchor'] ?? 'start') as TextItem['anchor'],
      bold: a['font-weight'] === 'bold',
      rotate: /rotate\(-90/.test(a.transform ?? ''),
    });
  });
}

/** Every bar (a rect with a `series: value unit` tooltip) of an SVG document. */
function barsOf(svg: string): Array<{ height: number; title: string }> {
  return [...svg.matchAll(/<rect ([^>]*)><title>([^<]*)<\/title><\/rect>/g)].map((match) => ({
    height: Number(attributes(match[1]!).height),
    title: unescape(match[2]!),
  }));
}

function overlaps(texts: readonly TextItem[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (boxesOverlap(texts[i]!.box, texts[j]!.box)) found.push(`"${texts[i]!.text}" / "${texts[j]!.text}"`);
    }
  }
  return found;
}

const options = { title: 'netloop vs baselines (quick run)', subtitle: '2 cores · a CPU · Node v20\nnode dist/bench/run.js --quick' };

test('chart: no two texts overlap, with many long labels, long names and values over many decades', () => {
  for (const fixture of [crowded(), suiteLike()]) {
    const svg = renderChart(fixture, options);
    const texts = textsOf(svg);
    assert.ok(texts.length > 50, 'the chart has texts');
    const found = overlaps(texts);
    assert.equal(found.slice(0, 5), [], `${found.length} overlapping texts`);
  }
});

test('chart: a label too long for its group is rotated or shortened, never dropped without a tooltip', () => {
  const svg = renderChart(crowded(), options);
  assert.match(svg, '/a/very/long/path/without/any/spaces/in/it/at/all/0123456789abcdefghijklmnop');
  // The 14 crowded groups cannot sit side by side in one line each: their labels are wrapped or turned.
  const layout = layoutChart(crowded(), options);
  const labels = layout.items.filter((i): i is TextItem => i.kind === 'text' && i.role === 'group-label');
  assert.ok(labels.some((l) => l.rotate === true || l.text !== l.title), 'crowded labels are rotated');
  for (const l of labels) assert.ok(l.box.w <= 1180, 'a label stays on the page');
});

test('chart: a bar at the log axis minimum, or of zero, keeps a visible height', () => {
  const svg = renderChart(crowded(), options);
  const bars = barsOf(svg);
  assert.ok(bars.length >= 14 * 4, `${bars.length} bars`);
  const flat = bars.filter((b) => !(b.height >= 2));
  assert.equal(flat.map((b) => `${b.title}: ${b.height}`), []);
  // Both kinds are in the fixture: 0.001 ms on a log axis whose lowest decade it is, and a 0 ms stall.
  assert.ok(bars.some((b) => b.title.startsWith('netloop: 0.00100 ms')));
  assert.ok(bars.some((b) => b.title.startsWith('bare-each: 0 ms')));
});

test('chart: the summary comes first, with a row for every target, misses in their own colour and shape', () => {
  const fixture = suiteLike();
  const layout = layoutChart(fixture, options);
  const targeted = fixture.filter((x) => x.target !== undefined);
  assert.ok(targeted.length >= 28, 'about as many targets as the suite has');
  for (const t of targeted) assert.ok(layout.summary.some((r) => r.measurement === t), `${t.scenario} ${t.metric} has a row`);
  // A scenario without any target still shows in the summary (in grey).
  assert.ok(layout.summary.some((r) => r.measurement.scenario === 'redis-store' && r.status === 'none'));
  // Figures without a target in a scenario that has targets are left to the panels.
  assert.is(layout.notInSummary, fixture.length - layout.summary.length);
  assert.not.ok(layout.summary.some((r) => r.measurement.scenario === 'file-store' && r.measurement.target === undefined && layout.summary.some((s) => s.measurement.scenario === 'file-store' && s.measurement.target !== undefined)));

  const markers = layout.items.filter((i): i is MarkerItem => i.kind === 'marker' && (i.role ?? '').startsWith('summary-'));
  assert.is(markers.length, layout.summary.length);
  const missed = markers.filter((k) => k.role === 'summary-missed');
  const met = markers.filter((k) => k.role === 'summary-met');
  assert.ok(missed.length >= 3 && met.length >= 3, `${missed.length} missed, ${met.length} met`);
  for (const k of missed) {
    assert.is(k.fill, STATUS_COLORS.missed);
    assert.is(k.shape, 'diamond');
  }
  for (const k of met) {
    assert.is(k.fill, STATUS_COLORS.met);
    assert.is(k.shape, 'circle');
  }
  assert.is.not(STATUS_COLORS.missed, STATUS_COLORS.met);
  // Absolute targets are judged like ratio targets: 227 ns misses <= 200 ns, 503 B meets <= 1024 B.
  const row = (metric: string) => layout.summary.find((r) => r.measurement.metric === metric)!;
  assert.is(row('heartbeat_by_id').status, 'missed');
  assert.match(row('heartbeat_by_id').verdict, 'MISS 227 ns (≤ 200)');
  assert.is(row('heap_per_session').status, 'met');
  assert.is(row('stall_max').status, 'met');
  // ... and marked on the ratio axis where netloop would meet them: 260 ns / 200 ns = 1.3x.
  assert.ok(Math.abs(row('heartbeat_by_id').marks[0]!.ratio - 1.3) < 1e-9);

  // The summary fits one screen, and every panel follows it.
  assert.ok(layout.summaryBottom <= 1000, `summary ends at ${layout.summaryBottom}`);
  const panelTitles = layout.items.filter((i): i is TextItem => i.kind === 'text' && i.role === 'panel-title');
  assert.ok(panelTitles.length >= 10);
  for (const t of panelTitles) assert.ok(t.box.y >= layout.summaryBottom);
});

test('chart: whiskers span the ratio over the runs; 1x and the targets are marked', () => {
  const layout = layoutChart(suiteLike(), options);
  const row = layout.summary.find((r) => r.measurement.metric === 'heartbeat_by_id')!;
  // Runs paired by index: 260/227, 182/212, 350/467.
  assert.ok(Math.abs(row.range[0] - 350 / 467) < 1e-9 && Math.abs(row.range[1] - 260 / 227) < 1e-9, String(row.range));
  assert.ok(layout.items.some((i) => i.kind === 'line' && i.role === 'one'));
  const marks = layout.items.filter((i) => i.kind === 'line' && i.role === 'target');
  assert.ok(marks.length >= layout.summary.filter((r) => r.marks.length > 0).length);
});

test('chart: the document stands alone (no script, link, font or image from outside)', () => {
  const svg = renderChart(suiteLike(), options);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  for (const bad of ['<script', 'href=', 'url(', '@import', '<image', '<foreignObject']) assert.not.ok(svg.includes(bad), bad);
  for (const tag of ['text', 'title']) {
    assert.is((svg.match(new RegExp(`<${tag}[ >]`, 'g')) ?? []).length, (svg.match(new RegExp(`</${tag}>`, 'g')) ?? []).length, tag);
  }
});

test('svg: width estimates are conservative and grow with the text', () => {
  // DejaVu Sans draws "0" 0.636 em wide, "W" 0.989 em; the estimate keeps a margin above both.
  assert.ok(textWidth('0', 10) >= 6.36);
  assert.ok(textWidth('W', 10, true) >= 11.03);
  assert.ok(textWidth('≥', 10) >= 8.38);
  assert.ok(textWidth('connections=100', 11) > textWidth('connections=1', 11));
});

test.run();
