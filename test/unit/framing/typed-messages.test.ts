/**
 * The typed message path over real sockets: typed handlers (`handle(name,
 * fn)`) and the order of dispatch beside `onMessage` and the `'message'`
 * event, their backpressure and faults, the registration mistakes, a JSON
 * guard refusing a payload, and the same on a connector.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { json, raw, utf8 } from '../../../lib/codec/serializers.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import type { FramedClient } from '../../../lib/framing/framed-client.js';
import { collectAll, destroyAll, until, waitFor } from '../../helpers/net.js';
import { accept, closeOf, frame, readFrames, throwsCode } from './rig.js';

interface Login {
  user: string;
}
interface Chat {
  text: string;
}
const isChat = (v: unknown): v is Chat => typeof v === 'object' && v !== null && typeof (v as Chat).text === 'string';

function messages() {
  return new MessageRegistry()
    .register(1, 'Login', json<Login>())
    .register(2, 'Chat', json<Chat>({ validate: isChat }))
    .register(3, 'Say', utf8())
    .register(4, 'Blob', raw());
}

const jsonFrame = (type: number, value: unknown): Buffer => frame(type, JSON.stringify(value));

test('handle(name, fn): each message of a handled type goes to its handler with its payload decoded; the others to onMessage; replies are typed sends', async () => {
  const loop = new EventLoop();
  const seen: string[] = [];
  const server = await new FramedServer(loop, {
    registry: messages(),
    onMessage(client, message) {
      seen.push(`onMessage ${message.name ?? message.type}`);
    },
  }).listen();
  assert.is(server.handle('Chat', (client, chat, message) => {
    seen.push(`Chat ${chat.text} (${message.name}, type ${message.type}, ${message.value.length} bytes)`);
    client.send('Say', chat.text.toUpperCase());
  }), server, 'chainable');
  server.handle('Login', (_client, login) => void seen.push(`Login ${login.user}`));
  try {
    const a = await accept(server);
    a.peer.write(Buffer.concat([jsonFrame(1, { user: 'ann' }), jsonFrame(2, { text: 'hi' }), frame(3, 'plain'), frame(4, 'bytes'), jsonFrame(2, { text: 'yo' })]));
    const replies = await readFrames(a.peer, 2);
    assert.equal(replies.map((r) => [r.type, r.value.toString()]), [
      [3, 'HI'],
      [3, 'YO'],
    ]);
    assert.equal(seen, ['Login ann', 'Chat hi (Chat, type 2, 13 bytes)', 'onMessage Say', 'onMessage Blob', 'Chat yo (Chat, type 2, 13 bytes)']);
    // Without onMessage, the types nobody handles go to the 'message' event.
    const bare = await new FramedServer(loop, { registry: messages() }).listen();
    const events: string[] = [];
    bare.handle('Say', (_c, text) => void events.push(`handled ${text}`));
    bare.on('message', (_c, message) => void events.push(`event ${message.name}`));
    const b = await accept(bare);
    b.peer.write(Buffer.concat([frame(3, 'one'), jsonFrame(1, { user: 'bo' }), frame(3, 'two')]));
    await until(() => events.length === 3, 'three messages');
    assert.equal(events, ['handled one', 'event Login', 'handled two']);
    // unhandle gives the type back to the event.
    assert.is(bare.unhandle('Say'), true);
    assert.is(bare.unhandle('Say'), false);
    assert.is(bare._framing._handlers, null, 'no typed handler left: one field check per message');
    b.peer.write(frame(3, 'three'));
    await until(() => events.length === 4, 'the fourth');
    assert.is(events[3], 'event Say');
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("handle: a handler's promise keeps its message pending as onMessage's does (reading pauses at maxPendingMessages, resumes at half); a throw or a rejection closes only that client with handler-error", async () => {
  const loop = new EventLoop();
  const settle: Array<() => void> = [];
  let handled = 0;
  const server = await new FramedServer(loop, { registry: messages(), maxPendingMessages: 2 }).listen();
  server.handle('Say', (_client, text) => {
    handled++;
    if (text === 'throw') throw new Error('handler threw');
    if (text === 'reject') return Promise.reject(new Error('handler rejected'));
    return new Promise<void>((resolve) => settle.push(resolve));
  });
  try {
    const a = await accept(server);
    a.peer.write(Buffer.concat([frame(3, '1'), frame(3, '2'), frame(3, '3'), frame(3, '4')]));
    await until(() => a.client.framingStats().backlog === 2, 'two waiting behind two in flight');
    let stats = a.client.framingStats();
    assert.is(stats.inFlight, 2);
    assert.is(stats.paused, true, 'reading paused at the limit');
    assert.is(handled, 2);
    settle.shift()!();
    await until(() => handled === 3, 'a slot freed: the third dispatched');
    settle.shift()!();
    settle.shift()!();
    await until(() => handled === 4 && a.client.framingStats().inFlight === 1, 'the fourth in flight');
    settle.shift()!();
    await until(() => !a.client.framingStats().paused, 'reading resumed');
    stats = a.client.framingStats();
    assert.equal([stats.inFlight, stats.backlog, stats.pendingBytes], [0, 0, 0]);

    for (const how of ['throw', 'reject']) {
      const b = await accept(server);
      const closed = closeOf(server, b.client);
      b.peer.write(frame(3, how));
      const [, reason, err] = await closed;
      assert.is(reason, 'handler-error', how);
      assert.ok(isNetloopError(err, ErrorCode.HANDLER_ERROR));
      assert.is((err!.cause as Error).message, `handler ${how === 'throw' ? 'threw' : 'rejected'}`);
      await destroyAll(b.peer);
    }
    // The first client is still served.
    a.peer.write(frame(3, 'still'));
    await until(() => handled === 7, 'still served');
    settle.shift()!();
    await destroyAll(a.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('handle: mistakes are refused when registering: an unknown name, a second handler, no registry, onRawFrame, not a function', async () => {
  const loop = new EventLoop();
  try {
    const server = new FramedServer(loop, { registry: messages() });
    server.handle('Say', () => undefined);
    const dup = throwsCode(() => server.handle('Say', () => undefined), ErrorCode.DUPLICATE_TYPE);
    assert.equal(dup.details, { id: 3, name: 'Say' });
    throwsCode(() => server.handle('Nope' as never, () => undefined), ErrorCode.UNKNOWN_TYPE);
    throwsCode(() => server.handle('Chat', 'handler' as never), ErrorCode.INVALID_OPTION);
    throwsCode(() => server.handle(3 as never, () => undefined), ErrorCode.INVALID_OPTION);
    const rawServer = new FramedServer(loop, {});
    throwsCode(() => rawServer.handle('Say' as never, () => undefined), ErrorCode.INVALID_OPTION);
    const relay = new FramedServer(loop, { registry: messages(), onRawFrame: () => undefined });
    throwsCode(() => relay.handle('Say', () => undefined), ErrorCode.INVALID_OPTION);
    assert.is(server.unhandle('Nope' as never), false);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("json({ validate }): a payload its guard refuses, or that makes the guard throw, is BAD_PAYLOAD (protocol-error) and reaches no handler; the peer's bytes are in no part of the error", async () => {
  const loop = new EventLoop();
  const handled: string[] = [];
  const registry = new MessageRegistry()
    .register(2, 'Chat', json<Chat>({ validate: isChat }))
    .register(5, 'Strict', json<Chat>({
      validate: (v: unknown): v is Chat => {
        // A guard whose error quotes the value, as a schema validator's may.
        throw new TypeError(`not a chat: ${JSON.stringify(v)}`);
      },
    }));
  const server = await new FramedServer(loop, { registry }).listen();
  server.handle('Chat', (_c, chat) => void handled.push(chat.text));
  try {
    for (const [type, secret] of [
      [2, { secret: 's3cr3t-token' }],
      [5, { text: 's3cr3t-token' }],
    ] as const) {
      const a = await accept(server);
      const closed = closeOf(server, a.client);
      const done = collectAll(a.peer);
      a.peer.write(Buffer.concat([jsonFrame(2, { text: 'ok' }), jsonFrame(type, secret)]));
      const [, reason, err] = await closed;
      await done;
      assert.is(reason, 'protocol-error');
      assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD), String(err?.code));
      const e = err as NetloopError;
      assert.is(e.details['length'], JSON.stringify(secret).length);
      assert.is(e.details['error'], type === 2 ? 'validate' : 'TypeError');
      const everything = [e.message, e.stack, JSON.stringify(e.details), String(e.cause), (e.cause as Error | undefined)?.stack].join('\n');
      assert.not.ok(everything.includes('s3cr3t'), 'the peer\'s bytes are not in the error');
      await destroyAll(a.peer);
    }
    assert.equal(handled, ['ok', 'ok'], 'only the valid messages were handled');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('a connector is typed and dispatched the same way: handle on both ends, typed sends both ways', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  server.handle('Login', (client, login) => void client.send('Chat', { text: `welcome ${login.user}` }));
  const got: string[] = [];
  const connector = new FramedConnector(loop, { port: server.port, registry: messages() });
  connector.handle('Chat', (client, chat) => {
    got.push(chat.text);
    client.send('Say', 'thanks');
  });
  const said = waitFor<[FramedClient, { payload: unknown }]>(server, 'message');
  try {
    connector.on('connected', (client) => void client.send('Login', { user: 'cy' }));
    connector.connect();
    const [, message] = await said;
    assert.equal(got, ['welcome cy']);
    assert.is(message.payload, 'thanks', "the server's unhandled Say went to its 'message' event");
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('a JSON payload leaves as the same bytes whether its text is written in place (up to copyThreshold) or through a Buffer; a payload JSON cannot carry is INVALID_VALUE with nothing queued; the hard output limit refuses an in-place text', async () => {
  const loop = new EventLoop();
  const results: Array<boolean | string> = [];
  const server = await new FramedServer(loop, { registry: messages(), copyThreshold: 32, maxOutputBytes: 100 }).listen();
  server.handle('Login', (client, login) => {
    if (login.user === 'small') {
      results.push(client.send('Chat', { text: 'déjà vu' })); // 22 bytes of UTF-8 JSON: in place
      results.push(client.send('Chat', { text: 'x'.repeat(40) })); // 51 bytes: above copyThreshold
      const queued = client.queuedBytes;
      const cyclic: { text: string; self?: unknown } = { text: 'loop' };
      cyclic.self = cyclic;
      results.push(throwsCode(() => client.send('Chat', cyclic), ErrorCode.INVALID_VALUE).code);
      results.push(throwsCode(() => client.send('Chat', { text: 1n } as unknown as Chat), ErrorCode.INVALID_VALUE).code);
      results.push(client.queuedBytes === queued);
    } else {
      // 3 frames of 27 bytes fit in 100 bytes; the fourth is refused by the hard limit.
      for (let i = 0; i < 4; i++) results.push(client.send('Chat', { text: 'y'.repeat(10) }));
    }
  });
  try {
    const a = await accept(server);
    a.peer.write(jsonFrame(1, { user: 'small' }));
    const got = await readFrames(a.peer, 2);
    assert.equal(got.map((f) => [f.type, f.value.toString()]), [
      [2, JSON.stringify({ text: 'déjà vu' })],
      [2, JSON.stringify({ text: 'x'.repeat(40) })],
    ]);
    assert.equal(results, [true, true, ErrorCode.INVALID_VALUE, ErrorCode.INVALID_VALUE, true]);

    results.length = 0;
    const b = await accept(server);
    const closed = closeOf(server, b.client);
    b.peer.write(jsonFrame(1, { user: 'limit' }));
    const [, reason] = await closed;
    assert.equal(results, [true, true, true, false]);
    assert.equal(server.frameCounts().find((c) => c.name === 'Chat')!.sent, 5, 'the refused frame is not counted');
    assert.is(reason, 'output-limit');
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
