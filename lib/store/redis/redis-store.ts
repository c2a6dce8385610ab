/**
 * A {@link SessionStore} in Redis, shared by every process and machine that
 * uses the same server and key prefix.
 *
 * The `redis` package (node-redis v5) is an optional peer dependency: it is
 * imported lazily, the first time a store without a ready-made client needs
 * one, so users of the memory and file stores install nothing more.
 *
 * ## Key layout (prefix `P`, default `netloop:`)
 *
 * ```
 *   P s:<id>            HASH  rec (JSON of the record), exp, la, tok, uid?, conn?, st, cr
 *                             PX = expiresAt - now (+ expiryGraceMs)   ── the session
 *   P t:<tokenHash>     STRING <id>          PX = the session's         ┐
 *   P c:<connectionId>  STRING <id>          PX = the session's         │ one-to-one indexes
 *   P u:<userId>        ZSET  <id> → expiresAt, PX = latest member's    ┘ one-to-many index
 *   P i:created         ZSET  <id> → createdAt ┐  list order; PX = the latest
 *   P i:state:<STATE>   ZSET  <id> → createdAt ├─ expiry of any session, so
 *   P i:expires         ZSET  <id> → expiresAt ┘  they vanish with the last one
 * ```
 *
 * Every write is one Lua script, so a session and all its index entries change
 * together (atomically, across processes); a reader never sees a half-made
 * session, and an index key never outlives its session: the one-to-one keys
 * carry the session's own TTL, and the sorted sets carry the TTL of their
 * latest member and are pruned of expired members lazily. When a sorted set's
 * TTL must grow (a new latest expiry, which every heartbeat is), it grows by
 * an eighth more (at most a minute more), so a stream of heartbeats re-extends
 * the shared keys only now and then; when its latest member leaves or moves
 * earlier, the TTL is fitted exactly again.
 *
 * ## Time
 *
 * Liveness follows the injected clock, as in every store: a record is live
 * while `expiresAt > clock.wallNow()`. The store passes `clock.wallNow()` to
 * each script, which computes `PX = expiresAt - now` (so Redis removes the
 * keys by itself even if no process ever touches them again) and judges
 * sorted-set members by their `expiresAt` score. Reads check `expiresAt` as
 * well, so an answer follows the clock even where Redis has not removed a key
 * yet (or, with `expiryGraceMs`, deliberately keeps it a little longer).
 *
 * ## Failures
 *
 * Every operation settles within `commandTimeoutMs`: it waits for a
 * (re)connection at most that long, and a command that gets no answer in time
 * is rejected with `NETLOOP_STORE_UNAVAILABLE`. A store that created its own client reconnects by itself with
 * bounded exponential backoff, and refuses commands while disconnected instead
 * of queueing them (a timed-out create must not run minutes later). A write
 * that times out after it reached Redis may or may not have been applied: the
 * session is then either entirely there or entirely absent, never half.
 *
 * ## Redis Cluster
 *
 * The scripts derive index keys from the session's fields, so every key of a
 * store must live on one node: on a cluster, use a hash-tagged prefix such as
 * `{netloop}:`.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { ErrorCode, NetloopError, checkInteger } from '../../core/errors.js';
import { callGuarded, listenerError, reportFault } from '../../core/listener-guard.js';
import type {
  CreateOptions,
  Page,
  SessionFilter,
  SessionPage,
  SessionRecord,
  SessionState,
  SessionStore,
} from '../contract.js';
import { SESSION_STATES } from '../contract.js';

/**
 * The part of a node-redis v5 client the store uses. A client made by
 * `createClient()` from the `redis` package fits it.
 */
export interface RedisClientLike {
  /** True between `connect()` and `close()`/`destroy()`, also while reconnecting. */
  readonly isOpen: boolean;
  /** True while connected and ready for commands. */
  readonly isReady: boolean;
  /** Sends one raw command. */
  sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>): Promise<T>;
  connect(): Promise<unknown>;
  /** Closes after pending commands are answered. */
  close(): Promise<void>;
  /** Closes at once, rejecting pending commands. */
  destroy(): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Options of {@link RedisStore}. Give `client` or `url`, not both. */
