/**
 * The status page in a real browser: Debian's headless Chromium, driven by
 * puppeteer-core (which never downloads a browser), loads the page from the
 * ops endpoint (with a token: the address's token is traded for a cookie,
 * and the event stream is authorized by it), while a load client runs on
 * real sockets against a framed echo server. The numbers on the page must
 * move with the load, a slow consumer (a peer that stops reading while the
 * server writes to it) must appear in the queued-output table, and the page
 * must fetch nothing but its own origin.
 *
 * ```
 *   chromium ── GET /?token ─▶ 303 + cookie ─▶ GET / ─▶ EventSource /events ──┐
 *   load client ──▶ echo server (netloop) ◀── reactorSource ── OpsSampler ◀──┘
 *   slow consumer ── asks 8 MiB, never reads ──▶ queued output ──▶ the table
 * ```
 *
 * Without Chromium the test is skipped with a loud message, except under
 * CI=true, where it fails. The screenshot goes to a temporary folder; with
 * UPDATE_SCREENSHOTS=1 it replaces docs/operations/status-page.png (the one
 * the operations guide shows).
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as net from 'node:net';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { startOpsEcho, startLoad, slowConsumer } from '../helpers/ops-load.js';
import { until } from '../helpers/net.js';
import { reactorSource, sessionSource, storeSource } from '../../lib/ops/sources.js';
import { startOpsServer } from '../../lib/ops/ops-server.js';
import type { OpsServer } from '../../lib/ops/ops-server.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { FileStore } from '../../lib/store/file/file-store.js';
import type { Client } from '../../lib/reactor/client.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CHROMIUM = process.env['NETLOOP_CHROMIUM'] ?? '/usr/bin/chromium';
/** The launch flags this machine's Chromium needs (closed network, running as root, no GPU). */
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  const msg = `ops-status-page: no Chromium at ${CHROMIUM} (apt-get install chromium, or set NETLOOP_CHROMIUM)`;
  if (process.env['CI'] === 'true') {
    test('a headless Chromium is installed (required under CI)', () => {
      assert.unreachable(msg);
    });
  } else {
    console.warn(`\n!!! SKIPPED: ${msg}\n`);
  }
}

const maybe = haveChromium ? test : test.skip;

maybe('the status page in Chromium: numbers follow a load, a slow consumer shows in the queued-output table, nothing is fetched from outside', async () => {
  const { default: puppeteer } = await import('puppeteer-core');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-ops-page-'));
  const echo = await startOpsEcho();
  // Sessions and two stores, so that every panel of the page has something real to show.
  const registry = new SessionRegistry({ store: new MemoryStore(), autoAudit: false });
  const fileStore = await FileStore.open({ path: path.join(tmp, 'sessions.json') });
  const reactor = reactorSource(echo.loop, { servers: { chat: echo.server } });
  const token = 'page-token-0123456789abcdef';
  let ops: OpsServer | undefined;
  let browser: Awaited<ReturnType<typeof puppeteer.launch>> | undefined;
  const peers: net.Socket[] = [];
  try {
    for (let i = 0; i < 5; i++) await registry.create({ userId: `user-${i}`, connectionId: `c${i}` });
    await registry.create({ userId: 'waiting', state: 'CONNECTING' });
    ops = await startOpsServer({
      sources: {
        reactor,
        sessions: sessionSource(registry),
        stores: [storeSource(registry.store, { name: 'sessions' }), storeSource(fileStore, { name: 'archive' })],
      },
      registry: null,
      token,
      intervalMs: 250,
      title: 'chat-1 (test)',
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      userDataDir: path.join(tmp, 'profile'),
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 800, deviceScaleFactor: 1 });
    const origin = new URL(ops.url).origin;
    const foreign: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(origin)) foreign.push(r.url());
    });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));

    await page.goto(`${ops.url}?token=${token}`, { waitUntil: 'domcontentloaded' });
    assert.is(new URL(page.url()).search, '', 'the token left the address (traded for a cookie)');
    const value = (key: string): Promise<number> =>
      page.$eval(`[data-k="${key}"]`, (e) => {
        const v = e.getAttribute('data-v');
        return v === null || v === '' ? Number.NaN : Number(v);
      });
    // Functions run in the page are given as source text (the project compiles without the DOM's types).
    const dataV = (key: string): string => `Number(document.querySelector('[data-k="${key}"]')?.getAttribute('data-v'))`;
    await page.waitForFunction(`${dataV('connections')} === 0`, { timeout: 10_000 });
    assert.is(await value('sessions'), 5, 'five ACTIVE sessions');
    assert.is(await value('stores'), 2, 'both stores answer');

    // The load: the page's numbers follow it.
    const load = await startLoad(echo.port, { connections: 6, valueBytes: 300 });
    await page.waitForFunction(`${dataV('connections')} === 6`, { timeout: 10_000 });
    await page.waitForFunction(`${dataV('msgs-in')} > 0`, { timeout: 10_000 });
    await page.waitForFunction(`${dataV('bytes-in')} > 0`, { timeout: 10_000 });
    const text = await page.$eval('[data-k="msgs-in"]', (e) => e.textContent ?? '');
    assert.match(text, /^[\d.]+[kMG]?$/, `messages per second shown as a number (${text})`);

    // A slow consumer: its queued output shows in the table, with its id.
    const slow = await slowConsumer(echo.port, 8 * 1024 * 1024);
    peers.push(slow);
    let slowClient: Client | undefined;
    await until(() => {
      for (const c of echo.server.clients()) if (c.remotePort === slow.localPort) slowClient = c;
      return slowClient !== undefined && slowClient.queuedBytes > 1024 * 1024;
    }, 'the slow consumer to have output queued');
    await page.waitForSelector(`#queued tr[data-id="${slowClient!.id}"]`, { timeout: 10_000 });
    const row = await page.$eval(`#queued tr[data-id="${slowClient!.id}"]`, (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''));
    assert.is(row[0], String(slowClient!.id));
    assert.is(row[1], 'chat');
    assert.is(row[2], `127.0.0.1:${slow.localPort}`);
    assert.match(row[3]!, /MiB$/, `queued bytes in MiB (${row[3]})`);

    // Closes: one peer resets (RST), one leaves cleanly (FIN); the recent-closes table says so.
    load.sockets[0]!.resetAndDestroy();
    load.sockets[1]!.end();
    await page.waitForFunction(`[...document.querySelectorAll('#closes .pill')].some((p) => p.textContent === 'reset')`, { timeout: 10_000 });
    // For the picture in the docs, let the charts fill for a few seconds more.
    const update = process.env['UPDATE_SCREENSHOTS'] === '1';
    await new Promise<void>((resolve) => setTimeout(resolve, update ? 5_000 : 300));
    const shot = update ? path.join(ROOT, 'docs/operations/status-page.png') : path.join(tmp, 'status-page.png');
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot as `${string}.png`, type: 'png' });
    assert.ok(fs.statSync(shot).size > 10_000, 'a screenshot was written');

    assert.equal(foreign, [], 'the page fetched nothing from outside its own origin');
    assert.equal(problems, [], 'no script error and no refused resource (CSP)');
    await load.stop().catch(() => undefined);
  } finally {
    for (const p of peers) p.destroy();
    await browser?.close();
    await ops?.close();
    reactor.close();
    await echo.stop();
    await registry.close();
    await fileStore.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
