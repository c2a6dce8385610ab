/**
 * The touch script (the heartbeat's write), for a batch: moves each live
 * session's expiry and last-active stamp, and the TTLs of its keys with it.
 * The store sends the touches of one turn of the event loop as one call.
 *
 * ```
 *   ARGV[5]                n, the touches that follow
 *   ARGV[6 + 6i .. 11+6i]  id, expiresAt, lastActiveAt (wall ms), then computed by the caller
 *                          at ARGV[2]'s now: the hash's PX ('' when the expiry is already
 *                          past); and the write condition (see `conditionArgs` in codec.ts)
 *                          of touch i
 *   returns                {r1, ..., rn}: 1 moved (or removed: an expiry already past) | 0 gone
 *                          | MOVED (bound to another connection than the condition's: left as it is)
 * ```
 *
 * A touch rewrites the session's hash (`e`, `a`, its PX) and, with the
 * listing indexes, its score in `i:expires` and its user's presence entry.
 * The one-to-one and user index entries move only when the expiry passes
 * their horizon (then to the expiry plus a slack of a quarter of the time
 * left, at most a minute), or when it moves earlier (then they are fitted
 * to it): a stream of heartbeats rewrites them now and then. The listing
 * indexes' own TTL is extended once per batch, and their scores (the
 * expiry, the presence entry) are written once per batch: one `ZADD` of
 * every touch's score per key.
 *
 * @module
 */

import { MOVED } from './common.js';

/** Most touches one script call carries (a bigger batch is split). */
export const TOUCH_BATCH = 512;

/** The touch script's body (after the common prelude); see the module documentation. */
export const TOUCH_SCRIPT = `
local n = tonumber(ARGV[5])
local out = {}
local latest, latestN = nil, nil
-- Write-behind for the two keys every session shares (i:expires, i:online): each touch's
-- score is queued here and the batch's scores go in one ZADD per key. Redis applies the pairs
-- of one ZADD in order, so the result is that of one ZADD per touch; the queue is flushed
-- before anything of the batch reads those keys (a removal, a move to an earlier expiry).
-- A queue holds at most 2 * TOUCH_BATCH + 1 values, well within what unpack() can pass
-- (Lua 5.1's C stack limit, 8000).
local exq, onq = {'XX'}, {'GT'}
local function flush()
  if #exq > 1 then
    redis.call('ZADD', EXPIRES, unpack(exq))
    exq = {'XX'}
  end
  if #onq > 1 then
    redis.call('ZADD', ONLINE, unpack(onq))
    onq = {'GT'}
  end
end
for i = 0, n - 1 do
  local at = 6 + 6 * i
  local id, e, la, spx = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local f, fe, sk = liveFields(id)
  if not f then
    out[i + 1] = 0
  elseif not meets(f[3], at + 4) then
    out[i + 1] = ${MOVED}
  else
    out[i + 1] = 1
    if spx == '' then
      if LISTING then flush() end
      remove(id, f)
      if LISTING then shrinkGlobal(f[5]) end
    else
      local en = tonumber(e)
      local earlier = en < fe
      if earlier or en > tonumber(f[6]) then
        -- The rare case: the horizon is computed here rather than sent with every touch.
        local h = horizonOf(e)
        local hpx = pxTo(h)
        if TOKENS then redis.call('PEXPIRE', tkey(f[1]), hpx) end
        if f[3] then redis.call('PEXPIRE', ckey(f[3]), hpx) end
        if f[2] then
          local uk = ukey(f[2])
          -- The user index exists with a TTL while it has members (every writer gives it one).
          if redis.call('ZADD', uk, 'XX', 'CH', h, id) == 1 then redis.call('PEXPIRE', uk, hpx, 'GT') end
        end
        redis.call('HSET', sk, 'e', e, 'a', la, 'h', h)
      else
        redis.call('HSET', sk, 'e', e, 'a', la)
      end
      redis.call('PEXPIRE', sk, spx)
      if LISTING then
        if earlier then
          flush()
          redis.call('ZADD', EXPIRES, 'XX', e, id)
          if f[2] and f[3] then onlineFix(f[2], nil) end
          shrinkGlobal(f[5])
        else
          exq[#exq + 1] = e
          exq[#exq + 1] = id
          if f[2] and f[3] then
            onq[#onq + 1] = e
            onq[#onq + 1] = f[2]
          end
          if not latestN or en > latestN then latest, latestN = e, en end
        end
      end
    end
  end
end
if LISTING then flush() end
if latest then coverGlobal(latest, ONLINE) end
return out`;
