/**
 * The session binding over real sockets on 127.0.0.1: notice-then-close to a
 * slow reader (byte-exact), the notice deadline, handshake and idle timeouts,
 * refresh by traffic, resume, the three login policies, broadcast, framing,
 * close, and no leak after 10,000 create/close cycles. Deadlines run in
 * virtual time (a ManualClock shared by the loop and the registry; the test
 * moves it and runs the loop's due timers).
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server, type AnyServer, type ServerOptions } from '../../../lib/reactor/server.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { FramedClient } from '../../../lib/framing/framed-client.js';
import type { FramingOptions } from '../../../lib/framing/framing.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ManualClock, systemClock } from '../../../lib/core/clock.js';
import type { Clock } from '../../../lib/core/clock.js';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import type { CreatedSession, SessionRegistryOptions } from '../../../lib/session/session-registry.js';
import { bindSessions } from '../../../lib/binding/session-binding.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../../../lib/binding/binding-types.js';
import { httpUnauthorizedNotice, jsonLineNotice } from '../../../lib/binding/notices.js';
import { connectionProbe } from '../../../lib/binding/connection-probe.js';
import type { SessionBinding } from '../../../lib/binding/session-binding.js';
import type { SessionBindingOptions, SessionBindingEvents, SessionBindingEventName, SessionBindingPayloads } from '../../../lib/binding/binding-types.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { decodeFrames } from '../../../lib/codec/ltv-decoder.js';
import { collectAll, connectRaw, destroyAll, digest, pattern, readBytes, refusedPort, until, waitFor, withTimeout, WAIT_MS } from '../../helpers/net.js';
import { RedisStore } from '../../../lib/store/redis/redis-store.js';
import { createToken } from '../../../lib/session/token.js';
import { uuidv7 } from '../../../lib/session/uuid-v7.js';
import { watchProcessFaults } from '../../helpers/process-faults.js';

// ── Harness ─────────────────────────────────────────────────────────────────

interface Rig {
  clock: Clock;
  manual: ManualClock | null;
  loop: EventLoop;
  registry: SessionRegistry;
  server: AnyServer;
  binding: SessionBinding;
  /** Server-side clients by the order they were accepted. */
  accepted: Client[];
  closes: Array<{ client: Client; reason: CloseReason; error: NetloopError | undefined }>;
  sockets: net.Socket[];
  /** Moves virtual time and runs the loop's due timers (the audit among them); resolves after the audit settled. */
  advance(ms: number): Promise<void>;
  /** Connects a peer and resolves with it and its server-side client. */
  connect(): Promise<{ peer: net.Socket; client: Client }>;
  /** Resolves with the close of `client`. */
  closed(client: Client): Promise<{ reason: CloseReason; error: NetloopError | undefined }>;
  event<E extends SessionBindingEventName>(name: E, filter?: (p: SessionBindingPayloads[E]) => boolean): Promise<SessionBindingPayloads[E]>;
  dispose(): Promise<void>;
}

async function rig(
  opts: { registry?: SessionRegistryOptions; server?: ServerOptions; framing?: FramingOptions; binding?: SessionBindingOptions; manual?: boolean } = {},
): Promise<Rig> {
  const manual = opts.manual === false ? null : new ManualClock(1_000);
  const clock: Clock = manual ?? systemClock;
  const loop = new EventLoop({ clock });
  const registry = new SessionRegistry({
    clock,
    autoAudit: false,
    ttlMs: 60_000,
    granularityMs: 100,
    isConnectionAlive: connectionProbe(loop),
    ...opts.registry,
  });
  // With framing options, a FramedServer; otherwise a raw one.
  const server: AnyServer =
    opts.framing === undefined
      ? await new Server(loop, { port: 0, ...opts.server }).listen()
      : await new FramedServer(loop, { port: 0, ...opts.server, ...opts.framing }).listen();
  const binding = bindSessions(server, registry, opts.binding);
  const accepted: Client[] = [];
  const closes: Rig['closes'] = [];
  server.on('connection', (c: Client) => accepted.push(c));
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  const sockets: net.Socket[] = [];
  const r: Rig = {
    clock,
    manual,
    loop,
    registry,
    server,
    binding,
    accepted,
    closes,
    sockets,
    async advance(ms) {
      manual!.advance(ms);
      loop.runDueTimers();
      await registry.audit();
      // Let the registry's events (microtasks) and the loop's turn run.
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
    async connect() {
      const n = accepted.length;
      const peer = await connectRaw(server.port);
      peer.on('error', () => undefined);
      sockets.push(peer);
      await until(() => accepted.length > n, 'the server to accept');
      return { peer, client: accepted[n]! };
    },
    closed(client) {
      const seen = closes.find((c) => c.client === client);
      if (seen !== undefined) return Promise.resolve(seen);
      return waitFor<[Client, CloseReason, NetloopError | undefined]>(server, 'close', { filter: (c) => c === client }).then(
        ([, reason, error]) => ({ reason, error }),
      );
    },
    event(name, filter) {
      return withTimeout(
        new Promise((resolve) => {
          const listener = ((p: SessionBindingPayloads[typeof name]) => {
            if (filter !== undefined && !filter(p)) return;
            binding.off(name, listener);
            resolve(p);
          }) as SessionBindingEvents[typeof name];
          binding.on(name, listener);
        }),
        WAIT_MS,
        `binding event '${name}'`,
      );
    },
    async dispose() {
      await destroyAll(...sockets);
      await loop.close({ flushTimeoutMs: 200 });
      await binding.close();
      await registry.close();
    },
  };
  return r;
}

async function rejectsCode(p: Promise<unknown>, code: string): Promise<NetloopError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isNetloopError(err), `expected NetloopError ${code}, got ${String(err)}`);
    assert.is(err.code, code);
    return err;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

function throwsCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err), String(err));
    assert.is(err.code, code);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

// ── Construction ────────────────────────────────────────────────────────────

