import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as dc from 'node:diagnostics_channel';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import { CHANNEL_NAMES, channels, observeSessions, publishLimit } from '../../../lib/reactor/diagnostics.js';
import type { AcceptMessage, CloseMessage, DropMessage, LimitMessage, SessionExpireMessage } from '../../../lib/reactor/diagnostics.js';
import { collectAll, connectRaw, destroyAll, until, waitFor } from '../../helpers/net.js';

const D = suite('diagnostics');

/** Subscribes to a channel for the duration of `fn`, collecting every message. */
async function observing<T>(name: string, fn: (seen: T[]) => Promise<void>): Promise<void> {
  const seen: T[] = [];
  const onMessage = (m: unknown): void => {
    seen.push(m as T);
  };
  dc.subscribe(name, onMessage);
  try {
    await fn(seen);
  } finally {
    dc.unsubscribe(name, onMessage);
  }
}

D('channel names are stable and nobody subscribes by default (publishing costs nothing then)', () => {
  assert.equal(CHANNEL_NAMES, {
    accept: 'netloop:client:accept',
    connect: 'netloop:client:connect',
    drop: 'netloop:client:drop',
    close: 'netloop:client:close',
    limit: 'netloop:limit',
    tlsError: 'netloop:tls:error',
    sessionExpire: 'netloop:session:expire',
    handlerError: 'netloop:handler:error',
  });
  for (const ch of Object.values(channels)) assert.is(ch.hasSubscribers, false);
  assert.is(dc.channel('netloop:client:close'), channels.close, 'the same channel object by name');
});

D('accept and close are published with ids, reasons and codes; stats() counts closes by reason', async () => {
  const loop = new EventLoop();
  const server = await loop.listen({});
  try {
    await observing<AcceptMessage>(CHANNEL_NAMES.accept, async (accepts) => {
      await observing<CloseMessage>(CHANNEL_NAMES.close, async (closes) => {
        const conA = waitFor<[Client]>(server, 'connection');
        const a = await connectRaw(server.port);
        const [ca] = await conA;
        const conB = waitFor<[Client]>(server, 'connection');
        const b = await connectRaw(server.port);
        const [cb] = await conB;
        assert.equal(
          accepts.map((m) => m.clientId),
          [ca.id, cb.id],
        );
        assert.is(accepts[0]!.remoteAddress, '127.0.0.1');
        assert.is(accepts[0]!.remotePort, a.localPort);
        assert.is(accepts[0]!.tls, false);
        const closedA = waitFor(server, 'close');
        a.end();
        await closedA;
        const closedB = waitFor(server, 'close');
        b.resetAndDestroy();
        await closedB;
        assert.equal(closes[0], { clientId: ca.id, reason: 'peer-closed', code: undefined, syscallCode: undefined });
        assert.equal(closes[1], { clientId: cb.id, reason: 'reset', code: ErrorCode.SOCKET_ERROR, syscallCode: 'ECONNRESET' });
        const st = loop.stats();
        assert.is(st.counters.accepted, 2);
        assert.equal(st.counters.closed, { 'peer-closed': 1, reset: 1 });
        await destroyAll(a, b);
      });
    });
  } finally {
    await loop.close();
  }
});

