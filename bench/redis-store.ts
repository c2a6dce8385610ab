/**
 * The Redis store scenario: operations per second of `RedisStore` (create,
 * get, touch, heartbeat, delete) with many operations in flight on one
 * connection, beside the server's own ceiling for plain `SET` at the same
 * pipeline depth, measured on the same server in the same run:
 *
 * ```
 *   redis-server (started here, loopback, persistence off)
 *     ▲                      ▲                                ▲
 *     │ RedisStore            │ node-redis SET                 │ redis-benchmark -t set
 *     │ 1 connection,         │ 1 connection,                  │ -c 1 -P <depth>
 *     │ <depth> in flight     │ <depth> in flight              │ (C, no Node at all)
 *     └─ netloop              └─ baseline "node-redis SET"     └─ baseline "redis-benchmark SET"
 * ```
 *
 * Each store operation is one Lua script that updates the session and its
 * indexes (several keys), so it does more work per call than one `SET`; the
 * ratio says how much of the server's plain-SET ceiling a session operation
 * reaches. Two more baselines per operation, in the same run:
 *
 * - raw `GET` with the same number in flight (for `get`);
 * - the **floor**: a Lua script, loaded once and called by SHA, that does the
 *   same key writes as the store's operation (the session hash, its token,
 *   connection and user entries, the four listing indexes) with none of
 *   netloop's code: no validation, no liveness checks, no codec. The ratio to
 *   it is what netloop's own work costs. The touch floor batches the touches
 *   of one turn into one call, as the store does; get's floor is a plain
 *   `HMGET` of the fields the store reads.
 * - for create and delete, the **floor with the store's reads**: the same
 *   key writes and the reads the store's guarantees make, as bare commands
 *   in one script (see `FLOOR_READS`). The ratio to it is netloop's own
 *   code alone; the floor with the reads against the floor is what those
 *   guarantees cost.
 *
 * The floors are also printed against plain `SET`/`GET` (rows
 * `indexes=floor`), with an empty script called by SHA (`op=empty-script`)
 * and an empty function (`op=empty-function`, as the store calls its
 * scripts): what any operation that is one script call costs at least,
 * whatever it does. The server time of each operation and of its floor,
 * and the commands each runs, are read from `INFO commandstats` (reset
 * before each measured batch) and printed with the progress: on a shared
 * machine they are steadier than throughputs.
 *
 * The store runs twice: with every index (the default), and lean
 * (`listing: false, tokenIndex: false`: what a user who never lists keeps).
 * When `redis-benchmark` is not installed, only the node-redis baselines are
 * measured, and the progress output says so.
 *
 * Run alone: `node dist/bench/redis-store.js [--quick]`. Needs `redis-server`
 * on the PATH.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { isMain } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';
import { RedisStore } from '../lib/store/redis/redis-store.js';
import { recordArgs } from '../lib/store/redis/codec.js';
import { CREATE_PRUNE, CREATE_PRUNE_EVERY } from '../lib/store/redis/scripts/index.js';
import type { SessionRecord } from '../lib/store/contract.js';
import { findExecutable, startRedisServer } from '../test/helpers/redis-server.js';
import type { RedisServer } from '../test/helpers/redis-server.js';

/** Operations in flight on the one connection, for the store and both baselines. */
const PIPELINE = 16;
/**
 * `touch` moves each expiry far (past the horizon of the session's index
 * entries, which then move too: the heavier, occasional case); `heartbeat`
 * then moves it a little, as a heartbeat does (within the horizon: the
 * common case).
 */
const OPS = ['create', 'get', 'touch', 'heartbeat', 'delete'] as const;
type Op = (typeof OPS)[number];

interface Sizes {
  /** Operations per measured batch. */
  n: number;
  /** Repetitions; medians are reported. */
  runs: number;
}

const SIZES: Record<'quick' | 'full', Sizes> = {
  quick: { n: 4_000, runs: 1 },
  full: { n: 40_000, runs: 7 },
};

