/**
 * End-to-end tests of the chat example (examples/chat): the compiled server
 * and client run as child processes; raw sockets speak cellnet's bytes.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnChild } from '../../../bench/processes.js';
import type { ChildHandle } from '../../../bench/processes.js';
import { createChatProtocol, NETLOOP_CHAT_NAMES } from '../../../examples/chat/protocol.js';
import type { ErrorNotice, Welcome } from '../../../examples/chat/protocol.js';
import { parseChatServerArgs, probeChatStore } from '../../../examples/chat/server.js';
import { parseChatClientArgs } from '../../../examples/chat/client.js';
import { cellnetStringHash } from '../../../lib/codec/cellnet/hash.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import { RedisStore } from '../../../lib/store/redis/redis-store.js';
import { RawChatPeer, exampleScript, startChatChild } from '../../helpers/chat.js';
import type { ChatChild } from '../../helpers/chat.js';
import { refusedPort, until } from '../../helpers/net.js';

const SERVER = exampleScript('chat', 'server.js');
const CLIENT = exampleScript('chat', 'client.js');

/** Golden bytes captured from cellnet's own chat programs. */
const GOLDEN_REQ_HELLO = '09006a3f050068656c6c6f';
const GOLDEN_ACK_HELLO_ID1 = '110051aa050068656c6c6f0100000000000000';

const children: ChildHandle[] = [];
const peers: RawChatPeer[] = [];

async function server(args: string[] = []): Promise<ChatChild> {
  const child = await startChatChild(SERVER, ['--port', '0', ...args]);
  children.push(child.handle);
  return child;
}

async function peer(port: number, keepBytes = false): Promise<RawChatPeer> {
  const p = await RawChatPeer.connect(port, keepBytes);
  peers.push(p);
  return p;
}

/** A server child, with the start-up line that says whether its store answered (printed before it listens). */
async function serverWithStoreLine(args: string[]): Promise<ChatChild & { storeLine: string }> {
  const handle = spawnChild({ script: SERVER, args: ['--port', '0', ...args], timeoutMs: 60_000, name: 'chat' });
  children.push(handle);
  const storeLine = await handle.waitForLine(/^store /, 15_000, 'the store line');
  const listening = await handle.waitForLine(/listening on \S+:\d+/, 15_000, 'the listening line');
  return { handle, port: Number(/listening on \S+:(\d+)/.exec(listening)![1]), storeLine };
}

function chatClient(port: number, name: string): ChildHandle {
  const handle = spawnChild({ script: CLIENT, args: ['--port', String(port), '--name', name], timeoutMs: 60_000, name: `client:${name}` });
  children.push(handle);
  return handle;
}

test.after.each(async () => {
  for (const p of peers.splice(0)) p.destroy();
  await Promise.all(children.splice(0).map((c) => c.kill()));
});

test('the message set: cellnet ids, netloop ids from the same hash, no collision', () => {
  const p = createChatProtocol();
  assert.is(p.ChatREQ.id, 16234);
  assert.is(p.ChatACK.id, 43601);
  for (const name of Object.values(NETLOOP_CHAT_NAMES)) assert.is(p.registry.get(name)?.id, cellnetStringHash(name));
  assert.is(p.registry.size, 8);
  assert.is(p.frame(p.ChatREQ, { content: 'hello' }).toString('hex'), GOLDEN_REQ_HELLO);
  assert.is(p.frame(p.ChatACK, { content: 'hello', id: 1n }).toString('hex'), GOLDEN_ACK_HELLO_ID1);
  const w: Welcome = { session: 's', token: 't', id: 7n, resumed: true, heartbeatMs: 10, ttlMs: 30, pid: 42 };
  const f = p.frame(p.Welcome, w);
  assert.equal(p.registry.decode(p.Welcome.id, f.subarray(4)).payload, w);
  // A colliding name is refused by the one registry.
  try {
    p.registry.register(p.ChatACK.id, 'netloop.Other');
    assert.unreachable('a duplicate id must be refused');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.DUPLICATE_TYPE));
  }
});

