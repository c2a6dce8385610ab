/**
 * The touch script (the heartbeat's write): moves a live session's expiry
 * and last-active stamp, and the TTLs of its keys with it.
 *
 * ```
 *   ARGV[4]   id
 *   ARGV[5]   expiresAt (wall ms)
 *   ARGV[6]   lastActiveAt (wall ms)
 *   returns   1 moved (or removed: an expiry already past) | 0 gone
 * ```
 *
 * A later expiry grows the shared sorted sets' TTLs with slack (so a stream
 * of heartbeats re-extends them only now and then); an earlier one fits
 * them exactly again.
 *
 * @module
 */

/** The touch script's body (after the common prelude); see the module documentation. */
export const TOUCH_SCRIPT = `
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
return 1`;
