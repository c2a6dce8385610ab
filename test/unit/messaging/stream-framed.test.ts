/**
 * Framed streams between a netloop framed server and a framed connector on
 * loopback: whole streams both ways with their metadata, messages and other
 * streams interleaved with the chunks, the receiver's Readable and its hold
 * on the connection, every way a stream ends early (the sender's signal or
 * source, the receiver's cancel or refusal, the connection's close), each
 * with its coded reason on both sides while the connection stays open, the
 * protocol errors a peer's frames can cause, and the options.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { FramedClient, FramedMessage } from '../../../lib/framing/framed-client.js';
import { FramedStreams, STREAM_FRAME_TYPE } from '../../../lib/messaging/stream-framed.js';
import type { IncomingStream } from '../../../lib/messaging/stream-framed.js';
import { StreamFrameKind } from '../../../lib/messaging/stream-protocol.js';
import { until, waitFor, withTimeout } from '../../helpers/net.js';
import { fdsOn, fileSha256, makeSparseFile } from '../../helpers/streams.js';
import { framedPair, generated, generatedBytes, tempDir } from './stream-rig.js';
import type { FramedPair } from './stream-rig.js';

const MiB = 1024 * 1024;

function registry(): MessageRegistry {
  const r = new MessageRegistry();
  r.register(1, 'Chat', 'json');
  return r;
}

/** A framed pair with a registry of one message type and FramedStreams on both ends. */
async function streamsPair(
  serverOptions: ConstructorParameters<typeof FramedStreams>[1] = {},
  connectorOptions: ConstructorParameters<typeof FramedStreams>[1] = {},
  ownerOptions: { maxOutputBytes?: number } = {},
): Promise<FramedPair & { serverStreams: FramedStreams; connectorStreams: FramedStreams }> {
  const pair = await framedPair({ registry: registry(), ...ownerOptions }, { registry: registry() });
  return { ...pair, serverStreams: new FramedStreams(pair.server, serverOptions), connectorStreams: new FramedStreams(pair.connector, connectorOptions) };
}

/** Reads an incoming stream to its end (or its error), hashing. */
async function drain(stream: IncomingStream): Promise<{ bytes: number; sha256: string; error: unknown }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { bytes, sha256: hash.digest('hex'), error: null };
  } catch (error) {
    return { bytes, sha256: hash.digest('hex'), error };
  }
}

/** The next incoming stream of `streams`. */
function nextStream(streams: FramedStreams): Promise<IncomingStream> {
  return waitFor<[FramedClient, IncomingStream]>(streams, 'stream').then(([, s]) => s);
}

/** Rejects unless `promise` rejects with a NetloopError of `code`; resolves with it. */
async function rejectsWith(promise: Promise<unknown>, code: string, what: string): Promise<NetloopError> {
  try {
    await withTimeout(promise, 20_000, what);
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: a NetloopError, got ${String(err)}`);
    assert.is((err as NetloopError).code, code, `${what}: ${(err as Error).message}`);
    return err as NetloopError;
  }
  assert.unreachable(`${what} did not fail`);
  throw new Error('unreachable');
}

function throwsCode(fn: () => unknown, code: string, what: string): NetloopError {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: ${String(err)}`);
    assert.is((err as NetloopError).code, code, `${what}: ${(err as Error).message}`);
    return err as NetloopError;
  }
  assert.unreachable(`${what} did not throw`);
  throw new Error('unreachable');
}

/** The Chat messages a framed owner receives, in order. */
function chats(owner: { on(name: 'message', fn: (client: FramedClient, m: FramedMessage) => void): unknown }): Array<{ n: number }> {
  const got: Array<{ n: number }> = [];
  owner.on('message', (_client, m) => {
    if (m.name === 'Chat') got.push(m.payload as { n: number });
  });
  return got;
}

/** The value of a stream frame: kind, id, body. */
function streamFrame(kind: number, id: number, body: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(5 + body.byteLength);
  b[0] = kind;
  b.writeUInt32BE(id, 1);
  b.set(body, 5);
  return b;
}

