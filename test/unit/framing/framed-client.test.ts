/**
 * A framed client: delivery of every frame in order whatever the chunking,
 * hostile input closing only the offender with a coded error, send and
 * sendRaw, the pre-authentication limit, the frame deadline, handler faults,
 * and a connector's fresh decoder after a reconnection.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import type { Client } from '../../../lib/reactor/client.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import type { FramedClient, FramedMessage } from '../../../lib/framing/framed-client.js';
import { FRAMING_DEFAULTS } from '../../../lib/framing/framing.js';
import type { FramingOptions } from '../../../lib/framing/framing.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { collectAll, connectRaw, countWrites, destroyAll, digest, pattern, readBytes, until, waitFor } from '../../helpers/net.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';

import { accept, chatRegistry, closeOf, echoServer, expectProtocolError, frame, isCode, netloopHeader, rawEchoServer, readFrames, stillEchoes, throwsCode } from './rig.js';

// ─── delivery ─────────────────────────────────────────────────────────────────

test('connector and server exchange messages of 0 bytes to the maximum, in order, both ways', async () => {
  const maxFrameLength = 256 * 1024;
  const layout = { preset: 'netloop' as const, maxFrameLength };
  const { loop, server, got } = await echoServer({ layout });
  server.on('connection', (c: FramedClient) => c.markAuthenticated());
  try {
    const replies: FramedMessage[] = [];
    const connector = new FramedConnector(loop, {
      port: server.port,
      reconnect: false,
      layout,
      registry: chatRegistry(),
      onMessage: (_c, m) => void replies.push(m),
    }).connect();
    const [client] = await waitFor<[FramedClient]>(connector, 'connected');
    const maxValue = maxFrameLength - 6;
    const sizes = [0, 1, 63, 1024, 1025, 65535, 65536, 200_000, maxValue];
    for (const [i, n] of sizes.entries()) assert.ok(client.send('bytes', pattern(n, i)));
    client.send('text', 'héllo');
    client.send('json', { a: [1, 2, { b: null }] });
    await until(() => replies.length === sizes.length + 2, 'every reply');
    assert.equal(
      got.map((m) => m.name),
      [...sizes.map(() => 'bytes'), 'text', 'json'],
    );
    for (const [i, n] of sizes.entries()) {
      const r = replies[i]!;
      assert.is(r.type, 3);
      assert.is(r.name, 'bytes');
      assert.is(r.value.length, n);
      assert.is(digest(r.payload as Buffer), digest(pattern(n, i)), `value ${i} (${n} bytes) intact`);
    }
    assert.is(replies[sizes.length]!.payload, 'héllo');
    assert.equal(replies[sizes.length + 1]!.payload, { a: [1, 2, { b: null }] });
    // One byte over the maximum is refused synchronously, nothing queued.
    const before = client.queuedBytes;
    const err = throwsCode(() => client.send('bytes', Buffer.alloc(maxValue + 1)), ErrorCode.FRAME_TOO_LARGE);
    assert.is(err.details['max'], maxFrameLength);
    assert.is(client.queuedBytes, before);
    await connector.close();
  } finally {
    await loop.close();
  }
});

test('many frames in one chunk, a frame split across chunks, and a stream fed one byte at a time', async () => {
  const { loop, server, got } = await echoServer();
  try {
    const { peer, client } = await accept(server);
    const many = Buffer.concat(Array.from({ length: 200 }, (_, i) => frame(1, `m${i}`)));
    const tail = frame(3, pattern(3000, 7));
    // 200 whole frames and the first 100 bytes of the next one in one write.
    peer.write(Buffer.concat([many, tail.subarray(0, 100)]));
    await until(() => got.length === 200 && client.socket.bytesRead === many.length + 100, '200 frames and a partial one');
    assert.equal(client.framingStats().bufferedBytes, 94);
    peer.write(tail.subarray(100, 2000));
    await until(() => client.socket.bytesRead === many.length + 2000, 'the middle of the split frame');
    assert.is(got.length, 200);
    peer.write(tail.subarray(2000));
    await until(() => got.length === 201, 'the split frame');
    assert.equal(
      got.slice(0, 200).map((m) => m.payload),
      Array.from({ length: 200 }, (_, i) => `m${i}`),
    );
    assert.is(digest(got[200]!.payload as Buffer), digest(pattern(3000, 7)));
    // Fed one byte at a time (each byte waits until the server read it): identical messages.
    const stream = Buffer.concat([frame(1, 'a'), frame(2, '{"k":1}'), frame(3, ''), frame(1, 'zz')]);
    const base = client.socket.bytesRead;
    for (let i = 0; i < stream.length; i++) {
      peer.write(stream.subarray(i, i + 1));
      await until(() => client.socket.bytesRead === base + i + 1, `byte ${i}`);
    }
    await until(() => got.length === 205, 'the byte-wise frames');
    assert.equal(
      got.slice(201).map((m) => [m.name, m.payload]),
      [
        ['text', 'a'],
        ['json', { k: 1 }],
        ['bytes', Buffer.alloc(0)],
        ['text', 'zz'],
      ],
    );
    const replies = await readFrames(peer, 205);
    assert.is(replies[204]!.value.toString(), 'zz');
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('the replies of one read leave in one socket write', async () => {
  const { loop, server, got } = await echoServer();
  try {
    const { peer, client } = await accept(server);
    const writes = countWrites(client.socket);
    let reads = 0;
    client.socket.on('data', () => reads++);
    peer.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(1, `r${i}`))));
    const replies = await readFrames(peer, 100);
    assert.is(got.length, 100);
    assert.is(replies[99]!.value.toString(), 'r99');
    assert.ok(writes.count <= reads, `${writes.count} writes for ${reads} reads`);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('values are views of the received chunk, or buffers of their own with copy', async () => {
  for (const copy of [false, true]) {
    const { loop, server, got } = await echoServer({ copy, registry: null, onMessage: (_c, m) => void got.push(m) });
    try {
      const { peer, client } = await accept(server);
      const chunks: Buffer[] = [];
      client.socket.on('data', (c: Buffer) => chunks.push(c));
      peer.write(Buffer.concat([frame(5, 'abc'), frame(6, 'defg')]));
      await until(() => got.length === 2, 'two messages');
      const [a, b] = got as [FramedMessage, FramedMessage];
      assert.equal([a.type, a.name, a.value.toString(), b.type, b.value.toString()], [5, undefined, 'abc', 6, 'defg']);
      assert.is(a.payload, a.value, 'without a registry the payload is the value');
      if (copy) {
        assert.ok(chunks.every((c) => c.buffer !== a.value.buffer && c.buffer !== b.value.buffer), 'copies, not views of the chunk');
      } else {
        assert.is(a.value.buffer, chunks[0]!.buffer, 'a view of the received chunk');
        assert.is(b.value.buffer, chunks[0]!.buffer);
        assert.is(a.value.byteOffset, 6);
      }
      await destroyAll(peer);
    } finally {
      await loop.close();
    }
  }
});

test('without onMessage, messages are emitted as the server event', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: chatRegistry() }).listen();
  try {
    const seen = waitFor<[FramedClient, FramedMessage]>(server, 'message');
    const { peer, client } = await accept(server);
    peer.write(frame(1, 'evt'));
    const [c, m] = await seen;
    assert.is(c, client);
    assert.equal([m.type, m.name, m.payload], [1, 'text', 'evt']);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});


// ─── bad input closes only the offender (faults.test.ts items 1, 2, 5, 6) ──────

/** Asserts a netloop-layout peer still gets its echo. */
test('length 0, exactly max, max + 1, 0xFFFFFFFF and a high bit set; length below the header', async () => {
  const maxFrameLength = 1024;
  const { loop, server, got } = await echoServer({ layout: { maxFrameLength } });
  try {
    const { peer: bystander } = await accept(server);
    const { peer } = await accept(server);
    peer.write(Buffer.concat([frame(3, ''), frame(3, pattern(maxFrameLength - 6))]));
    const ok = await readFrames(peer, 2);
    assert.equal(ok.map((f) => f.value.length), [0, maxFrameLength - 6]);
    assert.is(got.length, 2);
    let err = await expectProtocolError(server, netloopHeader(maxFrameLength - 5, 3), ErrorCode.FRAME_TOO_LARGE, () => stillEchoes(bystander));
    assert.equal([err.details['declared'], err.details['frameLength'], err.details['max']], [maxFrameLength - 5, maxFrameLength + 1, 1024]);
    err = await expectProtocolError(server, netloopHeader(0xffffffff, 3), ErrorCode.FRAME_TOO_LARGE, () => stillEchoes(bystander));
    assert.is(err.details['declared'], 0xffffffff);
    err = await expectProtocolError(server, netloopHeader(0x80000001, 3), ErrorCode.FRAME_TOO_LARGE, () => stillEchoes(bystander));
    assert.is(err.details['declared'], 0x80000001, 'never read as a negative length');
    await destroyAll(peer, bystander);
  } finally {
    await loop.close();
  }
  // cellnet: the length counts the 2-byte type, so a length of 0 or 1 is below the header.
  const cellnet = new MessageRegistry();
  cellnet.registerCellnet('proto.ChatREQ', 'raw');
  const c = await echoServer({ layout: 'cellnet', registry: cellnet });
  try {
    const { peer: bystander } = await accept(c.server);
    const id = cellnet.resolve('proto.ChatREQ').id;
    const err = await expectProtocolError(c.server, Buffer.from([1, 0, 0, 0]), ErrorCode.FRAME_TOO_SHORT, async () => {
      bystander.write(frame(id, 'cellnet ok', 'cellnet'));
      const h = await readBytes(bystander, 4);
      assert.equal([h.readUInt16LE(0), h.readUInt16LE(2)], [12, id]);
      assert.is((await readBytes(bystander, 10)).toString(), 'cellnet ok');
    });
    assert.equal([err.details['declared'], err.details['min']], [1, 2]);
    await destroyAll(bystander);
  } finally {
    await c.loop.close();
  }
});

