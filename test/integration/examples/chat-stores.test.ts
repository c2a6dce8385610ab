/**
 * The chat example (examples/chat), its session stores and restarts: a
 * file store keeps a session across a SIGTERM and a restart (the terminal
 * client resumes it); a dead Redis is said on start-up and met with a coded
 * notice, then a close; the start-up probe is bounded by its own timeout.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createChatProtocol } from '../../../examples/chat/protocol.js';
import type { ErrorNotice } from '../../../examples/chat/protocol.js';
import { probeChatStore } from '../../../examples/chat/stores.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import { RedisStore } from '../../../lib/store/redis/redis-store.js';
import { ChatRig } from '../../helpers/chat.js';
import { waitForLog } from '../../helpers/log-lines.js';
import { refusedPort, until } from '../../helpers/net.js';

const rig = new ChatRig();
test.after.each(() => rig.cleanup());

test('SIGTERM stops cleanly; the client reconnects and resumes its session after a restart (file store)', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  try {
    const file = path.join(dir, 'sessions.json');
    const first = await rig.serverWithStoreLine(['--store', `file:${file}`]);
    assert.match(first.storeLine, /^store file: answered in \d+ ms$/);
    const c = rig.client(first.port, 'r');
    const w1 = await c.waitForLine(/^\* session \S+ new as sid\d+/, 15_000, 'a welcome');
    const session = /session (\S+)/.exec(w1)![1]!;
    c.send('before');
    await c.waitForLine(/^sid\d+ say: r: before$/, 5_000, 'its own message');
    first.handle.child.kill('SIGTERM');
    await first.handle.waitForLine(/^stopped$/, 10_000, "'stopped'");
    const exit = await first.handle.exited;
    assert.is(exit.code, 0);
    await c.waitForLine(/^\* disconnected/, 5_000, 'the disconnect');
    await rig.server(['--store', `file:${file}`, '--port', String(first.port)]);
    const w2 = await c.waitForLine(/^\* session \S+ (new|resumed)/, 15_000, 'a welcome after the restart');
    assert.is(w2.split(' ')[2], session, w2);
    assert.match(w2, / resumed as sid/);
    c.send('after');
    await c.waitForLine(/^sid\d+ say: r: after$/, 5_000, 'a message after the resume');
  } finally {
    await rig.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a dead Redis: the server says so on start-up; a netloop client gets netloop.Error NETLOOP_STORE_UNAVAILABLE, then the close', async () => {
  // Dead Redis: a loopback port that was bound, then closed, so every connection is refused.
  const dead = await refusedPort();
  const { port, handle: srv, storeLine } = await rig.serverWithStoreLine(['--store', `redis://127.0.0.1:${dead}`]);
  assert.match(storeLine, /^store redis: no answer \(NETLOOP_STORE_UNAVAILABLE\)/);

  // Both at once (each waits for the store's command timeout): a raw netloop peer, and the terminal client.
  const p = createChatProtocol();
  const a = await rig.peer(port);
  a.socket.write(p.frame(p.Hello, { name: 'a', token: '' }));
  const c = rig.client(port, 'cli');

  // The raw peer: the coded notice (and no Welcome), then the server's FIN and the close.
  await until(() => a.frames.length >= 1, 'a first frame', 15_000);
  assert.is(a.frames[0]!.type, p.Error.id, 'the first frame is netloop.Error');
  const notice = p.registry.decode(p.Error.id, a.frames[0]!.value).payload as ErrorNotice;
  assert.is(notice.code, ErrorCode.STORE_UNAVAILABLE);
  await until(() => a.ended && a.closed, 'the close after the notice', 10_000);
  assert.is(a.frames.length, 1, 'nothing but the notice');
  await waitForLog(srv, { event: 'refused', clientId: /^\d+$/, code: ErrorCode.STORE_UNAVAILABLE }, 5_000, 'the refusal logged');

  // The terminal client prints the code, does not mistake the close for a cellnet server, and retries.
  await c.waitForLine(/^\* server error NETLOOP_STORE_UNAVAILABLE: /, 15_000, 'the coded notice');
  const after: string[] = [];
  await c.waitForLine((line) => after.push(line) > 0 && /^\* disconnected/.test(line), 10_000, 'the close');
  assert.match(after.at(-1)!, /^\* disconnected \(peer-closed\); reconnecting$/);
  await c.waitForLine((line) => after.push(line) > 0 && /^\* connected to /.test(line), 10_000, 'a reconnection');
  assert.not.ok(after.some((line) => /cellnet/.test(line)), `no fallback to cellnet's messages: ${after.join(' | ')}`);
});

test("the start-up store probe: an answering store, a refusing Redis, and a silent one bounded by the probe's own timeout", async () => {
  assert.is(await probeChatStore(new MemoryStore()), null);
  const refused = new RedisStore({ url: `redis://127.0.0.1:${await refusedPort()}`, commandTimeoutMs: 500, connectTimeoutMs: 500 });
  // A server that accepts and never answers: only the probe's deadline ends the wait.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  // Its own timeouts are ten times the probe's. (Not longer: closing a store whose connection never
  // came up waits out its command timeout.)
  const hung = new RedisStore({ url: `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, commandTimeoutMs: 3_000, connectTimeoutMs: 3_000 });
  try {
    const r = await probeChatStore(refused, 5_000);
    assert.ok(isNetloopError(r, ErrorCode.STORE_UNAVAILABLE), String(r));
    const started = Date.now();
    const h = await probeChatStore(hung, 300);
    assert.ok(isNetloopError(h, ErrorCode.STORE_UNAVAILABLE), String(h));
    assert.is(h.details['timeoutMs'], 300);
    assert.ok(Date.now() - started < 2_500, `bounded by the probe's timeout, not the store's (${Date.now() - started} ms)`);
  } finally {
    await Promise.allSettled([refused.close(), hung.close()]);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test.run();
