/**
 * The delete script of the spread layout, in the session's slot: removes
 * the session's hash and says which index entries to remove after it (in
 * their own slots). With `ARGV[6]` = '1' it only drops a staged create's
 * pending hash (a create that failed half-way).
 *
 * ```
 *   ARGV[5]   id
 *   ARGV[6]   '1': only a pending hash
 *   ARGV[7..8] the write's condition (see `conditionArgs` in codec.ts)
 *   returns   {wasLive (1|0), token hash, user, connection} ('' for none),
 *             or {MOVED, '', '', ''} for a live session that does not meet the condition (left as it is)
 * ```
 *
 * @module
 */

import { MOVED } from './common.js';

/** The spread delete script's body (after the common prelude); see the module documentation. */
export const S_DELETE_SCRIPT = `
local sk = skey(ARGV[5])
local f = redis.call('HMGET', sk, 't', 'u', 'c', 'e', 'p')
if ARGV[6] == '1' and not f[5] then return {0, '', '', ''} end
if f[4] and tonumber(f[4]) > NOW and not f[5] and not meets(f[3], 7) then return {${MOVED}, '', '', ''} end
if f[4] then redis.call('DEL', sk) end
local live = 0
if f[4] and tonumber(f[4]) > NOW and not f[5] then live = 1 end
return {live, f[1] or '', f[2] or '', f[3] or ''}`;
