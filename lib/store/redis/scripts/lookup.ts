/**
 * The lookup script: a live session by one of its one-to-one indexes (token
 * hash or connection), the index read and the session loaded in one step.
 *
 * ```
 *   ARGV[4]   't' (token hash) or 'c' (connection)
 *   ARGV[5]   the token hash or connection id
 *   returns   {rec, exp, la} of the live session, or {}
 * ```
 *
 * @module
 */

/** The lookup script's body (after the common prelude); see the module documentation. */
export const LOOKUP_SCRIPT = `
local key
if ARGV[4] == 't' then key = tkey(ARGV[5]) else key = ckey(ARGV[5]) end
local id = redis.call('GET', key)
local out = {}
if id then load(id, out) end
return out`;
