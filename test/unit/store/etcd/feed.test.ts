/**
 * The EtcdStore's change feed and its history, against a real `etcd`:
 * changes published by one store reach the others (never the publisher
 * itself), tombstones, foreign data dropped; the watch resumes after etcd
 * restarts, and one whose revision was compacted away opens again and says
 * so; operations keep working while etcd compacts under them, and the store
 * compacts behind itself.
 *
 * Without `etcd` on the PATH the whole file is skipped with a loud notice,
 * except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type { Etcd3 } from 'etcd3';
import { ManualClock } from '../../../../lib/core/clock.js';
import { ErrorCode } from '../../../../lib/core/errors.js';
import type { NetloopError } from '../../../../lib/core/errors.js';
import { EtcdStore } from '../../../../lib/store/etcd/etcd-store.js';
import type { EtcdStoreOptions } from '../../../../lib/store/etcd/etcd-store.js';
import type { SessionChange } from '../../../../lib/store/contract.js';
import { etcdServerForTests } from '../../../helpers/etcd-server.js';
import { EtcdPeer, adminClient, eventually, liveRecord, rejectsWith } from '../../../helpers/etcd-store-kit.js';

const server = await etcdServerForTests('EtcdStore feed tests (test/unit/store/etcd/feed.test.ts)');

/** A change of session `id`. */
function ended(id: string, reason: SessionChange['reason'], extra: Partial<SessionChange> = {}): SessionChange {
  return { kind: 'ended', id, connectionId: `p1:c-${id}`, userId: 'alice', reason, origin: 'process-1', at: Date.now(), ...extra };
}

/** Collects a store's changes and feed states. */
function listen(store: EtcdStore): { changes: SessionChange[]; states: string[]; errors: NetloopError[] } {
  const seen = { changes: [] as SessionChange[], states: [] as string[], errors: [] as NetloopError[] };
  store.on('feed', (state) => seen.states.push(state));
  store.on('error', (err) => seen.errors.push(err));
  store.on('change', (c) => seen.changes.push(c));
  return seen;
}

