/**
 * Sending to a client that is closing is not an error of the sender: on a
 * closing or closed client, `write`, the appends, `send` and `sendRaw`
 * return false and queue nothing, and throw only for a caller's mistake
 * (checked first, whatever the state). `broadcast` on the server and on the
 * loop sends to every open client, encodes a framed message once, and
 * counts whom it reached.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { ErrorCodeValue, NetloopError } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import type { MessageTypeRef } from '../../../lib/codec/message-registry.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import type { FramedMessage } from '../../../lib/framing/framed-client.js';
import type { ServerBaseEvents } from '../../../lib/reactor/callbacks.js';
import { collectAll, connectRaw, destroyAll, pattern, readBytes, until, waitFor } from '../../helpers/net.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';

function throwsCode(fn: () => unknown, code: ErrorCodeValue, what: string): void {
  assert.throws(fn, (e: unknown) => isNetloopError(e, code), what);
}

function chatRegistry(): MessageRegistry {
  const registry = new MessageRegistry();
  registry.register(1, 'chat', 'json');
  registry.register(2, 'bytes', 'raw');
  return registry;
}

/** Accepts one raw peer; resolves with it and its server-side client. */
async function accept<C extends Client>(server: Server<C, ServerBaseEvents<C>>, options: { allowHalfOpen?: boolean } = {}): Promise<{ peer: net.Socket; client: C }> {
  const accepted = waitFor<[C]>(server, 'connection');
  const peer = await connectRaw(server.port, options);
  const [client] = await accepted;
  return { peer, client };
}

const W = suite('writing to a closing client');

