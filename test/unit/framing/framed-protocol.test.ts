import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import { Server, type ServerOptions } from '../../../lib/reactor/server.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import type { LtvLayoutOptions, LtvPresetName } from '../../../lib/codec/ltv-layout.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { FRAMING_DEFAULTS, FramedProtocol, framedStats } from '../../../lib/framing/framed-protocol.js';
import type { FramedMessage, FramingOptions } from '../../../lib/framing/framed-protocol.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { collectAll, connectRaw, countWrites, destroyAll, digest, pattern, readBytes, until, waitFor } from '../../helpers/net.js';
import { Connector } from '../../../lib/reactor/connector.js';

// ─── helpers ──────────────────────────────────────────────────────────────────

function frame(type: number, value: Uint8Array | string, layout: LtvPresetName | LtvLayoutOptions = 'netloop'): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  return new LtvEncoder({ layout }).encode(type, v);
}

/** A raw header of the netloop layout with any declared length (even ones no encoder would write). */
function netloopHeader(declared: number, type: number): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt32BE(declared, 0);
  h.writeUInt16BE(type, 4);
  return h;
}

function chatRegistry(strict = true): MessageRegistry {
  const r = new MessageRegistry({ strict });
  r.register(1, 'text', 'utf8');
  r.register(2, 'json', 'json');
  r.register(3, 'bytes', 'raw');
  return r;
}

interface Accepted {
  peer: net.Socket;
  client: Client;
}

/** Connects a raw peer and resolves with it and the server's client. */
async function accept(server: Server): Promise<Accepted> {
  const conn = waitFor<[Client]>(server, 'connection');
  const peer = await connectRaw(server.port);
  const [client] = await conn;
  return { peer, client };
}

/** Resolves with the reason and error of `client`'s close. */
function closeOf(server: Server, client: Client): Promise<[Client, CloseReason, NetloopError | undefined]> {
  return waitFor<[Client, CloseReason, NetloopError | undefined]>(server, 'close', { filter: (c) => c === client });
}

/** A server that echoes every message back with `client.send` (json/utf8/raw through the registry). */
async function echoServer(framing: FramingOptions = {}, extra: ServerOptions = {}): Promise<{ loop: EventLoop; server: Server; got: FramedMessage[] }> {
  const loop = new EventLoop();
  const got: FramedMessage[] = [];
  const server = await new Server(loop, {
    ...extra,
    framing: {
      registry: chatRegistry(),
      onMessage(client, msg) {
        got.push(msg);
        client.send(msg.type, msg.payload);
      },
      ...framing,
    },
  }).listen();
  return { loop, server, got };
}

/** Reads `n` frames of the netloop layout from a raw peer. */
async function readFrames(peer: net.Socket, n: number): Promise<Array<{ type: number; value: Buffer }>> {
  const out: Array<{ type: number; value: Buffer }> = [];
  for (let i = 0; i < n; i++) {
    const h = await readBytes(peer, 6);
    const len = h.readUInt32BE(0);
    out.push({ type: h.readUInt16BE(4), value: len === 0 ? Buffer.alloc(0) : await readBytes(peer, len) });
  }
  return out;
}

function isCode(err: unknown, code: string): boolean {
  return isNetloopError(err) && err.code === code;
}

function throwsCode(fn: () => unknown, code: string): NetloopError {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err), `expected ${code}, got ${String(err)}`);
    assert.is(err.code, code);
    return err;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

// ─── delivery ─────────────────────────────────────────────────────────────────

