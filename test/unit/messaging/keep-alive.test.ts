/**
 * The application keep-alive over real sockets on 127.0.0.1: the timing of
 * pings and timeouts in virtual time (a ManualClock drives the loop), any
 * byte as liveness, the excuse of a peer we do not read, pongs answered by a
 * connector without application code, a connector's heartbeat, peers whose
 * process is stopped with SIGSTOP (a child process: its kernel keeps the
 * connection open), the session of a client closed by ping-timeout, one
 * sweep entry for many clients, layouts and option errors.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { CLOSE_REASONS } from '../../../lib/reactor/close-reason.js';
import { Server } from '../../../lib/reactor/server.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { AnyFramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import type { AnyFramedConnector } from '../../../lib/framing/framed-connector.js';
import type { FramedClient, FramedMessage } from '../../../lib/framing/framed-client.js';
import { KEEP_ALIVE_DEFAULTS, KeepAlive, keepAlive } from '../../../lib/messaging/keep-alive.js';
import type { KeepAliveOptions } from '../../../lib/messaging/keep-alive.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import { bindSessions } from '../../../lib/binding/session-binding.js';
import { connectionProbe } from '../../../lib/binding/connection-probe.js';
import { connectRaw, destroyAll, readBytes, until, waitFor, withTimeout, WAIT_MS } from '../../helpers/net.js';
import { freezeProcess } from '../../helpers/server-process.js';
import { throwsCode } from '../../helpers/ltv.js';

const PING_TYPE = KEEP_ALIVE_DEFAULTS.pingType;
const encoder = new LtvEncoder({ layout: 'netloop' });
const PING_FRAME = encoder.encode(PING_TYPE, Buffer.from([0x01]));
const PONG_FRAME = encoder.encode(PING_TYPE, Buffer.from([0x02]));

function registry(): MessageRegistry {
  const r = new MessageRegistry();
  r.register(1, 'Login', 'json');
  r.register(2, 'Chat', 'json');
  r.register(3, 'Heartbeat', 'json');
  return r;
}

type Close = [FramedClient, CloseReason, NetloopError | undefined];

/** Resolves with the close of `client` on `owner`. */
function closeOf(owner: AnyFramedServer | AnyFramedConnector, client?: FramedClient, ms = WAIT_MS): Promise<Close> {
  return waitFor<Close>(owner, 'close', { ms, filter: (c) => client === undefined || c === client });
}

/** One turn of Node's event loop: queued output is flushed, arrived bytes are read. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ── virtual time ────────────────────────────────────────────────────────────

/** A framed server on a loop driven by a ManualClock, with a keep-alive, and one raw peer. */
async function virtualRig(options: KeepAliveOptions) {
  const clock = new ManualClock(1_000);
  const loop = new EventLoop({ clock });
  const messages: FramedMessage[] = [];
  const server = await new FramedServer(loop, { port: 0, idleTimeoutMs: 0 }).listen();
  server.on('message', (_c, m) => messages.push(m));
  const alive = keepAlive(server, options);
  const accepted = waitFor<[FramedClient]>(server, 'connection');
  const peer = await connectRaw(server.port);
  peer.on('error', () => undefined);
  const [client] = await accepted;
  const start = clock.now();
  return {
    clock,
    loop,
    server,
    alive,
    peer,
    client,
    messages,
    /** Virtual ms since the connection. */
    elapsed: () => clock.now() - start,
    /** Moves virtual time by `ms` in 10 ms steps, running the due timers at each (a loop on time). */
    async advance(ms: number) {
      for (let done = 0; done < ms; done += 10) {
        clock.advance(10);
        loop.runDueTimers();
      }
      await turn();
    },
    async dispose() {
      await destroyAll(peer);
      await loop.close();
    },
  };
}

