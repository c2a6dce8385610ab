/**
 * The rooms adapter across processes: two child processes, each a small
 * server with its own adapter (test/helpers/rooms-node.ts), a real
 * redis-server (or a real three-master Redis Cluster), and clients on both
 * that drive them. Broadcast to all, to a room, to a user, except a sender;
 * join and leave; a closed client leaves every room; one order everywhere
 * with loopback; a Redis restart mid-stream, where what is lost is counted
 * exactly and delivery resumes; a bounded queue while Redis is down.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { startServer, siblingScript } from '../../bench/processes.js';
import type { ServerChild } from '../../bench/processes.js';
import { RoomsPeer } from '../helpers/rooms-node.js';
import type { Cmd } from '../helpers/rooms-node.js';
import { redisServerForTests, startRedisServer } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';
import { redisClusterForTests } from '../helpers/redis-cluster.js';
import { createClient } from 'redis';
import { until } from '../helpers/net.js';
import type { RoomsAdapterStats } from '../../lib/cluster/rooms-options.js';

const SCRIPT = siblingScript(import.meta.url, '../helpers/rooms-node.js');

/** The adapter's counters, as a client's `stats` command returns them (test/helpers/rooms-node.ts). */
type Stats = RoomsAdapterStats & { op: 'stats' };

async function node(args: string[]): Promise<ServerChild> {
  return startServer({ script: SCRIPT, args, timeoutMs: 120_000, name: 'rooms-node', startTimeoutMs: 20_000 });
}

async function peer(port: number, name: string): Promise<RoomsPeer & { key: string }> {
  const p = await RoomsPeer.connect(port);
  const r = await p.cmd({ op: 'hello', text: name });
  return Object.assign(p, { key: String(r['key']) });
}

async function stats(p: RoomsPeer): Promise<Stats> {
  return (await p.cmd({ op: 'stats' })) as unknown as Stats;
}

async function say(p: RoomsPeer, text: string, rest: Omit<Cmd, 'op' | 'text'> = {}): Promise<string> {
  return String((await p.cmd({ op: 'say', text, ...rest }))['result']);
}

/** Two nodes on one Redis, with the given extra arguments. */
async function twoNodes(redisArgs: string[], extra: string[] = []): Promise<[ServerChild, ServerChild]> {
  const prefix = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;
  const a = await node([...redisArgs, '--prefix', prefix, ...extra]);
  try {
    return [a, await node([...redisArgs, '--prefix', prefix, ...extra])];
  } catch (err) {
    await a.handle.kill();
    throw err;
  }
}

test('two processes: to all, to a room, to a user, except the sender or a remote client, except a room, local only; join and leave; typed and raw', async () => {
  const redis = await redisServerForTests('rooms adapter, two processes');
  if (redis === null) return;
  const nodes = await twoNodes(['--redis', redis.url]);
  const peers: RoomsPeer[] = [];
  try {
    const [A, B] = nodes;
    const a1 = await peer(A.port, 'a1');
    const a2 = await peer(A.port, 'a2');
    const b1 = await peer(B.port, 'b1');
    const b2 = await peer(B.port, 'b2');
    peers.push(a1, a2, b1, b2);
    await a1.cmd({ op: 'join', rooms: ['r'] });
    assert.equal((await b1.cmd({ op: 'join', rooms: ['r', 's'] }))['rooms'], ['r', 's']);
    await a2.cmd({ op: 'user', id: 'u' });
    await b2.cmd({ op: 'user', id: 'u' });
    const all = [a1, a2, b1, b2];
    const step = async (text: string, from: RoomsPeer, rest: Omit<Cmd, 'op' | 'text'>, to: RoomsPeer[]): Promise<void> => {
      assert.is(await say(from, text, rest), rest.local === true ? 'local' : 'published', text);
      for (const p of to) await until(() => p.msgs.some((m) => m.text === text), `${text} at its addressees`, 10_000);
    };
    await step('all', a1, {}, all);
    await step('room', a1, { rooms: ['r'] }, [a1, b1]);
    await step('room-but-me', b1, { rooms: ['r'], exceptSelf: true }, [a1]);
    await step('user-raw', a1, { users: ['u'], raw: true }, [a2, b2]);
    await step('room-and-user', b2, { rooms: ['r'], users: ['u'] }, [a1, a2, b1, b2]);
    await step('all-but-b2', a1, { except: [b2.key] }, [a1, a2, b1]);
    await step('all-but-room-r', b1, { exceptRooms: ['r'] }, [a2, b2]);
    await step('room-s-typed', a2, { rooms: ['s'] }, [b1]);
    await step('local', a1, { local: true }, [a1, a2]);
    await b1.cmd({ op: 'leave', rooms: ['r'] });
    await step('room-after-leave', a1, { rooms: ['r'] }, [a1]);
    // A last message to all; then every client's whole list is exact: nothing more, nothing twice, in order.
    await step('end', b2, {}, all);
    assert.equal(await a1.texts(0), ['all', 'room', 'room-but-me', 'room-and-user', 'all-but-b2', 'local', 'room-after-leave', 'end']);
    assert.equal(await a2.texts(0), ['all', 'user-raw', 'room-and-user', 'all-but-b2', 'all-but-room-r', 'local', 'end']);
    assert.equal(await b1.texts(0), ['all', 'room', 'room-and-user', 'all-but-b2', 'room-s-typed', 'end']);
    assert.equal(await b2.texts(0), ['all', 'user-raw', 'room-and-user', 'all-but-room-r', 'end']);
    assert.ok(a1.msgs.every((m) => m.from !== ''), 'each message names its sender');
    const sa = await stats(a1);
    const sb = await stats(b1);
    assert.is(sa.missed + sb.missed, 0);
    assert.is(sa.dropped['queue-full']! + sa.dropped['failed']!, 0);
  } finally {
    for (const p of peers) p.destroy();
    for (const n of nodes) await n.handle.kill();
    await redis.stop();
  }
});

