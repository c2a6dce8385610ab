/**
 * A framed client's inbound flow control: pending messages and bytes pause
 * reading (and resume at half), and the per-turn budget hands a large read
 * out over several turns.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import type { FramedMessage } from '../../../lib/framing/framed-client.js';
import { destroyAll, digest, pattern, until } from '../../helpers/net.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';

import { accept, chatRegistry, closeOf, echoServer, frame, readFrames } from './rig.js';

// ─── read-side backpressure (faults.test.ts item 8) ────────────────────────────

test('a tiny-frame flood against a handler that never settles: pending stops at the limit, reading pauses, memory stays bounded', async () => {
  const loop = new EventLoop();
  let calls = 0;
  const maxPendingMessages = 16;
  const server = await new FramedServer(loop, {
    registry: chatRegistry(),
    maxPendingMessages,
    onMessage: () => {
      calls++;
      return new Promise<void>(() => undefined);
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    const one = frame(3, '');
    const total = 16 * 1024 * 1024;
    const flood = Buffer.alloc(total);
    for (let off = 0; off < total; off += one.length) one.copy(flood, off, 0, Math.min(one.length, total - off));
    peer.on('error', () => undefined);
    peer.write(flood);
    // The peer's writes back up: the kernel buffers are full because the server stopped reading.
    await until(() => peer.writableLength > 0 && client.framingStats().paused === true, 'the server to pause and the peer to back up', 10_000);
    const s = client.framingStats();
    assert.is(calls, maxPendingMessages);
    assert.is(s.inFlight, maxPendingMessages);
    assert.is(client.isReading(), false);
    // What waits is at most the rest of one read, never the flood.
    assert.ok(s.backlog * one.length <= 64 * 1024, `backlog ${s.backlog}`);
    assert.ok(s.pendingBytes <= 64 * 1024 + maxPendingMessages * one.length, `pending ${s.pendingBytes} bytes`);
    assert.ok(client.socket.bytesRead < 1024 * 1024, `read ${client.socket.bytesRead} of ${total} bytes`);
    await destroyAll(peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('reading resumes once pending drops to half (hysteresis), and waiting messages are handled in order', async () => {
  const loop = new EventLoop();
  const resolvers: Array<() => void> = [];
  const order: string[] = [];
  const server = await new FramedServer(loop, {
    registry: chatRegistry(),
    maxPendingMessages: 4,
    onMessage: (_c, m) => {
      order.push(m.payload as string);
      return new Promise<void>((resolve) => resolvers.push(resolve));
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    peer.write(Buffer.concat(Array.from({ length: 6 }, (_, i) => frame(1, `p${i}`))));
    await until(() => client.framingStats().paused === true, 'paused');
    assert.equal(order, ['p0', 'p1', 'p2', 'p3']);
    assert.equal([client.framingStats().inFlight, client.framingStats().backlog], [4, 2]);
    resolvers.shift()!();
    await until(() => order.length === 5, 'p4 handed out');
    assert.ok(client.framingStats().paused, '5 pending of 4: still paused');
    resolvers.shift()!();
    resolvers.shift()!();
    await until(() => order.length === 6, 'p5 handed out');
    assert.is(client.framingStats().paused, true, '3 in flight > 2');
    resolvers.shift()!();
    await until(() => !client.framingStats().paused, 'resumed at half');
    assert.ok(client.isReading());
    peer.write(frame(1, 'p6'));
    await until(() => order.length === 7, 'reading again');
    assert.equal(order, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    for (const r of resolvers) r();
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('maxPendingBytes pauses on bytes alone', async () => {
  const loop = new EventLoop();
  const resolvers: Array<() => void> = [];
  const server = await new FramedServer(loop, {
    registry: chatRegistry(),
    maxPendingBytes: 1000,
    onMessage: () => new Promise<void>((resolve) => resolvers.push(resolve)),
  }).listen();
  try {
    const { peer, client } = await accept(server);
    peer.write(frame(3, pattern(1200)));
    await until(() => client.framingStats().paused === true, 'paused by one large message');
    assert.is(client.framingStats().pendingBytes, 1206);
    resolvers.shift()!();
    await until(() => client.isReading(), 'resumed');
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('a reply sent by an async handler after an await is flushed too', async () => {
  const { loop, server } = await echoServer({
    async onMessage(client, msg) {
      await Promise.resolve();
      client.send('text', `later ${String(msg.payload)}`);
    },
  });
  try {
    const { peer } = await accept(server);
    peer.write(Buffer.concat([frame(1, 'a'), frame(1, 'b')]));
    const replies = await readFrames(peer, 2);
    assert.equal(replies.map((f) => f.value.toString()), ['later a', 'later b']);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});


// ─── per-turn budget ─────────────────────────────────────────────────────────

test('maxMessagesPerTurn: one read of many frames is handed out over several turns, in order, reading paused meanwhile', async () => {
  const budget = 10;
  const total = 95;
  const handled: Array<{ turn: number; text: string; reading: boolean }> = [];
  const { loop, server } = await echoServer({
    maxMessagesPerTurn: budget,
    onMessage(client, msg) {
      handled.push({ turn: loop._turnSeq, text: msg.payload as string, reading: client.isReading() });
      client.send(msg.type, msg.payload);
    },
  });
  try {
    const { peer, client } = await accept(server);
    const texts = Array.from({ length: total }, (_, i) => `m${i}`);
    // One write of about 1 KiB: one chunk on loopback.
    peer.write(Buffer.concat(texts.map((t) => frame(1, t))));
    const echoed = await readFrames(peer, total);
    assert.equal(
      echoed.map((f) => f.value.toString()),
      texts,
      'every message echoed once, in order',
    );
    assert.equal(
      handled.map((h) => h.text),
      texts,
      'handled once each, in order',
    );
    const perTurn = new Map<number, number>();
    for (const h of handled) perTurn.set(h.turn, (perTurn.get(h.turn) ?? 0) + 1);
    assert.ok(Math.max(...perTurn.values()) <= budget, `at most ${budget} per turn: ${[...perTurn.values()].join(',')}`);
    assert.ok(perTurn.size >= Math.ceil(total / budget), `spread over ${perTurn.size} turns`);
    assert.ok(
      handled.slice(budget, total - 1).every((h) => !h.reading),
      'reading stays paused while bytes are held',
    );
    await until(() => client.isReading(), 'reading resumed once nothing is held');
    const stats = client.framingStats();
    assert.equal([stats.heldBytes, stats.frames, stats.paused], [0, total, false]);
    // Later reads are handed out at once again.
    peer.write(frame(1, 'later'));
    const [later] = await readFrames(peer, 1);
    assert.is(later!.value.toString(), 'later');
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('maxMessagesPerTurn: the count starts afresh every turn, even when replies flushed from the read schedule none', async () => {
  // An echo flushes its replies from its own read callback, so nothing else
  // schedules a turn of netloop's loop; the budget must still be per turn,
  // not spent once and for all by the first `budget` frames of the connection.
  const budget = 4;
  const rounds = 10;
  const perRound = 3;
  const handled: Array<{ turn: number; reading: boolean }> = [];
  const { loop, server } = await echoServer({
    maxMessagesPerTurn: budget,
    onMessage(client, msg) {
      handled.push({ turn: loop._turnSeq, reading: client.isReading() });
      client.send(msg.type, msg.payload);
    },
  });
  try {
    const { peer, client } = await accept(server);
    for (let r = 0; r < rounds; r++) {
      // One write per round, its replies awaited: one read per round.
      peer.write(Buffer.concat(Array.from({ length: perRound }, (_, i) => frame(1, `r${r}m${i}`))));
      const echoed = await readFrames(peer, perRound);
      assert.equal(
        echoed.map((f) => f.value.toString()),
        Array.from({ length: perRound }, (_, i) => `r${r}m${i}`),
      );
    }
    assert.is(handled.length, rounds * perRound);
    assert.ok(
      handled.every((h) => h.reading),
      'no frame was held: reading never paused',
    );
    const turns = new Set(handled.map((h) => h.turn));
    assert.is(turns.size, rounds, 'each round was counted in a turn of its own');
    assert.is(client.framingStats().heldBytes, 0);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('maxMessagesPerTurn: held frames are decoded with the limit in force when their turn comes', async () => {
  const got: FramedMessage[] = [];
  const { loop, server } = await echoServer({
    requireAuthentication: true,
    maxMessagesPerTurn: 2,
    onMessage(client, msg) {
      got.push(msg);
      if (msg.name === 'text' && msg.payload === 'login') client.markAuthenticated();
    },
  });
  try {
    const { peer, client } = await accept(server);
    const closed = closeOf(server, client);
    let closedEarly = false;
    void closed.then(() => {
      closedEarly = true;
    });
    // The login is the third frame, past the first turn's budget; the large
    // frame behind it is above the pre-auth limit and must not close the client.
    const big = frame(3, pattern(100_000));
    peer.write(Buffer.concat([frame(1, 'a'), frame(1, 'b'), frame(1, 'login'), big, frame(1, 'after')]));
    await until(() => got.length === 5 || closedEarly, 'five messages');
    assert.is(closedEarly, false, 'not closed');
    assert.equal(
      got.map((m) => m.value.length),
      [1, 1, 5, 100_000, 5],
    );
    assert.is(digest(got[3]!.value), digest(pattern(100_000)));
    // Unauthenticated, the same large frame still closes the client.
    const second = await accept(server);
    const err = closeOf(server, second.client);
    second.peer.write(Buffer.concat([frame(1, 'a'), frame(1, 'b'), frame(1, 'c'), big]));
    const [, reason, error] = await err;
    assert.is(reason, 'protocol-error');
    assert.is(error?.code, ErrorCode.FRAME_TOO_LARGE);
    assert.is(got.length, 8, 'the three frames before it were handled');
    await destroyAll(peer, second.peer);
  } finally {
    await loop.close();
  }
});

test('maxMessagesPerTurn: a client closed while bytes are held hands out nothing more', async () => {
  const got: string[] = [];
  const { loop, server } = await echoServer({
    maxMessagesPerTurn: 3,
    onMessage(client, msg) {
      got.push(msg.payload as string);
      if (msg.payload === 'x2') client.destroy();
    },
  });
  try {
    const { peer, client } = await accept(server);
    const closed = closeOf(server, client);
    peer.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => frame(1, `x${i}`))));
    await closed;
    await new Promise<void>((resolve) => loop.queueInLoop(() => setImmediate(resolve)));
    assert.equal(got, ['x0', 'x1', 'x2']);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test.run();
