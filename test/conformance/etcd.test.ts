/**
 * The store conformance suite of `netloop/testing` against the EtcdStore, on
 * a real `etcd` started on free loopback ports (test/helpers/etcd-server.ts),
 * one key prefix per test.
 *
 * Without `etcd` on the PATH the file is skipped with a loud notice, except
 * under CI (`CI=true`), where that is a failure.
 */

import { suite, test } from '../helpers/uvu.js';
import { EtcdStore } from '../../lib/store/etcd/etcd-store.js';
import type { SessionStore } from '../../lib/store/contract.js';
import type { ManualClock } from '../../lib/core/clock.js';
import { storeConformance } from '../../lib/testing.js';
import { etcdServerForTests } from '../helpers/etcd-server.js';

const server = await etcdServerForTests('the EtcdStore conformance suite (test/conformance/etcd.test.ts)');

if (server !== null) {
  const hosts = [...server.endpoints];
  let serial = 0;
  const open = (prefix: string, clock: ManualClock): EtcdStore =>
    new EtcdStore({ hosts, prefix, clock, expiryGraceMs: 600_000, commandTimeoutMs: 10_000 });
  storeConformance({
    name: 'etcd',
    // A second store over the same data: another process's view, with its own client and watch.
    createPeer: (store: SessionStore, clock: ManualClock) => open((store as EtcdStore).prefix, clock),
    test,
    // The suite's clock stands still while real time runs, and its model test touches
    // records with TTLs down to 1 ms: a grace keeps etcd's leases (which run in real
    // time) from removing a record the virtual clock still holds live. Liveness itself
    // follows the clock.
    createStore: (clock) => open(`conf${++serial}/`, clock),
    async disposeStore(store: SessionStore) {
      // The suite closed the store: a second one on the same prefix removes its keys.
      const purger = new EtcdStore({ hosts, prefix: (store as EtcdStore).prefix, commandTimeoutMs: 10_000 });
      try {
        await purger.purgeKeys();
      } finally {
        await purger.close();
      }
    },
    modelRuns: 8,
  });
  test.run();

  const teardown = suite('etcd conformance: teardown');
  teardown('stop the etcd server', async () => {
    await server.stop();
  });
  teardown.run();
}
