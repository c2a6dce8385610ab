/**
 * Soak: for a bounded time, 1,000 client slots connect, send, and disconnect
 * at random (some cleanly with FIN, some with a reset, some by idling into
 * the idle timeout), against one server with sessions bound to it.
 * Afterwards the server's clients, sessions, timers, open file descriptors
 * and heap (after a forced GC) return to their baseline.
 *
 * NETLOOP_SOAK_MS sets the duration (default 10,000 ms; minutes locally);
 * NETLOOP_SOAK_SEED the seed of the PRNG behind every random choice (printed
 * on failure, so a run replays). New connections are paced (at most
 * NEW_PER_SECOND) so that sockets in TIME_WAIT never exhaust the ephemeral
 * port range, however long the run.
 */
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { Client } from '../../lib/reactor/client.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { bindSessions } from '../../lib/binding/session-binding.js';
import { until } from '../helpers/net.js';
import { Server } from '../../lib/reactor/server.js';

const SOAK_MS = Number(process.env['NETLOOP_SOAK_MS'] ?? 10_000);
const SEED = Number(process.env['NETLOOP_SOAK_SEED'] ?? 20_240_601) >>> 0 || 1;
const SLOTS = 1_000;
const NEW_PER_SECOND = 400;
/** Heap growth tolerated after GC (allocator slack, JIT code, pools). */
const HEAP_TOLERANCE = 8 * 1024 * 1024;

/** xorshift32: a seeded PRNG, so a failing run replays from NETLOOP_SOAK_SEED. */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** A forced full GC: global.gc when exposed, else the flag set at run time and gc fetched from a fresh context. */
function gcNow(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g();
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    gcNow();
  }
  return process.memoryUsage().heapUsed;
}

test(`soak: ${SLOTS} clients connect, send and disconnect at random for ${SOAK_MS} ms; everything returns to baseline`, async () => {
  const rand = prng(SEED);
  const loop = new EventLoop();
  const registry = new SessionRegistry({ clock: loop.clock, ttlMs: 60_000, resumeWindowMs: 0, autoAudit: false });
  const server = await new Server(loop, { idleTimeoutMs: 1_000, maxConnections: SLOTS + 100, backlog: 1024 }).listen();
  const sessions = bindSessions(server, registry, { handshakeTimeoutMs: 0 });
  server.on('data', (c: Client, chunk: Buffer) => {
    if (c.closing || c.closed) return;
    // A line 'L' logs in (sessions), anything else is echoed.
    if (chunk[0] === 0x4c && sessions.sessionOf(c) === undefined) {
      sessions.login(c, { userId: `u${c.id % 50}` }).catch(() => undefined);
    } else c.write(chunk);
  });
  const counts = { connections: 0, fin: 0, reset: 0, idle: 0, bytes: 0, errors: 0 };
  const reasons = new Map<string, number>();
  server.on('close', (_c: Client, reason: string) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1));

  const baseline = async (): Promise<{ fds: number; heap: number; timers: number }> => ({
    fds: openFds(),
    heap: await settledHeap(),
    timers: loop.stats().timers,
  });

  // Warm up every code path once (lazy module state, JIT, pools) before the baseline.
  let tokens = 0;
  let stopAt = 0;
  const slot = async (): Promise<void> => {
    while (Date.now() < stopAt) {
      while (tokens <= 0) {
        if (Date.now() >= stopAt) return;
        await new Promise<void>((resolve) => setTimeout(resolve, 5 + Math.floor(rand() * 20)));
      }
      tokens--;
      counts.connections++;
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: server.port });
        let sends = 1 + Math.floor(rand() * 5);
        const ending = rand();
        let done = false;
        const finish = (): void => {
          if (done) return;
          done = true;
          resolve();
        };
        s.on('error', () => {
          counts.errors++;
        });
        s.on('close', finish);
        s.on('data', (d: Buffer) => {
          counts.bytes += d.length;
        });
        const step = (): void => {
          if (s.destroyed) return finish();
          if (sends-- > 0) {
            const size = 1 + Math.floor(rand() * (rand() < 0.1 ? 64 * 1024 : 512));
            s.write(rand() < 0.3 ? Buffer.from('L') : Buffer.alloc(size, 0x61));
            setTimeout(step, Math.floor(rand() * 200));
            return;
          }
          if (ending < 0.45) {
            counts.fin++;
            s.end();
          } else if (ending < 0.9) {
            counts.reset++;
            s.resetAndDestroy();
          } else {
            // Go silent: the server's idle timeout closes it (then the peer sees FIN).
            counts.idle++;
            s.once('end', () => s.destroy());
          }
        };
        s.once('connect', step);
      });
    }
  };
  const pacer = setInterval(() => {
    tokens = Math.min(tokens + NEW_PER_SECOND / 20, NEW_PER_SECOND / 4);
  }, 50);

  const drain = async (): Promise<void> => {
    await until(() => server.clientCount === 0, 'every client to close', 10_000);
    await until(() => sessions.stats().bound === 0, 'every session to be unbound', 5_000);
  };

  try {
    stopAt = Date.now() + 500;
    tokens = 50;
    await Promise.all(Array.from({ length: 50 }, slot));
    await drain();
    const base = await baseline();
    const regBase = registry.localSizes();

    stopAt = Date.now() + SOAK_MS;
    // Slots start staggered over the first second.
    await Promise.all(
      Array.from({ length: SLOTS }, (_, i) => new Promise<void>((resolve) => setTimeout(resolve, (i * 1000) / SLOTS)).then(slot)),
    );
    await drain();
    const after = await baseline();
    const regAfter = registry.localSizes();
    const info = `seed ${SEED}; ${JSON.stringify(counts)}; ${JSON.stringify(Object.fromEntries(reasons))}`;
    assert.ok(counts.connections >= SLOTS, `at least ${SLOTS} connections (${info})`);
    assert.ok(counts.fin > 0 && counts.reset > 0 && counts.idle > 0, `every way of leaving happened (${info})`);
    assert.is(server.clientCount, 0, info);
    assert.is(loop.stats().clients, 0, info);
    assert.is(after.timers, base.timers, `timers back to baseline (${info})`);
    assert.equal(regAfter, regBase, `sessions back to baseline (${info})`);
    assert.ok(after.fds <= base.fds, `file descriptors back to baseline: ${after.fds} vs ${base.fds} (${info})`);
    assert.ok(
      after.heap <= base.heap + HEAP_TOLERANCE,
      `heap back to baseline after GC: ${(after.heap / 1e6).toFixed(1)} MB vs ${(base.heap / 1e6).toFixed(1)} MB (${info})`,
    );
    if (process.env['NETLOOP_SOAK_VERBOSE'] !== undefined) {
      process.stdout.write(`\n${info}; heap ${(base.heap / 1e6).toFixed(1)} -> ${(after.heap / 1e6).toFixed(1)} MB; fds ${base.fds} -> ${after.fds}\n`);
    }
  } finally {
    clearInterval(pacer);
    stopAt = 0;
    await sessions.close();
    await loop.close({ flushTimeoutMs: 1_000 });
    await registry.close();
  }
});

test.run();
