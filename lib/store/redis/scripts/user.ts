/**
 * The user script: every live session of one user, from the user's sorted
 * set (scored by expiry, so the live ones are a range).
 *
 * ```
 *   ARGV[4]   userId
 *   returns   {rec, exp, la, rec, exp, la, ...} (in no particular order)
 * ```
 *
 * @module
 */

/** The user script's body (after the common prelude); see the module documentation. */
export const USER_SCRIPT = `
local ids = redis.call('ZRANGEBYSCORE', ukey(ARGV[4]), '(' .. NOWS, '+inf')
local out = {}
for _, id in ipairs(ids) do load(id, out) end
return out`;
