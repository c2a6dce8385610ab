import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import type { MemoryStoreOptions, MemoryStoreOwner, OwnedEntry } from '../../../lib/store/memory-store.js';
import type { SessionRecord } from '../../../lib/store/contract.js';
import { CONFORMANCE_TTL_MS, makeRecord } from '../../../lib/testing/store-conformance.js';

const t = suite('memory store specifics');

t('options are validated', () => {
  const bads: object[] = [{ maxPageSize: 0 }, { defaultPageSize: 0 }, { maxPageSize: 10, defaultPageSize: 11 }, { maxPageSize: 1.5 }, { indexTokens: 'no' }];
  for (const bad of bads) {
    try {
      new MemoryStore(bad as MemoryStoreOptions);
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

t('indexTokens: false keeps no token index: token-hash lookups are refused with NETLOOP_INVALID_OPTION', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock, indexTokens: false });
  const rec = makeRecord(clock, { connectionId: 'c1' });
  assert.ok(await store.create(rec));
  assert.equal(await store.get(rec.id), rec);
  assert.equal(await store.getByConnection('c1'), rec);
  assert.equal(store.indexSizes(), { records: 1, tokens: 0, connections: 1, users: rec.userId === null ? 0 : 1, heap: 1 });
  try {
    await store.getByTokenHash(rec.tokenHash);
    assert.unreachable('a token-hash lookup without the index');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
    assert.not.match(String((err as Error).message), rec.tokenHash);
  }
  assert.ok(await store.delete(rec.id));
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
  await store.close();
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

/** A minimal in-process owner: plain data fields, records every callback. */
class Owner implements MemoryStoreOwner {
  removed: string[] = [];
  settles = 0;
  constructor(readonly store: MemoryStore) {}
  _storeRemoved(entry: OwnedEntry): void {
    this.removed.push(entry.id);
  }
  _storeSettle(now: number): void {
    this.settles++;
    for (const e of this.store.ownedEntries(this)) if (e.expiresAt <= now) this.store.release(e);
  }
  entry(r: SessionRecord): OwnedEntry {
    return {
      id: r.id, tokenHash: r.tokenHash, userId: r.userId, connectionId: r.connectionId, remoteAddress: r.remoteAddress, remotePort: r.remotePort,
      state: r.state, metadata: r.metadata, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0,
      createdAt: r.createdAt, lastActiveAt: r.lastActiveAt, expiresAt: r.expiresAt, ttl: r.ttl, _owner: this,
    };
  }
}

t('adopted entries are held without a copy and read in place', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const owner = new Owner(store);
  const e = owner.entry(makeRecord(clock, { userId: 'u', connectionId: 'c1' }));
  assert.ok(store.adopt(e));
  assert.ok(store.adopt(e), 'adopting the same object again is a no-op');
  assert.is(store.ownedById(e.id), e);
  assert.is(store.ownedByConnection('c1'), e);
  assert.equal(store.ownedSizes(), { entries: 1, bound: 1 });
  // The owner writes its fields directly; the store reads them.
  e.expiresAt += CONFORMANCE_TTL_MS;
  e.heartbeats = 3;
  clock.advance(CONFORMANCE_TTL_MS);
  const got = await store.get(e.id);
  assert.is(got!.stats.heartbeats, 3);
  assert.is((await store.getByTokenHash(e.tokenHash))!.id, e.id);
  assert.is((await store.getByUser('u')).length, 1);
  // set() updates the same object in place and keeps the indexes right.
  assert.ok(await store.set({ ...got!, connectionId: 'c2', state: 'IDLE' }));
  assert.is(e.state, 'IDLE');
  assert.is(store.ownedByConnection('c1'), undefined);
  assert.is(store.ownedByConnection('c2'), e);
  // A past expiry leaves the entry to its owner, never reported live.
  assert.ok(store.touchSync(e.id, clock.wallNow() - 1, clock.wallNow()));
  assert.is(await store.get(e.id), null);
  assert.is(store.ownedById(e.id), e, 'still held until the owner expires it');
  assert.is(await store.count(), 0, 'count asks the owner to settle first');
  assert.ok(owner.settles > 0);
  assert.is(store.ownedById(e.id), undefined);
  assert.equal(owner.removed, [], 'a release by the owner is not reported back');
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
  assert.equal(store.ownedSizes(), { entries: 0, bound: 0 });
});

t('the owner hears of removals it did not ask for; maxPerUser and replace apply', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const owner = new Owner(store);
  const a = owner.entry(makeRecord(clock, { userId: 'u', connectionId: 'c1' }));
  const b = owner.entry(makeRecord(clock, { userId: 'u' }));
  assert.ok(store.adopt(a, { maxPerUser: 1 }));
  assert.is(store.adopt(b, { maxPerUser: 1 }), false, 'per-user limit');
  assert.ok(store.adopt(b, { maxPerUser: 2 }));
  try {
    store.adopt(owner.entry({ ...makeRecord(clock), id: a.id }));
    assert.unreachable('duplicate id without replace');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_VALUE));
  }
  assert.ok(await store.delete(a.id));
  assert.equal(owner.removed, [a.id]);
  // An expired adopted holder of a connection is evicted (with word to its owner) by a new claim.
  const c = owner.entry(makeRecord(clock, { connectionId: 'c3' }));
  assert.ok(store.adopt(c));
  c.expiresAt = clock.wallNow() - 1;
  await store.create(makeRecord(clock, { connectionId: 'c3' }));
  assert.ok(owner.removed.includes(c.id));
  // replace takes over a record of the store's own; disown gives an entry back.
  const plain = makeRecord(clock, { userId: 'p' });
  await store.create(plain);
  const d = owner.entry(plain);
  assert.ok(store.adopt(d, { replace: true }));
  assert.is(store.ownedById(plain.id), d);
  assert.ok(store.disown(d));
  assert.is(store.ownedById(plain.id), undefined);
  assert.is((await store.get(plain.id))!.id, plain.id, 'now a record of the store');
  assert.is(store.disown(d), false);
  assert.equal(store.ownedEntries(owner).map((e) => e.id), [b.id]);
  await store.clear();
  assert.ok(owner.removed.includes(b.id), 'clear reports adopted entries');
  store.forgetOwner(owner);
  const settles = owner.settles;
  await store.count();
  assert.is(owner.settles, settles, 'a forgotten owner is not called');
  assert.equal(store.ownedSizes(), { entries: 0, bound: 0 });
  await store.close();
  assert.ok(store.closed);
  try {
    store.adopt(owner.entry(makeRecord(clock)));
    assert.unreachable('closed');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.STORE_CLOSED));
  }
});

