/**
 * The stage script of the spread layout (a Redis Cluster, keys spread by
 * session and by user): the first step of a create, in the session's slot.
 * The session's hash is written whole but marked pending (`p`), so every
 * read treats it as absent until `s-commit` finishes the create; a create
 * that dies half-way leaves a pending hash that expires at the end of its
 * window, and index entries no live session backs.
 *
 * ```
 *   ARGV[5..17]  the record's fields (see `fields()` in common.ts)
 *   ARGV[18]     the pending window in ms
 *   returns      1 staged | DUP_ID (a live session, or another create's pending one, has the id)
 * ```
 *
 * @module
 */

import { DUP_ID } from './common.js';

/** The stage script's body (after the common prelude); see the module documentation. */
export const S_STAGE_SCRIPT = `
local a = fields()
local sk = skey(a.id)
local cur = redis.call('HMGET', sk, 'e', 'p')
if cur[1] and tonumber(cur[1]) > NOW and ((not cur[2]) or tonumber(cur[2]) > NOW) then return ${DUP_ID} end
redis.call('DEL', sk)
writeHash(a)
local window = tonumber(ARGV[18])
redis.call('HSET', sk, 'p', math.ceil(NOW + window))
redis.call('PEXPIRE', sk, math.min(a.px, window) + GRACE)
return 1`;
