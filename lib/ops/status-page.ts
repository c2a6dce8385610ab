/**
 * The status page: one self-contained HTML document (inline CSS, inline
 * script, charts drawn as inline SVG), with nothing fetched from anywhere
 * but its own event stream, so it works offline and under a strict
 * Content-Security-Policy (its script and style carry the response's nonce).
 *
 * ```
 *   ┌ netloop · title ─────────────────────────────── ● live  uptime  updated ┐
 *   │ [connections] [sessions] [messages/s] [bytes/s] [queued output] [stores]  │
 *   │ [chart: connections]  [chart: messages/s in/out]  [chart: bytes/s in/out] │
 *   │ [most queued output: id, server, peer, queued, age] [recent closes]       │
 *   │ [closes by reason] [sessions by state] [servers, stores] [limits, errors] │
 *   └───────────────────────────────────────────────────────────────────────────┘
 *   EventSource('events') ─ one snapshot a tick ─▶ tiles, 60-point series, tables
 * ```
 *
 * Rates are differences of netloop's cumulative counters between two
 * snapshots, divided by the time between them; a counter netloop does not
 * keep shows as a dash. Every value is written with `textContent`, never
 * parsed as HTML.
 *
 * @module
 */

/** Options of {@link statusPageHtml}. */
export interface StatusPageOptions {
  /** Shown in the header and the document title (escaped). */
  title: string;
  /** The CSP nonce of this response's inline script and style. */
  nonce: string;
  /** The server's snapshot interval, shown on the page. */
  intervalMs: number;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
:root{--bg:#eef1f5;--card:#fff;--line:#dfe4ea;--ink:#18202e;--muted:#667085;--blue:#2563eb;--teal:#0d9488;--amber:#d97706;--red:#dc2626;--green:#16a34a;--head:#111827}
*{box-sizing:border-box}
html,body{margin:0;background:var(--bg);color:var(--ink);font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{display:flex;align-items:center;gap:14px;background:var(--head);color:#f9fafb;padding:9px 18px}
header .brand{display:flex;align-items:center;gap:8px;font-weight:700;font-size:15px;letter-spacing:.2px}
header .title{color:#cbd5e1;font-weight:500}
header .right{margin-left:auto;display:flex;gap:16px;align-items:center;color:#cbd5e1;font-size:12px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;background:#9ca3af;margin-right:6px;vertical-align:-1px}
.live .dot{background:#22c55e;box-shadow:0 0 0 3px rgba(34,197,94,.25)}
.down .dot{background:#ef4444}
main{padding:12px 18px 18px;display:grid;gap:12px}
.tiles{display:grid;grid-template-columns:repeat(6,1fr);gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0}
.tile .label{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.6px}
.tile .value{font-size:24px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums;white-space:nowrap}
.tile .sub{color:var(--muted);font-size:12px;margin-top:1px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tile.warn .value{color:var(--amber)} .tile.bad .value{color:var(--red)} .tile.good .value{color:var(--green)}
.charts{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
h2{margin:0 0 6px;font-size:12px;font-weight:650;color:#344054;display:flex;align-items:center;gap:10px}
h2 .legend{margin-left:auto;font-weight:500;color:var(--muted);display:flex;gap:10px}
.sw{display:inline-block;width:10px;height:3px;border-radius:2px;margin-right:4px;vertical-align:middle}
svg.chart{display:block;width:100%;height:118px}
svg.chart text{font-size:10px;fill:#8a94a6;font-family:inherit}
.row2{display:grid;grid-template-columns:1.15fr 1fr;gap:12px}
.row4{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th{font-size:11px;color:var(--muted);text-align:left;font-weight:600;padding:4px 6px;border-bottom:1px solid var(--line)}
td{padding:4px 6px;border-bottom:1px solid #f0f2f5;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:180px}
td.num,th.num{text-align:right}
tr:last-child td{border-bottom:0}
.empty td{color:#98a2b3;text-align:center;font-style:italic}
.bar{position:relative;height:14px;background:#f2f4f7;border-radius:3px;min-width:80px}
.bar>span{position:absolute;left:0;top:0;bottom:0;border-radius:3px;background:linear-gradient(90deg,#fcd34d,#fb923c)}
.bar>em{position:relative;font-style:normal;font-size:11px;padding-left:5px;line-height:14px;color:#111827}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;line-height:17px;background:#eef2f6;color:#344054}
.pill.fault{background:#fde8e8;color:#b42318} .pill.limit{background:#fef0c7;color:#93370d} .pill.ok{background:#dcfae6;color:#067647}
.hbar{display:grid;grid-template-columns:118px 1fr 52px;gap:6px;align-items:center;margin:3px 0;font-size:12px}
.hbar .track{height:10px;background:#f2f4f7;border-radius:3px;overflow:hidden}
.hbar .fill{height:100%;background:var(--blue);border-radius:3px}
.hbar .n{text-align:right;font-variant-numeric:tabular-nums;color:#344054}
.muted{color:var(--muted)}
.gap{margin-top:6px;font-size:12px}
.sw.c1{background:#2563eb}.sw.c2{background:#0d9488}.sw.c3{background:#7c3aed}.sw.c4{background:#d97706}
footer{color:#98a2b3;font-size:11px;padding:0 18px 12px}
`;

/*
 * The page's script, plain ES5-style JavaScript in a string (no build step).
 * Kept free of template literals and of any closing script tag.
 */
const SCRIPT = `
(function () {
  'use strict';
  var N = 60;
  var INTERVAL = Number(document.body.getAttribute('data-interval')) || 1000;
  var span = Math.round((N * INTERVAL) / 1000);
  var series = { conn: [], min: [], mout: [], bin: [], bout: [] };
  var prev = null;
  var FAULTS = { 'reset': 1, 'error': 1, 'protocol-error': 1, 'handler-error': 1, 'force-close': 1 };
  var LIMITS = { 'output-limit': 1, 'output-soft-limit': 1, 'idle-timeout': 1, 'frame-timeout': 1, 'handshake-timeout': 1, 'ping-timeout': 1 };

  function q(sel) { return document.querySelector(sel); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(n) { return n === undefined || n === null ? '\\u2014' : Math.round(n).toLocaleString('en-US'); }
  function bytes(n) {
    if (n === undefined || n === null) return '\\u2014';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
  }
  function short(n) {
    if (n === undefined || n === null) return '\\u2014';
    if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(0) + 'k';
    if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
    return String(Math.round(n));
  }
  function age(s) {
    if (s === undefined || s === null) return '\\u2014';
    s = Math.floor(s);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  function clock(ms) {
    var d = new Date(ms);
    function p(x) { return (x < 10 ? '0' : '') + x; }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  function tile(key, text, value, sub, tone) {
    var v = q('[data-k="' + key + '"]');
    if (!v) return;
    v.textContent = text;
    v.setAttribute('data-v', value === undefined || value === null ? '' : String(value));
    if (sub !== undefined) v.parentNode.querySelector('.sub').textContent = sub;
    v.parentNode.className = 'card tile' + (tone ? ' ' + tone : '');
  }
  function push(arr, v) { arr.push(v); if (arr.length > N) arr.shift(); }
  function rate(cur, old, dt) {
    if (cur === undefined || cur === null || old === undefined || old === null || !(dt > 0)) return null;
    return Math.max(0, (cur - old) / dt);
  }
  function niceMax(m) {
    if (!(m > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(m))), f = m / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }
  /* Byte axes: a round number of the largest binary unit below the maximum. */
  function niceBytes(m) {
    var u = 1;
    while (m >= 1024 * u && u < Math.pow(1024, 4)) u *= 1024;
    return niceMax(m / u) * u;
  }
  function bshort(n) {
    var u = ['', 'K', 'M', 'G', 'T'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (n >= 10 || n === Math.round(n) ? String(Math.round(n)) : n.toFixed(1)) + u[i];
  }

  var SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function chart(id, lines, fmt, nice) {
    var root = q('#' + id);
    while (root.firstChild) root.removeChild(root.firstChild);
    var W = 360, H = 118, L = 40, R = 6, T = 8, B = 16;
    var max = 0;
    lines.forEach(function (ln) { ln.data.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    max = (nice || niceMax)(max);
    for (var g = 0; g <= 2; g++) {
      var y = T + (H - T - B) * (1 - g / 2);
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, stroke: g === 0 ? '#cfd6de' : '#edf0f3', 'stroke-width': 1 }));
      var t = svg('text', { x: L - 5, y: y + 3, 'text-anchor': 'end' });
      t.textContent = fmt((max * g) / 2);
      root.appendChild(t);
    }
    var t0 = svg('text', { x: L, y: H - 3 }); t0.textContent = '-' + span + 's'; root.appendChild(t0);
    var t1 = svg('text', { x: W - R, y: H - 3, 'text-anchor': 'end' }); t1.textContent = 'now'; root.appendChild(t1);
    var step = (W - L - R) / (N - 1);
    lines.forEach(function (ln, idx) {
      var pts = [], off = N - ln.data.length;
      ln.data.forEach(function (v, i) {
        if (v === null) return;
        pts.push((L + (off + i) * step).toFixed(1) + ',' + (T + (H - T - B) * (1 - v / max)).toFixed(1));
      });
      if (pts.length === 0) return;
      if (idx === 0 && pts.length > 1) {
        var first = pts[0].split(','), last = pts[pts.length - 1].split(',');
        var base = (H - B).toFixed(1);
        root.appendChild(svg('polygon', { points: first[0] + ',' + base + ' ' + pts.join(' ') + ' ' + last[0] + ',' + base, fill: ln.color, 'fill-opacity': 0.12 }));
      }
      root.appendChild(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: ln.color, 'stroke-width': 1.8, 'stroke-linejoin': 'round' }));
    });
  }
  function rows(tbodyId, items, cols, emptyText) {
    var tb = q('#' + tbodyId);
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    if (items.length === 0) {
      var tr = el('tr', 'empty'), td = el('td', null, emptyText);
      td.colSpan = cols;
      tr.appendChild(td); tb.appendChild(tr);
      return;
    }
    items.forEach(function (cells) { tb.appendChild(cells); });
  }
  function pillFor(reason) {
    return el('span', 'pill' + (FAULTS[reason] ? ' fault' : LIMITS[reason] ? ' limit' : ''), reason);
  }
  function hbars(id, entries, color) {
    var root = q('#' + id);
    while (root.firstChild) root.removeChild(root.firstChild);
    if (entries.length === 0) { root.appendChild(el('div', 'muted', 'none yet')); return; }
    var max = entries[0][1] || 1;
    entries.forEach(function (e) {
      var r = el('div', 'hbar');
      r.setAttribute('data-name', e[0]);
      r.appendChild(e[2] ? e[2] : el('span', null, e[0]));
      var tr = el('div', 'track'), f = el('div', 'fill');
      f.style.width = (e[1] > 0 ? Math.max(2, (100 * e[1]) / max) : 0) + '%';
      if (color) f.style.background = color;
      tr.appendChild(f); r.appendChild(tr);
      r.appendChild(el('span', 'n', num(e[1])));
      root.appendChild(r);
    });
  }

  function update(s) {
    var r = s.reactor, c = r ? r.counters : null;
    var dt = prev ? (s.at - prev.at) / 1000 : 0;
    var pc = prev && prev.reactor ? prev.reactor.counters : null;
    var mIn = c && pc ? rate(c.framesIn, pc.framesIn, dt) : null;
    var mOut = c && pc ? rate(c.framesOut, pc.framesOut, dt) : null;
    var bIn = c && pc ? rate(c.bytesIn, pc.bytesIn, dt) : null;
    var bOut = c && pc ? rate(c.bytesOut, pc.bytesOut, dt) : null;
    var open = r ? r.servers.reduce(function (a, x) { return a + x.open; }, 0) : null;

    q('#uptime').textContent = 'uptime ' + age(s.uptimeSeconds);
    q('#updated').textContent = 'updated ' + clock(s.at);

    tile('connections', num(open), open, r ? num(c.accepted) + ' accepted \\u00b7 ' + num(c.dropped) + ' dropped' : 'no reactor');
    if (s.sessions) {
      var bs = s.sessions.byState;
      tile('sessions', num(bs.ACTIVE), bs.ACTIVE, num(bs.IDLE) + ' idle \\u00b7 ' + num(bs.CONNECTING) + ' connecting');
    } else {
      tile('sessions', '\\u2014', null, s.sessionsError ? 'store: ' + s.sessionsError : 'no registry', s.sessionsError ? 'bad' : '');
    }
    tile('msgs-in', mIn === null ? (prev ? '\\u2014' : '\\u2026') : short(mIn), mIn, 'out ' + (mOut === null ? '\\u2014' : short(mOut) + '/s'));
    tile('bytes-in', bIn === null ? (prev ? '\\u2014' : '\\u2026') : bytes(bIn) + '/s', bIn, 'out ' + (bOut === null ? '\\u2014' : bytes(bOut) + '/s'));
    var queued = r ? r.queuedBytes : null;
    var nq = r ? r.topQueued.length : 0;
    tile('queued', bytes(queued), queued, 'in ' + nq + ' client' + (nq === 1 ? '' : 's') + (nq >= 10 ? ' or more' : ''), queued > 1048576 ? 'warn' : '');
    var up = s.stores.filter(function (x) { return x.up; }).length;
    tile('stores', s.stores.length ? up + ' / ' + s.stores.length : '\\u2014', up, s.stores.length ? (up === s.stores.length ? 'all answering' : (s.stores.length - up) + ' not answering') : 'no store', s.stores.length ? (up === s.stores.length ? 'good' : 'bad') : '');

    push(series.conn, open);
    if (prev) { push(series.min, mIn); push(series.mout, mOut); push(series.bin, bIn); push(series.bout, bOut); }
    chart('c-conn', [{ data: series.conn, color: '#2563eb' }], short);
    chart('c-msgs', [{ data: series.min, color: '#0d9488' }, { data: series.mout, color: '#7c3aed' }], short);
    chart('c-bytes', [{ data: series.bin, color: '#2563eb' }, { data: series.bout, color: '#d97706' }], bshort, niceBytes);

    var top = r ? r.topQueued : [];
    var maxQ = top.length ? top[0].queuedBytes : 1;
    rows('queued', top.map(function (x) {
      var tr = el('tr');
      tr.setAttribute('data-id', String(x.id));
      tr.appendChild(el('td', 'num', x.id));
      tr.appendChild(el('td', null, x.server || '\\u2014'));
      tr.appendChild(el('td', null, x.peer || '\\u2014'));
      var td = el('td'), bar = el('div', 'bar'), fill = el('span');
      fill.style.width = Math.max(2, (100 * x.queuedBytes) / maxQ) + '%';
      bar.appendChild(fill); bar.appendChild(el('em', null, bytes(x.queuedBytes)));
      td.appendChild(bar); tr.appendChild(td);
      tr.appendChild(el('td', 'num', age(x.ageSeconds)));
      return tr;
    }), 5, 'no client has output waiting');

    var closes = r ? r.recentCloses.slice(-12).reverse() : [];
    rows('closes', closes.map(function (x) {
      var tr = el('tr');
      tr.appendChild(el('td', null, clock(x.at)));
      tr.appendChild(el('td', 'num', x.clientId));
      tr.appendChild(el('td', null, x.peer || '\\u2014'));
      var td = el('td'); td.appendChild(pillFor(x.reason)); tr.appendChild(td);
      tr.appendChild(el('td', null, x.syscallCode || x.code || ''));
      tr.appendChild(el('td', 'num', age(x.ageSeconds)));
      return tr;
    }), 6, 'no close yet');

    var reasons = c ? Object.keys(c.closed).map(function (k) { return [k, c.closed[k], pillFor(k)]; }) : [];
    reasons.sort(function (a, b) { return b[1] - a[1]; });
    hbars('reasons', reasons.slice(0, 8));

    if (s.sessions) {
      var ss = s.sessions, sc = ss.counters;
      hbars('states', [['active', ss.byState.ACTIVE], ['idle', ss.byState.IDLE], ['connecting', ss.byState.CONNECTING]], '#0d9488');
      q('#session-counts').textContent = num(sc.created) + ' created \\u00b7 ' + num(sc.resumed) + ' resumed \\u00b7 ' + num(sc.expired) + ' expired \\u00b7 ' + num(sc.replaced) + ' replaced';
    } else {
      hbars('states', []);
      q('#session-counts').textContent = s.sessionsError ? 'store: ' + s.sessionsError : 'no session registry';
    }

    rows('servers', (r ? r.servers : []).map(function (x) {
      var tr = el('tr'); tr.appendChild(el('td', null, x.name)); tr.appendChild(el('td', 'num', num(x.open))); return tr;
    }), 2, 'no server');
    rows('stores', s.stores.map(function (x) {
      var tr = el('tr');
      tr.appendChild(el('td', null, x.name));
      tr.appendChild(el('td', 'muted', x.kind));
      var td = el('td'); td.appendChild(el('span', 'pill ' + (x.up ? 'ok' : 'fault'), x.up ? 'up' : x.status + (x.errorCode ? ' ' + x.errorCode : ''))); tr.appendChild(td);
      tr.appendChild(el('td', 'num', x.pingSeconds === undefined ? '\\u2014' : (x.pingSeconds * 1000).toFixed(1) + ' ms'));
      return tr;
    }), 4, 'no store');

    var lim = c ? Object.keys(c.limits).map(function (k) { return [k, c.limits[k]]; }) : [];
    if (c) {
      lim.push(['handler errors', c.handlerErrors]);
      lim.push(['tls errors', c.tlsErrors]);
      if (c.inboundPauses !== undefined) lim.push(['inbound pauses', c.inboundPauses]);
    }
    lim.sort(function (a, b) { return b[1] - a[1]; });
    rows('limits', lim.map(function (e) {
      var tr = el('tr'); tr.appendChild(el('td', null, e[0])); tr.appendChild(el('td', 'num', num(e[1]))); return tr;
    }), 2, 'none');

    prev = s;
  }

  var state = q('#state');
  function status(cls, text) { state.className = cls; state.lastChild.textContent = text; }
  var es = new EventSource('events');
  es.onopen = function () { status('live', 'live'); };
  es.onerror = function () { status('down', 'reconnecting\\u2026'); };
  es.onmessage = function (e) {
    status('live', 'live');
    try { update(JSON.parse(e.data)); } catch (err) { status('down', 'bad data'); }
  };
})();
`;

/** The status page for one response (see the module comment). */
export function statusPageHtml(options: StatusPageOptions): string {
  const title = escapeHtml(options.title);
  const nonce = escapeHtml(options.nonce);
  const every = options.intervalMs >= 1000 ? `${(options.intervalMs / 1000).toFixed(options.intervalMs % 1000 === 0 ? 0 : 1)} s` : `${options.intervalMs} ms`;
  const tile = (key: string, label: string): string =>
    `<div class="card tile"><div class="label">${label}</div><div class="value" data-k="${key}">&#8230;</div><div class="sub">&nbsp;</div></div>`;
  // Classes, not style attributes: the Content-Security-Policy allows only the nonced stylesheet.
  const swatch = (color: string, label: string): string => `<span><span class="sw ${color}"></span>${label}</span>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<link rel="icon" href="data:,">
<title>${title} \u00b7 status</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body data-interval="${options.intervalMs}">
<header>
  <div class="brand"><svg width="18" height="18" viewBox="0 0 18 18" aria-hidden="true"><circle cx="9" cy="9" r="7.5" fill="none" stroke="#60a5fa" stroke-width="2"/><circle cx="9" cy="9" r="3" fill="#60a5fa"/></svg>netloop</div>
  <div class="title">${title}</div>
  <div class="right"><span id="state"><span class="dot"></span><span>connecting&#8230;</span></span><span id="uptime"></span><span id="updated"></span></div>
</header>
<main>
  <section class="tiles">
    ${tile('connections', 'Connections open')}
    ${tile('sessions', 'Sessions active')}
    ${tile('msgs-in', 'Messages in / s')}
    ${tile('bytes-in', 'Bytes in / s')}
    ${tile('queued', 'Queued output')}
    ${tile('stores', 'Stores up')}
  </section>
  <section class="charts">
    <div class="card"><h2>Connections<span class="legend">${swatch('c1', 'open')}</span></h2><svg class="chart" id="c-conn" viewBox="0 0 360 118" preserveAspectRatio="none"></svg></div>
    <div class="card"><h2>Messages / s<span class="legend">${swatch('c2', 'in')}${swatch('c3', 'out')}</span></h2><svg class="chart" id="c-msgs" viewBox="0 0 360 118" preserveAspectRatio="none"></svg></div>
    <div class="card"><h2>Bytes / s<span class="legend">${swatch('c1', 'in')}${swatch('c4', 'out')}</span></h2><svg class="chart" id="c-bytes" viewBox="0 0 360 118" preserveAspectRatio="none"></svg></div>
  </section>
  <section class="row2">
    <div class="card"><h2>Most queued output</h2><table><thead><tr><th class="num">id</th><th>server</th><th>peer</th><th>queued</th><th class="num">age</th></tr></thead><tbody id="queued"></tbody></table></div>
    <div class="card"><h2>Recent closes</h2><table><thead><tr><th>time</th><th class="num">id</th><th>peer</th><th>reason</th><th>code</th><th class="num">lived</th></tr></thead><tbody id="closes"></tbody></table></div>
  </section>
  <section class="row4">
    <div class="card"><h2>Closes by reason</h2><div id="reasons"></div></div>
    <div class="card"><h2>Sessions by state</h2><div id="states"></div><div class="muted gap" id="session-counts"></div></div>
    <div class="card"><h2>Servers &amp; stores</h2><table><tbody id="servers"></tbody></table><table class="gap"><tbody id="stores"></tbody></table></div>
    <div class="card"><h2>Limits &amp; errors</h2><table><tbody id="limits"></tbody></table></div>
  </section>
</main>
<footer>Read-only. Updated every ${every} by Server-Sent Events; rates are differences of netloop's counters. Metrics for Prometheus at <code>/metrics</code>.</footer>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}
