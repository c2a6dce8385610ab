/**
 * End-to-end test of the cluster chat example (examples/cluster-chat): two
 * worker processes and a real redis-server; a message from a client of one
 * worker reaches a client of the other, through the rooms adapter's channel;
 * a worker killed loses only its own connections; a Redis that does not answer is reported attempt by attempt,
 * and given up on within the documented bound, with a non-zero exit.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createChatProtocol } from '../../../examples/chat/protocol.js';
import type { Welcome } from '../../../examples/chat/protocol.js';
import { CLUSTER_CHAT_DEFAULTS, CLUSTER_CHAT_PREFIX, parseClusterChatArgs } from '../../../examples/cluster-chat/server.js';
import { REDIS_CONNECT_DEFAULTS, redisRetryDelay } from '../../../lib/cluster/redis-connect.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { spawnChild } from '../../../bench/processes.js';
import type { ChildHandle } from '../../../bench/processes.js';
import { RawChatPeer, exampleScript, startChatChild } from '../../helpers/chat.js';
import { redisServerForTests } from '../../helpers/redis-server.js';
import { refusedPort, until, withTimeout } from '../../helpers/net.js';
import { createClient } from 'redis';

const SCRIPT = exampleScript('cluster-chat', 'server.js');

test('command line: --redis is required, values are checked', () => {
  assert.equal(parseClusterChatArgs(['--redis', 'redis://127.0.0.1:1']), {
    redis: 'redis://127.0.0.1:1',
    workers: 2,
    host: '127.0.0.1',
    port: 18801,
    redisAttempts: CLUSTER_CHAT_DEFAULTS.redisAttempts,
  });
  assert.is(parseClusterChatArgs(['--redis', 'redis://x', '--redis-attempts', '3']).redisAttempts, 3);
  for (const bad of [
    [],
    ['--redis', 'http://x'],
    ['--redis', 'redis://x', '--workers', '0'],
    ['--port', '1'],
    ['--redis', 'redis://x', '--redis-attempts', '0'],
    ['--redis', 'redis://x', '--redis-attempts', '1.5'],
  ]) {
    try {
      parseClusterChatArgs(bad);
      assert.unreachable(bad.join(' '));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
    }
  }
});

test('two workers share one chat through Redis; a killed worker loses only its own clients', async () => {
  const redis = await redisServerForTests('cluster-chat example');
  if (redis === null) return;
  const p = createChatProtocol();
  const peers: RawChatPeer[] = [];
  let child: Awaited<ReturnType<typeof startChatChild>> | null = null;
  try {
    // Ready once every worker listens (the primary's summary line, not the first worker's).
    child = await startChatChild(SCRIPT, ['--redis', redis.url, '--workers', '2', '--port', '0'], /^netloop cluster chat listening on \S+:\d+/);
    const { port, handle } = child;
    // Connections are handed out round-robin: connect until both workers serve one.
    const byPid = new Map<number, RawChatPeer>();
    const seen: number[] = [];
    for (let i = 0; i < 12 && byPid.size < 2; i++) {
      const peer = await RawChatPeer.connect(port);
      peers.push(peer);
      peer.socket.write(p.frame(p.Hello, { name: `p${i}`, token: '' }));
      await until(() => peer.frames.length >= 1, 'a welcome', 10_000);
      const w = p.registry.decode(peer.frames[0]!.type, peer.frames[0]!.value).payload as Welcome;
      seen.push(w.pid);
      if (!byPid.has(w.pid)) byPid.set(w.pid, peer);
    }
    assert.is(byPid.size, 2, `clients on two workers (welcomes from pids ${seen.join(', ')})`);
    const [[pidA, a], [pidB, b]] = [...byPid.entries()] as [[number, RawChatPeer], [number, RawChatPeer]];
    a.say('from A');
    b.say('from B');
    const seqA = await a.waitAcks(2);
    const seqB = await b.waitAcks(2);
    assert.equal(seqA, seqB, 'one order for everyone');
    assert.equal(seqA.map((m) => m.content).sort(), ['from A', 'from B']);
    assert.is.not(seqA[0]!.id, seqA[1]!.id);
    // The broadcast travels on the rooms adapter's channel, which both workers subscribe to.
    const probe = createClient({ url: redis.url });
    probe.on('error', () => undefined);
    await probe.connect();
    const numsub = await probe.sendCommand<Array<string | number>>(['PUBSUB', 'NUMSUB', `${CLUSTER_CHAT_PREFIX}rooms:0`]);
    await probe.close();
    assert.is(Number(numsub[1]), 2, 'two subscribers: one adapter per worker');

    // Kill A's worker: A's connection ends, B's worker goes on.
    process.kill(pidA, 'SIGKILL');
    await until(() => a.closed, "the killed worker's client closed", 10_000);
    await handle.waitForLine(new RegExp(`^worker \\d pid ${pidA} exited \\(SIGKILL\\); starting a replacement$`), 10_000, 'the exit line');
    b.say('after the kill');
    const after = await b.waitAcks(3);
    assert.is(after[2]!.content, 'after the kill');
    assert.not.ok(b.closed);
    // The replacement (or the survivor) serves new clients, in the same chat.
    const c = await RawChatPeer.connect(port);
    peers.push(c);
    c.say('newcomer');
    await until(() => b.acks().some((m) => m.content === 'newcomer'), 'the newcomer\'s message at B', 10_000);
    void pidB;
    // SIGTERM stops the primary and its workers.
    handle.child.kill('SIGTERM');
    await handle.waitForLine(/^stopped$/, 10_000, "'stopped'");
  } finally {
    for (const peer of peers) peer.destroy();
    if (child !== null) await child.handle.kill();
    await redis.stop();
  }
});

/** Every stdout line of `handle` up to and including the first that matches `last`. */
async function linesUntil(handle: ChildHandle, last: RegExp, ms: number, what: string): Promise<string[]> {
  const lines: string[] = [];
  await handle.waitForLine((line) => lines.push(line) > 0 && last.test(line), ms, what);
  return lines;
}

