/**
 * The user-entry script of the spread layout, in a user's slot: puts a
 * session in the user's sorted set (scored by its horizon), drops it, or
 * reserves its place under `maxPerUser`: the entries whose horizon has
 * passed and those the caller found dead are pruned, then the new one is
 * added only while the user has fewer than the limit; otherwise the
 * remaining entries are returned for the caller to verify against their
 * sessions (in their own slots). Reservation is atomic in the user's slot,
 * so concurrent creates never pass the limit.
 *
 * ```
 *   ARGV[5]   userId
 *   ARGV[6]   'put' | 'drop' | 'reserve'
 *   ARGV[7]   the session's id
 *   ARGV[8]   its horizon (put, reserve)
 *   ARGV[9]   maxPerUser (reserve)
 *   ARGV[10..] ids found dead (reserve)
 *   returns   {1} done | {0, id, id, ...} full: the entries that hold the places
 * ```
 *
 * @module
 */

/** The user-entry script's body (after the common prelude); see the module documentation. */
export const U_ENTRY_SCRIPT = `
local uk = ukey(ARGV[5])
local op, id = ARGV[6], ARGV[7]
if op == 'drop' then
  redis.call('ZREM', uk, id)
  return {1}
end
if op == 'reserve' then
  redis.call('ZREMRANGEBYSCORE', uk, '-inf', NOWS)
  for i = 10, #ARGV do redis.call('ZREM', uk, ARGV[i]) end
  if (not redis.call('ZSCORE', uk, id)) and redis.call('ZCARD', uk) >= tonumber(ARGV[9]) then
    local out = {0}
    for _, m in ipairs(redis.call('ZRANGE', uk, 0, -1)) do out[#out + 1] = m end
    return out
  end
end
redis.call('ZADD', uk, ARGV[8], id)
cover(uk, ARGV[8])
return {1}`;