test('command lines: defaults are cellnet\'s, bad values are coded errors', () => {
  const s = parseChatServerArgs([]);
  assert.is(s.host, '127.0.0.1');
  assert.is(s.port, 18801);
  assert.is(s.store, 'memory');
  assert.is(parseChatServerArgs(['--store', 'file:x.json', '--port', '0']).store, 'file:x.json');
  for (const bad of [['--port', '70000'], ['--store', 'mysql://x'], ['--bogus', '1'], ['--port']]) {
    try {
      parseChatServerArgs(bad);
      assert.unreachable(bad.join(' '));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
    }
  }
  assert.equal(parseChatClientArgs(['--name', 'ann', '--port', '9']), { host: '127.0.0.1', port: 9, name: 'ann', plain: false });
  try {
    parseChatClientArgs(['--port', '0']);
    assert.unreachable('port 0');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
  }
});

test('wire compatibility: cellnet\'s ChatREQ bytes in, cellnet\'s ChatACK bytes out', async () => {
  const { port } = await server();
  const a = await peer(port, true);
  a.socket.write(Buffer.from(GOLDEN_REQ_HELLO, 'hex'));
  await a.waitAcks(1);
  // The first connection of a fresh server has id 1, as cellnet's first session does.
  assert.is(Buffer.concat(a.bytes).toString('hex'), GOLDEN_ACK_HELLO_ID1);
});

test('every client receives every message, in one order; the netloop client chats too', async () => {
  const { port, handle: srv } = await server();
  const a = await peer(port);
  const b = await peer(port);
  const c = chatClient(port, 'cli');
  const welcome = await c.waitForLine(/^\* session \S+ new as sid\d+/, 15_000, 'a welcome');
  const cid = /as sid(\d+)/.exec(welcome)![1]!;
  const N = 30;
  for (let i = 0; i < N; i++) {
    a.say(`a${i}`);
    b.say(`b${i}`);
    c.send(`c${i}`);
  }
  const total = 3 * N;
  const fromA = await a.waitAcks(total);
  const fromB = await b.waitAcks(total);
  const lines: string[] = [];
  while (lines.length < total) lines.push(await c.waitForLine(/^sid\d+ say: /, 15_000, `ack ${lines.length + 1} of ${total}`));
  // Everyone saw the same sequence, and each sender's messages in the order sent.
  const seq = fromA.map((m) => `sid${m.id} say: ${m.content}`);
  assert.equal(fromB.map((m) => `sid${m.id} say: ${m.content}`), seq);
  assert.equal(lines, seq);
  for (const [who, prefix] of [['a', 'a'], ['b', 'b'], ['c', 'cli: c']] as const) {
    const mine = seq.filter((l) => l.includes(`say: ${prefix}`)).map((l) => l.slice(l.indexOf('say: ') + 5));
    assert.equal(mine, Array.from({ length: N }, (_, i) => `${prefix}${i}`), `order of ${who}`);
  }
  assert.ok(seq.filter((l) => l.startsWith(`sid${cid} `)).length === N, 'the netloop client\'s messages carry its id');
  // The raw cellnet peers never said hello: not one netloop message reached them.
  const ack = a.protocol.ChatACK.id;
  assert.ok(a.frames.every((f) => f.type === ack) && b.frames.every((f) => f.type === ack));
  await srv.waitForLine(/^hello client=\d+ session=\S+ resumed=false name="cli"/, 5_000, 'the hello log line');
});

test('a client that never reads: the others get everything; it is closed at the hard limit with a coded reason', async () => {
  const { port, handle: srv } = await server(['--max-output-bytes', String(4 * 1024 * 1024), '--soft-output-bytes', '0']);
  const slow = await peer(port);
  slow.socket.pause();
  const slowPort = slow.socket.localPort!;
  const openLine = await srv.waitForLine(new RegExp(`^open client=\\d+ from=127\\.0\\.0\\.1:${slowPort}$`), 5_000, 'the slow client\'s open line');
  const slowId = /client=(\d+)/.exec(openLine)![1]!;
  const sender = await peer(port);
  const other = await peer(port);
  // Enough to fill the kernel's buffers on both sides of the slow socket and then 4 MiB more.
  const M = 400;
  const body = 'x'.repeat(60_000);
  // The sender keeps at most 8 messages in flight, so the readers are never far behind.
  for (let i = 0; i < M; i++) {
    if (i >= 8) await until(() => sender.frames.length >= i - 8, `echo ${i - 8}`, 15_000);
    sender.say(`${i}:${body}`);
  }
  const got = await other.waitAcks(M, 30_000);
  const mine = await sender.waitAcks(M, 30_000);
  assert.equal(got.map((m) => m.content.slice(0, m.content.indexOf(':'))), Array.from({ length: M }, (_, i) => String(i)));
  assert.is(mine.length, M);
  await srv.waitForLine(new RegExp(`^close client=${slowId} reason=output-limit code=NETLOOP_OUTPUT_LIMIT$`), 10_000, 'the output-limit close');
  assert.not.ok(other.closed || sender.closed, 'the readers were not dropped');
});