/** Runs `count` calls of `fn` with `depth` of them in flight at any time; resolves with ops/s. */
async function drive(count: number, depth: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return count / ((performance.now() - started) / 1_000);
}

/** Server time and commands of one measured batch, from `INFO commandstats` (reset before it). */
interface ServerCost {
  /** Microseconds of server time per operation in the script calls (or, with none, in every command). */
  usPerOp: number;
  /** Commands per operation besides the script call itself. */
  commandsPerOp: number;
}

type RawClient = ReturnType<typeof createClient>;

/**
 * Runs `work` (which does `n` operations) between a reset of the server's
 * command statistics and a read of them: what the operations cost the
 * server, steadier on a shared machine than their throughput.
 */
async function withServerCost(raw: RawClient, n: number, work: () => Promise<number>, into: ServerCost[]): Promise<number> {
  await raw.sendCommand(['CONFIG', 'RESETSTAT']);
  const rate = await work();
  const info = String(await raw.sendCommand(['INFO', 'commandstats']));
  let scriptUs = 0;
  let commandUs = 0;
  let commands = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    const [name, calls, usec] = [m[1]!, Number(m[2]), Number(m[3])];
    if (name === 'info' || name.startsWith('config')) continue;
    if (name === 'fcall' || name === 'evalsha' || name === 'eval') scriptUs += usec;
    else {
      commandUs += usec;
      commands += calls;
    }
  }
  into.push({ usPerOp: (scriptUs > 0 ? scriptUs : commandUs) / n, commandsPerOp: scriptUs > 0 ? commands / n : 0 });
  return rate;
}

/**
 * The scenario's sessions: `n` records of `users` users (40 sessions each
 * at the full length), all expiring ten minutes on, with the metadata and
 * counters of a chat session.
 */
export function records(n: number, run: number | string, users = 1_000): SessionRecord[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const tag = `${run}-${i}`;
    return {
      id: `bench-${tag}`,
      tokenHash: createHash('sha256').update(tag).digest('hex'),
      userId: `user-${i % users}`,
      connectionId: `conn-${tag}`,
      remoteAddress: '127.0.0.1',
      remotePort: 50_000,
      state: 'ACTIVE',
      metadata: { room: 'lobby' },
      stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
      createdAt: now,
      lastActiveAt: now,
      expiresAt: now + 600_000,
      ttl: 600_000,
    };
  });
}

/**
 * The floor of each operation: the same key writes as the store's scripts
 * (see the key layout in lib/store/redis/redis-store.ts), nothing else.
 * ARGV: id, token hash, user, connection, expiresAt, createdAt, the record's
 * JSON, now, its metadata's JSON, its stats: the values the store writes,
 * made by the store's own encoder before the measured loop. (The same
 * bytes matter: a hash holding a value over 64 bytes, as the record's JSON
 * is, leaves Redis's compact encoding, and costs more to write and to
 * delete.)
 */
