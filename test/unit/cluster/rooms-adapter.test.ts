/**
 * The rooms adapter in one process, over a real redis-server: two adapters
 * (two "processes", each with its own servers and process id) share a
 * prefix. Options are validated; a typed message is framed once per server
 * in each process (each server's own layout), raw bytes go as they are;
 * output limits apply to what the adapter delivers; the queue while Redis
 * is down is bounded by count, bytes and age, and what it drops is counted;
 * noise on the channel is counted and reported, never fatal; a session
 * binding answers for users; an adapter made from a URL closes its own
 * connections; bad calls are coded errors that publish nothing.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import { createClient } from 'redis';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { LtvDecoder } from '../../../lib/codec/ltv-decoder.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import { bindSessions } from '../../../lib/binding/session-binding.js';
import { RoomsAdapter, createRoomsAdapter } from '../../../lib/cluster/rooms-adapter.js';
import type { PubSubClientLike, RoomsAdapterOptions, RoomsDropInfo } from '../../../lib/cluster/rooms-adapter.js';
import { BATCH_ENTRY_OVERHEAD, TARGET_ROOM, batchHeaderSize, encodeBatch, encodeEnvelope, envelopeSize } from '../../../lib/cluster/envelope.js';
import { redisServerForTests } from '../../helpers/redis-server.js';
import { connectRaw, refusedPort, until } from '../../helpers/net.js';
import { throwsCode } from '../../helpers/ltv.js';

type Redis = ReturnType<typeof createClient>;

function registry(): MessageRegistry {
  const r = new MessageRegistry();
  r.register(7, 'Msg', 'json');
  return r;
}

/** The clients made by {@link redisClient}: the adapter never closes a client it is given, so each test's scope does. */
const madeClients = new Set<Redis>();

async function redisClient(url: string): Promise<Redis> {
  const c = createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 50 } });
  c.on('error', () => undefined);
  await c.connect();
  madeClients.add(c);
  return c;
}

/** A test's resources, released in reverse order. */
class Scope {
  readonly #undo: Array<() => unknown> = [];
  add<T>(value: T, undo: (value: T) => unknown): T {
    this.#undo.push(() => undo(value));
    return value;
  }
  async close(): Promise<void> {
    for (const u of this.#undo.reverse()) await Promise.resolve(u()).catch(() => undefined);
    // A client left open would reconnect forever to the stopped server and keep the process alive.
    for (const c of madeClients) if (c.isOpen) c.destroy();
    madeClients.clear();
  }
}

/** A server's accepted clients, in order, and sockets connected to it. */
async function accept(server: Server<Client> | FramedServer, n: number): Promise<{ clients: Client[]; sockets: net.Socket[] }> {
  const clients: Client[] = [];
  const on = (c: Client): void => {
    clients.push(c);
  };
  (server as Server<Client>).on('connection', on);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i++) sockets.push(await connectRaw(server.port));
  await until(() => clients.length === n, 'the clients');
  (server as Server<Client>).off('connection', on);
  return { clients, sockets };
}

/** Every byte a socket receives, and how many (a count: a poll need not join every chunk so far). */
function record(socket: net.Socket): { bytes: () => Buffer; length: () => number } {
  const chunks: Buffer[] = [];
  let length = 0;
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    length += c.length;
  });
  return { bytes: () => Buffer.concat(chunks), length: () => length };
}

/** An adapter over a Redis client of its own to `url`, closed with the scope. */
async function adapterOn(s: Scope, url: string, options: Omit<RoomsAdapterOptions, 'redis'>): Promise<RoomsAdapter> {
  return s.add(await createRoomsAdapter({ ...options, redis: await redisClient(url) }), (x) => x.close());
}

