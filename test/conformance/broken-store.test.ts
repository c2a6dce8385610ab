/**
 * The conformance suite fails a broken store: a small store written here
 * against the contract passes it whole, and each of its deliberate bugs
 * (one at a time) makes the tests that guard that part of the contract
 * fail. The suite is driven through its runner-agnostic `test` function, so
 * this file sees each test's outcome.
 *
 * ```
 *   TinyStore (correct)            ──storeConformance──▶ every test passes
 *   TinyStore + one bug            ──storeConformance──▶ the named tests fail
 * ```
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type { Clock } from '../../lib/core/clock.js';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';
import type { CreateOptions, OnlinePage, OnlineUsersPage, Page, SessionFilter, SessionPage, SessionPatch, SessionRecord, SessionStore, WriteCondition } from '../../lib/store/contract.js';
import {
  applySessionPatch,
  assertCondition,
  checkFilter,
  checkMaxPerUser,
  checkOnlinePage,
  checkPage,
  checkSessionPatch,
  checkSessionRecord,
  checkTouch,
  checkUserId,
  checkWriteCondition,
  compareSessions,
  copySessionRecord,
  isLive,
  matchesFilter,
  onlinePageOf,
  pageOf,
} from '../../lib/store/record.js';
import { storeConformance } from '../../lib/testing.js';

/** The bugs TinyStore can be built with. */
type Bug =
  | 'live-at-expiry' // a record is still live at its expiresAt (`>=` where `>` is meant)
  | 'racy-max-per-user' // counts a user's sessions, yields, then inserts
  | 'stale-connection-index' // set leaves the old connection pointing at the record
  | 'insertion-order' // lists in creation order, not by createdAt
  | 'shared-objects' // hands out its own objects
  | 'open-after-close' // close changes nothing
  | 'ignores-offset' // a page always starts at the first record
  | 'touch-revives' // touch brings an expired record back
  | 'lost-update' // update reads, yields, then writes the whole result back
  | 'presence-counts-unbound' // a user with only unbound sessions counts as online
  | 'ignores-condition'; // set, delete, touch and update apply whatever ifConnection says

/** A small store over one Map and a connection index; correct unless given a bug. */
class TinyStore implements SessionStore {
  readonly kind = 'tiny';
  readonly #records = new Map<string, SessionRecord>();
  readonly #byConnection = new Map<string, string>();
  #closed = false;

