/**
 * The rooms scenario: cross-process deliveries per second of the
 * {@link RoomsAdapter} beside a hand-written Redis pub/sub relay, on the same
 * redis-server, with the same receiving server, in the same run:
 *
 * ```
 *   this process (publisher)                 redis-server            receiver child (one per side)
 *     netloop:   rooms.broadcast(bytes,  ──▶ PUBLISH ──▶ SUBSCRIBE ──▶ RoomsAdapter ─▶ client.write × C
 *                { rooms: 'r' })   (the broadcasts of one slice: one batch)   (every client joined room 'r')
 *     unbatched: the same, maxBatchBytes 0 ─▶ one PUBLISH per broadcast ─▶ RoomsAdapter ─▶ client.write × C
 *     relay:     client.publish(ch, bytes) ─▶ PUBLISH ─▶ SUBSCRIBE ──▶ listener ─▶ client.write × C
 *                                                                      (a hand-written loop over the clients)
 *   every publisher subscribes too (every process of either design does), so each message comes back here once
 *     C sockets of this process ◀──────────────────────────────────── the receiver's netloop Server
 * ```
 *
 * Each repetition publishes `BYTES`-byte messages for a fixed time, in
 * slices of `SLICE` (one synchronous run each), as fast as the publisher
 * takes them but never more than `WINDOW` messages ahead of the slowest
 * client, and stops the clock when every one of the C clients has read all
 * of them; deliveries per second are messages × C over that time. Every
 * side publishes from this process and delivers through a netloop `Server`
 * in a child, so the ratios are the adapter's own cost: its envelope, its
 * room lookup, its publish queue and sequence numbers, and, by default, what
 * its batches save. The unbatched side is the adapter for a server whose
 * broadcasts come one per callback. Each side first runs one repetition
 * that is not counted (the receiving child's code is compiled during it);
 * then the sides take turns (A B C, C B A, ...), and medians are reported.
 *
 * Run alone: `node dist/bench/rooms.js [--quick]`. Needs `redis-server` on
 * the PATH.
 *
 * @module
 */

import * as net from 'node:net';
import { createClient } from 'redis';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { announceListening, isMain, onControl, parseFlags, runChildMain, siblingScript, startServer, stringFlag } from './processes.js';
import type { ServerChild } from './processes.js';
import { EventLoop } from '../lib/reactor/event-loop.js';
import { Server } from '../lib/reactor/server.js';
import type { Client } from '../lib/reactor/client.js';
import { RoomsAdapter } from '../lib/cluster/rooms-adapter.js';
import type { PubSubClientLike } from '../lib/cluster/rooms-adapter.js';
import { startRedisServer } from '../test/helpers/redis-server.js';

/** The bytes of one message. */
const BYTES = 64;
/** The receiving clients. */
const CLIENTS = 10;
/**
 * How long each side publishes in one repetition (then every client's reads
 * are awaited), in ms; one discarded repetition of `warmUpMs` per side first.
 */
const SIZES = { quick: { warmUpMs: 100, runMs: 150, runs: 3 }, full: { warmUpMs: 1_000, runMs: 1_500, runs: 7 } } as const;
/**
 * Messages published and not yet read by every client, at most: the
 * publisher waits for the slowest client beyond this, so the backlog in
 * Redis, in the publishers' queues and in the sockets stays bounded (far
 * below Redis's output-buffer limit for subscribers) however long a
 * repetition is, and both sides run under the same bound.
 */
const WINDOW = 4_096;
/** Messages published between two yields to the event loop (the clients read in between). */
const SLICE = 256;
/** A repetition that makes no progress for this long fails the run. */
const STALL_MS = 30_000;
const RELAY_CHANNEL = 'bench:relay';
const ROOM = 'r';

/**
 * The adapter with its defaults (the broadcasts of one slice travel as one
 * batch), the adapter publishing each broadcast alone (`maxBatchBytes: 0`,
 * as the relay does), and the relay. Each adapter side has its own prefix,
 * so neither publisher reads the other's broadcasts.
 */
const SIDES = ['netloop', 'unbatched', 'relay'] as const;
type Side = (typeof SIDES)[number];
const PREFIXES = { netloop: 'bench:rooms:', unbatched: 'bench:rooms1:' } as const;

