/**
 * The Lua prelude every script of the Redis store begins with: the key
 * layout, liveness, and the helpers that keep a session and all its index
 * entries consistent (see the key layout in `redis-store.ts`).
 *
 * Every script receives `ARGV[1]` = the key prefix, `ARGV[2]` = the caller's
 * wall-clock now in ms, `ARGV[3]` = the expiry grace in ms; its own
 * arguments follow from `ARGV[4]`. Scripts name no keys in `KEYS`: they
 * derive every key from the prefix and the session's fields, which is why
 * all keys of a store must live on one node (one hash tag) today.
 *
 * ```
 *   fit(zkey)            PEXPIRE a sorted set to its latest member's expiry
 *   cover(key, exp)      make a key live at least until exp (with slack)
 *   fitGlobal()          fit i:expires, i:created, i:state:* to the latest session
 *   coverGlobal(exp,stk) make the global indexes live at least until exp
 *   shrinkGlobal(exp)    refit them after the session expiring at exp left
 *   liveExp(id)          a live session's expiry, or nil
 *   remove(id)           a session and every index entry pointing to it
 *   prune(limit)         up to limit expired sessions; pruneUser(uk) a user's
 *   claim(key, id)       a one-to-one index key free for id (evicts an expired holder)
 *   fields()             ARGV[4..14] of create/set as a table
 *   insert(a)            a session and all its index entries, with their TTLs
 *   load(id, out)        append {rec, exp, la} of a live session to out
 * ```
 *
 * @module
 */

/** Result codes of the create and set scripts beside 1 (done) and 0 (refused or gone). */
export const DUP_ID = -1;
/** Another live session holds the token hash. */
export const DUP_TOKEN = -2;
/** Another live session is bound to the connection. */
export const DUP_CONN = -3;

/** The Lua prelude (see the module documentation). */
export const LUA_COMMON = `
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