export interface RedisStoreOptions {
  /**
   * A node-redis client made by the caller. The store neither connects nor
   * closes it; connect it yourself, and give it an `'error'` listener. Create
   * it with `disableOfflineQueue: true`: otherwise commands cut off by a
   * dropped connection are replayed after the reconnection, after the store
   * has already reported them failed.
   */
  client?: RedisClientLike;
  /** A `redis://` or `rediss://` URL; the store creates, connects and closes its own client. Default `redis://127.0.0.1:6379` when no `client` is given. */
  url?: string;
  /** The prefix of every key. Default `'netloop:'`. Stores with different prefixes never see each other's sessions. */
  prefix?: string;
  /** The time source; liveness is judged by `clock.wallNow()`. Default {@link systemClock}. */
  clock?: Clock;
  /** The longest any operation takes before it rejects with `NETLOOP_STORE_UNAVAILABLE`, in ms. Default 2,000. */
  commandTimeoutMs?: number;
  /** Own client only: the longest one connection attempt may take, in ms. Default 2,000. */
  connectTimeoutMs?: number;
  /** Own client only: the longest pause between reconnection attempts, in ms (backoff doubles from 50 ms up to this). Default 2,000. */
  reconnectMaxDelayMs?: number;
  /** Own client only: the most commands queued or awaiting replies; more are refused. Default 100,000. */
  maxQueuedCommands?: number;
  /** Page size when `list` is given no `limit`. Default 100. */
  defaultPageSize?: number;
  /** The largest page `list` returns, whatever `limit` asks. Default 10,000. */
  maxPageSize?: number;
  /** How many expired sessions one pruning script removes before yielding to other clients. Default 1,000. */
  pruneBatch?: number;
  /**
   * How much longer than its logical expiry a session's keys live in Redis, in
   * ms. Default 0: `PX = expiresAt - now`. Liveness is always judged by
   * `expiresAt` against the clock, so a grace never revives a session; it only
   * keeps the keys around while processes whose clocks lag the writer's
   * (clock skew between machines) may still consider the session live.
   */
  expiryGraceMs?: number;
  /**
   * Own client only: called with each connection error (wrapped as
   * `NETLOOP_STORE_UNAVAILABLE`); the client keeps reconnecting. Called
   * guarded: a throw or a rejected promise of it is reported as a process
   * warning (`NETLOOP_HANDLER_ERROR`), never thrown.
   */
  onError?: (err: NetloopError) => void;
}

/** The first pause between reconnection attempts, doubled on each failure. */
const RECONNECT_BASE_MS = 50;
/** Expired sessions a create removes on its way (amortised pruning without a timer). */
const CREATE_PRUNE = 16;

/*
 * The Lua scripts. Every script receives ARGV[1] = prefix and ARGV[2] = the
 * caller's wall-clock now in ms; the rest are per script. The shared helpers
 * below come first in each of them.
 */
