import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import { settleAll } from '../../../lib/reactor/graceful-close.js';
import { collectAll, connectRaw, destroyAll, pattern, until, withTimeout } from '../../helpers/net.js';
import { Server } from '../../../lib/reactor/server.js';

const G = suite('graceful-close');

/** Connects `n` raw peers and resolves once the server holds them all, with their server-side clients in order. */
async function connectPeers(server: import('../../../lib/reactor/server.js').Server, n: number): Promise<{ peers: net.Socket[]; clients: Client[] }> {
  const clients: Client[] = [];
  const onConn = (c: Client): void => {
    clients.push(c);
  };
  server.on('connection', onConn);
  const peers: net.Socket[] = [];
  for (let i = 0; i < n; i++) peers.push(await connectRaw(server.port));
  await until(() => clients.length === n, `${n} clients`);
  server.off('connection', onConn);
  return { peers, clients };
}

G('close() under traffic (faults.test.ts item 14): stop accepting, notice, drain to the deadline, destroy the rest, one close each, resolve once', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { softOutputLimit: null }).listen();
  const closes = new Map<number, Array<{ reason: CloseReason; code: string | undefined }>>();
  server.on('close', (c: Client, reason: CloseReason, err?: NetloopError) => {
    const list = closes.get(c.id) ?? [];
    list.push({ reason, code: err?.code });
    closes.set(c.id, list);
  });
  // Echo while open; once closing, appends are refused, so the handler checks.
  server.on('data', (c: Client, chunk: Buffer) => {
    if (!c.closing && !c.closed) c.write(chunk);
  });
  const order: string[] = [];
  const store = new MemoryStore();
  const settleTarget = {
    close: async (): Promise<void> => {
      order.push(`settle with ${server.clientCount} clients left`);
      await store.close();
    },
  };
  const N = 12;
  const { peers, clients } = await connectPeers(server, N);
  const stuckPeer = peers[N - 1]!;
  const stuck = clients[N - 1]!;
  try {
    // The last peer never reads: 24 MiB queued for it cannot drain before the deadline.
    stuckPeer.pause();
    for (let i = 0; i < 24; i++) stuck.write(pattern(1024 * 1024, i));
    // Every other peer keeps sending while the server closes.
    const received = peers.slice(0, N - 1).map((p) => collectAll(p, 10_000));
    let sending = true;
    const pumps = peers.slice(0, N - 1).map(async (p, i) => {
      while (sending && !p.destroyed && p.writable) {
        p.write(pattern(512, i));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    });
    await new Promise<void>((resolve) => setTimeout(resolve, 30));
    let resolutions = 0;
    const t0 = Date.now();
    const p1 = server.close({ notice: 'server going down\n', flushTimeoutMs: 400, settle: [settleTarget] });
    const p2 = server.close({ flushTimeoutMs: 1 });
    assert.is(p1, p2, 'the same promise: close runs once');
    void p1.then(() => resolutions++);
    // Stop accepting at once: a new connection is refused.
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: server.port });
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.is(refused, 'ECONNREFUSED');
    await withTimeout(p1, 5_000, 'server.close()');
    const took = Date.now() - t0;
    sending = false;
    await Promise.all(pumps);
    assert.ok(took >= 350, `the stuck client was given its deadline (${took} ms)`);
    assert.ok(took < 3_000, `and no more (${took} ms)`);
    for (const r of await Promise.all(received)) {
      assert.is(r.data.subarray(-18).toString(), 'server going down\n', 'the notice is the last thing every reading peer got');
    }
    assert.is(closes.size, N, 'every client closed');
    for (const [id, list] of closes) {
      assert.is(list.length, 1, `exactly one close for client ${id}`);
      if (id === stuck.id) assert.equal(list[0], { reason: 'server-close', code: ErrorCode.CLOSE_TIMEOUT });
      else assert.equal(list[0], { reason: 'server-close', code: undefined });
    }
    assert.equal(order, ['settle with 0 clients left'], 'stores settle once, after every client closed');
    let storeCode: unknown;
    try {
      await store.get('x');
    } catch (err) {
      storeCode = (err as NetloopError).code;
    }
    assert.is(storeCode, ErrorCode.STORE_CLOSED);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.is(resolutions, 1);
    assert.is(loop.stats().servers, 0);
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

