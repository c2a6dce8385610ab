/**
 * The worker pool with real processes: a node:cluster primary
 * (test/fixtures/pool-primary.ts) whose workers share one port on
 * 127.0.0.1; rolling restarts drain each worker (its clients get the notice
 * and a graceful close, then reconnect to a worker that is not the one they
 * left); a crashed worker is replaced; a fresh worker that fails stops the
 * restart with the old ones still serving; a worker that does not drain is
 * killed at the deadline. The options and the worker's side (through its
 * channel seam) are checked in this process.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventEmitter } from 'node:events';
import { spawnChild } from '../../../bench/processes.js';
import type { ChildHandle } from '../../../bench/processes.js';
import { until, withTimeout } from '../../helpers/net.js';
import { WorkerPool } from '../../../lib/cluster/worker-pool.js';
import { joinWorkerPool } from '../../../lib/cluster/join-worker-pool.js';
import type { WorkerChannel } from '../../../lib/cluster/join-worker-pool.js';
import { WORKER_MESSAGES, workerIdentity } from '../../../lib/cluster/worker-messages.js';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'pool-primary.js');
const WAIT = 20_000;

interface Event {
  event: string;
  pid?: number;
  port?: number;
  slot?: number;
  generation?: number;
  code?: string | number | null;
  signal?: string | null;
  planned?: boolean;
  killed?: boolean;
  pids?: number[];
}

/** The primary, its events as parsed lines (every one kept, each matched once, in any order of waiting). */
class Primary {
  readonly handle: ChildHandle;
  readonly #events: Event[] = [];
  readonly #used = new Set<Event>();
  constructor(args: readonly string[]) {
    this.handle = spawnChild({ script: FIXTURE, args, timeoutMs: 90_000, name: 'pool-primary' });
  }
  async next(event: string, filter: (e: Event) => boolean = () => true): Promise<Event> {
    const match = (e: Event): boolean => !this.#used.has(e) && e.event === event && filter(e);
    let found = this.#events.find(match);
    if (found === undefined) {
      await this.handle.waitForLine(
        (l) => {
          if (!l.startsWith('{')) return false;
          const e = JSON.parse(l) as Event;
          this.#events.push(e);
          return match(e);
        },
        WAIT,
        `a '${event}' event`,
      );
      found = this.#events.at(-1)!;
    }
    this.#used.add(found);
    return found;
  }
  /** Starts the pool; resolves with the shared port and the workers' pids. */
  async started(): Promise<{ port: number; pids: number[] }> {
    const listening = await this.next('listening');
    const started = await this.next('started');
    return { port: listening.port!, pids: started.pids! };
  }
}

/** A raw client: the greeting's pid, every byte, and how the connection ended. */
class Peer {
  readonly socket: net.Socket;
  text = '';
  ended = false;
  reset = false;
  closed = false;
  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => (this.text += d));
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('error', () => (this.reset = true));
    this.socket.on('close', () => (this.closed = true));
  }
  static async open(port: number): Promise<Peer> {
    const p = new Peer(port);
    await until(() => /^hello \d+\n/.test(p.text) || p.closed, 'a greeting', WAIT);
    assert.ok(!p.closed, 'the connection was served');
    return p;
  }
  get pid(): number {
    return Number(/^hello (\d+)/.exec(this.text)![1]);
  }
}

/** Connects until the workers of every pid in `pids` served one; returns one peer per pid. */
async function peersOn(port: number, pids: readonly number[], peers: Peer[]): Promise<Map<number, Peer>> {
  const byPid = new Map<number, Peer>();
  for (let i = 0; i < 40 && byPid.size < pids.length; i++) {
    const p = await Peer.open(port);
    peers.push(p);
    if (!byPid.has(p.pid)) byPid.set(p.pid, p);
  }
  assert.equal([...byPid.keys()].sort(), [...pids].sort(), 'the port is served by every worker');
  return byPid;
}