export const FLOOR: Record<Exclude<Op, 'heartbeat'>, string> = {
  create: `
local id, tok, uid, conn, e, k, j, now, m, b = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9], ARGV[10]
local px = math.ceil(tonumber(e) - now)
local sk = 'floor:s:{' .. id .. '}'
redis.call('HSET', sk, 'j', j, 'm', m, 'st', 'ACTIVE', 'b', b, 'e', e, 'a', k, 't', tok, 'k', k, 'h', e, 'u', uid, 'c', conn)
redis.call('PEXPIRE', sk, px)
redis.call('SET', 'floor:t:{' .. tok .. '}', id, 'PX', px)
redis.call('SET', 'floor:c:{' .. conn .. '}', id, 'PX', px)
redis.call('ZADD', 'floor:u:{u:' .. uid .. '}', e, id)
redis.call('PEXPIRE', 'floor:u:{u:' .. uid .. '}', px)
redis.call('ZADD', 'floor:i:created', k, id)
redis.call('ZADD', 'floor:i:expires', e, id)
redis.call('ZADD', 'floor:i:state:ACTIVE', k, id)
redis.call('ZADD', 'floor:i:online', e, uid)
return 1`,
  // Unused: get's floor is a plain HMGET of the same fields (no script), sent by the bench itself.
  get: `return 0`,
  // A batch, as the store sends the touches of one turn: ARGV = now, n, then (id, expiresAt, lastActiveAt) n times.
  touch: `
local now, n = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 0, n - 1 do
  local id, e = ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  local sk = 'floor:s:{' .. id .. '}'
  redis.call('HSET', sk, 'e', e, 'a', ARGV[5 + 3 * i])
  redis.call('PEXPIRE', sk, math.ceil(tonumber(e) - now))
  redis.call('ZADD', 'floor:i:expires', e, id)
end
return 1`,
  delete: `
local id = ARGV[1]
local sk = 'floor:s:{' .. id .. '}'
local f = redis.call('HMGET', sk, 't', 'u', 'c')
redis.call('DEL', sk, 'floor:t:{' .. f[1] .. '}', 'floor:c:{' .. f[3] .. '}')
redis.call('ZREM', 'floor:u:{u:' .. f[2] .. '}', id)
redis.call('ZREM', 'floor:i:created', id)
redis.call('ZREM', 'floor:i:expires', id)
redis.call('ZREM', 'floor:i:state:ACTIVE', id)
return 1`,
};

/**
 * The floor with the store's reads, for create and delete: the floor's key
 * writes plus the reads the store's scripts make in this scenario, as bare
 * commands in one script (keys under `rfloor:`, apart from the floor's).
 * Those reads are what the store's guarantees cost, whatever code sends
 * them: a duplicate id refused (`HMGET`), `maxPerUser` (`ZCARD`), the
 * listing indexes' TTL fitted (`PTTL`, `PEXPIRE NX`), the amortised prune
 * (`ZRANGEBYSCORE`, one create in {@link CREATE_PRUNE_EVERY}); on delete,
 * an index entry removed only when it is the session's own (`MGET`),
 * presence kept exact (`ZSCORE`, then the user's latest session and its
 * fields, as here, where every session of a user expires at once) and the
 * listing indexes' TTL refitted (`ZCOUNT`). No checks are made of what
 * they read: the ratio to it is the cost of netloop's own code (the
 * client's validation, codec and deadlines, the scripts' logic), the
 * commands aside. The server's command counts of both are printed, and
 * test/integration/bench-redis-store.test.ts checks that they match,
 * command by command.
 *
 * ARGV as the floor's (create: then the prune's limit, '0' for none).
 */