test('unknown type (strict registry) closes; a lenient registry delivers it raw', async () => {
  const { loop, server } = await echoServer();
  try {
    const { peer: bystander } = await accept(server);
    const err = await expectProtocolError(server, frame(99, 'who'), ErrorCode.UNKNOWN_TYPE, () => stillEchoes(bystander));
    assert.is(err.details['type'], 99);
    await destroyAll(bystander);
  } finally {
    await loop.close();
  }
  const lenient = await echoServer({ registry: chatRegistry(false), onMessage: (_c, m) => void lenient.got.push(m) });
  try {
    const { peer } = await accept(lenient.server);
    peer.write(Buffer.concat([frame(99, 'who'), frame(1, 'hi')]));
    await until(() => lenient.got.length === 2, 'two messages');
    const [a, b] = lenient.got as [FramedMessage, FramedMessage];
    assert.equal([a.type, a.name, (a.payload as Buffer).toString()], [99, undefined, 'who']);
    assert.equal([b.name, b.payload], ['text', 'hi']);
    await destroyAll(peer);
  } finally {
    await lenient.loop.close();
  }
});

test('a payload its serializer cannot decode closes with BAD_PAYLOAD', async () => {
  const { loop, server } = await echoServer();
  try {
    const { peer: bystander } = await accept(server);
    const err = await expectProtocolError(server, frame(2, '{not json'), ErrorCode.BAD_PAYLOAD, () => stillEchoes(bystander));
    assert.is(err.details['type'], 'json');
    await destroyAll(bystander);
  } finally {
    await loop.close();
  }
});

