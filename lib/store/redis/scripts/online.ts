/**
 * The online script: whether a user has a live session bound to a
 * connection (each of the user's entries verified against its session).
 *
 * ```
 *   ARGV[5]   userId
 *   returns   1 online | 0 not
 * ```
 *
 * @module
 */

/** The online script's body (after the common prelude); see the module documentation. */
export const ONLINE_SCRIPT = `
for _, id in ipairs(userLive(ARGV[5])) do
  if redis.call('HGET', skey(id), 'c') then return 1 end
end
return 0`;
