/**
 * A late write from the process a client left does not undo its resume in
 * another process. Two registries (two processes' views) share one real
 * store server on a free loopback port (`redis-server`, and `etcd` when it
 * is installed: the same cases run on each); the client's session is bound to
 * A's connection, the client resumes it on B, and only then does A's
 * detach (its old connection closing while it drains), logout or close
 * reach the store. The change that tells A about the resume is held back
 * until A has written, as when it is delayed or lost: each of A's writes
 * (a detach, a logout, heartbeats written behind, the parking at close)
 * must be refused by the store and counted, and the session must stay
 * bound to B's connection (B still holds it, its user is online, and a
 * later resume elsewhere is a replace of B's connection).
 *
 * ```
 *   A: bound A:1 ─────────────────────────────── detach(A:1) / logout / close ──▶ refused
 *   B:            resume(token, B:9) ─▶ bound B:9 ──────────────────────────────▶ still B:9
 *   feed to A:                         (held) ──────────────────────────────────▶ released
 * ```
 *
 * Without `redis-server` (or `etcd`) on the PATH that store's cases are
 * skipped with a loud notice, except under CI (`CI=true`), where that is a
 * failure.
 */

import { suite } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/core/clock.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import type { SessionEndEvent } from '../../lib/session/types.js';
import type { SessionChange } from '../../lib/store/contract.js';
import type { SharedSessionStore } from '../../lib/store/contract.js';
import { EtcdStore } from '../../lib/store/etcd/etcd-store.js';
import type { EtcdStoreEvents } from '../../lib/store/etcd/etcd-store.js';
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import type { RedisStoreEvents } from '../../lib/store/redis/redis-store.js';
import { etcdServerForTests } from '../helpers/etcd-server.js';
import { redisServerForTests } from '../helpers/redis-server.js';
import { withTimeout } from '../helpers/net.js';

const redis = await redisServerForTests('the late detach tests on Redis (test/integration/late-detach.test.ts)');
const etcd = await etcdServerForTests('the late detach tests on etcd (test/integration/late-detach.test.ts)');

/** A store whose change feed can be held back: changes are kept while `held` is an array, and delivered by `release()`. */
interface HeldFeed extends SharedSessionStore {
  held: SessionChange[] | null;
  release(): void;
}

/** A Redis store with a feed that can be held back (see {@link HeldFeed}). */
class LateFeedRedis extends RedisStore implements HeldFeed {
  held: SessionChange[] | null = null;

  protected override emit<K extends keyof RedisStoreEvents>(name: K, ...args: Parameters<RedisStoreEvents[K]>): boolean {
    if (name === 'change' && this.held !== null) {
      this.held.push(args[0] as SessionChange);
      return true;
    }
    return super.emit(name, ...args);
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const change of held) super.emit('change', change);
  }
}

/** An etcd store with a feed that can be held back (see {@link HeldFeed}). */
class LateFeedEtcd extends EtcdStore implements HeldFeed {
  held: SessionChange[] | null = null;

  protected override emit<K extends keyof EtcdStoreEvents & string>(name: K, ...args: Parameters<EtcdStoreEvents[K]>): boolean {
    if (name === 'change' && this.held !== null) {
      this.held.push(args[0] as SessionChange);
      return true;
    }
    return super.emit(name, ...args);
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const change of held) super.emit('change', change);
  }
}

/** How a backend makes the two processes' stores over one prefix: A's with a feed that can be held back. */
interface Backend {
  name: string;
  stores(prefix: string, clock: ManualClock | undefined): { storeA: HeldFeed; storeB: SharedSessionStore };
  stop(): Promise<void>;
}

const backends: Backend[] = [];
if (redis !== null) {
  backends.push({
    name: 'redis',
    stores: (prefix, clock) => {
      const timing = clock === undefined ? {} : { clock };
      return {
        storeA: new LateFeedRedis({ url: redis.url, prefix, commandTimeoutMs: 10_000, ...timing }),
        storeB: new RedisStore({ url: redis.url, prefix, commandTimeoutMs: 10_000, ...timing }),
      };
    },
    stop: () => redis.stop(),
  });
}
if (etcd !== null) {
  const hosts = [...etcd.endpoints];
  backends.push({
    name: 'etcd',
    stores: (prefix, clock) => {
      const timing = clock === undefined ? {} : { clock };
      return {
        storeA: new LateFeedEtcd({ hosts, prefix: prefix.replace(':', '/'), commandTimeoutMs: 10_000, ...timing }),
        storeB: new EtcdStore({ hosts, prefix: prefix.replace(':', '/'), commandTimeoutMs: 10_000, ...timing }),
      };
    },
    stop: () => etcd.stop(),
  });
}