test('session expiry: a netloop client gets its notice in full, then the close; a cellnet client gets no netloop bytes', async () => {
  const { port, handle: srv } = await server(['--ttl-ms', '400']);
  const p = createChatProtocol();
  const netloop = await peer(port);
  const cellnet = await peer(port);
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
  await srv.waitForLine(/^expired client=\d+ session=\S+ reason=ttl$/, 5_000, 'the expiry log line');
});

test('resume on a live server: messages pipelined behind a Hello wait for its Welcome; the old connection gets its notice, then the close', async () => {
  const { port, handle: srv } = await server();
  const p = createChatProtocol();
  const first = await peer(port);
  first.socket.write(p.frame(p.Hello, { name: '', token: '' }));
  await until(() => first.frames.length >= 1, 'the first welcome');
  const w1 = p.registry.decode(first.frames[0]!.type, first.frames[0]!.value).payload as Welcome;
  // One write: the resume, a chat message and a heartbeat; the session work
  // (log out the anonymous session, resume) runs before the two others.
  const second = await peer(port);
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
  await srv.waitForLine(new RegExp(`^hello client=${w2.id} session=${w1.session} resumed=true name="again"$`), 5_000, 'the resume line');
});

test('a message id the chat does not know closes the connection with a coded reason', async () => {
  const { port, handle: srv } = await server();
  const a = await peer(port);
  const openLine = await srv.waitForLine(new RegExp(`^open client=\\d+ from=127\\.0\\.0\\.1:${a.socket.localPort!}$`), 5_000, 'the open line');
  const id = /client=(\d+)/.exec(openLine)![1]!;
  // type 0x0102 is no message of the chat: the strict registry refuses it from the header.
  a.socket.write(Buffer.from('02000201', 'hex'));
  await until(() => a.closed, 'the close', 10_000);
  await srv.waitForLine(new RegExp(`^close client=${id} reason=protocol-error code=NETLOOP_UNKNOWN_TYPE$`), 5_000, 'the protocol-error close');
});

test('heartbeats keep a netloop client\'s session past its TTL', async () => {
  const { port, handle: srv } = await server(['--ttl-ms', '400']);
  const c = chatClient(port, 'hb');
  await c.waitForLine(/^\* session \S+ new as sid\d+/, 15_000, 'a welcome');
  const t0 = Date.now();
  await until(() => Date.now() - t0 > 1_200, 'three TTLs of heartbeats', 3_000);
  c.send('still here');
  await c.waitForLine(/^sid\d+ say: hb: still here$/, 5_000, 'its own message');
  await srv.waitForLine(/^hello client=/, 1_000, 'the hello line');
  const after = await Promise.race([
    srv.waitForLine(/^expired /, 200, 'an expiry').then(() => 'expired', () => 'none'),
  ]);
  assert.is(after, 'none', 'the session did not expire');
});