const LUA_COMMON = `
local P = ARGV[1]
local NOWS = ARGV[2]
local NOW = tonumber(NOWS)
-- Keys live this much longer in Redis than their logical expiry (option expiryGraceMs).
local GRACE = tonumber(ARGV[3])
local STATES = {'CONNECTING', 'ACTIVE', 'IDLE', 'CLOSED'}
local CREATED = P .. 'i:created'
local EXPIRES = P .. 'i:expires'
local function skey(id) return P .. 's:' .. id end
local function tkey(h) return P .. 't:' .. h end
local function ckey(c) return P .. 'c:' .. c end
local function ukey(u) return P .. 'u:' .. u end
local function stkey(s) return P .. 'i:state:' .. s end

-- A sorted set scored by expiry lives exactly as long as its latest member.
local function fit(zkey)
  local top = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
  if #top == 0 then return end
  local ms = math.ceil(tonumber(top[2]) - NOW)
  if ms > 0 then redis.call('PEXPIRE', zkey, ms + GRACE) end
end

-- Extra life given when a TTL is extended, so that a stream of heartbeats
-- (each the new latest expiry) re-extends a shared index key only now and then:
-- an eighth of the TTL, at most a minute.
local function slack(ms)
  local s = math.floor(ms / 8)
  if s > 60000 then s = 60000 end
  return s
end

-- Makes key live at least until exp (+ GRACE), extending with slack when it must.
local function cover(key, exp)
  local need = math.ceil(tonumber(exp) - NOW) + GRACE
  if redis.call('PTTL', key) < need then redis.call('PEXPIRE', key, need + slack(need)) end
end

-- The global indexes live as long as the latest session of the store (exactly).
local function fitGlobal()
  local top = redis.call('ZRANGE', EXPIRES, -1, -1, 'WITHSCORES')
  if #top == 0 then return end
  local ms = math.ceil(tonumber(top[2]) - NOW)
  if ms <= 0 then return end
  ms = ms + GRACE
  redis.call('PEXPIRE', EXPIRES, ms)
  redis.call('PEXPIRE', CREATED, ms)
  for _, s in ipairs(STATES) do redis.call('PEXPIRE', stkey(s), ms) end
end

-- Makes the global indexes live at least until exp; stk is a state index that may be new.
local function coverGlobal(exp, stk)
  local need = math.ceil(tonumber(exp) - NOW) + GRACE
  local have = redis.call('PTTL', EXPIRES)
  if have < need then
    local ms = need + slack(need)
    redis.call('PEXPIRE', EXPIRES, ms)
    redis.call('PEXPIRE', CREATED, ms)
    for _, s in ipairs(STATES) do redis.call('PEXPIRE', stkey(s), ms) end
  elseif stk and redis.call('PTTL', stk) < 0 then
    redis.call('PEXPIRE', stk, have)
  end
end

-- After the session expiring at exp left the global indexes: refit them if it was the latest.
local function shrinkGlobal(exp)
  local top = redis.call('ZRANGE', EXPIRES, -1, -1, 'WITHSCORES')
  if #top > 0 and tonumber(top[2]) < tonumber(exp) then fitGlobal() end
end

-- The expiry of a live session, or nil.
local function liveExp(id)
  local e = redis.call('HGET', skey(id), 'exp')
  if e and tonumber(e) > NOW then return e end
  return nil
end

-- Removes a session and every index entry that points to it.
local function remove(id)
  local sk = skey(id)
  local f = redis.call('HMGET', sk, 'tok', 'uid', 'conn', 'st')
  redis.call('ZREM', CREATED, id)
  redis.call('ZREM', EXPIRES, id)
  if not f[1] then
    for _, s in ipairs(STATES) do redis.call('ZREM', stkey(s), id) end
    return
  end
  redis.call('DEL', sk)
  if redis.call('GET', tkey(f[1])) == id then redis.call('DEL', tkey(f[1])) end
  if f[2] then
    local uk = ukey(f[2])
    redis.call('ZREM', uk, id)
    fit(uk)
  end
  if f[3] and redis.call('GET', ckey(f[3])) == id then redis.call('DEL', ckey(f[3])) end
  redis.call('ZREM', stkey(f[4]), id)
end

-- Removes up to limit expired sessions; returns how many.
local function prune(limit)
  local ids = redis.call('ZRANGEBYSCORE', EXPIRES, '-inf', NOWS, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do remove(id) end
  return #ids
end

-- Removes a user's expired sessions (a user holds few).
local function pruneUser(uk)
  local ids = redis.call('ZRANGEBYSCORE', uk, '-inf', NOWS)
  if #ids == 0 then return end
  for _, id in ipairs(ids) do remove(id) end
  redis.call('ZREMRANGEBYSCORE', uk, '-inf', NOWS)
end

-- True when key is free for id: unset, already id's, or held by an expired session (which is removed).
local function claim(key, id)
  local other = redis.call('GET', key)
  if (not other) or other == id then return true end
  if liveExp(other) then return false end
  remove(other)
  return true
end

-- ARGV[4..14]: id, tok, uid, hasUid, conn, hasConn, st, cr, exp, la, rec
local function fields()
  local a = {}
  a.id = ARGV[4]; a.tok = ARGV[5]
  if ARGV[7] == '1' then a.uid = ARGV[6] else a.uid = false end
  if ARGV[9] == '1' then a.conn = ARGV[8] else a.conn = false end
  a.st = ARGV[10]; a.cr = ARGV[11]; a.exp = ARGV[12]; a.la = ARGV[13]; a.rec = ARGV[14]
  a.px = math.ceil(tonumber(a.exp) - NOW)
  return a
end

local function insert(a)
  local sk = skey(a.id)
  local h = {'rec', a.rec, 'tok', a.tok, 'st', a.st, 'cr', a.cr, 'exp', a.exp, 'la', a.la}
  if a.uid then h[#h + 1] = 'uid'; h[#h + 1] = a.uid end
  if a.conn then h[#h + 1] = 'conn'; h[#h + 1] = a.conn end
  redis.call('HSET', sk, unpack(h))
  local px = a.px + GRACE
  redis.call('PEXPIRE', sk, px)
  redis.call('SET', tkey(a.tok), a.id, 'PX', px)
  if a.conn then redis.call('SET', ckey(a.conn), a.id, 'PX', px) end
  if a.uid then
    local uk = ukey(a.uid)
    redis.call('ZADD', uk, a.exp, a.id)
    cover(uk, a.exp)
  end
  redis.call('ZADD', CREATED, a.cr, a.id)
  redis.call('ZADD', EXPIRES, a.exp, a.id)
  redis.call('ZADD', stkey(a.st), a.cr, a.id)
  coverGlobal(a.exp, stkey(a.st))
end

-- The stored triple {rec, exp, la} of a live session, appended to out.
local function load(id, out)
  local f = redis.call('HMGET', skey(id), 'rec', 'exp', 'la')
  if f[1] and tonumber(f[2]) > NOW then
    out[#out + 1] = f[1]; out[#out + 1] = f[2]; out[#out + 1] = f[3]
    return true
  end
  return false
end
`;