export const FLOOR_READS: Record<'create' | 'delete', string> = {
  create: `
local id, tok, uid, conn, e, k, j, now, m, b, prune = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9], ARGV[10], tonumber(ARGV[11])
local px = math.ceil(tonumber(e) - now)
local sk = 'rfloor:s:{' .. id .. '}'
local uk = 'rfloor:u:{u:' .. uid .. '}'
redis.call('HMGET', sk, 'e', 'p')
redis.call('ZCARD', uk)
redis.call('SET', 'rfloor:t:{' .. tok .. '}', id, 'NX', 'PX', px)
redis.call('SET', 'rfloor:c:{' .. conn .. '}', id, 'NX', 'PX', px)
redis.call('HSET', sk, 'j', j, 'm', m, 'st', 'ACTIVE', 'b', b, 'e', e, 'a', k, 't', tok, 'k', k, 'h', e, 'u', uid, 'c', conn)
redis.call('PEXPIRE', sk, px)
redis.call('ZADD', uk, e, id)
redis.call('PEXPIRE', uk, px)
redis.call('ZADD', 'rfloor:i:created', k, id)
redis.call('ZADD', 'rfloor:i:expires', e, id)
redis.call('ZADD', 'rfloor:i:state:ACTIVE', k, id)
redis.call('ZADD', 'rfloor:i:online', e, uid)
redis.call('PTTL', 'rfloor:i:expires')
redis.call('PEXPIRE', 'rfloor:i:state:ACTIVE', px, 'NX')
if prune > 0 then redis.call('ZRANGEBYSCORE', 'rfloor:i:expires', '-inf', now, 'LIMIT', 0, prune) end
return 1`,
  delete: `
local id = ARGV[1]
local sk = 'rfloor:s:{' .. id .. '}'
local f = redis.call('HMGET', sk, 't', 'u', 'c', 'st', 'e', 'p')
local tk, ck, uk = 'rfloor:t:{' .. f[1] .. '}', 'rfloor:c:{' .. f[3] .. '}', 'rfloor:u:{u:' .. f[2] .. '}'
redis.call('MGET', tk, ck)
redis.call('DEL', sk, tk, ck)
redis.call('ZREM', uk, id)
redis.call('ZSCORE', 'rfloor:i:online', f[2])
local top = redis.call('ZRANGE', uk, -1, -1)[1]
if top then redis.call('HMGET', 'rfloor:s:{' .. top .. '}', 'u', 'c', 'e', 'p') end
redis.call('ZREM', 'rfloor:i:created', id)
redis.call('ZREM', 'rfloor:i:expires', id)
redis.call('ZREM', 'rfloor:i:state:ACTIVE', id)
redis.call('ZCOUNT', 'rfloor:i:expires', f[5], '+inf')
return 1`,
};

/**
 * The ARGV of a floor script for `rec` (see {@link FLOOR}), with `e` as its
 * expiry and `encoded` its JSON, metadata and stats as the store writes them
 * (the last three of `recordArgs`), made before the measured loop.
 */
export function floorArgs(rec: SessionRecord, encoded: readonly [string, string, string], e: number): string[] {
  const [j, m, b] = encoded;
  return [rec.id, rec.tokenHash, rec.userId!, rec.connectionId!, String(e), String(rec.createdAt), j, String(Date.now()), m, b];
}

/** The JSON, metadata and stats of `rec` as the store writes them (`recordArgs`' last three). */
export function encodedValues(rec: SessionRecord): [string, string, string] {
  return recordArgs(rec).slice(-3) as [string, string, string];
}

/**
 * Calls `send` once per turn of the event loop with every index queued in
 * that turn, as the store batches its touches; each caller's promise
 * settles with its batch.
 */
function perTurn(send: (items: number[]) => Promise<unknown>): (i: number) => Promise<unknown> {
  let queue: number[] = [];
  let batch: Promise<unknown> | null = null;
  return (i) => {
    queue.push(i);
    if (batch === null) {
      batch = new Promise<void>((resolve) => process.nextTick(resolve)).then(() => {
        const items = queue;
        queue = [];
        batch = null;
        return send(items);
      });
    }
    return batch;
  };
}

