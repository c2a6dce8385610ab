/**
 * The write script of the spread layout (a `set`'s last step but the
 * clean-up), in the session's slot: the session's hash replaced whole,
 * while it is live (the new index entries were claimed first).
 *
 * ```
 *   ARGV[5..17]  the record's fields (see `fields()` in common.ts)
 *   ARGV[18..19] the write's condition (see `conditionArgs` in codec.ts)
 *   returns      1 written | 0 gone | MOVED (nothing written)
 * ```
 *
 * @module
 */

import { MOVED } from './common.js';

/** The spread write script's body (after the common prelude); see the module documentation. */
export const S_WRITE_SCRIPT = `
local a = fields()
local old = liveFields(a.id)
if not old then return 0 end
if not meets(old[3], 18) then return ${MOVED} end
redis.call('DEL', skey(a.id))
writeHash(a)
return 1`;