W('write, appends, send and sendRaw on a closing or closed client return false and queue nothing; a mistake still throws its code', async () => {
  const loop = new EventLoop();
  const framed = await new FramedServer(loop, { layout: 'cellnet', registry: chatRegistry() }).listen();
  const raw = await new Server(loop).listen();
  const peers: net.Socket[] = [];
  try {
    const a = await accept(framed);
    const r = await accept(raw);
    peers.push(a.peer, r.peer);
    const c = a.client;
    assert.ok(c.writable);
    const mistakes = (state: string): void => {
      throwsCode(() => c.write(42 as unknown as string), ErrorCode.INVALID_VALUE, `${state}: write(42)`);
      throwsCode(() => c.appendToOutputBuffer({} as unknown as Buffer), ErrorCode.INVALID_VALUE, `${state}: append({})`);
      throwsCode(() => c.appendPairToOutputBuffer(Buffer.alloc(1), null as unknown as Buffer), ErrorCode.INVALID_VALUE, `${state}: appendPair`);
      throwsCode(() => c.send('nope', {}), ErrorCode.UNKNOWN_TYPE, `${state}: send(unknown type)`);
      throwsCode(() => c.send('bytes', 'not bytes'), ErrorCode.INVALID_VALUE, `${state}: send(wrong payload)`);
      throwsCode(() => c.send('bytes', Buffer.alloc(70_000)), ErrorCode.FRAME_TOO_LARGE, `${state}: send(over the limit)`);
      throwsCode(() => c.sendRaw(2, Buffer.alloc(4), 3, 1), ErrorCode.INVALID_VALUE, `${state}: sendRaw(bad range)`);
      throwsCode(() => c.sendRaw(9, Buffer.alloc(4)), ErrorCode.UNKNOWN_TYPE, `${state}: sendRaw(unknown type)`);
      // A raw client has no send: the reactor knows no codec (a compile error, and nothing at run time).
      assert.not.ok('send' in r.client || 'sendRaw' in r.client, `${state}: no send without framing`);
    };
    const refuses = (state: string): void => {
      assert.not.ok(c.writable, state);
      const before = c.queuedBytes;
      assert.is(c.write('x'), false, `${state}: write`);
      assert.is(c.appendToOutputBuffer(Buffer.alloc(10)), false, `${state}: append`);
      assert.is(c.appendPairToOutputBuffer(Buffer.alloc(2), Buffer.alloc(2000)), false, `${state}: appendPair`);
      assert.is(c.send('chat', { text: 'hi' }), false, `${state}: send small`);
      assert.is(c.send('bytes', Buffer.alloc(5000)), false, `${state}: send large`);
      assert.is(c.sendRaw(2, Buffer.alloc(8)), false, `${state}: sendRaw`);
      assert.is(c.queuedBytes, before, `${state}: nothing queued`);
      assert.is(r.client.write('y'), false, `${state}: raw write`);
      mistakes(state);
    };
    mistakes('open');
    a.peer.pause(); // the peer does not read: the graceful close stays under way
    c.end();
    r.client.end();
    assert.ok(c.closing);
    refuses('closing (shutdown)');
    const closed = waitFor(framed, 'close');
    c.destroy();
    r.client.destroy();
    refuses('closing (destroyed)');
    await closed;
    assert.ok(c.closed);
    refuses('closed');
  } finally {
    await destroyAll(...peers);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

W('the obvious broadcast loop from inside a handler, with one receiver half-closed and far behind, never closes the sender', async () => {
  const loop = new EventLoop();
  let server!: FramedServer;
  server = await new FramedServer(loop, {
    halfOpen: false,
    layout: 'cellnet',
    onMessage(_client: Client, message: FramedMessage) {
      for (const c of server.clients()) c.sendRaw(message.type, message.value);
    },
  }).listen();
  const closes: Array<{ client: Client; reason: CloseReason; error: NetloopError | undefined }> = [];
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  const peers: net.Socket[] = [];
  try {
    // The receiver far behind: 6 MiB queued, it does not read, then it half-closes.
    const behind = await accept(server, { allowHalfOpen: true });
    peers.push(behind.peer);
    behind.peer.pause();
    behind.client.write(pattern(6 * 1024 * 1024));
    behind.peer.end();
    await until(() => behind.client.closing, 'the half-closed receiver to be closing');
    assert.ok([...server.clients()].includes(behind.client), 'clients() lists a closing client until its close is reported');
    const other = await accept(server);
    const sender = await accept(server);
    peers.push(other.peer, sender.peer);
    const frame = new LtvEncoder({ layout: 'cellnet' }).encode(7, Buffer.from('hello all'));
    sender.peer.write(frame);
    assert.equal(await readBytes(sender.peer, frame.length), frame, 'the sender gets its own message');
    assert.equal(await readBytes(other.peer, frame.length), frame);
    sender.peer.write(frame);
    assert.equal(await readBytes(sender.peer, frame.length), frame, 'and keeps chatting');
    assert.not.ok(sender.client.closing || sender.client.closed, 'the sender is never closed');
    assert.not.ok(closes.some((c) => c.client === sender.client));
    // broadcast() skips the closing receiver and counts the others.
    assert.is(server.broadcast(frame), 2);
  } finally {
    await destroyAll(...peers);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

const B = suite('broadcast');

B('server.broadcast: raw bytes and a framed message encoded once, to open clients only, with except and filter; it counts whom it reached', async () => {
  const loop = new EventLoop();
  const registry = chatRegistry();
  let encodes = 0;
  const encode = registry.encode.bind(registry);
  registry.encode = ((ref: MessageTypeRef, payload: unknown) => {
    encodes++;
    return encode(ref, payload);
  }) as MessageRegistry['encode'];
  const server = await new FramedServer(loop, { layout: 'cellnet', registry }).listen();
  const raw = await new Server(loop).listen();
  const peers: net.Socket[] = [];
  try {
    const all = [await accept(server), await accept(server), await accept(server), await accept(server)];
    peers.push(...all.map((x) => x.peer));
    const [a, b, c, closing] = all as [(typeof all)[0], (typeof all)[0], (typeof all)[0], (typeof all)[0]];
    closing.peer.pause();
    closing.client.end();
    const got = all.map((x) => collectAll(x.peer));
    const expected = new LtvEncoder({ layout: 'cellnet' }).encode(1, Buffer.from(JSON.stringify({ n: 1 })));
    assert.is(server.broadcast({ type: 'chat', payload: { n: 1 } }, { except: a.client }), 2);
    assert.is(encodes, 1, 'encoded once for every receiver');
    assert.is(server.broadcast('only-b', { filter: (x) => x === b.client }), 1);
    assert.is(server.broadcast(Buffer.from('only-a'), { except: [b.client, c.client] }), 1);
    assert.is(server.broadcast(new Uint8Array([0x21])), 3);
    // Mistakes throw, whoever would receive.
    assert.throws(() => server.broadcast(42 as unknown as string), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_VALUE));
    assert.throws(() => server.broadcast({ type: 'nope', payload: 1 }), (e: unknown) => isNetloopError(e, ErrorCode.UNKNOWN_TYPE));
    assert.throws(() => raw.broadcast({ type: 1, payload: Buffer.alloc(1) }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_VALUE));
    assert.throws(() => server.broadcast('x', { filter: 3 as unknown as () => boolean }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    assert.is(raw.broadcast('nobody'), 0);
    for (const x of [a, b, c]) x.client.end();
    const [ga, gb, gc, gClosing] = await Promise.all(got);
    assert.equal(ga!.data, Buffer.concat([Buffer.from('only-a'), Buffer.from('!')]));
    assert.equal(gb!.data, Buffer.concat([expected, Buffer.from('only-b'), Buffer.from('!')]));
    assert.equal(gc!.data, Buffer.concat([expected, Buffer.from('!')]));
    assert.is(gClosing!.data.length, 0, 'a closing client gets nothing');
  } finally {
    await destroyAll(...peers);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

B("loop.broadcast: raw bytes to every open client; a framed message to the framed ones, encoded once per framing", async () => {
  const loop = new EventLoop();
  const registry = chatRegistry();
  let encodes = 0;
  const encode = registry.encode.bind(registry);
  registry.encode = ((ref: MessageTypeRef, payload: unknown) => {
    encodes++;
    return encode(ref, payload);
  }) as MessageRegistry['encode'];
  const cellnet = await new FramedServer(loop, { layout: 'cellnet', registry }).listen();
  const netloop = await new FramedServer(loop, { layout: 'netloop', registry }).listen();
  const raw = await new Server(loop).listen();
  const peers: net.Socket[] = [];
  try {
    const xs = [await accept(cellnet), await accept(cellnet), await accept(netloop), await accept(raw)];
    peers.push(...xs.map((x) => x.peer));
    const got = xs.map((x) => collectAll(x.peer));
    assert.is(loop.broadcast({ type: 'chat', payload: { hi: true } }), 3);
    assert.is(encodes, 2, 'once per framing');
    assert.is(loop.broadcast('.', { except: xs[0]!.client }), 3);
    for (const x of xs) x.client.end();
    const data = (await Promise.all(got)).map((g) => g.data);
    const value = Buffer.from(JSON.stringify({ hi: true }));
    const inCellnet = new LtvEncoder({ layout: 'cellnet' }).encode(1, value);
    const inNetloop = new LtvEncoder({ layout: 'netloop' }).encode(1, value);
    assert.equal(data, [inCellnet, Buffer.concat([inCellnet, Buffer.from('.')]), Buffer.concat([inNetloop, Buffer.from('.')]), Buffer.from('.')]);
  } finally {
    await destroyAll(...peers);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

W.run();
B.run();