/** Result codes of the create and set scripts. */
const DUP_ID = -1;
const DUP_TOKEN = -2;
const DUP_CONN = -3;

const SCRIPTS = {
  /** ARGV[15] = maxPerUser (0: none). Returns 1, 0 (refused) or a DUP_ code. */
  create: `
local a = fields()
local max = tonumber(ARGV[15])
local cur = redis.call('HGET', skey(a.id), 'exp')
if cur and tonumber(cur) > NOW then return ${DUP_ID} end
if a.uid and max > 0 then
  local uk = ukey(a.uid)
  pruneUser(uk)
  if redis.call('ZCARD', uk) >= max then return 0 end
end
if cur then remove(a.id) end
if not claim(tkey(a.tok), a.id) then return ${DUP_TOKEN} end
if a.conn and not claim(ckey(a.conn), a.id) then return ${DUP_CONN} end
if a.px > 0 then insert(a) end
prune(${CREATE_PRUNE})
return 1`,
  /** Returns 1, 0 (gone) or a DUP_ code. */
  set: `
local a = fields()
local old = liveExp(a.id)
if not old then return 0 end
if not claim(tkey(a.tok), a.id) then return ${DUP_TOKEN} end
if a.conn and not claim(ckey(a.conn), a.id) then return ${DUP_CONN} end
remove(a.id)
if a.px > 0 then insert(a) end
if tonumber(a.exp) < tonumber(old) then shrinkGlobal(old) end
return 1`,
  /** ARGV[4..6] = id, expiresAt, lastActiveAt. Returns 1 or 0 (gone). */
  touch: `
local id = ARGV[4]
local sk = skey(id)
local f = redis.call('HMGET', sk, 'tok', 'uid', 'conn', 'exp')
if (not f[1]) or tonumber(f[4]) <= NOW then return 0 end
local exp = ARGV[5]
local earlier = tonumber(exp) < tonumber(f[4])
local px = math.ceil(tonumber(exp) - NOW)
if px <= 0 then
  remove(id)
  shrinkGlobal(f[4])
  return 1
end
redis.call('HSET', sk, 'exp', exp, 'la', ARGV[6])
px = px + GRACE
redis.call('PEXPIRE', sk, px)
-- A live session's token and connection keys are its own: claim() never takes them from a live session.
redis.call('PEXPIRE', tkey(f[1]), px)
if f[3] then redis.call('PEXPIRE', ckey(f[3]), px) end
if f[2] then
  local uk = ukey(f[2])
  redis.call('ZADD', uk, 'XX', exp, id)
  if earlier then fit(uk) else cover(uk, exp) end
end
redis.call('ZADD', EXPIRES, 'XX', exp, id)
if earlier then shrinkGlobal(f[4]) else coverGlobal(exp, nil) end
return 1`,
  /** ARGV[4] = id. Returns 1 if a live session was removed, else 0 (an expired leftover is removed too). */
  delete: `
local id = ARGV[4]
local wasLive = liveExp(id)
remove(id)
if wasLive then shrinkGlobal(wasLive) end
if wasLive then return 1 end
return 0`,
  /** ARGV[4] = 't' or 'c', ARGV[5] = token hash or connection id. Returns {rec, exp, la} or {}. */
  lookup: `
local key
if ARGV[4] == 't' then key = tkey(ARGV[5]) else key = ckey(ARGV[5]) end
local id = redis.call('GET', key)
local out = {}
if id then load(id, out) end
return out`,
  /** ARGV[4] = userId. Returns {rec, exp, la, ...} of the user's live sessions. */
  user: `
local ids = redis.call('ZRANGEBYSCORE', ukey(ARGV[4]), '(' .. NOWS, '+inf')
local out = {}
for _, id in ipairs(ids) do load(id, out) end
return out`,
  /**
   * ARGV[4] = state or '' (all), ARGV[5] = offset, ARGV[6] = limit, ARGV[7] = prune batch.
   * Returns {-1} when it pruned a full batch (call again), else {total, rec, exp, la, ...}.
   */
  list: `
local batch = tonumber(ARGV[7])
if prune(batch) >= batch then return {-1} end
local z = CREATED
if ARGV[4] ~= '' then z = stkey(ARGV[4]) end
local total = redis.call('ZCARD', z)
local out = {total}
local limit = tonumber(ARGV[6])
if limit > 0 then
  local offset = tonumber(ARGV[5])
  local ids = redis.call('ZRANGE', z, offset, offset + limit - 1)
  for _, id in ipairs(ids) do
    if not load(id, out) then
      remove(id)
      out[1] = out[1] - 1
    end
  end
end
return out`,
  /** ARGV[4] = batch. Removes up to a batch of sessions; returns how many. */
  clear: `
local ids = redis.call('ZRANGE', CREATED, 0, tonumber(ARGV[4]) - 1)
for _, id in ipairs(ids) do remove(id) end
if #ids == 0 then
  local extra = redis.call('ZRANGE', EXPIRES, 0, tonumber(ARGV[4]) - 1)
  for _, id in ipairs(extra) do remove(id) end
  return #extra
end
return #ids`,
} as const;

