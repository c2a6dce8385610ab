/**
 * The touch script of the spread layout, for the touches of one batch whose
 * sessions live on one node (the sessions' slots may differ: a script may
 * reach keys of several slots of its node). It touches only the sessions'
 * hashes; an expiry that passes a session's horizon, or moves earlier, is
 * left to the caller, which moves the index entries (in their own slots)
 * and then commits the touch with `s-commit`.
 *
 * ```
 *   ARGV[5]               n
 *   ARGV[6 + 5i .. 10+5i] id, expiresAt, lastActiveAt, and the write condition of touch i
 *   returns               five words per touch: code, token hash, user, connection, horizon
 *     code 1 done | 0 gone | MOVED the condition not met (nothing moved)
 *          | 2 later than the horizon: move the entries to the horizon
 *          first, then commit | 3 an expiry already past: the hash is gone, remove the
 *          entries | 4 earlier: commit first, then fit the entries to the horizon
 * ```
 *
 * @module
 */

import { MOVED } from './common.js';

/** The spread touch script's body (after the common prelude); see the module documentation. */
export const S_TOUCH_SCRIPT = `
local n = tonumber(ARGV[5])
local out = {}
for i = 0, n - 1 do
  local id, e, la = ARGV[6 + 5 * i], ARGV[7 + 5 * i], ARGV[8 + 5 * i]
  local f = liveFields(id)
  if not f then
    out[#out + 1] = 0; out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''
  elseif not meets(f[3], 9 + 5 * i) then
    out[#out + 1] = ${MOVED}; out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''
  else
    local en = tonumber(e)
    local code = 1
    local h = ''
    if en <= NOW then
      redis.call('DEL', skey(id))
      code = 3
    elseif en > tonumber(f[6]) then
      code = 2
      h = horizonOf(e)
    elseif en < tonumber(f[5]) then
      code = 4
      h = horizonOf(e)
    else
      redis.call('HSET', skey(id), 'e', e, 'a', la)
      redis.call('PEXPIRE', skey(id), pxTo(e))
    end
    out[#out + 1] = code; out[#out + 1] = f[1] or ''; out[#out + 1] = f[2] or ''; out[#out + 1] = f[3] or ''; out[#out + 1] = h
  end
end
return out`;