test('connector and server exchange messages of 0 bytes to the maximum, in order, both ways', async () => {
  const maxFrameLength = 256 * 1024;
  const layout = { preset: 'netloop' as const, maxFrameLength };
  const { loop, server, got } = await echoServer({ layout });
  server.on('connection', (c: Client) => c.markAuthenticated());
  try {
    const replies: FramedMessage[] = [];
    const connector = new Connector(loop, {
      port: server.port,
      reconnect: false,
      framing: { layout, registry: chatRegistry(), onMessage: (_c, m) => void replies.push(m) },
    }).connect();
    const [client] = await waitFor<[Client]>(connector, 'connected');
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
    assert.equal(framedStats(client)!.bufferedBytes, 94);
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
  const server = await new Server(loop, { framing: { registry: chatRegistry() } }).listen();
  try {
    const seen = waitFor<[Client, FramedMessage]>(server, 'message');
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
async function stillEchoes(bystander: net.Socket): Promise<void> {
  bystander.write(frame(1, 'still here'));
  const [reply] = await readFrames(bystander, 1);
  assert.is(reply!.value.toString(), 'still here');
}

/** Sends `bytes` from a fresh peer; asserts it is closed with 'protocol-error' and `code`, and that `bystanderOk` still holds. */
async function expectProtocolError(server: Server, bytes: Buffer, code: string, bystanderOk: () => Promise<void>): Promise<NetloopError> {
  const { peer, client } = await accept(server);
  const closed = closeOf(server, client);
  const done = collectAll(peer);
  peer.write(bytes);
  const [, reason, err] = await closed;
  assert.is(reason, 'protocol-error');
  assert.ok(isCode(err, code), `expected ${code}, got ${String(err?.code)}`);
  await done;
  await bystanderOk();
  await destroyAll(peer);
  return err!;
}

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
    throwsCode(() => rawClient.send(1, Buffer.alloc(1)), ErrorCode.INVALID_OPTION);
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
async function rawEchoServer(framing: FramingOptions = {}): Promise<{ loop: EventLoop; server: Server; got: Array<[number, string]> }> {
  const loop = new EventLoop();
  const got: Array<[number, string]> = [];
  const server = await new Server(loop, {
    framing: {
      onRawFrame(client, type, source, start, end) {
        assert.ok(Buffer.isBuffer(source));
        got.push([type, source.toString('latin1', start, end)]);
        client.sendRaw(type, source, start, end);
      },
      ...framing,
    },
  }).listen();
  return { loop, server, got };
}

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
    assert.is(framedStats(client)!.inFlight, 0, 'nothing is pending after a raw frame');
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
    const plain = waitFor<[Client]>(raw, 'connection');
    const rawPeer = await connectRaw(raw.port);
    const [rawClient] = await plain;
    throwsCode(() => rawClient.sendRaw(1, bytes), ErrorCode.INVALID_OPTION);
    await destroyAll(peer, rawPeer);
  } finally {
    await loop.close();
  }
});

test('a throwing onRawFrame closes only that client with handler-error; onRawFrame with onMessage is refused', async () => {
  const loop = new EventLoop();
  try {
    const server = await new Server(loop, {
      framing: {
        onRawFrame(_client, type) {
          if (type === 9) throw new Error('boom');
        },
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
        await new Server(loop, { framing: bad }).listen();
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

// ─── read-side backpressure (faults.test.ts item 8) ────────────────────────────

test('a tiny-frame flood against a handler that never settles: pending stops at the limit, reading pauses, memory stays bounded', async () => {
  const loop = new EventLoop();
  let calls = 0;
  const maxPendingMessages = 16;
  const server = await new Server(loop, {
    framing: {
      registry: chatRegistry(),
      maxPendingMessages,
      onMessage: () => {
        calls++;
        return new Promise<void>(() => undefined);
      },
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
    await until(() => peer.writableLength > 0 && framedStats(client)?.paused === true, 'the server to pause and the peer to back up', 10_000);
    const s = framedStats(client)!;
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
  const server = await new Server(loop, {
    framing: {
      registry: chatRegistry(),
      maxPendingMessages: 4,
      onMessage: (_c, m) => {
        order.push(m.payload as string);
        return new Promise<void>((resolve) => resolvers.push(resolve));
      },
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    peer.write(Buffer.concat(Array.from({ length: 6 }, (_, i) => frame(1, `p${i}`))));
    await until(() => framedStats(client)?.paused === true, 'paused');
    assert.equal(order, ['p0', 'p1', 'p2', 'p3']);
    assert.equal([framedStats(client)!.inFlight, framedStats(client)!.backlog], [4, 2]);
    resolvers.shift()!();
    await until(() => order.length === 5, 'p4 handed out');
    assert.ok(framedStats(client)!.paused, '5 pending of 4: still paused');
    resolvers.shift()!();
    resolvers.shift()!();
    await until(() => order.length === 6, 'p5 handed out');
    assert.is(framedStats(client)!.paused, true, '3 in flight > 2');
    resolvers.shift()!();
    await until(() => !framedStats(client)!.paused, 'resumed at half');
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
  const server = await new Server(loop, {
    framing: {
      registry: chatRegistry(),
      maxPendingBytes: 1000,
      onMessage: () => new Promise<void>((resolve) => resolvers.push(resolve)),
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    peer.write(frame(3, pattern(1200)));
    await until(() => framedStats(client)?.paused === true, 'paused by one large message');
    assert.is(framedStats(client)!.pendingBytes, 1206);
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
    assert.is(framedStats(client)!.maxFrameLength, 16 * 1024 * 1024);
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
    assert.is(framedStats(client)!.maxFrameLength, 16 * 1024 * 1024);
    const explicit = await new Server(loop, { framing: { preAuthMaxFrameLength: 1024 } }).listen();
    assert.is(explicit._framing!.requireAuthentication, true);
    const off = await new Server(loop, { framing: { preAuthMaxFrameLength: 1024, requireAuthentication: false } }).listen();
    assert.is(off._framing!.requireAuthentication, false);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('markAuthenticated while a pre-auth frame is half read switches limits after that frame', async () => {
  const got: FramedMessage[] = [];
  const loop = new EventLoop();
  const server = await new Server(loop, { framing: { registry: chatRegistry(), requireAuthentication: true, onMessage: (_c, m) => void got.push(m) } }).listen();
  try {
    const { peer, client } = await accept(server);
    const small = frame(1, 'partial');
    peer.write(small.subarray(0, 8));
    await until(() => client.socket.bytesRead === 8, 'half a frame');
    client.markAuthenticated();
    assert.is(framedStats(client)!.maxFrameLength, FRAMING_DEFAULTS.preAuthMaxFrameLength, 'not while the frame is open');
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
  const server = await new Server(loop, {
    idleTimeoutMs: 1000,
    framing: { registry: chatRegistry(), frameTimeoutMs: 3000, onMessage: (_c, m) => void got.push(m) },
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
  const server = await new Server(loop, {
    framing: {
      registry: chatRegistry(),
      onMessage(client, msg) {
        if (msg.payload === 'throw') throw new Error('boom');
        if (msg.payload === 'reject') return Promise.reject(new Error('async boom'));
        client.send('text', `echo ${String(msg.payload)}`);
        return undefined;
      },
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
  const server2 = await new Server(loop2, { framing: { registry: chatRegistry() } }).listen();
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
    const connector = new Connector(loop, {
      port: server.port,
      reconnect: { initialDelayMs: 1, jitter: 0 },
      framing: { registry: chatRegistry(), onMessage: (_c, m) => void replies.push(m.payload as string) },
    }).connect();
    const [first] = await waitFor<[Client]>(connector, 'connected');
    first.send('text', 'one');
    await until(() => replies.length === 1, 'the first reply');
    // The server drops the connection while the connector holds half a frame of a reply.
    const serverSide = [...server.clients()][0]!;
    serverSide.write(frame(1, 'cut off').subarray(0, 5));
    await until(() => first.socket.bytesRead > 0 && framedStats(first)!.bufferedBytes === 5, 'a partial frame at the connector');
    const again = waitFor<[Client]>(connector, 'connected');
    serverSide.destroy();
    const [second] = await again;
    assert.is.not(second, first);
    assert.is(framedStats(second), null, 'no framing state before the first byte');
    second.send('text', 'two');
    await until(() => replies.length === 2, 'the second reply');
    assert.equal(replies, ['one', 'two']);
    await connector.close();
  } finally {
    await loop.close();
  }
});

// ─── options ──────────────────────────────────────────────────────────────────

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
    const stats = framedStats(client)!;
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
    assert.is(framedStats(client)!.heldBytes, 0);
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

test('a frame observer sees each frame\'s type and size before dispatch, even frames waiting behind a handler that has not settled; one that throws closes only that client with handler-error', async () => {
  const loop = new EventLoop();
  const handled: number[] = [];
  const server = await new Server(loop, {
    framing: {
      registry: chatRegistry(),
      maxPendingMessages: 1,
      // The first message never settles: the others wait in the backlog, undispatched.
      onMessage: (_c, m) => {
        handled.push(m.type);
        return new Promise<void>(() => undefined);
      },
    },
  }).listen();
  const proto = server._framing!;
  assert.is(proto._frameObservers, null, 'nothing observes by default');
  const observed: Array<[number, number, number]> = [];
  proto._frameObservers = [(client, type, size) => void observed.push([client.id, type, size])];
  try {
    const a = await accept(server);
    a.peer.write(Buffer.concat([frame(1, 'hi'), frame(3, 'abcd'), frame(2, '{}')]));
    await until(() => observed.length === 3, 'three frames observed');
    assert.equal(observed, [
      [a.client.id, 1, 6 + 2],
      [a.client.id, 3, 6 + 4],
      [a.client.id, 2, 6 + 2],
    ]);
    assert.equal(handled, [1], 'only the first was dispatched');
    // (Reading of `a` is paused now: three messages pending, the limit is 1.)
    // An observer that throws closes that client with handler-error; the next client is served.
    const c = await accept(server);
    proto._frameObservers = [
      (client) => {
        if (client === c.client) throw new Error('observer failed');
      },
    ];
    const closed = closeOf(server, c.client);
    c.peer.write(frame(1, 'x'));
    const [, reason, error] = await closed;
    assert.is(reason, 'handler-error');
    assert.ok(isNetloopError(error, ErrorCode.HANDLER_ERROR));
    assert.is((error.cause as Error).message, 'observer failed');
    assert.equal(handled, [1], 'the frame whose observer threw was not dispatched');
    const b = await accept(server);
    b.peer.write(frame(1, 'y'));
    await until(() => handled.length === 2, 'the next client is handled');
    await destroyAll(a.peer, b.peer, c.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('framing options are validated when a server or a connector is built', async () => {
  const loop = new EventLoop();
  try {
    const bad: FramingOptions[] = [
      { maxPendingMessages: 0 },
      { maxPendingBytes: -1 },
      { maxMessagesPerTurn: 0 },
      { maxMessagesPerTurn: 1.5 },
      { frameTimeoutMs: Number.NaN },
      { preAuthMaxFrameLength: 2 },
      { layout: { maxFrameLength: 100 }, preAuthMaxFrameLength: 101 },
      { copy: 'yes' as unknown as boolean },
      { onMessage: 5 as unknown as FramingOptions['onMessage'] },
      { registry: {} as MessageRegistry },
      { layout: 'nope' as LtvPresetName },
    ];
    for (const framing of bad) {
      throwsCode(() => new Server(loop, { framing }), ErrorCode.INVALID_OPTION);
    }
    throwsCode(() => new Connector(loop, { port: 1, framing: { maxPendingMessages: 0 } }).connect(), ErrorCode.INVALID_OPTION);
    throwsCode(() => new Connector(loop, { port: 1, framing: { requireAuthentication: 'yes' as unknown as boolean } }).connect(), ErrorCode.INVALID_OPTION);
    throwsCode(() => new FramedProtocol({ _emitMessage: () => undefined }, null as unknown as FramingOptions, 'server'), ErrorCode.INVALID_OPTION);
    // Defaults: finite everywhere; a connector trusts its server's frame size.
    const s = new FramedProtocol(await new Server(loop).listen(), {}, 'server');
    assert.equal(
      [s.maxPendingMessages, s.maxPendingBytes, s.maxMessagesPerTurn, s.frameTimeoutMs, s.preAuthLayout.maxFrameLength],
      [1024, 8 * 1024 * 1024, 512, 30_000, 65_536],
    );
    const c = new FramedProtocol(await new Server(loop).listen(), {}, 'connector');
    assert.is(c.preAuthLayout, c.layout);
  } finally {
    await loop.close();
  }
});

test.run();