test('a silent peer is pinged after pingIntervalMs and closed with ping-timeout no sooner than pingTimeoutMs after the ping, within I + T + 3 sweeps (virtual time)', async () => {
  const r = await virtualRig({ pingIntervalMs: 1_000, pingTimeoutMs: 1_000 });
  try {
    assert.is(r.alive.sweepMs, 100);
    await r.advance(990);
    assert.is(r.alive.stats().pingsSent, 0, 'no ping before pingIntervalMs of silence');
    await r.advance(10);
    assert.is(r.alive.stats().pingsSent, 1, 'a ping at pingIntervalMs');
    assert.equal(await readBytes(r.peer, PING_FRAME.length), PING_FRAME, 'the ping frame: type 0xfff1, value [0x01]');
    const closed = closeOf(r.server, r.client);
    await r.advance(1_000);
    assert.ok(r.client.writable, 'still open pingTimeoutMs after the ping');
    assert.is(r.alive.stats().timeouts, 0);
    let at = -1;
    while (r.client.writable && r.elapsed() < 3_000) {
      await r.advance(10);
      at = r.elapsed();
    }
    const [, reason, error] = await closed;
    assert.is(reason, 'ping-timeout');
    assert.is(error?.code, ErrorCode.PING_TIMEOUT);
    assert.equal({ ...error!.details }, { clientId: r.client.id, pingIntervalMs: 1_000, pingTimeoutMs: 1_000 });
    assert.ok(at > 2_000 && at <= 2_000 + 3 * r.alive.sweepMs, `closed at ${at} ms: after I + T, within I + T + 3 sweeps`);
    assert.equal(r.alive.stats(), { peers: 0, pingsSent: 1, pongsReceived: 0, pingsAnswered: 0, timeouts: 1, heartbeatsSent: 0 });
    assert.is(r.loop.stats().timers, 0, 'the sweep stopped with the last peer');
  } finally {
    await r.dispose();
  }
});

test('any byte from the peer is liveness: a peer that talks is never pinged; after a ping, a pong or any frame keeps it open (virtual time)', async () => {
  const r = await virtualRig({ pingIntervalMs: 1_000, pingTimeoutMs: 1_000 });
  try {
    // An application frame every 500 ms for 3 s: never silent long enough to be pinged.
    for (let i = 0; i < 6; i++) {
      r.peer.write(encoder.encode(7, Buffer.from(`m${i}`)));
      await until(() => r.messages.length === i + 1, `message ${i}`);
      await r.advance(500);
    }
    assert.is(r.alive.stats().pingsSent, 0, 'a talking peer is not pinged');
    // Silent now: pinged; it answers with a pong and stays open past the timeout.
    while (r.alive.stats().pingsSent === 0) await r.advance(10);
    await readBytes(r.peer, PING_FRAME.length);
    r.peer.write(PONG_FRAME);
    await until(() => r.alive.stats().pongsReceived === 1, 'the pong');
    await r.advance(1_300);
    assert.ok(r.client.writable, 'a pong answers the ping');
    // Pinged again; this time an application frame instead of a pong keeps it too.
    while (r.alive.stats().pingsSent === 1) await r.advance(10);
    await readBytes(r.peer, PING_FRAME.length);
    r.peer.write(encoder.encode(7, Buffer.from('busy')));
    await until(() => r.messages.length === 7, 'the frame after the ping');
    await r.advance(1_300);
    assert.ok(r.client.writable, 'any frame answers the ping');
    assert.is(r.alive.stats().timeouts, 0);
    assert.equal(r.messages.map((m) => m.type), [7, 7, 7, 7, 7, 7, 7], 'pongs never reach the message path');
    // Silent for good: closed.
    const closed = closeOf(r.server, r.client);
    while (r.client.writable && r.elapsed() < 20_000) await r.advance(10);
    assert.is((await closed)[1], 'ping-timeout');
  } finally {
    await r.dispose();
  }
});

test('a peer whose reading we paused cannot answer: its timeout restarts instead of closing it, and counts again once reading resumes (virtual time)', async () => {
  const r = await virtualRig({ pingIntervalMs: 1_000, pingTimeoutMs: 1_000 });
  try {
    r.client.pause();
    await r.advance(5_000);
    assert.ok(r.client.writable, 'not closed while we do not read it');
    assert.is(r.alive.stats().timeouts, 0);
    assert.ok(r.alive.stats().pingsSent >= 2, 'still pinged');
    r.client.resume();
    const resumedAt = r.elapsed();
    const closed = closeOf(r.server, r.client);
    while (r.client.writable && r.elapsed() < resumedAt + 10_000) await r.advance(10);
    assert.is((await closed)[1], 'ping-timeout');
    assert.ok(r.elapsed() - resumedAt <= 2_000 + 3 * r.alive.sweepMs + 1_000, `closed ${r.elapsed() - resumedAt} ms after reading resumed`);
  } finally {
    await r.dispose();
  }
});

// ── real time, two netloop ends ─────────────────────────────────────────────

