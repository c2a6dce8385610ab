/**
 * The rooms scenario: cross-process deliveries per second of the
 * {@link RoomsAdapter} beside a hand-written Redis pub/sub relay, on the same
 * redis-server, with the same receiving server, in the same run:
 *
 * ```
 *   this process (publisher)                redis-server             receiver child (one per side)
 *     netloop:  rooms.broadcast(bytes,  ──▶ PUBLISH ──▶ SUBSCRIBE ──▶ RoomsAdapter ─▶ client.write × C
 *               { rooms: 'r' })                                       (every client joined room 'r')
 *     relay:    client.publish(ch, bytes) ─▶ PUBLISH ─▶ SUBSCRIBE ──▶ listener ─▶ client.write × C
 *                                                                     (a hand-written loop over the clients)
 *   both publishers subscribe too (every process of either design does), so each message comes back here once
 *     C sockets of this process ◀──────────────────────────────────── the receiver's netloop Server
 * ```
 *
 * Each run publishes M messages of `BYTES` bytes as fast as the publisher
 * takes them and stops the clock when every one of the C clients has read
 * all M; deliveries per second are M × C over that time. Both sides publish
 * from this process and deliver through a netloop `Server` in a child, so
 * the ratio is the adapter's own cost: its envelope, its room lookup, its
 * publish queue and sequence numbers. The publishing adapter's queue is
 * sized to hold a run's burst (`maxQueuedMessages`), as the relay's
 * node-redis command queue is unbounded. The two sides take turns (A B, B A,
 * ...); medians are reported.
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
import { announceListening, isMain, parseFlags, runChildMain, siblingScript, startServer, stringFlag } from './processes.js';
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
const SIZES = { quick: { messages: 5_000, runs: 3 }, full: { messages: 20_000, runs: 7 } } as const;
const ROOMS_PREFIX = 'bench:rooms:';
const RELAY_CHANNEL = 'bench:relay';
const ROOM = 'r';

type Side = 'netloop' | 'relay';

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
  if (side === 'netloop') {
    const rooms = new RoomsAdapter({ server, redis: pub as unknown as PubSubClientLike, prefix: ROOMS_PREFIX });
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
  announceListening(server.port);
}

/** C sockets connected to `port`, each counting the bytes it reads. */
async function connectClients(port: number): Promise<{ sockets: net.Socket[]; received: Uint32Array }> {
  const received = new Uint32Array(CLIENTS);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    s.on('data', (d: Buffer) => {
      received[i]! += d.length;
    });
    sockets.push(s);
  }
  return { sockets, received };
}

/** One run: M messages published, the time until every client read them all; deliveries per second. */
async function measureOnce(publish: (bytes: Buffer) => unknown, received: Uint32Array, messages: number): Promise<number> {
  received.fill(0);
  const want = messages * BYTES;
  const bytes = Buffer.alloc(BYTES, 0x61);
  const done = new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const check = (): void => {
      if (received.every((n) => n >= want)) resolve();
      else if (Date.now() > deadline) reject(new Error(`rooms bench: clients read ${received.join(',')} of ${want} bytes`));
      else setImmediate(check);
    };
    check();
  });
  const started = performance.now();
  // In slices, so the sockets' reads interleave with the publishing as they would in a server.
  for (let i = 0; i < messages; i++) {
    publish(bytes);
    if (i % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  await done;
  return (messages * CLIENTS) / ((performance.now() - started) / 1000);
}

/** Publishes single messages until every client has read one (the receiver has accepted and placed them all). */
async function warmUp(publish: (bytes: Buffer) => unknown, received: Uint32Array): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!received.every((n) => n > 0)) {
    if (Date.now() > deadline) throw new Error(`rooms bench: clients read ${received.join(',')} bytes while warming up`);
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
    const receivers = { netloop: await start('netloop'), relay: await start('relay') };
    children.push(receivers.netloop, receivers.relay);
    // The publishing side: an adapter (over a server with no clients of its own) beside a plain client.
    const loop = new EventLoop();
    const own = await new Server(loop, { port: 0 }).listen();
    closers.push(() => loop.close());
    const pub = await redisClient(redis.url);
    closers.push(() => pub.close());
    // A queue that holds a whole run's burst (the relay's node-redis queue has no bound at all); a drop fails the run.
    const rooms = new RoomsAdapter({ server: own, redis: pub as unknown as PubSubClientLike, prefix: ROOMS_PREFIX, maxQueuedMessages: 2 * size.messages });
    closers.push(() => rooms.close());
    rooms.on('dropped', (d) => options.progress(`rooms: ${d.messages} dropped (${d.reason})`));
    await rooms.ready();
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
      relay: (bytes) => pub.publish(RELAY_CHANNEL, bytes),
    };
    const clients = { netloop: await connectClients(receivers.netloop.port), relay: await connectClients(receivers.relay.port) };
    for (const c of Object.values(clients)) closers.push(() => c.sockets.forEach((s) => s.destroy()));
    // Every client joined (its connection accepted) before the clock starts: one message at a time until all read one.
    for (const side of ['netloop', 'relay'] as const) await warmUp(publishers[side], clients[side].received);
    const runs: Record<Side, number[]> = { netloop: [], relay: [] };
    for (let i = 0; i < size.runs; i++) {
      for (const side of i % 2 === 0 ? (['netloop', 'relay'] as const) : (['relay', 'netloop'] as const)) {
        const v = await measureOnce(publishers[side], clients[side].received, size.messages);
        runs[side].push(v);
        options.progress(`rooms: run ${i + 1}/${size.runs} ${side}: ${Math.round(v)} deliveries/s`);
      }
    }
    return [
      measurement({
        scenario: 'rooms',
        params: { clients: CLIENTS, bytes: BYTES, messages: size.messages },
        metric: 'cross-process deliveries',
        unit: 'deliveries/s',
        baselineName: 'hand-written Redis pub/sub relay',
        higherIsBetter: true,
        runs: { netloop: runs.netloop, baseline: runs.relay },
        target: '>= 0.8x',
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
  description: `RoomsAdapter cross-process deliveries/s (${CLIENTS} clients in one room, ${BYTES}-byte messages) vs a hand-written Redis pub/sub relay into the same server, same Redis, same run`,
  run,
};

if (isMain(import.meta.url)) {
  if (process.argv.includes('--serve')) runChildMain(serve);
  else {
    const { runStandalone } = await import('./run.js');
    await runStandalone(scenario);
  }
}
