/**
 * Broadcast fan-out: one chat server, N connected clients (1,000; quick:
 * 200), one of them a sender whose 100-byte messages are broadcast to all;
 * deliveries per second. netloop's chat server (`examples/chat/chat-server.ts`,
 * its messages of each loop turn concatenated and sent with
 * `server.broadcast`, the reactor's own fan-out) beside two bare `node:net`
 * servers measured in the same run:
 *
 * - `bare-each`: for each message, `socket.write(ack)` on each socket;
 * - `bare-batched`: the ACKs of one read concatenated, one `socket.write` per socket.
 *
 * Each server also reports its worst event-loop stall (`monitorEventLoopDelay`)
 * during the measurement. Then, for netloop, one client stops reading for
 * 10 s (quick: 2 s): the others' rate while it is stalled, beside their rate
 * before; the server's RSS growth beside its hard output limit; and whether
 * any client was dropped (the stalled one is held: its queue stays under the
 * hard limit, and the soft limit's time is longer than the stall).
 *
 * ```
 *   parent (this scenario)
 *     ├─ child: node dist/bench/fanout.js --serve netloop|bare-each|bare-batched   ("listening <port>";
 *     │         stdin "reset" / "stats" → {"stallMaxMs", "rss", ...})
 *     └─ child: node dist/bench/fanout.js --load --port P --clients N --seconds T [--stall-seconds S]
 *               prints {"phase":"ready"} once connected and warm, then the result JSON
 * ```
 *
 * The sender keeps at most {@link WINDOW} messages in flight, counted on its
 * own copies of the broadcast, so a server is never asked for more than it
 * delivers and a stalled client does not slow the sender.
 *
 * Standalone: `node dist/bench/fanout.js [--quick]` prints the table.
 *
 * @module
 */

import * as net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import {
  announceListening,
  emitJson,
  intFlag,
  isMain,
  onControl,
  parseFlags,
  runChildMain,
  siblingScript,
  spawnChild,
  startServer,
  stringFlag,
} from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';
import { LtvDecoder } from '../lib/codec/ltv-decoder.js';
import { createChatProtocol } from '../examples/chat/protocol.js';

/** The three servers compared. */
export const FANOUT_IMPLS = ['netloop', 'bare-batched', 'bare-each'] as const;
/** One of {@link FANOUT_IMPLS}. */
export type FanoutImpl = (typeof FANOUT_IMPLS)[number];

/** Content bytes of one chat message. */
export const MESSAGE_BYTES = 100;
/** Size of one ChatACK frame on the wire: header 4, string 2 + content, Id 8. */
export const ACK_FRAME_BYTES = 4 + 2 + MESSAGE_BYTES + 8;
/** Messages the sender keeps in flight (sent, its own copy not yet back). */
export const WINDOW = 2048;
/** Messages per sender write. */
const BURST = 32;
/** The resolution of a resident set size: the page (4 KiB on the platforms this runs on). */
const RSS_PAGE_BYTES = 4096;
/** The netloop server's output limits in this scenario: a hard limit well above a burst, a soft one held for longer than the stall. */
export const FANOUT_LIMITS = { maxOutputBytes: 64 * 1024 * 1024, softOutputLimit: { bytes: 16 * 1024 * 1024, forMs: 30_000 } } as const;

/** The length of a run. */
export function fanoutPlan(quick: boolean): { clients: number; seconds: number; stallSeconds: number; runs: number } {
  return quick ? { clients: 200, seconds: 1, stallSeconds: 1, runs: 1 } : { clients: 1_000, seconds: 3, stallSeconds: 10, runs: 3 };
}

// ─── servers ──────────────────────────────────────────────────────────────────

/** What a server child reports on "stats". */
interface ServerStats {
  stallMaxMs: number;
  rss: number;
  heapUsed: number;
  closes: Record<string, number>;
}

function ackOf(value: Buffer, start: number, end: number, id: Buffer, ackType: number): Buffer {
  const n = end - start;
  const frame = Buffer.allocUnsafe(4 + n + 8);
  frame.writeUInt16LE(n + 10, 0);
  frame.writeUInt16LE(ackType, 2);
  value.copy(frame, 4, start, end);
  id.copy(frame, 4 + n);
  return frame;
}

