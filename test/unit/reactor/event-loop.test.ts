import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { LoopClient } from '../../../lib/reactor/loop-member.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { collectAll, connectRaw, destroyAll, until, waitFor, withTimeout } from '../../helpers/net.js';
import { Server } from '../../../lib/reactor/server.js';
import { Connector } from '../../../lib/reactor/connector.js';

test('queueInLoop runs later, FIFO, never re-entrantly', async () => {
  const loop = new EventLoop();
  const log: string[] = [];
  let depth = 0;
  const all = new Promise<void>((resolve) => {
    loop.queueInLoop(() => {
      depth++;
      log.push('a');
      loop.queueInLoop(() => {
        assert.is(depth, 0, 'queued from a functor: runs after it returned');
        log.push('c');
        resolve();
      });
      log.push('a-end');
      depth--;
    });
    loop.queueInLoop(() => log.push('b'));
    log.push('sync');
  });
  assert.equal(log, ['sync']);
  assert.is(loop.stats().pendingFunctors, 2);
  await all;
  assert.equal(log, ['sync', 'a', 'a-end', 'b', 'c']);
});

test('a throwing functor does not lose the ones queued after it', async () => {
  const loop = new EventLoop();
  const log: string[] = [];
  const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
  loop.queueInLoop(() => {
    throw new Error('functor failed');
  });
  const done = new Promise<void>((resolve) => {
    loop.queueInLoop(() => log.push('after'));
    loop.queueInLoop(resolve);
  });
  assert.match(String(await uncaught), /functor failed/);
  await done;
  assert.equal(log, ['after']);
});

test('runAfter and runEvery on the real monotonic clock; cancel works once', async () => {
  const loop = new EventLoop();
  const start = loop.now();
  const firedAt = await new Promise<number>((resolve) => loop.runAfter(15, () => resolve(loop.now())));
  assert.ok(firedAt - start >= 15);
  let n = 0;
  await new Promise<void>((resolve) => {
    const id = loop.runEvery(2, () => {
      if (++n === 3) {
        assert.ok(loop.cancel(id), 'cancel from inside its own callback');
        assert.not.ok(loop.cancel(id), 'twice is a no-op');
        resolve();
      }
    });
  });
  assert.is(loop.stats().timers, 0);
  const id = loop.runAfter(1000, () => assert.unreachable('cancelled'));
  assert.ok(loop.cancel(id));
  assert.not.ok(loop.cancel(12345));
  await loop.close();
});

test('a timer can cancel another one due in the same pass (muduo #668)', () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  const log: string[] = [];
  let victim = 0;
  loop.runAfter(10, () => {
    log.push('first');
    assert.ok(loop.cancel(victim));
  });
  victim = loop.runAfter(10, () => log.push('victim'));
  const every = loop.runEvery(10, () => log.push('every'));
  clock.advance(10);
  loop.runDueTimers();
  assert.equal(log, ['first', 'every']);
  loop.cancel(every);
  assert.is(loop.stats().timers, 0);
});

test('a wall-clock jump changes nothing (muduo #168)', () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  let after = 0;
  let every = 0;
  loop.runAfter(1000, () => after++);
  const id = loop.runEvery(500, () => every++);
  clock.jumpWall(3_600_000);
  loop.runDueTimers();
  clock.jumpWall(-7_200_000);
  loop.runDueTimers();
  assert.equal([after, every], [0, 0]);
  clock.advance(500);
  loop.runDueTimers();
  assert.equal([after, every], [0, 1]);
  clock.advance(500);
  loop.runDueTimers();
  assert.equal([after, every], [1, 2]);
  loop.cancel(id);
});

