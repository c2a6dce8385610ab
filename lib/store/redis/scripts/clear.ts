/**
 * The clear script (listing indexes): removes one batch of the store's
 * sessions (and their index entries), oldest first; the store calls it
 * until it removes none.
 *
 * ```
 *   ARGV[5]   batch size
 *   returns   how many sessions it removed
 * ```
 *
 * @module
 */

/** The clear script's body (after the common prelude); see the module documentation. */
export const CLEAR_SCRIPT = `
local ids = redis.call('ZRANGE', CREATED, 0, tonumber(ARGV[5]) - 1)
for _, id in ipairs(ids) do remove(id) end
if #ids == 0 then
  local extra = redis.call('ZRANGE', EXPIRES, 0, tonumber(ARGV[5]) - 1)
  for _, id in ipairs(extra) do remove(id) end
  return #extra
end
return #ids`;
