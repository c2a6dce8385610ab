/**
 * The write script of the spread layout (a `set`'s last step but the
 * clean-up), in the session's slot: the session's hash replaced whole,
 * while it is live (the new index entries were claimed first).
 *
 * ```
 *   ARGV[5..17]  the record's fields (see `fields()` in common.ts)
 *   returns      1 written | 0 gone
 * ```
 *
 * @module
 */

/** The spread write script's body (after the common prelude); see the module documentation. */
export const S_WRITE_SCRIPT = `
local a = fields()
if not liveFields(a.id) then return 0 end
redis.call('DEL', skey(a.id))
writeHash(a)
return 1`;
