/**
 * EtcdStore against a real `etcd` started on free loopback ports: what only
 * etcd can show (the shared conformance suite runs in
 * test/conformance/etcd.test.ts) — the keys a session leaves in etcd and
 * their leases, lease buckets expiring keys by themselves (also those of a
 * process killed while holding sessions), `maxPerUser` and `update` atomic
 * across clients and processes, a stale cached record never overwriting
 * another process's write, presence across stores, and option checks.
 *
 * Without `etcd` on the PATH the whole file is skipped with a loud notice,
 * except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type { Etcd3 } from 'etcd3';
import { ManualClock } from '../../../../lib/core/clock.js';
import { ErrorCode } from '../../../../lib/core/errors.js';
import { EtcdStore } from '../../../../lib/store/etcd/etcd-store.js';
import type { EtcdStoreOptions } from '../../../../lib/store/etcd/etcd-store.js';
import { makeRecord } from '../../../../lib/testing/store-conformance.js';
import { etcdServerForTests } from '../../../helpers/etcd-server.js';
import { EtcdPeer, adminClient, checkKeys, eventually, liveRecord, rawKeys, rejectsWith } from '../../../helpers/etcd-store-kit.js';

const server = await etcdServerForTests('EtcdStore tests (test/unit/store/etcd/etcd-store.test.ts)');

if (server !== null) {
  const hosts = [...server.endpoints];
  let serial = 0;
  const nextPrefix = (tag: string): string => `${tag}${++serial}/`;

  interface Ctx {
    admin: Etcd3;
    stores: EtcdStore[];
  }
  const s = suite<Ctx>('etcd-store', { admin: undefined as unknown as Etcd3, stores: [] });
  const open = (ctx: Ctx, options: EtcdStoreOptions = {}): EtcdStore => {
    // Generous timeouts where timing is not the point: a loaded machine must not fail these tests.
    const store = new EtcdStore({ hosts, prefix: nextPrefix('t'), commandTimeoutMs: 10_000, ...options });
    ctx.stores.push(store);
    return store;
  };
  const leaseTtl = async (admin: Etcd3, lease: string): Promise<number> => Number((await admin.leaseClient.leaseTimeToLive({ ID: lease })).TTL);

  s.before((ctx) => {
    ctx.admin = adminClient(hosts);
  });
  s.after.each(async (ctx) => {
    for (const store of ctx.stores.splice(0)) await store.close();
  });
  s.after(async (ctx) => {
    ctx.admin.close();
    await server.stop();
  });

  s('a session is its record and index keys on one lease that outlives its expiry by at most a bucket; touch moves them all', async (ctx) => {
    const store = open(ctx, { leaseBucketMs: 2_000 });
    const rec = liveRecord(30_000, { userId: 'alice', connectionId: 'c/1%', tokenHash: 'tok/a' });
    assert.is(await store.create(rec), true);
    assert.is(await checkKeys(ctx.admin, store.prefix), 1);
    const keys = await rawKeys(ctx.admin, store.prefix);
    assert.equal(
      keys.map((k) => k.key.slice(store.prefix.length)),
      ['c/c%2F1%25', 'l/' + rec.id, 's/' + rec.id, 't/tok%2Fa', `u/alice/${rec.id}`],
      'escaped parts: no id reaches into another key',
    );
    const lease = keys[0]!.lease;
    const ttl = await leaseTtl(ctx.admin, lease);
    const left = (rec.expiresAt - Date.now()) / 1000;
    assert.ok(ttl >= left - 1 && ttl <= left + 2 + 1, `lease TTL ${ttl} s for an expiry ${left.toFixed(1)} s away (bucket 2 s)`);

    const later = Date.now() + 60_000;
    assert.is(await store.touch(rec.id, later, Date.now()), true);
    assert.is(await checkKeys(ctx.admin, store.prefix), 1);
    const moved = await rawKeys(ctx.admin, store.prefix);
    assert.ok(moved.every((k) => k.lease === moved[0]!.lease && k.lease !== lease), 'every key moved to the later bucket');
    assert.ok((await leaseTtl(ctx.admin, moved[0]!.lease)) >= 58, 'the new lease lasts to the new expiry');
    assert.is((await store.get(rec.id))!.expiresAt, later);

    assert.is(await store.delete(rec.id), true);
    assert.equal(await rawKeys(ctx.admin, store.prefix), [], 'delete leaves no key');
  });

  s('set moves the indexes with the record: old token, connection and user keys go, no key is left behind', async (ctx) => {
    const store = open(ctx);
    const a = liveRecord(30_000, { userId: 'alice', connectionId: 'c-a' });
    const b = liveRecord(30_000, { userId: 'bob', connectionId: null });
    await store.create(a);
    await store.create(b);
    await store.set({ ...a, userId: 'carol', connectionId: 'c-a2', tokenHash: 'rotated' });
    await store.set({ ...b, connectionId: 'c-b', userId: null });
    assert.is(await checkKeys(ctx.admin, store.prefix), 2);
    const names = (await rawKeys(ctx.admin, store.prefix)).map((k) => k.key.slice(store.prefix.length));
    assert.ok(!names.includes('c/c-a') && !names.some((n) => n.startsWith('u/alice/') || n.startsWith('u/bob/')), names.join(' '));
    await store.clear();
    assert.equal(await rawKeys(ctx.admin, store.prefix), []);
  });

  s('lease buckets: sessions of nearby expiries share a lease, and etcd removes their keys by itself after expiry', async (ctx) => {
    const store = open(ctx, { leaseBucketMs: 1_000 });
    const base = Date.now();
    const recs = Array.from({ length: 40 }, (_, i) => liveRecord(1_200 + (i % 4) * 250, { userId: `u${i % 5}`, connectionId: `c-${i}` }));
    await Promise.all(recs.map((r) => store.create(r)));
    assert.is(await checkKeys(ctx.admin, store.prefix), 40);
    const leases = new Set((await rawKeys(ctx.admin, store.prefix)).map((k) => k.lease));
    assert.ok(leases.size <= 3, `40 sessions expiring within 750 ms used ${leases.size} leases`);
    assert.is(await store.isOnline('u1'), true);
    // Keys outlive the expiry by at most one bucket (plus etcd's lease timing: it checks leases every 500 ms).
    const latest = Math.max(...recs.map((r) => r.expiresAt));
    await eventually('every key removed by etcd', latest - base + 1_000 + 3_000, async () => (await rawKeys(ctx.admin, store.prefix)).length === 0);
    assert.is(await store.count(), 0);
    assert.is(await store.isOnline('u1'), false);
  });

  s('liveness follows the clock even while the keys are still there', async (ctx) => {
    const clock = new ManualClock(0, Date.now());
    const store = open(ctx, { clock, leaseBucketMs: 60_000 });
    const rec = makeRecord(clock, { userId: 'alice', expiresAt: clock.wallNow() + 1_000 });
    await store.create(rec);
    clock.advance(1_000);
    assert.is(await store.get(rec.id), null);
    assert.is(await store.isOnline('alice'), false);
    assert.is(await store.onlineCount(), 0);
    assert.ok((await rawKeys(ctx.admin, store.prefix)).length > 0, 'the keys wait for their bucket');
    assert.is(await store.create(makeRecord(clock, { tokenHash: rec.tokenHash, connectionId: rec.connectionId })), true, 'an expired holder is evicted');
    assert.is(await checkKeys(ctx.admin, store.prefix), 1);
  });

  s('a process killed while holding sessions: they stay until their expiry, then go by themselves (no cleanup step)', async (ctx) => {
    const store = open(ctx);
    const peer = new EtcdPeer(hosts, store.prefix, 1_000);
    // Long enough that five creates through the child and its kill end well before it, on a loaded machine too.
    const ttl = 4_000;
    const recs = Array.from({ length: 5 }, (_, i) => liveRecord(ttl, { userId: `crash-${i % 2}`, connectionId: `peer-c-${i}` }));
    for (const r of recs) assert.is(await peer.call<boolean>({ op: 'create', record: r }), true);
    await peer.kill();
    const killedAt = Date.now();
    assert.is(await store.onlineCount(), 2, 'the killed process\'s users are online until their sessions expire');
    assert.is(await store.isOnline('crash-0'), true);
    assert.ok((await store.get(recs[0]!.id)) !== null);
    const expiry = Math.max(...recs.map((r) => r.expiresAt));
    await eventually('offline at the TTL', expiry - killedAt + 1_000, async () => !(await store.isOnline('crash-0')) && (await store.onlineCount()) === 0);
    assert.ok(Date.now() >= recs[0]!.expiresAt, 'not before the expiry');
    await eventually('keys removed by etcd itself', expiry - Date.now() + 1_000 + 3_000, async () => (await rawKeys(ctx.admin, store.prefix)).length === 0);
  });

  s('maxPerUser holds across two clients racing, and across processes', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const recs = Array.from({ length: 24 }, (_, i) => liveRecord(60_000, { userId: i % 3 === 0 ? 'bob' : 'alice' }));
    const results = await Promise.all(recs.map((r, i) => (i % 2 === 0 ? a : b).create(r, { maxPerUser: 4 })));
    for (const user of ['alice', 'bob']) {
      const won = recs.filter((r, i) => r.userId === user && results[i]).length;
      assert.is(won, 4, `exactly 4 of ${user}'s creates won`);
      assert.is(await a.count({ userId: user }), 4);
    }
    assert.is(await checkKeys(ctx.admin, a.prefix), 8);

    const peer = new EtcdPeer(hosts, a.prefix);
    try {
      const mine = Array.from({ length: 10 }, () => liveRecord(60_000, { userId: 'carol' }));
      const theirs = Array.from({ length: 10 }, () => liveRecord(60_000, { userId: 'carol' }));
      const [local, remote] = await Promise.all([Promise.all(mine.map((r) => a.create(r, { maxPerUser: 3 }))), peer.call<boolean[]>({ op: 'burst', records: theirs, max: 3 })]);
      assert.is([...local, ...remote].filter(Boolean).length, 3, 'exactly 3 across the two processes');
      assert.is(await a.count({ userId: 'carol' }), 3);
    } finally {
      await peer.end();
    }
  });

  s('update is atomic across clients: concurrent counter additions are never lost', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const rec = liveRecord(60_000);
    await a.create(rec);
    const adds = Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).update(rec.id, { stats: { add: { messagesIn: 1, bytesIn: 10 } }, metadata: { [`k${i % 3}`]: String(i) } }));
    const results = await Promise.all(adds);
    assert.ok(results.every((r) => r !== null));
    const got = (await b.get(rec.id))!;
    assert.is(got.stats.messagesIn, 30);
    assert.is(got.stats.bytesIn, 300);
    assert.equal(Object.keys(got.metadata).sort(), ['k0', 'k1', 'k2']);
    assert.is(got.expiresAt, rec.expiresAt, 'update moves no time');
    assert.is(await a.update('no-such-id', { state: 'IDLE' }), null);
    await rejectsWith(a.update(rec.id, { stats: { add: { bytesIn: -1 } } }), ErrorCode.INVALID_VALUE, 'a negative counter');
  });

  s('a stale cached record never overwrites another process\'s write (the compare fails, the write is decided again)', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const rec = liveRecord(60_000, { metadata: { v: '1' } });
    await a.create(rec);
    // b changes the record; a's cache still holds the version it created.
    assert.ok((await b.update(rec.id, { metadata: { v: '2' }, state: 'IDLE' })) !== null);
    const later = Date.now() + 120_000;
    assert.is(await a.touch(rec.id, later, Date.now()), true);
    const got = (await b.get(rec.id))!;
    assert.equal([got.metadata['v'], got.state, got.expiresAt], ['2', 'IDLE', later], 'both writes are there');
    // b deletes it; a's cache says live, but "gone" is read from etcd.
    assert.is(await b.delete(rec.id), true);
    assert.is(await a.touch(rec.id, later, Date.now()), false);
    assert.is(await a.update(rec.id, { state: 'ACTIVE' }), null);
    assert.is(await a.delete(rec.id), false);
    assert.equal(await rawKeys(ctx.admin, a.prefix), []);
  });

  s('presence answers for every store sharing the prefix; onlineUsers pages tile the users online', async (ctx) => {
    const a = open(ctx, { scanBatch: 7 });
    const b = open(ctx, { prefix: a.prefix, scanBatch: 7 });
    const users = Array.from({ length: 23 }, (_, i) => `user-${String(i).padStart(2, '0')}`);
    for (const [i, u] of users.entries()) {
      await (i % 2 === 0 ? a : b).create(liveRecord(60_000, { userId: u, connectionId: `c-${u}-1` }));
      if (i % 3 === 0) await a.create(liveRecord(60_000, { userId: u, connectionId: `c-${u}-2` }));
    }
    await a.create(liveRecord(60_000, { userId: 'detached', connectionId: null }));
    await b.create(liveRecord(60_000, { userId: null, connectionId: 'c-anon' }));
    assert.is(await b.onlineCount(), 23, 'detached and anonymous sessions are not online');
    assert.is(await b.isOnline('user-04'), true);
    assert.is(await b.isOnline('detached'), false);
    for (const limit of [1, 5, 23, 100]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { users: string[]; cursor: string | null } = await (seen.length % 2 === 0 ? a : b).onlineUsers({ cursor, limit });
        assert.ok(page.users.length <= limit);
        seen.push(...page.users);
        cursor = page.cursor;
      } while (cursor !== null);
      assert.equal(seen, users, `limit ${limit}: every online user once, in order`);
    }
    await rejectsWith(a.onlineUsers({ limit: 0 }), ErrorCode.INVALID_OPTION, 'limit 0');
    await rejectsWith(a.isOnline(42 as unknown as string), ErrorCode.INVALID_VALUE, 'a user id that is not a string');
  });

  s('the touches of one turn share transactions (25 sessions each), and each gets its own answer', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const recs = Array.from({ length: 60 }, (_, i) => liveRecord(60_000, { userId: `u${i % 3}` }));
    for (const r of recs) await a.create(r);
    // b has never seen these sessions: its batch reads them first (one transaction of ranges per 25).
    const revisionOf = async (): Promise<number> => Number((await ctx.admin.kv.range({ key: Buffer.from('x') })).header.revision);
    const before = await revisionOf();
    const later = Date.now() + 120_000;
    const results = await Promise.all(recs.map((r) => b.touch(r.id, later, later - 60_000)));
    assert.ok(results.every((ok) => ok));
    assert.is((await revisionOf()) - before, 3, '60 touches, 3 writes');
    for (const r of recs) assert.is((await a.get(r.id))!.expiresAt, later);
    assert.is(await checkKeys(ctx.admin, a.prefix), 60);

    // One batch: a session another store changed since, one it deleted, one touched into the past, one unknown.
    const [changed, deleted, ended, plain] = recs;
    await a.update(changed!.id, { metadata: { by: 'a' } });
    await a.delete(deleted!.id);
    const again = Date.now() + 180_000;
    const mixed = await Promise.all([
      b.touch(changed!.id, again, again - 60_000),
      b.touch(deleted!.id, again, again - 60_000),
      b.touch(ended!.id, Date.now() - 1, Date.now()),
      b.touch(plain!.id, again, again - 60_000),
      b.touch('no-such-session', again, again - 60_000),
      b.touch(plain!.id, again + 1, again - 60_000),
    ]);
    assert.equal(mixed, [true, false, true, true, false, true]);
    const got = (await a.get(changed!.id))!;
    assert.equal([got.metadata['by'], got.expiresAt], ['a', again], 'the other store\'s change is kept');
    assert.is(await a.get(ended!.id), null);
    assert.is((await a.get(plain!.id))!.expiresAt, again + 1, 'the last touch of an id in a turn wins');
    assert.is(await checkKeys(ctx.admin, a.prefix), 58);
  });

  s('a lease etcd no longer knows (revoked from outside) is replaced on the next write', async (ctx) => {
    const store = open(ctx);
    const first = liveRecord(60_000);
    await store.create(first);
    const [key] = await rawKeys(ctx.admin, store.prefix);
    await ctx.admin.leaseClient.leaseRevoke({ ID: key!.lease });
    assert.equal(await rawKeys(ctx.admin, store.prefix), [], 'revoking the lease removed the session');
    const second = liveRecord(60_000);
    assert.is(await store.create(second), true, 'the same bucket, a new lease');
    assert.is(await checkKeys(ctx.admin, store.prefix), 1);
    assert.ok((await rawKeys(ctx.admin, store.prefix))[0]!.lease !== key!.lease);
  });

  s('a record larger than etcd takes is NETLOOP_INVALID_VALUE, and nothing is stored', async (ctx) => {
    const store = open(ctx);
    // Over etcd's request limit (1.5 MiB), and over its gRPC server's (2 MiB): two different refusals.
    for (const size of [1.7, 2.2]) {
      const rec = liveRecord(60_000, { metadata: { blob: 'x'.repeat(Math.round(size * 1024 * 1024)) } });
      await rejectsWith(store.create(rec), ErrorCode.INVALID_VALUE, `a ${size} MiB record`);
    }
    assert.equal(await rawKeys(ctx.admin, store.prefix), []);
    const small = liveRecord(60_000);
    await store.create(small);
    await rejectsWith(store.update(small.id, { metadata: { blob: 'x'.repeat(2 * 1024 * 1024) } }), ErrorCode.INVALID_VALUE, 'an update that makes it too large');
    assert.equal((await store.get(small.id))!.metadata, {});
  });

  s('options are checked (NETLOOP_INVALID_OPTION)', () => {
    const bad: EtcdStoreOptions[] = [
      { prefix: '' },
      { hosts: [] },
      { hosts: [''] },
      { leaseBucketMs: 999 },
      { commandTimeoutMs: 0 },
      { cacheSize: -1 },
      { compactionRetentionMs: 1.5 },
      { onError: 'x' as unknown as () => void },
    ];
    for (const options of bad) {
      assert.throws(
        () => new EtcdStore(options),
        (err: { code?: string }) => err.code === ErrorCode.INVALID_OPTION,
        JSON.stringify(options),
      );
    }
  });

  s.run();
}