type ScriptName = keyof typeof SCRIPTS;

interface LoadedScript {
  source: string;
  sha: string;
}

const LOADED: Record<ScriptName, LoadedScript> = Object.fromEntries(
  (Object.keys(SCRIPTS) as ScriptName[]).map((name) => {
    const source = LUA_COMMON + SCRIPTS[name];
    return [name, { source, sha: createHash('sha1').update(source).digest('hex') }];
  }),
) as Record<ScriptName, LoadedScript>;

/** Escapes glob characters so a prefix matches itself in `SCAN MATCH`. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function checkRecord(r: SessionRecord): void {
  if (r === null || typeof r !== 'object' || typeof r.id !== 'string' || r.id.length === 0 || typeof r.tokenHash !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session record needs a string id and token hash');
  }
  if (typeof r.expiresAt !== 'number' || !Number.isFinite(r.expiresAt) || !Number.isFinite(r.createdAt)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session record needs finite createdAt and expiresAt', { details: { id: r.id } });
  }
  if (!SESSION_STATES.includes(r.state)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session record needs a known state', { details: { id: r.id, state: r.state } });
  }
}

function checkPage(page: Page | undefined, def: number, max: number): { offset: number; limit: number } {
  const offset = checkInteger('page.offset', page?.offset ?? 0, 0, Number.MAX_SAFE_INTEGER);
  const limit = checkInteger('page.limit', page?.limit ?? def, 0, Number.MAX_SAFE_INTEGER);
  return { offset, limit: Math.min(limit, max) };
}

/** Oldest first; ties (same millisecond) by id, which is time-ordered. */
function byCreation(a: SessionRecord, b: SessionRecord): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * True for an error reply from the server (node-redis `ErrorReply` and its
 * subclasses), told apart by class name because `redis` is imported lazily.
 */
function isErrorReply(err: unknown): boolean {
  for (let p: unknown = err instanceof Error ? Object.getPrototypeOf(err) : null; p !== null && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === 'ErrorReply') return true;
  }
  return false;
}

/** Redis error replies that mean "not now" rather than "never". */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|MASTERDOWN|READONLY|OOM|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF)\b/;

