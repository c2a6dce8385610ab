/**
 * The model test: random operation sequences (seeded, so a failure repeats
 * with its seed) applied to the store and to a reference model, the two
 * compared after every step (counts, lists in order, lookups by every
 * index, expired records never returned).
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import type { SessionRecord, SessionState } from '../../store/contract.js';
import { CONFORMANCE_TTL_MS, Prng, byAge, makeRecord, nextSerial } from './kit.js';
import type { DefineTest } from './kit.js';

/** Registers the model test. */
export function modelTests(t: DefineTest, modelRuns: number, seed: number): void {
  t(`model test: random operation sequences agree with a reference model (seed ${seed})`, async (store, clock) => {
    const rng = new Prng(seed);
    const states: SessionState[] = ['CONNECTING', 'ACTIVE', 'IDLE'];
    const userOf = (u: number): string | null => (u === 0 ? null : `user-${u}`);
    for (let run = 0; run < modelRuns; run++) {
      // Each run starts from an empty store.
      if (run > 0) await store.clear();
      const model = new Map<string, SessionRecord>();
      const created: string[] = [];
      const log: string[] = [];
      const live = (r: SessionRecord): boolean => r.expiresAt > clock.wallNow();
      const where = (): string => `run ${run} of seed ${seed}, after: ${log.join('; ')}`;
      const length = 1 + rng.int(40);
      for (let step = 0; step < length; step++) {
        const kind = rng.pick(['create', 'create', 'delete', 'touch', 'rebind', 'advance'] as const);
        if (kind === 'create') {
          const user = rng.int(4);
          const max = rng.int(4);
          const rec = makeRecord(clock, { userId: userOf(user), connectionId: rng.int(2) === 0 ? null : `conn-m-${nextSerial()}`, state: rng.pick(states) });
          const liveOfUser = [...model.values()].filter((r) => live(r) && r.userId !== null && r.userId === rec.userId).length;
          const expected = max === 0 || rec.userId === null || liveOfUser < max;
          log.push(`create ${rec.id.slice(-4)} user ${user} max ${max}`);
          assert.equal(await store.create(rec, max === 0 ? undefined : { maxPerUser: max }), expected, `create result, ${where()}`);
          if (expected) {
            model.set(rec.id, rec);
            created.push(rec.id);
          }
        } else if (kind === 'advance') {
          const ms = 1 + rng.int(CONFORMANCE_TTL_MS);
          log.push(`advance ${ms}`);
          clock.advance(ms);
        } else if (created.length > 0) {
          const id = created[rng.int(created.length)]!;
          const m = model.get(id);
          const isLive = m !== undefined && live(m);
          if (kind === 'delete') {
            log.push(`delete ${id.slice(-4)}`);
            assert.equal(await store.delete(id), isLive, `delete result, ${where()}`);
            model.delete(id);
          } else if (kind === 'touch') {
            const exp = clock.wallNow() + 1 + rng.int(3 * CONFORMANCE_TTL_MS);
            log.push(`touch ${id.slice(-4)} +${exp - clock.wallNow()}`);
            assert.equal(await store.touch(id, exp, clock.wallNow()), isLive, `touch result, ${where()}`);
            if (isLive) model.set(id, { ...m, expiresAt: exp, lastActiveAt: clock.wallNow() });
          } else {
            const next: SessionRecord = {
              ...(m ?? makeRecord(clock, { id })),
              userId: userOf(rng.int(4)),
              connectionId: rng.int(2) === 0 ? null : `conn-r-${id}`,
              state: rng.pick(states),
            };
            log.push(`set ${id.slice(-4)} user ${String(next.userId)}`);
            assert.equal(await store.set(next), isLive, `set result, ${where()}`);
            if (isLive) model.set(id, next);
          }
        }
        // After every step, the store agrees with the live part of the model.
        const liveRecs = [...model.values()].filter(live).sort(byAge);
        assert.equal(await store.count(), liveRecs.length, `count, ${where()}`);
        const listed = await store.list({}, { limit: 1000 });
        assert.equal(listed.total, liveRecs.length, `list total, ${where()}`);
        assert.deepEqual(listed.sessions, liveRecs, `listed records, oldest first, ${where()}`);
        for (const u of [1, 2, 3]) {
          const mine = liveRecs.filter((r) => r.userId === userOf(u));
          assert.deepEqual(await store.getByUser(userOf(u)!), mine, `getByUser, ${where()}`);
          assert.equal(await store.count({ userId: userOf(u)! }), mine.length, `count by user, ${where()}`);
        }
        for (const r of liveRecs) {
          assert.deepEqual(await store.get(r.id), r, `get, ${where()}`);
          assert.deepEqual(await store.getByTokenHash(r.tokenHash), r, `by token hash, ${where()}`);
          if (r.connectionId !== null) assert.deepEqual(await store.getByConnection(r.connectionId), r, `by connection, ${where()}`);
        }
        for (const r of model.values()) {
          if (!live(r)) assert.equal(await store.get(r.id), null, `expired never returned, ${where()}`);
        }
      }
    }
  });
}
