/**
 * The store conformance suite of `netloop/testing` against the RedisStore on
 * a real Redis Cluster of three masters (test/helpers/redis-cluster.ts),
 * keys spread over every node (a prefix without a hash tag): per-session
 * keys hash by session, per-user keys by user. The cross-instance cases run
 * with a second store on its own cluster client (sharded pub/sub for the
 * feed). A last test checks that the keys of many sessions land on every
 * master.
 *
 * Without `redis-server` or `redis-cli` on the PATH the file is skipped with
 * a loud notice, except under CI (`CI=true`), where that is a failure.
 */

import { suite, test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createCluster } from 'redis';
import { ManualClock } from '../../lib/core/clock.js';
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import type { RedisClusterLike } from '../../lib/store/redis/redis-store.js';
import type { SessionStore } from '../../lib/store/contract.js';
import { makeRecord, storeConformance } from '../../lib/testing.js';
import { redisClusterForTests, redisCommand } from '../helpers/redis-cluster.js';

const cluster = await redisClusterForTests('the RedisStore conformance suite on a cluster (test/conformance/redis-cluster.test.ts)');

if (cluster !== null) {
  type Cluster = ReturnType<typeof createCluster>;
  /** Every cluster client made, each closed at the end (a store leaves a client passed in open). */
  const clients = new Set<Cluster>();
  const connect = async (): Promise<Cluster> => {
    const c = createCluster({ rootNodes: [...cluster.rootNodes], defaults: { disableOfflineQueue: true } });
    c.on('error', () => undefined);
    await c.connect();
    clients.add(c);
    return c;
  };
  const clientOf = new Map<SessionStore, Cluster>();
  const open = async (prefix: string, clock: ManualClock): Promise<RedisStore> => {
    const client = await connect();
    const store = new RedisStore({ client: client as unknown as RedisClusterLike, prefix, clock, expiryGraceMs: 600_000, commandTimeoutMs: 10_000 });
    clientOf.set(store, client);
    return store;
  };
  const release = async (store: SessionStore): Promise<void> => {
    const client = clientOf.get(store);
    clientOf.delete(store);
    if (client !== undefined && clients.delete(client)) await client.close();
  };
  let serial = 0;
  /** The cluster clients of the peers made for a store, closed when it is disposed. */
  const peerClients = new Map<Cluster, Cluster[]>();

  storeConformance({
    name: 'redis cluster',
    test,
    createStore: (clock) => open(`cc${++serial}:`, clock),
    async createPeer(store, clock) {
      const peer = await open((store as RedisStore).prefix, clock);
      // The suite closes the peer; its cluster client goes when the test's store is disposed.
      const owner = clientOf.get(store)!;
      const peerClient = clientOf.get(peer)!;
      clientOf.delete(peer);
      peerClients.set(owner, [...(peerClients.get(owner) ?? []), peerClient]);
      return peer;
    },
    async disposeStore(store: SessionStore) {
      const purger = await open((store as RedisStore).prefix, new ManualClock());
      try {
        await purger.purgeKeys();
      } finally {
        await purger.close();
        await release(purger);
        const owner = clientOf.get(store);
        for (const c of owner === undefined ? [] : (peerClients.get(owner) ?? [])) if (clients.delete(c)) await c.close();
        await release(store);
      }
    },
    modelRuns: 4,
  });
  test.run();

  const spread = suite('redis cluster: keys spread');
  spread('the keys of 60 sessions of 20 users land on every master', async () => {
    const clock = new ManualClock(0, Date.now());
    const store = await open('spread:', clock);
    try {
      for (let i = 0; i < 60; i++) await store.create(makeRecord(clock, { userId: `user-${i % 20}`, connectionId: `conn-${i}`, expiresAt: clock.wallNow() + 60_000 }));
      assert.is(await store.count(), 60);
      for (const node of cluster.nodes) {
        const reply = await redisCommand(node.port, ['EVAL', "return #redis.call('KEYS', ARGV[1])", '0', 'spread:*']);
        assert.ok(Number(reply) > 0, `node ${node.index} (port ${node.port}) holds keys of the store (${String(reply)})`);
      }
      await store.purgeKeys();
    } finally {
      await store.close();
      await release(store);
    }
  });
  spread.run();

  const teardown = suite('redis cluster conformance: teardown');
  teardown('close the clients and stop the cluster', async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await cluster.stop();
  });
  teardown.run();
}