D('a drop beyond maxConnections is published on client:drop and on limit (max-connections)', async () => {
  const loop = new EventLoop();
  const server = await loop.listen({ maxConnections: 1 });
  const peers: net.Socket[] = [];
  try {
    await observing<DropMessage>(CHANNEL_NAMES.drop, async (drops) => {
      await observing<LimitMessage>(CHANNEL_NAMES.limit, async (limits) => {
        peers.push(await connectRaw(server.port));
        await until(() => server.clientCount === 1, 'one client');
        const dropped = waitFor(server, 'drop');
        const extra = await connectRaw(server.port);
        peers.push(extra);
        await dropped;
        await collectAll(extra);
        assert.is(drops.length, 1);
        assert.is(drops[0]!.reason, 'max-connections');
        assert.is(drops[0]!.limit, 1);
        assert.equal(limits, [{ limit: 'max-connections', clientId: null, code: ErrorCode.MAX_CONNECTIONS, details: { limit: 1 } }]);
        assert.is(loop.stats().counters.dropped, 1);
      });
    });
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

D('limits that close a client publish on netloop:limit: output-limit and idle-timeout, with the client id and code', async () => {
  const loop = new EventLoop();
  const server = await loop.listen({ maxOutputBytes: 1024, softOutputLimit: null, idleTimeoutMs: 50 });
  const peers: net.Socket[] = [];
  try {
    await observing<LimitMessage>(CHANNEL_NAMES.limit, async (limits) => {
      const con1 = waitFor<[Client]>(server, 'connection');
      peers.push(await connectRaw(server.port));
      const [c1] = await con1;
      const closed1 = waitFor(server, 'close', { filter: (c) => c === c1 });
      assert.is(c1.write(Buffer.alloc(2048)), false);
      await closed1;
      const con2 = waitFor<[Client]>(server, 'connection');
      peers.push(await connectRaw(server.port));
      const [c2] = await con2;
      await waitFor(server, 'close', { filter: (c) => c === c2, ms: 5_000 });
      const byClient = new Map(limits.map((m) => [m.clientId, m]));
      assert.is(byClient.get(c1.id)!.limit, 'output-limit');
      assert.is(byClient.get(c1.id)!.code, ErrorCode.OUTPUT_LIMIT);
      assert.is(byClient.get(c1.id)!.details['limit'], 1024);
      assert.is(byClient.get(c2.id)!.limit, 'idle-timeout');
      assert.is(byClient.get(c2.id)!.code, ErrorCode.IDLE_TIMEOUT);
      publishLimit('inbound', 7, { queuedMessages: 1000 });
      assert.equal(limits[limits.length - 1], { limit: 'inbound', clientId: 7, code: undefined, details: { queuedMessages: 1000 } });
    });
    const st = loop.stats();
    assert.is(st.counters.closed['output-limit'], 1);
    assert.is(st.counters.closed['idle-timeout'], 1);
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

D('counters count with nobody subscribed; stats() returns a copy', async () => {
  const loop = new EventLoop();
  const server = await loop.listen({});
  try {
    const before = loop.stats();
    const con = waitFor(server, 'connection');
    const p = await connectRaw(server.port);
    await con;
    const closed = waitFor(server, 'close');
    p.end();
    await closed;
    const after = loop.stats();
    assert.is(before.counters.accepted, 0);
    assert.equal(before.counters.closed, {}, 'the earlier snapshot did not change');
    assert.is(after.counters.accepted, 1);
    assert.is(after.counters.closed['peer-closed'], 1);
    assert.is(after.clients, 0);
    await destroyAll(p);
  } finally {
    await loop.close();
  }
});

D('session expiry is published with ids and the reason only, never the token or its hash', async () => {
  const clock = new ManualClock();
  const reg = new SessionRegistry({ clock, ttlMs: 1_000, granularityMs: 100, autoAudit: false });
  // The registry's on() returns the registry (TypedEmitter); observeSessions wants an undo function.
  const stop = observeSessions({ on: (name, fn) => (reg.on(name, fn), () => void reg.off(name, fn)) });
  try {
    await observing<SessionExpireMessage>(CHANNEL_NAMES.sessionExpire, async (seen) => {
      const { session, token } = await reg.create({ userId: 'u1', connectionId: 'conn-9' });
      clock.advance(1_100);
      await reg.audit();
      await until(() => seen.length === 1, 'the expiry message');
      assert.equal(seen[0], { sessionId: session.id, userId: 'u1', connectionId: 'conn-9', reason: 'ttl' });
      const text = JSON.stringify(seen);
      assert.not.ok(text.includes(token), 'the token never appears');
    });
  } finally {
    stop();
    await reg.close();
  }
});

D.run();