async function redisClient(url: string): Promise<ReturnType<typeof createClient>> {
  const c = createClient({ url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** The receiver child: a netloop Server whose clients get what arrives from Redis, by the adapter or by hand. */
async function serve(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const url = stringFlag(flags, 'redis', '');
  const side = stringFlag(flags, 'serve', '') as Side;
  const loop = new EventLoop();
  const server = await new Server(loop, { port: 0, idleTimeoutMs: 0 }).listen();
  const pub = await redisClient(url);
  if (side !== 'relay') {
    // A receiving adapter reads batches and single broadcasts alike: its own options do not matter here.
    const rooms = new RoomsAdapter({ server, redis: pub as unknown as PubSubClientLike, prefix: PREFIXES[side] });
    await rooms.ready();
    server.on('connection', (c: Client) => rooms.join(c, ROOM));
  } else {
    // The hand-written relay: one subscription, every message written to every client.
    const clients = new Set<Client>();
    server.on('connection', (c: Client) => clients.add(c));
    server.on('close', (c: Client) => clients.delete(c));
    const sub = pub.duplicate();
    sub.on('error', () => undefined);
    await sub.connect();
    await sub.subscribe(
      RELAY_CHANNEL,
      (message: Buffer) => {
        for (const c of clients) c.write(message);
      },
      true,
    );
  }
  // The child ends when the parent closes its stdin or dies, so none outlives its run.
  onControl(() => undefined);
  announceListening(server.port);
}

/**
 * C sockets connected to one receiver, each counting the bytes it reads,
 * and a way to await the moment every one has read a given number of messages.
 *
 * ```
 *   read[i]   bytes socket i has read since reset()
 *   waiter    { messages, resolve } | null   checked on each read while set
 * ```
 */
class Readers {
  readonly sockets: net.Socket[] = [];
  readonly #read = new Float64Array(CLIENTS);
  #waiter: { bytes: number; resolve: () => void } | null = null;

  static async connect(port: number): Promise<Readers> {
    const r = new Readers();
    for (let i = 0; i < CLIENTS; i++) {
      const s = net.connect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      s.on('data', (d: Buffer) => {
        r.#read[i]! += d.length;
        const w = r.#waiter;
        if (w !== null && r.#slowest() >= w.bytes) {
          r.#waiter = null;
          w.resolve();
        }
      });
      r.sockets.push(s);
    }
    return r;
  }

  reset(): void {
    this.#read.fill(0);
  }

  /** Whole messages the slowest client has read. */
  slowestMessages(): number {
    return Math.floor(this.#slowest() / BYTES);
  }

  /** Resolves once every client has read `messages` messages; rejects when none arrives for {@link STALL_MS}. */
  async until(messages: number): Promise<void> {
    const bytes = messages * BYTES;
    if (this.#slowest() >= bytes) return;
    let timer: NodeJS.Timeout | undefined;
    let lastSeen = -1;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#waiter = { bytes, resolve };
        const watch = (): void => {
          const now = this.#total();
          if (now === lastSeen) {
            this.#waiter = null;
            reject(new Error(`rooms bench: clients read ${this.#read.join(',')} of ${bytes} bytes, and nothing for ${STALL_MS} ms`));
          } else {
            lastSeen = now;
            timer = setTimeout(watch, STALL_MS);
          }
        };
        watch();
      });
    } finally {
      clearTimeout(timer);
    }
  }

  #slowest(): number {
    let min = Infinity;
    for (let i = 0; i < CLIENTS; i++) if (this.#read[i]! < min) min = this.#read[i]!;
    return min;
  }

  #total(): number {
    let sum = 0;
    for (let i = 0; i < CLIENTS; i++) sum += this.#read[i]!;
    return sum;
  }
}

/**
 * One repetition: messages published for `durationMs`, never more than
 * {@link WINDOW} ahead of the slowest client, then the time until every
 * client has read them all; deliveries per second over that time.
 */
async function measureOnce(publish: (bytes: Buffer) => unknown, readers: Readers, durationMs: number): Promise<number> {
  readers.reset();
  const bytes = Buffer.alloc(BYTES, 0x61);
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < durationMs) {
    if (sent - readers.slowestMessages() > WINDOW - SLICE) {
      await readers.until(sent - WINDOW + SLICE);
      continue;
    }
    for (let i = 0; i < SLICE; i++) publish(bytes);
    sent += SLICE;
    // The sockets' reads interleave with the publishing, as they would in a server.
    await new Promise((r) => setImmediate(r));
  }
  await readers.until(sent);
  return (sent * CLIENTS) / ((performance.now() - started) / 1000);
}