for (const backend of backends) {
  let serial = 0;
  const s = suite(`a late write of the process a client left (${backend.name})`);

  /** Two registries on one prefix, A's feed up (and held back from now on), and a session of `user` bound to A's connection `A:1`. */
  const setup = async (user: string, clock?: ManualClock) => {
    const prefix = `ld${++serial}:`;
    const timing = clock === undefined ? {} : { clock };
    const { storeA, storeB } = backend.stores(prefix, clock);
    const upA = withTimeout(
      new Promise<void>((resolve) => {
        const onFeed = (st: 'up' | 'down'): void => {
          if (st !== 'up') return;
          storeA.off('feed', onFeed);
          resolve();
        };
        storeA.on('feed', onFeed);
      }),
      10_000,
      "A's feed",
    );
    const a = new SessionRegistry({ store: storeA, processId: 'A', autoAudit: false, reconcileIntervalMs: 0, ...timing });
    const b = new SessionRegistry({ store: storeB, processId: 'B', autoAudit: false, reconcileIntervalMs: 0, ...timing });
    await upA;
    const created = await a.create({ userId: user, connectionId: 'A:1' });
    storeA.held = [];
    const seenByA: string[] = [];
    const endedOnA: Array<{ name: string; payload: SessionEndEvent }> = [];
    for (const name of ['detached', 'closed', 'deleted', 'expired', 'replaced'] as const) a.on(name, () => void seenByA.push(name));
    for (const name of ['closed', 'deleted', 'expired', 'replaced'] as const) a.on(name, (payload: SessionEndEvent) => void endedOnA.push({ name, payload }));
    const endedOnB: Array<{ name: string; payload: SessionEndEvent }> = [];
    for (const name of ['replaced', 'closed', 'deleted', 'expired'] as const) b.on(name, (payload: SessionEndEvent) => void endedOnB.push({ name, payload }));
    return {
      a,
      b,
      storeA,
      storeB,
      id: created.session.id,
      token: created.token,
      seenByA,
      endedOnA,
      endedOnB,
      async done(): Promise<void> {
        if (!a.closed) await a.close();
        await b.close();
        await storeA.close();
        await storeB.close();
      },
    };
  };

  /** The session is bound to B's connection in the store, held bound by B, and its user online, as B and as A see it. */
  const assertStillB = async (ctx: Awaited<ReturnType<typeof setup>>, user: string): Promise<void> => {
    const stored = await ctx.storeB.get(ctx.id);
    assert.ok(stored !== null, 'the session is still stored');
    assert.is(stored.connectionId, 'B:9', "the store still names B's connection");
    assert.is(stored.state, 'ACTIVE');
    assert.is((await ctx.storeB.getByConnection('B:9'))?.id, ctx.id, "found under B's connection");
    assert.is(await ctx.storeB.getByConnection('A:1'), null, "nothing under A's old connection");
    assert.is(ctx.b.handleByConnection('B:9')?.id, ctx.id, 'B still holds it bound');
    assert.is((await ctx.b.getByConnection('B:9'))?.id, ctx.id);
    assert.ok(await ctx.b.isOnline(user), 'online, as B sees it');
    assert.ok(await ctx.storeA.isOnline(user), 'online, as A sees it');
  };

  s("A's late detach after the resume on B: refused and counted, the session stays B's", async () => {
    const ctx = await setup('u-detach');
    try {
      await ctx.b.resume(ctx.token, 'B:9');
      assert.ok(ctx.a.handle(ctx.id) !== undefined, 'A has not heard of the resume yet');
      assert.is(await ctx.a.detach('A:1', 'connection-closed'), null, 'the detach changes nothing');
      await assertStillB(ctx, 'u-detach');
      assert.is((await ctx.a.stats()).counters.superseded, 1);
      assert.is((await ctx.a.stats()).counters.detached, 0);
      assert.is(ctx.a.handle(ctx.id), undefined, 'A let go of the session');
      ctx.storeA.release();
      // A later resume elsewhere (on A again) is a replace of B's connection, which B closes.
      const again = await ctx.a.resume(ctx.token, 'A:2');
      assert.is(again.previousConnectionId, 'B:9');
      const ended = await withTimeout(
        new Promise<{ name: string; payload: SessionEndEvent }>((resolve) => {
          const check = (): void => {
            const e = ctx.endedOnB.find((x) => x.payload.session.id === ctx.id);
            if (e !== undefined) resolve(e);
            else setTimeout(check, 2);
          };
          check();
        }),
        10_000,
        "B's end of the session",
      );
      assert.is(ended.name, 'replaced');
      assert.is(ended.payload.connectionId, 'B:9');
      assert.equal(ctx.seenByA, [], 'A emitted nothing for its refused detach');
    } finally {
      await ctx.done();
    }
  });

  s("A's late logout (a delete on behalf of A's connection) after the resume on B: refused, the session stays B's", async () => {
    const ctx = await setup('u-logout');
    try {
      await ctx.b.resume(ctx.token, 'B:9');
      assert.is(await ctx.a.delete(ctx.id, 'logout', { connectionId: 'A:1' }), false);
      await assertStillB(ctx, 'u-logout');
      assert.is((await ctx.a.stats()).counters.superseded, 1);
      assert.is((await ctx.a.stats()).counters.deleted, 0);
      assert.equal(ctx.seenByA, []);
      ctx.storeA.release();
    } finally {
      await ctx.done();
    }
  });

  s("A's heartbeats written behind after the resume on B: refused; A lets go of the session as replaced, B's expiry stands", async () => {
    const clock = new ManualClock();
    const ctx = await setup('u-beat', clock);
    try {
      await ctx.b.resume(ctx.token, 'B:9');
      const before = await ctx.storeB.get(ctx.id);
      clock.advance(1_000);
      assert.ok(ctx.a.touch(ctx.id) > 0, "A's client heartbeats on its old connection");
      await ctx.a.flush();
      const after = await ctx.storeB.get(ctx.id);
      assert.is(after?.expiresAt, before?.expiresAt, "the expiry B wrote, not A's");
      assert.is(after?.lastActiveAt, before?.lastActiveAt);
      await assertStillB(ctx, 'u-beat');
      assert.is((await ctx.a.stats()).counters.superseded, 1);
      // A learns from the store's tombstone that the session was resumed elsewhere, and ends its connection's hold on it.
      const ended = await withTimeout(
        new Promise<{ name: string; payload: SessionEndEvent }>((resolve) => {
          const check = (): void => {
            const e = ctx.endedOnA.find((x) => x.payload.session.id === ctx.id);
            if (e !== undefined) resolve(e);
            else setTimeout(check, 2);
          };
          check();
        }),
        10_000,
        "A's end of its hold",
      );
      assert.is(ended.name, 'replaced');
      assert.is(ended.payload.reason, 'resumed-elsewhere');
      assert.is(ended.payload.connectionId, 'A:1');
      assert.is(ctx.a.handle(ctx.id), undefined);
      await assertStillB(ctx, 'u-beat');
      ctx.storeA.release();
    } finally {
      await ctx.done();
    }
  });

  s("A's close (parking its bound sessions) after the resume on B: refused, the session stays B's", async () => {
    const ctx = await setup('u-close');
    try {
      await ctx.b.resume(ctx.token, 'B:9');
      await ctx.a.close();
      await assertStillB(ctx, 'u-close');
    } finally {
      await ctx.done();
    }
  });

  s("with resume disabled, A's late detach (a delete on behalf of A:1) after B took the session over: refused", async () => {
    const ctx = await setup('u-window');
    try {
      // A registry without a resume window ends a session when its connection closes.
      const strict = new SessionRegistry({ store: ctx.storeA, processId: 'A2', autoAudit: false, reconcileIntervalMs: 0, resumeWindowMs: 0 });
      try {
        const mine = await strict.create({ userId: 'u-window', connectionId: 'A2:1' });
        await ctx.b.resume(mine.token, 'B:9');
        assert.is(await strict.detach('A2:1'), null);
        assert.is((await ctx.storeB.get(mine.session.id))?.connectionId, 'B:9', "still B's");
        assert.is((await strict.stats()).counters.superseded, 1);
        assert.is((await strict.stats()).counters.closed, 0);
      } finally {
        await strict.close();
      }
      ctx.storeA.release();
    } finally {
      await ctx.done();
    }
  });

  s.run();

  const teardown = suite(`late detach (${backend.name}): teardown`);
  teardown('stop the server', async () => {
    await backend.stop();
  });
  teardown.run();
}
