/**
 * The presence script (listing indexes): every user online, from
 * `i:online` (a user's score is the latest expiry of its live sessions
 * bound to a connection, kept exact by every write), after pruning the
 * users whose score has passed.
 *
 * ```
 *   ARGV[5]   '1': the users' ids; '0': their number only
 *   returns   {n} or {n, user, user, ...}
 * ```
 *
 * @module
 */

/** The presence script's body (after the common prelude); see the module documentation. */
export const PRESENCE_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', ONLINE, '-inf', NOWS)
local out = {redis.call('ZCARD', ONLINE)}
if ARGV[5] == '1' then
  for _, u in ipairs(redis.call('ZRANGE', ONLINE, 0, -1)) do out[#out + 1] = u end
end
return out`;