if (server !== null) {
  const hosts = [...server.endpoints];
  let serial = 0;

  interface Ctx {
    admin: Etcd3;
    stores: EtcdStore[];
  }
  const s = suite<Ctx>('etcd-store feed', { admin: undefined as unknown as Etcd3, stores: [] });
  const open = (ctx: Ctx, options: EtcdStoreOptions = {}): EtcdStore => {
    const store = new EtcdStore({ hosts, prefix: `feed${++serial}/`, commandTimeoutMs: 10_000, reconnectMaxDelayMs: 200, ...options });
    ctx.stores.push(store);
    return store;
  };

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

  s('a published change reaches every other store on the prefix, not its publisher; the tombstone keeps the last one', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const other = open(ctx);
    const seenA = listen(a);
    const seenB = listen(b);
    const seenOther = listen(other);
    await eventually('feeds up', 5_000, () => seenA.states.includes('up') && seenB.states.includes('up') && seenOther.states.includes('up'));
    const first = ended('s-1', 'replaced', { by: 's-2', detail: 'login elsewhere' });
    const start = performance.now();
    await a.publish(first);
    await eventually('b got it', 5_000, () => seenB.changes.length === 1);
    const latency = performance.now() - start;
    assert.equal(seenB.changes[0], first);
    assert.ok(latency < 1_000, `delivered in ${latency.toFixed(1)} ms`);
    await b.publish(ended('s-1', 'kicked'));
    await eventually('a got b\'s', 5_000, () => seenA.changes.length === 1);
    assert.is(seenA.changes[0]!.reason, 'kicked');
    assert.is(seenB.changes.length, 1, 'b never hears its own change');
    assert.equal(seenOther.changes, [], 'another prefix hears nothing');
    assert.is((await other.tombstone('s-1')), null);
    assert.is((await a.tombstone('s-1'))!.reason, 'kicked', 'the tombstone holds the last change');
    assert.equal(await b.tombstone('s-1'), await a.tombstone('s-1'));
    assert.is(await a.tombstone('never'), null);
    await rejectsWith(a.publish({ ...first, reason: 'vanished' as SessionChange['reason'] }), ErrorCode.INVALID_VALUE, 'a bad reason');
    await rejectsWith(a.publish({ ...first, origin: '' }), ErrorCode.INVALID_VALUE, 'no origin');
    assert.equal([seenA.errors, seenB.errors], [[], []]);
  });

  s('a change published by another process arrives; foreign data in the feed is reported, never delivered', async (ctx) => {
    const a = open(ctx);
    const seen = listen(a);
    await eventually('feed up', 5_000, () => a.feedUp);
    const peer = new EtcdPeer(hosts, a.prefix);
    try {
      await peer.call({ op: 'publish', change: ended('s-9', 'deleted') });
      await eventually('the peer\'s change', 5_000, () => seen.changes.length === 1);
      assert.is(seen.changes[0]!.id, 's-9');
    } finally {
      await peer.end();
    }
    await ctx.admin.put(`${a.prefix}v/intruder/1`).value('{"kind":"ended"}');
    await ctx.admin.put(`${a.prefix}v/intruder/2`).value('not json');
    await eventually('two reports', 5_000, () => seen.errors.length === 2);
    assert.ok(seen.errors.every((e) => e.code === ErrorCode.STORE_CORRUPT));
    assert.is(seen.changes.length, 1);
  });

  s('tombstones follow the store\'s clock', async (ctx) => {
    const clock = new ManualClock(0, Date.now());
    const store = open(ctx, { clock, tombstoneTtlMs: 5_000 });
    await store.publish(ended('s-t', 'kicked'));
    clock.advance(4_999);
    assert.is((await store.tombstone('s-t'))!.reason, 'kicked');
    clock.advance(1);
    assert.is(await store.tombstone('s-t'), null);
  });

  s('the watch resumes after etcd restarts: down, up, and changes published afterwards arrive', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const seen = listen(a);
    await eventually('feed up', 5_000, () => a.feedUp);
    await b.publish(ended('before', 'kicked'));
    await eventually('before', 5_000, () => seen.changes.length === 1);
    await server.restart('SIGKILL');
    await eventually('down then up again', 15_000, () => seen.states.join(',') === 'up,down,up');
    await eventually('b publishes again', 10_000, async () => {
      try {
        await b.publish(ended('after', 'deleted'));
        return true;
      } catch {
        return false;
      }
    });
    await eventually('after', 5_000, () => seen.changes.some((c) => c.id === 'after'));
    assert.is(seen.changes.filter((c) => c.id === 'before').length, 1, 'nothing delivered twice');
  });

  s('a watch whose start was compacted away opens again from the current revision and says so', async (ctx) => {
    const a = open(ctx, { compactionRetentionMs: 0 });
    const b = open(ctx, { prefix: a.prefix });
    await a.ping(); // a's feed will start from this revision
    for (let i = 0; i < 5; i++) await b.publish(ended(`old-${i}`, 'kicked'));
    const { header } = await ctx.admin.kv.range({ key: Buffer.from('x') });
    await ctx.admin.kv.compact({ revision: header.revision });
    const seen = listen(a);
    // etcd answers the watch's creation first (the feed is 'up'), then cancels it for its compacted
    // start revision: wait for the cancellation's report and for the watch opened after it.
    await eventually('the cancelled watch reported, then up again', 10_000, () => seen.errors.length >= 1 && a.feedUp);
    await b.publish(ended('new', 'kicked'));
    await eventually('the new change', 5_000, () => seen.changes.some((c) => c.id === 'new'));
  });

  s('operations keep working while etcd compacts under them', async (ctx) => {
    const store = open(ctx, { scanBatch: 3, compactionRetentionMs: 0 });
    const recs = Array.from({ length: 30 }, (_, i) => liveRecord(60_000, { userId: `u${i % 4}` }));
    for (const r of recs) await store.create(r);
    let compacting = true;
    let compactions = 0;
    const compactor = (async () => {
      while (compacting) {
        const { header } = await ctx.admin.kv.range({ key: Buffer.from('x') });
        await ctx.admin.kv.compact({ revision: header.revision }).catch(() => undefined);
        compactions++;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      for (let round = 0; round < 40; round++) {
        const page = await store.list({}, { offset: 5, limit: 10 });
        assert.is(page.total, 30);
        assert.is(page.sessions.length, 10);
        assert.is(await store.count({ userId: 'u1' }), 8);
        const r = recs[round % recs.length]!;
        assert.is(await store.touch(r.id, Date.now() + 60_000, Date.now()), true);
      }
    } finally {
      compacting = false;
      await compactor;
    }
    assert.ok(compactions > 10, `${compactions} compactions ran meanwhile`);
  });

  s('the store compacts behind itself, keeping the retention asked', async (ctx) => {
    const store = open(ctx, { compactionRetentionMs: 1_000 });
    const rec = liveRecord(60_000);
    await store.create(rec);
    const { header } = await ctx.admin.kv.range({ key: Buffer.from('x') });
    const early = Number(header.revision);
    // A read at the early revision works until the store compacts past it (after at least the retention).
    await ctx.admin.kv.range({ key: Buffer.from('x'), revision: early });
    for (let i = 0; i < 5; i++) await store.touch(rec.id, Date.now() + 60_000, Date.now());
    const start = Date.now();
    await eventually('compacted past the early revision', 10_000, async () => {
      await store.touch(rec.id, Date.now() + 60_000, Date.now());
      try {
        await ctx.admin.kv.range({ key: Buffer.from('x'), revision: early });
        return false;
      } catch (err) {
        return /compacted/.test(String(err));
      }
    });
    assert.ok(Date.now() - start >= 900, 'not before the retention');
  });

  s.run();
}