/** Publishes single messages until every client has read one (the receiver has accepted and placed them all). */
async function awaitJoined(publish: (bytes: Buffer) => unknown, readers: Readers): Promise<void> {
  const deadline = Date.now() + 30_000;
  readers.reset();
  while (readers.slowestMessages() === 0) {
    if (Date.now() > deadline) throw new Error('rooms bench: not every client read a message while joining');
    publish(Buffer.alloc(BYTES, 0x62));
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const size = options.quick ? SIZES.quick : SIZES.full;
  const redis = await startRedisServer();
  const children: ServerChild[] = [];
  const closers: Array<() => unknown> = [];
  try {
    const script = siblingScript(import.meta.url, 'rooms.js');
    const start = (side: Side): Promise<ServerChild> =>
      startServer({ script, args: ['--serve', side, '--redis', redis.url], timeoutMs: 600_000, name: `rooms:${side}` });
    // Started together (each waits for its own subscription); every one started is stopped below, even when another fails.
    const started = await Promise.allSettled(SIDES.map(start));
    for (const r of started) if (r.status === 'fulfilled') children.push(r.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const receivers = Object.fromEntries(SIDES.map((side, i) => [side, (started[i] as PromiseFulfilledResult<ServerChild>).value])) as Record<Side, ServerChild>;
    // The publishing side: adapters (over a server with no clients of its own) beside a plain client.
    const loop = new EventLoop();
    const own = await new Server(loop, { port: 0 }).listen();
    closers.push(() => loop.close());
    const pub = await redisClient(redis.url);
    closers.push(() => pub.close());
    // The adapter's default limits: the window keeps its queue and its PUBLISHes in flight far below them. A drop fails the run.
    let dropped = 0;
    const adapter = async (prefix: string, maxBatchBytes?: number): Promise<RoomsAdapter> => {
      const rooms = new RoomsAdapter({ server: own, redis: pub as unknown as PubSubClientLike, prefix, ...(maxBatchBytes === undefined ? {} : { maxBatchBytes }) });
      closers.push(() => rooms.close());
      rooms.on('dropped', (d) => {
        dropped += d.messages;
        options.progress(`rooms: ${d.messages} dropped (${d.reason})`);
      });
      await rooms.ready();
      return rooms;
    };
    const rooms = await adapter(PREFIXES.netloop);
    const unbatched = await adapter(PREFIXES.unbatched, 0);
    // The relay's publishing process subscribes too, as every process of a relay does (it has clients
    // of its own to deliver to; here none), just as the adapter's publishing process does.
    const relaySub = pub.duplicate();
    relaySub.on('error', () => undefined);
    await relaySub.connect();
    closers.push(() => relaySub.close());
    const relayClients = new Set<Client>();
    await relaySub.subscribe(
      RELAY_CHANNEL,
      (message: Buffer) => {
        for (const c of relayClients) c.write(message);
      },
      true,
    );
    const publishers: Record<Side, (bytes: Buffer) => unknown> = {
      netloop: (bytes) => rooms.broadcast(bytes, { rooms: ROOM }),
      unbatched: (bytes) => unbatched.broadcast(bytes, { rooms: ROOM }),
      relay: (bytes) => pub.publish(RELAY_CHANNEL, bytes),
    };
    const readers = {} as Record<Side, Readers>;
    for (const side of SIDES) {
      const r = (readers[side] = await Readers.connect(receivers[side].port));
      closers.push(() => r.sockets.forEach((s) => s.destroy()));
    }
    // Every client joined (its connection accepted) before the clock starts: one message at a time until all read one.
    for (const side of SIDES) await awaitJoined(publishers[side], readers[side]);
    // One discarded repetition per side: the first one of a process runs while its code is still being compiled.
    for (const side of SIDES) {
      const v = await measureOnce(publishers[side], readers[side], size.warmUpMs);
      options.progress(`rooms: warm-up ${side}: ${Math.round(v)} deliveries/s (not counted)`);
    }
    const runs: Record<Side, number[]> = { netloop: [], unbatched: [], relay: [] };
    for (let i = 0; i < size.runs; i++) {
      for (const side of i % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const v = await measureOnce(publishers[side], readers[side], size.runMs);
        runs[side].push(v);
        options.progress(`rooms: run ${i + 1}/${size.runs} ${side}: ${Math.round(v)} deliveries/s`);
      }
    }
    if (dropped > 0) throw new Error(`rooms bench: the adapters dropped ${dropped} broadcasts`);
    const params = { clients: CLIENTS, bytes: BYTES, seconds: size.runMs / 1000, window: WINDOW };
    return [
      measurement({
        scenario: 'rooms',
        params,
        metric: 'cross-process deliveries',
        unit: 'deliveries/s',
        baselineName: 'hand-written Redis pub/sub relay',
        higherIsBetter: true,
        runs: { netloop: runs.netloop, baseline: runs.relay },
        target: '>= 0.8x',
      }),
      measurement({
        scenario: 'rooms',
        params: { ...params, maxBatchBytes: 0 },
        metric: 'cross-process deliveries, one PUBLISH per broadcast',
        unit: 'deliveries/s',
        baselineName: 'hand-written Redis pub/sub relay',
        higherIsBetter: true,
        runs: { netloop: runs.unbatched, baseline: runs.relay },
      }),
    ];
  } finally {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    for (const c of children) await c.handle.kill();
    await redis.stop();
  }
}

/** The rooms scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'rooms',
  description: `RoomsAdapter cross-process deliveries/s (${CLIENTS} clients in one room, ${BYTES}-byte messages; batched by default, and one PUBLISH per broadcast) vs a hand-written Redis pub/sub relay into the same server, same Redis, same run`,
  run,
};

if (isMain(import.meta.url)) {
  if (process.argv.includes('--serve')) runChildMain(serve);
  else {
    const { runStandalone } = await import('./run.js');
    await runStandalone(scenario);
  }
}
