/**
 * RedisStore against a real `redis-server` started on a free loopback port:
 * what only Redis can show (the shared conformance suite runs in
 * test/conformance/redis.test.ts) — TTLs
 * (`PTTL`), keys that never outlive their session (`SCAN`), atomic
 * `maxPerUser` across clients and processes, a server that hangs or restarts
 * mid-command, and prefix isolation.
 *
 * Without `redis-server` on the PATH the whole file is skipped with a loud
 * notice, except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { ManualClock, systemClock } from '../../../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../../../lib/core/errors.js';
import { RedisStore } from '../../../../lib/store/redis/redis-store.js';
import type { RedisStoreOptions } from '../../../../lib/store/redis/redis-store.js';
import type { SessionRecord } from '../../../../lib/store/contract.js';
import { freePort, redisServerForTests, startRedisServer } from '../../../helpers/redis-server.js';
import type { RedisServer } from '../../../helpers/redis-server.js';
import { horizonOf } from '../../../../lib/store/redis/keys.js';
import { makeRecord } from '../../../../lib/testing/store-conformance.js';
import { watchProcessFaults } from '../../../helpers/process-faults.js';

type Admin = ReturnType<typeof createClient>;

const server = await redisServerForTests('RedisStore tests (test/redis-store.test.ts)');

/** Every key under `prefix`, via SCAN (which also drops keys that have expired). */
async function keysOf(admin: Admin, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = (await admin.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
    cursor = String(next);
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

async function pttl(admin: Admin, key: string): Promise<number> {
  return Number(await admin.sendCommand(['PTTL', key]));
}

/**
 * Resolves after node-redis has written the commands issued so far: it writes
 * its queue in a `setImmediate` callback scheduled when the first command is
 * queued, so two check phases from now that write has happened.
 */
async function commandsWritten(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * How many times the server ran each command (lower case, as `INFO
 * commandstats` names them; a script's own calls count under their names)
 * while `work` ran: the statistics are reset first. Other clients of the
 * server must be idle meanwhile (the tests of this file run one at a time).
 */
async function commandCalls(admin: Admin, work: () => Promise<unknown>): Promise<Record<string, number>> {
  await admin.sendCommand(['CONFIG', 'RESETSTAT']);
  await work();
  const info = String(await admin.sendCommand(['INFO', 'commandstats']));
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

/** Polls `check` until it returns true, failing clearly after `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) assert.unreachable(`${what}: not true within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: expected a NetloopError, got ${String(err)}`);
    assert.is((err as { code: string }).code, code, `${what}: ${(err as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: expected a rejection with ${code}`);
}

/** The part of `key` between its first `{` and the last `}` (a hash tag). */
function tagOf(key: string): string {
  return key.slice(key.indexOf('{') + 1, key.lastIndexOf('}'));
}

/**
 * Checks every key under `prefix` against every other (the key layout in
 * `redis-store.ts`): each session hash is indexed by its token, connection,
 * user and the listing sets; each index entry points at a stored session
 * that agrees; every key has a TTL.
 */
async function assertConsistent(admin: Admin, prefix: string): Promise<number> {
  const keys = await keysOf(admin, prefix);
  const sessions = new Map<string, Record<string, string>>();
  for (const key of keys) {
    if (key.startsWith(`${prefix}s:`)) {
      const flat = (await admin.sendCommand(['HGETALL', key])) as string[];
      const h: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
      sessions.set(tagOf(key), h);
    }
  }
  for (const key of keys) {
    assert.ok((await pttl(admin, key)) > 0, `${key} has a TTL`);
    const rest = key.slice(prefix.length);
    if (rest.startsWith('t:') || rest.startsWith('c:')) {
      const id = String(await admin.sendCommand(['GET', key]));
      const h = sessions.get(id);
      assert.ok(h !== undefined, `${key} points at a stored session`);
      assert.is(rest.startsWith('t:') ? h.t : h.c, tagOf(key), `${key} agrees with its session`);
    } else if (rest.startsWith('u:') || rest.startsWith('i:')) {
      const members = (await admin.sendCommand(['ZRANGE', key, '0', '-1'])) as string[];
      if (rest === 'i:online') {
        for (const user of members) assert.ok([...sessions.values()].some((h) => h.u === user && h.c !== undefined), `${key} member ${user} has a bound session`);
        continue;
      }
      for (const id of members) {
        const h = sessions.get(id);
        assert.ok(h !== undefined, `${key} member ${id} is a stored session`);
        if (rest.startsWith('u:')) assert.is(h.u, tagOf(key).slice(2), `${key} member ${id} belongs to the user`);
        if (rest.startsWith('i:state:')) assert.is(h.st, rest.slice(8), `${key} member ${id} has that state`);
      }
    } else if (!rest.startsWith('x:')) {
      assert.ok(rest.startsWith('s:'), `unexpected key ${key}`);
    }
  }
  for (const [id, h] of sessions) {
    const fixed = JSON.parse(h.j!) as { id: string };
    assert.is(fixed.id, id);
    assert.is(String(await admin.sendCommand(['GET', `${prefix}t:{${h.t}}`])), id, `token index of ${id}`);
    if (h.c !== undefined) assert.is(String(await admin.sendCommand(['GET', `${prefix}c:{${h.c}}`])), id, `connection index of ${id}`);
    if (h.u !== undefined) assert.is(Number(await admin.sendCommand(['ZSCORE', `${prefix}u:{u:${h.u}}`, id])), Number(h.h), `user index of ${id}`);
    assert.is(Number(await admin.sendCommand(['ZSCORE', `${prefix}i:created`, id])), Number(h.k), `created index of ${id}`);
    assert.is(Number(await admin.sendCommand(['ZSCORE', `${prefix}i:expires`, id])), Number(h.e), `expiry index of ${id}`);
    assert.is(Number(await admin.sendCommand(['ZSCORE', `${prefix}i:state:${h.st}`, id])), Number(h.k), `state index of ${id}`);
  }
  return sessions.size;
}

/** A record stamped by the real clock with a TTL of `ttl` ms. */
function liveRecord(ttl: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const clock = new ManualClock(0, Date.now());
  return makeRecord(clock, { expiresAt: clock.wallNow() + ttl, ttl, ...overrides });
}

/** The peer process of the two-process tests, speaking JSON lines. */
class Peer {
  readonly #child: ChildProcess;
  readonly #waiting: Array<(reply: { ok: boolean; result?: unknown; code?: string }) => void> = [];

  constructor(url: string, prefix: string) {
    const script = fileURLToPath(new URL('../../../fixtures/redis-peer.js', import.meta.url));
    this.#child = spawn(process.execPath, [script, url, prefix], { stdio: ['pipe', 'pipe', 'inherit'] });
    readline.createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      this.#waiting.shift()?.(JSON.parse(line) as { ok: boolean; result?: unknown; code?: string });
    });
  }

  async call<T>(request: object): Promise<T> {
    const reply = await new Promise<{ ok: boolean; result?: unknown; code?: string }>((resolve) => {
      this.#waiting.push(resolve);
      this.#child.stdin!.write(`${JSON.stringify(request)}\n`);
    });
    if (!reply.ok) throw new Error(`peer failed: ${JSON.stringify(reply)}`);
    return reply.result as T;
  }

  /** Closes its stdin and awaits its exit (killing it after a bound). */
  async end(): Promise<number | null> {
    const exit = new Promise<number | null>((resolve) => this.#child.once('exit', (code) => resolve(code)));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    const code = await exit;
    clearTimeout(timer);
    return code;
  }
}

if (server !== null) {
  const url = server.url;
  let serial = 0;
  const nextPrefix = (tag: string): string => `${tag}${++serial}:`;

  interface Ctx {
    admin: Admin;
    stores: RedisStore[];
  }
  const s = suite<Ctx>('redis-store', { admin: undefined as unknown as Admin, stores: [] });
  const open = (ctx: Ctx, options: RedisStoreOptions = {}): RedisStore => {
    // Generous timeouts where timing is not the point: a loaded machine must not fail these tests.
    const store = new RedisStore({ url, prefix: nextPrefix('t'), reconnectMaxDelayMs: 100, commandTimeoutMs: 10_000, ...options });
    ctx.stores.push(store);
    return store;
  };

  s.before(async (ctx) => {
    ctx.admin = createClient({ url, socket: { reconnectStrategy: 50 } });
    ctx.admin.on('error', () => undefined);
    await ctx.admin.connect();
  });
  s.after.each(async (ctx) => {
    for (const store of ctx.stores.splice(0)) await store.close();
  });
  s.after(async (ctx) => {
    await ctx.admin.close();
  });

  s('create sets PX from expiresAt on the session, and its index entries to its horizon; touch moves them', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const rec = liveRecord(5_000, { userId: 'alice', connectionId: 'c-ttl', state: 'ACTIVE' });
    assert.is(await store.create(rec), true);
    const session = `${p}s:{${rec.id}}`;
    const keys = [session, `${p}t:{${rec.tokenHash}}`, `${p}c:{c-ttl}`, `${p}u:{u:alice}`, `${p}i:created`, `${p}i:expires`, `${p}i:state:ACTIVE`, `${p}i:online`];
    assert.equal(await keysOf(ctx.admin, p), [...keys].sort(), 'exactly these keys');
    // The session hash carries the TTL exactly; the index entries live until its horizon (the
    // expiry plus a quarter of the time left), so that a heartbeat moves them only now and then.
    // A user's sorted set is shared by the user's sessions: it only ever grows its TTL (to the
    // latest horizon of a member), and its entries are verified on read.
    const userKey = `${p}u:{u:alice}`;
    const within = async (ttl: number, what: string, userMost = horizonOf(ttl, 0)): Promise<void> => {
      for (const key of keys) {
        const ms = await pttl(ctx.admin, key);
        const most = key === session ? ttl : key === userKey ? userMost : horizonOf(ttl, 0);
        assert.ok(ms > ttl - 1_000 && ms <= most, `${key} PTTL ${ms} ${what} (at most ${most} ms)`);
      }
    };
    await within(5_000, 'within the 5 s TTL');
    assert.is(await store.touch(rec.id, Date.now() + 60_000, Date.now()), true);
    await within(60_000, 'refreshed to 60 s');
    assert.is(await store.touch(rec.id, Date.now() + 3_000, Date.now()), true);
    await within(3_000, 'shortened to 3 s', horizonOf(60_000, 0));
    const got = await store.get(rec.id);
    assert.ok(got !== null && got.expiresAt > Date.now());

    const graced = open(ctx, { expiryGraceMs: 10_000 });
    const g = liveRecord(5_000, { userId: 'alice' });
    await graced.create(g);
    for (const key of [`${graced.prefix}s:{${g.id}}`, `${graced.prefix}u:{u:alice}`, `${graced.prefix}i:expires`]) {
      const ms = await pttl(ctx.admin, key);
      assert.ok(ms > 14_000 && ms <= horizonOf(5_000, 0) * 1.125 + 10_000, `${key} PTTL ${ms} = TTL + grace (+ the horizon's slack)`);
    }
  });

  s('a user index lives until the horizon of its latest session; its entries are verified on read', async (ctx) => {
    const store = open(ctx);
    const shortOne = liveRecord(2_000, { userId: 'bob' });
    const longOne = liveRecord(9_000, { userId: 'bob' });
    await store.create(shortOne);
    await store.create(longOne);
    const ms = await pttl(ctx.admin, `${store.prefix}u:{u:bob}`);
    assert.ok(ms > 8_000 && ms <= horizonOf(9_000, 0), `user index PTTL ${ms} follows the latest session`);
    await store.delete(longOne.id);
    assert.ok((await pttl(ctx.admin, `${store.prefix}u:{u:bob}`)) > 1_000, 'it still covers the short one');
    assert.equal((await store.getByUser('bob')).map((r) => r.id), [shortOne.id]);
  });

  s('no key under the prefix outlives its session: after expiry and after delete', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    // Short real TTLs that Redis itself expires: nothing of ours removes these keys.
    await store.create(liveRecord(200, { userId: 'alice', connectionId: 'c-a' }));
    await store.create(liveRecord(250, { userId: 'alice', connectionId: null, state: 'IDLE' }));
    await store.create(liveRecord(300, { userId: null, connectionId: 'c-b' }));
    assert.ok((await keysOf(ctx.admin, p)).length >= 9);
    await eventually('every key expired by Redis', 5_000, async () => (await keysOf(ctx.admin, p)).length === 0);

    const recs = [
      liveRecord(60_000, { userId: 'carol', connectionId: 'c-1' }),
      liveRecord(60_000, { userId: 'carol', connectionId: 'c-2', state: 'IDLE' }),
      liveRecord(60_000, { userId: null, connectionId: null }),
    ];
    for (const r of recs) await store.create(r);
    await store.set({ ...recs[0]!, tokenHash: 'f'.repeat(64), userId: 'dave', connectionId: 'c-9', state: 'CLOSED' });
    assert.is(await assertConsistent(ctx.admin, p), 3);
    for (const r of recs) assert.is(await store.delete(r.id), true);
    assert.equal(await keysOf(ctx.admin, p), [], 'delete leaves no key behind');
  });

  s('a listing index first made by a later write (a create, an update) takes the TTL of the others', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const a = liveRecord(60_000, { userId: 'alice', connectionId: 'c-a', state: 'ACTIVE' });
    assert.is(await store.create(a), true);
    // i:expires has its TTL by now: these writes make i:state:IDLE and i:state:CLOSED.
    assert.is(await store.create(liveRecord(30_000, { userId: 'bob', connectionId: null, state: 'IDLE' })), true);
    assert.ok((await store.update(a.id, { state: 'CLOSED' })) !== null);
    for (const key of [`${p}i:state:IDLE`, `${p}i:state:CLOSED`, `${p}i:online`, `${p}i:created`]) {
      assert.ok((await pttl(ctx.admin, key)) > 25_000, `${key} has the listing TTL`);
    }
    assert.is(await assertConsistent(ctx.admin, p), 2);
  });

  s('a create under maxPerUser counts only live sessions and prunes the user entries whose horizon passed', async (ctx) => {
    const clock = new ManualClock(0, Date.now());
    // Without the listing indexes: no expiry pruning on the side, only the count's own.
    const store = open(ctx, { clock, listing: false });
    const uk = `${store.prefix}u:{u:carol}`;
    const make = (ttl: number): SessionRecord => makeRecord(clock, { expiresAt: clock.wallNow() + ttl, ttl, userId: 'carol' });
    const short = [make(1_000), make(2_000)];
    for (const r of short) assert.is(await store.create(r, { maxPerUser: 3 }), true);
    assert.is(await store.create(make(600_000), { maxPerUser: 3 }), true);
    assert.is(await store.create(make(600_000), { maxPerUser: 3 }), false, 'three live: the limit');
    // Past the first one's horizon (its expiry and a quarter of its TTL), not the second's.
    clock.advance(1_300);
    assert.is(await store.create(make(600_000), { maxPerUser: 3 }), true, 'the first no longer counts');
    assert.equal(((await ctx.admin.sendCommand(['ZRANGE', uk, '0', '-1'])) as string[]).includes(short[0]!.id), false, 'its entry is pruned');
    // Past its expiry, before its horizon: verified against the session, dead, pruned.
    clock.advance(800);
    assert.is(await store.create(make(600_000), { maxPerUser: 3 }), true, 'the second no longer counts');
    assert.is(Number(await ctx.admin.sendCommand(['ZCARD', uk])), 3, 'only the three live entries are left');
    assert.is(await store.create(make(600_000), { maxPerUser: 3 }), false);
  });

  s('maxPerUser is atomic across two clients under concurrent creates', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx, { prefix: a.prefix });
    const recs = Array.from({ length: 60 }, () => liveRecord(60_000, { userId: 'alice' }));
    const results = await Promise.all(recs.map((r, i) => (i % 2 === 0 ? a : b).create(r, { maxPerUser: 5 })));
    assert.is(results.filter(Boolean).length, 5, 'exactly the limit accepted');
    assert.is(await a.count({ userId: 'alice' }), 5);
    assert.is(await b.count(), 5);
    assert.is(Number(await ctx.admin.sendCommand(['ZCARD', `${a.prefix}u:{u:alice}`])), 5);
    assert.is(await assertConsistent(ctx.admin, a.prefix), 5);
  });

  s('two processes share sessions; a login policy holds across them', async (ctx) => {
    const store = open(ctx);
    const peer = new Peer(url, store.prefix);
    try {
      const first = liveRecord(60_000, { userId: 'alice' });
      assert.is(await peer.call<boolean>({ op: 'create', record: first, max: 2 }), true, 'created in the peer');
      assert.equal(await store.getByTokenHash(first.tokenHash), first, 'found here by token hash');

      const expiresAt = Date.now() + 120_000;
      assert.is(await store.touch(first.id, expiresAt, Date.now()), true, 'heartbeat from here');
      assert.ok((await pttl(ctx.admin, `${store.prefix}s:{${first.id}}`)) > 119_000, 'TTL refreshed');
      assert.is((await peer.call<SessionRecord>({ op: 'get', id: first.id })).expiresAt, expiresAt, 'the peer sees the heartbeat');

      assert.is(await store.create(liveRecord(60_000, { userId: 'alice' }), { maxPerUser: 2 }), true, 'second login here');
      const third = liveRecord(60_000, { userId: 'alice' });
      assert.is(await peer.call<boolean>({ op: 'create', record: third, max: 2 }), false, 'the peer is refused a third');
      assert.is(await store.delete(first.id), true, 'deleted from here');
      assert.is(await peer.call<unknown>({ op: 'get', id: first.id }), null, 'gone for the peer');
      assert.is(await peer.call<boolean>({ op: 'create', record: third, max: 2 }), true, 'room again for the peer');

      // Both processes race for the same user: the limit holds in total.
      const mine = Array.from({ length: 30 }, () => liveRecord(60_000, { userId: 'bob' }));
      const theirs = Array.from({ length: 30 }, () => liveRecord(60_000, { userId: 'bob' }));
      const [here, there] = await Promise.all([
        Promise.all(mine.map((r) => store.create(r, { maxPerUser: 3 }))),
        peer.call<boolean[]>({ op: 'burst', records: theirs, max: 3 }),
      ]);
      assert.is([...here, ...there].filter(Boolean).length, 3, 'exactly 3 for bob across both processes');
      assert.is(await store.count({ userId: 'bob' }), 3);
      assert.is(await assertConsistent(ctx.admin, store.prefix), 5);
    } finally {
      assert.is(await peer.end(), 0, 'the peer exits cleanly');
    }
  });

  s('a hung server: operations fail with NETLOOP_STORE_UNAVAILABLE within commandTimeoutMs, then recover', async (ctx) => {
    const store = open(ctx, { commandTimeoutMs: 300 });
    const rec = liveRecord(60_000);
    await store.create(rec);
    server.pause();
    try {
      const started = performance.now();
      const outcomes = await Promise.allSettled([store.get(rec.id), store.create(liveRecord(60_000)), store.count()]);
      const elapsed = performance.now() - started;
      for (const o of outcomes) {
        assert.is(o.status, 'rejected');
        const err = (o as PromiseRejectedResult).reason as unknown;
        assert.ok(isNetloopError(err, ErrorCode.STORE_UNAVAILABLE), String(err));
      }
      assert.ok(elapsed >= 250 && elapsed < 2_000, `settled after ${elapsed.toFixed(0)} ms`);
    } finally {
      server.resume();
    }
    assert.equal(await store.get(rec.id), rec, 'answers again once the server runs');
  });

  s('Redis restarted mid-command: in-flight operations fail fast, the store reconnects, the registry is consistent', async (ctx) => {
    const store = open(ctx, { commandTimeoutMs: 1_000 });
    const other = open(ctx, { prefix: store.prefix, commandTimeoutMs: 1_000 });
    for (let i = 0; i < 5; i++) await store.create(liveRecord(60_000, { userId: 'alice' }));
    assert.is(await other.count(), 5, 'both clients connected before the freeze');
    // Freeze the server so that every command below is sent and never answered, then kill it.
    server.pause();
    const started = performance.now();
    const inflight = Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store.create(liveRecord(60_000, { userId: 'alice' }), { maxPerUser: 8 }) : other.count())),
    );
    await commandsWritten();
    await server.restart('SIGKILL');
    const outcomes = await inflight;
    const elapsed = performance.now() - started;
    for (const o of outcomes) {
      assert.is(o.status, 'rejected', 'never answered, so never reported done');
      const err = (o as PromiseRejectedResult).reason as unknown;
      assert.ok(isNetloopError(err, ErrorCode.STORE_UNAVAILABLE), String(err));
    }
    assert.ok(elapsed < 5_000, `all settled after ${elapsed.toFixed(0)} ms`);

    // The client reconnects by itself; the first operations may still fail while it does.
    await eventually('the store answers again', 5_000, async () => {
      try {
        await store.count();
        return true;
      } catch (err) {
        assert.ok(isNetloopError(err, ErrorCode.STORE_UNAVAILABLE), String(err));
        return false;
      }
    });
    // No persistence: the restarted server is empty, and the store says so consistently.
    assert.is(await store.count(), 0);
    assert.is(await other.count({ userId: 'alice' }), 0);
    // The scripts were forgotten with the restart; they are sent again transparently.
    const again = Array.from({ length: 4 }, () => liveRecord(60_000, { userId: 'alice' }));
    const results = await Promise.all(again.map((r, i) => (i % 2 === 0 ? store : other).create(r, { maxPerUser: 3 })));
    assert.is(results.filter(Boolean).length, 3);
    assert.is(await assertConsistent(ctx.admin, store.prefix), 3);
  });

  s('connections killed mid-burst: every session is whole or absent, and accepted ones are kept', async (ctx) => {
    const store = open(ctx, { commandTimeoutMs: 1_000 });
    const recs = Array.from({ length: 200 }, (_, i) =>
      liveRecord(60_000, { userId: `u${i % 7}`, connectionId: i % 3 === 0 ? null : `c-${i}`, state: i % 2 === 0 ? 'ACTIVE' : 'IDLE' }),
    );
    const burst = Promise.allSettled(recs.map((r) => store.create(r, { maxPerUser: 20 })));
    await ctx.admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
    const outcomes = await burst;
    for (const o of outcomes) {
      if (o.status === 'rejected') assert.ok(isNetloopError(o.reason, ErrorCode.STORE_UNAVAILABLE), String(o.reason));
    }
    await eventually('the store answers again', 5_000, async () => store.count().then(() => true, () => false));
    const stored = await assertConsistent(ctx.admin, store.prefix);
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled' && o.value) assert.ok((await store.get(recs[i]!.id)) !== null, `accepted record ${i} is stored`);
    }
    assert.is(await store.count(), stored);
  });

  s('an unreachable server: operations fail within commandTimeoutMs and close does not hang', async (ctx) => {
    const port = await freePort();
    const store = open(ctx, { url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200, connectTimeoutMs: 200 });
    const errors: unknown[] = [];
    let sawError: () => void = () => undefined;
    const firstError = new Promise<void>((resolve) => (sawError = resolve));
    const quiet = new RedisStore({
      url: `redis://127.0.0.1:${port}`,
      commandTimeoutMs: 200,
      onError: (e) => {
        errors.push(e);
        sawError();
      },
    });
    ctx.stores.push(quiet);
    const started = performance.now();
    await rejectsWith(store.count(), ErrorCode.STORE_UNAVAILABLE, 'count');
    await rejectsWith(store.get('x'), ErrorCode.STORE_UNAVAILABLE, 'get');
    await rejectsWith(quiet.get('x'), ErrorCode.STORE_UNAVAILABLE, 'get');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 550 && elapsed < 3_000, `three timeouts took ${elapsed.toFixed(0)} ms`);
    await firstError;
    assert.ok(errors.length > 0 && errors.every((e) => isNetloopError(e, ErrorCode.STORE_UNAVAILABLE)), 'onError saw coded errors');
    await store.close();
  });

  s('a dead Redis: create() and ping() reject with NETLOOP_STORE_UNAVAILABLE within commandTimeoutMs; once a server listens there, ping() succeeds', async (ctx) => {
    const port = await freePort();
    const store = open(ctx, { url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300, connectTimeoutMs: 200, reconnectMaxDelayMs: 100 });
    for (const [what, op] of [
      ['create', () => store.create(liveRecord(60_000, { userId: 'dead' }), { maxPerUser: 1 })],
      ['ping', () => store.ping()],
    ] as const) {
      const started = performance.now();
      await rejectsWith(op(), ErrorCode.STORE_UNAVAILABLE, what);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 1_500, `${what} failed after ${elapsed.toFixed(0)} ms (commandTimeoutMs 300)`);
    }
    const late = await startRedisServer({ port });
    try {
      // The store's client reconnects by itself (backoff at most 100 ms); ping waits at most 300 ms per try.
      await eventually('ping to succeed against the new server', 5_000, () => store.ping().then(() => true, () => false));
      assert.is(await store.create(liveRecord(60_000, { userId: 'alive' }), { maxPerUser: 1 }), true);
      await store.purgeKeys();
    } finally {
      await store.close();
      await late.stop();
    }
  });

  s('an onError callback that throws or rejects is reported as a process warning, never an uncaught exception', async (ctx) => {
    const faults = watchProcessFaults();
    try {
      const port = await freePort();
      for (const onError of [
        () => {
          throw new Error('onError threw');
        },
        async () => {
          throw new Error('onError rejected');
        },
      ]) {
        const store = open(ctx, { url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200, connectTimeoutMs: 200, onError });
        await rejectsWith(store.get('x'), ErrorCode.STORE_UNAVAILABLE, 'get');
      }
      await faults.warning(ErrorCode.HANDLER_ERROR, /onError threw/);
      await faults.warning(ErrorCode.HANDLER_ERROR, /onError rejected/);
      faults.assertClean();
    } finally {
      faults.stop();
    }
  });

  s('prefix isolation: same ids, tokens and users under two prefixes never meet', async (ctx) => {
    const a = open(ctx);
    const b = open(ctx);
    const rec = liveRecord(60_000, { userId: 'alice', connectionId: 'c-same' });
    assert.is(await a.create(rec, { maxPerUser: 1 }), true);
    assert.is(await b.create(rec, { maxPerUser: 1 }), true, 'the other prefix has its own limit and indexes');
    assert.is(await b.delete(rec.id), true);
    assert.equal(await a.get(rec.id), rec, 'untouched by the other prefix');
    assert.equal(await a.getByConnection('c-same'), rec);
    await b.create(liveRecord(60_000));
    await b.clear();
    assert.is(await a.count(), 1);
    assert.is(await b.count(), 0);
    for (const key of await keysOf(ctx.admin, a.prefix.slice(0, -1))) assert.ok(key.startsWith(a.prefix) || key.startsWith(b.prefix));
    assert.equal(await keysOf(ctx.admin, b.prefix), []);
  });

  s('a client passed in is used and left open; a closed one gives NETLOOP_STORE_UNAVAILABLE', async (ctx) => {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    const store = new RedisStore({ client, prefix: nextPrefix('own'), clock: systemClock });
    const rec = liveRecord(60_000);
    assert.is(await store.create(rec), true);
    assert.equal(await store.getByTokenHash(rec.tokenHash), rec);
    await store.close();
    assert.ok(client.isOpen, 'close leaves a caller client open');
    assert.is(await client.sendCommand(['PING']), 'PONG');
    await client.close();
    const orphan = new RedisStore({ client, prefix: store.prefix });
    await rejectsWith(orphan.get(rec.id), ErrorCode.STORE_UNAVAILABLE, 'closed client');
    await orphan.close();
    const cleaner = open(ctx, { prefix: store.prefix });
    assert.ok((await cleaner.purgeKeys()) > 0);
    assert.equal(await keysOf(ctx.admin, store.prefix), []);
  });

  s('duplicates are refused with NETLOOP_INVALID_VALUE; foreign data is NETLOOP_STORE_CORRUPT', async (ctx) => {
    const store = open(ctx);
    const rec = liveRecord(60_000, { connectionId: 'c-dup' });
    await store.create(rec);
    await rejectsWith(store.create({ ...rec }), ErrorCode.INVALID_VALUE, 'same id');
    await rejectsWith(store.create(liveRecord(60_000, { tokenHash: rec.tokenHash })), ErrorCode.INVALID_VALUE, 'same token hash');
    await rejectsWith(store.create(liveRecord(60_000, { connectionId: 'c-dup' })), ErrorCode.INVALID_VALUE, 'same connection');
    const other = liveRecord(60_000);
    await store.create(other);
    await rejectsWith(store.set({ ...other, connectionId: 'c-dup' }), ErrorCode.INVALID_VALUE, 'set onto a bound connection');
    await rejectsWith(store.set({ ...other, tokenHash: rec.tokenHash }), ErrorCode.INVALID_VALUE, 'set onto a used token');
    await rejectsWith(store.create({ ...other, id: '' }), ErrorCode.INVALID_VALUE, 'empty id');
    await rejectsWith(store.touch(rec.id, Number.NaN, 0), ErrorCode.INVALID_VALUE, 'NaN expiry');
    await rejectsWith(store.list({ state: 'NOPE' as never }), ErrorCode.INVALID_OPTION, 'unknown state');
    assert.is(await assertConsistent(ctx.admin, store.prefix), 2);

    await ctx.admin.sendCommand(['HSET', `${store.prefix}s:{${rec.id}}`, 'j', '{not json']);
    await rejectsWith(store.get(rec.id), ErrorCode.STORE_CORRUPT, 'unparseable record');
    await ctx.admin.sendCommand(['SET', `${store.prefix}u:{u:mallory}`, 'x']);
    await rejectsWith(store.create(liveRecord(60_000, { userId: 'mallory' }), { maxPerUser: 1 }), ErrorCode.STORE_CORRUPT, 'wrong type');
    await store.purgeKeys();
  });

  s('the scripts run as one function library (FCALL), loaded again after FUNCTION FLUSH', async (ctx) => {
    const store = open(ctx);
    const rec = liveRecord(60_000, { userId: 'fay', connectionId: 'c-fn' });
    await ctx.admin.sendCommand(['CONFIG', 'RESETSTAT']);
    assert.is(await store.create(rec), true);
    assert.is(await store.touch(rec.id, Date.now() + 90_000, Date.now()), true);
    const stats = String(await ctx.admin.sendCommand(['INFO', 'commandstats']));
    assert.match(stats, /^cmdstat_fcall:calls=[1-9]/m, 'the operations are FCALLs');
    assert.not.match(stats, /^cmdstat_(evalsha|eval):/m, 'no script is sent with EVAL or EVALSHA');
    const libraries = JSON.stringify(await ctx.admin.sendCommand(['FUNCTION', 'LIST', 'LIBRARYNAME', 'netloop_*']));
    assert.match(libraries, /netloop_[0-9a-f]{16}/, 'the library is loaded under its versioned name');
    // A server that lost its functions (FUNCTION FLUSH, or a restart without persistence) gets the library again.
    await ctx.admin.sendCommand(['FUNCTION', 'FLUSH']);
    const again = await Promise.all([store.get(rec.id), store.touch(rec.id, Date.now() + 120_000, Date.now()), store.getByConnection('c-fn')]);
    assert.is(again[0]?.id, rec.id);
    assert.is(again[1], true);
    assert.is(again[2]?.id, rec.id);
    assert.is(await store.delete(rec.id), true);
    assert.equal(await keysOf(ctx.admin, store.prefix), []);
  });

  s('a server without FCALL (Redis before 7.0) is refused with NETLOOP_UNSUPPORTED', async (ctx) => {
    const old = await startRedisServer({ extraArgs: ['--rename-command', 'FCALL', ''] });
    try {
      const store = open(ctx, { url: old.url });
      await rejectsWith(store.create(liveRecord(60_000)), ErrorCode.UNSUPPORTED, 'create');
      await rejectsWith(store.touch('s-old', Date.now() + 60_000, Date.now()), ErrorCode.UNSUPPORTED, 'touch');
    } finally {
      for (const store of ctx.stores.splice(0)) await store.close();
      await old.stop();
    }
  });

  s('a create claims its token and connection entries by writing them: a refusal gives the claim back, a dead holder is taken over', async (ctx) => {
    const clock = new ManualClock(0, Date.now());
    // A long grace keeps the keys of a session the clock has expired, as a lagging process would see them.
    const store = open(ctx, { clock, expiryGraceMs: 600_000 });
    const p = store.prefix;
    const live = makeRecord(clock, { expiresAt: clock.wallNow() + 60_000, ttl: 60_000, userId: 'gus', connectionId: 'c-held' });
    assert.is(await store.create(live), true);
    const refused = makeRecord(clock, { expiresAt: clock.wallNow() + 60_000, ttl: 60_000, userId: 'gus', connectionId: 'c-held' });
    await rejectsWith(store.create(refused), ErrorCode.INVALID_VALUE, 'a live session holds the connection');
    assert.is(Number(await ctx.admin.sendCommand(['EXISTS', `${p}t:{${refused.tokenHash}}`])), 0, 'the token entry it claimed is given back');
    assert.is(await assertConsistent(ctx.admin, p), 1);

    const short = makeRecord(clock, { expiresAt: clock.wallNow() + 1_000, ttl: 1_000, connectionId: 'c-short' });
    assert.is(await store.create(short), true);
    clock.advance(2_000);
    const heir = makeRecord(clock, { expiresAt: clock.wallNow() + 60_000, ttl: 60_000, tokenHash: short.tokenHash, connectionId: 'c-short' });
    assert.is(await store.create(heir), true, 'the entries of a dead session are taken over');
    assert.is((await store.getByTokenHash(short.tokenHash))?.id, heir.id);
    assert.is((await store.getByConnection('c-short'))?.id, heir.id);
  });

  s('a user index emptied by the count of a create gets a TTL again', async (ctx) => {
    const clock = new ManualClock(0, Date.now());
    const store = open(ctx, { clock, expiryGraceMs: 600_000, listing: false });
    const uk = `${store.prefix}u:{u:hal}`;
    assert.is(await store.create(makeRecord(clock, { expiresAt: clock.wallNow() + 1_000, ttl: 1_000, userId: 'hal' }), { maxPerUser: 1 }), true);
    // Past the first session's horizon: the count prunes its entry, which empties (and so deletes) the user index.
    clock.advance(2_000);
    assert.is(await store.create(makeRecord(clock, { expiresAt: clock.wallNow() + 60_000, ttl: 60_000, userId: 'hal' }), { maxPerUser: 1 }), true);
    assert.is(Number(await ctx.admin.sendCommand(['ZCARD', uk])), 1);
    const ms = await pttl(ctx.admin, uk);
    assert.ok(ms > 600_000, `the user index made again has a TTL (PTTL ${ms})`);
  });

  s('touch to an expiry already past removes the session; options are validated', async (ctx) => {
    const store = open(ctx);
    const rec = liveRecord(60_000, { userId: 'zed' });
    await store.create(rec);
    assert.is(await store.touch(rec.id, Date.now() - 1, Date.now()), true);
    assert.is(await store.get(rec.id), null);
    assert.equal(await keysOf(ctx.admin, store.prefix), []);
    const invalid = [
      { url, client: createClient() },
      { commandTimeoutMs: 0 },
      { maxPageSize: 0 },
      { defaultPageSize: 5, maxPageSize: 2 },
      { prefix: 5 as unknown as string },
    ] as RedisStoreOptions[];
    for (const options of invalid) {
      try {
        new RedisStore(options);
        assert.unreachable(`accepted ${JSON.stringify(Object.keys(options))}`);
      } catch (err) {
        assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), String(err));
      }
    }
    await rejectsWith(store.create(liveRecord(1_000), { maxPerUser: 0 }), ErrorCode.INVALID_OPTION, 'maxPerUser 0');
    const paged = await store.list({}, { limit: 50_000 });
    assert.equal(paged, { sessions: [], total: 0 });
  });

  s('a batch of heartbeats writes each shared listing key once, every score as one touch at a time would', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const recs: SessionRecord[] = [];
    for (const user of ['ann', 'ben', 'cid']) {
      for (const ttl of [60_000, 61_000]) recs.push(liveRecord(ttl, { userId: user, connectionId: `c-${user}-${ttl}` }));
    }
    for (const r of recs) assert.is(await store.create(r), true);
    // Within each session's horizon (a quarter of its 60 s TTL): the heartbeat's common case.
    const moved = recs.map((r, i) => ({ id: r.id, expiresAt: r.expiresAt + 1_000 + i }));
    let results: boolean[] = [];
    const calls = await commandCalls(ctx.admin, async () => {
      results = await Promise.all(moved.map((m) => store.touch(m.id, m.expiresAt, Date.now())));
    });
    assert.equal(results, recs.map(() => true));
    assert.is(calls['fcall'], 1, 'the touches of one turn are one call');
    assert.is(calls['zadd'], 2, 'one ZADD for i:expires and one for i:online, for the six touches');
    assert.is(await assertConsistent(ctx.admin, p), 6);
    for (const [i, user] of ['ann', 'ben', 'cid'].entries()) {
      const latest = Math.max(moved[2 * i]!.expiresAt, moved[2 * i + 1]!.expiresAt);
      assert.is(Number(await ctx.admin.sendCommand(['ZSCORE', `${p}i:online`, user])), latest, `presence of ${user} is its latest expiry`);
    }
    assert.is(await store.onlineCount(), 3);
  });

  s('a batch of touches moving later, earlier and into the past leaves the listing and presence indexes exact', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const s1 = liveRecord(60_000, { userId: 'uma', connectionId: 'c-s1' });
    const s2 = liveRecord(90_000, { userId: 'uma', connectionId: 'c-s2' });
    const s3 = liveRecord(60_000, { userId: 'vic', connectionId: 'c-s3' });
    const s4 = liveRecord(90_000, { userId: 'vic', connectionId: null });
    const s5 = liveRecord(60_000, { userId: 'wes', connectionId: 'c-s5' });
    for (const r of [s1, s2, s3, s4, s5]) assert.is(await store.create(r), true);
    const now = Date.now();
    // One turn: later past the horizon, earlier, into the past (a removal), later (unbound), a heartbeat.
    const results = await Promise.all([
      store.touch(s1.id, now + 120_000, now),
      store.touch(s2.id, now + 10_000, now),
      store.touch(s3.id, now - 1, now),
      store.touch(s4.id, now + 200_000, now),
      store.touch(s5.id, s5.expiresAt + 1_000, now),
    ]);
    assert.equal(results, [true, true, true, true, true]);
    assert.is(await assertConsistent(ctx.admin, p), 4, 'the past one is removed, every other entry agrees with its session');
    assert.is(Number(await ctx.admin.sendCommand(['ZSCORE', `${p}i:online`, 'uma'])), now + 120_000, 'uma: her latest bound session');
    assert.is(await ctx.admin.sendCommand(['ZSCORE', `${p}i:online`, 'vic']), null, 'vic: no bound session left');
    assert.is(Number(await ctx.admin.sendCommand(['ZSCORE', `${p}i:online`, 'wes'])), s5.expiresAt + 1_000);
    assert.equal([await store.isOnline('uma'), await store.isOnline('vic'), await store.isOnline('wes')], [true, false, true]);
    assert.is(await store.onlineCount(), 2);
    assert.is(await store.count(), 4);
    for (const key of ['i:expires', 'i:created', 'i:online', 'i:state:ACTIVE']) {
      const ms = await pttl(ctx.admin, `${p}${key}`);
      assert.ok(ms > 195_000, `${key} lives as long as the latest session (PTTL ${ms})`);
    }
  });

  s('delete reads the token and connection entries in one MGET and removes only those still pointing at the session', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const both = liveRecord(60_000, { userId: 'ida', connectionId: 'c-both' });
    const foreignToken = liveRecord(60_000, { userId: 'ida', connectionId: 'c-ft' });
    const foreignConn = liveRecord(60_000, { userId: 'ida', connectionId: 'c-fc' });
    const foreignBoth = liveRecord(60_000, { userId: 'ida', connectionId: 'c-fb' });
    const tokenOnly = liveRecord(60_000, { userId: 'ida', connectionId: null });
    for (const r of [both, foreignToken, foreignConn, foreignBoth, tokenOnly]) assert.is(await store.create(r), true);
    // Entries another session took over (what a process whose clock runs ahead may do): never removed by this delete.
    const take = (key: string): Promise<unknown> => ctx.admin.sendCommand(['SET', key, 'someone-else', 'PX', '60000']);
    await take(`${p}t:{${foreignToken.tokenHash}}`);
    await take(`${p}c:{c-fc}`);
    await take(`${p}t:{${foreignBoth.tokenHash}}`);
    await take(`${p}c:{c-fb}`);
    const calls = await commandCalls(ctx.admin, async () => {
      assert.is(await store.delete(both.id), true);
    });
    assert.is(calls['mget'], 1, 'one read of both entries');
    assert.is(calls['get'], undefined, 'no GET of each');
    for (const r of [foreignToken, foreignConn, foreignBoth, tokenOnly]) assert.is(await store.delete(r.id), true);
    assert.equal(await keysOf(ctx.admin, p), [`${p}c:{c-fb}`, `${p}c:{c-fc}`, `${p}t:{${foreignBoth.tokenHash}}`, `${p}t:{${foreignToken.tokenHash}}`].sort());
    for (const key of await keysOf(ctx.admin, p)) assert.is(await ctx.admin.sendCommand(['GET', key]), 'someone-else', `${key} is left to its owner`);

    // Without the token index, the connection entry alone.
    const lean = open(ctx, { tokenIndex: false });
    const own = liveRecord(60_000, { userId: 'jo', connectionId: 'c-own' });
    const taken = liveRecord(60_000, { userId: 'jo', connectionId: 'c-taken' });
    for (const r of [own, taken]) assert.is(await lean.create(r), true);
    await ctx.admin.sendCommand(['SET', `${lean.prefix}c:{c-taken}`, 'someone-else', 'PX', '60000']);
    for (const r of [own, taken]) assert.is(await lean.delete(r.id), true);
    assert.equal(await keysOf(ctx.admin, lean.prefix), [`${lean.prefix}c:{c-taken}`]);
  });

  s('a create of a user whose index outlives it extends the index with one PEXPIRE', async (ctx) => {
    const store = open(ctx);
    const uk = `${store.prefix}u:{u:kim}`;
    assert.is(await store.create(liveRecord(60_000, { userId: 'kim', connectionId: 'c-k1' }), { maxPerUser: 5 }), true);
    const calls = await commandCalls(ctx.admin, async () => {
      assert.is(await store.create(liveRecord(10_000, { userId: 'kim', connectionId: 'c-k2' }), { maxPerUser: 5 }), true);
    });
    // The session hash, the user index (GT: it already lives longer), the state index (NX).
    assert.is(calls['pexpire'], 3, 'no second PEXPIRE for a user index that ZCARD found with members');
    const ms = await pttl(ctx.admin, uk);
    assert.ok(ms > 59_000, `the user index still covers the longer session (PTTL ${ms})`);
    assert.is(await assertConsistent(ctx.admin, store.prefix), 2);
  });

  s('deleting the latest session fits the listing indexes to the next latest; deleting another leaves them', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const short = liveRecord(60_000, { userId: 'lee', connectionId: 'c-l1' });
    const long = liveRecord(600_000, { userId: 'lee', connectionId: 'c-l2' });
    const middle = liveRecord(120_000, { userId: null, connectionId: null });
    for (const r of [short, long, middle]) assert.is(await store.create(r), true);
    assert.ok((await pttl(ctx.admin, `${p}i:expires`)) > 590_000);
    const calls = await commandCalls(ctx.admin, async () => {
      assert.is(await store.delete(short.id), true);
    });
    assert.is(calls['zcount'], 1, 'one count of the sessions at least as late');
    assert.is(calls['zrange'], undefined, 'no refit: a later session remains');
    assert.ok((await pttl(ctx.admin, `${p}i:expires`)) > 590_000, 'not the latest: the TTL stays');
    assert.is(await store.delete(long.id), true);
    for (const key of ['i:expires', 'i:created', 'i:state:ACTIVE']) {
      const ms = await pttl(ctx.admin, `${p}${key}`);
      assert.ok(ms > 100_000 && ms <= 120_000, `${key} fits the 120 s session left (PTTL ${ms})`);
    }
    assert.is(await assertConsistent(ctx.admin, p), 1);
  });

  s('a delete keeps presence exact: a tie at the latest expiry, an earlier one left, an unbound or dead session at the top', async (ctx) => {
    const store = open(ctx);
    const p = store.prefix;
    const at = Date.now() + 60_000;
    const score = async (user: string): Promise<number | null> => {
      const v = await ctx.admin.sendCommand(['ZSCORE', `${p}i:online`, user]);
      return v === null ? null : Number(v);
    };
    // Two bound sessions expiring together: the one left keeps the entry, read by rank alone.
    const q1 = liveRecord(60_000, { expiresAt: at, userId: 'quin', connectionId: 'c-q1' });
    const q2 = liveRecord(60_000, { expiresAt: at, userId: 'quin', connectionId: 'c-q2' });
    // An unbound session with the latest horizon: never presence, and not the one the entry keeps.
    const n1 = liveRecord(60_000, { expiresAt: at, userId: 'ned', connectionId: 'c-n1' });
    const n2 = liveRecord(60_000, { expiresAt: at, userId: 'ned', connectionId: 'c-n2' });
    const n3 = liveRecord(90_000, { userId: 'ned', connectionId: null });
    // The latest leaves, an earlier one stays: the entry moves down to it.
    const o1 = liveRecord(60_000, { userId: 'ola', connectionId: 'c-o1' });
    const o2 = liveRecord(30_000, { userId: 'ola', connectionId: 'c-o2' });
    // A user entry whose session is gone, at the top of the user's index.
    const p1 = liveRecord(60_000, { expiresAt: at, userId: 'pat', connectionId: 'c-p1' });
    const p2 = liveRecord(60_000, { expiresAt: at, userId: 'pat', connectionId: 'c-p2' });
    for (const r of [q1, q2, n1, n2, n3, o1, o2, p1, p2]) assert.is(await store.create(r), true);
    await ctx.admin.sendCommand(['ZADD', `${p}u:{u:pat}`, String(at + 3_600_000), 'ghost']);

    const calls = await commandCalls(ctx.admin, async () => {
      assert.is(await store.delete(q1.id), true);
    });
    assert.is(calls['zrange'], 1, 'the top of the user index, by rank');
    assert.is(calls['zrevrangebyscore'], undefined, 'no range by score');
    assert.is(await score('quin'), at);

    assert.is(await store.delete(n1.id), true);
    assert.is(await score('ned'), at, 'n2 keeps it');
    assert.is(await store.delete(n2.id), true);
    assert.is(await score('ned'), null, 'only an unbound session left');
    assert.is(await store.isOnline('ned'), false);

    assert.is(await store.delete(o1.id), true);
    assert.is(await score('ola'), o2.expiresAt);

    assert.is(await store.delete(p1.id), true);
    assert.is(await score('pat'), at, 'p2 found past the dead entry');
    assert.is(await store.onlineCount(), 3);
  });

  s.run();

  const teardown = suite('redis-store: teardown');
  teardown('stop the redis server', async () => {
    await (server as RedisServer).stop();
  });
  teardown.run();
}