/** A bare node:net chat server: the obvious loops, no limits. */
async function startBare(batched: boolean, closes: Record<string, number>): Promise<number> {
  const p = createChatProtocol();
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    const id = Buffer.alloc(8);
    id.writeBigInt64LE(BigInt(nextId++));
    let acks: Buffer[] = [];
    const decoder = new LtvDecoder({
      layout: p.layout,
      onRawFrame: (type, source, start, end) => {
        if (type !== p.ChatREQ.id) return;
        const ack = ackOf(source, start, end, id, p.ChatACK.id);
        if (batched) acks.push(ack);
        else for (const s of sockets) s.write(ack);
      },
    });
    socket.on('data', (chunk: Buffer) => {
      decoder.feed(chunk);
      if (batched && acks.length > 0) {
        const buf = acks.length === 1 ? acks[0]! : Buffer.concat(acks);
        acks = [];
        for (const s of sockets) s.write(buf);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      closes['peer-closed'] = (closes['peer-closed'] ?? 0) + 1;
    });
  });
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

async function serve(impl: FanoutImpl): Promise<void> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  // The histogram records a stall only once the loop runs its timers again; a
  // stall still under way when "stats" is read is caught by this tick's gap.
  let lastTick = performance.now();
  let maxGap = 0;
  setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - lastTick - 10);
    lastTick = now;
  }, 10);
  const closes: Record<string, number> = {};
  let port: number;
  let netloopStats: (() => Record<string, number>) | null = null;
  if (impl === 'netloop') {
    const { ChatServer } = await import('../examples/chat/chat-server.js');
    // The frames of one loop turn leave together: one broadcast (one append,
    // so one socket write, per client) of their concatenation, queued by
    // reference to every open client.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let queued = false;
    const flush = (): void => {
      queued = false;
      const buf = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      chat.server.broadcast(buf);
    };
    const chat = await ChatServer.start({
      host: '127.0.0.1',
      port: 0,
      ...FANOUT_LIMITS,
      log: null,
      publish: (frame) => {
        batch.push(frame);
        batchBytes += frame.length;
        if (!queued) {
          queued = true;
          chat.loop.queueInLoop(flush);
        }
      },
    });
    port = chat.port;
    netloopStats = () => chat.stats().closes as Record<string, number>;
  } else {
    port = await startBare(impl === 'bare-batched', closes);
  }
  announceListening(port);
  onControl((line) => {
    if (line === 'reset') {
      h.reset();
      maxGap = 0;
      emitJson({ reset: true });
    } else if (line === 'stats') {
      const mem = process.memoryUsage();
      const stats: ServerStats = {
        stallMaxMs: Math.max(h.max / 1e6, maxGap, performance.now() - lastTick - 10, 0),
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        closes: netloopStats !== null ? netloopStats() : { ...closes },
      };
      emitJson(stats);
    }
  });
}

// ─── load generator ───────────────────────────────────────────────────────────

/** What the load child reports. */
interface LoadResult {
  /** Deliveries per second to all clients during the measurement. */
  rate: number;
  /** Per-client rate of the clients other than the one stalled later, before the stall. */
  othersBefore: number;
  /** Their per-client rate while one client was stalled (0 without a stall phase). */
  othersDuring: number;
  /** Clients the server closed. */
  dropped: number;
  /** True when the stalled client was closed by the server. */
  stalledDropped: boolean;
}

