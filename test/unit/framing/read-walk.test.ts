/**
 * The read loop of a framed client: the whole frames of a chunk are walked
 * by the client itself, and a plain `onMessage` (no registry, typed handler,
 * hook, reserved type or copy) gets each message from that loop directly.
 * Over real sockets, these tests check that everything the general path
 * does still holds there: tables changed from a handler apply from the next
 * frame of the same chunk, a throwing handler closes only its client, the
 * per-turn budget and the handler slots are honoured in order, and the
 * switch to the full frame limit happens mid-chunk.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import type { FramedClient, FramedMessage } from '../../../lib/framing/framed-client.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { destroyAll, pattern, until } from '../../helpers/net.js';
import { accept, closeOf, frame, isCode, readFrames } from './rig.js';

test('a hook, an observer and a reserved type added by a handler in the middle of a read apply from the next frame of that read', async () => {
  const loop = new EventLoop();
  const seen: string[] = [];
  let server!: FramedServer;
  server = await new FramedServer(loop, {
    onMessage(client, message) {
      const text = message.value.toString();
      seen.push(`handler ${message.type} ${text}`);
      if (text === 'hook') {
        server.addInboundHook((_c, m) => {
          seen.push(`hook ${m.value.toString()}`);
          return m.value.toString() === 'drop' ? null : undefined;
        });
      }
      if (text === 'more') {
        server.addFrameObserver((_c, type, size) => void seen.push(`observer ${type} ${size}`));
        server.reserveType(9, (_c, source, start, end) => void seen.push(`reserved ${source.toString('utf8', start, end)}`));
      }
      client.send(message.type, message.value);
    },
  }).listen();
  try {
    const { peer } = await accept(server);
    // One write: one chunk on loopback, so the later frames are in the read whose handlers add the tables.
    peer.write(Buffer.concat([frame(1, 'first'), frame(1, 'hook'), frame(1, 'drop'), frame(1, 'more'), frame(9, 'mine'), frame(2, 'last')]));
    const echoed = await readFrames(peer, 4);
    assert.equal(
      echoed.map((f) => `${f.type} ${f.value.toString()}`),
      ['1 first', '1 hook', '1 more', '2 last'],
    );
    assert.equal(seen, [
      'handler 1 first',
      'handler 1 hook',
      'hook drop',
      'hook more',
      'handler 1 more',
      'observer 9 10',
      'reserved mine',
      'observer 2 10',
      'hook last',
      'handler 2 last',
    ]);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('a throwing onMessage closes only its client with handler-error; the rest of its read is not handed out, and another client is still served', async () => {
  const loop = new EventLoop();
  const handled: string[] = [];
  const server = await new FramedServer(loop, {
    onMessage(client, message) {
      const text = message.value.toString();
      handled.push(text);
      if (text === 'throw') throw new Error('boom');
      client.send(message.type, message.value);
    },
  }).listen();
  try {
    const { peer: bystander } = await accept(server);
    const { peer, client } = await accept(server);
    const closed = closeOf(server, client);
    peer.write(Buffer.concat([frame(1, 'a'), frame(1, 'throw'), frame(1, 'never'), frame(1, 'handled')]));
    const [, reason, err] = await closed;
    assert.is(reason, 'handler-error');
    assert.ok(isCode(err, ErrorCode.HANDLER_ERROR));
    assert.is((err!.cause as Error).message, 'boom');
    assert.equal(handled, ['a', 'throw']);
    // Every frame of the read is still counted as received, as on the decoder's path.
    assert.is(server.frameCounts().find((c) => c.type === 1)?.received, 4);
    bystander.write(Buffer.concat([frame(1, 'still'), frame(1, 'served')]));
    const echoed = await readFrames(bystander, 2);
    assert.equal(echoed.map((f) => f.value.toString()), ['still', 'served']);
    await destroyAll(peer, bystander);
  } finally {
    await loop.close();
  }
});

test('the per-turn budget holds the rest of a read for later turns, in order, and the frames after a cut one follow', async () => {
  const loop = new EventLoop();
  const budget = 7;
  const total = 60;
  const handled: Array<{ turn: number; text: string }> = [];
  const server = await new FramedServer(loop, {
    maxMessagesPerTurn: budget,
    onMessage(client, message) {
      handled.push({ turn: loop._turnSeq, text: message.value.toString() });
      client.send(message.type, message.value);
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    const texts = Array.from({ length: total }, (_, i) => `m${i}`);
    const bytes = Buffer.concat(texts.map((t) => frame(1, t)));
    // The first write ends inside a frame: the decoder takes the cut frame, the walk the rest.
    const cut = bytes.length - 5;
    peer.write(bytes.subarray(0, cut));
    await until(() => handled.length >= budget, 'the first turn');
    peer.write(bytes.subarray(cut));
    const echoed = await readFrames(peer, total);
    assert.equal(echoed.map((f) => f.value.toString()), texts, 'every message echoed once, in order');
    assert.equal(handled.map((h) => h.text), texts, 'handled once each, in order');
    const perTurn = new Map<number, number>();
    for (const h of handled) perTurn.set(h.turn, (perTurn.get(h.turn) ?? 0) + 1);
    assert.ok(Math.max(...perTurn.values()) <= budget, `at most ${budget} per turn: ${[...perTurn.values()].join(',')}`);
    await until(() => client.isReading(), 'reading resumed');
    assert.equal([client.framingStats().heldBytes, client.framingStats().frames], [0, total]);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('an async onMessage fills its handler slots and the rest of the read waits in the backlog, handed out in order as promises settle', async () => {
  const loop = new EventLoop();
  const order: string[] = [];
  const resolvers: Array<() => void> = [];
  const server = await new FramedServer(loop, {
    maxPendingMessages: 3,
    onMessage(client: FramedClient, message: FramedMessage) {
      order.push(message.value.toString());
      return new Promise<void>((resolve) => resolvers.push(resolve)).then(() => void client.send(message.type, message.value));
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    const texts = Array.from({ length: 10 }, (_, i) => `p${i}`);
    peer.write(Buffer.concat(texts.map((t) => frame(1, t))));
    await until(() => order.length === 3, 'three handlers running');
    assert.equal(client.framingStats().inFlight, 3);
    assert.equal(client.framingStats().backlog, 7);
    while (order.length < texts.length || resolvers.length > 0) {
      await until(() => resolvers.length > 0, 'a pending handler');
      resolvers.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(order, texts);
    const echoed = await readFrames(peer, texts.length);
    assert.equal(echoed.map((f) => f.value.toString()), texts);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('markAuthenticated from onMessage lets the next frame of the same read use the full frame limit', async () => {
  const loop = new EventLoop();
  const sizes: number[] = [];
  const server = await new FramedServer(loop, {
    preAuthMaxFrameLength: 64,
    onMessage(client, message) {
      sizes.push(message.value.length);
      if (message.value.toString() === 'login') client.markAuthenticated();
    },
  }).listen();
  try {
    const { peer, client } = await accept(server);
    const big = pattern(1000, 3);
    peer.write(Buffer.concat([frame(1, 'login'), frame(2, big), frame(1, 'after')]));
    await until(() => sizes.length === 3, 'the three messages');
    assert.equal(sizes, [5, 1000, 5]);
    assert.is(client.framingStats().maxFrameLength, server.layout.maxFrameLength);
    // Before authentication, the same large frame closes the client.
    const { peer: other, client: anonymous } = await accept(server);
    const closed = closeOf(server, anonymous);
    other.write(Buffer.concat([frame(1, 'hi'), frame(2, big)]));
    const [, reason, err] = await closed;
    assert.equal([reason, err?.code], ['protocol-error', ErrorCode.FRAME_TOO_LARGE]);
    await destroyAll(peer, other);
  } finally {
    await loop.close();
  }
});

test.run();