G('a notice function gets each client; one that throws closes only that client (handler-error)', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, {}).listen();
  const { peers, clients } = await connectPeers(server, 3);
  const reasons = new Map<number, CloseReason>();
  server.on('close', (c: Client, reason: CloseReason) => reasons.set(c.id, reason));
  try {
    const got = peers.map((p) => collectAll(p));
    const bad = clients[1]!;
    await server.close({
      flushTimeoutMs: 1_000,
      notice: (c) => {
        if (c === bad) throw new Error('notice bug');
        return `bye ${c.id}\n`;
      },
    });
    const data = await Promise.all(got);
    assert.is(data[0]!.data.toString(), `bye ${clients[0]!.id}\n`);
    assert.is(data[2]!.data.toString(), `bye ${clients[2]!.id}\n`);
    assert.is(data[1]!.data.length, 0);
    assert.is(reasons.get(bad.id), 'handler-error');
    assert.is(reasons.get(clients[0]!.id), 'server-close');
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

G('loop.close() passes the notice to its servers and settles its stores last', async () => {
  const loop = new EventLoop();
  const a = await new Server(loop, {}).listen();
  const b = await new Server(loop, {}).listen();
  const pa = await connectPeers(a, 1);
  const pb = await connectPeers(b, 1);
  let settled = 0;
  try {
    const got = [collectAll(pa.peers[0]!), collectAll(pb.peers[0]!)];
    await loop.close({
      notice: Buffer.from([0xde, 0xad]),
      flushTimeoutMs: 1_000,
      settle: [{ flush: async () => void settled++ }],
    });
    for (const r of await Promise.all(got)) assert.equal([...r.data], [0xde, 0xad]);
    assert.is(settled, 1);
    assert.is(loop.stats().clients, 0);
  } finally {
    await destroyAll(...pa.peers, ...pb.peers);
  }
});

G('settle failures reject once everything settled; a store slower than the deadline is NETLOOP_CLOSE_TIMEOUT', async () => {
  let second = false;
  let code: unknown;
  try {
    await settleAll(
      [
        { close: () => Promise.reject(new Error('disk on fire')) },
        {
          close: async () => {
            await new Promise<void>((resolve) => setTimeout(resolve, 20));
            second = true;
          },
        },
      ],
      1_000,
    );
  } catch (err) {
    code = (err as Error).message;
  }
  assert.is(code, 'disk on fire');
  assert.ok(second, 'the other store was still settled');
  let timeout: unknown;
  try {
    await settleAll([{ flush: () => new Promise<void>(() => undefined) }, { close: () => Promise.reject(new Error('late')) }], 30);
  } catch (err) {
    timeout = err;
  }
  // Every target is waited for (up to the deadline), so a hanging one makes it a timeout even when another failed.
  assert.ok(isNetloopError(timeout, ErrorCode.CLOSE_TIMEOUT));
  assert.is((timeout as NetloopError).details['targets'], 2);
  let sync: unknown;
  try {
    await settleAll(
      [
        {
          close: () => {
            throw new Error('sync');
          },
        },
      ],
      30,
    );
  } catch (err) {
    sync = err;
  }
  assert.is((sync as Error).message, 'sync');
});

G('bad close options are refused with NETLOOP_INVALID_OPTION before anything closes', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, {}).listen();
  try {
    for (const opts of [{ notice: 42 }, { settle: [{}] }, { settle: 'store' }] as unknown[]) {
      assert.throws(
        () => server.close(opts as Parameters<typeof server.close>[0]),
        (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION),
      );
    }
    assert.not.ok(server.closing, 'a refused close did not start closing');
    assert.throws(() => loop.close({ notice: 1 as unknown as string }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  } finally {
    await loop.close();
  }
});

G.run();