test('a NUL then a flood (desync) and random bytes close only the offender with a coded error', async () => {
  const { loop, server } = await echoServer();
  try {
    const { peer: bystander } = await accept(server);
    const flood = Buffer.concat(Array.from({ length: 2000 }, () => frame(1, 'flood')));
    await expectProtocolError(server, Buffer.concat([frame(1, 'ok'), Buffer.from([0]), flood]), ErrorCode.UNKNOWN_TYPE, () => stillEchoes(bystander));
    const codes = new Set<string>([ErrorCode.FRAME_TOO_LARGE, ErrorCode.FRAME_TOO_SHORT, ErrorCode.UNKNOWN_TYPE, ErrorCode.BAD_PAYLOAD]);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2048 }), async (bytes) => {
        const { peer, client } = await accept(server);
        const closed = closeOf(server, client);
        const done = collectAll(peer);
        peer.end(bytes);
        const [, reason, err] = await closed;
        // Either the bytes were refused with a framing code, or they parsed (or ended mid-frame) and the FIN closed cleanly.
        if (reason === 'protocol-error') assert.ok(err !== undefined && codes.has(err.code), String(err?.code));
        else assert.is(reason, 'peer-closed');
        await done;
        await destroyAll(peer);
      }),
      { numRuns: 25 },
    );
    bystander.write(frame(1, 'alive'));
    assert.is((await readFrames(bystander, 1))[0]!.value.toString(), 'alive');
    await destroyAll(bystander);
  } finally {
    await loop.close();
  }
});


