/**
 * The store conformance suite of `netloop/testing` against the RedisStore,
 * on a real `redis-server` started on a free loopback port
 * (test/helpers/redis-server.ts), one key prefix per test.
 *
 * Without `redis-server` on the PATH the file is skipped with a loud notice,
 * except under CI (`CI=true`), where that is a failure.
 */

import { suite, test } from '../helpers/uvu.js';
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import type { SessionStore } from '../../lib/store/contract.js';
import { storeConformance } from '../../lib/testing.js';
import { redisServerForTests } from '../helpers/redis-server.js';

const server = await redisServerForTests('the RedisStore conformance suite (test/conformance/redis.test.ts)');

if (server !== null) {
  const url = server.url;
  let serial = 0;
  storeConformance({
    name: 'redis',
    test,
    // The suite's clock stands still while real time runs, and its model test touches
    // records with TTLs down to 1 ms: a grace keeps Redis from removing, in real time,
    // a record the virtual clock still holds live. Liveness itself follows the clock.
    createStore: (clock) => new RedisStore({ url, prefix: `conf${++serial}:`, clock, expiryGraceMs: 600_000, commandTimeoutMs: 10_000 }),
    createPeer: (store, clock) =>
      new RedisStore({ url, prefix: (store as RedisStore).prefix, clock, expiryGraceMs: 600_000, commandTimeoutMs: 10_000 }),
    async disposeStore(store: SessionStore) {
      // The suite closed the store: a second one on the same prefix removes its keys.
      const purger = new RedisStore({ url, prefix: (store as RedisStore).prefix, commandTimeoutMs: 10_000 });
      try {
        await purger.purgeKeys();
      } finally {
        await purger.close();
      }
    },
    modelRuns: 8,
  });
  test.run();

  const teardown = suite('redis conformance: teardown');
  teardown('stop the redis server', async () => {
    await server.stop();
  });
  teardown.run();
}
