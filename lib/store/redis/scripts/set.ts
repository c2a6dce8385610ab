/**
 * The set script: replaces a live session, its index entries following its
 * new token hash, user, connection, state and expiry, in one atomic step.
 *
 * ```
 *   ARGV[5..17]  the record's fields (see `fields()` in common.ts)
 *   ARGV[18..19] the write's condition (see `conditionArgs` in codec.ts)
 *   returns      1 replaced | 0 gone (expired or never there) | DUP_TOKEN | DUP_CONN | MOVED
 * ```
 *
 * A record set to an expiry already past is removed.
 *
 * @module
 */

import { DUP_CONN, DUP_TOKEN, MOVED } from './common.js';

/** The set script's body (after the common prelude); see the module documentation. */
export const SET_SCRIPT = `
local a = fields()
local old = liveFields(a.id)
if not old then return 0 end
if not meets(old[3], 18) then return ${MOVED} end
if TOKENS and not free(tkey(a.tok), 't', a.tok, a.id) then return ${DUP_TOKEN} end
if a.conn and not free(ckey(a.conn), 'c', a.conn, a.id) then return ${DUP_CONN} end
remove(a.id)
if a.px > 0 then
  writeHash(a)
  indexes(a)
end
if LISTING and tonumber(a.e) < tonumber(old[5]) then shrinkGlobal(old[5]) end
return 1`;
