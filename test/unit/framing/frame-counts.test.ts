/**
 * `frameCounts()` over real sockets: frames in and out by type on a server
 * (typed sends, raw sends, typed broadcasts of the server and of the loop,
 * with and without outbound hooks; byte writes not counted), the bound on
 * unregistered types (`maxCountedTypes`, reserved types exempt, the rest as
 * `'other'`), the option's validation, and the same counters on a connector.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { json, utf8 } from '../../../lib/codec/serializers.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import type { FrameCount } from '../../../lib/framing/frame-counts.js';
import { destroyAll, until, waitFor } from '../../helpers/net.js';
import { accept, frame, readFrames, throwsCode } from './rig.js';

interface Chat {
  text: string;
}

function messages() {
  return new MessageRegistry().register(1, 'Chat', json<Chat>()).register(2, 'Say', utf8()).register(3, 'Notice', utf8());
}

/** The counts as `name: received/sent` strings, in the order listed. */
function brief(counts: readonly FrameCount[]): string[] {
  return counts.map((c) => `${c.name}: ${c.received}/${c.sent}`);
}

test('frameCounts: received and sent by registered name, through send, sendRaw and typed broadcasts; byte writes are not frames', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  server.handle('Chat', (client, chat) => {
    client.send('Say', chat.text);
  });
  try {
    assert.equal(server.frameCounts(), [], 'nothing counted yet');
    const a = await accept(server);
    const b = await accept(server);
    a.peer.write(Buffer.concat([frame(1, '{"text":"one"}'), frame(1, '{"text":"two"}'), frame(3, 'n')]));
    await readFrames(a.peer, 2);
    assert.equal(brief(server.frameCounts()), ['Chat: 2/0', 'Say: 0/2', 'Notice: 1/0']);

    a.client.sendRaw(3, Buffer.from('raw'));
    assert.is(server.broadcast({ type: 'Chat', payload: { text: 'all' } }), 2);
    assert.is(loop.broadcast({ type: 3, payload: 'loop' }), 2);
    server.broadcast(Buffer.from('bytes are not frames the framing knows'));
    a.client.write(Buffer.from('nor is a write'));
    assert.equal(brief(server.frameCounts()), ['Chat: 2/2', 'Say: 0/2', 'Notice: 1/3']);
    const list = server.frameCounts();
    assert.ok(list !== server.frameCounts(), 'a list made at each call');
    assert.equal(list[0], { name: 'Chat', type: 1, received: 2, sent: 2 });

    // With an outbound hook, each receiver's frame goes through the hooks:
    // counted when written, not when a hook drops it.
    server.addOutboundHook((client, message) => (client === b.client && message.name === 'Say' ? null : message));
    assert.is(server.broadcast({ type: 'Say', payload: 'hooked' }), 1);
    assert.equal(brief(server.frameCounts()).slice(1, 2), ['Say: 0/3']);
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('frameCounts: unregistered types past maxCountedTypes count as other; reserved types always have their own', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, {
    maxCountedTypes: 2,
    onRawFrame(client, type, source, start, end) {
      client.sendRaw(type, source, start, end);
    },
  }).listen();
  server.reserveType(0xfff0, (client, source, start, end) => void client.sendRaw(0xfff0, source, start, end));
  try {
    const a = await accept(server);
    a.peer.write(Buffer.concat([10, 11, 12, 13, 10, 0xfff0, 12].map((t) => frame(t, 'x'))));
    await readFrames(a.peer, 7);
    assert.equal(brief(server.frameCounts()), ['10: 2/2', '11: 1/1', '65520: 1/1', 'other: 3/3']);
    const other = server.frameCounts().at(-1)!;
    assert.is(other.type, -1);
    await destroyAll(a.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('frameCounts: maxCountedTypes 0 counts every unregistered type as other; a frame refused by a strict registry is not counted', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages(), maxCountedTypes: 0 }).listen();
  try {
    const a = await accept(server);
    server.on('message', (client, message) => void client.send('Say', String(message.payload)));
    a.peer.write(frame(3, 'n'));
    await readFrames(a.peer, 1);
    const closed = waitFor(server, 'close');
    a.peer.write(frame(9, 'unknown'));
    await closed;
    assert.equal(brief(server.frameCounts()), ['Notice: 1/0', 'Say: 0/1']);

    const bare = await new FramedServer(loop, { maxCountedTypes: 0, onRawFrame: () => undefined }).listen();
    const b = await accept(bare);
    b.peer.write(Buffer.concat([frame(4, 'a'), frame(5, 'b')]));
    await until(() => bare.frameCounts().length === 1 && bare.frameCounts()[0]!.received === 2, 'both frames counted');
    assert.equal(brief(bare.frameCounts()), ['other: 2/0']);
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('maxCountedTypes is validated', () => {
  const loop = new EventLoop();
  for (const bad of [-1, 1.5, 65_537, Number.NaN, '8' as unknown as number]) {
    throwsCode(() => new FramedServer(loop, { maxCountedTypes: bad }), ErrorCode.INVALID_OPTION);
    throwsCode(() => new FramedConnector(loop, { port: 1, maxCountedTypes: bad }), ErrorCode.INVALID_OPTION);
  }
});

test('frameCounts on a connector: what its connection received and sent', async () => {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry: messages() }).listen();
  server.handle('Chat', (client, chat) => {
    client.send('Say', chat.text);
    client.send('Notice', 'seen');
  });
  const connector = new FramedConnector(loop, { port: server.port, registry: messages() });
  try {
    connector.on('connected', (client) => void client.send('Chat', { text: 'hi' }));
    const notice = new Promise<void>((resolve) => connector.handle('Notice', () => resolve()));
    connector.connect();
    await notice;
    assert.equal(brief(connector.frameCounts()), ['Chat: 0/1', 'Say: 1/0', 'Notice: 1/0']);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