test('bindSessions validates the registry, the clock, the server and its options', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { port: 0 }).listen();
  const auto = new SessionRegistry({ autoAudit: true });
  const other = new SessionRegistry({ autoAudit: false, clock: new ManualClock() });
  const ok = new SessionRegistry({ autoAudit: false });
  try {
    throwsCode(() => bindSessions(server, auto), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, other), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { handshakeTimeoutMs: -1 }), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { noticeTimeoutMs: 0 }), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { refreshOn: 'sometimes' as 'traffic' }), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { heartbeatTypes: [{}] as unknown as number[] }), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { notice: 'bye' as unknown as null }), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { recordTraffic: 1 as unknown as boolean }), ErrorCode.INVALID_OPTION);
    throwsCode(() => bindSessions(server, ok, { connectionPrefix: 'x'.repeat(200) }), ErrorCode.INVALID_OPTION);
    const b = bindSessions(server, ok);
    assert.is(b.options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS);
    throwsCode(() => bindSessions(server, ok), ErrorCode.INVALID_OPTION);
    await b.close();
    await b.close();
    assert.ok(b.closed);
    // Once unbound, the server may be bound again.
    const b2 = bindSessions(server, ok);
    await b2.close();
    await ok.close();
    throwsCode(() => bindSessions(server, ok), ErrorCode.REGISTRY_CLOSED);
  } finally {
    await loop.close();
    await Promise.all([auto.close(), other.close(), ok.close()]);
  }
});

// ── Notice, then close ──────────────────────────────────────────────────────