/** The SessionStore in Redis; see the module documentation for layout, time and failures. */
export class RedisStore implements SessionStore {
  /** @inheritDoc */
  readonly kind = 'redis';
  /** The key prefix of this store. */
  readonly prefix: string;

  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #reconnectMaxMs: number;
  readonly #maxQueued: number;
  readonly #defaultPage: number;
  readonly #maxPage: number;
  readonly #pruneBatch: number;
  readonly #url: string;
  readonly #graceArg: string;
  readonly #onError: ((err: NetloopError) => void) | undefined;
  /** True when the store made the client and must close it. */
  readonly #owned: boolean;
  #client: RedisClientLike | undefined;
  #creating: Promise<RedisClientLike> | undefined;
  #readyWaiter: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions = {}) {
    if (options.client !== undefined && options.url !== undefined) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'give RedisStore either client or url, not both', { details: { option: 'client' } });
    }
    const prefix = options.prefix ?? 'netloop:';
    if (typeof prefix !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'prefix must be a string', { details: { option: 'prefix' } });
    }
    this.prefix = prefix;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = checkInteger('commandTimeoutMs', options.commandTimeoutMs ?? 2_000, 1, 600_000);
    this.#connectTimeoutMs = checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? 2_000, 1, 600_000);
    this.#reconnectMaxMs = checkInteger('reconnectMaxDelayMs', options.reconnectMaxDelayMs ?? 2_000, RECONNECT_BASE_MS, 600_000);
    this.#maxQueued = checkInteger('maxQueuedCommands', options.maxQueuedCommands ?? 100_000, 1, 10_000_000);
    this.#maxPage = checkInteger('maxPageSize', options.maxPageSize ?? 10_000, 1, 1_000_000);
    this.#defaultPage = checkInteger('defaultPageSize', options.defaultPageSize ?? 100, 0, this.#maxPage);
    this.#pruneBatch = checkInteger('pruneBatch', options.pruneBatch ?? 1_000, 1, 100_000);
    this.#url = options.url ?? 'redis://127.0.0.1:6379';
    this.#graceArg = String(checkInteger('expiryGraceMs', options.expiryGraceMs ?? 0, 0, 86_400_000));
    this.#onError = options.onError;
    this.#owned = options.client === undefined;
    this.#client = options.client;
  }

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#open();
    checkRecord(record);
    const max = options.maxPerUser === undefined ? 0 : checkInteger('maxPerUser', options.maxPerUser, 1, Number.MAX_SAFE_INTEGER);
    const res = await this.#op('create', (run) => run('create', [...this.#recordArgs(record), String(max)]));
    return this.#writeResult(Number(res), record) === 1;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#open();
    const now = this.#clock.wallNow();
    const reply = await this.#op('get', (_run, send) => send<unknown[]>(['HMGET', `${this.prefix}s:${id}`, 'rec', 'exp', 'la']));
    const [rec, exp, la] = reply;
    if (typeof rec !== 'string' || !(Number(exp) > now)) return null;
    return this.#decode(rec, exp, la);
  }

  /** @inheritDoc */
  async set(record: SessionRecord): Promise<boolean> {
    this.#open();
    checkRecord(record);
    const res = await this.#op('set', (run) => run('set', this.#recordArgs(record)));
    return this.#writeResult(Number(res), record) === 1;
  }

  /** @inheritDoc */
  async touch(id: string, expiresAt: number, lastActiveAt: number): Promise<boolean> {
    this.#open();
    if (!Number.isFinite(expiresAt) || !Number.isFinite(lastActiveAt)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'touch needs finite expiresAt and lastActiveAt', { details: { id } });
    }
    const res = await this.#op('touch', (run) => run('touch', [id, String(expiresAt), String(lastActiveAt)]));
    return Number(res) === 1;
  }

  /** @inheritDoc */
  async delete(id: string): Promise<boolean> {
    this.#open();
    const res = await this.#op('delete', (run) => run('delete', [id]));
    return Number(res) === 1;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#open();
    const reply = await this.#op('getByTokenHash', (run) => run('lookup', ['t', tokenHash]));
    return this.#decodeAll(reply)[0] ?? null;
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#open();
    const reply = await this.#op('getByConnection', (run) => run('lookup', ['c', connectionId]));
    return this.#decodeAll(reply)[0] ?? null;
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    const reply = await this.#op('getByUser', (run) => run('user', [userId]));
    return this.#decodeAll(reply).sort(byCreation);
  }

  /**
   * Live records matching `filter`, oldest first, one page of them, with the total.
   *
   * Cost: a page of all sessions, or of one state, is O(log N + limit) (a
   * range of a sorted set), after removing the sessions that expired since the
   * last prune (amortised O(1) each, in batches of `pruneBatch` so Redis is
   * never blocked long). With a `userId`, the user's sessions are read and
   * filtered: O(sessions of the user).
   */
  async list(filter: SessionFilter = {}, page?: Page): Promise<SessionPage> {
    this.#open();
    const { offset, limit } = checkPage(page, this.#defaultPage, this.#maxPage);
    if (filter.userId !== undefined) {
      const mine = (await this.getByUser(filter.userId)).filter((r) => filter.state === undefined || r.state === filter.state);
      return { sessions: mine.slice(offset, offset + limit), total: mine.length };
    }
    const state = this.#stateArg(filter.state);
    const reply = await this.#op('list', async (run) => {
      for (;;) {
        const out = await run('list', [state, String(offset), String(limit), String(this.#pruneBatch)]);
        if (!Array.isArray(out) || Number(out[0]) !== -1) return out;
      }
    });
    const rows = reply as unknown[];
    return { sessions: this.#decodeAll(rows.slice(1)), total: Number(rows[0]) };
  }

  /** How many live records match `filter`; the cost of {@link RedisStore.list} with an empty page. */
  async count(filter: SessionFilter = {}): Promise<number> {
    return (await this.list(filter, { offset: 0, limit: 0 })).total;
  }

  /**
   * Removes every session of this prefix and its index entries, in batches
   * of `pruneBatch` sessions (each batch atomic). Keys of other prefixes are
   * left alone.
   */
  async clear(): Promise<void> {
    this.#open();
    await this.#op('clear', async (run) => {
      while (Number(await run('clear', [String(this.#pruneBatch)])) > 0) {
        // Each round removes one batch; sessions created meanwhile are removed too.
      }
    });
  }

  /**
   * Removes every key under the prefix, whatever it holds, with `SCAN` and
   * `UNLINK` (O(keys in the database)). For tests and maintenance; not atomic.
   */
  async purgeKeys(): Promise<number> {
    this.#open();
    return this.#op('purgeKeys', async (_run, send) => {
      let cursor = '0';
      let removed = 0;
      do {
        const [next, keys] = await send<[string, string[]]>(['SCAN', cursor, 'MATCH', `${globEscape(this.prefix)}*`, 'COUNT', '1000']);
        cursor = String(next);
        if (keys.length > 0) removed += Number(await send(['UNLINK', ...keys]));
      } while (cursor !== '0');
      return removed;
    });
  }

  /**
   * One round trip to Redis (`PING`): resolves once the server answered.
   * Rejects with `NETLOOP_STORE_UNAVAILABLE` when it is unreachable or does
   * not answer within `commandTimeoutMs` (the wait for a connection
   * included), and with `NETLOOP_STORE_CLOSED` once the store is closed.
   */
  async ping(): Promise<void> {
    this.#open();
    const reply = await this.#op('ping', (_run, send) => send<unknown>(['PING']));
    if (String(reply) !== 'PONG') {
      throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: PING got an unexpected reply', { details: { operation: 'ping' } });
    }
  }

  /**
   * Closes the store: later calls reject with `NETLOOP_STORE_CLOSED`. A client
   * the store created is closed (pending commands answered, then the
   * connection ends; destroyed if that takes longer than `commandTimeoutMs`);
   * a client passed in is left open. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      let client = this.#client;
      if (client === undefined && this.#creating !== undefined) client = await this.#creating.catch(() => undefined);
      if (!this.#owned || client === undefined || !client.isOpen) return;
      let timer: NodeJS.Timeout | undefined;
      const graceful = client.close().catch(() => undefined);
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), this.#timeoutMs);
      });
      if ((await Promise.race([graceful, late])) === 'late') client.destroy();
      clearTimeout(timer);
    })();
    return this.#closing;
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the redis store is closed');
  }

  #stateArg(state: SessionState | undefined): string {
    if (state === undefined) return '';
    if (!SESSION_STATES.includes(state)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'filter.state is not a session state', { details: { option: 'filter.state', value: state } });
    }
    return state;
  }

  /** ARGV[4..14] of the create and set scripts. */
  #recordArgs(r: SessionRecord): string[] {
    return [
      r.id,
      r.tokenHash,
      r.userId ?? '',
      r.userId === null ? '0' : '1',
      r.connectionId ?? '',
      r.connectionId === null ? '0' : '1',
      r.state,
      String(r.createdAt),
      String(r.expiresAt),
      String(r.lastActiveAt),
      JSON.stringify(r),
    ];
  }

  #writeResult(code: number, r: SessionRecord): number {
    if (code === DUP_ID) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: r.id } });
    }
    if (code === DUP_TOKEN) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session has this token hash', { details: { id: r.id } });
    }
    if (code === DUP_CONN) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'another live session is bound to this connection', {
        details: { id: r.id, connectionId: r.connectionId },
      });
    }
    return code;
  }

  #decode(rec: string, exp: unknown, la: unknown): SessionRecord {
    let r: SessionRecord;
    try {
      r = JSON.parse(rec) as SessionRecord;
    } catch (err) {
      throw new NetloopError(ErrorCode.STORE_CORRUPT, 'a session in Redis is not valid JSON', { cause: err, details: { prefix: this.prefix } });
    }
    if (r === null || typeof r !== 'object' || typeof r.id !== 'string') {
      throw new NetloopError(ErrorCode.STORE_CORRUPT, 'a session in Redis is not a session record', { details: { prefix: this.prefix } });
    }
    r.expiresAt = Number(exp);
    r.lastActiveAt = Number(la);
    return r;
  }

  /** Decodes a flat `[rec, exp, la, rec, exp, la, ...]` reply. */
  #decodeAll(reply: unknown): SessionRecord[] {
    const rows = Array.isArray(reply) ? reply : [];
    const out: SessionRecord[] = [];
    for (let i = 0; i + 2 < rows.length; i += 3) out.push(this.#decode(String(rows[i]), rows[i + 1], rows[i + 2]));
    return out;
  }

  /**
   * Runs one operation within the deadline. `body` gets `run(script, args)`
   * and `send(command)`; both wait for a ready connection at most until the
   * deadline and refuse to start once it has passed.
   *
   * Commands are not given an abort signal: node-redis writes a command on
   * the next tick once the connection is ready, so there is nothing left to
   * withdraw, and abort listeners cost a third of the throughput.
   */
  async #op<T>(
    name: string,
    body: (
      run: (script: ScriptName, args: string[]) => Promise<unknown>,
      send: <R = unknown>(args: string[]) => Promise<R>,
    ) => Promise<T>,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut: NetloopError | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        timedOut = new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis store: ${name} got no answer within ${this.#timeoutMs} ms`, {
          details: { operation: name, timeoutMs: this.#timeoutMs },
        });
        reject(timedOut);
      }, this.#timeoutMs);
    });
    // Several sends of one operation may race the deadline; none of them may leave it unhandled.
    deadline.catch(() => undefined);
    const send = async <R = unknown>(args: string[]): Promise<R> => {
      const current = this.#client;
      const client = current !== undefined && current.isReady ? current : await this.#ready(deadline);
      if (timedOut !== undefined) throw timedOut;
      // Checked just before sending: a command is only ever queued on a ready
      // connection, so a caller's client with an offline queue cannot replay it later.
      if (!client.isReady) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: not connected');
      return client.sendCommand<R>(args);
    };
    const run = async (script: ScriptName, args: string[]): Promise<unknown> => {
      const s = LOADED[script];
      const argv = [this.prefix, String(this.#clock.wallNow()), this.#graceArg, ...args];
      try {
        return await send(['EVALSHA', s.sha, '0', ...argv]);
      } catch (err) {
        // After a restart (or SCRIPT FLUSH) the server has forgotten the script: send it whole once.
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return send(['EVAL', s.source, '0', ...argv]);
      }
    };
    const work = body(run, send);
    // The deadline may win the race; the losing promise must not become an unhandled rejection.
    work.catch(() => undefined);
    try {
      return await Promise.race([work, deadline]);
    } catch (err) {
      throw this.#wrap(name, err);
    } finally {
      clearTimeout(timer);
    }
  }

  #wrap(operation: string, err: unknown): NetloopError {
    if (err instanceof NetloopError) return err;
    const message = err instanceof Error ? err.message : String(err);
    const isReply = isErrorReply(err);
    if (isReply && message.startsWith('WRONGTYPE')) {
      return new NetloopError(ErrorCode.STORE_CORRUPT, `redis store: a key under prefix ${this.prefix} holds foreign data (${message})`, {
        cause: err,
        details: { operation, prefix: this.prefix },
      });
    }
    return new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis store: ${operation} failed: ${message}`, {
      cause: err,
      details: { operation, transient: !isReply || TRANSIENT_REPLIES.test(message) },
    });
  }

  /** The client, connected and ready, or a rejection when `deadline` passes first. */
  async #ready(deadline: Promise<never>): Promise<RedisClientLike> {
    const client = this.#client ?? (await Promise.race([this.#createClient(), deadline]));
    if (client.isReady) return client;
    if (!client.isOpen) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: the client is closed');
    if (this.#readyWaiter === undefined) {
      // One shared listener however many operations wait, so waiting never piles up listeners.
      this.#readyWaiter = new Promise<void>((resolve) => {
        const onReady = (): void => {
          client.off('ready', onReady);
          this.#readyWaiter = undefined;
          resolve();
        };
        client.on('ready', onReady);
      });
    }
    await Promise.race([this.#readyWaiter, deadline]);
    return client;
  }

  /** Imports `redis` and creates, configures and starts connecting the store's own client (once). */
  #createClient(): Promise<RedisClientLike> {
    if (this.#creating !== undefined) return this.#creating;
    this.#creating = (async () => {
      let mod: typeof import('redis');
      try {
        mod = await import('redis');
      } catch (err) {
        throw new NetloopError(
          ErrorCode.INVALID_OPTION,
          'RedisStore needs the optional peer dependency "redis" (npm install redis) unless a client is passed in',
          { cause: err, details: { option: 'url' } },
        );
      }
      const maxDelay = this.#reconnectMaxMs;
      const client = mod.createClient({
        url: this.#url,
        disableOfflineQueue: true,
        commandsQueueMaxLength: this.#maxQueued,
        socket: {
          connectTimeout: this.#connectTimeoutMs,
          // Bounded exponential backoff with jitter, forever: the store keeps trying while the process lives.
          reconnectStrategy: (retries: number) => {
            const ceiling = Math.min(maxDelay, RECONNECT_BASE_MS * 2 ** Math.min(retries, 20));
            return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
          },
        },
      }) as unknown as RedisClientLike;
      client.on('error', (err: unknown) => {
        const onError = this.#onError;
        if (onError === undefined) return;
        // Called from the client's socket events: a throw or a rejection of
        // the callback must not escape there (it would crash the process).
        callGuarded(onError, undefined, [this.#wrap('connection', err)], (fault, rejected) =>
          reportFault(this, 'redis store onError', listenerError('the redis store onError callback', fault, rejected, { event: 'error' }), false),
        );
      });
      if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the redis store is closed');
      this.#client = client;
      // Not awaited: operations wait for 'ready' within their own deadline.
      client.connect().catch(() => undefined);
      return client;
    })();
    return this.#creating;
  }
}
