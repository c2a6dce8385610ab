/**
 * The Redis store's scripts, each the common prelude followed by its body,
 * with the SHA-1 that `EVALSHA` names it by.
 *
 * ```
 *   SCRIPTS[name] = { source: LUA_COMMON + BODY, sha: sha1(source) }
 *   create  set  touch  delete  lookup  user  list  clear
 * ```
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { CLEAR_SCRIPT } from './clear.js';
import { LUA_COMMON } from './common.js';
import { CREATE_SCRIPT } from './create.js';
import { DELETE_SCRIPT } from './delete.js';
import { LIST_SCRIPT } from './list.js';
import { LOOKUP_SCRIPT } from './lookup.js';
import { SET_SCRIPT } from './set.js';
import { TOUCH_SCRIPT } from './touch.js';
import { USER_SCRIPT } from './user.js';

export { DUP_CONN, DUP_ID, DUP_TOKEN } from './common.js';

const BODIES = {
  create: CREATE_SCRIPT,
  set: SET_SCRIPT,
  touch: TOUCH_SCRIPT,
  delete: DELETE_SCRIPT,
  lookup: LOOKUP_SCRIPT,
  user: USER_SCRIPT,
  list: LIST_SCRIPT,
  clear: CLEAR_SCRIPT,
} as const;

/** The name of one of the store's scripts. */
export type ScriptName = keyof typeof BODIES;

/** A script as sent: its whole source and its SHA-1. */
export interface LoadedScript {
  readonly source: string;
  readonly sha: string;
}

/** Every script of the store by name. */
export const SCRIPTS: Readonly<Record<ScriptName, LoadedScript>> = Object.freeze(
  Object.fromEntries(
    (Object.keys(BODIES) as ScriptName[]).map((name) => {
      const source = LUA_COMMON + BODIES[name];
      return [name, Object.freeze({ source, sha: createHash('sha1').update(source).digest('hex') })];
    }),
  ) as Record<ScriptName, LoadedScript>,
);
