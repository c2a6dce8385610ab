/**
 * The redis-store benchmark's **floor with the store's reads**
 * (`FLOOR_READS` in bench/redis-store.ts) sends the same commands as the
 * store's own create and delete in the benchmark's scenario, command by
 * command. The benchmark reads the store's ratio to that floor as the cost
 * of netloop's own code, the commands aside: that holds only while both send
 * the same commands, so a script of the store that gains or drops a read,
 * or a floor that drifts from it, fails here.
 *
 * ```
 *   2,000 sessions of 50 users (40 each, as in the benchmark), 16 in flight:
 *     store.create  ─┐                         ┌─ store.delete
 *     FLOOR_READS   ─┴─ INFO commandstats ─────┴─ FLOOR_READS
 *                       calls per operation of each command, within 0.1
 * ```
 *
 * A real `redis-server` on a free loopback port; without it on the PATH
 * the tests are skipped with a loud notice, except under CI (`CI=true`),
 * where that is a failure.
 */

import { suite } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createClient } from 'redis';
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import { CREATE_PRUNE, CREATE_PRUNE_EVERY } from '../../lib/store/redis/scripts/index.js';
import { FLOOR, FLOOR_READS, encodedValues, floorArgs, records } from '../../bench/redis-store.js';
import { redisServerForTests } from '../helpers/redis-server.js';

const server = await redisServerForTests('the redis-store benchmark floor tests (test/integration/bench-redis-store.test.ts)');

type Raw = ReturnType<typeof createClient>;

/** Sessions and users of the scenario: 40 sessions per user, as at the benchmark's full length. */
const SESSIONS = 2_000;
const USERS = 50;
/** Operations in flight, as in the benchmark. */
const DEPTH = 16;
/** The largest difference allowed in calls per operation of one command (the store's first session of a user, the first create of all, differ a little). */
const TOLERANCE = 0.1;

/** Runs `fn` for every index, `DEPTH` at a time. */
async function each(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i += DEPTH) {
    const batch: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + DEPTH); k++) batch.push(fn(k));
    await Promise.all(batch);
  }
}

/** Calls per operation of each command `work` made (script calls and the statistics' own commands left out). */
async function commandsPerOp(raw: Raw, n: number, work: () => Promise<void>): Promise<Map<string, number>> {
  await raw.sendCommand(['CONFIG', 'RESETSTAT']);
  await work();
  const info = String(await raw.sendCommand(['INFO', 'commandstats']));
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = m[1]!;
    if (['fcall', 'evalsha', 'eval', 'info', 'config|resetstat', 'config'].includes(name)) continue;
    out.set(name, Number(m[2]) / n);
  }
  return out;
}

/** Every command either made, sorted. */
function commandNames(store: Map<string, number>, floor: Map<string, number>): string[] {
  return [...new Set([...store.keys(), ...floor.keys()])].sort();
}

/** The commands whose calls per operation differ by more than {@link TOLERANCE} between the two. */
function differing(store: Map<string, number>, floor: Map<string, number>): string[] {
  return commandNames(store, floor).filter((name) => Math.abs((store.get(name) ?? 0) - (floor.get(name) ?? 0)) > TOLERANCE);
}

/** Asserts both maps hold the same commands at the same rates (within {@link TOLERANCE}), naming each that differs. */
function sameCommands(store: Map<string, number>, floor: Map<string, number>, what: string): void {
  const names = commandNames(store, floor);
  const differ = differing(store, floor);
  const show = (m: Map<string, number>): string => names.map((name) => `${name} ${(m.get(name) ?? 0).toFixed(3)}`).join(', ');
  assert.equal(differ, [], `${what}: commands per operation differ.\n  store: ${show(store)}\n  floor: ${show(floor)}`);
}

const s = suite('redis-store benchmark: the floor with the store reads');

