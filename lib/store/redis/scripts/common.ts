/**
 * The Lua prelude of the Redis store's scripts: the key layout, liveness,
 * and the helpers that keep a session and its index entries consistent
 * (see the key layout in `redis-store.ts`). The prelude heads the store's
 * function library (`index.ts`): its helpers are made once, when the
 * library is loaded, and every call sets the context they read (`enter`).
 *
 * Every script receives (as `ARGV`, which `enter` sets) `ARGV[1]` = the key prefix, `ARGV[2]` = the caller's
 * wall-clock now in ms, `ARGV[3]` = the expiry grace in ms, `ARGV[4]` =
 * the store's flags (`L`: listing indexes kept; `T`: token index kept);
 * its own arguments follow from `ARGV[5]`. Scripts name no keys in `KEYS`:
 * they derive every key from the prefix and the session's fields. The
 * fused scripts (one per operation, on a single Redis or a hash-tagged
 * prefix) reach keys of several hash slots, all on one node; the scripts
 * of the spread layout (`spread.ts`) touch the keys of one slot each.
 *
 * ```
 *   keys      skey(id)  P s:{id}        tkey(h) P t:{h}       ckey(c) P c:{c}
 *             ukey(u)   P u:{u:<u>}     xkey(id) P x:{id}     global P i:...
 *   fields    HASH s:  j (JSON of the fixed fields)  m (metadata JSON)  st  b (counters)
 *                      e (expiresAt)  a (lastActiveAt)  t u c (token, user, connection)
 *                      k (createdAt)  h (index horizon)  p (pending, spread create only)
 *   horizon   the one-to-one and user index entries live until h >= e; a later e past h
 *             moves h (and them) to e + slack(e - now): heartbeats move them now and then
 *   cover(key, t)         make a key live at least until t (+ grace)
 *   coverGlobal(e)        the listing indexes live at least until e (with slack)
 *   fitGlobal/shrinkGlobal  refit them when the latest session left or moved earlier
 *   liveFields(id)        HMGET of a live, complete session, or nil
 *   holds(id, f, v)       is id a live session whose field f is v (verifies an index entry)
 *   claim(key, f, v, id)  a one-to-one index key free for id (an entry no live session
 *                         backs is taken over)
 *   userLive(uid)         the user's live session ids, the dead entries pruned
 *   userCount(uid)        how many (entries far from their horizon need no check)
 *   onlineFix(uid, ceil)  the listing presence entry of uid recomputed
 *   onlineLeft(uid, e)    ... when the bound session that left was its latest
 *   insert(a, px)         a session's hash and every index entry
 *   remove(id)            a session and every index entry pointing to it
 *   load(id, out)         append the 6 read fields of a live session to out
 *   meets(c, i)           does connection field c meet the write condition at ARGV[i..i+1]
 * ```
 *
 * Numbers computed in Lua reach Redis as integers only (`math.ceil`): a Lua
 * number handed to `redis.call` is formatted with 14 significant digits,
 * which would round a fractional millisecond. Expiries travel as the
 * caller's own strings. Converting is also what costs a script most
 * besides its commands (a `tonumber` of a wall time, or a wall time
 * formatted into a command, costs about as much as a cheap command): the
 * hot scripts take the values they would compute from the caller, as
 * strings (create: its PXs and horizon).
 *
 * @module
 */

/** Result codes of the create and set scripts beside 1 (done) and 0 (refused or gone). */
export const DUP_ID = -1;
/** Another live session holds the token hash. */
export const DUP_TOKEN = -2;
/** Another live session is bound to the connection. */
export const DUP_CONN = -3;
/** A conditional write found the session bound to another connection than it expects (nothing written). */
export const MOVED = -4;

/** The fields `get` reads of a session hash, in order (decoded by `codec.ts`). */
export const READ_FIELDS = ['j', 'm', 'st', 'b', 'e', 'a', 'p'] as const;

/**
 * The Lua prelude (see the module documentation): the per-call context
 * (`enter`), then the helpers. It is the top of the store's function
 * library, run once when the library is loaded: the helpers are made once
 * there, and each call only sets the context they read.
 */