test('a peer that answers pings stays up for several intervals: the connector answers without application code, through strict registries', async () => {
  const loop = new EventLoop();
  try {
    const server = await new FramedServer(loop, { port: 0, registry: registry() }).listen();
    const serverSide = keepAlive(server, { pingIntervalMs: 100, pingTimeoutMs: 100 });
    const closes: Close[] = [];
    server.on('close', (c, reason, error) => closes.push([c, reason, error]));
    const connector = new FramedConnector(loop, { port: server.port, registry: registry(), reconnect: false });
    const clientSide = keepAlive(connector);
    assert.is(clientSide.pingIntervalMs, KEEP_ALIVE_DEFAULTS.pingIntervalMs, 'a connector pings at the defaults');
    const messages: FramedMessage[] = [];
    connector.on('message', (_c, m) => messages.push(m));
    connector.connect();
    await waitFor(connector, 'connected');
    await until(() => serverSide.stats().pongsReceived >= 6, 'six pongs', 10_000);
    assert.equal(closes, [], 'nobody was closed');
    assert.is(connector.client?.writable, true);
    assert.ok(clientSide.stats().pingsAnswered >= 6, 'the connector answered every ping');
    assert.equal(messages, [], 'pings never reach the application');
    assert.is(serverSide.stats().timeouts, 0);
  } finally {
    await loop.close();
  }
});

test('the connector answers a ping frame with a pong frame, counts pongs, and ignores other values of the ping type (a plain node:net server as the peer); close() gives the type back', async () => {
  const loop = new EventLoop();
  const sockets: net.Socket[] = [];
  const raw = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  try {
    const connector = new FramedConnector(loop, { port: (raw.address() as net.AddressInfo).port, reconnect: false });
    const alive = keepAlive(connector, { pingIntervalMs: 0 });
    const messages: FramedMessage[] = [];
    connector.on('message', (_c, m) => messages.push(m));
    connector.connect();
    await until(() => sockets.length === 1, 'the connection');
    const s = sockets[0]!;
    s.write(PING_FRAME);
    assert.equal(await readBytes(s, PONG_FRAME.length), PONG_FRAME, 'a pong: type 0xfff1, value [0x02]');
    // An empty value and an unknown kind are ignored; the ping after them is the one answered.
    s.write(Buffer.concat([encoder.encode(PING_TYPE, Buffer.alloc(0)), encoder.encode(PING_TYPE, Buffer.from([7, 1])), PONG_FRAME, PING_FRAME]));
    assert.equal(await readBytes(s, PONG_FRAME.length), PONG_FRAME);
    await until(() => alive.stats().pongsReceived === 1, 'the pong counted');
    assert.equal(alive.stats(), { peers: 0, pingsSent: 0, pongsReceived: 1, pingsAnswered: 2, timeouts: 0, heartbeatsSent: 0 });
    assert.equal(messages, []);
    // Closed: the ping type is given back, and a ping is a message like any other.
    alive.close();
    s.write(PING_FRAME);
    await until(() => messages.length === 1, 'the ping as a message');
    assert.is(messages[0]!.type, PING_TYPE);
    assert.is(alive.stats().pingsAnswered, 2);
  } finally {
    await loop.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  }
});

test("the connector's heartbeat message goes out on its interval from the loop's timer queue, a payload function called each time, and stops with the connection", async () => {
  const loop = new EventLoop();
  try {
    // No read-idle deadline on the server's side: the loop's timer queue then holds only the heartbeat.
    const server = await new FramedServer(loop, { port: 0, registry: registry(), idleTimeoutMs: 0 }).listen();
    const beats: Array<{ at: number; payload: unknown }> = [];
    server.on('message', (_c, m) => {
      if (m.name === 'Heartbeat') beats.push({ at: performance.now(), payload: m.payload });
    });
    const connector = new FramedConnector(loop, { port: server.port, registry: registry(), reconnect: false });
    let n = 0;
    const alive = keepAlive(connector, { pingIntervalMs: 0, heartbeat: { type: 'Heartbeat', payload: () => ({ n: ++n }), intervalMs: 100 } });
    connector.connect();
    await waitFor(connector, 'connected');
    const connectedAt = performance.now();
    assert.is(loop.stats().timers, 1, 'one timer-queue entry for the heartbeat');
    await until(() => beats.length >= 6, 'six heartbeats', 10_000);
    assert.equal(
      beats.slice(0, 6).map((b) => b.payload),
      [1, 2, 3, 4, 5, 6].map((k) => ({ n: k })),
    );
    // Never early: the k-th heartbeat leaves k intervals after the connection, or later.
    beats.slice(0, 6).forEach((b, k) => assert.ok(b.at - connectedAt >= (k + 1) * 100 - 5, `heartbeat ${k + 1} at ${Math.round(b.at - connectedAt)} ms`));
    const mean = (beats[5]!.at - beats[0]!.at) / 5;
    assert.ok(mean >= 95 && mean < 250, `mean interval ${mean.toFixed(1)} ms`);
    assert.ok(alive.stats().heartbeatsSent >= 6);
    await connector.close();
    const count = beats.length;
    assert.is(loop.stats().timers, 0, 'the heartbeat entry left with the connection');
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.is(beats.length, count, 'no heartbeat after the close');
  } finally {
    await loop.close();
  }
});