test('a stream each way arrives whole with its metadata and id; the sender learns { id, bytes }; ids are not reused on a connection', async () => {
  const { loop, near, far, serverStreams, connectorStreams } = await streamsPair();
  try {
    const total = 3 * MiB + 17;
    const down = nextStream(connectorStreams);
    const sent = serverStreams.send(near, generated(total), { meta: 'down.bin' });
    const incoming = await down;
    assert.is(incoming.metaText(), 'down.bin');
    assert.is(incoming.client, far);
    const got = await drain(incoming);
    assert.equal(await sent, { id: incoming.id, bytes: total });
    assert.is(got.error, null);
    assert.is(got.bytes, total);
    assert.is(got.sha256, createHash('sha256').update(generatedBytes(total)).digest('hex'));
    assert.is(incoming.bytesReceived, total);

    const up = nextStream(serverStreams);
    const meta = Uint8Array.from([0, 1, 2, 255]);
    const upSent = connectorStreams.send(far, [Buffer.from('up'), 'stream'], { meta });
    const upStream = await up;
    assert.equal([...upStream.meta], [...meta]);
    assert.is((await drain(upStream)).bytes, 8);
    assert.equal(await upSent, { id: 1, bytes: 8 });

    // The first stream's entry is gone once it ended; the next one still takes a new id.
    assert.equal(serverStreams.openStreams(near), { incoming: 0, outgoing: 0 });
    const again = nextStream(connectorStreams);
    const second = serverStreams.send(near, [Buffer.from('x')]);
    const s2 = await again;
    assert.is((await drain(s2)).bytes, 1);
    assert.is((await second).id, incoming.id + 1);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('messages and a second stream interleave with a large stream: they arrive while its chunks still do', async () => {
  const { loop, near, connector, serverStreams, connectorStreams } = await streamsPair();
  try {
    const total = 16 * MiB;
    const received = chats(connector);
    const streams: IncomingStream[] = [];
    const seenAtChat: number[] = [];
    connector.on('message', () => seenAtChat.push(streams[0]?.bytesReceived ?? -1));
    const results: Array<Promise<{ bytes: number; sha256: string; error: unknown }>> = [];
    connectorStreams.on('stream', (_client, s) => {
      streams.push(s);
      results.push(drain(s));
    });
    const big = serverStreams.send(near, generated(total, { chunk: 64 * 1024 }), { meta: 'big' });
    await until(() => (streams[0]?.bytesReceived ?? 0) > 0, 'the first chunks');
    for (let n = 1; n <= 3; n++) near.send('Chat', { n });
    const small = serverStreams.send(near, generated(256 * 1024), { meta: 'small' });
    await until(() => streams.length === 2 && streams[1]!.readableEnded, 'the small stream to end');
    assert.ok(streams[0]!.bytesReceived < total, `the big stream was still arriving (${streams[0]!.bytesReceived} bytes) when the small one ended`);
    await until(() => received.length === 3, 'the messages');
    assert.equal(received, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    for (const at of seenAtChat) assert.ok(at > 0 && at < total, `a message arrived mid-stream (at ${at} bytes)`);
    assert.is((await big).bytes, total);
    assert.is((await small).bytes, 256 * 1024);
    const [bigGot, smallGot] = await Promise.all(results);
    assert.is(bigGot!.sha256, createHash('sha256').update(generatedBytes(total)).digest('hex'));
    assert.is(smallGot!.bytes, 256 * 1024);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("a stream the receiver does not read holds its connection's reading; the sender holds at most its window; reading releases both", async () => {
  const { loop, near, far, serverStreams, connectorStreams } = await streamsPair({}, { highWaterMark: 64 * 1024 });
  try {
    const total = 32 * MiB;
    const windowBytes = 1 * MiB;
    const source = generated(total, { chunk: 64 * 1024 });
    const arrived = nextStream(connectorStreams);
    const sent = serverStreams.send(near, source, { windowBytes });
    const stream = await arrived;
    await until(() => !far.isReading(), "the connector's reading to be held");
    // The sender's queue climbs past its low mark only once the kernel's buffers are full: the pipe is stalled.
    await until(() => near.queuedBytes > windowBytes / 2, "the sender's queue to fill", 20_000);
    // What left the source is the window, the kernel's socket buffers and the receiver's buffer.
    const stalledAt = source.produced;
    assert.ok(stalledAt < total / 2, `the source was not drained: ${stalledAt} bytes produced`);
    assert.ok(near.queuedBytes <= windowBytes, `queued ${near.queuedBytes}`);
    assert.is(stream.readableLength, stream.bytesReceived, 'nothing was read yet: the receiver holds what arrived');
    assert.ok(stream.bytesReceived <= 2 * 64 * 1024, `the receiver holds its highWaterMark and one chunk at most: ${stream.bytesReceived}`);
    const got = await drain(stream);
    assert.is(got.bytes, total);
    assert.is((await sent).bytes, total);
    assert.ok(far.isReading(), 'reading resumed');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('sendFile and createWritable send framed streams; the descriptor is released, after a signal cut the file too; a missing file opens no stream', async () => {
  const tmp = tempDir();
  const { loop, near, serverStreams, connectorStreams } = await streamsPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 5 * MiB);
    const arrived = nextStream(connectorStreams);
    const sent = serverStreams.sendFile(near, file, { meta: 'f.bin' });
    const stream = await arrived;
    const out = path.join(tmp.dir, 'copy.bin');
    await pipeline(stream, fs.createWriteStream(out));
    assert.equal(await sent, { id: stream.id, bytes: 5 * MiB });
    assert.is(fdsOn(file), 0);
    assert.is(await fileSha256(out), await fileSha256(file));

    const err = await rejectsWith(serverStreams.sendFile(near, path.join(tmp.dir, 'missing')), ErrorCode.STREAM_SOURCE_FAILED, 'a missing file');
    assert.is(err.details['syscallCode'], 'ENOENT');
    assert.equal(serverStreams.openStreams(near), { incoming: 0, outgoing: 0 });

    // A signal cuts a framed file transfer: both sides learn it, the descriptor is released, the connection lives.
    const big = path.join(tmp.dir, 'big.bin');
    makeSparseFile(big, 256 * MiB);
    const controller = new AbortController();
    const cutArrived = nextStream(connectorStreams);
    const cut = rejectsWith(serverStreams.sendFile(near, big, { signal: controller.signal }), ErrorCode.STREAM_ABORTED, 'a cut file');
    const cutStream = await cutArrived;
    await until(() => cutStream.bytesReceived > 0, 'the first chunks of the file');
    assert.is(fdsOn(big), 1, 'the file is open during the transfer');
    controller.abort();
    const cutGot = await drain(cutStream);
    assert.is((await cut).details['by'], 'signal');
    assert.is(fdsOn(big), 0, 'the descriptor is closed when the transfer rejects');
    assert.is((cutGot.error as NetloopError).details['remoteCode'], ErrorCode.STREAM_ABORTED);
    assert.ok(near.writable);

    const viaWritable = nextStream(connectorStreams);
    const writable = serverStreams.createWritable(near, { meta: 'w' });
    const piped = pipeline(fs.createReadStream(file), writable);
    const w = await viaWritable;
    assert.is(w.id, writable.streamId);
    assert.is((await drain(w)).sha256, await fileSha256(file));
    await piped;
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test("the sender's signal, its failing source and its Writable's destroy abort the stream on both sides (the peer's remoteCode); the connection stays open", async () => {
  const { loop, near, connector, serverStreams, connectorStreams } = await streamsPair();
  try {
    const received = chats(connector);
    const cases: Array<{ name: string; start: () => Promise<unknown>; local: string; remote: string }> = [];
    const controller = new AbortController();
    cases.push({
      name: 'signal',
      start: () => serverStreams.send(near, generated(64 * MiB, { delayMs: 1 }), { signal: controller.signal }),
      local: ErrorCode.STREAM_ABORTED,
      remote: ErrorCode.STREAM_ABORTED,
    });
    cases.push({
      name: 'source',
      start: () => serverStreams.send(near, generated(4 * MiB, { failAt: 512 * 1024 })),
      local: ErrorCode.STREAM_SOURCE_FAILED,
      remote: ErrorCode.STREAM_SOURCE_FAILED,
    });
    for (const c of cases) {
      const arrived = nextStream(connectorStreams);
      const sent = rejectsWith(c.start(), c.local, c.name);
      const stream = await arrived;
      if (c.name === 'signal') {
        await until(() => stream.bytesReceived > 0, 'the first chunks');
        controller.abort();
      }
      const got = await drain(stream);
      const local = await sent;
      if (c.name === 'signal') assert.is(local.details['by'], 'signal');
      assert.ok(isNetloopError(got.error, ErrorCode.STREAM_ABORTED), `${c.name}: ${String(got.error)}`);
      assert.is((got.error as NetloopError).details['by'], 'peer');
      assert.is((got.error as NetloopError).details['remoteCode'], c.remote);
    }
    // A Writable destroyed with a coded error sends that code.
    const arrived = nextStream(connectorStreams);
    const writable = serverStreams.createWritable(near);
    writable.on('error', () => undefined);
    writable.write(Buffer.alloc(1000, 1));
    const stream = await arrived;
    await until(() => stream.bytesReceived === 1000, 'the first chunk');
    writable.destroy(new NetloopError(ErrorCode.STREAM_INTERRUPTED, 'gave up'));
    const got = await drain(stream);
    assert.is((got.error as NetloopError).details['remoteCode'], ErrorCode.STREAM_INTERRUPTED);

    near.send('Chat', { n: 7 });
    await until(() => received.length === 1, 'a message after the aborts');
    assert.ok(near.writable);
    assert.equal(serverStreams.openStreams(near), { incoming: 0, outgoing: 0 });
    assert.equal(connectorStreams.openStreams(near), { incoming: 0, outgoing: 0 }, 'a client of another owner has none');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('the receiver destroying its stream cancels the sender (NETLOOP_STREAM_ABORTED, by: peer); with no listener or over maxConcurrentStreams it refuses (NETLOOP_STREAM_REFUSED)', async () => {
  const { loop, near, far, serverStreams, connectorStreams } = await streamsPair({ maxConcurrentStreams: 1 });
  try {
    const arrived = nextStream(connectorStreams);
    const sent = serverStreams.send(near, generated(64 * MiB));
    const stream = await arrived;
    await until(() => stream.bytesReceived > 0, 'the first chunks');
    stream.destroy();
    const err = await rejectsWith(sent, ErrorCode.STREAM_ABORTED, 'the cancelled stream');
    assert.is(err.details['by'], 'peer');
    assert.is(err.details['remoteCode'], ErrorCode.STREAM_ABORTED);

    // Nobody listens on the server: the connector's stream is refused (while it is still being sent).
    const refused = await rejectsWith(connectorStreams.send(far, generated(64 * MiB)), ErrorCode.STREAM_REFUSED, 'no listener');
    assert.is(refused.details['by'], 'peer');

    // One stream at a time on the server (maxConcurrentStreams 1, which also bounds its own sends).
    const taken: IncomingStream[] = [];
    serverStreams.on('stream', (_c, s) => taken.push(s));
    const first = connectorStreams.createWritable(far);
    const second = connectorStreams.createWritable(far);
    const secondFailed = waitFor<[NetloopError]>(second, 'error');
    const [secondErr] = await secondFailed;
    assert.is(secondErr.code, ErrorCode.STREAM_REFUSED);
    assert.is(taken.length, 1);
    first.end('done');
    assert.is((await drain(taken[0]!)).bytes, 4);

    const w = serverStreams.createWritable(near);
    const local = throwsCode(() => serverStreams.createWritable(near), ErrorCode.STREAM_REFUSED, 'a second outgoing stream');
    assert.is(local.details['by'], 'local');
    w.end();
    await until(() => serverStreams.openStreams(near).outgoing === 0, 'the first to end');
    assert.ok(near.writable && far.writable, 'the connection stays open');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("the connection's close mid-stream fails both sides with NETLOOP_STREAM_INTERRUPTED; a 'stream' listener that throws closes that client with handler-error", async () => {
  const { loop, near, serverStreams, connectorStreams } = await streamsPair();
  try {
    const arrived = nextStream(connectorStreams);
    const sent = serverStreams.send(near, generated(64 * MiB));
    const stream = await arrived;
    await until(() => stream.bytesReceived > 0, 'the first chunks');
    near.destroy();
    const [got, err] = await Promise.all([drain(stream), rejectsWith(sent, ErrorCode.STREAM_INTERRUPTED, 'the sender')]);
    assert.is(err.details['reason'], 'force-close');
    assert.ok(isNetloopError(got.error, ErrorCode.STREAM_INTERRUPTED), String(got.error));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }

  const again = await streamsPair();
  try {
    again.connectorStreams.on('stream', () => {
      throw new Error('listener bug');
    });
    const closed = waitFor<[FramedClient, string, NetloopError]>(again.connector, 'close');
    const sent = rejectsWith(again.serverStreams.send(again.near, generated(MiB)), ErrorCode.STREAM_INTERRUPTED, 'the sender of a stream whose receiver closed');
    const [, reason, error] = await closed;
    assert.is(reason, 'handler-error');
    assert.is(error.code, ErrorCode.HANDLER_ERROR);
    await sent;
  } finally {
    await again.loop.close({ flushTimeoutMs: 100 });
  }
});

test('malformed stream frames close the connection with protocol-error and NETLOOP_STREAM_PROTOCOL; frames of streams the receiver dropped are ignored', async () => {
  const bad: Array<[string, (id: number) => Buffer[]]> = [
    ['shorter than its header', () => [Buffer.from([StreamFrameKind.DATA, 0, 0])]],
    ['unknown kind', (id) => [streamFrame(9, id)]],
    ['empty chunk', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.DATA, id)]],
    ['chunk over maxChunkBytes', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.DATA, id, Buffer.alloc(1025))]],
    ['opened twice', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.OPEN, id)]],
    ['end of a wrong length', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.DATA, id, Buffer.alloc(3)), streamFrame(StreamFrameKind.END, id, Buffer.from([0, 0, 0, 0, 0, 0, 0, 4]))]],
    ['malformed end', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.END, id, Buffer.alloc(4))]],
    ['end past 2^53', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.END, id, Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0]))]],
    ['abort code with a control byte', (id) => [streamFrame(StreamFrameKind.OPEN, id), streamFrame(StreamFrameKind.ABORT, id, Buffer.from('BAD\n'))]],
    ['cancel code too long', (id) => [streamFrame(StreamFrameKind.CANCEL, id, Buffer.alloc(65, 0x41))]],
    ['metadata over maxMetaBytes', (id) => [streamFrame(StreamFrameKind.OPEN, id, Buffer.alloc(129))]],
  ];
  for (const [name, frames] of bad) {
    // The connector has no FramedStreams: it writes stream frames by hand, as a broken peer would.
    const pair = await framedPair();
    try {
      const streams = new FramedStreams(pair.server, { maxChunkBytes: 1024, maxMetaBytes: 128 });
      streams.on('stream', (_c, s) => s.resume());
      const closed = waitFor<[FramedClient, string, NetloopError]>(pair.server, 'close');
      for (const f of frames(5)) pair.far.sendRaw(STREAM_FRAME_TYPE, f);
      const [, reason, error] = await closed;
      assert.is(reason, 'protocol-error', name);
      assert.is(error.code, ErrorCode.STREAM_PROTOCOL, name);
    } finally {
      await pair.loop.close({ flushTimeoutMs: 100 });
    }
  }

  // DATA, END and ABORT of an id not open, and a CANCEL of one not sent, are dropped: the connection lives.
  const pair = await framedPair();
  try {
    const streams = new FramedStreams(pair.server);
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.DATA, 40, Buffer.from('late')));
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.END, 40, Buffer.alloc(8)));
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.ABORT, 41, Buffer.from('X')));
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.CANCEL, 42, Buffer.from('X')));
    // Then a whole stream by hand, checked by its length.
    const arrived = nextStream(streams);
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.OPEN, 7, Buffer.from('hand')));
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.DATA, 7, Buffer.from('abc')));
    pair.far.sendRaw(STREAM_FRAME_TYPE, streamFrame(StreamFrameKind.END, 7, Buffer.from([0, 0, 0, 0, 0, 0, 0, 3])));
    const s = await arrived;
    assert.is(s.id, 7);
    assert.is(s.metaText(), 'hand');
    const got = await drain(s);
    assert.is(got.bytes, 3);
    assert.ok(pair.near.writable);
  } finally {
    await pair.loop.close({ flushTimeoutMs: 100 });
  }
});