test('two workers share one port; a rolling restart drains each with its notice and a graceful close; clients reconnect to the new workers', async () => {
  const primary = new Primary(['--workers', '2']);
  const peers: Peer[] = [];
  try {
    const { port, pids } = await primary.started();
    assert.is(pids.length, 2);
    const byPid = await peersOn(port, pids, peers);
    for (const p of byPid.values()) p.socket.write('ping\n');
    await until(() => [...byPid.values()].every((p) => p.text.endsWith('ping\n')), 'the echoes');

    primary.handle.send('restart');
    const restarted = await primary.next('restarted');
    const fresh = restarted.pids!;
    assert.is(fresh.length, 2);
    assert.ok(fresh.every((pid) => !pids.includes(pid)), 'every worker replaced');
    // Each old worker exited by itself (code 0), asked to, not killed.
    for (const pid of pids) {
      const exit = await primary.next('exit', (e) => e.pid === pid);
      assert.equal([exit.code, exit.signal, exit.planned, exit.killed], [0, null, true, false]);
    }
    // Every client of an old worker got its notice, then a FIN (no reset).
    for (const [pid, p] of byPid) {
      await until(() => p.closed, `the client of ${pid} closed`, WAIT);
      assert.ok(p.text.endsWith(`bye ${pid}\n`), JSON.stringify(p.text));
      assert.ok(p.ended, 'a graceful close');
      assert.not.ok(p.reset, 'not a reset');
    }
    // Reconnecting reaches only the new workers, both of them.
    await peersOn(port, fresh, peers);
  } finally {
    for (const p of peers) p.socket.destroy();
    await primary.handle.kill();
  }
});

test('a crashed worker is replaced in its slot; close() drains every worker and the primary exits', async () => {
  const primary = new Primary(['--workers', '2']);
  const peers: Peer[] = [];
  try {
    const { port, pids } = await primary.started();
    primary.handle.send('kill 1');
    const exit = await primary.next('exit', (e) => e.slot === 1);
    assert.equal([exit.signal, exit.planned, exit.killed], ['SIGKILL', false, false]);
    const ready = await primary.next('ready', (e) => e.slot === 1 && e.generation! >= 2);
    assert.ok(!pids.includes(ready.pid!));
    // The survivor kept the port: the replacement serves on it.
    await peersOn(port, [pids.find((p) => p !== exit.pid)!, ready.pid!], peers);
    primary.handle.send('close');
    const closed = await primary.next('closed');
    assert.is(closed.pids, undefined);
    const end = await withTimeout(primary.handle.exited, WAIT, 'the primary to exit');
    assert.is(end.code, 0);
    for (const p of peers) await until(() => p.closed, 'every client closed', WAIT);
    assert.ok(peers.every((p) => p.ended && !p.reset), 'closed gracefully');
  } finally {
    for (const p of peers) p.socket.destroy();
    await primary.handle.kill();
  }
});

test('a fresh worker that exits before it is ready stops the restart (NETLOOP_WORKER_FAILED); the old workers go on serving', async () => {
  const primary = new Primary(['--workers', '2', '--fail-from', '2']);
  const peers: Peer[] = [];
  try {
    const { port, pids } = await primary.started();
    primary.handle.send('restart');
    const failed = await primary.next('restart-failed');
    assert.is(failed.code, ErrorCode.WORKER_FAILED);
    assert.equal([...failed.pids!].sort(), [...pids].sort(), 'the old workers still hold their slots');
    await peersOn(port, pids, peers);
  } finally {
    for (const p of peers) p.socket.destroy();
    await primary.handle.kill();
  }
});

test('a fresh worker that never reports ready is killed at readyTimeoutMs; the restart fails', async () => {
  const primary = new Primary(['--workers', '1', '--silent-from', '1', '--ready-timeout', '1500']);
  try {
    const { pids } = await primary.started();
    const started = Date.now();
    primary.handle.send('restart');
    const failed = await primary.next('restart-failed');
    assert.is(failed.code, ErrorCode.WORKER_FAILED);
    assert.ok(Date.now() - started >= 1_400, 'not before the deadline');
    const exit = await primary.next('exit', (e) => e.generation === 1);
    assert.equal([exit.signal, exit.planned, exit.killed], ['SIGKILL', true, true]);
    assert.equal(failed.pids, pids);
  } finally {
    await primary.handle.kill();
  }
});

test('a worker that does not drain is killed at drainTimeoutMs, and the restart goes on', async () => {
  const primary = new Primary(['--workers', '1', '--ignore-drain-from', '0', '--drain-timeout', '1000']);
  try {
    const { pids } = await primary.started();
    primary.handle.send('restart');
    const exit = await primary.next('exit', (e) => e.pid === pids[0]);
    assert.equal([exit.signal, exit.planned, exit.killed], ['SIGKILL', true, true]);
    const restarted = await primary.next('restarted');
    assert.is(restarted.pids!.length, 1);
    assert.is.not(restarted.pids![0], pids[0]);
  } finally {
    await primary.handle.kill();
  }
});

test('a replacement of a crashed worker that fails is reported (error event), not forked again', async () => {
  const primary = new Primary(['--workers', '2', '--fail-from', '2']);
  try {
    await primary.started();
    primary.handle.send('kill 0');
    await primary.next('exit', (e) => e.slot === 0 && e.generation === 0);
    const err = await primary.next('error');
    assert.is(err.code, ErrorCode.WORKER_FAILED);
    const exit = await primary.next('exit', (e) => e.generation === 2);
    assert.equal([exit.code, exit.planned], [2, false]);
  } finally {
    await primary.handle.kill();
  }
});