test('a fixed heartbeat payload is encoded once at the start; a payload function that throws closes only that connection with handler-error', async () => {
  const loop = new EventLoop();
  try {
    const server = await new FramedServer(loop, { port: 0, registry: registry() }).listen();
    const beats: unknown[] = [];
    server.on('message', (_c, m) => beats.push(m.payload));
    const fixed = new FramedConnector(loop, { port: server.port, registry: registry(), reconnect: false });
    keepAlive(fixed, { heartbeat: { type: 3, payload: { ok: true }, intervalMs: 50 } });
    fixed.connect();
    await until(() => beats.length >= 2, 'two fixed heartbeats');
    assert.equal(beats.slice(0, 2), [{ ok: true }, { ok: true }]);

    const failing = new FramedConnector(loop, { port: server.port, registry: registry(), reconnect: false });
    keepAlive(failing, {
      heartbeat: {
        type: 'Heartbeat',
        payload: () => {
          throw new Error('no payload today');
        },
        intervalMs: 50,
      },
    });
    const closed = closeOf(failing);
    failing.connect();
    const [, reason, error] = await closed;
    assert.is(reason, 'handler-error');
    assert.is(error?.code, ErrorCode.HANDLER_ERROR);
    assert.is((error?.cause as Error).message, 'no payload today');
    assert.is(fixed.client?.writable, true, 'the other connector is untouched');
  } finally {
    await loop.close();
  }
});

// ── stopped processes ───────────────────────────────────────────────────────

const PEER = fileURLToPath(new URL('../../fixtures/keep-alive-peer.js', import.meta.url));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts the keep-alive peer with `args` and resolves once it printed a line starting with `ready`. */
function startPeer(args: string[], ready: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  return withTimeout(
    new Promise((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const line = out.split('\n').find((l) => l.startsWith(ready));
        if (line !== undefined) resolve({ child, line });
      });
      child.once('exit', (code, signal) => reject(new Error(`keep-alive peer exited early (${code ?? signal})`)));
    }),
    WAIT_MS * 2,
    `the keep-alive peer to print ${ready}`,
  );
}

/** The bound of detection in the tests below: what can be late besides I + T + 3 sweeps (timers on a loaded machine, the stop itself). */
const SLACK_MS = 500;

test('a peer whose process is stopped (SIGSTOP, connection open) is closed with ping-timeout within pingIntervalMs + pingTimeoutMs (+ bounded slack), and its session is detached', async () => {
  const loop = new EventLoop();
  const sessions = new SessionRegistry({ ttlMs: 60_000, autoAudit: false, isConnectionAlive: connectionProbe(loop) });
  let child: ChildProcess | undefined;
  try {
    const server = await new FramedServer(loop, { port: 0, registry: registry() }).listen();
    const binding = bindSessions(server, sessions, { handshakeTimeoutMs: 0 });
    server.on('message', (client, m) => {
      if (m.name === 'Login') void binding.login(client, { userId: (m.payload as { userId: string }).userId });
    });
    const I = 300;
    const T = 300;
    const alive = keepAlive(server, { pingIntervalMs: I, pingTimeoutMs: T });
    const created = waitFor<[{ session: { id: string }; client: FramedClient }]>(binding, 'created', { ms: WAIT_MS * 2 });
    ({ child } = await startPeer(['client', String(server.port)], 'connected'));
    const [{ session, client }] = await created;
    assert.is(binding.sessionOf(client)?.id, session.id);
    // It answers while it runs.
    await until(() => alive.stats().pongsReceived >= 2, 'two pongs from the running peer', 10_000);
    const closed = closeOf(server, client, 10_000);
    const detached = waitFor<[{ session: { id: string }; reason: string }]>(binding, 'detached', { ms: 10_000 });
    freezeProcess(child);
    const stoppedAt = performance.now();
    const [, reason, error] = await closed;
    const took = performance.now() - stoppedAt;
    assert.is(reason, 'ping-timeout');
    assert.is(error?.code, ErrorCode.PING_TIMEOUT);
    const bound = I + T + 3 * alive.sweepMs + SLACK_MS;
    assert.ok(took <= bound, `closed ${took.toFixed(0)} ms after the stop (bound ${bound} ms)`);
    const [d] = await detached;
    assert.is(d.session.id, session.id);
    assert.is(d.reason, 'ping-timeout');
    assert.is(sessions.localSizes().connections, 0, 'no connection left bound');
    assert.is(alive.stats().timeouts, 1);
  } finally {
    child?.kill('SIGKILL');
    await loop.close();
    await sessions.close();
  }
});