// ─── send (faults.test.ts item 16) ─────────────────────────────────────────────

test('send refuses oversize, wrong-type and unknown messages synchronously, with nothing queued', async () => {
  const { loop, server } = await echoServer({ layout: { maxFrameLength: 4096 } });
  const raw = await new Server(loop).listen();
  try {
    const { peer, client } = await accept(server);
    const before = client.queuedBytes;
    throwsCode(() => client.send('bytes', Buffer.alloc(4091)), ErrorCode.FRAME_TOO_LARGE);
    throwsCode(() => client.send('text', 42), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.send('json', { n: 1n }), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.send('bytes', 'not bytes'), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.send('nope', 'x'), ErrorCode.UNKNOWN_TYPE);
    throwsCode(() => client.send(77, Buffer.alloc(1)), ErrorCode.UNKNOWN_TYPE);
    assert.is(client.queuedBytes, before, 'nothing queued');
    assert.ok(client.send('bytes', Buffer.alloc(4090)), 'exactly the maximum is accepted');
    const [f] = await readFrames(peer, 1);
    assert.is(f!.value.length, 4090, 'the first bytes on the wire are the valid frame');
    // A client without framing has no send().
    const plain = waitFor<[Client]>(raw, 'connection');
    const rawPeer = await connectRaw(raw.port);
    const [rawClient] = await plain;
    // A raw server's client has no send at all: the reactor knows no codec.
    assert.not.ok('send' in rawClient);
    await destroyAll(peer, rawPeer);
  } finally {
    await loop.close();
  }
  // Without a registry the type is a number and the payload bytes.
  const r = await echoServer({ registry: null, layout: 'muduo' });
  try {
    const { peer, client } = await accept(r.server);
    throwsCode(() => client.send('name', Buffer.alloc(1)), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.send(1, Buffer.alloc(1)), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.send(0, 'text'), ErrorCode.INVALID_VALUE);
    await destroyAll(peer);
  } finally {
    await r.loop.close();
  }
});


// ─── raw frames: onRawFrame and sendRaw ──────────────────────────────────────────