// ─── in this process ─────────────────────────────────────────────────────────

test('WorkerPool options are validated', async () => {
  for (const bad of [{ workers: 0 }, { workers: 1.5 }, { workers: 1025 }, { readyTimeoutMs: 0 }, { drainTimeoutMs: -1 }, { respawn: 'yes' }, { env: { A: 1 } }, { env: [] }]) {
    try {
      new WorkerPool(bad as never);
      assert.unreachable(JSON.stringify(bad));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), JSON.stringify(bad));
    }
  }
  const pool = new WorkerPool({ workers: 3 });
  assert.is(pool.size, 3);
  assert.equal(pool.workers(), []);
  try {
    await pool.restart();
    assert.unreachable('restart before start');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.LOOP_CLOSED));
  }
  await pool.close();
  assert.ok(pool.closing);
  try {
    await pool.start();
    assert.unreachable('start after close');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.LOOP_CLOSED));
  }
});

test('workerIdentity: the slot and generation from the environment, null outside a pool, malformed values coded', () => {
  assert.equal(workerIdentity({ NETLOOP_WORKER_SLOT: '1', NETLOOP_WORKER_GENERATION: '7' }), { slot: 1, generation: 7 });
  assert.is(workerIdentity({}), null);
  try {
    workerIdentity({ NETLOOP_WORKER_SLOT: 'x', NETLOOP_WORKER_GENERATION: '0' });
    assert.unreachable();
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
  }
});

/** A channel to a primary for the worker's side, as `process` is one in a cluster worker. */
class Channel extends EventEmitter implements WorkerChannel {
  readonly sent: unknown[] = [];
  send = (message: unknown): boolean => this.sent.push(message) > 0;
}

test('joinWorkerPool: ready at once; a drain request closes the server gracefully with the notice, once; the disposer stops listening', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { port: 0 }).listen();
  const channel = new Channel();
  const drained: unknown[] = [];
  joinWorkerPool(server, { channel, exit: false, notice: 'bye\n', flushTimeoutMs: 2_000, onDrained: (e) => drained.push(e) });
  assert.equal(channel.sent, [{ type: WORKER_MESSAGES.ready }]);
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  let text = '';
  let ended = false;
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  socket.on('end', () => (ended = true));
  await until(() => server.clientCount === 1, 'the connection accepted');
  channel.emit('message', { type: 'something else' });
  assert.not.ok(server.closing);
  channel.emit('message', { type: WORKER_MESSAGES.drain });
  channel.emit('disconnect');
  await until(() => drained.length === 1, 'drained');
  assert.equal(drained, [undefined]);
  assert.ok(server.closing);
  await until(() => ended, 'the FIN');
  assert.is(text, 'bye\n');
  socket.destroy();
  assert.is(channel.listenerCount('message') + channel.listenerCount('disconnect'), 0);
  await loop.close();

  // The disposer: a drain request afterwards does nothing.
  const loop2 = new EventLoop();
  const server2 = await new Server(loop2, { port: 0 }).listen();
  const channel2 = new Channel();
  const dispose = joinWorkerPool(server2, { channel: channel2, exit: false });
  dispose();
  channel2.emit('message', { type: WORKER_MESSAGES.drain });
  assert.not.ok(server2.closing);
  await loop2.close();
});

test('joinWorkerPool: a close that fails is handed to onDrained; bad options and a process without a primary are coded', async () => {
  const channel = new Channel();
  const failure = new Error('store down');
  const got: unknown[] = [];
  joinWorkerPool({ close: () => Promise.reject(failure) }, { channel, exit: false, onDrained: (e) => got.push(e) });
  channel.emit('disconnect');
  await until(() => got.length === 1, 'onDrained');
  assert.is(got[0], failure);
  for (const [target, options] of [
    [null, {}],
    [{ close: () => Promise.resolve() }, { flushTimeoutMs: -1, channel }],
    [{ close: () => Promise.resolve() }, { exit: 'no', channel }],
    [{ close: () => Promise.resolve() }, { onDrained: 1, channel }],
    [{ close: () => Promise.resolve() }, { stores: [1], channel }],
  ] as const) {
    try {
      joinWorkerPool(target as never, options as never);
      assert.unreachable(JSON.stringify(options));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), JSON.stringify(options));
    }
  }
  // A process not forked with an IPC channel has no process.send.
  const noIpc = { on: () => undefined, off: () => undefined } as WorkerChannel;
  try {
    joinWorkerPool({ close: () => Promise.resolve() }, { channel: noIpc });
    assert.unreachable('joined without a channel');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.UNSUPPORTED));
  }
});

test.run();
