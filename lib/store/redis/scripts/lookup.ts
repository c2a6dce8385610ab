/**
 * The lookup script: a live session by one of its one-to-one indexes (token
 * hash or connection), the index read, verified against the session and the
 * session loaded in one step.
 *
 * ```
 *   ARGV[5]   't' (token hash) or 'c' (connection)
 *   ARGV[6]   the token hash or connection id
 *   returns   the read fields {j, m, st, b, e, a} of the live session, or {}
 * ```
 *
 * @module
 */

/** The lookup script's body (after the common prelude); see the module documentation. */
export const LOOKUP_SCRIPT = `
local field, value = ARGV[5], ARGV[6]
local key
if field == 't' then key = tkey(value) else key = ckey(value) end
local id = redis.call('GET', key)
local out = {}
if id and holds(id, field, value) then load(id, out) end
return out`;
