/**
 * The list script (listing indexes): one page of all sessions, or of one
 * state, oldest first, with the total, after pruning the sessions that
 * expired.
 *
 * ```
 *   ARGV[5]   a state, or '' for all
 *   ARGV[6]   offset
 *   ARGV[7]   limit (0: the total only)
 *   ARGV[8]   prune batch
 *   returns   {-1} when it pruned a full batch (call again: Redis is never blocked long),
 *             else {total, j, m, st, b, e, a, j, ...}
 * ```
 *
 * The page is a range of `i:created` (or `i:state:<STATE>`), scored by
 * creation time; ties are ordered by id, as every store orders them.
 *
 * @module
 */

/** The list script's body (after the common prelude); see the module documentation. */
export const LIST_SCRIPT = `
local batch = tonumber(ARGV[8])
if prune(batch) >= batch then return {-1} end
local z = CREATED
if ARGV[5] ~= '' then z = stkey(ARGV[5]) end
local total = redis.call('ZCARD', z)
local out = {total}
local limit = tonumber(ARGV[7])
if limit > 0 then
  local offset = tonumber(ARGV[6])
  local ids = redis.call('ZRANGE', z, offset, offset + limit - 1)
  for _, id in ipairs(ids) do
    if not load(id, out) then
      remove(id)
      out[1] = out[1] - 1
    end
  end
end
return out`;
