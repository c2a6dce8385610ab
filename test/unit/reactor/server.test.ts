import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { DropInfo } from '../../../lib/reactor/callbacks.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { collectAll, connectRaw, destroyAll, readBytes, until, waitFor } from '../../helpers/net.js';

test('an echo server: connection, data, close events', async () => {
  const loop = new EventLoop();
  const server = await loop.listen({ host: '127.0.0.1', port: 0 });
  try {
    assert.ok(server.port > 0);
    assert.is(server.address().address, '127.0.0.1');
    server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
    const conn = waitFor<[Client]>(server, 'connection');
    const peer = await connectRaw(server.port);
    const [client] = await conn;
    assert.is(server.clientCount, 1);
    assert.equal([...server.clients()], [client]);
    assert.equal([...loop.clients()], [client]);
    peer.write('hello');
    assert.is((await readBytes(peer, 5)).toString(), 'hello');
    const closed = waitFor<[Client, string]>(server, 'close');
    peer.end();
    const [c, reason] = await closed;
    assert.is(c, client);
    assert.is(reason, 'peer-closed');
    assert.is(server.clientCount, 0);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test('beyond maxConnections new sockets are dropped with a drop event; existing clients are untouched', async () => {
  const loop = new EventLoop();
  const server = await loop.listen({ maxConnections: 2 });
  const peers: net.Socket[] = [];
  try {
    server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
    peers.push(await connectRaw(server.port), await connectRaw(server.port));
    await until(() => server.clientCount === 2, 'two clients');
    const drop = waitFor<[DropInfo]>(server, 'drop');
    const third = await connectRaw(server.port);
    const thirdDone = collectAll(third);
    const [info] = await drop;
    assert.is(info.reason, 'max-connections');
    assert.is(info.remoteAddress, '127.0.0.1');
    assert.is(info.remotePort, third.localPort);
    const { data } = await thirdDone;
    assert.is(data.length, 0);
    assert.is(server.clientCount, 2);
    for (const [i, p] of peers.entries()) {
      p.write(`still ${i}`);
      assert.is((await readBytes(p, 7)).toString(), `still ${i}`);
    }
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

test('listening on a taken port rejects with a coded socket error', async () => {
  const loop = new EventLoop();
  const a = await loop.listen();
  try {
    await loop.listen({ port: a.port }).then(
      () => assert.unreachable('second listen on the same port'),
      (e: unknown) => {
        assert.ok(isNetloopError(e, ErrorCode.SOCKET_ERROR));
        assert.is((e as { details: Record<string, unknown> }).details['syscallCode'], 'EADDRINUSE');
      },
    );
    assert.is(loop.stats().servers, 1);
  } finally {
    await loop.close();
  }
});

test('options are validated with coded errors', async () => {
  const loop = new EventLoop();
  const bad: Array<Record<string, unknown>> = [
    { port: -1 },
    { port: 70000 },
    { backlog: 0 },
    { maxConnections: 0 },
    { maxConnections: 1.5 },
    { maxOutputBytes: 0 },
    { softOutputLimit: { bytes: 0, forMs: 1 } },
    { softOutputLimit: { bytes: 100, forMs: -1 } },
    { maxOutputBytes: 10, softOutputLimit: { bytes: 11, forMs: 1 } },
    { softOutputLimit: 5 },
    { idleTimeoutMs: -1 },
    { halfOpen: 'yes' },
    { noDelay: 1 },
    { shutdownTimeoutMs: Number.NaN },
    { host: 42 },
  ];
  for (const options of bad) {
    await loop.listen(options as never).then(
      () => assert.unreachable(JSON.stringify(options)),
      (e: unknown) => assert.ok(isNetloopError(e, ErrorCode.INVALID_OPTION), JSON.stringify(options)),
    );
  }
  await loop.close();
});

test('a throwing connection handler closes that client only, with handler-error', async () => {
  const loop = new EventLoop();
  const server = await loop.listen();
  try {
    let n = 0;
    server.on('connection', () => {
      if (n++ === 0) throw new Error('bad handler');
    });
    const closed = waitFor<[Client, string, { code: string }]>(server, 'close');
    const p1 = await connectRaw(server.port);
    const [, reason, err] = await closed;
    assert.is(reason, 'handler-error');
    assert.is(err.code, ErrorCode.HANDLER_ERROR);
    const p2 = await connectRaw(server.port);
    await until(() => server.clientCount === 1, 'the second client');
    await destroyAll(p1, p2);
  } finally {
    await loop.close();
  }
});

test('server.close() stops accepting, flushes queued output, closes each client once with server-close', async () => {
  const loop = new EventLoop();
  const server = await loop.listen();
  const port = server.port;
  const reasons: string[] = [];
  server.on('close', (_c: Client, reason: string) => reasons.push(reason));
  const peer = await connectRaw(server.port);
  await until(() => server.clientCount === 1, 'a client');
  const client = [...server.clients()][0]!;
  const payload = Buffer.alloc(3 << 20, 7);
  client.write(payload);
  const got = collectAll(peer);
  const p1 = server.close({ flushTimeoutMs: 5000 });
  const p2 = server.close();
  assert.is(p1, p2, 'resolves once: the same promise');
  await p1;
  const { data } = await got;
  assert.is(data.length, payload.length);
  assert.equal(reasons, ['server-close']);
  assert.ok(server.closing);
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? resolve() : reject(e)));
    s.on('connect', () => {
      s.destroy();
      reject(new Error('still accepting'));
    });
  });
  await destroyAll(peer);
  await loop.close();
});

test('an accept error is reported on the server only when listened for', async () => {
  const loop = new EventLoop();
  const server = await loop.listen();
  try {
    const errors: unknown[] = [];
    // An accept failure, emitted the way net.Server reports one.
    const onError = (e: unknown): void => {
      errors.push(e);
    };
    server.on('error', onError);
    const netServer = findNetServer(server);
    netServer.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
    assert.is(errors.length, 1);
    assert.ok(isNetloopError(errors[0], ErrorCode.SOCKET_ERROR));
    server.off('error', onError);
    netServer.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' }));
  } finally {
    await loop.close();
  }
});

/** The net.Server behind a netloop Server, found through the listening handle's owner. */
function findNetServer(server: unknown): net.Server {
  const found = (process as unknown as { _getActiveHandles(): unknown[] })
    ._getActiveHandles()
    .find((h) => h instanceof net.Server && (h.address() as net.AddressInfo | null)?.port === (server as { port: number }).port);
  if (found === undefined) throw new Error('net.Server not found');
  return found as net.Server;
}

test.run();