async function load(port: number, clients: number, seconds: number, stallSeconds: number): Promise<void> {
  const p = createChatProtocol();
  const received = new Float64Array(clients);
  const sockets: net.Socket[] = [];
  let dropped = 0;
  const closedSet = new Set<number>();
  for (let i = 0; i < clients; i++) {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => {
        sock.off('error', reject);
        resolve(sock);
      });
      sock.once('error', reject);
    });
    const idx = i;
    s.on('data', (chunk: Buffer) => {
      received[idx]! += chunk.length;
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (!stopping) {
        dropped++;
        closedSet.add(idx);
      }
    });
    sockets.push(s);
  }
  let stopping = false;
  const sender = sockets[0]!;
  const burst = Buffer.concat(Array.from({ length: BURST }, () => p.frame(p.ChatREQ, { content: 'm'.repeat(MESSAGE_BYTES) })));
  let sent = 0;
  const pump = (): void => {
    while (!stopping && sent - received[0]! / ACK_FRAME_BYTES < WINDOW) {
      sender.write(burst);
      sent += BURST;
    }
  };
  sender.on('data', pump);
  pump();
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const total = (except = -1): number => {
    let t = 0;
    for (let i = 0; i < clients; i++) if (i !== except) t += received[i]!;
    return t;
  };
  await sleep(500);
  emitJson({ phase: 'ready' });
  const stalled = clients - 1;
  const t0 = performance.now();
  const b0 = total();
  const o0 = total(stalled);
  await sleep(seconds * 1000);
  const t1 = performance.now();
  const rate = (total() - b0) / ACK_FRAME_BYTES / ((t1 - t0) / 1000);
  const othersBefore = (total(stalled) - o0) / ACK_FRAME_BYTES / ((t1 - t0) / 1000) / (clients - 1);
  let othersDuring = 0;
  if (stallSeconds > 0) {
    sockets[stalled]!.pause();
    const o1 = total(stalled);
    const t2 = performance.now();
    await sleep(stallSeconds * 1000);
    othersDuring = (total(stalled) - o1) / ACK_FRAME_BYTES / ((performance.now() - t2) / 1000) / (clients - 1);
    emitJson({ phase: 'stalled' });
    sockets[stalled]!.resume();
    await sleep(500);
  }
  stopping = true;
  const result: LoadResult = { rate, othersBefore, othersDuring, dropped, stalledDropped: closedSet.has(stalled) };
  emitJson(result);
  for (const s of sockets) s.destroy();
  process.exit(0);
}

// ─── scenario ─────────────────────────────────────────────────────────────────

interface OneRun {
  load: LoadResult;
  server: ServerStats;
  /** RSS growth of the server during the stall, in bytes (netloop only). */
  rssGrowth: number;
}

/**
 * One measurement: a fresh server child, the load child against it.
 * `serverScript` is the script that serves (by default this one; `ab.ts`
 * passes another build's copy to compare two versions of netloop).
 */
