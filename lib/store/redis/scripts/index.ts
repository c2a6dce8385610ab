/**
 * The Redis store's scripts as one function library (Redis 7 Functions):
 * loaded once per server with `FUNCTION LOAD`, each operation called with
 * `FCALL`. The helpers of the prelude are made once, when the library
 * loads; a script sent with `EVALSHA` made them all anew on every call,
 * which cost a create about a tenth of its server time.
 *
 * ```
 *   LIBRARY = { name: netloop_<hash>, source: prelude + bodies + registrations,
 *               functions[op]: the name FCALL takes }
 *   one node (fused, each operation atomic):
 *     create  set  touch  delete  lookup  user  list  clear  update  online  presence  publish
 *   spread (a Redis Cluster; one slot each, but s-touch: one node):
 *     s-stage  s-commit  s-touch  s-write  s-delete  ix-claim  ix-own  u-entry  (update)
 * ```
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { CLEAR_SCRIPT } from './clear.js';
import { LUA_COMMON } from './common.js';
import { CREATE_SCRIPT } from './create.js';
import { DELETE_SCRIPT } from './delete.js';
import { IX_CLAIM_SCRIPT } from './ix-claim.js';
import { IX_OWN_SCRIPT } from './ix-own.js';
import { LIST_SCRIPT } from './list.js';
import { LOOKUP_SCRIPT } from './lookup.js';
import { ONLINE_SCRIPT } from './online.js';
import { PRESENCE_SCRIPT } from './presence.js';
import { PUBLISH_SCRIPT } from './publish.js';
import { S_COMMIT_SCRIPT } from './s-commit.js';
import { S_DELETE_SCRIPT } from './s-delete.js';
import { S_STAGE_SCRIPT } from './s-stage.js';
import { S_TOUCH_SCRIPT } from './s-touch.js';
import { S_WRITE_SCRIPT } from './s-write.js';
import { SET_SCRIPT } from './set.js';
import { TOUCH_SCRIPT } from './touch.js';
import { U_ENTRY_SCRIPT } from './u-entry.js';
import { UPDATE_SCRIPT } from './update.js';
import { USER_SCRIPT } from './user.js';

export { DUP_CONN, DUP_ID, DUP_TOKEN, MOVED, READ_FIELDS } from './common.js';
export { TOUCH_BATCH } from './touch.js';
export { CREATE_PRUNE, CREATE_PRUNE_EVERY } from './create.js';

const BODIES = {
  create: CREATE_SCRIPT,
  set: SET_SCRIPT,
  touch: TOUCH_SCRIPT,
  delete: DELETE_SCRIPT,
  lookup: LOOKUP_SCRIPT,
  user: USER_SCRIPT,
  list: LIST_SCRIPT,
  clear: CLEAR_SCRIPT,
  update: UPDATE_SCRIPT,
  online: ONLINE_SCRIPT,
  presence: PRESENCE_SCRIPT,
  publish: PUBLISH_SCRIPT,
  's-stage': S_STAGE_SCRIPT,
  's-commit': S_COMMIT_SCRIPT,
  's-touch': S_TOUCH_SCRIPT,
  's-write': S_WRITE_SCRIPT,
  's-delete': S_DELETE_SCRIPT,
  'ix-claim': IX_CLAIM_SCRIPT,
  'ix-own': IX_OWN_SCRIPT,
  'u-entry': U_ENTRY_SCRIPT,
} as const;

/** The name of one of the store's scripts. */
export type ScriptName = keyof typeof BODIES;

/**
 * The store's function library: its name, the source `FUNCTION LOAD` takes,
 * and the name `FCALL` calls each operation by.
 */
export interface StoreLibrary {
  /** `netloop_<hash>`: the hash of the source, so that two versions of the store share a server without clobbering each other. */
  readonly name: string;
  readonly source: string;
  /** The function name of each operation: `<library>_<operation>` (function names are global to a server). */
  readonly functions: Readonly<Record<ScriptName, string>>;
}

/**
 * The library: the prelude (context and helpers, made once at load), each
 * body as a local function, and one registered function per operation that
 * sets the context from its arguments and runs its body.
 *
 * ```
 *   #!lua name=netloop_<hash>
 *   prelude: local ARGV, P, NOW, ...   local function enter(args) ... end   helpers ...
 *   local function op_create() <CREATE_SCRIPT> end          (one per operation)
 *   redis.register_function{ netloop_<hash>_create: enter(args); return op_create() }
 * ```
 *
 * Every function declares `allow-cross-slot-keys`: the scripts name no
 * keys in `KEYS` (they derive them from the prefix), and on a cluster some
 * reach keys of several slots of one node, as scripts sent with `EVAL`
 * were allowed to.
 */
function buildLibrary(): StoreLibrary {
  const names = Object.keys(BODIES) as ScriptName[];
  const ident = (name: ScriptName): string => name.replace(/-/g, '_');
  const bodies = names.map((name) => `local function op_${ident(name)}()\n${BODIES[name]}\nend\n`).join('');
  const draft = `${LUA_COMMON}\n${bodies}`;
  const name = `netloop_${createHash('sha1').update(draft).digest('hex').slice(0, 16)}`;
  const functions = Object.fromEntries(names.map((n) => [n, `${name}_${ident(n)}`])) as Record<ScriptName, string>;
  const registrations = names
    .map(
      (n) =>
        `redis.register_function{function_name = '${functions[n]}', flags = {'allow-cross-slot-keys'}, callback = function(_, args)\n  enter(args)\n  return op_${ident(n)}()\nend}\n`,
    )
    .join('');
  return Object.freeze({ name, source: `#!lua name=${name}\n${draft}${registrations}`, functions: Object.freeze(functions) });
}

/** The store's function library (see {@link StoreLibrary}). */
export const LIBRARY: StoreLibrary = buildLibrary();
