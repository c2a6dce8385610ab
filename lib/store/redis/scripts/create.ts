/**
 * The create script: inserts a session and all its index entries in one
 * atomic step, under the per-user limit.
 *
 * ```
 *   ARGV[4..14]  the record's fields (see `fields()` in common.ts)
 *   ARGV[15]     maxPerUser, 0 for none
 *   returns      1 created | 0 refused by maxPerUser | DUP_ID | DUP_TOKEN | DUP_CONN
 * ```
 *
 * The user's expired sessions are pruned before counting, so a dead session
 * never locks a user out; a record already expired is accepted and not
 * stored. On its way it prunes a few expired sessions of the whole store
 * (amortised pruning without a timer).
 *
 * @module
 */

import { DUP_CONN, DUP_ID, DUP_TOKEN } from './common.js';

/** Expired sessions a create removes on its way. */
export const CREATE_PRUNE = 16;

/** The create script's body (after the common prelude); see the module documentation. */
export const CREATE_SCRIPT = `
local a = fields()
local max = tonumber(ARGV[15])
local cur = redis.call('HGET', skey(a.id), 'exp')
if cur and tonumber(cur) > NOW then return ${DUP_ID} end
if a.uid and max > 0 then
  local uk = ukey(a.uid)
  pruneUser(uk)
  if redis.call('ZCARD', uk) >= max then return 0 end
end
if cur then remove(a.id) end
if not claim(tkey(a.tok), a.id) then return ${DUP_TOKEN} end
if a.conn and not claim(ckey(a.conn), a.id) then return ${DUP_CONN} end
if a.px > 0 then insert(a) end
prune(${CREATE_PRUNE})
return 1`;