test('a closed client leaves every room and its user at once, in its process', async () => {
  const redis = await redisServerForTests('rooms adapter, close');
  if (redis === null) return;
  const nodes = await twoNodes(['--redis', redis.url]);
  const peers: RoomsPeer[] = [];
  try {
    const [A, B] = nodes;
    const watcher = await peer(B.port, 'w');
    const leaver = await peer(B.port, 'l');
    const a = await peer(A.port, 'a');
    peers.push(watcher, leaver, a);
    await leaver.cmd({ op: 'join', rooms: ['x', 'y', 'z'] });
    await leaver.cmd({ op: 'user', id: 'leaver' });
    let s = await stats(watcher);
    assert.equal([s.rooms, s.members, s.memberships, s.users], [3, 1, 3, 1]);
    leaver.destroy();
    await until(() => leaver.closed, 'the close');
    for (;;) {
      s = await stats(watcher);
      if (s.members === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal([s.rooms, s.members, s.memberships, s.users], [0, 0, 0, 0]);
    // A broadcast to its rooms and user reaches nobody there.
    const before = s.deliveries;
    await say(a, 'to-nobody', { rooms: ['x', 'y', 'z'], users: ['leaver'] });
    await say(a, 'marker');
    await watcher.texts(1);
    assert.equal(await watcher.texts(0), ['marker']);
    assert.is((await stats(watcher)).deliveries, before + 1, 'only the marker was delivered in B');
  } finally {
    for (const p of peers) p.destroy();
    for (const n of nodes) await n.handle.kill();
    await redis.stop();
  }
});

test('loopback: members of both processes see one order, the publishers\' own included', async () => {
  const redis = await redisServerForTests('rooms adapter, loopback');
  if (redis === null) return;
  const nodes = await twoNodes(['--redis', redis.url], ['--loopback']);
  const peers: RoomsPeer[] = [];
  try {
    const [A, B] = nodes;
    const a = await peer(A.port, 'a');
    const b = await peer(B.port, 'b');
    peers.push(a, b);
    await a.cmd({ op: 'join', rooms: ['r'] });
    await b.cmd({ op: 'join', rooms: ['r'] });
    // Both send at once, without waiting: each process's own messages come back through Redis like the others'.
    await Promise.all([a.cmd({ op: 'stream', count: 40, intervalMs: 1, rooms: ['r'] }), b.cmd({ op: 'stream', count: 40, intervalMs: 1, rooms: ['r'] })]);
    await until(() => a.msgs.length >= 80 && b.msgs.length >= 80, 'every message at both', 10_000);
    const order = (p: RoomsPeer): string[] => p.msgs.map((m) => `${m.from}${m.n ?? ''}`);
    assert.equal(order(a), order(b), 'one order');
    assert.is(new Set(order(a)).size, 80);
  } finally {
    for (const p of peers) p.destroy();
    for (const n of nodes) await n.handle.kill();
    await redis.stop();
  }
});

test('Redis restarted mid-stream: each process says so, what is lost is counted exactly, delivery resumes', async () => {
  const redis = await redisServerForTests('rooms adapter, Redis restart');
  if (redis === null) return;
  const nodes = await twoNodes(['--redis', redis.url]);
  const peers: RoomsPeer[] = [];
  try {
    const [A, B] = nodes;
    const a = await peer(A.port, 'a');
    const b = await peer(B.port, 'b');
    peers.push(a, b);
    await b.cmd({ op: 'join', rooms: ['r'] });
    const count = 300;
    const streaming = a.cmd({ op: 'stream', count, intervalMs: 5, rooms: ['r'] }, 60_000);
    await until(() => b.msgs.length >= 30, 'the stream under way', 10_000);
    await redis.restart();
    const done = await streaming;
    // Both processes said the connection was lost (coded), and that it came back.
    await A.handle.waitForLine(/"event":"error","code":"NETLOOP_PUBSUB_UNAVAILABLE"/, 10_000, "A's outage");
    await B.handle.waitForLine(/"event":"error","code":"NETLOOP_PUBSUB_UNAVAILABLE"/, 10_000, "B's outage");
    await B.handle.waitForLine(/"event":"reconnected","connection":"subscriber"/, 20_000, "B's subscriber back");
    await until(() => b.msgs.some((m) => (m.n ?? 0) > count - 20), 'delivery resumed', 20_000);
    // One more message on the channel lets B see any gap after the last one it received.
    const settled = async (): Promise<void> => {
      for (;;) {
        const s = await stats(a);
        if (s.publisherUp && s.queued === 0 && s.inFlight === 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await settled();
    await say(a, 'end', { rooms: ['r'] });
    await until(() => b.msgs.some((m) => m.text === 'end'), 'the end marker', 10_000);
    // B may read the marker before A reads Redis's reply to its PUBLISH: A's count waits for that reply.
    await settled();
    const got = b.msgs.filter((m) => m.text === 'stream').map((m) => m.n!);
    assert.equal(got, [...got].sort((x, y) => x - y), 'in order, none twice');
    assert.is(new Set(got).size, got.length);
    const sa = await stats(a);
    const sb = await stats(b);
    const lost = count - got.length;
    assert.is(sb.missed, lost, `B counted exactly what it did not receive (${lost} of ${count})`);
    // A accounts for every broadcast: answered, dropped (queue-full, expired, failed), nothing left.
    const droppedA = Object.values(sa.dropped).reduce((x, y) => x + y, 0);
    assert.is(sa.broadcasts, count + 1);
    assert.is(sa.published + droppedA, sa.broadcasts);
    assert.ok(droppedA <= lost, `what A dropped (${droppedA}) is part of what B missed (${lost})`);
    const results = done['results'] as Record<string, number>;
    assert.is(Object.values(results).reduce((x, y) => x + y, 0), count);
    process.stdout.write(`# restart: ${count} sent, ${got.length} received, ${lost} missed; A: ${JSON.stringify(results)}, dropped ${JSON.stringify(sa.dropped)}\n`);
  } finally {
    for (const p of peers) p.destroy();
    for (const n of nodes) await n.handle.kill();
    await redis.stop();
  }
});

test('Redis down: broadcasts wait in a bounded queue, the rest are dropped and counted; the queue is sent when Redis is back', async () => {
  let redis: RedisServer | null = await redisServerForTests('rooms adapter, Redis down');
  if (redis === null) return;
  const port = redis.port;
  const nodes = await twoNodes(['--redis', redis.url], ['--max-queue', '5', '--max-age-ms', '60000']);
  const peers: RoomsPeer[] = [];
  try {
    const [A, B] = nodes;
    const a = await peer(A.port, 'a');
    const b = await peer(B.port, 'b');
    peers.push(a, b);
    await a.cmd({ op: 'join', rooms: ['r'] });
    await b.cmd({ op: 'join', rooms: ['r'] });
    await say(a, 'before', { rooms: ['r'] });
    await until(() => b.msgs.length === 1, 'the first message');
    await redis.stop();
    redis = null;
    while ((await stats(a)).publisherUp) await new Promise((r) => setTimeout(r, 20));
    const results: string[] = [];
    for (let i = 0; i < 10; i++) results.push(await say(a, `down-${i}`, { rooms: ['r'] }));
    assert.equal(results, [...Array(5).fill('queued'), ...Array(5).fill('dropped')]);
    // Local members got every one at once (socket.io's way): local delivery goes on while Redis is down.
    assert.is(a.msgs.filter((m) => m.text.startsWith('down-')).length, 10);
    let sa = await stats(a);
    assert.equal([sa.queued, sa.dropped['queue-full']], [5, 5]);
    await A.handle.waitForLine(/"event":"dropped","reason":"queue-full","messages":1/, 5_000, "A's drop event");
    redis = await startRedisServer({ port });
    await B.handle.waitForLine(/"event":"reconnected","connection":"subscriber"/, 20_000, "B's subscriber back");
    for (;;) {
      sa = await stats(a);
      if (sa.publisherUp && sa.queued === 0 && sa.inFlight === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await say(a, 'after', { rooms: ['r'] });
    await until(() => b.msgs.some((m) => m.text === 'after'), 'delivery after the outage', 10_000);
    const down = b.msgs.filter((m) => m.text.startsWith('down-')).map((m) => m.text);
    // The five dropped never arrive; the five queued arrive unless B was not subscribed yet when they were sent: either way B counted the rest.
    assert.ok(down.every((t) => Number(t.slice(5)) < 5), `only queued ones arrive: ${down.join(',')}`);
    assert.is((await stats(b)).missed, 10 - down.length);
  } finally {
    for (const p of peers) p.destroy();
    for (const n of nodes) await n.handle.kill();
    await redis?.stop();
  }
});

test('Redis Cluster: sharded pub/sub over channels spread on every master; rooms, users and except across two processes', async () => {
  const cluster = await redisClusterForTests('rooms adapter on a Redis Cluster');
  if (cluster === null) return;
  const urls = cluster.rootNodes.map((n) => n.url).join(',');
  const prefix = `c${Date.now().toString(36)}:`;
  const nodes: ServerChild[] = [];
  const peers: RoomsPeer[] = [];
  try {
    nodes.push(await node(['--cluster', urls, '--prefix', prefix]));
    nodes.push(await node(['--cluster', urls, '--prefix', prefix]));
    const [A, B] = nodes as [ServerChild, ServerChild];
    const a = await peer(A.port, 'a');
    const b = await peer(B.port, 'b');
    peers.push(a, b);
    // Rooms whose names hash to different channels, hence (mostly) different masters.
    const rooms = Array.from({ length: 12 }, (_, i) => `room-${i}`);
    await a.cmd({ op: 'join', rooms });
    await b.cmd({ op: 'join', rooms });
    await b.cmd({ op: 'user', id: 'bob' });
    for (const r of rooms) await say(a, r, { rooms: [r], exceptSelf: true });
    await say(b, 'to-bob', { users: ['bob'] });
    await say(b, 'all-but-b', { exceptSelf: true });
    await until(() => b.msgs.length >= rooms.length + 1 && a.msgs.length >= 1, 'every message', 15_000);
    assert.equal((await b.texts(0)).sort(), [...rooms, 'to-bob'].sort());
    assert.equal(await a.texts(0), ['all-but-b']);
    // Every master carries some of the adapter's sixteen sharded channels.
    let total = 0;
    for (const n of cluster.nodes) {
      const c = createClient({ url: n.url });
      c.on('error', () => undefined);
      await c.connect();
      try {
        const channels = await c.sendCommand<string[]>(['PUBSUB', 'SHARDCHANNELS', `${prefix}*`]);
        assert.ok(channels.length > 0, `node ${n.index} carries some of the channels`);
        total += channels.length;
      } finally {
        await c.close();
      }
    }
    assert.is(total, 16, 'sixteen channels in all, each on the master of its slot');
    const sb = await stats(b);
    assert.is(sb.missed, 0);
  } finally {
    for (const p of peers) p.destroy();
    for (const n of nodes) await n.handle.kill();
    await cluster.stop();
  }
});

test.run();