t('a retired entry is dead for every read at once, uncounted, and swept out of every Map later', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const owner = new Owner(store);
  type Mortal = OwnedEntry & { alive: boolean; connectionId: string | null };
  const mortal = (r: SessionRecord): Mortal => ({ ...owner.entry(r), alive: true }) as Mortal;
  const a = mortal(makeRecord(clock, { userId: 'u', connectionId: 'c1' }));
  const b = mortal(makeRecord(clock, { userId: 'u', connectionId: 'c2' }));
  const keep = mortal(makeRecord(clock, { userId: 'u', connectionId: 'c3' }));
  for (const e of [a, b, keep]) assert.ok(store.adopt(e));
  // The owner retires a and b (as the registry does on expiry): the store notes the connection, then the owner clears it.
  for (const e of [a, b]) {
    store.retire(e);
    e.alive = false;
    e.connectionId = null;
  }
  assert.is(store.retiredCount, 2);
  assert.equal(store.ownedSizes(), { entries: 1, bound: 1 }, 'uncounted at once');
  assert.is(store.size, 3, 'still physically held');
  for (const e of [a, b]) {
    assert.is(await store.get(e.id), null);
    assert.is(await store.getByTokenHash(e.tokenHash), null);
    assert.is(await store.set({ ...makeRecord(clock), id: e.id }), false, 'set refuses a retired id');
    assert.is(store.touchSync(e.id, clock.wallNow() + 1_000, clock.wallNow()), false, 'touch too');
    assert.is(store.deleteSync(e.id), false, 'a delete of a retired entry removes nothing live');
  }
  assert.is(await store.getByConnection('c1'), null);
  assert.equal((await store.getByUser('u')).map((r) => r.id), [keep.id]);
  assert.equal(owner.removed, [], 'the owner is not told of its own retired entries');
  // The delete above took `a` and `b` out of the id, token and user Maps; their connections wait for the sweep.
  const c = mortal(makeRecord(clock, { connectionId: 'c2' }));
  assert.ok(store.adopt(c), 'a new entry claims the connection of a retired one');
  assert.is(store.ownedByConnection('c2'), c);
  // A sweep with a deadline already passed still makes progress (64 entries at least) and stops.
  assert.is(store.sweepRetired(performance.now() - 1), 0);
  assert.is(store.retiredCount, 0);
  assert.is(store.ownedByConnection('c2'), c, 'the sweep leaves a newer holder alone');
  assert.is(store.ownedByConnection('c1'), undefined);
  assert.equal(store.indexSizes(), { records: 2, tokens: 2, connections: 2, users: 2, heap: 0 }, 'keep (u) and c (alice)');
  assert.equal(store.ownedSizes(), { entries: 2, bound: 2 });
  // Many retired entries: a bounded sweep leaves the rest, count() completes it.
  const many = Array.from({ length: 300 }, (_, i) => mortal(makeRecord(clock, { userId: `m${i % 7}`, connectionId: `m${i}` })));
  for (const e of many) assert.ok(store.adopt(e));
  for (const e of many) {
    store.retire(e);
    e.alive = false;
  }
  const left = store.sweepRetired(performance.now() - 1);
  assert.ok(left > 0 && left < 300, `a slice sweeps part (${left} left)`);
  assert.is(await store.count(), 2, 'count sweeps the rest first');
  assert.is(store.retiredCount, 0);
  assert.equal(store.indexSizes(), { records: 2, tokens: 2, connections: 2, users: 2, heap: 0 });
  // clear drops retired entries without a word to their owner.
  const z = mortal(makeRecord(clock, { connectionId: 'z' }));
  assert.ok(store.adopt(z));
  store.retire(z);
  z.alive = false;
  owner.removed.length = 0;
  await store.clear();
  assert.equal(owner.removed.sort(), [c.id, keep.id].sort());
  assert.is(store.retiredCount, 0);
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
  assert.equal(store.ownedSizes(), { entries: 0, bound: 0 });
});