test('options: every limit validated (NETLOOP_INVALID_OPTION naming it), the type must fit the layout and be free, sends are checked before anything opens; close() aborts every stream and gives the type back', async () => {
  const loop = new EventLoop();
  try {
    const server = new FramedServer(loop, { port: 0, registry: registry() });
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ type: 0 }, 'type'],
      [{ type: 0x1_0000 }, 'type'],
      [{ maxConcurrentStreams: 0 }, 'maxConcurrentStreams'],
      [{ maxChunkBytes: 0 }, 'maxChunkBytes'],
      [{ maxChunkBytes: 2 ** 31 }, 'maxChunkBytes'],
      [{ maxMetaBytes: -1 }, 'maxMetaBytes'],
      [{ highWaterMark: 0 }, 'highWaterMark'],
      [{ chunkBytes: 1.5 }, 'chunkBytes'],
      [{ chunkBytes: 1024, windowBytes: 1024 }, 'windowBytes'],
    ];
    for (const [options, option] of bad) {
      assert.is(throwsCode(() => new FramedStreams(server, options), ErrorCode.INVALID_OPTION, JSON.stringify(options)).details['option'], option);
    }
    throwsCode(() => new FramedStreams(server, null as never), ErrorCode.INVALID_OPTION, 'null options');
    throwsCode(() => new FramedStreams({} as never), ErrorCode.INVALID_OPTION, 'not an owner');
    throwsCode(() => new FramedStreams(server, { type: 1 }), ErrorCode.DUPLICATE_TYPE, 'a registered type');
    const first = new FramedStreams(server);
    assert.is(first.type, STREAM_FRAME_TYPE);
    throwsCode(() => new FramedStreams(server), ErrorCode.DUPLICATE_TYPE, 'the type reserved twice');
    first.close();
    first.close();
    new FramedStreams(server).close();

    // A 1-byte type field: the type is required; no type field at all: refused.
    const pomelo = new FramedServer(loop, { port: 0, layout: 'pomelo' });
    assert.is(throwsCode(() => new FramedStreams(pomelo), ErrorCode.INVALID_OPTION, 'pomelo').details['max'], 0xff);
    assert.is(new FramedStreams(pomelo, { type: 0xf2 }).type, 0xf2);
    const muduo = new FramedServer(loop, { port: 0, layout: 'muduo' });
    for (const type of [undefined, 0, 1]) {
      assert.is(throwsCode(() => new FramedStreams(muduo, { type }), ErrorCode.INVALID_OPTION, `muduo ${String(type)}`).details['option'], 'type');
    }
  } finally {
    await loop.close();
  }

  const { loop: pairLoop, near, far, serverStreams, connectorStreams } = await streamsPair({ maxMetaBytes: 8 }, {}, { maxOutputBytes: 2 * MiB });
  try {
    const sends: Array<[string, () => unknown, string]> = [
      ['meta over maxMetaBytes', () => serverStreams.createWritable(near, { meta: '123456789' }), ErrorCode.INVALID_OPTION],
      ['meta of a number', () => serverStreams.createWritable(near, { meta: 5 as never }), ErrorCode.INVALID_OPTION],
      ['options null', () => serverStreams.createWritable(near, null as never), ErrorCode.INVALID_OPTION],
      ['a window over maxOutputBytes', () => serverStreams.createWritable(near, { windowBytes: 4 * MiB }), ErrorCode.INVALID_OPTION],
      ["another owner's client", () => serverStreams.createWritable(far), ErrorCode.INVALID_OPTION],
      ['a bad signal', () => serverStreams.createWritable(near, { signal: 'stop' as never }), ErrorCode.INVALID_OPTION],
    ];
    for (const [name, fn, code] of sends) throwsCode(fn, code, name);
    await rejectsWith(serverStreams.send(near, 42 as never), ErrorCode.INVALID_OPTION, 'a source that is no stream');
    await rejectsWith(serverStreams.sendFile(near, 'whatever', { meta: '123456789' }), ErrorCode.INVALID_OPTION, 'sendFile checks first');
    assert.equal(serverStreams.openStreams(near), { incoming: 0, outgoing: 0 }, 'nothing opened');

    // close(): both directions aborted, the peers told, the type given back.
    const arrivedDown = nextStream(connectorStreams);
    const down = serverStreams.send(near, generated(64 * MiB));
    const upArrived = waitFor<[FramedClient, IncomingStream]>(serverStreams, 'stream');
    const up = connectorStreams.createWritable(far);
    up.write('x');
    const [, upStream] = await upArrived;
    const downStream = await arrivedDown;
    upStream.on('error', () => undefined);
    const upFailed = waitFor<[NetloopError]>(up, 'error');
    serverStreams.close();
    const downErr = await rejectsWith(down, ErrorCode.STREAM_ABORTED, 'the outgoing stream of a closed FramedStreams');
    assert.is(downErr.details['by'], 'local');
    assert.is((await drain(downStream)).error instanceof NetloopError, true);
    const [upErr] = await upFailed;
    assert.is(upErr.code, ErrorCode.STREAM_ABORTED);
    assert.is(upErr.details['by'], 'peer');
    throwsCode(() => serverStreams.createWritable(near), ErrorCode.STREAM_ABORTED, 'a send after close()');
    assert.ok(near.writable, 'the connection stays open');
  } finally {
    await pairLoop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