/** One `redis-benchmark` run; resolves with SET requests per second. */
function redisBenchmark(executable: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new NetloopError(ErrorCode.BENCH_FAILED, `redis-benchmark failed to start: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      // -q prints progress lines ending in \r, then "SET: 123456.79 requests per second, p50=...".
      const matches = [...out.matchAll(/SET: ([\d.]+) requests per second/g)];
      const rps = Number(matches.at(-1)?.[1]);
      if (code === 0 && Number.isFinite(rps) && rps > 0) resolve(rps);
      else reject(new NetloopError(ErrorCode.BENCH_FAILED, `redis-benchmark gave no figure (exit ${code})`, { details: { output: out.slice(-500) } }));
    });
  });
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  let server: RedisServer;
  try {
    server = await startRedisServer();
  } catch (err) {
    throw new NetloopError(ErrorCode.BENCH_FAILED, `cannot start redis-server: ${(err as Error).message}`, { cause: err });
  }
  options.progress(`${server.commandLine}`);
  const benchExe = findExecutable('redis-benchmark');
  const benchArgs = ['-h', server.host, '-p', String(server.port), '-t', 'set', '-c', '1', '-P', String(PIPELINE), '-q', '-n', String(sizes.n * 5)];
  if (benchExe === null) {
    options.progress('redis-benchmark is not installed; measuring against a node-redis SET pipeline only');
  } else {
    options.progress(`${[benchExe, ...benchArgs].join(' ')}`);
  }

  const stores = { all: new RedisStore({ url: server.url, prefix: 'bench:' }), lean: new RedisStore({ url: server.url, prefix: 'lean:', listing: false, tokenIndex: false }) };
  const raw = createClient({ url: server.url });
  raw.on('error', () => undefined);
  const empty = (): Record<Op, number[]> => ({ create: [], get: [], touch: [], heartbeat: [], delete: [] });
  const ours = { all: empty(), lean: empty() };
  const floor = empty();
  /** The floor with the store's reads (create and delete). */
  const readsFloor = { create: [] as number[], delete: [] as number[] };
  /** An empty script by SHA with the arguments of a floor call: what any one-script operation costs at least. */
  const emptyScript: number[] = [];
  /** The same with an empty function (`FCALL`), as the store calls its scripts. */
  const emptyFunction: number[] = [];
  const rawSet: number[] = [];
  const rawGet: number[] = [];
  const serverSet: number[] = [];
  /** Server cost of each operation of the default store and of each floor. */
  const costs = { all: {} as Record<Op, ServerCost[]>, floor: {} as Record<Op, ServerCost[]>, reads: { create: [] as ServerCost[], delete: [] as ServerCost[] } };
  for (const op of OPS) {
    costs.all[op] = [];
    costs.floor[op] = [];
  }
  try {
    await raw.connect();
    const sha = {} as Record<Exclude<Op, 'heartbeat'>, string>;
    for (const op of ['create', 'get', 'touch', 'delete'] as const) sha[op] = String(await raw.sendCommand(['SCRIPT', 'LOAD', FLOOR[op]]));
    const readsSha = { create: String(await raw.sendCommand(['SCRIPT', 'LOAD', FLOOR_READS.create])), delete: String(await raw.sendCommand(['SCRIPT', 'LOAD', FLOOR_READS.delete])) };
    const emptySha = String(await raw.sendCommand(['SCRIPT', 'LOAD', 'return 1']));
    await raw.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', "#!lua name=bench_empty\nredis.register_function('bench_empty', function() return 1 end)"]);
    for (const store of Object.values(stores)) await store.count(); // Connects: the first measured call is not a connect.
    for (let r = 0; r < sizes.runs; r++) {
      options.progress(`run ${r + 1}/${sizes.runs}`);
      // The variants alternate within each run, so that a slow spell of the machine hits all of them.
      for (const variant of ['all', 'lean'] as const) {
        const store = stores[variant];
        const recs = records(sizes.n, r);
        const mine = ours[variant];
        // The server's cost is read for the default store only (the floor does every index's writes).
        const measure = (op: Op, fn: (i: number) => Promise<unknown>): Promise<number> =>
          variant === 'all' ? withServerCost(raw, sizes.n, () => drive(sizes.n, PIPELINE, fn), costs.all[op]) : drive(sizes.n, PIPELINE, fn);
        mine.create.push(await measure('create', (i) => store.create(recs[i]!, { maxPerUser: 1_000 })));
        mine.get.push(await measure('get', (i) => store.get(recs[i]!.id)));
        const later = Date.now() + 900_000;
        mine.touch.push(await measure('touch', (i) => store.touch(recs[i]!.id, later, later - 600_000)));
        mine.heartbeat.push(await measure('heartbeat', (i) => store.touch(recs[i]!.id, later + 1_000, later - 599_000)));
        mine.delete.push(await measure('delete', (i) => store.delete(recs[i]!.id)));
      }
      const recs = records(sizes.n, r);
      const encoded = recs.map(encodedValues);
      const args = (i: number, e: number): string[] => floorArgs(recs[i]!, encoded[i]!, e);
      const evalsha = (op: 'create' | 'delete', i: number, e: number): Promise<unknown> => raw.sendCommand(['EVALSHA', sha[op], '0', ...args(i, e)]);
      const floorCost = (op: Op, fn: (i: number) => Promise<unknown>): Promise<number> => withServerCost(raw, sizes.n, () => drive(sizes.n, PIPELINE, fn), costs.floor[op]);
      floor.create.push(await floorCost('create', (i) => evalsha('create', i, recs[i]!.expiresAt)));
      // get's floor is no script: a plain HMGET of the fields the store reads.
      floor.get.push(await floorCost('get', (i) => raw.sendCommand(['HMGET', `floor:s:{${recs[i]!.id}}`, 'j', 'm', 'st', 'b', 'e', 'a'])));
      const later = Date.now() + 900_000;
      const touches = (e: number): ((i: number) => Promise<unknown>) =>
        perTurn((items) => {
          const argv = [String(Date.now()), String(items.length)];
          for (const i of items) argv.push(recs[i]!.id, String(e), String(e - 600_000));
          return raw.sendCommand(['EVALSHA', sha.touch, '0', ...argv]);
        });
      floor.touch.push(await floorCost('touch', touches(later)));
      floor.heartbeat.push(await floorCost('heartbeat', touches(later + 1_000)));
      floor.delete.push(await floorCost('delete', (i) => evalsha('delete', i, 0)));
      // The floor with the store's reads: its creates, pruning as often as the store's, then its deletes.
      const readsCost = (op: 'create' | 'delete', fn: (i: number) => Promise<unknown>): Promise<number> => withServerCost(raw, sizes.n, () => drive(sizes.n, PIPELINE, fn), costs.reads[op]);
      const pruneArg = (i: number): string => (i % CREATE_PRUNE_EVERY === 0 ? String(CREATE_PRUNE) : '0');
      readsFloor.create.push(await readsCost('create', (i) => raw.sendCommand(['EVALSHA', readsSha.create, '0', ...args(i, recs[i]!.expiresAt), pruneArg(i)])));
      readsFloor.delete.push(await readsCost('delete', (i) => raw.sendCommand(['EVALSHA', readsSha.delete, '0', ...args(i, 0)])));
      emptyScript.push(await drive(sizes.n, PIPELINE, (i) => raw.sendCommand(['EVALSHA', emptySha, '0', ...args(i, 0)])));
      emptyFunction.push(await drive(sizes.n, PIPELINE, (i) => raw.sendCommand(['FCALL', 'bench_empty', '0', ...args(i, 0)])));
      rawSet.push(await drive(sizes.n, PIPELINE, (i) => raw.sendCommand(['SET', `raw:${i}`, 'x'.repeat(64)])));
      rawGet.push(await drive(sizes.n, PIPELINE, (i) => raw.sendCommand(['GET', `raw:${i}`])));
      if (benchExe !== null) serverSet.push(await redisBenchmark(benchExe, benchArgs));
    }
    for (const store of Object.values(stores)) {
      const left = await store.count();
      if (left !== 0) throw new NetloopError(ErrorCode.BENCH_FAILED, `the store should be empty after the deletes, holds ${left}`);
    }
  } finally {
    for (const store of Object.values(stores)) await store.close();
    await raw.close().catch(() => undefined);
    await server.stop();
  }

  // The server's side, as a progress report (the measurements are throughputs).
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  for (const op of OPS) {
    const mine = costs.all[op];
    const base = costs.floor[op];
    options.progress(
      `server time per ${op} (INFO commandstats, median of ${mine.length}): ${median(mine.map((c) => c.usPerOp)).toFixed(1)} µs, ` +
        `${median(mine.map((c) => c.commandsPerOp)).toFixed(1)} commands; floor ${median(base.map((c) => c.usPerOp)).toFixed(1)} µs, ` +
        `${median(base.map((c) => c.commandsPerOp)).toFixed(1)} commands` +
        (op === 'create' || op === 'delete'
          ? `; floor with the store's reads ${median(costs.reads[op].map((c) => c.usPerOp)).toFixed(1)} µs, ${median(costs.reads[op].map((c) => c.commandsPerOp)).toFixed(1)} commands`
          : ''),
    );
  }

  const out: Measurement[] = [];
  const beside = (params: Record<string, string | number>, netloop: number[], baselineName: string, baseline: number[], target?: string): void => {
    const m = measurement({ scenario: 'redis-store', params, metric: 'throughput', unit: 'ops/s', baselineName, higherIsBetter: true, runs: { netloop, baseline } });
    if (target !== undefined) m.target = target;
    out.push(m);
  };
  // The targets of the default store: against the plain command at the same depth, and (create,
  // delete) within 1.2x of the floor's time, a ratio of at least 0.83.
  const plainTarget = (op: Op): string => (op === 'get' ? '>= 0.8x' : op === 'touch' || op === 'heartbeat' ? '>= 1.0x' : '>= 0.35x');
  for (const op of OPS) {
    for (const variant of ['all', 'lean'] as const) {
      const params = { op, indexes: variant, pipeline: PIPELINE };
      const mine = ours[variant][op];
      if (benchExe !== null && variant === 'all') beside(params, mine, `redis-benchmark SET -c 1 -P ${PIPELINE}`, serverSet);
      const target = variant === 'all' ? plainTarget(op) : undefined;
      if (op === 'get') beside(params, mine, `node-redis GET, ${PIPELINE} in flight`, rawGet, target);
      else beside(params, mine, `node-redis SET, ${PIPELINE} in flight`, rawSet, target);
      // The floor does the writes of every index: it is the bound of the default store.
      if (variant !== 'all') continue;
      if (op === 'get') beside(params, mine, `floor: HMGET of the same fields, ${PIPELINE} in flight`, floor.get);
      else if (op === 'touch' || op === 'heartbeat') beside(params, mine, `floor: the same key writes in one script per turn, ${PIPELINE} in flight`, floor[op]);
      else {
        beside(params, mine, `floor: the same key writes in one script, ${PIPELINE} in flight`, floor[op], '>= 0.83x');
        beside(params, mine, `floor with the store's reads: the same reads and key writes in one script, ${PIPELINE} in flight`, readsFloor[op], '>= 0.83x');
      }
    }
  }
  // The floors themselves against the plain commands: how far a target beyond them is out of reach.
  const floorParams = (of: string): Record<string, string | number> => ({ op: of, indexes: 'floor', pipeline: PIPELINE });
  for (const op of OPS) {
    if (op === 'get') beside(floorParams('get'), floor.get, `node-redis GET, ${PIPELINE} in flight`, rawGet);
    else beside(floorParams(op), floor[op], `node-redis SET, ${PIPELINE} in flight`, rawSet);
  }
  // What the store's reads cost, as bare commands: the floor with them against the floor without.
  for (const op of ['create', 'delete'] as const) {
    beside({ op, indexes: 'floor+reads', pipeline: PIPELINE }, readsFloor[op], `floor: the same key writes in one script, ${PIPELINE} in flight`, floor[op]);
  }
  beside(floorParams('empty-script'), emptyScript, `node-redis SET, ${PIPELINE} in flight`, rawSet);
  beside(floorParams('empty-function'), emptyFunction, `node-redis SET, ${PIPELINE} in flight`, rawSet);
  return out;
}

/** The Redis store scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'redis-store',
  description: `RedisStore create/get/touch/heartbeat/delete ops/s with ${PIPELINE} in flight (every index, and lean) vs raw SET/GET, redis-benchmark SET -P ${PIPELINE} and the floor script of each operation, same server, same run`,
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