test('timer arguments are validated', () => {
  const loop = new EventLoop();
  for (const f of [() => loop.runAfter(-1, () => undefined), () => loop.runEvery(0, () => undefined), () => loop.runAfter(Number.NaN, () => undefined)]) {
    assert.throws(f, (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  }
});

test('getClient, removeClient, clients() and stats', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  const peers = [await connectRaw(server.port), await connectRaw(server.port)];
  try {
    // removeClient is a graceful close: it completes once each peer reads our FIN and closes too.
    for (const p of peers) p.resume();
    await until(() => loop.clientCount === 2, 'two clients');
    const [a, b] = [...loop.clients()] as [Client, Client];
    assert.is(loop.getClient(a.id), a);
    a.write(Buffer.alloc(10));
    assert.is(loop.stats().queuedBytes, 10);
    const st = loop.stats();
    assert.equal([st.clients, st.servers, st.connectors, st.pendingFunctors], [2, 1, 0, 0]);
    const closed = waitFor<[Client, string]>(server, 'close');
    assert.ok(loop.removeClient(b.id));
    const [c, reason] = await closed;
    assert.is(c, b);
    assert.is(reason, 'removed');
    assert.not.ok(loop.removeClient(b.id));
    assert.is(loop.getClient(b.id), undefined);
    const closed2 = waitFor<[Client, string]>(server, 'close');
    assert.ok(loop.removeClient(a.id, 'session-expired'));
    assert.is((await closed2)[1], 'session-expired');
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

test('flushSliceMs: a turn out of its flush budget leaves the rest for the next turn, first in line; nothing is lost or reordered', async () => {
  // A clock that moves 1 ms at every read, so the budget runs out at the first check.
  class TickingClock extends ManualClock {
    override now(): number {
      this.advance(1);
      return super.now();
    }
  }
  for (const bad of [0, -1, Number.NaN, 0.5]) {
    assert.throws(() => new EventLoop({ flushSliceMs: bad }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION), String(bad));
  }
  const loop = new EventLoop({ clock: new TickingClock(), flushSliceMs: 1 });
  const server = await new Server(loop).listen();
  const N = 40;
  const peers: net.Socket[] = [];
  try {
    for (let i = 0; i < N; i++) peers.push(await connectRaw(server.port));
    await until(() => loop.clientCount === N, 'every client');
    const clients = [...loop.clients()];
    const got = peers.map((p) => collectAll(p));
    const pending = await new Promise<number[]>((resolve) => {
      loop.queueInLoop(() => {
        for (const c of clients) c.write('first;');
        // The writes above scheduled a turn before this immediate; that turn and
        // this one each flush 16 clients before their first clock check stops them.
        setImmediate(() => {
          const left = clients.filter((c) => c.hasDataToWrite()).length;
          // Clients still waiting get more; it must land after what they already have.
          for (const c of clients) c.write('second;');
          const leftAfter = clients.filter((c) => c.hasDataToWrite()).length;
          resolve([left, leftAfter]);
        });
      });
    });
    assert.is(pending[0], N - 32, 'each turn stopped at its first budget check');
    assert.is(pending[1], N);
    for (const c of clients) c.end();
    for (const { data } of await Promise.all(got)) assert.is(data.toString(), 'first;second;');
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

test('notice then close: append, enable writing, write-complete callback removes the client', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  const peer = await connectRaw(server.port);
  try {
    await until(() => loop.clientCount === 1, 'a client');
    const client = [...loop.clients()][0]!;
    const got = collectAll(peer);
    const closed = waitFor<[Client, string]>(server, 'close');
    const notice = Buffer.alloc(200_000, 0x61);
    client.appendToOutputBuffer(notice);
    client.enableWriting();
    client.setWriteCompleteCallback((c) => loop.removeClient(c.id));
    loop.updateClient(client);
    const { data } = await got;
    assert.is(data.length, notice.length, 'every byte was sent before the client was removed');
    assert.is((await closed)[1], 'removed');
  } finally {
    await destroyAll(peer);
    await loop.close();
  }
});

test('close(): stops accepting, flushes to a deadline, destroys the rest, resolves once', async () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  const server = await new Server(loop).listen();
  const port = server.port;
  const reader = await connectRaw(server.port);
  const stuck = await connectRaw(server.port);
  await until(() => loop.clientCount === 2, 'two clients');
  // Ports read now: a closed socket no longer reports them.
  const readerPort = reader.localPort!;
  const stuckPort = stuck.localPort!;
  const byPeer = new Map<number, LoopClient>();
  for (const c of loop.clients()) byPeer.set(c.remotePort!, c);
  const portOf = new Map<LoopClient, number>([...byPeer].map(([port, c]) => [c, port]));
  const results = new Map<number, [string, NetloopError | undefined]>();
  server.on('close', (c: Client, reason: string, err?: NetloopError) => results.set(portOf.get(c)!, [reason, err]));
  const payload = Buffer.alloc(1 << 20, 1);
  byPeer.get(readerPort)!.write(payload);
  stuck.pause();
  byPeer.get(stuckPort)!.write(Buffer.alloc(32 << 20 >> 1, 2)); // more than the kernel absorbs
  const readerGot = collectAll(reader);
  const p = loop.close({ flushTimeoutMs: 1000 });
  assert.is(loop.close(), p, 'the same promise');
  assert.ok(loop.closing);
  assert.throws(() => new Connector(loop, { port }).connect(), (e: unknown) => isNetloopError(e, ErrorCode.LOOP_CLOSED));
  await new Server(loop).listen().then(
    () => assert.unreachable('listen after close'),
    (e: unknown) => assert.ok(isNetloopError(e, ErrorCode.LOOP_CLOSED)),
  );
  const { data } = await readerGot;
  assert.is(data.length, payload.length);
  await until(() => results.has(readerPort), 'the reader to close');
  assert.equal(results.get(readerPort), ['server-close', undefined]);
  let resolved = false;
  void p.then(() => (resolved = true));
  await new Promise<void>((r) => setImmediate(r));
  assert.not.ok(resolved, 'the stuck client holds the close until the deadline');
  clock.advance(1000);
  loop.runDueTimers();
  await withTimeout(p, 5000, 'loop.close()');
  const [reason, err] = results.get(stuckPort)!;
  assert.is(reason, 'server-close');
  assert.is(err?.code, ErrorCode.CLOSE_TIMEOUT);
  assert.is(results.size, 2);
  assert.is(loop.clientCount, 0);
  assert.throws(() => loop.runAfter(1, () => undefined), (e: unknown) => isNetloopError(e, ErrorCode.LOOP_CLOSED));
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? resolve() : reject(e)));
    s.on('connect', () => {
      s.destroy();
      reject(new Error('still accepting after close'));
    });
  });
  await destroyAll(reader, stuck);
});

test('close() closes connector clients too', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  const connector = new Connector(loop, { port: server.port }).connect();
  await waitFor(connector, 'connected');
  const closed = waitFor<[Client, string]>(connector, 'close');
  await loop.close({ flushTimeoutMs: 2000 });
  assert.is((await closed)[1], 'server-close');
  const st = loop.stats();
  assert.equal([st.clients, st.timers, st.servers, st.connectors, st.pendingFunctors, st.queuedBytes], [0, 0, 0, 0, 0, 0]);
});

test.run();