/** A server whose onRawFrame records every frame (type and a copy of its range) and echoes it with sendRaw. */
test('onRawFrame hands out type and range without a message; sendRaw echoes ranges whole, cut and large, in order', async () => {
  const { loop, server, got } = await rawEchoServer({ copyThreshold: 64 });
  try {
    const { peer, client } = await accept(server);
    const big = pattern(5000, 11).toString('latin1');
    const values = ['', 'a', 'hello', big, 'x'.repeat(64), 'y'.repeat(65)];
    const stream = Buffer.concat(values.map((v, i) => frame(i + 1, Buffer.from(v, 'latin1'))));
    // Whole frames in one write, then the same stream cut into 7-byte pieces.
    peer.write(stream);
    for (let i = 0; i < stream.length; i += 7) peer.write(stream.subarray(i, i + 7));
    const replies = await readFrames(peer, values.length * 2);
    const expected = [...values, ...values].map((v, i) => [(i % values.length) + 1, v]);
    assert.equal(got, expected);
    assert.equal(
      replies.map((r) => [r.type, r.value.toString('latin1')]),
      expected,
    );
    assert.is(client.framingStats().inFlight, 0, 'nothing is pending after a raw frame');
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('sendRaw refuses a bad range, an unknown or oversize type, or no framing, with nothing queued', async () => {
  const { loop, server } = await rawEchoServer({ registry: chatRegistry(), layout: { maxFrameLength: 4096 } });
  const raw = await new Server(loop).listen();
  try {
    const { peer, client } = await accept(server);
    const before = client.queuedBytes;
    const bytes = Buffer.alloc(100);
    throwsCode(() => client.sendRaw(3, bytes, 10, 5), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.sendRaw(3, bytes, -1, 5), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.sendRaw(3, bytes, 0, 101), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.sendRaw(3, bytes, 0.5, 5), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.sendRaw(3, 'text' as unknown as Uint8Array), ErrorCode.INVALID_VALUE);
    throwsCode(() => client.sendRaw(77, bytes), ErrorCode.UNKNOWN_TYPE);
    throwsCode(() => client.sendRaw(3, Buffer.alloc(4091)), ErrorCode.FRAME_TOO_LARGE);
    assert.is(client.queuedBytes, before, 'nothing queued');
    assert.ok(client.sendRaw(3, Buffer.alloc(5000), 0, 4090), 'exactly the maximum is accepted');
    const [f] = await readFrames(peer, 1);
    assert.is(f!.value.length, 4090);
    // A raw server's client has no sendRaw at all: the reactor knows no codec.
    const plain = waitFor<[Client]>(raw, 'connection');
    const rawPeer = await connectRaw(raw.port);
    const [rawClient] = await plain;
    assert.not.ok('sendRaw' in rawClient);
    await destroyAll(peer, rawPeer);
  } finally {
    await loop.close();
  }
});

test('a throwing onRawFrame closes only that client with handler-error; onRawFrame with onMessage is refused', async () => {
  const loop = new EventLoop();
  try {
    const server = await new FramedServer(loop, {
      onRawFrame(_client, type) {
        if (type === 9) throw new Error('boom');
      },
    }).listen();
    const a = await accept(server);
    const b = await accept(server);
    const closed = closeOf(server, a.client);
    a.peer.write(frame(9, 'x'));
    const [, reason, error] = await closed;
    assert.is(reason, 'handler-error');
    assert.is(error?.code, ErrorCode.HANDLER_ERROR);
    assert.not.ok(b.client.closed);
    await destroyAll(a.peer, b.peer);
    for (const bad of [{ onRawFrame: 42 }, { onRawFrame() {}, onMessage() {} }] as unknown as FramingOptions[]) {
      try {
        await new FramedServer(loop, { ...bad }).listen();
        assert.unreachable('accepted a bad onRawFrame option');
      } catch (err) {
        assert.ok(isCode(err, ErrorCode.INVALID_OPTION));
      }
    }
  } finally {
    await loop.close();
  }
});

test('a large value goes out as header + value, all or nothing against the hard output limit', async () => {
  const { loop, server } = await echoServer({}, { maxOutputBytes: 5000, softOutputLimit: null });
  try {
    const { peer, client } = await accept(server);
    const closed = closeOf(server, client);
    const value = pattern(2000, 3);
    assert.ok(client.send('bytes', value));
    assert.ok(client.send('bytes', value));
    const queued = client.queuedBytes;
    assert.is(queued, 2 * 2006);
    assert.is(client.send('bytes', value), false, 'the third frame passes the limit');
    assert.is(client.queuedBytes, queued, 'neither its header nor its value was queued');
    const [, reason, err] = await closed;
    assert.is(reason, 'output-limit');
    assert.ok(isCode(err, ErrorCode.OUTPUT_LIMIT));
    assert.equal([err!.details['queuedBytes'], err!.details['appendBytes']], [queued, 2006]);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});


// ─── pre-authentication limit (faults.test.ts item 9) ──────────────────────────

test('a frame above preAuthMaxFrameLength before authentication closes; after markAuthenticated it is accepted', async () => {
  const { loop, server, got } = await echoServer({
    requireAuthentication: true,
    onMessage(client, msg) {
      got.push(msg);
      if (msg.name === 'text' && msg.payload === 'login') client.markAuthenticated();
      client.send(msg.type, msg.payload);
    },
  });
  try {
    const { peer: bystander } = await accept(server);
    const big = frame(3, pattern(100_000));
    const err = await expectProtocolError(server, big.subarray(0, 10), ErrorCode.FRAME_TOO_LARGE, () => stillEchoes(bystander));
    assert.is(err.details['max'], FRAMING_DEFAULTS.preAuthMaxFrameLength);
    got.length = 0;
    // The login and the large frame in the same write: the frame after the login gets the full limit.
    const { peer, client } = await accept(server);
    assert.is(client.authenticated, false);
    peer.write(Buffer.concat([frame(1, 'login'), big, frame(1, 'after')]));
    await until(() => got.length === 3, 'login, big and after');
    assert.ok(client.authenticated);
    assert.equal(got.map((m) => m.value.length), [5, 100_000, 5]);
    assert.is(client.framingStats().maxFrameLength, 16 * 1024 * 1024);
    // Marked authenticated before sending a byte (as a session binding may do on resume).
    const third = await accept(server);
    third.client.markAuthenticated();
    third.client.markAuthenticated();
    third.peer.write(big);
    await until(() => got.length === 4, 'a large frame right away');
    await destroyAll(peer, bystander, third.peer);
  } finally {
    await loop.close();
  }
});

test('without requireAuthentication the pre-auth limit does not apply; giving preAuthMaxFrameLength turns it on', async () => {
  const { loop, server, got } = await echoServer();
  try {
    assert.is(server._framing!.requireAuthentication, false);
    const { peer, client } = await accept(server);
    peer.write(frame(3, pattern(100_000)));
    await until(() => got.length === 1, 'a large frame from an unauthenticated client');
    assert.is(client.authenticated, false);
    assert.is(client.framingStats().maxFrameLength, 16 * 1024 * 1024);
    const explicit = await new FramedServer(loop, { preAuthMaxFrameLength: 1024 }).listen();
    assert.is(explicit._framing!.requireAuthentication, true);
    const off = await new FramedServer(loop, { preAuthMaxFrameLength: 1024, requireAuthentication: false }).listen();
    assert.is(off._framing!.requireAuthentication, false);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('markAuthenticated while a pre-auth frame is half read switches limits after that frame', async () => {
  const got: FramedMessage[] = [];
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: chatRegistry(), requireAuthentication: true, onMessage: (_c, m) => void got.push(m) }).listen();
  try {
    const { peer, client } = await accept(server);
    const small = frame(1, 'partial');
    peer.write(small.subarray(0, 8));
    await until(() => client.socket.bytesRead === 8, 'half a frame');
    client.markAuthenticated();
    assert.is(client.framingStats().maxFrameLength, FRAMING_DEFAULTS.preAuthMaxFrameLength, 'not while the frame is open');
    peer.write(Buffer.concat([small.subarray(8), frame(3, pattern(70_000))]));
    await until(() => got.length === 2, 'the frame and the large one');
    assert.equal(got.map((m) => m.value.length), [7, 70_000]);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});


// ─── slowloris (faults.test.ts item 7) ─────────────────────────────────────────

test('a peer dribbling one byte inside the idle timeout is closed by the frame deadline', async () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  const got: FramedMessage[] = [];
  const server = await new FramedServer(loop, {
    idleTimeoutMs: 1000,
    registry: chatRegistry(), frameTimeoutMs: 3000, onMessage: (_c, m) => void got.push(m),
  }).listen();
  try {
    // Whole frames every 900 ms keep a client open indefinitely.
    const good = await accept(server);
    for (let i = 0; i < 6; i++) {
      good.peer.write(frame(1, `beat${i}`));
      await until(() => got.length === i + 1, `beat ${i}`);
      clock.advance(900);
      loop.runDueTimers();
    }
    assert.not.ok(good.client.closing || good.client.closed);
    // One byte every 900 ms: never idle, but the frame never completes.
    const { peer, client } = await accept(server);
    const closed = closeOf(server, client);
    const slow = frame(1, 'x'.repeat(100));
    let sent = 0;
    while (!client.closing && !client.closed) {
      assert.ok(sent < 10, 'closed within the frame deadline');
      peer.write(slow.subarray(sent, sent + 1));
      sent++;
      const beats = got.length;
      good.peer.write(frame(1, `beat${beats}`));
      await until(() => client.socket.bytesRead === sent && got.length === beats + 1, `byte ${sent} and a beat`);
      clock.advance(900);
      loop.runDueTimers();
    }
    const [, reason, err] = await closed;
    assert.is(reason, 'frame-timeout');
    assert.ok(isCode(err, ErrorCode.FRAME_TIMEOUT));
    assert.is(err!.details['frameTimeoutMs'], 3000);
    assert.is(sent, 4, 'the deadline passed after 3.6 s of dribbling');
    assert.not.ok(good.client.closing || good.client.closed, 'the other client is untouched');
    await destroyAll(peer, good.peer);
  } finally {
    await loop.close();
  }
});


// ─── handler faults (faults.test.ts item 15) ───────────────────────────────────

test('a handler that throws or rejects closes only that client with handler-error; the server lives', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, {
    registry: chatRegistry(),
    onMessage(client, msg) {
      if (msg.payload === 'throw') throw new Error('boom');
      if (msg.payload === 'reject') return Promise.reject(new Error('async boom'));
      client.send('text', `echo ${String(msg.payload)}`);
      return undefined;
    },
  }).listen();
  try {
    const { peer: bystander } = await accept(server);
    for (const [word, message] of [
      ['throw', 'a message handler threw: boom'],
      ['reject', 'a message handler rejected: async boom'],
    ] as const) {
      const { peer, client } = await accept(server);
      const closed = closeOf(server, client);
      peer.write(Buffer.concat([frame(1, word), frame(1, 'never handled')]));
      const [, reason, err] = await closed;
      assert.is(reason, 'handler-error');
      assert.ok(isCode(err, ErrorCode.HANDLER_ERROR));
      assert.is(err!.message, message);
      assert.is((err!.cause as Error).message, word === 'throw' ? 'boom' : 'async boom');
      await destroyAll(peer);
    }
    bystander.write(frame(1, 'ok'));
    assert.is((await readFrames(bystander, 1))[0]!.value.toString(), 'echo ok');
    await destroyAll(bystander);
  } finally {
    await loop.close();
  }
  // A throwing 'message' listener too.
  const loop2 = new EventLoop();
  const server2 = await new FramedServer(loop2, { registry: chatRegistry() }).listen();
  server2.on('message', () => {
    throw new Error('listener boom');
  });
  try {
    const { peer, client } = await accept(server2);
    const closed = closeOf(server2, client);
    peer.write(frame(1, 'x'));
    const [, reason, err] = await closed;
    assert.equal([reason, err?.code], ['handler-error', ErrorCode.HANDLER_ERROR]);
    await destroyAll(peer);
  } finally {
    await loop2.close();
  }
});


// ─── connector ────────────────────────────────────────────────────────────────

test('a connector exchanges framed messages again after it reconnects, with a fresh decoder', async () => {
  const { loop, server } = await echoServer();
  try {
    const replies: string[] = [];
    const connector = new FramedConnector(loop, {
      port: server.port,
      reconnect: { initialDelayMs: 1, jitter: 0 },
      registry: chatRegistry(),
      onMessage: (_c, m) => void replies.push(m.payload as string),
    }).connect();
    const [first] = await waitFor<[FramedClient]>(connector, 'connected');
    first.send('text', 'one');
    await until(() => replies.length === 1, 'the first reply');
    // The server drops the connection while the connector holds half a frame of a reply.
    const serverSide = [...server.clients()][0]!;
    serverSide.write(frame(1, 'cut off').subarray(0, 5));
    await until(() => first.socket.bytesRead > 0 && first.framingStats().bufferedBytes === 5, 'a partial frame at the connector');
    const again = waitFor<[FramedClient]>(connector, 'connected');
    serverSide.destroy();
    const [second] = await again;
    assert.is.not(second, first);
    const fresh = second.framingStats();
    assert.equal([fresh.frames, fresh.bufferedBytes, fresh.reservedBytes], [0, 0, 0], 'no framing state before the first byte');
    second.send('text', 'two');
    await until(() => replies.length === 2, 'the second reply');
    assert.equal(replies, ['one', 'two']);
    await connector.close();
  } finally {
    await loop.close();
  }
});

test.run();