test('a connector finds a server whose process is stopped (SIGSTOP) and closes with ping-timeout, which its reconnect then follows', async () => {
  const loop = new EventLoop();
  let child: ChildProcess | undefined;
  try {
    let line: string;
    ({ child, line } = await startPeer(['server', '60000', '60000'], 'ready '));
    const port = Number(line.slice('ready '.length));
    const connector = new FramedConnector(loop, { port, registry: registry(), reconnect: { initialDelayMs: 50, maxAttempts: 1 } });
    const I = 300;
    const T = 300;
    const alive = keepAlive(connector, { pingIntervalMs: I, pingTimeoutMs: T });
    connector.connect();
    await waitFor(connector, 'connected');
    await until(() => alive.stats().pongsReceived >= 2, 'two pongs from the running server', 10_000);
    const closed = closeOf(connector, undefined, 10_000);
    freezeProcess(child);
    const stoppedAt = performance.now();
    const [, reason, error] = await closed;
    const took = performance.now() - stoppedAt;
    assert.is(reason, 'ping-timeout');
    assert.is(error?.code, ErrorCode.PING_TIMEOUT);
    // A connector learns of traffic at its sweeps (socket.bytesRead): one sweep more.
    const bound = I + T + 4 * alive.sweepMs + SLACK_MS;
    assert.ok(took <= bound, `closed ${took.toFixed(0)} ms after the stop (bound ${bound} ms)`);
    assert.is(connector.stopped, false, 'a close by ping-timeout is followed by the reconnect policy');
  } finally {
    child?.kill('SIGKILL');
    await loop.close();
  }
});

// ── cost, lifecycle, layouts, options ───────────────────────────────────────

