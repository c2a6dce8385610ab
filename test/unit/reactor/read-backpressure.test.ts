/**
 * Backpressure between a client's output and reading: the output of a
 * client never depends on listeners others attach to its socket; reading
 * pauses for several reasons at once (the application, the framing layer,
 * queued output) and none resumes what another holds; `readPauseOutputBytes`
 * and `linkBackpressure` stop reading a producer while output piles up, so
 * an echo or a relay holds its producer by TCP flow control instead of
 * buffering without end or closing it at the hard limit.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { linkBackpressure } from '../../../lib/reactor/client.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { startEchoServer, ECHO_READ_PAUSE } from '../../../examples/echo/server.js';
import { connectRaw, destroyAll, digest, pattern, slowRead, until, waitFor, withTimeout } from '../../helpers/net.js';
import { Server } from '../../../lib/reactor/server.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';

/** The largest chunk one socket read hands over (libuv reads into 64 KiB). */
const READ_CHUNK = 64 * 1024;

const D = suite('output does not depend on what others attach to the socket');

D("a 'drain' listener the application adds to client.socket does not stop the client's output: 16 MiB to a slow reader arrive whole", async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { softOutputLimit: null }).listen();
  const accepted = waitFor<[Client]>(server, 'connection');
  const peer = await connectRaw(server.port);
  try {
    const [client] = await accepted;
    let drains = 0;
    client.socket.on('drain', () => drains++);
    const data = pattern(16 * 1024 * 1024, 11);
    const reading = slowRead(peer, data.length, 1, 30_000);
    client.write(data);
    const got = await reading;
    assert.is(got.length, data.length);
    assert.is(digest(got), digest(data));
    assert.ok(drains > 0, "the application's listener heard the drains too");
  } finally {
    await destroyAll(peer);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

const P = suite('reading paused for several reasons');

P("the application's resume() does not resume what the framing layer or the queued output still holds", async () => {
  const loop = new EventLoop();
  let release: () => void = () => undefined;
  const handled: number[] = [];
  const server = await new FramedServer(loop, {
    maxPendingMessages: 1,
    onMessage: (_c, m) => {
      handled.push(m.type);
      return new Promise<void>((r) => (release = r));
    },
  }).listen();
  const accepted = waitFor<[Client]>(server, 'connection');
  const peer = await connectRaw(server.port);
  try {
    const [client] = await accepted;
    // One frame whose handler stays pending: the framing layer pauses reading.
    peer.write(Buffer.from([0, 0, 0, 0, 0, 1]));
    await until(() => handled.length === 1 && !client.isReading(), 'the framing pause');
    client.pause();
    client.resume();
    assert.not.ok(client.isReading(), 'the framing layer still holds reading paused');
    release();
    await until(() => client.isReading(), 'reading resumed once the handler settled');
    // The other way round: the application's pause outlives the framing's.
    client.pause();
    peer.write(Buffer.from([0, 0, 0, 0, 0, 2]));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(handled, [1], 'nothing read while the application holds reading');
    client.resume();
    await until(() => handled.length === 2, 'the second frame');
    release();
  } finally {
    await destroyAll(peer);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

const E = suite('backpressure from output to input');

E('readPauseOutputBytes and linkBackpressure marks are validated with coded errors', async () => {
  const loop = new EventLoop();
  try {
    for (const bad of [{ high: 0, low: 0 }, { high: 10, low: 10 }, { high: 1.5, low: 0 }, { high: 10, low: -1 }, { high: 2 ** 30, low: 1 }, 'x']) {
      assert.throws(
        () => new Server(loop, { maxOutputBytes: 1 << 20, readPauseOutputBytes: bad as never }),
        (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION),
        JSON.stringify(bad),
      );
    }
    const server = await new Server(loop, { readPauseOutputBytes: null }).listen();
    const accepted = waitFor<[Client]>(server, 'connection');
    const peer = await connectRaw(server.port);
    const [c] = await accepted;
    assert.throws(() => linkBackpressure(c, c, { high: 1, low: 1 }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    await destroyAll(peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

E('the echo example: 64 MiB from a client that reads nothing for 3 s come back byte-exact; the server queues at most the high mark plus one read', async () => {
  const { loop, server } = await startEchoServer({ port: 0 });
  const closes: CloseReason[] = [];
  server.on('close', (_c: Client, reason: CloseReason) => closes.push(reason));
  let maxQueued = 0;
  const sampler = setInterval(() => {
    maxQueued = Math.max(maxQueued, loop.stats().queuedBytes);
  }, 2);
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  let socketError: unknown = null;
  socket.on('error', (e) => (socketError = e));
  try {
    await new Promise<void>((r) => socket.once('connect', r));
    const size = 64 * 1024 * 1024;
    const data = pattern(size, 21);
    socket.write(data);
    // Three seconds without reading: the server's echoes pile up only to the high mark.
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(closes, [], 'the client was not closed');
    assert.is(socketError, null);
    const paused = [...server.clients()][0]!;
    assert.not.ok(paused.isReading(), 'reading the client is paused meanwhile');
    const hash = createHash('sha256');
    let got = 0;
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.on('data', (c: Buffer) => {
          hash.update(c);
          got += c.length;
          if (got >= size) resolve();
        });
        socket.on('error', reject);
        socket.on('close', () => reject(new Error(`closed after ${got} bytes`)));
      }),
      30_000,
      'the 64 MiB echo',
    );
    assert.is(got, size);
    assert.is(hash.digest('hex'), digest(data), 'byte-exact');
    assert.ok(maxQueued <= ECHO_READ_PAUSE.high + READ_CHUNK, `queued output peaked at ${maxQueued} bytes`);
    assert.is(closes.length, 0);
  } finally {
    clearInterval(sampler);
    socket.destroy();
    await loop.close({ flushTimeoutMs: 100 });
  }
});

E('linkBackpressure: a relay stops reading its producer while the consumer is behind, resumes when it drains; byte-exact; the link ends with either client', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { softOutputLimit: null }).listen();
  const accepted: Client[] = [];
  server.on('connection', (c: Client) => accepted.push(c));
  const producerPeer = await connectRaw(server.port);
  await until(() => accepted.length === 1, 'the producer');
  const consumerPeer = await connectRaw(server.port);
  await until(() => accepted.length === 2, 'the consumer');
  const [producer, consumer] = accepted as [Client, Client];
  const marks = { high: 256 * 1024, low: 64 * 1024 };
  linkBackpressure(producer, consumer, marks);
  server.on('data', (c: Client, chunk: Buffer) => {
    if (c === producer) consumer.write(chunk);
  });
  let maxQueued = 0;
  let producerPaused = false;
  const sampler = setInterval(() => {
    maxQueued = Math.max(maxQueued, consumer.queuedBytes);
    if (!producer.isReading()) producerPaused = true;
  }, 2);
  try {
    const size = 16 * 1024 * 1024;
    const data = pattern(size, 33);
    consumerPeer.pause();
    producerPeer.write(data);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(producerPaused, 'the producer was paused while the consumer was behind');
    const got = await slowRead(consumerPeer, size, 0, 30_000);
    assert.is(digest(got), digest(data), 'byte-exact');
    assert.ok(maxQueued <= marks.high + READ_CHUNK, `the consumer's queue peaked at ${maxQueued} bytes`);
    await until(() => producer.isReading(), 'the producer reads again');
    // The consumer goes: the link ends, and the producer is not left paused.
    consumerPeer.destroy();
    await until(() => consumer.closed, 'the consumer closed');
    assert.ok(producer.isReading());
  } finally {
    clearInterval(sampler);
    await destroyAll(producerPeer, consumerPeer);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

D.run();
P.run();
E.run();
