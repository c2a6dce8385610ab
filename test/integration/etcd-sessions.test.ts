/**
 * Session registries of two processes sharing one etcd through
 * `EtcdStore`: what one decides (a replacing login, a kick, a delete) ends
 * the session in the other through the store's change feed (an etcd watch),
 * with the right event; a session removed without any event is found by
 * the registry's reconciliation. Each registry has its own store, hence its
 * own etcd client and watch, as two processes would; etcd is real, started
 * by the harness on free loopback ports.
 *
 * ```
 *   registry A (processId a) ── EtcdStore ──┐             ┌── EtcdStore ── registry B (processId b)
 *     holds the connections a:*             └── etcd ─────┘     logs in, kicks, deletes
 *                        ◀── watch of <prefix>v/ ── publish ──
 * ```
 *
 * @module
 */

import * as assert from 'uvu/assert';
import { suite } from '../helpers/uvu.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import type { SessionEndEvent } from '../../lib/session/types.js';
import { EtcdStore } from '../../lib/store/etcd/etcd-store.js';
import { etcdServerForTests } from '../helpers/etcd-server.js';
import { until } from '../helpers/net.js';

const server = await etcdServerForTests('registries sharing an EtcdStore (test/integration/etcd-sessions.test.ts)');

/** A generous bound on one change's trip between processes on a loaded machine (the loopback p99 is milliseconds). */
const DELIVERY_MS = 5_000;

interface Ended {
  event: string;
  id: string;
  remote: boolean;
  connectionId: string | null;
}

if (server !== null) {
  const hosts = [...server.endpoints];
  let serial = 0;

  interface Ctx {
    stores: EtcdStore[];
    registries: SessionRegistry[];
  }
  const s = suite<Ctx>('registries over etcd', { stores: [], registries: [] });

  /** A registry of process `processId` over its own store on `prefix`, with every end it reports. */
  const open = async (ctx: Ctx, prefix: string, processId: string, reconcileIntervalMs = 30_000): Promise<{ registry: SessionRegistry; store: EtcdStore; ended: Ended[] }> => {
    const store = new EtcdStore({ hosts, prefix, commandTimeoutMs: 10_000, reconnectMaxDelayMs: 200 });
    const registry = new SessionRegistry({ store, policy: 'replace', processId, reconcileIntervalMs });
    ctx.stores.push(store);
    ctx.registries.push(registry);
    const ended: Ended[] = [];
    for (const event of ['replaced', 'kicked', 'deleted', 'expired', 'closed'] as const) {
      registry.on(event, (e: SessionEndEvent) => ended.push({ event, id: e.session.id, remote: e.remote === true, connectionId: e.connectionId }));
    }
    // The registry listens to the feed from its construction; wait until the watch is established.
    if (!store.feedUp) await new Promise<void>((resolve) => store.once('feed', () => resolve()));
    return { registry, store, ended };
  };

  s.after.each(async (ctx) => {
    for (const registry of ctx.registries.splice(0)) await registry.close();
    for (const store of ctx.stores.splice(0)) await store.close();
  });
  s.after(async () => {
    await server.stop();
  });

  s('40 users log in again on another process: every old session there ends as replaced, by the feed', async (ctx) => {
    const prefix = `reg${++serial}/`;
    const a = await open(ctx, prefix, 'a');
    const b = await open(ctx, prefix, 'b');
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const old = await Promise.all(users.map((userId, i) => a.registry.create({ userId, connectionId: `a:${i}` })));
    await Promise.all(users.map((userId, i) => b.registry.create({ userId, connectionId: `b:${i}` })));
    await until(() => a.ended.length === users.length, `40 replaced sessions ended on process a (${a.ended.length} so far)`, DELIVERY_MS);
    assert.equal(
      a.ended.map((e) => e.id).sort(),
      old.map((c) => c.session.id).sort(),
    );
    assert.ok(a.ended.every((e) => e.event === 'replaced' && e.remote && e.connectionId !== null && e.connectionId.startsWith('a:')));
    // Process b reports the replacements it decided, as its own (not remote).
    assert.equal(b.ended.map((e) => e.id).sort(), old.map((c) => c.session.id).sort());
    assert.ok(b.ended.every((e) => e.event === 'replaced' && !e.remote));
    assert.is(await b.store.onlineCount(), 40);
  });

  s('a kick and a delete decided on one process end the session on the other with their own events', async (ctx) => {
    const prefix = `reg${++serial}/`;
    const a = await open(ctx, prefix, 'a');
    const b = await open(ctx, prefix, 'b');
    const kicked = await a.registry.create({ userId: 'kim', connectionId: 'a:1' });
    const deleted = await a.registry.create({ userId: 'dee', connectionId: 'a:2' });
    assert.ok(await b.registry.kick(kicked.session.id));
    assert.ok(await b.registry.delete(deleted.session.id));
    await until(() => a.ended.length === 2, 'both ends reached process a', DELIVERY_MS);
    const byId = new Map(a.ended.map((e) => [e.id, e]));
    assert.is(byId.get(kicked.session.id)?.event, 'kicked');
    assert.is(byId.get(deleted.session.id)?.event, 'deleted');
    assert.ok(a.ended.every((e) => e.remote));
    assert.is((await b.store.tombstone(kicked.session.id))?.reason, 'kicked');
    assert.is(await a.store.isOnline('kim'), false);
  });

  s('a session removed with no event (deleted behind the registries) is ended by reconciliation', async (ctx) => {
    const prefix = `reg${++serial}/`;
    const a = await open(ctx, prefix, 'a', 200);
    const created = await a.registry.create({ userId: 'rae', connectionId: 'a:1' });
    // Another process's plain store: it deletes the record and publishes nothing.
    const other = new EtcdStore({ hosts, prefix, commandTimeoutMs: 10_000 });
    ctx.stores.push(other);
    assert.ok(await other.delete(created.session.id));
    await until(() => a.ended.length === 1, 'the reconciliation ended the session', DELIVERY_MS);
    assert.equal(a.ended[0], { event: 'expired', id: created.session.id, remote: true, connectionId: 'a:1' });
  });

  s.run();
}