test("many clients share one sweep entry in the loop's timer queue (no Node timer per client); it leaves with the last one; close() gives the ping type back", async () => {
  const loop = new EventLoop();
  const peers: net.Socket[] = [];
  try {
    const server = await new FramedServer(loop, { port: 0, idleTimeoutMs: 0 }).listen();
    const alive = keepAlive(server, { pingIntervalMs: 60_000, pingTimeoutMs: 60_000 });
    assert.is(loop.stats().timers, 0, 'no sweep without clients');
    for (let i = 0; i < 200; i++) peers.push(await connectRaw(server.port));
    await until(() => server.clientCount === 200, '200 clients');
    assert.is(alive.stats().peers, 200);
    assert.is(loop.stats().timers, 1, 'one entry for 200 clients');
    await destroyAll(...peers.splice(0));
    await until(() => server.clientCount === 0, 'every client closed');
    assert.is(alive.stats().peers, 0);
    assert.is(loop.stats().timers, 0, 'the sweep left with the last client');
    throwsCode(() => keepAlive(server), ErrorCode.DUPLICATE_TYPE);
    // Closed: frames of the ping type are messages again, and nothing is watched.
    alive.close();
    alive.close();
    assert.ok(alive.closed);
    const messages: FramedMessage[] = [];
    server.on('message', (_c, m) => messages.push(m));
    const peer = await connectRaw(server.port);
    peers.push(peer);
    peer.write(PING_FRAME);
    await until(() => messages.length === 1, 'the ping frame as a message');
    assert.is(messages[0]!.type, PING_TYPE);
    assert.is(alive.stats().peers, 0);
    assert.is(loop.stats().timers, 0);
    const again = keepAlive(server, { pingIntervalMs: 60_000 });
    assert.is(again.stats().peers, 1, 'a new keep-alive watches the clients already open');
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

test('layouts: a 1-byte type field needs a pingType (pomelo works with one), a layout without a type field cannot carry pings, a registered type is not free', async () => {
  const loop = new EventLoop();
  try {
    const pomelo = new FramedServer(loop, { port: 0, layout: 'pomelo' });
    const e = throwsCode(() => keepAlive(pomelo), ErrorCode.INVALID_OPTION);
    assert.is(e.details['option'], 'pingType');
    assert.is(e.details['max'], 0xff);
    // Without a type field every frame is of type 0: no ping type fits, and 0 is refused whatever the layout.
    const muduo = new FramedServer(loop, { port: 0, layout: 'muduo' });
    for (const pingType of [undefined, 1, 0]) {
      assert.is(throwsCode(() => keepAlive(muduo, { pingType }), ErrorCode.INVALID_OPTION).details['option'], 'pingType');
    }
    throwsCode(() => keepAlive(new FramedServer(loop, { port: 0, registry: registry() }), { pingType: 2 }), ErrorCode.DUPLICATE_TYPE);

    await pomelo.listen();
    const serverSide = keepAlive(pomelo, { pingType: 0xf1, pingIntervalMs: 50, pingTimeoutMs: 50 });
    const connector = new FramedConnector(loop, { port: pomelo.port, layout: 'pomelo', reconnect: false });
    keepAlive(connector, { pingType: 0xf1, pingIntervalMs: 0 });
    connector.connect();
    await until(() => serverSide.stats().pongsReceived >= 3, 'pongs over the pomelo layout');
    assert.is(serverSide.stats().timeouts, 0);
  } finally {
    await loop.close();
  }
});

test('bad options are coded errors (NETLOOP_INVALID_OPTION naming the option), checked before anything is reserved; ping-timeout is a close reason', () => {
  const loop = new EventLoop();
  const server = new FramedServer(loop, { port: 0, registry: registry() });
  const connector = new FramedConnector(loop, { port: 1, registry: registry() });
  const bad: Array<[KeepAliveOptions, string]> = [
    [{ pingIntervalMs: -1 }, 'pingIntervalMs'],
    [{ pingIntervalMs: 5 }, 'pingIntervalMs'],
    [{ pingIntervalMs: 1.5 }, 'pingIntervalMs'],
    [{ pingIntervalMs: 2 ** 31 }, 'pingIntervalMs'],
    [{ pingIntervalMs: Number.NaN }, 'pingIntervalMs'],
    [{ pingTimeoutMs: 0 }, 'pingTimeoutMs'],
    [{ pingTimeoutMs: '100' as unknown as number }, 'pingTimeoutMs'],
    [{ pingType: -1 }, 'pingType'],
    [{ pingType: 0.5 }, 'pingType'],
    [{ pingType: 0x10000 }, 'pingType'],
    [{ heartbeat: { type: 'Heartbeat', payload: {}, intervalMs: 1000 } }, 'heartbeat'],
  ];
  for (const [options, option] of bad) {
    const e = throwsCode(() => keepAlive(server, options), ErrorCode.INVALID_OPTION);
    assert.is(e.details['option'], option, JSON.stringify(options));
  }
  const badConnector: Array<[KeepAliveOptions, string]> = [
    [{ heartbeat: { type: 'Heartbeat', payload: {}, intervalMs: 0 } }, 'heartbeat.intervalMs'],
    [{ heartbeat: { type: true as unknown as string, payload: {}, intervalMs: 100 } }, 'heartbeat.type'],
    [{ heartbeat: 'often' as unknown as null }, 'heartbeat'],
    [{ heartbeat: { type: 'Nope', payload: {}, intervalMs: 100 } }, 'heartbeat'],
    [{ heartbeat: { type: 'Heartbeat', payload: 10n, intervalMs: 100 } }, 'heartbeat'],
  ];
  for (const [options, option] of badConnector) {
    const e = throwsCode(() => keepAlive(connector, options), ErrorCode.INVALID_OPTION);
    assert.is(e.details['option'], option, String(option));
  }
  throwsCode(() => keepAlive(server, null as unknown as KeepAliveOptions), ErrorCode.INVALID_OPTION);
  const rawServer = new Server(loop, { port: 0 });
  assert.is(throwsCode(() => keepAlive(rawServer as unknown as FramedServer), ErrorCode.INVALID_OPTION).details['option'], 'owner');
  // Nothing was reserved by the refused calls: a valid keep-alive takes the type now.
  assert.ok(keepAlive(server) instanceof KeepAlive);
  assert.ok(keepAlive(connector) instanceof KeepAlive);
  assert.ok((CLOSE_REASONS as readonly string[]).includes('ping-timeout'));
  assert.is(ErrorCode.PING_TIMEOUT, 'NETLOOP_PING_TIMEOUT');
});

test.run();
