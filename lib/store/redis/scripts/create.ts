/**
 * The create script: inserts a session and all its index entries in one
 * atomic step, under the per-user limit.
 *
 * ```
 *   ARGV[5..17]  the record's fields (see `fields()` in common.ts)
 *   ARGV[18]     maxPerUser, 0 for none
 *   ARGV[19..21] computed by the caller at ARGV[2]'s now: the hash's PX ('' when the record
 *                has already expired), the index horizon, the index entries' PX (grace included)
 *   ARGV[22]     how many expired sessions to prune on the way (0: none this time)
 *   returns      1 created | 0 refused by maxPerUser | DUP_ID | DUP_TOKEN | DUP_CONN
 *
 *   HMGET s:{id} ─ live? ─▶ DUP_ID
 *   ZCARD u:{u:uid} ─ at the limit? ─▶ count the live ones (dead ones pruned) ─ full? ─▶ 0
 *   SET t:{tok} id NX ─┬─ set ─────────────────────────────────────┐
 *                      └─ held: its session live? ─▶ DUP_TOKEN     │ (taken over when dead)
 *   SET c:{conn} id NX ─┬─ set ────────────────────────────────────┤
 *                       └─ held live ─▶ DEL t:{tok}, DUP_CONN      ▼
 *   HSET + PEXPIRE s:{id}, ZADD u:{u:uid}, the listing indexes, their TTLs
 * ```
 *
 * The one-to-one entries are claimed by writing them (`SET NX`) and
 * checked only when the write finds them taken: the common case costs
 * one command each instead of a read and a write. A refusal after a claim
 * gives the claim back before returning; the script is atomic, so no
 * reader ever sees it.
 *
 * The user's sessions are counted live (an entry whose session is gone or
 * expired never counts, and is pruned), so a dead session never locks a
 * user out; below the limit the entries are not even counted (`ZCARD`
 * counts dead entries too, so it is never under the live count). A record
 * already expired is accepted and not stored. With the listing indexes it
 * prunes a few expired sessions of the whole store when the caller asks
 * (amortised pruning without a timer).
 *
 * Every key is made with a TTL in this script: a user index that existed
 * had one, which `PEXPIRE GT` extends; `GT` leaves a key without a TTL
 * alone, so when it changes nothing `PEXPIRE NX` covers a user index made
 * just now (emptied by the pruning on the way, or first made: unless
 * `ZCARD` said so, then a plain `PEXPIRE` does). When `ZCARD` counted
 * members and nothing on the way could have removed one (no count of the
 * live sessions, no expired session of the same id removed), the index
 * existed all along with its TTL, and `GT` alone is enough; a listing
 * index made just now (the first session of a state, the first user
 * online) has none, and `PEXPIRE NX` gives it the TTL of the others.
 * `i:created` needs no such check: it has exactly the members of
 * `i:expires` (every script adds and removes a session in both), so it was
 * made whenever `i:expires` was, and given its TTL then.
 *
 * @module
 */

import { DUP_CONN, DUP_ID, DUP_TOKEN } from './common.js';

/** Expired sessions a create removes on its way, when it prunes. */
export const CREATE_PRUNE = 16;
/** One create in this many prunes (the pruning's range read is then spread over them). */
export const CREATE_PRUNE_EVERY = 4;

/** The create script's body (after the common prelude); see the module documentation. */
export const CREATE_SCRIPT = `
local id, tok, uid, conn, st = ARGV[5], ARGV[6], ARGV[7], ARGV[9], ARGV[11]
if ARGV[8] ~= '1' then uid = false end
if ARGV[10] ~= '1' then conn = false end
local max, spx, h, hpx = tonumber(ARGV[18]), ARGV[19], ARGV[20], ARGV[21]
local sk = skey(id)
local cur = redis.call('HMGET', sk, 'e', 'p')
if cur[1] and tonumber(cur[1]) > NOW and not cur[2] then return ${DUP_ID} end
local uk, card
if uid then
  uk = ukey(uid)
  if max > 0 then
    card = redis.call('ZCARD', uk)
    if card >= max and userCount(uid) >= max then return 0 end
  end
end
if cur[1] then remove(id) end
if spx == '' then
  -- Already expired: nothing is stored, but a duplicate is still refused.
  if TOKENS and not free(tkey(tok), 't', tok, id) then return ${DUP_TOKEN} end
  if conn and not free(ckey(conn), 'c', conn, id) then return ${DUP_CONN} end
else
  local tk = tkey(tok)
  if TOKENS and not redis.call('SET', tk, id, 'NX', 'PX', hpx) then
    if not free(tk, 't', tok, id) then return ${DUP_TOKEN} end
    redis.call('SET', tk, id, 'PX', hpx)
  end
  if conn then
    local ck = ckey(conn)
    if not redis.call('SET', ck, id, 'NX', 'PX', hpx) then
      if not free(ck, 'c', conn, id) then
        if TOKENS then redis.call('DEL', tk) end
        return ${DUP_CONN}
      end
      redis.call('SET', ck, id, 'PX', hpx)
    end
  end
  local e, k = ARGV[13], ARGV[12]
  if uid and conn then
    redis.call('HSET', sk, 'j', ARGV[15], 'm', ARGV[16], 'st', st, 'b', ARGV[17], 'e', e, 'a', ARGV[14], 't', tok, 'k', k, 'h', h, 'u', uid, 'c', conn)
  else
    local f = {'j', ARGV[15], 'm', ARGV[16], 'st', st, 'b', ARGV[17], 'e', e, 'a', ARGV[14], 't', tok, 'k', k, 'h', h}
    if uid then f[#f + 1] = 'u'; f[#f + 1] = uid end
    if conn then f[#f + 1] = 'c'; f[#f + 1] = conn end
    redis.call('HSET', sk, unpack(f))
  end
  redis.call('PEXPIRE', sk, spx)
  if uid then
    redis.call('ZADD', uk, h, id)
    if card == 0 then redis.call('PEXPIRE', uk, hpx)
    elseif redis.call('PEXPIRE', uk, hpx, 'GT') == 0 and (not card or card >= max or cur[1]) then
      redis.call('PEXPIRE', uk, hpx, 'NX')
    end
  end
  if LISTING then
    local sz = stkey(st)
    redis.call('ZADD', CREATED, k, id)
    redis.call('ZADD', EXPIRES, e, id)
    redis.call('ZADD', sz, k, id)
    local fresh = uid and conn and redis.call('ZADD', ONLINE, 'GT', e, uid) == 1
    local need = tonumber(spx)
    local have = redis.call('PTTL', EXPIRES)
    if have < need then
      globalPexpire(need + math.min(math.floor(need / 8), 60000))
    else
      redis.call('PEXPIRE', sz, have, 'NX')
      -- A user newly online may have made the presence index just now.
      if fresh then redis.call('PEXPIRE', ONLINE, have, 'NX') end
    end
  end
end
if ARGV[22] ~= '0' then prune(tonumber(ARGV[22])) end
return 1`;
