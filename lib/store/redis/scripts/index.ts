/**
 * The Redis store's scripts, each the common prelude followed by its body,
 * with the SHA-1 that `EVALSHA` names it by.
 *
 * ```
 *   SCRIPTS[name] = { source: the prelude's header and the helpers BODY uses + BODY, sha: sha1(source) }
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

/** A script as sent: its whole source and its SHA-1. */
export interface LoadedScript {
  readonly source: string;
  readonly sha: string;
}

/** Lua source without its comments, for finding which names it uses. */
function code(lua: string): string {
  return lua.replace(/--[^\n]*/g, '');
}

/**
 * The prelude's helpers, in order: each `local function` with the text up
 * to the next one. Everything before the first is the header (the
 * arguments and key names), which every script keeps.
 *
 * ```
 *   LUA_COMMON = header | skey ... | tkey ... | ... | load ...
 *   prelude(body) = header + the helpers body uses, directly or through other helpers
 * ```
 */
const HELPERS: ReadonlyArray<{ readonly name: string; readonly text: string }> = (() => {
  const starts = [...LUA_COMMON.matchAll(/^local function (\w+)\(/gm)];
  return starts.map((m, i) => ({ name: m[1]!, text: LUA_COMMON.slice(m.index, starts[i + 1]?.index ?? LUA_COMMON.length) }));
})();
const HEADER = LUA_COMMON.slice(0, LUA_COMMON.search(/^local function /m));

/**
 * The prelude a body needs: the header and only the helpers it reaches.
 * Redis runs a script's whole text on every call, and each helper defined
 * is a closure made anew each time: a script that defines only what it uses
 * starts faster (the whole prelude costs a few microseconds per call).
 */
function preludeFor(body: string): string {
  const used = new Set<string>();
  const scan = (lua: string): void => {
    const text = code(lua);
    for (const h of HELPERS) {
      if (!used.has(h.name) && new RegExp(`\\b${h.name}\\b`).test(text)) {
        used.add(h.name);
        scan(h.text);
      }
    }
  };
  scan(body);
  // In the prelude's own order: a Lua local is visible only below its definition.
  return HEADER + HELPERS.filter((h) => used.has(h.name)).map((h) => h.text).join('');
}

/** Every script of the store by name. */
export const SCRIPTS: Readonly<Record<ScriptName, LoadedScript>> = Object.freeze(
  Object.fromEntries(
    (Object.keys(BODIES) as ScriptName[]).map((name) => {
      const source = preludeFor(BODIES[name]) + BODIES[name];
      return [name, Object.freeze({ source, sha: createHash('sha1').update(source).digest('hex') })];
    }),
  ) as Record<ScriptName, LoadedScript>,
);
