/**
 * The commit script of the spread layout, in a session's slot: finishes a
 * staged create (its index entries are in place: the pending mark goes and
 * the hash takes its real TTL), or applies a touch whose index entries were
 * moved first (its new expiry, last-active stamp and horizon).
 *
 * ```
 *   ARGV[5]   id
 *   ARGV[6]   '' to finish a staged create, else the touch's expiresAt
 *   ARGV[7]   the touch's lastActiveAt
 *   ARGV[8]   the touch's new horizon
 *   ARGV[9..10] the touch's write condition (see `conditionArgs` in codec.ts)
 *   returns   1 done | 0 gone (the staged create's window passed, or the session ended)
 *             | MOVED (a touch whose condition is no longer met: nothing moved)
 * ```
 *
 * @module
 */

import { MOVED } from './common.js';

/** The commit script's body (after the common prelude); see the module documentation. */
export const S_COMMIT_SCRIPT = `
local sk = skey(ARGV[5])
local f = redis.call('HMGET', sk, 'e', 'p', 'c')
if not f[1] then return 0 end
if ARGV[6] == '' then
  if (not f[2]) or tonumber(f[2]) <= NOW then return 0 end
  redis.call('HDEL', sk, 'p')
  redis.call('PEXPIRE', sk, pxTo(f[1]))
  return 1
end
if f[2] or tonumber(f[1]) <= NOW then return 0 end
if not meets(f[3], 9) then return ${MOVED} end
redis.call('HSET', sk, 'e', ARGV[6], 'a', ARGV[7], 'h', ARGV[8])
redis.call('PEXPIRE', sk, pxTo(ARGV[6]))
return 1`;