test('an expired session: its large notice reaches a slow reader byte for byte before the FIN', async () => {
  const notice = Buffer.concat([Buffer.from('EXPIRED '), pattern(8 * 1024 * 1024 + 17, 5), Buffer.from('\n')]);
  const r = await rig({
    registry: { ttlMs: 1_000, granularityMs: 100 },
    binding: { notice: (ctx) => (ctx.kind === 'expired' && ctx.reason === 'ttl' ? notice : null) },
    server: { softOutputLimit: null },
  });
  try {
    const { peer, client } = await r.connect();
    const { handle } = await r.binding.login(client, { userId: 'alice' });
    assert.is(r.binding.sessionOf(client), handle);
    // The peer does not read at first: the notice (larger than what the kernel buffers on
    // loopback, about 4 MiB) fills the socket buffers and the flush must wait.
    peer.pause();
    const expired = r.event('expired');
    await r.advance(1_200);
    const ev = await expired;
    assert.is(ev.client, client);
    assert.is(ev.reason, 'ttl');
    assert.is(r.binding.sessionOf(client), undefined);
    await until(() => client.queuedBytes > 0 && client.socket.writableLength > 0, 'the notice to be pending');
    assert.not.ok(client.closed, 'closed before the notice was flushed');
    // Now read slowly: a pause after every chunk.
    const chunks: Buffer[] = [];
    let ended = false;
    peer.on('data', (c: Buffer) => {
      chunks.push(c);
      peer.pause();
      setTimeout(() => peer.resume(), 1);
    });
    const end = new Promise<void>((resolve) => peer.once('end', () => ((ended = true), resolve())));
    peer.resume();
    await withTimeout(end, 20_000, 'the FIN after the notice');
    const got = Buffer.concat(chunks);
    assert.ok(ended);
    assert.is(got.length, notice.length);
    assert.is(digest(got), digest(notice));
    const closed = await r.closed(client);
    assert.is(closed.reason, 'session-expired');
    assert.is(closed.error, undefined);
    assert.equal(r.registry.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  } finally {
    await r.dispose();
  }
});

test('the default notice is one JSON line; the HTTP 401 builder counts its body in bytes', async () => {
  const r = await rig({ registry: { ttlMs: 1_000 } });
  try {
    const { peer, client } = await r.connect();
    const { session } = await r.binding.login(client, { userId: 'bob' });
    const all = collectAll(peer);
    await r.advance(1_200);
    const { data, reset } = await all;
    assert.not.ok(reset);
    assert.equal(JSON.parse(data.toString()), { event: 'session_expired', reason: 'ttl', session: session.id });
    assert.ok(data.toString().endsWith('\n'));
  } finally {
    await r.dispose();
  }
  const build = httpUnauthorizedNotice({ message: () => 'é expired' });
  const out = Buffer.from(build({ kind: 'expired', reason: 'ttl', session: { id: 'S' } as never, client: null as never }) as Uint8Array);
  const text = out.toString('utf8');
  const [head, body] = text.split('\r\n\r\n') as [string, string];
  assert.ok(head.startsWith('HTTP/1.1 401 Unauthorized\r\n'));
  assert.match(head, /Connection: close/);
  assert.is(Number(/Content-Length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
  assert.equal(JSON.parse(body), { error: 'session_expired', message: 'é expired', session: 'S' });
  const replaced = Buffer.from(httpUnauthorizedNotice()({ kind: 'replaced', reason: 'x', session: { id: 'S' } as never, client: null as never }) as Uint8Array);
  assert.match(replaced.toString(), /session_replaced/);
  assert.is(jsonLineNotice({ kind: 'kicked', reason: 'r', session: { id: 'S' } as never, client: null as never }), '{"event":"session_kicked","reason":"r","session":"S"}\n');
});

test('no notice (builder returns undefined): output already queued still reaches the peer before the FIN', async () => {
  const r = await rig({ registry: { ttlMs: 1_000 }, binding: { notice: () => undefined } });
  try {
    const { peer, client } = await r.connect();
    await r.binding.login(client, { userId: 'quiet' });
    const got: Buffer[] = [];
    peer.on('data', (d: Buffer) => got.push(d));
    const ended = new Promise<void>((resolve) => peer.once('end', () => resolve()));
    const reply = Buffer.alloc(6 * 1024 * 1024, 7);
    // Queued in the same turn as the expiry: it must not be thrown away.
    client.appendToOutputBuffer(reply);
    await r.advance(1_200);
    await withTimeout(ended, WAIT_MS, 'the FIN after the queued bytes');
    assert.is(Buffer.concat(got).length, reply.length, 'every queued byte before the FIN');
    const { reason } = await r.closed(client);
    assert.is(reason, 'session-expired');
  } finally {
    await r.dispose();
  }
});

test('a peer that never reads cannot hold its connection: the notice deadline destroys it', async () => {
  const r = await rig({
    registry: { ttlMs: 1_000 },
    server: { softOutputLimit: null, maxOutputBytes: 64 * 1024 * 1024 },
    binding: { noticeTimeoutMs: 5_000, notice: () => pattern(24 * 1024 * 1024, 1) },
  });
  try {
    const { peer, client } = await r.connect();
    peer.pause();
    await r.binding.login(client);
    await r.advance(1_200);
    assert.is(r.binding.stats().notifying, 1);
    await until(() => client.socket.writableLength > 0, 'the notice to be handed to the socket');
    assert.not.ok(client.closed);
    await r.advance(5_000);
    const { reason, error } = await r.closed(client);
    assert.is(reason, 'session-expired');
    assert.is(error?.code, ErrorCode.CLOSE_TIMEOUT);
    assert.is(r.binding.stats().notifying, 0);
  } finally {
    await r.dispose();
  }
});

test('a notice past the hard output limit closes with output-limit; a failing builder with handler-error', async () => {
  const r = await rig({
    registry: { ttlMs: 1_000 },
    server: { softOutputLimit: null, maxOutputBytes: 1024 },
    binding: { notice: (ctx) => (ctx.session.userId === 'boom' ? ({} as never) : pattern(4096)) },
  });
  try {
    const a = await r.connect();
    const b = await r.connect();
    await r.binding.login(a.client, { userId: 'big' });
    await r.binding.login(b.client, { userId: 'boom' });
    await r.advance(1_200);
    assert.is((await r.closed(a.client)).reason, 'output-limit');
    const bc = await r.closed(b.client);
    assert.is(bc.reason, 'handler-error');
    assert.is(bc.error?.code, ErrorCode.HANDLER_ERROR);
  } finally {
    await r.dispose();
  }
});

// ── Deadlines ───────────────────────────────────────────────────────────────

test('handshake timeout: a connection with no session is closed; a logged-in one is not', async () => {
  const r = await rig({ binding: { handshakeTimeoutMs: 1_000 }, server: { idleTimeoutMs: 0 } });
  try {
    const silent = await r.connect();
    const ok = await r.connect();
    await r.binding.login(ok.client);
    assert.is(r.binding.stats().deadlines, 1);
    await r.advance(999);
    assert.not.ok(silent.client.closed);
    await r.advance(2);
    const { reason, error } = await r.closed(silent.client);
    assert.is(reason, 'handshake-timeout');
    assert.is(error?.code, ErrorCode.HANDSHAKE_TIMEOUT);
    assert.not.ok(ok.client.closed);
    assert.is(r.binding.stats().deadlines, 0);
    // A logout starts a new handshake deadline.
    assert.ok(await r.binding.logout(ok.client));
    assert.not.ok(await r.binding.logout(ok.client));
    await r.advance(1_001);
    assert.is((await r.closed(ok.client)).reason, 'handshake-timeout');
  } finally {
    await r.dispose();
  }
});

test('read-idle timeout closes a silent (half-open) client and its session is detached, then expires', async () => {
  const r = await rig({
    registry: { ttlMs: 60_000, resumeWindowMs: 2_000 },
    server: { idleTimeoutMs: 5_000 },
    binding: { handshakeTimeoutMs: 0 },
  });
  try {
    const { client } = await r.connect();
    const { session } = await r.binding.login(client, { userId: 'carol' });
    const detached = r.event('detached');
    await r.advance(5_001);
    assert.is((await r.closed(client)).reason, 'idle-timeout');
    const d = await detached;
    assert.is(d.session.id, session.id);
    assert.is(d.reason, 'idle-timeout');
    assert.is(r.registry.localSizes().connections, 0);
    assert.is((await r.registry.get(session.id))?.state, 'IDLE');
    const expired = r.event('expired');
    await r.advance(2_200);
    const e = await expired;
    assert.is(e.reason, 'resume-window');
    assert.is(e.client, null);
    assert.equal(r.registry.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  } finally {
    await r.dispose();
  }
});

test("traffic refreshes a session; with refreshOn 'heartbeat' only heartbeats do", async () => {
  for (const refreshOn of ['traffic', 'heartbeat'] as const) {
    const r = await rig({ registry: { ttlMs: 1_000 }, binding: { refreshOn } });
    try {
      const { peer, client } = await r.connect();
      // A reading peer: it sees the notice's FIN and closes, which ends the (graceful) close.
      peer.resume();
      const { handle } = await r.binding.login(client);
      let pings = 0;
      for (let i = 0; i < 3; i++) {
        await r.advance(700);
        if (!handle.alive) break;
        const seen = waitFor<[Client, Buffer]>(r.server, 'data');
        peer.write('ping');
        await seen;
        pings++;
      }
      if (refreshOn === 'traffic') {
        assert.is(pings, 3);
        assert.ok(handle.alive, 'traffic kept the session alive');
        assert.is(handle.snapshot().stats.bytesIn, 12);
        assert.is(r.binding.heartbeat(client), 1_000);
      } else {
        assert.is(pings, 1, 'traffic alone must not refresh');
        assert.not.ok(handle.alive);
        assert.is((await r.closed(client)).reason, 'session-expired');
        assert.is(r.binding.heartbeat(client), -1);
      }
    } finally {
      await r.dispose();
    }
  }
});

test('the binding attaches through the seams: a read tap and frame observers, no listener on any socket; close() removes them and traffic no longer counts', async () => {
  const types = new MessageRegistry();
  types.register(1, 'Ping', 'raw');
  for (const framed of [false, true]) {
    const r = await rig(framed ? { framing: { registry: types } } : {});
    try {
      const { peer, client } = await r.connect();
      const { handle } = await r.binding.login(client, { userId: 'seams' });
      assert.is(client.socket.listenerCount('data'), 1, "only the reactor's own 'data' listener");
      assert.ok(r.server._readTap !== null, 'the binding reads through the read tap');
      if (framed) assert.is((r.server as FramedServer)._framing._frameObservers?.length, 1, 'and a frame observer');
      const ping = framed ? new LtvEncoder({ layout: 'netloop' }).encode(1, Buffer.alloc(2)) : Buffer.from('ping');
      peer.write(ping);
      await until(() => handle.snapshot().stats.bytesIn === ping.length, 'the bytes counted through the tap');
      if (framed) assert.is(handle.snapshot().stats.messagesIn, 1, 'and the frame through the observer');
      await r.binding.close();
      assert.is(r.server._readTap, null, 'the tap is removed');
      if (framed) assert.is((r.server as FramedServer)._framing._frameObservers, null, 'and the observer');
      // The server still reads (and delivers) the peer's bytes; the binding no longer sees them.
      const delivered = framed ? waitFor(r.server as FramedServer, 'message') : waitFor(r.server as Server, 'data');
      peer.write(ping);
      await delivered;
      assert.is(handle.snapshot().stats.bytesIn, ping.length, 'nothing counted once unbound');
    } finally {
      await r.dispose();
    }
  }
});

// ── Resume ──────────────────────────────────────────────────────────────────

test('resume: a valid token moves the session and the old connection gets a notice then closes', async () => {
  const r = await rig({ registry: { resumeWindowMs: 5_000 } });
  try {
    const first = await r.connect();
    const { token, session } = await r.binding.login(first.client, { userId: 'dan', metadata: { room: '1' } });
    const second = await r.connect();
    const oldBytes = collectAll(first.peer);
    const resumedEv = r.event('resumed');
    const res = await r.binding.resume(second.client, token);
    assert.is(res.session.id, session.id);
    assert.is(res.previousConnectionId, String(first.client.id));
    assert.is((await resumedEv).client, second.client);
    assert.is(r.binding.sessionOf(second.client), res.handle);
    const { data } = await oldBytes;
    assert.equal(JSON.parse(data.toString()), { event: 'session_replaced', reason: 'resumed-elsewhere', session: session.id });
    assert.is((await r.closed(first.client)).reason, 'session-replaced');
    // The old connection's close did not detach the session from its new connection.
    assert.is(r.registry.localSizes().connections, 1);
    assert.is(r.binding.clientOf(res.handle), second.client);
    assert.equal(r.binding.clientsOfUser('dan'), [second.client]);

    // After a close, within the window, on a third connection.
    second.peer.destroy();
    await r.closed(second.client);
    await until(() => r.registry.localSizes().connections === 0, 'the detach');
    const third = await r.connect();
    const again = await r.binding.resume(third.client, token);
    assert.is(again.session.id, session.id);
    assert.is(again.previousConnectionId, null);
    assert.equal(again.session.metadata, { room: '1' });
    await rejectsCode(r.binding.resume(third.client, token), ErrorCode.ALREADY_BOUND);
  } finally {
    await r.dispose();
  }
});

test('resume: a wrong token and an expired token are NETLOOP_BAD_TOKEN', async () => {
  const r = await rig({ registry: { resumeWindowMs: 1_000 } });
  try {
    const a = await r.connect();
    const { token } = await r.binding.login(a.client, { userId: 'eve' });
    const b = await r.connect();
    const wrong = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    await rejectsCode(r.binding.resume(b.client, wrong), ErrorCode.BAD_TOKEN);
    await rejectsCode(r.binding.resume(b.client, 'not a token'), ErrorCode.BAD_TOKEN);
    // The client can still log in after a refused resume.
    a.peer.destroy();
    await r.closed(a.client);
    await until(() => r.registry.localSizes().connections === 0, 'the detach');
    await r.advance(1_200);
    await rejectsCode(r.binding.resume(b.client, token), ErrorCode.BAD_TOKEN);
    await r.binding.login(b.client, { userId: 'eve' });
  } finally {
    await r.dispose();
  }
});

// ── Login policies ──────────────────────────────────────────────────────────

test("policy 'multiple': several sessions of one user, each with its client", async () => {
  const r = await rig({ registry: { policy: 'multiple', maxPerUser: 2 } });
  try {
    const a = await r.connect();
    const b = await r.connect();
    const c = await r.connect();
    await r.binding.login(a.client, { userId: 'u' });
    await r.binding.login(b.client, { userId: 'u' });
    await rejectsCode(r.binding.login(c.client, { userId: 'u' }), ErrorCode.LOGIN_REFUSED);
    assert.is(r.binding.clientsOfUser('u').length, 2);
    assert.not.ok(a.client.closed || b.client.closed);
  } finally {
    await r.dispose();
  }
});

test("policy 'replace': the old client gets the notice, then its connection closes", async () => {
  const r = await rig({ registry: { policy: 'replace' } });
  try {
    const a = await r.connect();
    const old = await r.binding.login(a.client, { userId: 'u' });
    const b = await r.connect();
    const bytes = collectAll(a.peer);
    const replaced = r.event('replaced');
    const fresh = await r.binding.login(b.client, { userId: 'u' });
    const ev = await replaced;
    assert.is(ev.client, a.client);
    assert.is(ev.by, fresh.session.id);
    const { data, reset } = await bytes;
    assert.not.ok(reset);
    assert.equal(JSON.parse(data.toString()), { event: 'session_replaced', reason: 'replaced', session: old.session.id });
    assert.is((await r.closed(a.client)).reason, 'session-replaced');
    assert.equal(r.binding.clientsOfUser('u'), [b.client]);
  } finally {
    await r.dispose();
  }
});

for (const n of [5, 20]) {
  test(`policy 'replace': ${n} logins of one user at the same instant: none refused, the newest client keeps its session, each other one gets the notice and closes with session-replaced`, async () => {
    const r = await rig({ registry: { policy: 'replace' } });
    try {
      const peers: Array<{ peer: net.Socket; client: Client }> = [];
      for (let i = 0; i < n; i++) peers.push(await r.connect());
      const notices = peers.slice(0, -1).map((p) => collectAll(p.peer));
      const outcomes = await Promise.allSettled(peers.map((p) => r.binding.login(p.client, { userId: 'same' })));
      assert.equal(
        outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)),
        [],
        'no login was refused',
      );
      const sessions = outcomes.map((o) => (o as PromiseFulfilledResult<CreatedSession>).value.session.id);
      const newest = peers[n - 1]!.client;
      for (const [i, p] of peers.slice(0, -1).entries()) {
        assert.is((await r.closed(p.client)).reason, 'session-replaced', `client ${i}`);
        const { data, reset } = await notices[i]!;
        assert.not.ok(reset);
        assert.equal(JSON.parse(data.toString()), { event: 'session_replaced', reason: 'replaced', session: sessions[i] }, `client ${i}'s notice`);
      }
      assert.equal(r.binding.clientsOfUser('same'), [newest]);
      assert.is(r.binding.sessionOf(newest)?.id, sessions[n - 1]);
      assert.not.ok(newest.closing || newest.closed);
      const stats = await r.registry.stats();
      assert.is(stats.counters.refused, 0);
      assert.is(stats.counters.replaced, n - 1);
      assert.is(stats.total, 1);
    } finally {
      await r.dispose();
    }
  });
}

test("policy 'refuse': refused while alive, never locked out by a connection killed with RST", async () => {
  const r = await rig({ registry: { policy: 'refuse' } });
  try {
    const a = await r.connect();
    await r.binding.login(a.client, { userId: 'u' });
    const b = await r.connect();
    await rejectsCode(r.binding.login(b.client, { userId: 'u' }), ErrorCode.LOGIN_REFUSED);
    // Kill the first connection with a reset and log in at once, before or after its close is seen.
    a.peer.resetAndDestroy();
    await until(() => a.client.closed, 'the reset to reach the server');
    const again = await r.binding.login(b.client, { userId: 'u' });
    assert.is(again.session.userId, 'u');
    assert.is((await r.closed(a.client)).reason, 'reset');
    // And again with the close not yet processed: the probe reports the connection dead.
    const c = await r.connect();
    await rejectsCode(r.binding.login(c.client, { userId: 'u' }), ErrorCode.LOGIN_REFUSED);
    b.client.destroy();
    const third = await r.binding.login(c.client, { userId: 'u' });
    assert.is(third.session.userId, 'u');
    await until(() => r.registry.localSizes().handles === 1, 'one session left');
  } finally {
    await r.dispose();
  }
});

// ── Broadcast ───────────────────────────────────────────────────────────────

test('broadcast to all, to one user, by filter; a slow client is closed by its limit, the others get everything', async () => {
  const r = await rig({ server: { maxOutputBytes: 256 * 1024, softOutputLimit: null } });
  try {
    const peers = [];
    for (const user of ['u1', 'u1', 'u2', 'slow']) {
      const p = await r.connect();
      await r.binding.login(p.client, { userId: user, metadata: { user } });
      peers.push(p);
    }
    const anon = await r.connect(); // not logged in: never receives broadcasts
    const [a, b, c, slow] = peers as [typeof peers[0], typeof peers[0], typeof peers[0], typeof peers[0]];
    slow.peer.pause();
    const sinks = [a, b, c].map((p) => {
      const chunks: Buffer[] = [];
      p.peer.on('data', (d: Buffer) => chunks.push(d));
      return chunks;
    });
    let anonBytes = 0;
    anon.peer.on('data', (d: Buffer) => (anonBytes += d.length));
    assert.is(r.binding.broadcast('all\n'), 4);
    assert.is(r.binding.sendToUser('u1', 'u1\n'), 2);
    assert.is(r.binding.sendToUser('nobody', 'x'), 0);
    assert.is(r.binding.broadcast('u2\n', (h) => h.userId === 'u2'), 1);
    // Flood: the slow peer's queue passes its hard limit and it is closed; the others keep up.
    const big = pattern(64 * 1024, 3);
    let sent = 0;
    while (!slow.client.closed && !slow.client.closing && sent < 400) {
      r.binding.broadcast(big, (h) => h.userId !== 'u2');
      sent++;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    assert.is((await r.closed(slow.client)).reason, 'output-limit');
    const expectA = 4 + 3 + sent * big.length;
    await until(() => Buffer.concat(sinks[0]!).length >= expectA && Buffer.concat(sinks[1]!).length >= expectA, 'u1 peers to get all');
    const gotA = Buffer.concat(sinks[0]!);
    assert.is(gotA.subarray(0, 7).toString(), 'all\nu1\n');
    assert.is(gotA.length, expectA);
    await until(() => Buffer.concat(sinks[2]!).length >= 7, 'u2 to get its messages');
    assert.is(Buffer.concat(sinks[2]!).toString(), 'all\nu2\n');
    assert.is(anonBytes, 0);
    const h = r.binding.sessionOf(a.client)!;
    assert.is(h.snapshot().stats.messagesOut, 2 + sent);
  } finally {
    await r.dispose();
  }
});

// ── Framing ─────────────────────────────────────────────────────────────────

test('framed server: heartbeat types refresh, the notice and broadcasts are frames, the client is authenticated', async () => {
  const types = new MessageRegistry();
  types.register(1, 'Login', 'utf8');
  types.register(2, 'Heartbeat', 'raw');
  types.register(3, 'Chat', 'utf8');
  types.register(9, 'SessionEnded', 'json');
  const r = await rig({
    registry: { ttlMs: 1_000 },
    framing: { registry: types },
    binding: {
      refreshOn: 'heartbeat',
      heartbeatTypes: ['Heartbeat'],
      notice: ({ kind, reason }) => ({ type: 'SessionEnded', payload: { kind, reason } }),
    },
  });
  const enc = new LtvEncoder({ layout: 'netloop' });
  try {
    const server = r.server as FramedServer;
    server.on('message', (client: FramedClient, msg: { name?: string; payload: unknown }) => {
      if (msg.name === 'Login') void r.binding.login(client, { userId: String(msg.payload) }).then(({ token }) => client.send('Chat', token));
    });
    assert.ok(server.requireAuthentication, 'binding sessions holds peers without one to the pre-auth frame limit');
    const { peer, client: raw } = await r.connect();
    const client = raw as FramedClient;
    const chunks: Buffer[] = [];
    peer.on('data', (d: Buffer) => chunks.push(d));
    const frames = (): Array<{ type: number; value: Buffer }> => decodeFrames(Buffer.concat(chunks), { layout: 'netloop' });
    peer.write(enc.encode(1, Buffer.from('frank')));
    await until(() => frames().length === 1, 'the login reply');
    assert.ok(client.authenticated);
    const handle = r.binding.sessionOf(client)!;
    for (let i = 0; i < 3; i++) {
      await r.advance(600);
      const seen = waitFor(r.server, 'message');
      peer.write(enc.encode(2, Buffer.alloc(0)));
      await seen;
    }
    assert.ok(handle.alive, 'heartbeat messages kept the session alive');
    // The login message arrived before the session existed; the three heartbeats are counted.
    assert.is(handle.snapshot().stats.messagesIn, 3);
    // A chat message is traffic but not a heartbeat.
    assert.is(r.binding.broadcast({ type: 'Chat', payload: 'hello' }), 1);
    await until(() => frames().length === 2, 'the broadcast frame');
    assert.is(frames()[1]!.value.toString(), 'hello');
    await r.advance(600);
    const seen = waitFor(r.server, 'message');
    peer.write(enc.encode(3, Buffer.from('chat')));
    await seen;
    await r.advance(600);
    await r.closed(client);
    const last = frames()[2]!;
    assert.is(last.type, 9);
    assert.equal(JSON.parse(last.value.toString()), { kind: 'expired', reason: 'ttl' });
    assert.throws(() => r.binding.broadcast({ type: 'Nope', payload: 1 }));
  } finally {
    await r.dispose();
  }
});

for (const api of ['onMessage', 'onRawFrame'] as const) {
  test(`heartbeatTypes count with a framing.${api} handler: a client heartbeating every 300 ms (TTL 1 s) lives for several TTLs, one that stops expires`, async () => {
    const types = new MessageRegistry();
    types.register(1, 'Login', 'utf8');
    types.register(2, 'Heartbeat', 'raw');
    types.register(3, 'Welcome', 'utf8');
    // Frames the handler saw, by client id: the test waits for each heartbeat to reach the server.
    const seen = new Map<number, number>();
    let binding: SessionBinding | null = null;
    const onLogin = (client: FramedClient, user: string): void => {
      void binding!.login(client, { userId: user }).then(() => client.send('Welcome', user));
    };
    const framing =
      api === 'onMessage'
        ? {
            registry: types,
            onMessage: (client: FramedClient, msg: { name?: string; payload: unknown }) => {
              seen.set(client.id, (seen.get(client.id) ?? 0) + 1);
              if (msg.name === 'Login') onLogin(client, String(msg.payload));
            },
          }
        : {
            registry: types,
            onRawFrame: (client: FramedClient, type: number, source: Buffer, start: number, end: number) => {
              seen.set(client.id, (seen.get(client.id) ?? 0) + 1);
              if (type === 1) onLogin(client, source.toString('utf8', start, end));
            },
          };
    const r = await rig({
      registry: { ttlMs: 1_000, granularityMs: 100 },
      framing,
      binding: { refreshOn: 'heartbeat', heartbeatTypes: ['Heartbeat'] },
    });
    binding = r.binding;
    const enc = new LtvEncoder({ layout: 'netloop' });
    try {
      const login = async (user: string): Promise<{ peer: net.Socket; client: Client }> => {
        const c = await r.connect();
        const welcome = readBytes(c.peer, 6 + user.length);
        c.peer.write(enc.encode(1, Buffer.from(user)));
        await welcome;
        assert.ok(r.binding.sessionOf(c.client) !== undefined);
        return c;
      };
      const beating = await login('beats');
      const silent = await login('stops');
      const handle = r.binding.sessionOf(beating.client)!;
      let beats = 0;
      // 3.6 s of virtual time, three and a half TTLs: every 300 ms, one heartbeat the server has read.
      for (let t = 0; t < 12; t++) {
        await r.advance(300);
        const before = seen.get(beating.client.id) ?? 0;
        beating.peer.write(enc.encode(2, Buffer.alloc(0)));
        await until(() => (seen.get(beating.client.id) ?? 0) > before, 'the heartbeat to reach the handler');
        beats++;
      }
      assert.ok(handle.alive, 'the heartbeating client lived for 3.6 TTLs');
      assert.not.ok(beating.client.closed || beating.client.closing);
      assert.is(handle.snapshot().stats.heartbeats, beats);
      assert.is(handle.snapshot().stats.messagesIn, beats, 'the heartbeats are counted as messages (the login came before the session)');
      assert.is((await r.closed(silent.client)).reason, 'session-expired', 'the silent client expired');
      // Once it stops, it expires too.
      await r.advance(1_200);
      assert.is((await r.closed(beating.client)).reason, 'session-expired');
      assert.not.ok(handle.alive);
    } finally {
      await r.dispose();
    }
  });
}

test('without framing, a framed message is NETLOOP_INVALID_VALUE; a bad message too', async () => {
  const r = await rig();
  try {
    throwsCode(() => r.binding.broadcast({ type: 1, payload: Buffer.alloc(1) }), ErrorCode.INVALID_VALUE);
    throwsCode(() => r.binding.broadcast(42 as never), ErrorCode.INVALID_VALUE);
  } finally {
    await r.dispose();
  }
});

// ── Kick, login errors, close ───────────────────────────────────────────────

test('kick: notice then close, the session deleted; login errors and a close during login', async () => {
  const r = await rig({ registry: { resumeWindowMs: 5_000 } });
  try {
    const a = await r.connect();
    const { session } = await r.binding.login(a.client, { userId: 'g' });
    await rejectsCode(r.binding.login(a.client), ErrorCode.ALREADY_BOUND);
    const bytes = collectAll(a.peer);
    const kicked = r.event('kicked');
    assert.ok(await r.binding.kick(a.client, 'banned'));
    assert.not.ok(await r.binding.kick(a.client));
    const { data } = await bytes;
    assert.equal(JSON.parse(data.toString()), { event: 'session_kicked', reason: 'banned', session: session.id });
    assert.is((await r.closed(a.client)).reason, 'session-kicked');
    assert.is((await kicked).reason, 'banned');
    assert.is(await r.registry.get(session.id), null);
    await rejectsCode(r.binding.login(a.client), ErrorCode.CLIENT_CLOSED);

    // A client that closes while its login is under way: the session is detached, the login rejects.
    const b = await r.connect();
    const pending = r.binding.login(b.client, { userId: 'h' });
    const twice = r.binding.login(b.client);
    b.client.destroy();
    await rejectsCode(twice, ErrorCode.ALREADY_BOUND);
    await rejectsCode(pending, ErrorCode.CLIENT_CLOSED);
    await until(() => r.registry.localSizes().connections === 0, 'the detach after the failed login');
    assert.is(r.binding.stats().bound, 0);
  } finally {
    await r.dispose();
  }
});

test('close() detaches bound sessions, stops the audit timer and refuses new logins', async () => {
  const r = await rig({ registry: { resumeWindowMs: 5_000 } });
  try {
    const a = await r.connect();
    await r.binding.login(a.client, { userId: 'i' });
    const timersBefore = r.loop.stats().timers;
    assert.ok(r.binding.stats().auditTimer);
    await r.binding.close();
    assert.not.ok(r.binding.stats().auditTimer);
    assert.is(r.loop.stats().timers, timersBefore - 1);
    assert.equal(r.registry.localSizes().connections, 0);
    assert.is(r.binding.stats().clients, 0);
    await rejectsCode(r.binding.login(a.client), ErrorCode.LOOP_CLOSED);
    assert.not.ok(a.client.closed);
  } finally {
    await r.dispose();
  }
});

// ── Guarded listeners ───────────────────────────────────────────────────────

/** Logs in a fresh peer as `userId`; resolves with it once bound. */
async function loginPeer(r: Rig, userId: string): Promise<{ peer: net.Socket; client: Client }> {
  const c = await r.connect();
  await r.binding.login(c.client, { userId });
  return c;
}

/**
 * Connects a peer and logs it in as `userId` where a listener of the login's
 * own event fails: the event may be delivered before the login settles (a
 * synchronous listener), so the client may be closed during its login, which
 * then rejects with NETLOOP_CLIENT_CLOSED; or after (an async listener).
 */
async function loginClosedPeer(r: Rig, userId: string): Promise<{ peer: net.Socket; client: Client }> {
  const c = await r.connect();
  try {
    await r.binding.login(c.client, { userId });
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.CLIENT_CLOSED), String(err));
  }
  return c;
}

/** Asserts that `client` closed with handler-error, coded, with `cause` and its id in details. */
async function closedByHandlerError(r: Rig, client: Client, cause: string): Promise<NetloopError> {
  const { reason, error } = await r.closed(client);
  assert.is(reason, 'handler-error');
  assert.ok(isNetloopError(error, ErrorCode.HANDLER_ERROR), String(error));
  assert.is((error.cause as Error).message, cause);
  assert.is(error.details['clientId'], client.id);
  return error;
}

/** The server still serves: a new peer logs in and receives a broadcast. */
async function stillServes(r: Rig): Promise<void> {
  const c = await loginPeer(r, 'healthy');
  const got = readBytes(c.peer, 6);
  assert.is(r.binding.sendToUser('healthy', 'hello\n'), 1);
  assert.is((await got).toString(), 'hello\n');
  assert.not.ok(c.client.closing || c.client.closed);
}

test('a binding listener that throws or rejects closes only the client its event concerns (handler-error, coded, with the cause); the server serves the next client', async () => {
  const faults = watchProcessFaults();
  const r = await rig();
  try {
    const others: string[] = [];
    r.binding.on('created', (p) => {
      if (p.session.userId === 'sync') throw new Error('sync listener failed');
    });
    r.binding.on('created', async (p) => {
      await Promise.resolve();
      if (p.session.userId === 'async') throw new Error('async listener failed');
    });
    // A listener after the failing ones still runs.
    r.binding.on('created', (p) => void others.push(String(p.session.userId)));
    const a = await loginClosedPeer(r, 'sync');
    const error = await closedByHandlerError(r, a.client, 'sync listener failed');
    assert.is(error.details['event'], 'created');
    const b = await loginClosedPeer(r, 'async');
    await closedByHandlerError(r, b.client, 'async listener failed');
    // An expiry whose listener throws: that client is already closing with its
    // notice, so it keeps its close and its reason; the fault goes to 'error'.
    r.binding.on('expired', () => {
      throw new Error('expired listener failed');
    });
    const faultSeen = r.event('error');
    const c = await loginPeer(r, 'ttl');
    c.peer.resume(); // it reads its notice and the FIN, and closes its side
    await r.advance(61_000);
    assert.is((await r.closed(c.client)).reason, 'session-expired');
    const fault = await faultSeen;
    assert.is(fault.operation, 'listener');
    assert.is(fault.event, 'expired');
    assert.ok(isNetloopError(fault.error, ErrorCode.HANDLER_ERROR), String(fault.error));
    assert.is(((fault.error as NetloopError).cause as Error).message, 'expired listener failed');
    assert.equal(others.slice(0, 3), ['sync', 'async', 'ttl']);
    await stillServes(r);
    faults.assertClean();
  } finally {
    faults.stop();
    await r.dispose();
  }
});

test("a binding listener's fault on an event with no live client goes to 'error'; without an 'error' listener, or when it fails too, it is a process warning", async () => {
  const faults = watchProcessFaults();
  const r = await rig({ registry: { resumeWindowMs: 5_000 } });
  try {
    const failing = (): void => {
      throw new Error('detached listener failed');
    };
    r.binding.on('detached', failing);
    const errors: SessionBindingPayloads['error'][] = [];
    const onError = (p: SessionBindingPayloads['error']): void => void errors.push(p);
    r.binding.on('error', onError);
    const a = await loginPeer(r, 'gone');
    a.peer.destroy();
    await r.closed(a.client);
    await until(() => errors.length === 1, "the 'error' event");
    const e = errors[0]!;
    assert.is(e.operation, 'listener');
    assert.is(e.event, 'detached');
    assert.ok(isNetloopError(e.error, ErrorCode.HANDLER_ERROR), String(e.error));
    assert.is(((e.error as NetloopError).cause as Error).message, 'detached listener failed');
    // Without an 'error' listener: a warning with the code, never a throw.
    r.binding.off('error', onError);
    const b = await loginPeer(r, 'gone-too');
    b.peer.destroy();
    const warned = await faults.warning(ErrorCode.HANDLER_ERROR, /detached listener failed/);
    assert.match(warned.message, /session binding/);
    // An 'error' listener that fails itself is reported the same way.
    r.binding.off('detached', failing);
    r.binding.on('detached', async () => {
      throw new Error('async detached listener failed');
    });
    r.binding.on('error', () => {
      throw new Error('error listener failed');
    });
    const c = await loginPeer(r, 'gone-three');
    c.peer.destroy();
    await faults.warning(ErrorCode.HANDLER_ERROR, /error listener failed/);
    await stillServes(r);
    faults.assertClean();
  } finally {
    faults.stop();
    await r.dispose();
  }
});

test('a registry listener that throws or rejects on an event of a bound client closes that client with handler-error; one on a session of no client goes to the binding\'s error event', async () => {
  const faults = watchProcessFaults();
  const r = await rig();
  try {
    r.registry.on('created', (p) => {
      if (p.session.userId === 'bad') throw new Error('registry listener failed');
    });
    r.registry.on('deleted', async () => {
      throw new Error('registry deleted listener failed');
    });
    const errors: SessionBindingPayloads['error'][] = [];
    r.binding.on('error', (p) => void errors.push(p));
    const a = await loginClosedPeer(r, 'bad');
    const error = await closedByHandlerError(r, a.client, 'registry listener failed');
    assert.is(error.details['event'], 'created');
    assert.is(error.details['connectionId'], String(a.client.id));
    // A session of no client of ours (created on the registry directly), deleted: the fault is the binding's 'error'.
    const { session } = await r.registry.create({ userId: 'nobody' });
    await r.registry.delete(session.id);
    await until(() => errors.length === 1, "the binding's 'error' event");
    assert.is(errors[0]!.operation, 'listener');
    assert.is(errors[0]!.event, 'deleted');
    assert.ok(isNetloopError(errors[0]!.error, ErrorCode.HANDLER_ERROR));
    assert.is((errors[0]!.error as NetloopError).details['sessionId'], session.id);
    await stillServes(r);
    faults.assertClean();
  } finally {
    faults.stop();
    await r.dispose();
  }
});

test('a peer that sends its login line twice (the README example): the second login rejects with NETLOOP_ALREADY_BOUND, the first session stands', async () => {
  const faults = watchProcessFaults();
  const r = await rig();
  try {
    const outcomes: string[] = [];
    (r.server as Server).on('data', (client: Client, chunk: Buffer) => {
      r.binding.login(client, { userId: String(chunk).trim() }).then(
        ({ token }) => {
          outcomes.push('ok');
          client.write(token + '\n');
        },
        (err: unknown) => outcomes.push(isNetloopError(err) ? err.code : String(err)),
      );
    });
    const { peer, client } = await r.connect();
    const token = readBytes(peer, 81);
    peer.write('alice\n');
    await token;
    peer.write('alice\n');
    await until(() => outcomes.length === 2, 'both logins to settle');
    assert.equal(outcomes, ['ok', ErrorCode.ALREADY_BOUND]);
    assert.is(r.binding.sessionOf(client)?.userId, 'alice');
    assert.not.ok(client.closing || client.closed);
    faults.assertClean();
  } finally {
    faults.stop();
    await r.dispose();
  }
});

// ── A store that is down ────────────────────────────────────────────────────

test('with its store down (Redis unreachable), login and resume reject with NETLOOP_STORE_UNAVAILABLE within the store\'s timeout, and registry.ping() says so', async () => {
  const store = new RedisStore({ url: `redis://127.0.0.1:${await refusedPort()}`, commandTimeoutMs: 300, connectTimeoutMs: 200 });
  // The store retries its connection for as long as it is open: it is closed
  // whatever happens, or a failure here would leave the file running forever.
  try {
    for (const policy of ['multiple', 'replace'] as const) {
      const r = await rig({ registry: { store, policy } });
      try {
        const { client } = await r.connect();
        const bounded = async (what: string, p: Promise<unknown>): Promise<void> => {
          const started = performance.now();
          await rejectsCode(p, ErrorCode.STORE_UNAVAILABLE);
          const ms = performance.now() - started;
          // At most two store operations (the policy's read, then the insert), each bounded by commandTimeoutMs.
          assert.ok(ms < 2_000, `${policy} ${what} took ${ms.toFixed(0)} ms`);
        };
        await bounded('login', r.binding.login(client, { userId: 'u' }));
        // A well-formed token: the store is asked, and does not answer.
        await bounded('resume', r.binding.resume(client, createToken(uuidv7()).token));
        await bounded('ping', r.registry.ping());
        assert.not.ok(client.closing || client.closed, 'the client is the application\'s to tell and close');
        assert.is(r.binding.sessionOf(client), undefined);
      } finally {
        await r.dispose();
      }
    }
  } finally {
    await store.close();
  }
});

// ── Leaks ───────────────────────────────────────────────────────────────────

test('no leak of sessions, timers or index entries after 10,000 create/close cycles', async () => {
  const r = await rig({ registry: { resumeWindowMs: 0, policy: 'replace', maxPerUser: 4 }, binding: { handshakeTimeoutMs: 30_000 } });
  try {
    const baseline = r.loop.stats().timers;
    const CONNS = 50;
    const peers = [];
    for (let i = 0; i < CONNS; i++) peers.push(await r.connect());
    const stats0 = await r.registry.stats();
    let cycles = 0;
    // 9,950 cycles of login then logout on reused connections...
    for (let round = 0; round < 199; round++) {
      await Promise.all(
        peers.map(async (p, i) => {
          await r.binding.login(p.client, { userId: `user${i}`, metadata: { round: String(round) } });
          await r.binding.logout(p.client);
          cycles++;
        }),
      );
    }
    // ...and 50 where the connection closes while bound (the detach path).
    await Promise.all(peers.map((p) => r.binding.login(p.client, { userId: 'closing' + String(p.client.id) })));
    for (const p of peers) p.peer.destroy();
    await until(() => r.closes.length === CONNS, 'every close');
    cycles += CONNS;
    assert.is(cycles, 10_000);
    await until(() => r.binding.stats().pending === 0 && r.registry.localSizes().handles === 0, 'every detach to settle');
    assert.equal(r.registry.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
    assert.equal(r.binding.stats(), { clients: 0, bound: 0, users: 0, deadlines: 0, notifying: 0, pending: 0, auditTimer: true });
    assert.is(r.loop.stats().timers, baseline);
    assert.is(r.loop.stats().clients, 0);
    const stats = await r.registry.stats();
    assert.is(stats.total, 0);
    assert.is(stats.counters.created - stats0.counters.created, 10_000);
  } finally {
    await r.dispose();
  }
});

test.run();