t('an entry retired with its id still held is replaced by a new adoption of that id', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const owner = new Owner(store);
  const r = makeRecord(clock, { connectionId: 'c' });
  const old = { ...owner.entry(r), alive: true } as OwnedEntry & { alive: boolean };
  assert.ok(store.adopt(old));
  store.retire(old);
  old.alive = false;
  const fresh = owner.entry({ ...r, tokenHash: 'f'.repeat(64), connectionId: 'd' });
  assert.ok(store.adopt(fresh), 'no duplicate-id error for a retired holder');
  assert.is(store.ownedById(r.id), fresh);
  assert.is(store.sweepRetired(), 0);
  assert.is(store.ownedById(r.id), fresh, 'the sweep leaves the new holder of the id');
  assert.equal(store.indexSizes(), { records: 1, tokens: 1, connections: 1, users: 1, heap: 0 });
  assert.equal(store.ownedSizes(), { entries: 1, bound: 1 });
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

t('ping resolves while the store is open and rejects with NETLOOP_STORE_CLOSED once it is closed', async () => {
  const store = new MemoryStore({ clock: new ManualClock() });
  await store.ping();
  await store.close();
  try {
    await store.ping();
    assert.unreachable('ping of a closed store resolved');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.STORE_CLOSED), String(err));
  }
});

t.run();