test('SIGTERM stops cleanly; the client reconnects and resumes its session after a restart (file store)', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  try {
    const file = path.join(dir, 'sessions.json');
    const first = await serverWithStoreLine(['--store', `file:${file}`]);
    assert.match(first.storeLine, /^store file: answered in \d+ ms$/);
    const c = chatClient(first.port, 'r');
    const w1 = await c.waitForLine(/^\* session \S+ new as sid\d+/, 15_000, 'a welcome');
    const session = /session (\S+)/.exec(w1)![1]!;
    c.send('before');
    await c.waitForLine(/^sid\d+ say: r: before$/, 5_000, 'its own message');
    first.handle.child.kill('SIGTERM');
    await first.handle.waitForLine(/^stopped$/, 10_000, "'stopped'");
    const exit = await first.handle.exited;
    assert.is(exit.code, 0);
    await c.waitForLine(/^\* disconnected/, 5_000, 'the disconnect');
    await server(['--store', `file:${file}`, '--port', String(first.port)]);
    const w2 = await c.waitForLine(/^\* session \S+ (new|resumed)/, 15_000, 'a welcome after the restart');
    assert.is(w2.split(' ')[2], session, w2);
    assert.match(w2, / resumed as sid/);
    c.send('after');
    await c.waitForLine(/^sid\d+ say: r: after$/, 5_000, 'a message after the resume');
  } finally {
    await Promise.all(children.splice(0).map((h) => h.kill()));
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a dead Redis: the server says so on start-up; a netloop client gets netloop.Error NETLOOP_STORE_UNAVAILABLE, then the close', async () => {
  // Dead Redis: a loopback port that was bound, then closed, so every connection is refused.
  const dead = await refusedPort();
  const { port, handle: srv, storeLine } = await serverWithStoreLine(['--store', `redis://127.0.0.1:${dead}`]);
  assert.match(storeLine, /^store redis: no answer \(NETLOOP_STORE_UNAVAILABLE\)/);

  // A raw netloop peer: the coded notice (and no Welcome), then the server's FIN and the close.
  const p = createChatProtocol();
  const a = await peer(port);
  a.socket.write(p.frame(p.Hello, { name: 'a', token: '' }));
  await until(() => a.frames.length >= 1, 'a first frame', 15_000);
  assert.is(a.frames[0]!.type, p.Error.id, 'the first frame is netloop.Error');
  const notice = p.registry.decode(p.Error.id, a.frames[0]!.value).payload as ErrorNotice;
  assert.is(notice.code, ErrorCode.STORE_UNAVAILABLE);
  await until(() => a.ended && a.closed, 'the close after the notice', 10_000);
  assert.is(a.frames.length, 1, 'nothing but the notice');
  await srv.waitForLine(/^refused client=\d+ code=NETLOOP_STORE_UNAVAILABLE$/, 5_000, 'the refusal logged');

  // The terminal client prints the code, does not mistake the close for a cellnet server, and retries.
  const c = chatClient(port, 'cli');
  await c.waitForLine(/^\* server error NETLOOP_STORE_UNAVAILABLE: /, 15_000, 'the coded notice');
  const after: string[] = [];
  await c.waitForLine((line) => after.push(line) > 0 && /^\* disconnected/.test(line), 10_000, 'the close');
  assert.match(after.at(-1)!, /^\* disconnected \(peer-closed\); reconnecting$/);
  await c.waitForLine((line) => after.push(line) > 0 && /^\* connected to /.test(line), 10_000, 'a reconnection');
  assert.not.ok(after.some((line) => /cellnet/.test(line)), `no fallback to cellnet's messages: ${after.join(' | ')}`);
});

test('the start-up store probe: an answering store, a refusing Redis, and a silent one bounded by the probe\'s own timeout', async () => {
  assert.is(await probeChatStore(new MemoryStore()), null);
  const refused = new RedisStore({ url: `redis://127.0.0.1:${await refusedPort()}`, commandTimeoutMs: 500, connectTimeoutMs: 500 });
  // A server that accepts and never answers: only the probe's deadline ends the wait.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const hung = new RedisStore({ url: `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, commandTimeoutMs: 20_000, connectTimeoutMs: 20_000 });
  try {
    const r = await probeChatStore(refused, 5_000);
    assert.ok(isNetloopError(r, ErrorCode.STORE_UNAVAILABLE), String(r));
    const started = Date.now();
    const h = await probeChatStore(hung, 300);
    assert.ok(isNetloopError(h, ErrorCode.STORE_UNAVAILABLE), String(h));
    assert.is(h.details['timeoutMs'], 300);
    assert.ok(Date.now() - started < 5_000, `bounded by the probe's timeout (${Date.now() - started} ms)`);
  } finally {
    await Promise.allSettled([refused.close(), hung.close()]);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test.run();
