/**
 * C10K: 10,000 concurrent connections held by one netloop server process,
 * each heartbeating, with no error; memory per connection reported.
 *
 * The server runs in a child process (its own descriptor table: the client
 * side here holds the other 10,000 sockets). Connections open in waves so
 * that the listen backlog never overflows (an overflow costs a 1 s SYN
 * retry, not an error). Teardown resets every socket, so no port lingers in
 * TIME_WAIT for the tests that follow. NETLOOP_C10K_CONNECTIONS changes the
 * count (default 10,000); NETLOOP_C10K_VERBOSE prints the figures.
 */
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { until, withTimeout } from '../helpers/net.js';

const N = Number(process.env['NETLOOP_C10K_CONNECTIONS'] ?? 10_000);
const WAVE = 500;
const HEARTBEAT_MS = 1_000;

interface Measure {
  clients: number;
  rss: number;
  heapUsed: number;
  external: number;
  errors: number;
  faults: Record<string, number>;
}

function ask(child: ChildProcess): Promise<Measure> {
  return withTimeout(
    new Promise<Measure>((resolve) => {
      child.once('message', (m) => resolve(m as Measure));
      child.send('measure');
    }),
    10_000,
    'a measure from the server process',
  );
}

test(`C10K: ${N} concurrent connections held by one server process, each heartbeating, no error`, async () => {
  const child = fork(fileURLToPath(new URL('../fixtures/c10k-server.js', import.meta.url)), [], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const sockets: net.Socket[] = [];
  let clientErrors = 0;
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    const port = await withTimeout(
      new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { ready: number }).ready));
        child.once('exit', (code) => reject(new Error(`the server process exited (${String(code)})`)));
      }),
      10_000,
      'the server process to listen',
    );
    const base = await ask(child);
    const echoed = new Uint8Array(N);
    const t0 = Date.now();
    for (let start = 0; start < N; start += WAVE) {
      const wave: Array<Promise<void>> = [];
      for (let i = start; i < Math.min(N, start + WAVE); i++) {
        wave.push(
          new Promise<void>((resolve, reject) => {
            const s = net.connect({ host: '127.0.0.1', port });
            s.once('connect', () => resolve());
            s.once('error', reject);
            s.on('data', () => {
              echoed[i] = 1;
            });
            sockets.push(s);
          }),
        );
      }
      await withTimeout(Promise.all(wave), 20_000, `connections ${start} to ${start + WAVE}`);
    }
    const connectMs = Date.now() - t0;
    for (const s of sockets) {
      s.removeAllListeners('error');
      s.on('error', () => clientErrors++);
    }
    // One timer drives every heartbeat: a byte from each connection per period, echoed by the server.
    const beat = Buffer.from('h');
    heartbeat = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write(beat);
    }, HEARTBEAT_MS);
    for (const s of sockets) s.write(beat);
    await until(() => echoed.every((e) => e === 1), `every one of ${N} connections to get its heartbeat echoed`, 15_000);
    // A second round, so that every connection has both sent and received since being held.
    echoed.fill(0);
    await until(() => echoed.every((e) => e === 1), 'a second heartbeat round', 15_000);
    const held = await ask(child);
    assert.is(held.clients, N, 'the server holds every connection');
    assert.is(held.errors, 0, `no error or drop on the server: ${JSON.stringify(held.faults)}`);
    assert.is(clientErrors, 0, 'no error on the client side');
    assert.ok(sockets.every((s) => !s.destroyed));
    const rssPer = (held.rss - base.rss) / N;
    const heapPer = (held.heapUsed - base.heapUsed) / N;
    const report = `C10K: ${N} connections in ${connectMs} ms; per connection: RSS ${(rssPer / 1024).toFixed(2)} KiB, heap ${(heapPer / 1024).toFixed(2)} KiB (server process after GC)`;
    if (process.env['NETLOOP_C10K_VERBOSE'] !== undefined) process.stdout.write(`\n${report}\n`);
    // Generous bounds (a bare net socket costs ~3.3 KB RSS, ~0.8 KB heap): they catch a per-connection buffer, not noise.
    assert.ok(heapPer < 4 * 1024, report);
    assert.ok(rssPer < 24 * 1024, report);
  } finally {
    if (heartbeat !== undefined) clearInterval(heartbeat);
    for (const s of sockets) {
      s.on('error', () => undefined);
      if (!s.destroyed) s.resetAndDestroy();
    }
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send('exit');
      await withTimeout(exited, 10_000, 'the server process to exit').catch(() => child.kill('SIGKILL'));
    }
  }
});

test.run();
