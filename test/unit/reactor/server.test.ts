import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Client } from '../../../lib/reactor/client.js';
import type { ServerBaseEvents } from '../../../lib/reactor/callbacks.js';
import type { DropInfo } from '../../../lib/reactor/callbacks.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { collectAll, connectRaw, destroyAll, readBytes, until, waitFor } from '../../helpers/net.js';
import { Server } from '../../../lib/reactor/server.js';

test('an echo server: connection, data, close events', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { host: '127.0.0.1', port: 0 }).listen();
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
  const server = await new Server(loop, { maxConnections: 2 }).listen();
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
  const a = await new Server(loop).listen();
  try {
    await new Server(loop, { port: a.port }).listen().then(
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
  // Checked by the constructor, before anything is bound.
  for (const options of bad) {
    assert.throws(() => new Server(loop, options as never), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION), JSON.stringify(options));
  }
  await loop.close();
});

test('a throwing connection handler closes that client only, with handler-error', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
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
  const server = await new Server(loop).listen();
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
  const server = await new Server(loop).listen();
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

test('built, then started: the loop holds a server from listen() to its close; listen() twice is one listen; a closed server never listens', async () => {
  const loop = new EventLoop();
  try {
    const server = new Server(loop);
    assert.is(loop.stats().servers, 0, 'a server built but not listening is not the loop\'s yet');
    assert.throws(() => server.port, (e: unknown) => isNetloopError(e, ErrorCode.LOOP_CLOSED), 'no port before listen()');
    const listening = server.listen();
    assert.is(server.listen(), listening, 'the same promise');
    assert.is(await listening, server, 'resolves with the server');
    assert.is(loop.stats().servers, 1);
    await server.close();
    assert.is(loop.stats().servers, 0);
    const never = new Server(loop);
    await never.close();
    await never.listen().then(
      () => assert.unreachable('listen after close'),
      (e: unknown) => assert.ok(isNetloopError(e, ErrorCode.LOOP_CLOSED), String(e)),
    );
    assert.is(loop.stats().servers, 0);
  } finally {
    await loop.close();
  }
  // A loop closing refuses a server that starts listening, and does not keep it.
  const closing = new EventLoop();
  const late = new Server(closing);
  const closed = closing.close();
  await late.listen().then(
    () => assert.unreachable('listen on a closing loop'),
    (e: unknown) => assert.ok(isNetloopError(e, ErrorCode.LOOP_CLOSED), String(e)),
  );
  await closed;
  assert.is(closing.stats().servers, 0);
});

test('a port in use: listen() rejects with NETLOOP_SOCKET_ERROR (EADDRINUSE) and the loop does not keep the server', async () => {
  const loop = new EventLoop();
  try {
    const first = await new Server(loop).listen();
    const second = new Server(loop, { port: first.port });
    await second.listen().then(
      () => assert.unreachable('a second listen on one port'),
      (e: unknown) => assert.ok(isNetloopError(e, ErrorCode.SOCKET_ERROR) && e.details['syscallCode'] === 'EADDRINUSE', String(e)),
    );
    assert.is(loop.stats().servers, 1);
  } finally {
    await loop.close();
  }
});

test('read taps see every chunk before it is delivered, in the order added; removed, they see nothing more; a tap that throws closes only its client', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  try {
    const seen: string[] = [];
    const first = (c: Client, chunk: Buffer): void => {
      seen.push(`first ${c.id} ${chunk.toString()}`);
    };
    const second = (_c: Client, chunk: Buffer): void => {
      seen.push(`second ${chunk.toString()}`);
    };
    assert.is(server.addReadTap(first).addReadTap(second), server, 'chainable');
    server.on('data', (c: Client, chunk: Buffer) => {
      seen.push(`data ${chunk.toString()}`);
      c.write(chunk);
    });
    const accepted = waitFor<[Client]>(server, 'connection');
    const peer = await connectRaw(server.port);
    const [client] = await accepted;
    peer.write('a');
    await readBytes(peer, 1);
    assert.equal(seen, [`first ${client.id} a`, 'second a', 'data a']);
    server.removeReadTap(first);
    peer.write('b');
    await readBytes(peer, 1);
    assert.equal(seen.slice(3), ['second b', 'data b']);
    server.removeReadTap(second);
    server.removeReadTap(second); // twice: no-op
    peer.write('c');
    await readBytes(peer, 1);
    assert.equal(seen.slice(5), ['data c']);
    assert.throws(() => server.addReadTap(42 as never), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    // A tap that throws: that client closes with handler-error, the server serves on.
    server.addReadTap(() => {
      throw new Error('tap bug');
    });
    const closed = waitFor<[Client, string]>(server, 'close');
    peer.write('d');
    const [c, reason] = await closed;
    assert.is(c, client);
    assert.is(reason, 'handler-error');
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

/** A client of the seam test below: it splits its input into lines (a protocol layer in a few lines, as the framing layer's is). */
class LineClient extends Client {
  #rest = '';
  lines: string[] = [];
  protected override _handleData(chunk: Buffer): void {
    const parts = (this.#rest + chunk.toString('utf8')).split('\n');
    this.#rest = parts.pop()!;
    for (const line of parts) {
      this.lines.push(line);
      this.write(`${line.length}\n`);
    }
  }
}

/** A server of LineClients: the client factory is the one thing it changes. */
class LineServer extends Server<LineClient, ServerBaseEvents<LineClient>> {
  protected override _createClient(socket: net.Socket): LineClient {
    return new LineClient(this.loop, socket, this, this._cfg);
  }
}

test("the seams: a subclass's client factory makes its own clients, whose _handleData gets every chunk (after the read taps); the socket keeps one 'data' listener; replies leave in the read's flush", async () => {
  const loop = new EventLoop();
  const server = await new LineServer(loop).listen();
  try {
    const tapped: number[] = [];
    server.addReadTap((_c, chunk) => void tapped.push(chunk.length));
    const accepted = waitFor<[LineClient]>(server, 'connection');
    const peer = await connectRaw(server.port);
    const [client] = await accepted;
    assert.ok(client instanceof LineClient);
    assert.is(client.socket.listenerCount('data'), 1, "the reactor's one shared listener");
    const counts = readBytes(peer, 4);
    peer.write('ab\ncde\n');
    assert.is((await counts).toString(), '2\n3\n');
    assert.equal(client.lines, ['ab', 'cde']);
    assert.equal(tapped, [7]);
    assert.is(loop.getClient(client.id), client);
    await destroyAll(peer);
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
