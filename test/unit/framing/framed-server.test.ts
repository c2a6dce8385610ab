/**
 * A framed server: its 'message' event, frame observers (every frame before
 * dispatch), its encoder (encodeMessage, typed broadcasts), the
 * pre-authentication switch, and the client factory.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import { FramedClient } from '../../../lib/framing/framed-client.js';
import type { FramedMessage } from '../../../lib/framing/framed-client.js';
import { Server } from '../../../lib/reactor/server.js';
import { Client } from '../../../lib/reactor/client.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { connectRaw, destroyAll, readBytes, until, waitFor } from '../../helpers/net.js';

import { accept, chatRegistry, closeOf, frame } from './rig.js';

test('a frame observer sees each frame\'s type and size before dispatch, even frames waiting behind a handler that has not settled; one that throws closes only that client with handler-error', async () => {
  const loop = new EventLoop();
  const handled: number[] = [];
  const server = await new FramedServer(loop, {
    registry: chatRegistry(),
    maxPendingMessages: 1,
    // The first message never settles: the others wait in the backlog, undispatched.
    onMessage: (_c, m) => {
      handled.push(m.type);
      return new Promise<void>(() => undefined);
    },
  }).listen();
  assert.is(server._framing._frameObservers, null, 'nothing observes by default: one field check per frame');
  const observed: Array<[number, number, number]> = [];
  const observer = (client: FramedClient, type: number, size: number): void => void observed.push([client.id, type, size]);
  assert.is(server.addFrameObserver(observer), server, 'chainable');
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
    server.removeFrameObserver(observer);
    assert.is(server._framing._frameObservers, null, 'back to none');
    server.addFrameObserver((client) => {
      if (client === c.client) throw new Error('observer failed');
    });
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

test("without onMessage, each message is the server's 'message' event, with the framed client; the clients are FramedClients, the raw server's plain Clients", async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: chatRegistry() }).listen();
  const raw = await new Server(loop).listen();
  try {
    const got: Array<[FramedClient, FramedMessage]> = [];
    server.on('message', (client, message) => {
      got.push([client, message]);
      client.send('text', `re: ${String(message.payload)}`);
    });
    const a = await accept(server);
    assert.ok(a.client instanceof FramedClient);
    assert.equal([...server.clients()], [a.client]);
    // The client reads its socket through the reactor's one listener: the framing adds none.
    assert.is(a.client.socket.listenerCount('data'), 1);
    const reply = frame(1, 're: hi');
    const back = readBytes(a.peer, reply.length);
    a.peer.write(frame(1, 'hi'));
    assert.equal(await back, reply);
    assert.is(got.length, 1);
    assert.is(got[0]![0], a.client);
    assert.equal([got[0]![1].type, got[0]![1].name, got[0]![1].payload], [1, 'text', 'hi']);
    const plain = waitFor<[Client]>(raw, 'connection');
    const peer = await connectRaw(raw.port);
    const [rawClient] = await plain;
    assert.ok(rawClient instanceof Client && !(rawClient instanceof FramedClient));
    await destroyAll(a.peer, peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('encodeMessage makes the frame send would queue, with the same coded mistakes; a typed broadcast needs a codec', async () => {
  const loop = new EventLoop();
  const server = new FramedServer(loop, { registry: chatRegistry(), layout: 'cellnet' });
  const rawFramed = new FramedServer(loop, {});
  const raw = await new Server(loop).listen();
  try {
    const cellnet = new LtvEncoder({ layout: 'cellnet' });
    assert.equal(server.encodeMessage('json', { a: 1 }), cellnet.encode(2, Buffer.from('{"a":1}')));
    assert.equal(server.encodeMessage(1, 'hé'), cellnet.encode(1, Buffer.from('hé')));
    assert.ok(isNetloopError(catchOf(() => server.encodeMessage('nope', 1)), ErrorCode.UNKNOWN_TYPE));
    assert.ok(isNetloopError(catchOf(() => server.encodeMessage('bytes', 'not bytes')), ErrorCode.INVALID_VALUE));
    // Without a registry: a numeric type and bytes.
    assert.equal(rawFramed.encodeMessage(7, Buffer.from('x')), new LtvEncoder({ layout: 'netloop' }).encode(7, Buffer.from('x')));
    assert.ok(isNetloopError(catchOf(() => rawFramed.encodeMessage('name' as never, Buffer.alloc(1))), ErrorCode.INVALID_VALUE));
    assert.ok(isNetloopError(catchOf(() => rawFramed.encodeMessage(7, 'text' as never)), ErrorCode.INVALID_VALUE));
    assert.is(server.registry, server._framing.registry);
    assert.is(server.layout.headerBytes, 4, 'the cellnet layout: a 2-byte length, a 2-byte type');
    // A raw server has no codec: a typed broadcast is a mistake, whoever would receive it.
    assert.ok(isNetloopError(catchOf(() => raw.broadcast({ type: 1, payload: Buffer.alloc(1) })), ErrorCode.INVALID_VALUE));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("loop.broadcast encodes a typed message once per owner: a framed server's and a framed connector's clients get it, raw clients do not", async () => {
  const loop = new EventLoop();
  const registry = chatRegistry();
  const server = await new FramedServer(loop, { registry }).listen();
  const raw = await new Server(loop).listen();
  try {
    const fromServer: FramedMessage[] = [];
    const connector = new FramedConnector(loop, { port: server.port, reconnect: false, registry, layout: 'netloop' });
    connector.on('message', (_c, m) => void fromServer.push(m));
    const connected = waitFor<[FramedClient]>(connector, 'connected');
    connector.connect();
    await connected;
    await until(() => server.clientCount === 1, 'the server side of the connection');
    const peer = await connectRaw(raw.port);
    await until(() => raw.clientCount === 1, 'the raw client');
    // The server side and the connector side are both framed: two receivers, two owners.
    assert.is(loop.broadcast({ type: 'text', payload: 'to all' }), 2);
    await until(() => fromServer.length === 1, 'the connector to receive the broadcast');
    assert.equal(fromServer[0]!.payload, 'to all');
    assert.is(connector.encodeMessage('text', 'x').length, 6 + 1);
    await destroyAll(peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('requireAuthentication is settable until a client sends: the pre-auth limit applies to clients whose first byte comes after', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: chatRegistry(), preAuthMaxFrameLength: 64, requireAuthentication: false }).listen();
  try {
    assert.is(server.requireAuthentication, false);
    const before = await accept(server);
    before.peer.write(frame(1, 'a'));
    await until(() => before.client.framingStats().frames === 1, 'the first frame');
    assert.is(before.client.framingStats().maxFrameLength, server.layout.maxFrameLength, 'no pre-auth limit');
    assert.throws(() => (server.requireAuthentication = 'yes' as unknown as boolean), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    server.requireAuthentication = true;
    const after = await accept(server);
    assert.is(after.client.framingStats().maxFrameLength, 64, 'the limit to come, before any byte');
    const closed = closeOf(server, after.client);
    after.peer.write(frame(1, 'x'.repeat(100)));
    const [, reason, error] = await closed;
    assert.is(reason, 'protocol-error');
    assert.ok(isNetloopError(error, ErrorCode.FRAME_TOO_LARGE));
    assert.is(before.client.framingStats().maxFrameLength, server.layout.maxFrameLength, 'a client already reading keeps its limit');
    await destroyAll(before.peer, after.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('frame observers are checked: a non-function is NETLOOP_INVALID_OPTION; removing one never added does nothing', () => {
  const server = new FramedServer(new EventLoop());
  assert.throws(() => server.addFrameObserver(42 as never), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  assert.is(server.removeFrameObserver(() => undefined), server);
  assert.is(server._framing._frameObservers, null);
});

function catchOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

test('a reserved type takes its frames in place of the message path, even with a strict registry, and sendRaw sends it; reserving a taken type is DUPLICATE_TYPE; given back, the type is unknown again', async () => {
  const loop = new EventLoop();
  const handled: string[] = [];
  const server = await new FramedServer(loop, {
    registry: chatRegistry(),
    onMessage: (_c, m) => void handled.push(`${m.name}:${String(m.payload)}`),
  }).listen();
  assert.is(server._framing._reserved, null, 'nothing reserved by default: one field check per frame');
  const taken: string[] = [];
  const giveBack = server.reserveType(0xfff0, (client, source, start, end) => {
    const text = source.toString('utf8', start, end);
    taken.push(text);
    if (text === 'boom') throw new Error('reserved handler failed');
    client.sendRaw(0xfff0, Buffer.from(`ack ${text}`));
  });
  try {
    for (const [type, code] of [
      [1, ErrorCode.DUPLICATE_TYPE],
      [0xfff0, ErrorCode.DUPLICATE_TYPE],
      [0x10000, ErrorCode.INVALID_OPTION],
    ] as const) {
      try {
        server.reserveType(type, () => undefined);
        assert.unreachable(`reserving ${type}`);
      } catch (err) {
        assert.ok(isNetloopError(err, code), String(err));
      }
    }
    const a = await accept(server);
    const reply = readBytes(a.peer, 6 + 'ack ping'.length);
    a.peer.write(Buffer.concat([frame(1, 'hello'), frame(0xfff0, 'ping'), frame(1, 'again')]));
    assert.equal(await reply, frame(0xfff0, 'ack ping'));
    await until(() => handled.length === 2, 'both messages');
    assert.equal(handled, ['text:hello', 'text:again'], 'the reserved frame never reached onMessage');
    assert.equal(taken, ['ping']);
    // A throwing handler closes only its client with handler-error.
    const closed = closeOf(server, a.client);
    a.peer.write(frame(0xfff0, 'boom'));
    const [, reason, error] = await closed;
    assert.is(reason, 'handler-error');
    assert.ok(isNetloopError(error, ErrorCode.HANDLER_ERROR));
    // Given back, the type is unknown to the strict registry again: protocol-error.
    giveBack();
    assert.is(server._framing._reserved, null);
    const b = await accept(server);
    const closedB = closeOf(server, b.client);
    b.peer.write(frame(0xfff0, 'late'));
    const [, reasonB, errorB] = await closedB;
    assert.is(reasonB, 'protocol-error');
    assert.ok(isNetloopError(errorB, ErrorCode.UNKNOWN_TYPE));
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
