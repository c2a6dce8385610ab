/**
 * The Prometheus metrics end to end: a framed echo server on real sockets,
 * a load client counting every byte and frame, the ops endpoint's
 * `/metrics` scraped over HTTP while the load runs and after it stops, and
 * every exposition parsed strictly (test/helpers/prom-text.ts).

 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { FramedServer } from '../../lib/framing/framed-server.js';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../lib/core/errors.js';
import { reactorSource, sessionSource, storeSource, framingSource, rpcSource } from '../../lib/ops/sources.js';
import { FramedConnector } from '../../lib/framing/framed-connector.js';
import type { FramedClient } from '../../lib/framing/framed-client.js';
import { enableRpc } from '../../lib/messaging/rpc.js';
import { defineCalls } from '../../lib/messaging/rpc-calls.js';
import { RpcError } from '../../lib/messaging/rpc-error.js';
import type { FrameCountingView, StoreView } from '../../lib/ops/sources.js';
import { startOpsServer } from '../../lib/ops/ops-server.js';
import type { OpsServer } from '../../lib/ops/ops-server.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { MemoryStore } from '../../lib/store/memory-store.js';
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import { FileStore } from '../../lib/store/file/file-store.js';
import { parseExposition, valueOf, hasSample } from '../helpers/prom-text.js';
import type { Family } from '../helpers/prom-text.js';
import { startOpsEcho, startLoad, slowConsumer } from '../helpers/ops-load.js';
import { connectRaw, refusedPort, until } from '../helpers/net.js';
import { frame } from '../helpers/live-server.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

async function scrape(ops: OpsServer, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  const res = await fetch(`${ops.url}metrics`, { headers });
  assert.is(res.status, 200, 'GET /metrics');
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}


test('scraped during a load: the exposition parses strictly, names follow Prometheus conventions, counters move with the load and equal the client\'s own counts once it stops', async () => {
  const echo = await startOpsEcho();
  const reactor = reactorSource(echo.loop, { servers: { echo: echo.server } });
  const ops = await startOpsServer({ sources: { reactor } });
  try {
    let m = await scrape(ops);
    assert.is(valueOf(m, 'netloop_connections_open', { server: 'echo' }), 0);
    assert.is(valueOf(m, 'netloop_connections_accepted_total'), 0);
    assert.is(valueOf(m, 'netloop_received_bytes_total'), 0);

    // Naming: every family typed and documented; counters end in _total; units are base units at the end.
    for (const f of m.values()) {
      assert.ok(f.name.startsWith('netloop_'), f.name);
      assert.ok(f.help !== undefined && f.help.length > 10, `${f.name} has a HELP line`);
      assert.ok(f.type !== 'untyped', `${f.name} has a TYPE line`);
      if (f.type === 'counter') assert.ok(f.name.endsWith('_total'), `counter ${f.name} ends in _total`);
      else assert.not.ok(f.name.endsWith('_total'), `${f.type} ${f.name} does not end in _total`);
      if (/bytes/.test(f.name)) assert.match(f.name, /_bytes(_total)?$/, `${f.name}: bytes as the unit suffix`);
      assert.not.match(f.name, /_(ms|milliseconds|kb|kib|mb|mib)(_|$)/, `${f.name}: base units only`);
    }

    const load = await startLoad(echo.port, { connections: 4 });
    await until(() => load.framesEchoed > 2_000, 'the load to run');
    const m1 = await scrape(ops);
    assert.is(valueOf(m1, 'netloop_connections_open', { server: 'echo' }), 4);
    assert.is(valueOf(m1, 'netloop_connections_accepted_total'), 4);
    const bytes1 = valueOf(m1, 'netloop_received_bytes_total');
    const frames1 = valueOf(m1, 'netloop_received_frames_total');
    assert.ok(bytes1 > 0 && bytes1 <= load.bytesSent, `received ${bytes1} of ${load.bytesSent} sent`);
    assert.ok(frames1 >= 2_000 && frames1 <= load.framesSent, `frames ${frames1}`);
    assert.is(valueOf(m1, 'netloop_connection_output_queue_bytes_count'), 4, 'one histogram observation per live connection');

    const echoed = load.framesEchoed;
    await until(() => load.framesEchoed > echoed + 2_000, 'the load to go on');
    const m2 = await scrape(ops);
    assert.ok(valueOf(m2, 'netloop_received_bytes_total') > bytes1, 'bytes in moved');
    assert.ok(valueOf(m2, 'netloop_received_frames_total') > frames1, 'frames in moved');
    assert.ok(valueOf(m2, 'netloop_sent_bytes_total') >= valueOf(m1, 'netloop_sent_bytes_total'));

    await load.stop();
    await until(() => echo.server.clientCount === 0, 'every connection to close');
    m = await scrape(ops);
    // Closed clients' counts were taken at their close: the totals are exact.
    assert.is(valueOf(m, 'netloop_received_bytes_total'), load.bytesSent);
    assert.is(valueOf(m, 'netloop_sent_bytes_total'), load.bytesReceived);
    assert.is(valueOf(m, 'netloop_received_frames_total'), load.framesSent);
    assert.is(valueOf(m, 'netloop_connections_closed_total', { reason: 'peer-closed' }), 4);
    assert.is(valueOf(m, 'netloop_connections_open', { server: 'echo' }), 0);
    assert.is(valueOf(m, 'netloop_connection_output_queue_bytes_count'), 0);
  } finally {
    await ops.close();
    reactor.close();
    await echo.stop();
  }
});

test('queued output: a slow consumer is sampled at scrape time in the histogram; a hard output-limit close is counted by kind, limit and reason', async () => {
  const echo = await startOpsEcho({ maxOutputBytes: 16 * 1024 * 1024 });
  const reactor = reactorSource(echo.loop, { servers: { echo: echo.server } });
  const ops = await startOpsServer({ sources: { reactor } });
  try {
    // 10 MiB asked, never read: what the kernel's buffers do not take (a few MiB on loopback) waits in netloop.
    const slow = await slowConsumer(echo.port, 10 * 1024 * 1024);
    await until(() => [...echo.server.clients()].some((c) => c.queuedBytes > 1024 * 1024), 'output to pile up');
    let m = await scrape(ops);
    const queued = valueOf(m, 'netloop_output_queued_bytes');
    assert.ok(queued > 1024 * 1024, `queued ${queued}`);
    assert.is(valueOf(m, 'netloop_connection_output_queue_bytes_bucket', { le: '1048576' }), 0);
    assert.is(valueOf(m, 'netloop_connection_output_queue_bytes_bucket', { le: '16777216' }), 1);
    assert.is(valueOf(m, 'netloop_connection_output_queue_bytes_sum'), queued);

    const greedy = await slowConsumer(echo.port, 64 * 1024 * 1024);
    await until(() => (echo.loop.stats().counters.closed['output-limit'] ?? 0) === 1, 'the hard limit to close the greedy peer');
    m = await scrape(ops);
    assert.is(valueOf(m, 'netloop_output_limit_closes_total', { limit: 'hard' }), 1);
    assert.is(valueOf(m, 'netloop_output_limit_closes_total', { limit: 'soft' }), 0);
    assert.is(valueOf(m, 'netloop_limit_hits_total', { limit: 'output-limit' }), 1);
    assert.is(valueOf(m, 'netloop_connections_closed_total', { reason: 'output-limit' }), 1);
    slow.destroy();
    greedy.destroy();
  } finally {
    await ops.close();
    reactor.close();
    await echo.stop();
  }
});

test('the endpoint: loopback by default, read-only, bearer token compared in constant time, a cookie for browsers, bounded event streams', async () => {
  const loop = new EventLoop();
  const reactor = reactorSource(loop);
  const token = 'ops-token-0123456789abcdef';
  const ops = await startOpsServer({ sources: { reactor }, token, maxEventStreams: 2, intervalMs: 100 });
  const streams: AbortController[] = [];
  try {
    assert.is(ops.host, '127.0.0.1');
    let res = await fetch(`${ops.url}metrics`);
    assert.is(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    res = await fetch(`${ops.url}metrics`, { headers: { authorization: 'Bearer ops-token-0123456789abcdeX' } });
    assert.is(res.status, 401, 'a wrong token of the right length');
    res = await fetch(`${ops.url}metrics`, { headers: { authorization: 'Bearer x' } });
    assert.is(res.status, 401, 'a short token');
    await scrape(ops, { authorization: `Bearer ${token}` });
    res = await fetch(`${ops.url}metrics`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.is(res.status, 405, 'read-only');
    assert.is((await fetch(`${ops.url}nope`, { headers: { authorization: `Bearer ${token}` } })).status, 404);

    res = await fetch(`${ops.url}?token=nope`, { redirect: 'manual' });
    assert.is(res.status, 401);
    res = await fetch(`${ops.url}?token=${token}`, { redirect: 'manual' });
    assert.is(res.status, 303);
    assert.is(res.headers.get('location'), '/');
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const jar = cookie.split(';')[0]!;
    res = await fetch(ops.url, { headers: { cookie: jar } });
    assert.is(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(await res.text(), /<title>netloop/);

    // Event streams: a snapshot at once, then one per tick; a third stream is refused.
    const open = async (): Promise<Response> => {
      const ac = new AbortController();
      streams.push(ac);
      return fetch(`${ops.url}events`, { headers: { cookie: jar }, signal: ac.signal });
    };
    const s1 = await open();
    assert.is(s1.status, 200);
    assert.match(s1.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = s1.body!.getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    const first = JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { reactor: { servers: Array<{ name: string; open: number }> } };
    assert.equal(first.reactor.servers, [{ name: 'loop', open: 0 }]);
    const s2 = await open();
    assert.is(s2.status, 200);
    const s3 = await open();
    assert.is(s3.status, 503, 'maxEventStreams');
    assert.is(ops.eventStreams, 2);
    reader.releaseLock();
  } finally {
    for (const ac of streams) ac.abort();
    await ops.close();
    reactor.close();
    await loop.close();
  }
});

test('the endpoint: bad options are NETLOOP_INVALID_OPTION; a port in use is NETLOOP_SOCKET_ERROR; without a registry /metrics is 404', async () => {
  const loop = new EventLoop();
  const reactor = reactorSource(loop);
  const sources = { reactor };
  const codeOf = async (p: Promise<unknown>): Promise<unknown> => p.then(() => 'resolved', (e: { code?: unknown; details?: { syscallCode?: unknown } }) => e.details?.syscallCode ?? e.code);
  assert.is(await codeOf(startOpsServer({ sources, token: 'short' })), ErrorCode.INVALID_OPTION);
  assert.is(await codeOf(startOpsServer({ sources, intervalMs: 10 })), ErrorCode.INVALID_OPTION);
  assert.is(await codeOf(startOpsServer({ sources, port: 70_000 })), ErrorCode.INVALID_OPTION);
  assert.is(await codeOf(startOpsServer({ sources, maxEventStreams: 0 })), ErrorCode.INVALID_OPTION);
  assert.is(await codeOf(startOpsServer({ sources, topClients: -1 })), ErrorCode.INVALID_OPTION);
  assert.is(await codeOf(startOpsServer({ sources, queueBuckets: [2, 1] })), ErrorCode.INVALID_OPTION);
  const ops = await startOpsServer({ sources, registry: null });
  try {
    assert.is((await fetch(`${ops.url}metrics`)).status, 404);
    assert.is(ops.metrics, null);
    assert.is(await codeOf(startOpsServer({ sources, registry: null, port: ops.port })), 'EADDRINUSE');
    const snap = (await (await fetch(`${ops.url}snapshot`)).json()) as { reactor: { clients: number } };
    assert.is(snap.reactor.clients, 0);
  } finally {
    await ops.close();
    reactor.close();
    await loop.close();
  }
});

test('sessions and stores: sessions by state and lifecycle counters from the registry; store_up from a real health check (a Redis store on a refused port is down, not hung)', async () => {
  const registry = new SessionRegistry({ store: new MemoryStore(), autoAudit: false });
  const redis = new RedisStore({ url: `redis://127.0.0.1:${await refusedPort()}`, connectTimeoutMs: 200, commandTimeoutMs: 300 });
  const ops = await startOpsServer({
    sources: {
      sessions: sessionSource(registry),
      stores: [storeSource(registry.store, { name: 'sessions' }), storeSource(redis, { name: 'cache', pingTimeoutMs: 2_000 })],
    },
  });
  try {
    const a = await registry.create({ userId: 'a', connectionId: 'ca' });
    await registry.create({ userId: 'b', connectionId: 'cb' });
    await registry.create({ userId: 'c', state: 'CONNECTING' });
    await registry.delete(a.session.id);
    const m = await scrape(ops);
    assert.is(valueOf(m, 'netloop_sessions', { state: 'ACTIVE' }), 1);
    assert.is(valueOf(m, 'netloop_sessions', { state: 'CONNECTING' }), 1);
    assert.is(valueOf(m, 'netloop_sessions', { state: 'IDLE' }), 0);
    assert.is(valueOf(m, 'netloop_sessions_created_total'), 3);
    assert.is(valueOf(m, 'netloop_sessions_deleted_total'), 1);
    assert.is(valueOf(m, 'netloop_sessions_local'), 2);
    assert.is(valueOf(m, 'netloop_store_up', { store: 'sessions', kind: 'memory' }), 1);
    assert.is(valueOf(m, 'netloop_store_up', { store: 'cache', kind: 'redis' }), 0);
    assert.ok(valueOf(m, 'netloop_store_ping_duration_seconds', { store: 'sessions' }) >= 0);
    assert.not.ok(hasSample(m, 'netloop_connections_open'), 'no reactor given, no reactor metrics');
    const snap = (await (await fetch(`${ops.url}snapshot`)).json()) as { stores: Array<{ name: string; up: boolean; errorCode?: string }> };
    assert.equal(
      snap.stores.map((s) => [s.name, s.up, s.errorCode ?? null]),
      [
        ['sessions', true, null],
        ['cache', false, ErrorCode.STORE_UNAVAILABLE],
      ],
    );
  } finally {
    await ops.close();
    await registry.close();
    await redis.close();
  }
});

test('netloop_rpc_*: calls, failures by kind, round trips and requests of each RPC endpoint, read from its stats() at scrape time', async () => {
  const calls = defineCalls({ Echo: { id: 1, request: 'utf8', reply: 'utf8' } });
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { port: 0 }).listen();
  const serverRpc = enableRpc(server, { calls });
  serverRpc.handle('Echo', (_client, text) => {
    if (text === 'fail') throw new RpcError('NOPE', 'refused');
    return text;
  });
  const connector = new FramedConnector(loop, { port: server.port, reconnect: false });
  const clientRpc = enableRpc(connector, { calls });
  const client = await new Promise<FramedClient>((resolve) => {
    connector.once('connected', resolve);
    connector.connect();
  });
  const ops = await startOpsServer({ sources: { rpc: [rpcSource(clientRpc, { name: 'client' }), rpcSource(serverRpc, { name: 'server' })] } });
  try {
    for (let i = 0; i < 5; i++) assert.is(await clientRpc.call(client, 'Echo', `m${i}`), `m${i}`);
    let code: unknown;
    try {
      await clientRpc.call(client, 'Echo', 'fail');
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    assert.is(code, ErrorCode.RPC_REMOTE_ERROR);
    const m = await scrape(ops);
    assert.is(valueOf(m, 'netloop_rpc_calls_total', { rpc: 'client' }), 6);
    assert.is(valueOf(m, 'netloop_rpc_calls_in_flight', { rpc: 'client' }), 0);
    assert.is(valueOf(m, 'netloop_rpc_call_failures_total', { rpc: 'client', kind: 'remote-error' }), 1);
    assert.is(valueOf(m, 'netloop_rpc_call_failures_total', { rpc: 'client', kind: 'timeout' }), 0);
    assert.is(valueOf(m, 'netloop_rpc_call_duration_seconds_count', { rpc: 'client' }), 6, 'the round trips of the calls that got a reply (a remote error is one)');
    assert.is(valueOf(m, 'netloop_rpc_requests_total', { rpc: 'server' }), 6);
    assert.is(valueOf(m, 'netloop_rpc_request_failures_total', { rpc: 'server', kind: 'failed' }), 1);
    assert.is(valueOf(m, 'netloop_rpc_calls_total', { rpc: 'server' }), 0);
  } finally {
    await ops.close();
    await loop.close();
  }
});

test('rpcSource refuses what is not an RPC endpoint, and an empty name, with NETLOOP_INVALID_OPTION', () => {
  for (const [rpc, name] of [[{}, 'x'], [null, 'x'], [{ stats: () => ({}) }, '']] as const) {
    try {
      rpcSource(rpc as never, { name });
      assert.unreachable('refused');
    } catch (err) {
      assert.is((err as { code?: unknown }).code, ErrorCode.INVALID_OPTION);
    }
  }
});

// ─── counters kept by the framing layer, the registry and the stores ─────────

test('netloop_sent_frames_total equals the frames the load client got back (loop counters: framesOut)', async () => {
  const echo = await startOpsEcho();
  const reactor = reactorSource(echo.loop);
  const ops = await startOpsServer({ sources: { reactor } });
  try {
    const load = await startLoad(echo.port, { connections: 2 });
    await until(() => load.framesEchoed > 1_000, 'the load to run');
    await load.stop();
    const m = await scrape(ops);
    assert.is(valueOf(m, 'netloop_sent_frames_total'), load.framesEchoed);
  } finally {
    await ops.close();
    reactor.close();
    await echo.stop();
  }
});

test('netloop_inbound_pauses_total counts the framing layer pausing a client at its inbound limit (loop counters: inboundPauses)', async () => {
  const loop = new EventLoop();
  const pending: Array<() => void> = [];
  const server = await new FramedServer(loop, {
    layout: 'netloop',
    maxPendingMessages: 2,
    onMessage: () => new Promise<void>((resolve) => pending.push(resolve)),
  }).listen();
  const reactor = reactorSource(loop);
  const ops = await startOpsServer({ sources: { reactor } });
  try {
    const peer = await connectRaw(server.port);
    peer.write(Buffer.concat([frame(1, 'a'), frame(1, 'b'), frame(1, 'c')]));
    await until(() => pending.length >= 2, 'two handlers in flight');
    const m = await scrape(ops);
    assert.ok(valueOf(m, 'netloop_inbound_pauses_total') >= 1);
    peer.destroy();
  } finally {
    for (const r of pending) r();
    await ops.close();
    reactor.close();
    await loop.close();
  }
});

test('netloop_received_frames_by_type_total: the most frequent types by name, at most maxFrameTypes, the rest as other (framing: frameCounts())', async () => {
  const echo = await startOpsEcho();
  const reactor = reactorSource(echo.loop);
  const ops = await startOpsServer({ sources: { reactor, framing: [framingSource(echo.server as unknown as FrameCountingView)] }, maxFrameTypes: 1 });
  try {
    const load = await startLoad(echo.port, { connections: 1 });
    await until(() => load.framesEchoed > 100, 'the load to run');
    const slow = await slowConsumer(echo.port, 1024);
    await load.stop();
    const m = await scrape(ops);
    assert.ok(valueOf(m, 'netloop_received_frames_by_type_total', { type: '1' }) >= 100);
    assert.is(valueOf(m, 'netloop_received_frames_by_type_total', { type: 'other' }), 1);
    slow.destroy();
  } finally {
    await ops.close();
    reactor.close();
    await echo.stop();
  }
});

test('netloop_session_audit_duration_seconds counts the audit runs (RegistryStats.audit)', async () => {
  const registry = new SessionRegistry({ store: new MemoryStore(), autoAudit: false });
  const ops = await startOpsServer({ sources: { sessions: sessionSource(registry) } });
  try {
    await registry.audit();
    await registry.audit();
    const m = await scrape(ops);
    assert.ok(valueOf(m, 'netloop_session_audit_duration_seconds_count') >= 2);
  } finally {
    await ops.close();
    await registry.close();
  }
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-ops-metrics-'));
test('netloop_store_operation_duration_seconds and _errors_total by store and operation (store.operationStats())', async () => {
  const store = await FileStore.open({ path: path.join(tmp, 'ops.json') });
  const registry = new SessionRegistry({ store, autoAudit: false });
  const ops = await startOpsServer({ sources: { stores: [storeSource(store, { name: 'file' })] } });
  try {
    await registry.create({ userId: 'u' });
    await registry.flush();
    // A filter with a state that does not exist: refused with a code, counted as a failure of list.
    let code: unknown;
    try {
      await store.list({ state: 'NOPE' as never });
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    assert.is(code, ErrorCode.INVALID_OPTION);
    const m = await scrape(ops);
    assert.ok(valueOf(m, 'netloop_store_operation_duration_seconds_count', { store: 'file', operation: 'create' }) >= 1);
    assert.is(valueOf(m, 'netloop_store_operation_errors_total', { store: 'file', operation: 'list', code: ErrorCode.INVALID_OPTION }), 1);
    assert.is(valueOf(m, 'netloop_store_operation_duration_seconds_count', { store: 'file', operation: 'list' }), 1);
  } finally {
    await ops.close();
    await registry.close();
    await store.close();
  }
});

test.after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

test.run();
