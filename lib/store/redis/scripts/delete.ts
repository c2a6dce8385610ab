/**
 * The delete script: removes a session and every index entry that points to
 * it.
 *
 * ```
 *   ARGV[5]   id
 *   ARGV[6..7] the write's condition (see `conditionArgs` in codec.ts)
 *   returns   1 a live session was removed | 0 none (an expired leftover is removed too)
 *             | MOVED (a live session that does not meet the condition, left as it is)
 * ```
 *
 * @module
 */

import { MOVED } from './common.js';

/** The delete script's body (after the common prelude); see the module documentation. */
export const DELETE_SCRIPT = `
local id = ARGV[5]
-- The fields remove() takes (t u c st e), and p: liveFields reads two more a delete never uses.
local f = redis.call('HMGET', skey(id), 't', 'u', 'c', 'st', 'e', 'p')
if not f[5] or f[6] or tonumber(f[5]) <= NOW then f = nil end
if f and not meets(f[3], 6) then return ${MOVED} end
remove(id, f)
if f then
  if LISTING then shrinkGlobal(f[5]) end
  return 1
end
return 0`;