export const LUA_COMMON = `
local ARGV, P, NOWS, NOW, GRACES, GRACE, FLAGS, LISTING, TOKENS, CREATED, EXPIRES, ONLINE
local STATES = {'CONNECTING', 'ACTIVE', 'IDLE', 'CLOSED'}
-- Sets the context of one call from its arguments. Redis runs one function at a time, and
-- every call sets all of it first, so no value of an earlier call is ever read. What derives
-- from the prefix, the grace and the flags (the listing keys' names, numbers) is kept while
-- they stay the same string as the last call's: a process sends the same ones every call, and
-- comparing interned Lua strings costs less than making the names anew.
local function enter(args)
  ARGV = args
  NOWS = args[2]
  NOW = tonumber(NOWS)
  if args[3] ~= GRACES then
    GRACES = args[3]
    GRACE = tonumber(GRACES)
  end
  if args[1] ~= P or args[4] ~= FLAGS then
    P = args[1]
    FLAGS = args[4]
    LISTING = FLAGS == 'LT' or FLAGS == 'L'
    TOKENS = FLAGS == 'LT' or FLAGS == 'T'
    CREATED = P .. 'i:created'
    EXPIRES = P .. 'i:expires'
    ONLINE = P .. 'i:online'
  end
end
local function skey(id) return P .. 's:{' .. id .. '}' end
local function tkey(h) return P .. 't:{' .. h .. '}' end
local function ckey(c) return P .. 'c:{' .. c .. '}' end
local function ukey(u) return P .. 'u:{u:' .. u .. '}' end
local function xkey(id) return P .. 'x:{' .. id .. '}' end
local function stkey(s) return P .. 'i:state:' .. s end

-- Extra life of index entries past an expiry, so that heartbeats move them only now and then:
-- a quarter of the time to live left, at most a minute.
local function slack(ms)
  local s = math.floor(ms / 4)
  if s > 60000 then s = 60000 end
  if s < 0 then s = 0 end
  return s
end

-- The horizon of an expiry: whole ms, at or after it.
local function horizonOf(exp)
  local e = tonumber(exp)
  return math.ceil(e + slack(e - NOW))
end

-- PX that keeps a key until wall time t (+ grace).
local function pxTo(t) return math.ceil(tonumber(t) - NOW) + GRACE end

-- Makes key live at least until t (+ grace).
local function cover(key, t)
  local need = pxTo(t)
  if need > 0 and redis.call('PTTL', key) < need then redis.call('PEXPIRE', key, need) end
end

-- ── The listing indexes (LISTING only): exact, they live as long as the latest session ──

local function globalPexpire(ms)
  redis.call('PEXPIRE', EXPIRES, ms)
  redis.call('PEXPIRE', CREATED, ms)
  redis.call('PEXPIRE', ONLINE, ms)
  for _, s in ipairs(STATES) do redis.call('PEXPIRE', stkey(s), ms) end
end

local function fitGlobal()
  local top = redis.call('ZRANGE', EXPIRES, -1, -1, 'WITHSCORES')
  if #top == 0 then return end
  local ms = math.ceil(tonumber(top[2]) - NOW)
  if ms <= 0 then return end
  globalPexpire(ms + GRACE)
end

-- The listing indexes live at least until exp (extended with slack when they must grow). The
-- keys named after exp are those the caller wrote to: one of them may have been made just now
-- (a new state, the first presence entry) and then takes the others' TTL. Only a write can make
-- a key, so the keys a script did not write to need no check.
local function coverGlobal(exp, ...)
  local need = pxTo(exp)
  local have = redis.call('PTTL', EXPIRES)
  if have < need then
    globalPexpire(need + math.min(math.floor(need / 8), 60000))
  else
    for _, key in ipairs({...}) do
      if redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, have) end
    end
  end
end

-- After the session expiring at exp (the caller's or the hash's string) left or moved earlier:
-- refit if it was the latest. The count is an integer reply: no score to format and parse back
-- in the common case, where a session at least as late remains.
local function shrinkGlobal(exp)
  if redis.call('ZCOUNT', EXPIRES, exp, '+inf') == 0 then fitGlobal() end
end

-- ── Sessions and their index entries ──

-- The fields of a live, complete session (t u c st e h k), its expiry as a number and its hash's
-- key, or nil.
local function liveFields(id)
  local sk = skey(id)
  local f = redis.call('HMGET', sk, 't', 'u', 'c', 'st', 'e', 'h', 'k', 'p')
  if f[5] and not f[8] then
    local e = tonumber(f[5])
    if e > NOW then return f, e, sk end
  end
  return nil
end

-- True when id is a live session whose field f is v: what verifies an index entry.
local function holds(id, f, v)
  local g = redis.call('HMGET', skey(id), f, 'e', 'p')
  return g[1] == v and g[2] and tonumber(g[2]) > NOW and not g[3]
end

-- True when a one-to-one index key is free for id: unset, id's, or an entry no live session backs.
local function free(key, f, v, id)
  local other = redis.call('GET', key)
  return (not other) or other == id or not holds(other, f, v)
end

-- The user's live session ids (in the user's sorted set by horizon); dead entries are pruned.
local function userLive(uid)
  local uk = ukey(uid)
  redis.call('ZREMRANGEBYSCORE', uk, '-inf', NOWS)
  local out = {}
  for _, id in ipairs(redis.call('ZRANGE', uk, 0, -1)) do
    if holds(id, 'u', uid) then out[#out + 1] = id else redis.call('ZREM', uk, id) end
  end
  return out
end

-- How many live sessions the user has. A horizon is at most a minute (and a millisecond) past
-- its session's expiry, so an entry whose horizon is further away than that is live for sure;
-- the others are verified against their sessions (and pruned when dead). A horizon is never
-- before its session's expiry, so an entry whose horizon has passed is dead without a look: one
-- range read finds them with the near ones, and they are pruned only when there are some.
local function userCount(uid)
  local uk = ukey(uid)
  local sure = math.floor(NOW) + 60002
  local n = redis.call('ZCOUNT', uk, '(' .. sure, '+inf')
  local near = redis.call('ZRANGEBYSCORE', uk, '-inf', sure, 'WITHSCORES')
  local past = false
  for i = 1, #near, 2 do
    if tonumber(near[i + 1]) <= NOW then past = true
    elseif holds(near[i], 'u', uid) then n = n + 1
    else redis.call('ZREM', uk, near[i]) end
  end
  if past then redis.call('ZREMRANGEBYSCORE', uk, '-inf', NOWS) end
  return n
end

-- The listing presence entry of uid: the latest expiry of its live sessions bound to a
-- connection, or none. With a ceiling (the entry's score, which no bound session passes), the
-- search stops at the first session that reaches it. The common case (a session left while
-- another one of the user expires at the same time or later) is read first: the session of the
-- latest horizon, found by rank (a sorted set of a few members keeps its scores as strings, and a
-- range by score parses each one it passes). Otherwise the user's sessions are read latest
-- horizon first (a later horizon mostly means a later expiry), a few at a time.
local function onlineFix(uid, ceiling)
  if not LISTING then return end
  local uk = ukey(uid)
  if ceiling then
    local top = redis.call('ZRANGE', uk, -1, -1)[1]
    if top then
      local g = redis.call('HMGET', skey(top), 'u', 'c', 'e', 'p')
      if g[1] == uid and g[2] and g[3] and not g[4] then
        local e = tonumber(g[3])
        if e > NOW and e >= ceiling then
          if e ~= ceiling then redis.call('ZADD', ONLINE, g[3], uid) end
          return
        end
      end
    end
  end
  local best, bestS = nil, nil
  local floor = '(' .. NOWS
  local from, page, done = 0, 8, false
  while not done do
    local ids = redis.call('ZREVRANGEBYSCORE', uk, '+inf', floor, 'LIMIT', from, page)
    for _, id in ipairs(ids) do
      local g = redis.call('HMGET', skey(id), 'u', 'c', 'e', 'p')
      if g[1] == uid and g[2] and g[3] and not g[4] then
        local e = tonumber(g[3])
        if e > NOW and (not best or e > best) then
          best = e
          bestS = g[3]
          if ceiling and e >= ceiling then
            done = true
            break
          end
        end
      end
    end
    if #ids < page then done = true end
    from = from + page
  end
  -- A session at the ceiling (the entry's own score) leaves the entry as it is.
  if not bestS then redis.call('ZREM', ONLINE, uid)
  elseif best ~= ceiling then redis.call('ZADD', ONLINE, bestS, uid) end
end

-- A bound session of uid expiring at e left (or moved earlier): refit uid's presence entry if
-- that session was its latest.
local function onlineLeft(uid, e)
  if not LISTING then return end
  local cur = redis.call('ZSCORE', ONLINE, uid)
  if cur and tonumber(cur) <= tonumber(e) then onlineFix(uid, tonumber(cur)) end
end

-- ARGV[5..15] of create and set: id, tok, uid, hasUid, conn, hasConn, st, k, e, a, j; then m, b.
local function fields()
  local a = {}
  a.id = ARGV[5]; a.tok = ARGV[6]
  if ARGV[8] == '1' then a.uid = ARGV[7] else a.uid = false end
  if ARGV[10] == '1' then a.conn = ARGV[9] else a.conn = false end
  a.st = ARGV[11]; a.k = ARGV[12]; a.e = ARGV[13]; a.la = ARGV[14]; a.j = ARGV[15]; a.m = ARGV[16]; a.b = ARGV[17]
  a.px = math.ceil(tonumber(a.e) - NOW)
  a.h = horizonOf(a.e)
  return a
end

-- A write's condition (see conditionArgs in codec.ts) at ARGV[i], ARGV[i + 1]: true when the
-- session's connection field c (nil when unbound) meets it, or when there is none.
local function meets(c, i)
  local kind = ARGV[i]
  if kind == '1' then return c == ARGV[i + 1] end
  if kind == '2' then return not c end
  return true
end

-- Writes a session's hash with its TTL.
local function writeHash(a)
  local sk = skey(a.id)
  local h = {'j', a.j, 'm', a.m, 'st', a.st, 'b', a.b, 'e', a.e, 'a', a.la, 't', a.tok, 'k', a.k, 'h', a.h}
  if a.uid then h[#h + 1] = 'u'; h[#h + 1] = a.uid end
  if a.conn then h[#h + 1] = 'c'; h[#h + 1] = a.conn end
  redis.call('HSET', sk, unpack(h))
  redis.call('PEXPIRE', sk, a.px + GRACE)
end

-- The index entries of a session (one-to-one keys, user, listing), until its horizon.
local function indexes(a)
  local hpx = pxTo(a.h)
  if TOKENS then redis.call('SET', tkey(a.tok), a.id, 'PX', hpx) end
  if a.conn then redis.call('SET', ckey(a.conn), a.id, 'PX', hpx) end
  if a.uid then
    local uk = ukey(a.uid)
    redis.call('ZADD', uk, a.h, a.id)
    cover(uk, a.h)
  end
  if LISTING then
    redis.call('ZADD', CREATED, a.k, a.id)
    redis.call('ZADD', EXPIRES, a.e, a.id)
    redis.call('ZADD', stkey(a.st), a.k, a.id)
    if a.uid and a.conn then
      redis.call('ZADD', ONLINE, 'GT', a.e, a.uid)
      coverGlobal(a.e, CREATED, stkey(a.st), ONLINE)
    else
      coverGlobal(a.e, CREATED, stkey(a.st))
    end
  end
end

-- Removes a session and every index entry that points to it; returns its expiry (or nil).
-- known: the session's fields as liveFields read them (t u c st e first), when the caller has them.
local function remove(id, known)
  local sk = skey(id)
  local f = known or redis.call('HMGET', sk, 't', 'u', 'c', 'st', 'e')
  if LISTING then
    redis.call('ZREM', CREATED, id)
    redis.call('ZREM', EXPIRES, id)
  end
  if not f[5] then
    if LISTING then for _, s in ipairs(STATES) do redis.call('ZREM', stkey(s), id) end end
    return nil
  end
  -- One DEL for the hash and the one-to-one entries still its own. Without the token index
  -- its entries are not looked for: one left by an earlier store of the prefix is never
  -- believed (entries are verified on read) and expires with its horizon.
  -- Both entries are read in one MGET when the session has both (the common case).
  local tk = TOKENS and f[1] and tkey(f[1])
  local ck = f[3] and ckey(f[3])
  if tk and ck then
    local owners = redis.call('MGET', tk, ck)
    if owners[1] == id then
      if owners[2] == id then redis.call('DEL', sk, tk, ck) else redis.call('DEL', sk, tk) end
    elseif owners[2] == id then redis.call('DEL', sk, ck)
    else redis.call('DEL', sk) end
  else
    local other = tk or ck
    if other and redis.call('GET', other) == id then redis.call('DEL', sk, other) else redis.call('DEL', sk) end
  end
  if f[2] then
    redis.call('ZREM', ukey(f[2]), id)
    if f[3] then onlineLeft(f[2], f[5]) end
  end
  if LISTING and f[4] then redis.call('ZREM', stkey(f[4]), id) end
  return f[5]
end

-- Removes up to limit sessions whose expiry has passed (listing indexes); returns how many.
local function prune(limit)
  if not LISTING then return 0 end
  local ids = redis.call('ZRANGEBYSCORE', EXPIRES, '-inf', NOWS, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do remove(id) end
  return #ids
end

-- Appends the read fields (j m st b e a) of a live session to out; false when it is not live.
local function load(id, out)
  local f = redis.call('HMGET', skey(id), 'j', 'm', 'st', 'b', 'e', 'a', 'p')
  if f[1] and f[5] and not f[7] and tonumber(f[5]) > NOW then
    out[#out + 1] = f[1]; out[#out + 1] = f[2]; out[#out + 1] = f[3]
    out[#out + 1] = f[4]; out[#out + 1] = f[5]; out[#out + 1] = f[6]
    return true
  end
  return false
end
`;
