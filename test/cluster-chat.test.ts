/**
 * End-to-end test of the cluster chat example (examples/cluster-chat): two
 * worker processes and a real redis-server; a message from a client of one
 * worker reaches a client of the other; a worker killed loses only its own
 * connections.
 */

import { test } from './helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createChatProtocol } from '../examples/chat/protocol.js';
import type { Welcome } from '../examples/chat/protocol.js';
import { parseClusterChatArgs } from '../examples/cluster-chat/server.js';
import { ErrorCode, isNetloopError } from '../lib/errors.js';
import { RawChatPeer, exampleScript, startChatChild } from './helpers/chat.js';
import { redisServerForTests } from './helpers/redis-server.js';
import { until } from './helpers/net.js';

const SCRIPT = exampleScript('cluster-chat', 'server.js');

test('command line: --redis is required, values are checked', () => {
  assert.equal(parseClusterChatArgs(['--redis', 'redis://127.0.0.1:1']), { redis: 'redis://127.0.0.1:1', workers: 2, host: '127.0.0.1', port: 18801 });
  for (const bad of [[], ['--redis', 'http://x'], ['--redis', 'redis://x', '--workers', '0'], ['--port', '1']]) {
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

test.run();
