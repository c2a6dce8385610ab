/**
 * Message hooks over real sockets: inbound hooks (each decoded message
 * before its handler) and outbound hooks (each message before it is encoded,
 * from `send` and from every receiver of a typed broadcast): passing on,
 * changing, dropping, registration order, promises that hold a client's
 * later messages in order, and faults (handler-error, the process lives).
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { json, utf8 } from '../../../lib/codec/serializers.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import { collectAll, destroyAll, until } from '../../helpers/net.js';
import { accept, closeOf, frame, readFrames } from './rig.js';

interface Chat {
  text: string;
}

function messages() {
  return new MessageRegistry().register(1, 'Say', utf8()).register(2, 'Chat', json<Chat>()).register(3, 'Note', utf8());
}

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('inbound hooks: in registration order, each may pass a message on, change it or drop it; with none the tables are null', async () => {
  const loop = new EventLoop();
  const handled: string[] = [];
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  assert.is(server._framing._inboundHooks, null, 'no hook: one field check per message');
  server.handle('Say', (_c, text) => void handled.push(`Say ${text}`));
  server.handle('Chat', (_c, chat, message) => void handled.push(`Chat ${chat.text} ${message.value.toString()}`));
  const order: string[] = [];
  const first = (_c: unknown, m: { name: string | undefined }): undefined => void order.push(`first ${m.name}`);
  assert.is(server.addInboundHook(first), server, 'chainable');
  server.addInboundHook((_client, message) => {
    order.push(`second ${message.name}`);
    if (message.name === 'Note') return null;
    if (message.name === 'Say' && message.payload === 'shout') return { ...message, payload: 'SHOUT' };
    return undefined;
  });
  try {
    const a = await accept(server);
    a.peer.write(Buffer.concat([frame(1, 'hi'), frame(3, 'dropped'), frame(1, 'shout'), frame(2, '{"text":"yo"}')]));
    await until(() => handled.length === 3, 'three handled');
    assert.equal(handled, ['Say hi', 'Say SHOUT', 'Chat yo {"text":"yo"}']);
    assert.equal(order, ['first Say', 'second Say', 'first Note', 'second Note', 'first Say', 'second Say', 'first Chat', 'second Chat']);
    // Removing them restores the hook-free path.
    server.removeInboundHook(first);
    assert.is(server._framing._inboundHooks!.length, 1);
    server.removeInboundHook(first);
    assert.is(server._framing._inboundHooks!.length, 1, 'removing one not there changes nothing');
    server.removeInboundHook(server._framing._inboundHooks![0]! as never);
    assert.is(server._framing._inboundHooks, null);
    await destroyAll(a.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("an inbound hook's promise holds the client's later messages in order (counted as pending), while another client goes on", async () => {
  const loop = new EventLoop();
  const handled: string[] = [];
  const held = deferred<undefined | null>();
  const server = await new FramedServer(loop, { registry: messages(), maxPendingMessages: 3 }).listen();
  server.handle('Say', (client, text) => void handled.push(`${client.id}:${text}`));
  server.addInboundHook((_c, message) => (message.name === 'Say' && message.payload === 'slow' ? held.promise : undefined));
  try {
    const a = await accept(server);
    const b = await accept(server);
    a.peer.write(Buffer.concat([frame(1, 'first'), frame(1, 'slow'), frame(1, 'after-1'), frame(1, 'after-2'), frame(1, 'after-3')]));
    await until(() => handled.length === 1, 'the first handled');
    await until(() => a.client.framingStats().paused, 'reading paused: the held message and those behind it are pending');
    const stats = a.client.framingStats();
    assert.is(stats.inFlight, 1, 'the held message');
    assert.is(stats.backlog, 3, 'the three behind it wait');
    b.peer.write(frame(1, 'other'));
    await until(() => handled.length === 2, "the other client's message");
    assert.equal(handled, [`${a.client.id}:first`, `${b.client.id}:other`]);
    held.resolve(undefined);
    await until(() => handled.length === 6, 'the rest, in order');
    assert.equal(handled.slice(2), ['slow', 'after-1', 'after-2', 'after-3'].map((t) => `${a.client.id}:${t}`));
    await until(() => !a.client.framingStats().paused, 'reading resumed');
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('an inbound hook that throws, rejects or returns something other than a message closes only that client with handler-error', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  const handled: string[] = [];
  server.handle('Say', (_c, text) => void handled.push(text));
  server.addInboundHook((_c, message) => {
    if (message.payload === 'throw') throw new Error('hook threw');
    if (message.payload === 'reject') return Promise.reject(new Error('hook rejected'));
    if (message.payload === 'junk') return 42 as never;
    return undefined;
  });
  try {
    const bystander = await accept(server);
    for (const [how, code] of [
      ['throw', ErrorCode.HANDLER_ERROR],
      ['reject', ErrorCode.HANDLER_ERROR],
      ['junk', ErrorCode.HANDLER_ERROR],
    ] as const) {
      const a = await accept(server);
      const closed = closeOf(server, a.client);
      a.peer.write(Buffer.concat([frame(1, how), frame(1, 'never')]));
      const [, reason, err] = await closed;
      assert.is(reason, 'handler-error', how);
      assert.ok(isNetloopError(err, code), `${how}: ${String(err?.code)}`);
      if (how === 'junk') assert.ok(isNetloopError(err!.cause, ErrorCode.INVALID_VALUE));
      await destroyAll(a.peer);
    }
    bystander.peer.write(frame(1, 'alive'));
    await until(() => handled.length === 1, 'the bystander is served');
    assert.equal(handled, ['alive'], 'nothing after a fault was handled');
    await destroyAll(bystander.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("outbound hooks: each send is seen before encoding and passed on, changed or dropped; a hook's promise holds the client's later sends in order; a fault closes that client", async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  const seen: string[] = [];
  const held = deferred<{ type: number; name: 'Say'; payload: string }>();
  server.addOutboundHook((_c, message) => void seen.push(`${message.name}:${message.type}`));
  server.addOutboundHook((_c, message) => {
    if (message.name === 'Note') return null;
    if (message.name === 'Say' && message.payload === 'held') return held.promise;
    if (message.name === 'Say' && message.payload === 'boom') throw new Error('outbound hook threw');
    if (message.name === 'Chat') return { ...message, payload: { text: message.payload.text.toUpperCase() } };
    return undefined;
  });
  try {
    const a = await accept(server);
    assert.is(a.client.send('Say', 'one'), true);
    assert.is(a.client.send('Note', 'dropped'), true, 'a dropped message was taken');
    assert.is(a.client.send('Chat', { text: 'loud' }), true);
    assert.is(a.client.send('Say', 'held'), true, 'held by a promise: taken');
    assert.is(a.client.send('Say', 'behind'), true);
    // Mistakes of the caller still throw synchronously, hooks or not.
    assert.throws(() => a.client.send('Nope' as never, 'x'), (e: unknown) => isNetloopError(e, ErrorCode.UNKNOWN_TYPE));
    const first = await readFrames(a.peer, 2);
    assert.equal(first.map((f) => [f.type, f.value.toString()]), [
      [1, 'one'],
      [2, '{"text":"LOUD"}'],
    ]);
    held.resolve({ type: 1, name: 'Say', payload: 'released' });
    const rest = await readFrames(a.peer, 2);
    assert.equal(rest.map((f) => f.value.toString()), ['released', 'behind'], 'in order, behind the held one');
    assert.equal(seen, ['Say:1', 'Note:3', 'Chat:2', 'Say:1', 'Say:1']);

    const closed = closeOf(server, a.client);
    const done = collectAll(a.peer);
    assert.is(a.client.send('Say', 'boom'), false);
    const [, reason, err] = await closed;
    await done;
    assert.is(reason, 'handler-error');
    assert.ok(isNetloopError(err, ErrorCode.HANDLER_ERROR));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("a typed broadcast is encoded once and each receiver's outbound hooks see a message of its own: one receiver's hook drops it, another's changes it, a third gets the shared frame; raw bytes bypass hooks", async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  let encodes = 0;
  const encode = server._framing.encodeMessage.bind(server._framing);
  server._framing.encodeMessage = (ref, payload) => {
    encodes++;
    return encode(ref, payload);
  };
  try {
    const [a, b, c] = [await accept(server), await accept(server), await accept(server)];
    const hooked: number[] = [];
    server.addOutboundHook((client, message) => {
      hooked.push(client.id);
      if (client === a.client) return null;
      if (client === b.client && message.name === 'Say') return { ...message, payload: `${message.payload} for b` };
      return undefined;
    });
    assert.is(server.broadcast({ type: 'Say', payload: 'all' }), 2, 'a dropped the message');
    assert.is(encodes, 1, 'encoded once; the changed message for b encoded on its own path');
    assert.is(server.broadcast('raw'), 3);
    assert.equal(hooked.sort(), [a.client.id, b.client.id, c.client.id].sort(), 'raw bytes are not messages: no hook saw them');
    const got = [a, b, c].map((x) => collectAll(x.peer));
    for (const x of [a, b, c]) x.client.end();
    const [ra, rb, rc] = await Promise.all(got);
    assert.equal(ra!.data, Buffer.from('raw'));
    assert.equal(rb!.data, Buffer.concat([frame(1, 'all for b'), Buffer.from('raw')]));
    assert.equal(rc!.data, Buffer.concat([frame(1, 'all'), Buffer.from('raw')]));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('a connector has the same hooks: its inbound hooks see what the server sends, its outbound hooks what it sends', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  const atServer: string[] = [];
  server.handle('Say', (client, text) => {
    atServer.push(text);
    client.send('Say', `echo ${text}`);
  });
  const atConnector: string[] = [];
  const connector = new FramedConnector(loop, { port: server.port, registry: messages() });
  connector.addOutboundHook((_c, m) => (m.name === 'Say' ? { ...m, payload: `[${m.payload}]` } : undefined));
  connector.addInboundHook((_c, m) => (m.name === 'Say' && m.payload.includes('secret') ? null : undefined));
  connector.handle('Say', (_c, text) => void atConnector.push(text));
  try {
    connector.on('connected', (client) => {
      client.send('Say', 'secret');
      client.send('Say', 'hello');
    });
    connector.connect();
    await until(() => atConnector.length === 1 && atServer.length === 2, 'both sides');
    assert.equal(atServer, ['[secret]', '[hello]']);
    assert.equal(atConnector, ['echo [hello]'], 'the echo of the secret was dropped on arrival');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