  constructor(
    readonly clock: Clock,
    readonly bug: Bug | null = null,
  ) {}

  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    const max = checkMaxPerUser(options.maxPerUser);
    const now = this.clock.wallNow();
    const held = this.#records.get(record.id);
    if (held !== undefined && this.#isLive(held, now)) throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists');
    if (held !== undefined) this.#remove(held);
    this.#claim(record, now);
    if (max !== undefined && record.userId !== null) {
      const mine = this.#liveAll(now).filter((r) => r.userId === record.userId).length;
      if (this.bug === 'racy-max-per-user') await new Promise((resolve) => setImmediate(resolve));
      if (mine >= max) return false;
    }
    this.#put(copySessionRecord(record));
    return true;
  }

  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    return this.#out(this.#live(id));
  }

  async set(record: SessionRecord, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    checkSessionRecord(record);
    const expected = checkWriteCondition(condition);
    const old = this.#live(record.id);
    if (old === null) return false;
    if (this.bug !== 'ignores-condition') assertCondition(old.id, old.connectionId, expected);
    this.#claim(record, this.clock.wallNow());
    if (this.bug === 'stale-connection-index') this.#records.delete(old.id);
    else this.#remove(old);
    this.#put(copySessionRecord(record));
    return true;
  }

  async touch(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    checkTouch(id, expiresAt, lastActiveAt);
    const expected = checkWriteCondition(condition);
    const r = this.bug === 'touch-revives' ? (this.#records.get(id) ?? null) : this.#live(id);
    if (r === null) return false;
    if (this.bug !== 'ignores-condition') assertCondition(id, r.connectionId, expected);
    r.expiresAt = expiresAt;
    r.lastActiveAt = lastActiveAt;
    return true;
  }

  async update(id: string, patch: SessionPatch, condition?: WriteCondition): Promise<SessionRecord | null> {
    this.#open();
    checkSessionPatch(patch);
    const expected = checkWriteCondition(condition);
    const r = this.#live(id);
    if (r === null) return null;
    if (this.bug !== 'ignores-condition') assertCondition(id, r.connectionId, expected);
    // The bug: read, yield to other callers, then write back what was read with the patch applied.
    const base = this.bug === 'lost-update' ? structuredClone(r) : r;
    if (this.bug === 'lost-update') await new Promise((resolve) => setImmediate(resolve));
    const next = applySessionPatch(base, patch);
    const held = this.#records.get(id);
    if (held === undefined) return null;
    Object.assign(held, { state: next.state, metadata: next.metadata, stats: next.stats });
    return this.#out(held);
  }

  async isOnline(userId: string): Promise<boolean> {
    this.#open();
    checkUserId(userId);
    return this.#onlineUsers().includes(userId);
  }

  async onlineCount(): Promise<number> {
    this.#open();
    return this.#onlineUsers().length;
  }

  async onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage> {
    this.#open();
    return onlinePageOf(this.#onlineUsers(), checkOnlinePage(page, 100, 1000));
  }

  #onlineUsers(): string[] {
    const users = new Set<string>();
    for (const r of this.#liveAll(this.clock.wallNow())) {
      if (r.userId !== null && (this.bug === 'presence-counts-unbound' || r.connectionId !== null)) users.add(r.userId);
    }
    return [...users];
  }

  async delete(id: string, condition?: WriteCondition): Promise<boolean> {
    this.#open();
    const expected = checkWriteCondition(condition);
    const r = this.#records.get(id);
    if (r === undefined) return false;
    if (this.bug !== 'ignores-condition' && this.#isLive(r, this.clock.wallNow())) assertCondition(id, r.connectionId, expected);
    this.#remove(r);
    return this.#isLive(r, this.clock.wallNow());
  }

  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    return this.#out(this.#liveAll(this.clock.wallNow()).find((r) => r.tokenHash === tokenHash) ?? null);
  }

  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    const id = this.#byConnection.get(connectionId);
    return id === undefined ? null : this.#out(this.#live(id));
  }

  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return this.#ordered(this.#liveAll(this.clock.wallNow()).filter((r) => r.userId === userId)).map((r) => this.#out(r)!);
  }

  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const f = checkFilter(filter);
    const bounds = checkPage(page, 100, 1000);
    if (this.bug === 'ignores-offset') bounds.offset = 0;
    const matching = this.#ordered(this.#liveAll(this.clock.wallNow()).filter((r) => matchesFilter(r, f)));
    return pageOf(matching, bounds, (r) => this.#out(r)!, true);
  }

  async count(filter: SessionFilter = {}): Promise<number> {
    this.#open();
    const f = checkFilter(filter);
    return this.#liveAll(this.clock.wallNow()).filter((r) => matchesFilter(r, f)).length;
  }

  async clear(): Promise<void> {
    this.#open();
    this.#records.clear();
    this.#byConnection.clear();
  }

  async close(): Promise<void> {
    if (this.bug !== 'open-after-close') this.#closed = true;
  }

  async ping(): Promise<void> {
    this.#open();
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the tiny store is closed');
  }

  #isLive(r: SessionRecord, now: number): boolean {
    return this.bug === 'live-at-expiry' ? r.expiresAt >= now : isLive(r, now);
  }

  #live(id: string): SessionRecord | null {
    const r = this.#records.get(id);
    return r !== undefined && this.#isLive(r, this.clock.wallNow()) ? r : null;
  }

  #liveAll(now: number): SessionRecord[] {
    return [...this.#records.values()].filter((r) => this.#isLive(r, now));
  }

  #ordered(records: SessionRecord[]): SessionRecord[] {
    return this.bug === 'insertion-order' ? records : records.sort(compareSessions);
  }

  #out(r: SessionRecord | null): SessionRecord | null {
    return r === null ? null : this.bug === 'shared-objects' ? r : copySessionRecord(r);
  }

  /** Refuses a token hash or connection another live record holds; removes expired holders. */
  #claim(r: SessionRecord, now: number): void {
    for (const o of [...this.#records.values()]) {
      if (o.id === r.id) continue;
      if (o.tokenHash !== r.tokenHash && (r.connectionId === null || this.#byConnection.get(r.connectionId) !== o.id)) continue;
      if (this.#isLive(o, now)) throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session holds this token hash or connection');
      this.#remove(o);
    }
  }

  #put(r: SessionRecord): void {
    this.#records.set(r.id, r);
    if (r.connectionId !== null) this.#byConnection.set(r.connectionId, r.id);
  }

  #remove(r: SessionRecord): void {
    this.#records.delete(r.id);
    if (r.connectionId !== null && this.#byConnection.get(r.connectionId) === r.id) this.#byConnection.delete(r.connectionId);
  }
}

/** Runs the whole suite against a TinyStore with `bug`; returns the names of the tests that failed. */
async function failuresWith(bug: Bug | null): Promise<string[]> {
  const tests: Array<{ name: string; fn: () => Promise<void> }> = [];
  storeConformance({ name: 'tiny', test: (name, fn) => tests.push({ name, fn }), createStore: (clock) => new TinyStore(clock, bug), modelRuns: 10 });
  assert.ok(tests.length >= 25, `the suite registered ${tests.length} tests`);
  const failed: string[] = [];
  for (const t of tests) {
    try {
      await t.fn();
    } catch {
      failed.push(t.name.replace(/^tiny: /, ''));
    }
  }
  return failed;
}

test('a store that keeps the contract passes every test of the suite', async () => {
  assert.equal(await failuresWith(null), []);
});

const expectations: Array<[Bug, RegExp]> = [
  ['live-at-expiry', /exact boundary/],
  ['racy-max-per-user', /atomic under concurrent creates/],
  ['stale-connection-index', /set replaces a live record and its indexes follow/],
  ['insertion-order', /order by createdAt, then id/],
  ['shared-objects', /records are copies/],
  ['open-after-close', /close is idempotent, then every call rejects/],
  ['ignores-offset', /paging reports the total/],
  ['touch-revives', /revive nothing/],
  ['lost-update', /concurrent updates of one record lose nothing/],
  ['presence-counts-unbound', /online while a live record of theirs is bound/],
  ['ignores-condition', /set with ifConnection: applies while bound/],
];

for (const [bug, guard] of expectations) {
  test(`a store with one bug fails the suite: ${bug}`, async () => {
    const failed = await failuresWith(bug);
    assert.ok(failed.length > 0, `${bug}: the suite passed a broken store`);
    assert.ok(
      failed.some((name) => guard.test(name)),
      `${bug}: expected a failure of the test matching ${guard}, failed: ${failed.join(' | ')}`,
    );
  });
}

test.run();