function prefix(): string {
  return `u${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;
}

test('options are validated: each bad one is NETLOOP_INVALID_OPTION, before anything connects', async () => {
  const loop = new EventLoop();
  const server = new Server(loop);
  const good: RoomsAdapterOptions = { server, redis: 'redis://127.0.0.1:1' };
  const bad: Array<Partial<Record<keyof RoomsAdapterOptions, unknown>>> = [
    { server: undefined },
    { server: [] },
    { server: {} },
    { redis: 'http://x' },
    { redis: 42 },
    { redis: {} },
    { prefix: 5 },
    { prefix: 'x'.repeat(300) },
    { processId: 'a b' },
    { processId: '' },
    { processId: 'x'.repeat(65) },
    { channels: 0 },
    { channels: 1.5 },
    { channels: 2000 },
    { sharded: 'yes' },
    { loopback: 1 },
    { maxQueuedMessages: -1 },
    { maxQueuedBytes: Number.NaN },
    { maxQueueAgeMs: Infinity },
    { maxInFlight: 0 },
    { maxBatchBytes: -1 },
    { maxBatchBytes: 2.5 },
    { maxMessageBytes: -1 },
    { maxRoomsPerClient: 0 },
    { maxNameBytes: 0 },
    { maxTargets: 0 },
    { maxOrigins: 0 },
    { users: {} },
    { clock: {} },
  ];
  for (const b of bad) {
    try {
      new RoomsAdapter({ ...good, ...b } as RoomsAdapterOptions);
      assert.unreachable(JSON.stringify(b));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), `${JSON.stringify(b)}: ${String(err)}`);
    }
  }
  throwsCode(() => new RoomsAdapter(null as unknown as RoomsAdapterOptions), ErrorCode.INVALID_OPTION);
  await loop.close();
});

test('a typed message is framed once per server, in each server\'s layout; a raw server gets raw broadcasts only; raw bytes go as they are', async () => {
  const redis = await redisServerForTests('rooms adapter, framing');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loopA = s.add(new EventLoop(), (l) => l.close());
    const loopB = s.add(new EventLoop(), (l) => l.close());
    const origin = await new FramedServer(loopA, { registry: registry() }).listen();
    const netloopFramed = await new FramedServer(loopB, { registry: registry() }).listen();
    const cellnetFramed = await new FramedServer(loopB, { registry: registry(), layout: 'cellnet' }).listen();
    const raw = await new Server(loopB).listen();
    const a = await adapterOn(s, redis.url, { server: origin, prefix: p });
    const b = await adapterOn(s, redis.url, { server: [netloopFramed, cellnetFramed, raw], prefix: p });
    const c1 = await accept(netloopFramed, 1);
    const c2 = await accept(cellnetFramed, 1);
    const c3 = await accept(raw, 1);
    const got = [c1, c2, c3].map((c) => record(c.sockets[0]!));
    for (const c of [c1, c2, c3]) b.join(c.clients[0]!, 'r');
    assert.is(a.broadcast({ type: 'Msg', payload: { hello: 'typed' } }, { rooms: 'r' }), 'published');
    const rawFrame = Buffer.from('raw bytes, as they are');
    assert.is(a.broadcast(rawFrame, { rooms: ['r'] }), 'published');
    await until(() => got[2]!.length() === rawFrame.length, 'the raw broadcast at the raw server');
    const value = Buffer.from(JSON.stringify({ hello: 'typed' }));
    const decode = (bytes: Buffer, layout: 'netloop' | 'cellnet'): Array<[number, string]> => {
      const frames: Array<[number, string]> = [];
      const d = new LtvDecoder({ layout, onFrame: (type, v) => frames.push([type, v.toString()]) });
      d.feed(bytes.subarray(0, bytes.length - rawFrame.length));
      return frames;
    };
    await until(() => got[0]!.length() > rawFrame.length && got[1]!.length() > rawFrame.length, 'both framed clients');
    assert.equal(decode(got[0]!.bytes(), 'netloop'), [[7, value.toString()]]);
    assert.equal(decode(got[1]!.bytes(), 'cellnet'), [[7, value.toString()]]);
    for (const g of got) assert.equal(g.bytes().subarray(-rawFrame.length), rawFrame);
    assert.equal(got[2]!.bytes(), rawFrame, 'the raw client got only the raw broadcast');
    assert.is(b.stats().deliveries, 5);
    for (const c of [c1, c2, c3]) c.sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('what the adapter delivers goes through each client\'s output limits: a client that stops reading is closed (output-limit) and leaves its rooms; the others get everything', async () => {
  const redis = await redisServerForTests('rooms adapter, output limits');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loopA = s.add(new EventLoop(), (l) => l.close());
    const loopB = s.add(new EventLoop(), (l) => l.close());
    const origin = await new Server(loopA).listen();
    const serverB = await new Server(loopB, { maxOutputBytes: 64 * 1024, softOutputLimit: null }).listen();
    const closes: CloseReason[] = [];
    serverB.on('close', (_c, reason) => closes.push(reason));
    const a = await adapterOn(s, redis.url, { server: origin, prefix: p });
    const b = await adapterOn(s, redis.url, { server: serverB, prefix: p });
    const { clients, sockets } = await accept(serverB, 2);
    sockets[1]!.pause();
    const fast = record(sockets[0]!);
    for (const c of clients) b.join(c, 'r');
    // In steps the reading client keeps up with (a burst through Redis arrives in one chunk), until the
    // stalled client's queue, once the kernel's buffers are full, passes its limit.
    const message = Buffer.alloc(4096, 0x61);
    let sent = 0;
    while (!closes.includes('output-limit') && sent < 20_000) {
      for (let i = 0; i < 8; i++) a.broadcast(message, { rooms: 'r' });
      sent += 8;
      await until(() => fast.length() === sent * 4096, 'the step at the reading client', 10_000);
    }
    assert.equal(closes, ['output-limit'], `the stalled client alone was closed, after ${sent} messages`);
    await until(() => b.stats().members === 1, 'the closed client left its room');
    assert.equal(b.localMembers('r'), [clients[0]]);
    for (const so of sockets) so.destroy();
  } finally {
    await s.close();
  }
});

test('Redis down: the queue is bounded by count, bytes and age; what it drops is counted and reported; local members still get everything; close drops the rest', async () => {
  const port = await refusedPort();
  const s = new Scope();
  try {
    const clock = new ManualClock();
    const loop = s.add(new EventLoop(), (l) => l.close());
    const server = await new Server(loop).listen();
    // A client that never connects: the publisher is down from the start.
    const client = createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true, socket: { reconnectStrategy: () => 20 } });
    client.on('error', () => undefined);
    const adapter = new RoomsAdapter({
      server,
      redis: client,
      prefix: prefix(),
      clock,
      maxQueuedMessages: 3,
      maxQueuedBytes: 1000,
      maxQueueAgeMs: 1_000,
    });
    const closing = s.add(adapter, (x) => x.close());
    const drops: RoomsDropInfo[] = [];
    adapter.on('dropped', (d) => drops.push(d));
    const { clients, sockets } = await accept(server, 1);
    const got = record(sockets[0]!);
    adapter.join(clients[0]!, 'r');
    const small = Buffer.alloc(10, 0x62);
    const results = [0, 1, 2, 3].map(() => adapter.broadcast(small, { rooms: 'r' }));
    assert.equal(results, ['queued', 'queued', 'queued', 'dropped']);
    assert.equal(drops, [{ reason: 'queue-full', messages: 1, bytes: adapter.stats().queuedBytes / 3 }]);
    clock.advance(1_001);
    // The three queued are older than maxQueueAgeMs: dropped as this one is queued.
    assert.is(adapter.broadcast(small, { rooms: 'r' }), 'queued');
    assert.is(drops[1]!.reason, 'expired');
    assert.is(drops[1]!.messages, 3);
    // Bytes: one more of 990 bytes does not fit beside the one queued.
    assert.is(adapter.broadcast(Buffer.alloc(990), { rooms: 'r' }), 'dropped');
    let st = adapter.stats();
    assert.equal([st.queued, st.dropped['queue-full'], st.dropped.expired, st.broadcasts, st.publisherUp], [1, 2, 3, 6, false]);
    await until(() => got.length() === 5 * 10 + 990, 'local delivery of every one');
    await closing.close();
    st = adapter.stats();
    assert.equal([st.queued, st.dropped.closed], [0, 1]);
    assert.is(drops.at(-1)!.reason, 'closed');
    throwsCode(() => adapter.broadcast(small), ErrorCode.ADAPTER_CLOSED);
    throwsCode(() => adapter.join(clients[0]!, 'x'), ErrorCode.ADAPTER_CLOSED);
    try {
      await adapter.ready();
      assert.unreachable('ready after close');
    } catch (err) {
      assert.ok(isNetloopError(err) || err instanceof Error);
    }
    sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('noise on the channel is counted and reported (NETLOOP_BAD_PAYLOAD, once per 10 s), never fatal; envelopes after it are delivered', async () => {
  const redis = await redisServerForTests('rooms adapter, noise');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loop = s.add(new EventLoop(), (l) => l.close());
    const server = await new Server(loop).listen();
    const adapter = await adapterOn(s, redis.url, { server, prefix: p });
    const errors: string[] = [];
    adapter.on('error', (e) => errors.push(e.code));
    const other = s.add(await redisClient(redis.url), (c) => c.close());
    for (const noise of ['hello', '', '\u0001\u0000\u0005ab']) await other.publish(`${p}0`, noise);
    const { sockets } = await accept(server, 1);
    const got = record(sockets[0]!);
    const peer = await adapterOn(s, redis.url, { server: await new Server(loop).listen(), prefix: p });
    peer.broadcast('after the noise');
    await until(() => got.bytes().toString() === 'after the noise', 'the envelope after the noise');
    assert.is(adapter.stats().malformed, 3);
    assert.equal(errors, [ErrorCode.BAD_PAYLOAD]);
    sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('a session binding answers for users: its bound clients and those said by setUser are reached, each once', async () => {
  const redis = await redisServerForTests('rooms adapter, users from a binding');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loop = s.add(new EventLoop(), (l) => l.close());
    const server = await new Server(loop).listen();
    const reg = s.add(new SessionRegistry({ autoAudit: false }), (r) => r.close());
    const binding = s.add(bindSessions(server, reg), (b) => b.close());
    const adapter = await adapterOn(s, redis.url, { server, prefix: p, users: binding });
    const sender = await adapterOn(s, redis.url, { server: await new Server(loop).listen(), prefix: p });
    const { clients, sockets } = await accept(server, 3);
    const got = sockets.map(record);
    await binding.login(clients[0]!, { userId: 'alice' });
    await binding.login(clients[1]!, { userId: 'alice' });
    adapter.setUser(clients[1]!, 'alice');
    adapter.setUser(clients[2]!, 'alice');
    sender.broadcast('for alice', { users: 'alice' });
    sender.broadcast('for bob', { users: 'bob' });
    sender.broadcast('end');
    await until(() => got.every((g) => g.bytes().toString().endsWith('end')), 'the end everywhere');
    for (const g of got) assert.is(g.bytes().toString(), 'for aliceend');
    for (const so of sockets) so.destroy();
  } finally {
    await s.close();
  }
});

test('from a URL: the adapter makes, connects and closes its own clients; a client given is left open', async () => {
  const redis = await redisServerForTests('rooms adapter, URL');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loop = s.add(new EventLoop(), (l) => l.close());
    const admin = s.add(await redisClient(redis.url), (c) => c.close());
    const count = async (): Promise<number> => (await admin.sendCommand<string>(['CLIENT', 'LIST'])).trim().split('\n').length;
    const before = await count();
    const server = await new Server(loop).listen();
    const own = await createRoomsAdapter({ server, redis: redis.url, prefix: p });
    const given = await redisClient(redis.url);
    const other = await createRoomsAdapter({ server: await new Server(loop).listen(), redis: given, prefix: p });
    assert.is(await count(), before + 4, 'two each: a publisher and a subscriber');
    const { sockets } = await accept(server, 1);
    const got = record(sockets[0]!);
    assert.is(other.broadcast('hi'), 'published');
    await until(() => got.bytes().toString() === 'hi', 'the broadcast');
    await own.close();
    await other.close();
    assert.ok(given.isReady, 'the client given is still open');
    for (let i = 0; i < 100 && (await count()) !== before + 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.is(await count(), before + 1, "only the given client's connection remains");
    await given.close();
    sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('bad calls are coded errors and publish nothing: foreign clients, names, messages, sizes, targets, except keys, the room limit', async () => {
  const redis = await redisServerForTests('rooms adapter, bad calls');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const loop = s.add(new EventLoop(), (l) => l.close());
    const server = await new FramedServer(loop, { registry: registry() }).listen();
    const foreign = await new Server(loop).listen();
    const adapter = s.add(
      await createRoomsAdapter({ server, redis: (await redisClient(redis.url)) as PubSubClientLike, prefix: prefix(), maxMessageBytes: 100, maxTargets: 2, maxRoomsPerClient: 2, maxNameBytes: 8 }),
      (x) => x.close(),
    );
    const mine = await accept(server, 1);
    const theirs = await accept(foreign, 1);
    const c = mine.clients[0]!;
    throwsCode(() => adapter.join(theirs.clients[0]!, 'r'), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.setUser(theirs.clients[0]!, 'u'), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.join(c, ''), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.join(c, 'much-too-long'), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.setUser(c, 'much-too-long'), ErrorCode.INVALID_VALUE);
    adapter.join(c, ['a', 'b']);
    throwsCode(() => adapter.join(c, 'c'), ErrorCode.ROOM_LIMIT);
    throwsCode(() => adapter.broadcast(null as unknown as string), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.broadcast(Buffer.alloc(101)), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.broadcast({ type: 'Nope', payload: 1 }), ErrorCode.UNKNOWN_TYPE);
    throwsCode(() => adapter.broadcast('x', { rooms: ['a', 'b'], users: 'c' }), ErrorCode.INVALID_OPTION);
    throwsCode(() => adapter.broadcast('x', { rooms: [''] }), ErrorCode.INVALID_VALUE);
    throwsCode(() => adapter.broadcast('x', { rooms: 5 as unknown as string }), ErrorCode.INVALID_OPTION);
    throwsCode(() => adapter.broadcast('x', { except: 'no-slash' }), ErrorCode.INVALID_OPTION);
    throwsCode(() => adapter.broadcast('x', { except: 'a b/1' }), ErrorCode.INVALID_OPTION);
    throwsCode(() => adapter.broadcast('x', { except: 42 as unknown as string }), ErrorCode.INVALID_OPTION);
    throwsCode(() => adapter.broadcast('x', { local: 'yes' as unknown as boolean }), ErrorCode.INVALID_OPTION);
    throwsCode(() => adapter.broadcast('x', null as unknown as object), ErrorCode.INVALID_OPTION);
    assert.is(adapter.stats().broadcasts, 0, 'nothing was published');
    // A client already closed is ignored: it has left everything.
    mine.sockets[0]!.destroy();
    await until(() => c.closed, 'the close');
    adapter.join(c, 'late');
    assert.equal(adapter.stats().memberships, 0);
    theirs.sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('the broadcasts of one synchronous run travel as one Redis message, each delivered once and in order; maxBatchBytes bounds a batch; 0 publishes each alone', async () => {
  const redis = await redisServerForTests('rooms adapter, batches');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loop = s.add(new EventLoop(), (l) => l.close());
    const server = await new Server(loop).listen();
    const receiver = await adapterOn(s, redis.url, { server, prefix: p });
    const { clients, sockets } = await accept(server, 1);
    receiver.join(clients[0]!, 'r');
    const got = record(sockets[0]!);
    // A plain subscriber on the channel sees the Redis messages themselves.
    const seen: Buffer[] = [];
    const spy = s.add(await redisClient(redis.url), (c) => c.close());
    await spy.subscribe(`${p}0`, (m: Buffer) => seen.push(m), true);
    const publisher = async (maxBatchBytes?: number): Promise<RoomsAdapter> =>
      adapterOn(s, redis.url, { server: await new Server(loop).listen(), prefix: p, ...(maxBatchBytes === undefined ? {} : { maxBatchBytes }) });
    let expected = '';
    const run = async (a: RoomsAdapter, texts: string[]): Promise<Buffer[]> => {
      seen.length = 0;
      const before = a.stats().published;
      for (const t of texts) assert.is(a.broadcast(t, { rooms: 'r' }), 'published');
      expected += texts.join('');
      await until(() => got.length() >= Buffer.byteLength(expected), 'every broadcast delivered');
      assert.is(got.bytes().toString(), expected, 'each once, in order');
      await until(() => a.stats().published === before + texts.length && carried(seen) === texts.length, 'every PUBLISH answered and seen');
      return [...seen];
    };
    // The envelopes the Redis messages carry: a batch says how many after its origin field.
    const carried = (ms: Buffer[]): number => ms.reduce((n, m) => n + (m[0] === 2 ? m.readUInt16LE(3 + m[2]!) : 1), 0);
    const texts = (n: number, size: number): string[] => Array.from({ length: n }, (_, i) => `${i};`.padEnd(size, '.'));

    const batched = await publisher();
    const one = await run(batched, texts(100, 8));
    assert.is(one.length, 1, 'one Redis message for the run');
    assert.is(one[0]![0], 2, 'a batch');
    assert.is(batched.stats().inFlight, 0);
    assert.is(receiver.stats().received, 100);
    // An envelope here is 29 bytes of header (a 16-digit process id, room "r") and its payload: two of 71 fit in 150, three do not.
    const small = await publisher(150);
    const pairs = await run(small, texts(10, 42));
    assert.is(pairs.length, 5);
    const single = await run(small, texts(1, 42));
    assert.is(single[0]![0], 1, 'a batch of one is never made: the envelope goes alone');
    const alone = await publisher(0);
    const each = await run(alone, texts(10, 8));
    assert.equal(each.map((m) => m[0]), Array(10).fill(1), 'every broadcast alone, as an envelope');
    assert.is(receiver.stats().malformed, 0);
    sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('a batch is read envelope by envelope: a malformed one is counted and reported, the others are delivered; a malformed batch is counted once', async () => {
  const redis = await redisServerForTests('rooms adapter, malformed batches');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    const p = prefix();
    const loop = s.add(new EventLoop(), (l) => l.close());
    const server = await new Server(loop).listen();
    const adapter = await adapterOn(s, redis.url, { server, prefix: p });
    const errors: string[] = [];
    adapter.on('error', (e) => errors.push(e.code));
    const { clients, sockets } = await accept(server, 1);
    adapter.join(clients[0]!, 'r');
    const got = record(sockets[0]!);
    const origin = 'elsewhere';
    const field = Buffer.concat([Buffer.from([origin.length]), Buffer.from(origin, 'latin1')]);
    const envelope = (seq: number, text: string): Buffer => {
      const input = { origin, seq, targets: [{ kind: TARGET_ROOM, name: 'r' }], except: [], exceptRooms: [], type: -1, payload: Buffer.from(text) } as const;
      return encodeEnvelope(input, envelopeSize(input, input.payload.length));
    };
    const batch = (parts: Buffer[]): Buffer =>
      encodeBatch(field, parts, batchHeaderSize(field.length) + parts.reduce((n, b) => n + b.length + BATCH_ENTRY_OVERHEAD, 0));
    const other = s.add(await redisClient(redis.url), (c) => c.close());
    await other.publish(`${p}0`, batch([envelope(0, 'one,'), Buffer.from([9, 9, 9]), envelope(1, 'two,')]));
    await until(() => got.bytes().toString() === 'one,two,', 'the two good envelopes of the batch');
    assert.is(adapter.stats().malformed, 1);
    assert.equal(errors, [ErrorCode.BAD_PAYLOAD]);
    // A batch cut short is refused whole: nothing of it is delivered, and it counts once.
    const whole = batch([envelope(2, 'three,'), envelope(3, 'four,')]);
    await other.publish(`${p}0`, whole.subarray(0, whole.length - 1));
    await other.publish(`${p}0`, envelope(4, 'five'));
    await until(() => got.bytes().toString().endsWith('five'), 'the envelope after the bad batch');
    assert.is(got.bytes().toString(), 'one,two,five');
    const st = adapter.stats();
    assert.equal([st.malformed, st.received, st.missed], [2, 5, 2]);
    sockets[0]!.destroy();
  } finally {
    await s.close();
  }
});

test('a batch whose PUBLISH fails drops every broadcast it carried, counted once as failed', async () => {
  const redis = await redisServerForTests('rooms adapter, a failed batch');
  if (redis === null) return;
  const s = new Scope();
  try {
    s.add(redis, (r) => r.stop());
    // A user who may subscribe but not publish: every PUBLISH is refused by Redis itself (NOPERM).
    const admin = s.add(await redisClient(redis.url), (c) => c.close());
    await admin.sendCommand(['ACL', 'SETUSER', 'nopublish', 'on', 'nopass', '~*', '&*', '+@all', '-publish']);
    const url = redis.url.replace('redis://', 'redis://nopublish:x@');
    const loop = s.add(new EventLoop(), (l) => l.close());
    const adapter = await adapterOn(s, url, { server: await new Server(loop).listen(), prefix: prefix() });
    const drops: RoomsDropInfo[] = [];
    adapter.on('dropped', (d) => drops.push(d));
    const results = Array.from({ length: 10 }, () => adapter.broadcast('0123456789'));
    assert.equal(results, Array(10).fill('published'));
    await until(() => drops.length > 0 && adapter.stats().inFlight === 0, 'the refused PUBLISH');
    const envelopeBytes = 3 + adapter.processId.length + 4 + 2 + 10;
    assert.equal(drops, [{ reason: 'failed', messages: 10, bytes: 10 * envelopeBytes }]);
    const st = adapter.stats();
    assert.equal([st.broadcasts, st.published, st.dropped.failed, st.publisherUp], [10, 0, 10, true]);
  } finally {
    await s.close();
  }
});

test.run();
