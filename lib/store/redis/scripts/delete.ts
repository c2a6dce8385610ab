/**
 * The delete script: removes a session and every index entry that points to
 * it.
 *
 * ```
 *   ARGV[5]   id
 *   returns   1 a live session was removed | 0 none (an expired leftover is removed too)
 * ```
 *
 * @module
 */

/** The delete script's body (after the common prelude); see the module documentation. */
export const DELETE_SCRIPT = `
local id = ARGV[5]
local f = liveFields(id)
remove(id, f)
if f then
  if LISTING then shrinkGlobal(f[5]) end
  return 1
end
return 0`;
