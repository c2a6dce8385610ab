/**
 * The update script: one atomic change to a live session's state, metadata
 * and counters (the session's own slot; with the listing indexes, its state
 * entry moves too).
 *
 * ```
 *   ARGV[5]   id
 *   ARGV[6]   the new state, or ''
 *   ARGV[7]   JSON of the metadata patch ({key: string | null}), or ''
 *   ARGV[8]   counters to set: five words, '-' for one left alone, or ''
 *   ARGV[9]   counters to add: five words, '-' for none, or ''
 *   ARGV[10..11] the write condition (see `conditionArgs` in codec.ts)
 *   returns   the read fields {j, m, st, b, e, a} after the change, or {} (no live session),
 *             or MOVED (the condition not met: nothing changed)
 * ```
 *
 * Counters are kept as five decimal words in the hash's `b`; an addition is
 * formatted with 17 significant digits, so a counter stays exactly what
 * JavaScript would compute. Metadata holds strings only, so its JSON round
 * trip through `cjson` changes nothing.
 *
 * @module
 */

import { MOVED } from './common.js';

/** The update script's body (after the common prelude); see the module documentation. */
export const UPDATE_SCRIPT = `
local id = ARGV[5]
local f = liveFields(id)
local out = {}
if not f then return out end
if not meets(f[3], 10) then return ${MOVED} end
local sk = skey(id)
local st = ARGV[6]
if st ~= '' and st ~= f[4] then
  redis.call('HSET', sk, 'st', st)
  if LISTING then
    redis.call('ZREM', stkey(f[4]), id)
    redis.call('ZADD', stkey(st), f[7], id)
    coverGlobal(f[5], stkey(st))
  end
end
if ARGV[7] ~= '' then
  local m = cjson.decode(redis.call('HGET', sk, 'm') or '{}')
  for k, v in pairs(cjson.decode(ARGV[7])) do
    if v == cjson.null then m[k] = nil else m[k] = v end
  end
  local json = '{}'
  if next(m) ~= nil then json = cjson.encode(m) end
  redis.call('HSET', sk, 'm', json)
end
if ARGV[8] ~= '' or ARGV[9] ~= '' then
  local b = {}
  for w in string.gmatch(redis.call('HGET', sk, 'b') or '0 0 0 0 0', '%S+') do b[#b + 1] = w end
  local i = 1
  for w in string.gmatch(ARGV[8], '%S+') do
    if w ~= '-' then b[i] = w end
    i = i + 1
  end
  i = 1
  for w in string.gmatch(ARGV[9], '%S+') do
    if w ~= '-' then b[i] = string.format('%.17g', tonumber(b[i]) + tonumber(w)) end
    i = i + 1
  end
  redis.call('HSET', sk, 'b', table.concat(b, ' '))
end
load(id, out)
return out`;
