/**
 * The three uses of message hooks the documentation shows, together on one
 * framed server with a real session binding and registry, over loopback:
 * per-type counters (every message in and out), an authentication gate that
 * drops everything but `Login` until the client's session exists, and a log
 * of what passed the gate and what was sent.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import { json } from '../../lib/codec/serializers.js';
import { LtvEncoder } from '../../lib/codec/ltv-encoder.js';
import { decodeFrames } from '../../lib/codec/ltv-decoder.js';
import { FramedServer } from '../../lib/framing/framed-server.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { bindSessions } from '../../lib/binding/session-binding.js';
import { connectionProbe } from '../../lib/binding/connection-probe.js';
import { connectRaw, destroyAll, until } from '../helpers/net.js';

interface Login {
  user: string;
}
interface Welcome {
  session: string;
}
interface Chat {
  from?: string;
  text: string;
}

test('hooks: per-type counters see every message in and out, an authentication gate drops all but Login until the session exists, a log records what passed', async () => {
  const loop = new EventLoop();
  const sessions = new SessionRegistry({ clock: loop.clock, autoAudit: false, isConnectionAlive: connectionProbe(loop) });
  const messages = new MessageRegistry()
    .register(1, 'Login', json<Login>())
    .register(2, 'Welcome', json<Welcome>())
    .register(3, 'Chat', json<Chat>());
  const server = await new FramedServer(loop, { port: 0, registry: messages }).listen();
  const binding = bindSessions(server, sessions);

  // Counters first: they see every message that arrives, the gate's drops included.
  const inbound = new Map<string, number>();
  const outbound = new Map<string, number>();
  const count = (map: Map<string, number>, name: string | undefined): void => void map.set(name ?? '?', (map.get(name ?? '?') ?? 0) + 1);
  server.addInboundHook((_client, message) => void count(inbound, message.name));
  server.addOutboundHook((_client, message) => void count(outbound, message.name));
  // The gate: nothing but Login reaches a handler before the session exists.
  let dropped = 0;
  server.addInboundHook((client, message) => {
    if (message.name === 'Login' || binding.sessionOf(client) !== undefined) return undefined;
    dropped++;
    return null;
  });
  // The log: what passed the gate, and what was sent.
  const log: string[] = [];
  server.addInboundHook((client, message) => void log.push(`in ${client.id} ${message.name}`));
  server.addOutboundHook((client, message) => void log.push(`out ${client.id} ${message.name}`));

  server.handle('Login', async (client, login) => {
    const { session } = await binding.login(client, { userId: login.user });
    client.send('Welcome', { session: session.id });
  });
  const chats: string[] = [];
  server.handle('Chat', (client, chat) => {
    chats.push(chat.text);
    server.broadcast({ type: 'Chat', payload: { from: binding.sessionOf(client)!.userId ?? '', text: chat.text } }, {
      filter: (c) => binding.sessionOf(c) !== undefined,
    });
  });

  const enc = new LtvEncoder({ layout: 'netloop' });
  const send = (type: number, value: unknown): Buffer => enc.encode(type, Buffer.from(JSON.stringify(value)));
  const ann = await connectRaw(server.port);
  const eve = await connectRaw(server.port);
  const annIn: Buffer[] = [];
  const eveIn: Buffer[] = [];
  ann.on('data', (d: Buffer) => annIn.push(d));
  eve.on('data', (d: Buffer) => eveIn.push(d));
  const frames = (chunks: Buffer[]): Array<{ type: number; value: string }> =>
    decodeFrames(Buffer.concat(chunks), { layout: 'netloop' }).map((f) => ({ type: f.type, value: f.value.toString() }));
  try {
    // Before any login: both clients' chats are dropped by the gate.
    ann.write(send(3, { text: 'too early' }));
    eve.write(send(3, { text: 'anonymous' }));
    await until(() => dropped === 2, 'two drops');
    assert.equal(chats, []);
    // ann logs in; her chat after the welcome passes and is broadcast to the logged-in only.
    ann.write(send(1, { user: 'ann' }));
    await until(() => frames(annIn).length === 1, 'the welcome');
    assert.is(frames(annIn)[0]!.type, 2);
    ann.write(send(3, { text: 'hello' }));
    eve.write(send(3, { text: 'still anonymous' }));
    await until(() => frames(annIn).length === 2 && dropped === 3, 'the broadcast and the third drop');
    assert.equal(frames(annIn)[1], { type: 3, value: '{"from":"ann","text":"hello"}' });
    assert.equal(chats, ['hello']);
    assert.equal(eveIn.length, 0, 'eve, without a session, was sent nothing');

    const a = binding.sessionOf([...server.clients()].find((c) => binding.sessionOf(c) !== undefined)!)!;
    assert.is(a.userId, 'ann');
    assert.equal(Object.fromEntries(inbound), { Chat: 4, Login: 1 }, 'the counters saw every message in');
    assert.equal(Object.fromEntries(outbound), { Welcome: 1, Chat: 1 }, 'and every message out');
    const annId = [...server.clients()].find((c) => binding.sessionOf(c) !== undefined)!.id;
    assert.equal(log, [`in ${annId} Login`, `out ${annId} Welcome`, `in ${annId} Chat`, `out ${annId} Chat`], 'the log saw only what passed the gate');
  } finally {
    await destroyAll(ann, eve);
    await binding.close();
    await loop.close({ flushTimeoutMs: 100 });
    await sessions.close();
  }
});

test.run();
