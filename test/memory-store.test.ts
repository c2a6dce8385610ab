import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../lib/clock.js';
import { ErrorCode, isNetloopError } from '../lib/errors.js';
import { MemoryStore } from '../lib/memory-store.js';
import { CONFORMANCE_TTL_MS, makeRecord, storeConformance } from './helpers/store-conformance.js';

storeConformance('memory', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  return { store, clock, cleanup: () => store.close() };
});

const t = suite('memory store specifics');

t('options are validated', () => {
  for (const bad of [{ maxPageSize: 0 }, { defaultPageSize: 0 }, { maxPageSize: 10, defaultPageSize: 11 }, { maxPageSize: 1.5 }]) {
    try {
      new MemoryStore(bad);
      assert.unreachable(JSON.stringify(bad));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), JSON.stringify(bad));
    }
  }
});

t('list caps the page at maxPageSize and defaults to defaultPageSize', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock, maxPageSize: 5, defaultPageSize: 3 });
  for (let i = 0; i < 8; i++) await store.create(makeRecord(clock));
  assert.is((await store.list()).sessions.length, 3);
  const big = await store.list({}, { limit: 100 });
  assert.is(big.sessions.length, 5);
  assert.is(big.total, 8);
});

t('duplicate id, live token hash or live connection are refused with NETLOOP_INVALID_VALUE', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const rec = makeRecord(clock, { connectionId: 'c1' });
  await store.create(rec);
  const attempts = [
    { ...makeRecord(clock), id: rec.id },
    makeRecord(clock, { tokenHash: rec.tokenHash }),
    makeRecord(clock, { connectionId: 'c1' }),
  ];
  for (const bad of attempts) {
    try {
      await store.create(bad);
      assert.unreachable('should refuse');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_VALUE));
      assert.not.match(String((err as Error).message), rec.tokenHash);
    }
  }
  const other = makeRecord(clock, { connectionId: 'c2' });
  await store.create(other);
  try {
    await store.set({ ...other, connectionId: 'c1' });
    assert.unreachable('set onto a bound connection');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_VALUE));
  }
  try {
    await store.create({ ...makeRecord(clock), expiresAt: Number.NaN });
    assert.unreachable('NaN expiry');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_VALUE));
  }
});

t('expired records are purged physically; indexes and heap return to empty', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  for (let i = 0; i < 50; i++) {
    await store.create(makeRecord(clock, { userId: i % 2 === 0 ? 'alice' : `u${i}`, connectionId: i % 3 === 0 ? null : `c${i}` }));
  }
  assert.is(store.size, 50);
  clock.advance(CONFORMANCE_TTL_MS);
  assert.is(store.purge(), 50);
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
});

t('in-place extension through liveRecord is honoured by purge and count', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const a = makeRecord(clock);
  const b = makeRecord(clock);
  await store.create(a);
  await store.create(b);
  const live = store.liveRecord(a.id)!;
  live.expiresAt += CONFORMANCE_TTL_MS;
  live.stats.heartbeats++;
  clock.advance(CONFORMANCE_TTL_MS);
  assert.is(await store.count(), 1);
  assert.is(store.indexSizes().heap, 1);
  const got = await store.get(a.id);
  assert.is(got!.stats.heartbeats, 1);
  assert.is(store.liveRecord(b.id), undefined);
  // set() updates the same object in place.
  await store.set({ ...got!, state: 'IDLE' });
  assert.is(live.state, 'IDLE');
  assert.ok(store.touchSync(a.id, clock.wallNow() + 5, clock.wallNow()));
  clock.advance(5);
  assert.is(store.deleteSync(a.id), false, 'expired: not a live delete');
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
  await store.close();
  assert.ok(store.closed);
  assert.is(store.liveRecord(a.id), undefined);
});

t('user index keeps a bare id for one session and a set for several', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const recs = [makeRecord(clock, { userId: 'u' }), makeRecord(clock, { userId: 'u' }), makeRecord(clock, { userId: 'u' })];
  for (const r of recs) await store.create(r);
  await store.delete(recs[1]!.id);
  await store.delete(recs[0]!.id);
  assert.equal((await store.getByUser('u')).map((r) => r.id), [recs[2]!.id]);
  await store.delete(recs[2]!.id);
  assert.is(store.indexSizes().users, 0);
});

t.run();
