/**
 * The Redis Cluster harness itself (test/helpers/redis-cluster.ts) against
 * three real `redis-server` masters: the cluster forms with every slot
 * covered, the harness's slot function agrees with Redis, node-redis's
 * `createCluster` spreads keys of different slots over different nodes, a
 * stopped master takes the cluster down and its restart brings it back (with
 * its own keys gone: no persistence), a paused node answers nothing, and
 * stop leaves neither a process nor a folder behind. The suite's skip/fail
 * policy is checked with an empty PATH.
 *
 * Without `redis-server` and `redis-cli` on the PATH the cluster tests are
 * skipped with a loud notice, except under CI (`CI=true`), where that is a
 * failure.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createClient, createCluster } from 'redis';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { ErrorCodeValue } from '../../../lib/core/errors.js';
import { CLUSTER_SLOTS, keySlot, redisClusterForTests, redisCommand, startRedisCluster } from '../../helpers/redis-cluster.js';
import type { RedisCluster } from '../../helpers/redis-cluster.js';
import { connectRaw, until } from '../../helpers/net.js';
import { processAlive } from '../../helpers/server-process.js';

async function rejectsWith(promise: Promise<unknown>, code: ErrorCodeValue, what: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isNetloopError(err, code), `${what}: ${String(err)}`);
    return;
  }
  assert.unreachable(`${what} resolved`);
}

/** Runs `fn` with PATH emptied and CI set as given, then restores both. */
async function withEnv<T>(ci: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = { PATH: process.env['PATH'], CI: process.env['CI'] };
  process.env['PATH'] = '';
  if (ci === undefined) delete process.env['CI'];
  else process.env['CI'] = ci;
  try {
    return await fn();
  } finally {
    process.env['PATH'] = saved.PATH;
    if (saved.CI === undefined) delete process.env['CI'];
    else process.env['CI'] = saved.CI;
  }
}

/** Every key on one node (KEYS is answered locally, never redirected). */
async function keysOn(cluster: RedisCluster, index: number): Promise<string[]> {
  const client = createClient({ url: cluster.nodes[index]!.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.keys('*')).sort();
  } finally {
    client.destroy();
  }
}

// Started before any suite runs: uvu starts running queued suites on a timer,
// and a suite queued after an await would race that run. A short node timeout
// keeps the failure-detection test quick.
const cluster = await redisClusterForTests('Redis Cluster harness tests (test/redis-cluster.test.ts)', { nodeTimeoutMs: 1_000 });

const policy = suite('redis cluster harness: policy when redis is absent');

policy('under CI a missing redis-server is a failure (NETLOOP_STORE_UNAVAILABLE)', async () => {
  await withEnv('true', () => rejectsWith(redisClusterForTests('policy check'), ErrorCode.STORE_UNAVAILABLE, 'CI=true'));
});

policy('elsewhere it resolves null and prints a loud notice naming the skipped tests', async () => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.is(await withEnv(undefined, () => redisClusterForTests('the policy check')), null);
  } finally {
    process.stderr.write = write;
  }
  const notice = written.join('');
  assert.match(notice, 'SKIPPED: the policy check');
  assert.match(notice, 'redis-server and redis-cli not on the PATH');
});

policy('fewer than three masters is refused (NETLOOP_INVALID_OPTION)', async () => {
  await rejectsWith(startRedisCluster({ masters: 2 }), ErrorCode.INVALID_OPTION, 'masters: 2');
});

