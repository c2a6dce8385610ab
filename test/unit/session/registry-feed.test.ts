/**
 * The registry over a shared store (Redis, a real `redis-server` on a free
 * loopback port): ends decided in another process reach this one through
 * the change feed; when a change is lost, `reconcile()` (and the feed's
 * reconnection) ends what is gone with the reason of its tombstone.
 *
 * Without `redis-server` on the PATH the file is skipped with a loud
 * notice, except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createClient } from 'redis';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import type { SessionEndEvent, SessionEventName } from '../../../lib/session/types.js';
import { RedisStore } from '../../../lib/store/redis/redis-store.js';
import type { SessionChange } from '../../../lib/store/contract.js';
import { redisServerForTests } from '../../helpers/redis-server.js';
import { withTimeout } from '../../helpers/net.js';

const server = await redisServerForTests('the registry feed tests (test/unit/session/registry-feed.test.ts)');

type Ended = { name: SessionEventName; payload: SessionEndEvent };

if (server !== null) {
  const url = server.url;
  let serial = 0;
  const s = suite('registry over a shared store');

  /** Two registries (two processes' views) on one prefix; `a` records its end events. */
  const pair = async (): Promise<{ a: SessionRegistry; b: SessionRegistry; ended: Ended[]; done(): Promise<void>; upA: Promise<void> }> => {
    const prefix = `rf${++serial}:`;
    const storeA = new RedisStore({ url, prefix, commandTimeoutMs: 10_000, reconnectMaxDelayMs: 100 });
    const storeB = new RedisStore({ url, prefix, commandTimeoutMs: 10_000 });
    const upA = withTimeout(new Promise<void>((resolve) => storeA.once('feed', (st) => st === 'up' && resolve())), 10_000, "A's feed");
    const a = new SessionRegistry({ store: storeA, processId: 'A', autoAudit: false, reconcileIntervalMs: 0 });
    const b = new SessionRegistry({ store: storeB, processId: 'B', autoAudit: false, reconcileIntervalMs: 0 });
    const ended: Ended[] = [];
    for (const name of ['expired', 'replaced', 'kicked', 'deleted', 'closed'] as const) {
      a.on(name, (payload: SessionEndEvent) => void ended.push({ name, payload }));
    }
    return {
      a,
      b,
      ended,
      upA,
      async done() {
        await a.close();
        await b.close();
        await storeA.close();
        await storeB.close();
      },
    };
  };

  const endOf = (ended: Ended[], id: string, what: string): Promise<Ended> =>
    withTimeout(
      new Promise<Ended>((resolve) => {
        const check = (): void => {
          const e = ended.find((x) => x.payload.session.id === id);
          if (e !== undefined) resolve(e);
          else setTimeout(check, 2);
        };
        check();
      }),
      10_000,
      what,
    );

  s('a kick, a delete and a replace decided in another process end the session here with their reasons', async () => {
    const { a, b, ended, upA, done } = await pair();
    try {
      await upA;
      const k = await a.create({ userId: 'k', connectionId: 'A:1' });
      const d = await a.create({ userId: 'd', connectionId: 'A:2' });
      const r = await a.create({ userId: 'r', connectionId: 'A:3' });
      const kept = await a.create({ userId: 'x', connectionId: 'A:4' });
      assert.ok(await b.kick(k.session.id, 'banned'));
      assert.ok(await b.delete(d.session.id, 'logout'));
      // Another process resumes r with its token: r's connection here is let go of as replaced.
      await b.resume(r.token, 'B:9');
      const ek = await endOf(ended, k.session.id, 'the kick');
      assert.is(ek.name, 'kicked');
      assert.is(ek.payload.reason, 'banned');
      assert.is(ek.payload.connectionId, 'A:1');
      assert.ok(ek.payload.remote);
      const ed = await endOf(ended, d.session.id, 'the delete');
      assert.is(ed.name, 'deleted');
      assert.is(ed.payload.reason, 'logout');
      const er = await endOf(ended, r.session.id, 'the resume elsewhere');
      assert.is(er.name, 'replaced');
      assert.is(er.payload.reason, 'resumed-elsewhere');
      assert.is((await b.get(r.session.id))!.connectionId, 'B:9', "the other process's resume stands");
      assert.ok(a.handle(kept.session.id) !== undefined, 'an untouched session stays');
      assert.is((await a.stats()).counters.endedRemotely, 3);
      assert.ok(await a.isOnline('x'));
      assert.ok(await b.isOnline('x'), 'presence across processes');
      assert.not.ok(await b.isOnline('k'));
    } finally {
      await done();
    }
  });

  s('a lost change: reconcile() ends what is gone with its tombstone\'s reason, else expired; a feed reconnection reconciles by itself', async () => {
    const { a, b, ended, upA, done } = await pair();
    const admin = createClient({ url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      await upA;
      const kicked = await a.create({ userId: 'k', connectionId: 'A:1' });
      const gone = await a.create({ userId: 'g', connectionId: 'A:2' });
      const moved = await a.create({ userId: 'm', connectionId: 'A:3' });
      const kept = await a.create({ userId: 'x', connectionId: 'A:4' });
      const store = b.store as RedisStore;
      // Changes that never reach A: written with A's own origin (which A ignores), or not published at all.
      const change: SessionChange = { kind: 'ended', id: kicked.session.id, connectionId: 'A:1', userId: 'k', reason: 'kicked', detail: 'spam', origin: 'A', at: Date.now() };
      await store.delete(kicked.session.id);
      await store.publish(change);
      await store.delete(gone.session.id);
      const rec = await store.get(moved.session.id);
      await store.set({ ...rec!, connectionId: 'B:7' });
      assert.is(await a.reconcile(), 3);
      const byId = (id: string): Ended => ended.find((e) => e.payload.session.id === id)!;
      assert.is(byId(kicked.session.id).name, 'kicked');
      assert.is(byId(kicked.session.id).payload.reason, 'spam');
      assert.is(byId(gone.session.id).name, 'expired');
      assert.is(byId(moved.session.id).name, 'replaced');
      assert.ok(a.handle(kept.session.id) !== undefined, 'a session still bound here stays');
      assert.is(await a.reconcile(), 0, 'nothing more to do');

      // Lost while the subscription was down: the reconnection reconciles.
      const later = await a.create({ userId: 'l', connectionId: 'A:5' });
      await store.delete(later.session.id);
      await store.publish({ ...change, id: later.session.id, connectionId: 'A:5', userId: 'l', reason: 'deleted', detail: 'admin' });
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      const e = await endOf(ended, later.session.id, 'the reconciliation after the reconnection');
      assert.is(e.name, 'deleted');
      assert.is(e.payload.reason, 'admin');
    } finally {
      await admin.close();
      await done();
    }
  });

  s('a write that finds its session gone before the tombstone is written waits for it: the end has its own reason, not expired', async () => {
    const { a, b, ended, upA, done } = await pair();
    try {
      await upA;
      const kicked = await a.create({ userId: 'k', connectionId: 'A:1' });
      const gone = await a.create({ userId: 'g', connectionId: 'A:2' });
      const store = b.store as RedisStore;
      // Another process's kick, caught between its two steps: the session deleted, its tombstone and change not yet written.
      await store.delete(kicked.session.id);
      await store.delete(gone.session.id);
      await a.heartbeat(kicked.session.id);
      await a.heartbeat(gone.session.id);
      await a.flush();
      assert.is(ended.length, 0, 'a session found gone with no tombstone is not called expired at once');
      const change: SessionChange = { kind: 'ended', id: kicked.session.id, connectionId: 'A:1', userId: 'k', reason: 'kicked', detail: 'spam', origin: 'B', at: Date.now() };
      await store.publish(change);
      const e = await endOf(ended, kicked.session.id, 'the kick to reach A');
      assert.is(e.name, 'kicked');
      assert.is(e.payload.reason, 'spam');
      // No process ends the other one: after the wait it is expired (the store lost it).
      const g = await endOf(ended, gone.session.id, 'the session gone for good to end');
      assert.is(g.name, 'expired');
      assert.is(g.payload.reason, 'store');
    } finally {
      await done();
    }
  });

  s.run();

  const teardown = suite('registry feed: teardown');
  teardown('stop the redis server', async () => {
    await server.stop();
  });
  teardown.run();
}
