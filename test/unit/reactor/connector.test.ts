import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { ConnectErrorInfo } from '../../../lib/reactor/callbacks.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { refusedPort, until, waitFor } from '../../helpers/net.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { Server } from '../../../lib/reactor/server.js';
import { Connector } from '../../../lib/reactor/connector.js';

test('connects, exchanges bytes, and reports connected and close', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
  const connector = new Connector(loop, { port: server.port, reconnect: false }).connect();
  const [client] = await waitFor<[Client]>(connector, 'connected');
  assert.is(connector.client, client);
  assert.is(connector.attempts, 0);
  const echoed = waitFor<[Client, Buffer]>(connector, 'data');
  client.write('ping');
  const [, chunk] = await echoed;
  assert.is(chunk.toString(), 'ping');
  assert.is(loop.clientCount, 2);
  const closed = waitFor<[Client, string]>(connector, 'close');
  const stopped = connector.close();
  assert.is(connector.close(), stopped, 'resolves once: the same promise');
  await stopped;
  const [, reason] = await closed;
  assert.is(reason, 'server-close', "a connector's close closes its connection as a server's close does");
  assert.is(connector.client, null);
  assert.ok(connector.stopped);
  await loop.close();
  assert.is(loop.stats().connectors, 0);
});

test('a refusing port: exponential backoff with jitter, bounded attempts, then give-up', async () => {
  const loop = new EventLoop();
  const port = await refusedPort();
  const randoms = [0, 0.5, 1, 0.25];
  let r = 0;
  const connector = new Connector(loop, {
    port,
    reconnect: { initialDelayMs: 4, factor: 3, maxDelayMs: 30, jitter: 0.5, maxAttempts: 4 },
    random: () => randoms[r++ % randoms.length]!,
  }).connect();
  const errors: Array<[NetloopError, ConnectErrorInfo]> = [];
  connector.on('connect-error', (e: NetloopError, info: ConnectErrorInfo) => errors.push([e, info]));
  const [giveUp] = await waitFor<[NetloopError]>(connector, 'give-up');
  assert.is(giveUp.code, ErrorCode.RECONNECT_EXHAUSTED);
  assert.is(errors.length, 4);
  for (const [e] of errors) {
    assert.is(e.code, ErrorCode.CONNECT_FAILED);
    assert.is(e.details['syscallCode'], 'ECONNREFUSED');
  }
  // delay(n) = min(30, 4 * 3^(n-1)) * (1 - 0.5 * random)
  assert.equal(
    errors.map(([, i]) => i),
    [
      { attempt: 1, nextDelayMs: 4 * 1 },
      { attempt: 2, nextDelayMs: 12 * 0.75 },
      { attempt: 3, nextDelayMs: 30 * 0.5 },
      { attempt: 4, nextDelayMs: null },
    ],
  );
  assert.ok(connector.stopped);
  assert.is(loop.stats().connectors, 0);
  assert.is(loop.stats().timers, 0);
  await loop.close();
});

test('without reconnect, one failure gives up', async () => {
  const loop = new EventLoop();
  const connector = new Connector(loop, { port: await refusedPort(), reconnect: false }).connect();
  const failed = waitFor<[NetloopError, ConnectErrorInfo]>(connector, 'connect-error');
  const gaveUp = waitFor<[NetloopError]>(connector, 'give-up');
  const [, info] = await failed;
  assert.equal(info, { attempt: 1, nextDelayMs: null });
  const [e] = await gaveUp;
  assert.is(e.code, ErrorCode.RECONNECT_EXHAUSTED);
  await loop.close();
});

