/**
 * The chat example (examples/chat), its sessions and their expiry: the
 * expiry notice in full then the close (and nothing netloop's for a cellnet
 * client), a resume on a live server with messages pipelined behind the
 * Hello, and heartbeats that keep a session past its TTL.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { setTimeout as delay } from 'node:timers/promises';
import { createChatProtocol } from '../../../examples/chat/protocol.js';
import type { Welcome } from '../../../examples/chat/protocol.js';
import { ChatRig } from '../../helpers/chat.js';
import { logMatches, parseLogLine, waitForLog } from '../../helpers/log-lines.js';
import { until } from '../../helpers/net.js';

const rig = new ChatRig();
test.after.each(() => rig.cleanup());

test('session expiry: a netloop client gets its notice in full, then the close; a cellnet client gets no netloop bytes', async () => {
  const { port, handle: srv } = await rig.server(['--ttl-ms', '400']);
  const p = createChatProtocol();
  const netloop = await rig.peer(port);
  const cellnet = await rig.peer(port);
  netloop.socket.write(p.frame(p.Hello, { name: '', token: '' }));
  await until(() => netloop.frames.length >= 1, 'the welcome');
  const welcome = p.registry.decode(netloop.frames[0]!.type, netloop.frames[0]!.value);
  assert.is(welcome.type, p.Welcome);
  assert.is((welcome.payload as Welcome).ttlMs, 400);
  // No heartbeat: the session expires; the notice arrives, then the FIN.
  await until(() => netloop.ended && cellnet.ended, 'both connections ended by the server', 10_000);
  const last = netloop.frames[netloop.frames.length - 1]!;
  assert.is(last.type, p.Expired.id);
  assert.equal(p.registry.decode(last.type, last.value).payload, { reason: 'ttl' });
  assert.is(cellnet.frames.length, 0);
  await waitForLog(srv, { event: 'expired', clientId: /^\d+$/, sessionId: /^\S+$/, reason: 'ttl' }, 5_000, 'the expiry log line');
});

test('resume on a live server: messages pipelined behind a Hello wait for its Welcome; the old connection gets its notice, then the close', async () => {
  const { port, handle: srv } = await rig.server();
  const p = createChatProtocol();
  const first = await rig.peer(port);
  first.socket.write(p.frame(p.Hello, { name: '', token: '' }));
  await until(() => first.frames.length >= 1, 'the first welcome');
  const w1 = p.registry.decode(first.frames[0]!.type, first.frames[0]!.value).payload as Welcome;
  // One write: the resume, a chat message and a heartbeat; the session work
  // (log out the anonymous session, resume) runs before the two others.
  const second = await rig.peer(port);
  second.socket.write(
    Buffer.concat([p.frame(p.Hello, { name: 'again', token: w1.token }), p.frame(p.ChatREQ, { content: 'x' }), p.frame(p.Heartbeat, {})]),
  );
  await until(() => second.frames.length >= 3, 'welcome, ack and heartbeat ack', 10_000);
  const got = second.frames.map((f) => p.registry.decode(f.type, f.value));
  assert.is(got.length, 3);
  // The Welcome first; the ACK leaves with the turn's broadcast, so the heartbeat's answer may precede it.
  const welcome = got[0]!;
  const ack = got.find((m) => m.type === p.ChatACK)!;
  assert.ok(got.some((m) => m.type === p.HeartbeatACK), 'a heartbeat ack');
  assert.is(welcome.type, p.Welcome);
  const w2 = welcome.payload as Welcome;
  assert.is(w2.session, w1.session);
  assert.ok(w2.resumed);
  assert.is.not(w2.id, w1.id);
  assert.equal(ack.payload, { content: 'x', id: w2.id });
  // The connection the session was resumed from: its notice in full, then FIN, and no ACK after it.
  await until(() => first.ended, 'the old connection ended by the server', 10_000);
  assert.equal(first.frames.map((f) => f.type), [p.Welcome.id, p.Expired.id]);
  assert.equal(p.registry.decode(first.frames[1]!.type, first.frames[1]!.value).payload, { reason: 'resumed-elsewhere' });
  await waitForLog(srv, { event: 'hello', clientId: String(w2.id), sessionId: w1.session, resumed: true, userName: 'again' }, 5_000, 'the resume line');
});

test("heartbeats keep a netloop client's session past its TTL", async () => {
  const { port, handle: srv } = await rig.server(['--ttl-ms', '400']);
  const c = rig.client(port, 'hb');
  await c.waitForLine(/^\* session \S+ new as sid\d+/, 15_000, 'a welcome');
  // Three TTLs of heartbeats (every TTL / 3): a wait of time itself, nothing else to await.
  await delay(1_200);
  c.send('still here');
  await c.waitForLine(/^sid\d+ say: hb: still here$/, 5_000, 'its own message');
  // Everything the server printed up to a later event (a new connection's accept): no expiry among it.
  const printed: string[] = [];
  const probe = await rig.peer(port);
  await srv.waitForLine(
    (line) => {
      printed.push(line);
      const r = parseLogLine(line);
      return r !== null && logMatches(r, { event: 'accept', remotePort: probe.socket.localPort! });
    },
    5_000,
    "the probe's accept line",
  );
  const records = printed.map(parseLogLine).filter((r) => r !== null);
  assert.ok(records.some((r) => logMatches(r, { event: 'hello', userName: 'hb' })), 'the hello line');
  assert.not.ok(
    records.some((r) => logMatches(r, { event: 'expired' })),
    `the session did not expire: ${printed.join('\n')}`,
  );
});

test.run();
