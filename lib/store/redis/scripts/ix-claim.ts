/**
 * The claim script of the spread layout, in a one-to-one index key's slot
 * (a token hash or a connection): takes the key for a session when it is
 * free, the session's own, or still held by the holder the caller found
 * dead (a compare-and-set); otherwise names the holder, which the caller
 * verifies against its session (in another slot) before it asks again.
 *
 * ```
 *   ARGV[5]   't' (token hash) or 'c' (connection)
 *   ARGV[6]   the token hash or connection id
 *   ARGV[7]   the claiming session's id
 *   ARGV[8]   PX of the entry (until the session's horizon)
 *   ARGV[9]   the holder found dead, or ''
 *   returns   '' taken | the holder's id
 * ```
 *
 * @module
 */

/** The claim script's body (after the common prelude); see the module documentation. */
export const IX_CLAIM_SCRIPT = `
local key
if ARGV[5] == 't' then key = tkey(ARGV[6]) else key = ckey(ARGV[6]) end
local cur = redis.call('GET', key)
if (not cur) or cur == ARGV[7] or (ARGV[9] ~= '' and cur == ARGV[9]) then
  redis.call('SET', key, ARGV[7], 'PX', ARGV[8])
  return ''
end
return cur`;