/** Asserts the lines of `attempts` failed attempts on `target`: each with the time of the next, the last giving up. */
function assertAttemptLines(lines: readonly string[], target: string, attempts: number, prefix = ''): void {
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const head = `^${esc(prefix)}redis ${esc(target)}: attempt (\\d+) of ${attempts} failed \\(ECONNREFUSED\\)`;
  const next = new RegExp(`${head}; next attempt at (\\S+) \\(in (\\d+) ms\\)$`);
  const last = new RegExp(`${head}; giving up$`);
  const mine = lines.filter((l) => l.startsWith(`${prefix}redis ${target}: attempt `));
  assert.is(mine.length, attempts, mine.join('\n'));
  for (let n = 1; n < attempts; n++) {
    const m = next.exec(mine[n - 1]!);
    assert.ok(m !== null, mine[n - 1]);
    assert.is(Number(m[1]), n);
    assert.is(Number(m[3]), redisRetryDelay(n), 'the delay doubles from the initial one');
    const at = Date.parse(m[2]!);
    assert.ok(Number.isFinite(at) && Math.abs(at - Date.now()) < 60_000, `a real time of the next attempt: ${m[2]}`);
  }
  const m = last.exec(mine[attempts - 1]!);
  assert.ok(m !== null && Number(m[1]) === attempts, mine[attempts - 1]);
}

test('Redis refusing at start-up: each failed attempt is printed with the time of the next; the primary gives up within the bound, exit code 1, no worker forked', async () => {
  const port = await refusedPort();
  const attempts = 3;
  const started = Date.now();
  const handle = spawnChild({
    script: SCRIPT,
    args: ['--redis', `redis://127.0.0.1:${port}`, '--workers', '2', '--port', '0', '--redis-attempts', String(attempts)],
    timeoutMs: 60_000,
    name: 'cluster-chat',
  });
  try {
    // The documented bound: every attempt's connect timeout plus the waits between them; generous for a loaded machine.
    let bound = attempts * REDIS_CONNECT_DEFAULTS.connectTimeoutMs;
    for (let n = 1; n < attempts; n++) bound += redisRetryDelay(n);
    const lines = await linesUntil(handle, /giving up$/, bound + 10_000, 'the giving-up attempt');
    assertAttemptLines(lines, `127.0.0.1:${port}`, attempts);
    const exit = await withTimeout(handle.exited, 10_000, 'the exit after giving up');
    assert.is(exit.code, 1);
    assert.not.ok(exit.timedOut);
    assert.ok(Date.now() - started < bound + 10_000, `gave up within the bound (${Date.now() - started} ms)`);
    assert.match(handle.stderr(), new RegExp(`^cannot reach Redis at 127\\.0\\.0\\.1:${port} after ${attempts} attempts in [\\d.]+ s \\(ECONNREFUSED\\); giving up`, 'm'));
    assert.not.ok(lines.some((l) => /listening|worker \d/.test(l)), `nothing listened, no worker forked: ${lines.join(' | ')}`);
  } finally {
    await handle.kill();
  }
});

test('--help shows the Redis bound and its default', async () => {
  const handle = spawnChild({ script: SCRIPT, args: ['--help'], timeoutMs: 20_000, name: 'cluster-chat --help' });
  const lines = await linesUntil(handle, /--redis-attempts N /, 10_000, 'the --redis-attempts line');
  assert.match(lines.at(-1)!, new RegExp(`\\(default ${CLUSTER_CHAT_DEFAULTS.redisAttempts}\\)`));
  assert.is((await handle.exited).code, 0);
});

test('Redis lost after start-up: a replacement worker that cannot reach it gives up, and the primary stops with exit code 1', async () => {
  const redis = await redisServerForTests('cluster-chat example, Redis lost');
  if (redis === null) return;
  let child: Awaited<ReturnType<typeof startChatChild>> | null = null;
  let peer: RawChatPeer | null = null;
  try {
    child = await startChatChild(SCRIPT, ['--redis', redis.url, '--workers', '1', '--port', '0', '--redis-attempts', '2'], /^netloop cluster chat listening on \S+:\d+/);
    const { handle, port } = child;
    // The worker's pid, from its Welcome.
    const p = createChatProtocol();
    peer = await RawChatPeer.connect(port);
    peer.socket.write(p.frame(p.Hello, { name: 'w', token: '' }));
    await until(() => peer!.frames.length >= 1, 'a welcome', 10_000);
    const { pid } = p.registry.decode(peer.frames[0]!.type, peer.frames[0]!.value).payload as Welcome;
    // Redis goes away, then the worker dies: its replacement meets a Redis that is gone.
    await redis.stop();
    process.kill(pid, 'SIGKILL');
    const lines = await linesUntil(handle, /giving up$/, 30_000, "the replacement's giving-up attempt");
    const prefix = /^(\[worker 0 pid \d+\] )redis /.exec(lines.at(-1)!)?.[1];
    assert.ok(prefix !== undefined, lines.at(-1));
    assertAttemptLines(lines, `127.0.0.1:${redis.port}`, 2, prefix);
    const exit = await withTimeout(handle.exited, 15_000, 'the primary exits');
    assert.is(exit.code, 1);
    assert.match(handle.stderr(), new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${redis.port} after 2 attempts`));
    assert.match(handle.stderr(), /could not reach Redis; stopping the cluster/);
  } finally {
    peer?.destroy();
    if (child !== null) await child.handle.kill();
    await redis.stop();
  }
});

test.run();
