/**
 * Conformance tests of counting and listing: filters, oldest first
 * (createdAt, then id) whatever the creation order, pages that tile the
 * list, totals, and bad pages and filters refused.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { ErrorCode } from '../../core/errors.js';
import type { SessionRecord, SessionState } from '../../store/contract.js';
import { CONFORMANCE_TTL_MS, ids, makeRecord, rejectsWith } from './kit.js';
import type { DefineTest } from './kit.js';

/** Registers the tests of counts, lists and pages. */
export function listingTests(t: DefineTest, pagingRecords: number): void {
  t('count with filters', async (store, clock) => {
    const states: SessionState[] = ['CONNECTING', 'ACTIVE', 'ACTIVE', 'IDLE'];
    for (const [i, state] of states.entries()) {
      await store.create(makeRecord(clock, { state, userId: i % 2 === 0 ? 'alice' : 'bob' }));
    }
    await store.create(makeRecord(clock, { userId: null, state: 'ACTIVE' }));
    assert.equal(await store.count(), 5);
    assert.equal(await store.count({}), 5);
    assert.equal(await store.count({ userId: 'alice' }), 2);
    assert.equal(await store.count({ userId: 'bob' }), 2);
    assert.equal(await store.count({ state: 'ACTIVE' }), 3);
    assert.equal(await store.count({ state: 'CLOSED' }), 0);
    assert.equal(await store.count({ userId: 'alice', state: 'ACTIVE' }), 1);
    assert.equal(await store.count({ userId: 'bob', state: 'ACTIVE' }), 1);
    assert.equal(await store.count({ userId: 'nobody' }), 0);
  });

  t('list: oldest first, filters, paging reports the total', async (store, clock) => {
    const all: SessionRecord[] = [];
    for (let i = 0; i < pagingRecords; i++) {
      const rec = makeRecord(clock, { state: i % 3 === 0 ? 'IDLE' : 'ACTIVE', userId: i % 5 === 0 ? 'bob' : 'alice' });
      all.push(rec);
      assert.equal(await store.create(rec), true);
      clock.advance(1);
    }
    const whole = await store.list({}, { offset: 0, limit: pagingRecords });
    assert.equal(whole.total, pagingRecords);
    assert.deepEqual(ids(whole.sessions), ids(all), 'oldest first');

    const seen: string[] = [];
    for (let offset = 0; offset < pagingRecords; offset += 10) {
      const page = await store.list(undefined, { offset, limit: 10 });
      assert.equal(page.total, pagingRecords, `total at offset ${offset}`);
      assert.equal(page.sessions.length, Math.min(10, pagingRecords - offset));
      seen.push(...ids(page.sessions));
    }
    assert.deepEqual(seen, ids(all), 'pages tile the list without gap or overlap');

    assert.deepEqual(await store.list({}, { offset: pagingRecords + 5, limit: 10 }), { sessions: [], total: pagingRecords });
    assert.deepEqual(await store.list({}, { offset: 0, limit: 0 }), { sessions: [], total: pagingRecords });

    const idle = all.filter((r) => r.state === 'IDLE');
    const idlePage = await store.list({ state: 'IDLE' }, { offset: 1, limit: 3 });
    assert.equal(idlePage.total, idle.length);
    assert.deepEqual(ids(idlePage.sessions), ids(idle.slice(1, 4)));

    const bob = all.filter((r) => r.userId === 'bob');
    assert.deepEqual(await store.list({ userId: 'bob' }, { limit: 100 }), { sessions: bob, total: bob.length });
    const bobPage = await store.list({ userId: 'bob' }, { offset: 1, limit: 2 });
    assert.deepEqual(bobPage, { sessions: bob.slice(1, 3), total: bob.length }, 'a user page');

    const bobIdle = bob.filter((r) => r.state === 'IDLE');
    const bobIdlePage = await store.list({ userId: 'bob', state: 'IDLE' });
    assert.deepEqual(ids(bobIdlePage.sessions), ids(bobIdle));
    assert.equal(bobIdlePage.total, bobIdle.length);

    // Expire the oldest third: totals and pages shrink accordingly.
    const cut = Math.floor(pagingRecords / 3);
    clock.advance(CONFORMANCE_TTL_MS - pagingRecords + cut - 1);
    const after = await store.list({}, { limit: pagingRecords });
    assert.equal(after.total, pagingRecords - cut);
    assert.deepEqual(ids(after.sessions), ids(all.slice(cut)));
  });

  t('list and getByUser order by createdAt, then id, whatever order the records were created in', async (store, clock) => {
    const t0 = clock.wallNow();
    // Created newest first; two share a millisecond (their ids decide).
    const late = makeRecord(clock, { createdAt: t0 + 30, userId: 'alice' });
    const tieHigh = makeRecord(clock, { createdAt: t0 + 20, userId: 'alice', state: 'IDLE' });
    // An id below every id makeRecord gives (its serial starts at 1).
    const tieLow = makeRecord(clock, { createdAt: t0 + 20, userId: 'alice', state: 'IDLE', id: '0190a4b2-7c3e-7a41-9f2b-000000000000' });
    const early = makeRecord(clock, { createdAt: t0 - 10, userId: 'bob' });
    for (const r of [late, tieHigh, tieLow, early]) assert.equal(await store.create(r), true);
    const expected = [early, tieLow, tieHigh, late];
    assert.deepEqual(ids((await store.list()).sessions), ids(expected), 'list');
    assert.deepEqual(ids((await store.list({}, { offset: 1, limit: 2 })).sessions), ids(expected.slice(1, 3)), 'a page');
    assert.deepEqual(ids((await store.list({ state: 'IDLE' })).sessions), ids([tieLow, tieHigh]), 'by state');
    assert.deepEqual(ids(await store.getByUser('alice')), ids([tieLow, tieHigh, late]), 'getByUser');
    assert.deepEqual(ids((await store.list({ userId: 'alice' })).sessions), ids([tieLow, tieHigh, late]), 'list by user');
  });

  t('bad pages and filters are refused with NETLOOP_INVALID_OPTION', async (store) => {
    await rejectsWith(() => store.list({}, { offset: -1 }), ErrorCode.INVALID_OPTION, 'negative offset');
    await rejectsWith(() => store.list({}, { limit: -1 }), ErrorCode.INVALID_OPTION, 'negative limit');
    await rejectsWith(() => store.list({}, { limit: 1.5 }), ErrorCode.INVALID_OPTION, 'fractional limit');
    await rejectsWith(() => store.list({}, { offset: Number.NaN }), ErrorCode.INVALID_OPTION, 'NaN offset');
    await rejectsWith(() => store.list({ state: 'ASLEEP' as SessionState }), ErrorCode.INVALID_OPTION, 'list: unknown state');
    await rejectsWith(() => store.count({ state: 'ASLEEP' as SessionState }), ErrorCode.INVALID_OPTION, 'count: unknown state');
    await rejectsWith(() => store.count({ userId: 7 as unknown as string }), ErrorCode.INVALID_OPTION, 'count: numeric user');
  });
}
