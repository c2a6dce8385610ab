/**
 * The create script: inserts a session and all its index entries in one
 * atomic step, under the per-user limit.
 *
 * ```
 *   ARGV[5..17]  the record's fields (see `fields()` in common.ts)
 *   ARGV[18]     maxPerUser, 0 for none
 *   returns      1 created | 0 refused by maxPerUser | DUP_ID | DUP_TOKEN | DUP_CONN
 * ```
 *
 * The user's sessions are counted live (an entry whose session is gone or
 * expired never counts, and is pruned), so a dead session never locks a
 * user out; a record already expired is accepted and not stored. With the
 * listing indexes it prunes a few expired sessions of the whole store on
 * its way (amortised pruning without a timer).
 *
 * @module
 */

import { DUP_CONN, DUP_ID, DUP_TOKEN } from './common.js';

/** Expired sessions a create removes on its way. */
export const CREATE_PRUNE = 16;

/** The create script's body (after the common prelude); see the module documentation. */
export const CREATE_SCRIPT = `
local a = fields()
local max = tonumber(ARGV[18])
local cur = redis.call('HMGET', skey(a.id), 'e', 'p')
if cur[1] and tonumber(cur[1]) > NOW and not cur[2] then return ${DUP_ID} end
if a.uid and max > 0 and userCount(a.uid) >= max then return 0 end
if cur[1] then remove(a.id) end
if TOKENS and not free(tkey(a.tok), 't', a.tok, a.id) then return ${DUP_TOKEN} end
if a.conn and not free(ckey(a.conn), 'c', a.conn, a.id) then return ${DUP_CONN} end
if a.px > 0 then
  writeHash(a)
  indexes(a)
end
prune(${CREATE_PRUNE})
return 1`;