policy('keySlot follows the hash-tag rule', () => {
  // The specification's example: "123456789" hashes to CRC16 0x31C3 = 12739.
  assert.is(keySlot('123456789'), 0x31c3 % CLUSTER_SLOTS);
  assert.is(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
  // An empty first tag means no tag: the whole key is hashed, not the later "{bar}".
  assert.is.not(keySlot('foo{}{bar}'), keySlot('bar'));
  assert.is(keySlot('foo{{bar}}zap'), keySlot('{bar'));
  assert.is(keySlot('foo{bar}{zap}'), keySlot('bar'));
});

policy.run();

if (cluster !== null) {
  const s = suite('redis cluster harness');

  s('forms three masters on loopback ports, every slot covered, state ok everywhere', async () => {
    assert.is(cluster.nodes.length, 3);
    const ports = new Set(cluster.nodes.flatMap((n) => [n.port, n.busPort]));
    assert.is(ports.size, 6, 'client and bus ports are all distinct');
    const covered = new Uint8Array(CLUSTER_SLOTS);
    for (const node of cluster.nodes) {
      assert.ok(node.running && processAlive(node.pid));
      assert.is(node.url, `redis://127.0.0.1:${node.port}`);
      assert.ok(node.slots.length > 0);
      for (const [first, last] of node.slots) covered.fill(1, first, last + 1);
      const info = await cluster.clusterInfo(node.index);
      assert.is(info['cluster_state'], 'ok');
      assert.is(info['cluster_known_nodes'], '3');
      assert.is(info['cluster_slots_assigned'], String(CLUSTER_SLOTS));
    }
    assert.ok(covered.every((c) => c === 1), 'every slot has an owner');
    assert.equal(cluster.rootNodes, cluster.nodes.map((n) => ({ url: n.url })));
  });

  s('keySlot and nodeForKey agree with the servers (CLUSTER KEYSLOT, CLUSTER COUNTKEYSINSLOT)', async () => {
    const keys = ['a', 'b', 'session:1', 'user:{42}:sessions', '{}x', 'a{}{b}', 'x{y}z', 'ключ', '😀'];
    for (const key of keys) {
      assert.is(String(keySlot(key)), await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', key]), key);
    }
    for (let i = 0; i < 200; i++) {
      const key = `probe:${i}`;
      const slot = keySlot(key);
      const owner = cluster.nodeForKey(key);
      assert.ok(owner.slots.some(([first, last]) => first <= slot && slot <= last), key);
    }
  });

  s('createCluster connects, and keys of different slots land on different nodes', async () => {
    const client = createCluster({ rootNodes: [...cluster.rootNodes] });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `spread:${i}`);
      for (const key of keys) await client.set(key, key);
      for (const key of keys) assert.is(await client.get(key), key);
      const expected: string[][] = [[], [], []];
      for (const key of keys) expected[cluster.nodeForKey(key).index]!.push(key);
      for (const node of cluster.nodes) {
        const actual = await keysOn(cluster, node.index);
        assert.ok(actual.length > 0, `node ${node.index} holds keys`);
        assert.equal(actual, expected[node.index]!.sort(), `node ${node.index} holds exactly its slots' keys`);
      }
      // One hash tag pins keys to one node, whatever the rest of the name.
      for (let i = 0; i < 10; i++) await client.set(`{pinned}:${i}`, 'x');
      const pinned = cluster.nodeForKey('{pinned}').index;
      assert.is((await keysOn(cluster, pinned)).filter((k) => k.startsWith('{pinned}')).length, 10);
    } finally {
      client.destroy();
    }
  });

  s('a stopped master takes the cluster down; started again, it rejoins empty', async () => {
    const client = createCluster({ rootNodes: [...cluster.rootNodes] });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const onOne = Array.from({ length: 200 }, (_, i) => `down:${i}`).find((k) => cluster.nodeForKey(k).index === 1)!;
      const onZero = Array.from({ length: 200 }, (_, i) => `down:${i}`).find((k) => cluster.nodeForKey(k).index === 0)!;
      await client.set(onOne, 'one');
      await client.set(onZero, 'zero');
      const pid = cluster.nodes[1]!.pid;
      await cluster.stopNode(1, 'SIGKILL');
      assert.not.ok(cluster.nodes[1]!.running);
      assert.is(cluster.nodes[1]!.pid, -1);
      assert.not.ok(processAlive(pid));
      await cluster.waitForState('fail', { timeoutMs: 10_000 });
      let refused = '';
      try {
        await redisCommand(cluster.nodes[0]!.port, ['GET', onZero]);
      } catch (err) {
        refused = (err as Error).message;
      }
      assert.match(refused, /^CLUSTERDOWN/, 'a node of a failed cluster refuses keys');

      await cluster.startNode(1);
      assert.ok(cluster.nodes[1]!.running && processAlive(cluster.nodes[1]!.pid));
      for (const node of cluster.nodes) assert.is((await cluster.clusterInfo(node.index))['cluster_state'], 'ok');
      assert.is(await redisCommand(cluster.nodes[0]!.port, ['GET', onZero]), 'zero');
      // The restarted node kept its identity and slots (nodes.conf) but not its keys.
      assert.is(await redisCommand(cluster.nodes[1]!.port, ['GET', onOne]), null);
      assert.is(await redisCommand(cluster.nodes[1]!.port, ['SET', onOne, 'again']), 'OK');
    } finally {
      client.destroy();
    }
  });

  s('a paused node answers nothing until resumed', async () => {
    cluster.pauseNode(2);
    try {
      let timedOut = false;
      try {
        await redisCommand(cluster.nodes[2]!.port, ['PING'], 300);
      } catch (err) {
        timedOut = /timed out/.test((err as Error).message);
      }
      assert.ok(timedOut, 'a paused node answered');
    } finally {
      cluster.resumeNode(2);
    }
    assert.is(await redisCommand(cluster.nodes[2]!.port, ['PING']), 'PONG');
  });

  s('a cluster left running is killed when its test process exits (here: an uncaught throw)', async () => {
    const helper = new URL('../../helpers/redis-cluster.js', import.meta.url).href;
    const script = `const { startRedisCluster } = await import(${JSON.stringify(helper)});
      const c = await startRedisCluster();
      process.stdout.write(JSON.stringify({ pids: c.nodes.map((n) => n.pid), dir: c.dir }));
      setImmediate(() => { throw new Error('crash'); });`;
    const out = await new Promise<string>((resolve) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (_err, stdout) => resolve(stdout)),
    );
    const { pids, dir } = JSON.parse(out) as { pids: number[]; dir: string };
    assert.is(pids.length, 3);
    try {
      await until(() => pids.every((pid) => !processAlive(pid)), `nodes ${pids.join(', ')} to die with their parent`);
    } finally {
      // The folder is the caller's to remove when it never called stop().
      assert.ok(path.basename(dir).startsWith('netloop-redis-cluster-'));
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  });

  s('stop ends every node, frees the ports and removes the folder; idempotent', async () => {
    const pids = cluster.nodes.map((n) => n.pid);
    await cluster.stop();
    for (const pid of pids) assert.not.ok(processAlive(pid), `node ${pid} still runs`);
    assert.not.ok(fs.existsSync(cluster.dir), 'the folder is left');
    for (const node of cluster.nodes) {
      let refused = false;
      try {
        (await connectRaw(node.port)).destroy();
      } catch (err) {
        refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      }
      assert.ok(refused, `port ${node.port} still accepts`);
    }
    await cluster.stop();
    await rejectsWith(cluster.startNode(0), ErrorCode.STORE_CLOSED, 'startNode after stop');
  });

  s.after(async () => {
    await cluster.stop();
  });

  s.run();
}
