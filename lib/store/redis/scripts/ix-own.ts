/**
 * The own-entry script of the spread layout, in a one-to-one index key's
 * slot: while the key names the session, moves its TTL (to the session's
 * new horizon) or removes it. An entry another session took is left alone.
 *
 * ```
 *   ARGV[5]   't' (token hash) or 'c' (connection)
 *   ARGV[6]   the token hash or connection id
 *   ARGV[7]   the session's id
 *   ARGV[8]   the new PX, or '' to remove the entry
 *   returns   1 done | 0 not the session's
 * ```
 *
 * @module
 */

/** The own-entry script's body (after the common prelude); see the module documentation. */
export const IX_OWN_SCRIPT = `
local key
if ARGV[5] == 't' then key = tkey(ARGV[6]) else key = ckey(ARGV[6]) end
if redis.call('GET', key) ~= ARGV[7] then return 0 end
if ARGV[8] == '' then redis.call('DEL', key) else redis.call('PEXPIRE', key, ARGV[8]) end
return 1`;
