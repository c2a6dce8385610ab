/**
 * The user script: every live session of one user, from the user's sorted
 * set (each entry verified against its session; dead entries pruned).
 *
 * ```
 *   ARGV[5]   userId
 *   returns   {j, m, st, b, e, a, j, m, ...} (in no particular order)
 * ```
 *
 * @module
 */

/** The user script's body (after the common prelude); see the module documentation. */
export const USER_SCRIPT = `
local out = {}
for _, id in ipairs(userLive(ARGV[5])) do load(id, out) end
return out`;