if (server !== null) {
  const raw: Raw = createClient({ url: server.url });
  raw.on('error', () => undefined);
  const store = new RedisStore({ url: server.url, prefix: 'bench:' });
  const sha = { create: '', delete: '' };
  const recs = records(SESSIONS, 'floor-test', USERS);
  const encoded = recs.map(encodedValues);
  const stats = {
    store: { create: new Map<string, number>(), delete: new Map<string, number>() },
    floor: { create: new Map<string, number>(), delete: new Map<string, number>() },
  };

  s.before(async () => {
    await raw.connect();
    sha.create = String(await raw.sendCommand(['SCRIPT', 'LOAD', FLOOR_READS.create]));
    sha.delete = String(await raw.sendCommand(['SCRIPT', 'LOAD', FLOOR_READS.delete]));
    await store.count(); // Connects and loads the library: neither is counted.
    stats.store.create = await commandsPerOp(raw, SESSIONS, () => each(SESSIONS, (i) => store.create(recs[i]!, { maxPerUser: 1_000 })));
    stats.floor.create = await commandsPerOp(raw, SESSIONS, () =>
      each(SESSIONS, (i) => raw.sendCommand(['EVALSHA', sha.create, '0', ...floorArgs(recs[i]!, encoded[i]!, recs[i]!.expiresAt), i % CREATE_PRUNE_EVERY === 0 ? String(CREATE_PRUNE) : '0'])),
    );
    stats.store.delete = await commandsPerOp(raw, SESSIONS, () => each(SESSIONS, (i) => store.delete(recs[i]!.id)));
    stats.floor.delete = await commandsPerOp(raw, SESSIONS, () => each(SESSIONS, (i) => raw.sendCommand(['EVALSHA', sha.delete, '0', ...floorArgs(recs[i]!, encoded[i]!, 0)])));
  });

  s.after(async () => {
    await store.close();
    await raw.close().catch(() => undefined);
    await server.stop();
  });

  s('both made and removed every session', async () => {
    assert.is(await store.count(), 0, 'the store is empty after its deletes');
    // The floor never takes a user out of its presence index (the store does, when the user's
    // last session leaves: one delete in forty here): that key alone stays.
    const left = (await raw.sendCommand(['KEYS', 'rfloor:*'])) as string[];
    assert.equal(left, ['rfloor:i:online'], "the floor's other keys are gone after its deletes");
    // Each create wrote its hash; each delete removed it with one DEL.
    assert.is(stats.store.create.get('hset'), 1);
    assert.is(stats.floor.create.get('hset'), 1);
    assert.is(stats.store.delete.get('del'), 1);
    assert.is(stats.floor.delete.get('del'), 1);
  });

  s('create: the floor sends the store create commands, command by command', () => {
    sameCommands(stats.store.create, stats.floor.create, 'create');
    // The reads that make the floor with the reads what it is, beside the writes-only floor.
    for (const read of ['hmget', 'zcard', 'pttl', 'zrangebyscore']) assert.ok((stats.floor.create.get(read) ?? 0) > 0, `the floor reads with ${read}`);
  });

  s('delete: the floor sends the store delete commands, command by command', () => {
    sameCommands(stats.store.delete, stats.floor.delete, 'delete');
    for (const read of ['mget', 'zscore', 'zrange', 'zcount']) assert.ok((stats.floor.delete.get(read) ?? 0) > 0, `the floor reads with ${read}`);
  });

  s('the writes-only floor is not the store: it lacks the reads', async () => {
    // The comparison can fail: the floor of the key writes alone differs from the store by its reads.
    const writes = String(await raw.sendCommand(['SCRIPT', 'LOAD', FLOOR.create]));
    const more = records(SESSIONS / 4, 'floor-test-writes', USERS);
    const enc = more.map(encodedValues);
    const floorWrites = await commandsPerOp(raw, more.length, () => each(more.length, (i) => raw.sendCommand(['EVALSHA', writes, '0', ...floorArgs(more[i]!, enc[i]!, more[i]!.expiresAt)])));
    assert.equal(differing(stats.store.create, floorWrites), ['hmget', 'pexpire', 'pttl', 'zcard', 'zrangebyscore']);
  });
}

s.run();