export async function measureOnce(
  impl: FanoutImpl,
  clients: number,
  seconds: number,
  stallSeconds: number,
  serverScript = siblingScript(import.meta.url, 'fanout.js'),
): Promise<OneRun> {
  const script = siblingScript(import.meta.url, 'fanout.js');
  const limit = (seconds + stallSeconds) * 1000 + 120_000;
  const server = await startServer({ script: serverScript, args: ['--serve', impl], timeoutMs: limit, name: `server:${impl}` });
  try {
    const loadChild = spawnChild({
      script,
      args: ['--load', '--port', String(server.port), '--clients', String(clients), '--seconds', String(seconds), '--stall-seconds', String(stallSeconds)],
      timeoutMs: limit,
      name: `load:${impl}`,
    });
    try {
      await loadChild.waitForLine(/"phase":"ready"/, 60_000, 'ready');
      server.handle.send('reset');
      await server.handle.nextJson(5_000, 'the reset reply');
      let rssBefore = 0;
      let rssGrowth = 0;
      let serverStats: ServerStats | null = null;
      if (stallSeconds > 0) {
        // The measurement phase ends as the stall begins: sample the server then, and again as the stall ends.
        await new Promise((r) => setTimeout(r, seconds * 1000));
        server.handle.send('stats');
        const s0 = await server.handle.nextJson<ServerStats>(5_000);
        rssBefore = s0.rss;
        serverStats = s0;
        await loadChild.waitForLine(/"phase":"stalled"/, stallSeconds * 1000 + 30_000, 'the end of the stall');
        server.handle.send('stats');
        const s1 = await server.handle.nextJson<ServerStats>(5_000);
        // RSS moves by whole pages: a growth under one page (none at all, when the output
        // buffers' slabs are written again) counts as one, so that the ratio to the limit stays
        // a finite figure rather than a division by zero.
        rssGrowth = Math.max(RSS_PAGE_BYTES, s1.rss - rssBefore);
      }
      const result = await loadChild.result<LoadResult>();
      server.handle.send('stats');
      const final = await server.handle.nextJson<ServerStats>(5_000);
      if (!(result.rate > 0)) throw new NetloopError(ErrorCode.BENCH_FAILED, `load:${impl} reported no deliveries`, { details: { impl } });
      return { load: result, server: serverStats ?? final, rssGrowth };
    } finally {
      await loadChild.kill();
    }
  } finally {
    await server.handle.kill();
  }
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const { clients, seconds, stallSeconds, runs } = fanoutPlan(options.quick);
  const rates: Record<FanoutImpl, number[]> = { netloop: [], 'bare-batched': [], 'bare-each': [] };
  const stalls: Record<FanoutImpl, number[]> = { netloop: [], 'bare-batched': [], 'bare-each': [] };
  const during: number[] = [];
  const before: number[] = [];
  const growth: number[] = [];
  let dropped = 0;
  for (let i = 0; i < runs; i++) {
    const order: FanoutImpl[] = i % 2 === 0 ? ['bare-batched', 'netloop', 'bare-each'] : ['netloop', 'bare-batched', 'bare-each'];
    for (const impl of order) {
      options.progress(`${impl}, ${clients} clients, run ${i + 1}/${runs}`);
      const r = await measureOnce(impl, clients, seconds, impl === 'netloop' ? stallSeconds : 0);
      rates[impl].push(r.load.rate);
      stalls[impl].push(r.server.stallMaxMs);
      if (impl === 'netloop') {
        during.push(r.load.othersDuring);
        before.push(r.load.othersBefore);
        growth.push(r.rssGrowth / (1024 * 1024));
        dropped += r.load.dropped;
      }
    }
  }
  const params = { clients, bytes: MESSAGE_BYTES, seconds };
  const common = { scenario: 'fanout', higherIsBetter: true } as const;
  return [
    measurement({ ...common, params, metric: 'deliveries', unit: 'msg/s', baselineName: 'bare-batched', runs: { netloop: rates.netloop, baseline: rates['bare-batched'] }, target: '>= 0.8x' }),
    measurement({ ...common, params, metric: 'deliveries', unit: 'msg/s', baselineName: 'bare-each', runs: { netloop: rates.netloop, baseline: rates['bare-each'] } }),
    measurement({ ...common, higherIsBetter: false, params, metric: 'stall_max', unit: 'ms', baselineName: 'bare-batched', runs: { netloop: stalls.netloop, baseline: stalls['bare-batched'] }, target: 'netloop <= 50 ms' }),
    measurement({ ...common, higherIsBetter: false, params, metric: 'stall_max', unit: 'ms', baselineName: 'bare-each', runs: { netloop: stalls.netloop, baseline: stalls['bare-each'] } }),
    measurement({
      ...common,
      params: { ...params, stallSeconds, droppedClients: dropped },
      metric: 'others_rate_one_stalled',
      unit: 'msg/s/client',
      baselineName: 'netloop, before the stall',
      runs: { netloop: during, baseline: before },
      target: '>= 0.9x',
    }),
    measurement({
      ...common,
      higherIsBetter: false,
      params: { ...params, stallSeconds },
      metric: 'rss_growth_one_stalled',
      unit: 'MiB',
      baselineName: 'hard output limit',
      runs: { netloop: growth, baseline: [FANOUT_LIMITS.maxOutputBytes / (1024 * 1024)] },
      target: '>= 1x (within the limit)',
    }),
  ];
}

/** The scenario the suite runner calls. */
export const scenario: Scenario = {
  name: 'fanout',
  description: 'chat broadcast of 100-byte messages to 1,000 clients (quick: 200): netloop vs bare node:net (per message, per read); one stalled client',
  run,
};

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.has('serve')) {
    runChildMain(async () => {
      const impl = stringFlag(flags, 'serve', 'netloop');
      if (!(FANOUT_IMPLS as readonly string[]).includes(impl)) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `--serve must be one of ${FANOUT_IMPLS.join(', ')}, got ${impl}`, { details: { impl } });
      }
      await serve(impl as FanoutImpl);
    });
  } else if (flags.has('load')) {
    runChildMain(() =>
      load(intFlag(flags, 'port', 0), intFlag(flags, 'clients', 200), Number(stringFlag(flags, 'seconds', '1')), Number(stringFlag(flags, 'stall-seconds', '0'))),
    );
  } else {
    const { runStandalone } = await import('./run.js');
    await runStandalone(scenario);
  }
}