test('a server that comes back: the connector reconnects', async () => {
  const loop = new EventLoop();
  const port = await refusedPort();
  const connector = new Connector(loop, { port, reconnect: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 1000 } }).connect();
  await waitFor(connector, 'connect-error');
  const server = await new Server(loop, { port }).listen();
  const [client] = await waitFor<[Client]>(connector, 'connected');
  assert.is(connector.attempts, 0, 'reset by the connection');
  // The server drops the connection: the connector connects again.
  const again = waitFor<[Client]>(connector, 'connected');
  await until(() => server.clientCount === 1, 'the server to see the client');
  const closedReason = waitFor<[Client, string]>(connector, 'close');
  [...server.clients()][0]!.destroy();
  const [, reason] = await closedReason;
  assert.is(reason, 'peer-closed');
  const [client2] = await again;
  assert.is.not(client2, client);
  assert.ok(client2.id > client.id);
  await loop.close();
  assert.ok(connector.stopped);
});

test('a connect timeout (on the loop clock) counts as a failed attempt', async () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  const server = await new Server(loop).listen();
  const connector = new Connector(loop, { port: server.port, connectTimeoutMs: 50, reconnect: false }).connect();
  let connected = false;
  connector.on('connected', () => (connected = true));
  const failed = waitFor<[NetloopError]>(connector, 'connect-error');
  // The deadline passes before the handshake can complete (no I/O has run yet).
  clock.advance(50);
  assert.is(loop.runDueTimers(), 1);
  const [e] = await failed;
  assert.is(e.code, ErrorCode.CONNECT_FAILED);
  assert.is(e.details['syscallCode'], 'ETIMEDOUT');
  assert.not.ok(connected);
  await loop.close();
});

test('options are validated', () => {
  const loop = new EventLoop();
  for (const bad of [
    { port: 0 },
    { port: 1, connectTimeoutMs: 0 },
    { port: 1, reconnect: { factor: 0.5 } },
    { port: 1, reconnect: { jitter: 2 } },
    { port: 1, reconnect: { maxAttempts: 0 } },
  ]) {
    assert.throws(() => new Connector(loop, bad).connect(), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION), JSON.stringify(bad));
  }
});

test('close() during the backoff cancels the retry; no timer is left', async () => {
  const loop = new EventLoop();
  const connector = new Connector(loop, { port: await refusedPort(), reconnect: { initialDelayMs: 60_000 } }).connect();
  await waitFor(connector, 'connect-error');
  assert.is(loop.stats().timers, 1);
  await connector.close();
  assert.is(loop.stats().timers, 0);
  assert.is(loop.stats().connectors, 0);
  await loop.close();
});

test('close() while connecting abandons the attempt', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  const connector = new Connector(loop, { port: server.port }).connect();
  let connected = false;
  connector.on('connected', () => (connected = true));
  await connector.close();
  assert.is(connector.client, null);
  assert.is(loop.stats().timers, 0);
  await loop.close();
  assert.not.ok(connected);
});

test('built, then started: connect() begins the attempts and returns the connector; twice is one start; a closed connector refuses to start', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  try {
    const connector = new Connector(loop, { port: server.port, reconnect: false });
    assert.is(loop.stats().connectors, 0, 'nothing runs before connect()');
    await new Promise<void>((r) => setImmediate(r));
    assert.is(server.clientCount, 0, 'no attempt before connect()');
    const connected = waitFor<[Client]>(connector, 'connected');
    assert.is(connector.connect(), connector);
    assert.is(connector.connect(), connector, 'a second connect() while running does nothing');
    await connected;
    assert.is(loop.stats().connectors, 1);
    await until(() => server.clientCount === 1, 'one connection only');
    await connector.close();
    assert.is(loop.stats().connectors, 0);
    assert.throws(() => connector.connect(), (e: unknown) => isNetloopError(e, ErrorCode.LOOP_CLOSED));
    const idle = new Connector(loop, { port: server.port });
    await idle.close();
    assert.ok(idle.stopped);
  } finally {
    await loop.close();
  }
  assert.throws(() => new Connector(loop, { port: 1 }).connect(), (e: unknown) => isNetloopError(e, ErrorCode.LOOP_CLOSED), 'a closed loop');
});

test.run();
