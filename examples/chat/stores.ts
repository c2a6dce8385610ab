/**
 * The chat server's session stores: the one `--store` names, opened, and a
 * start-up probe that says whether it answers, so that a dead Redis never
 * looks like a healthy server.
 *
 * ```
 *   --store memory           null: the registry keeps sessions in this process
 *   --store file:PATH        FileStore.open({ path })     (sessions survive a restart)
 *   --store redis://H:P      new RedisStore({ url })      (sessions shared by processes)
 *        │
 *        ▼ probeChatStore: ping (or one lookup), bounded ─▶ storeLine:
 *          "store file: answered in 2 ms" | "store redis: no answer (NETLOOP_STORE_UNAVAILABLE ...)"
 * ```
 *
 * @module
 */

import * as path from 'node:path';
import { ErrorCode, FileStore, NetloopError, RedisStore, isNetloopError } from 'netloop';
import type { SessionStore } from 'netloop';

/** The kind of store a `--store` argument names. */
export type ChatStoreKind = 'memory' | 'file' | 'redis';

/** The kind of store a `--store` argument names: `memory`, `file` or `redis`. */
export function chatStoreKind(spec: string): ChatStoreKind {
  return spec === 'memory' ? 'memory' : spec.startsWith('file:') ? 'file' : 'redis';
}

/** Opens the store a `--store` argument names (null for memory: the registry makes its own). The caller closes it. */
export async function openChatStore(spec: string): Promise<SessionStore | null> {
  switch (chatStoreKind(spec)) {
    case 'memory':
      return null;
    case 'file':
      return FileStore.open({ path: path.resolve(spec.slice('file:'.length)) });
    case 'redis':
      return new RedisStore({ url: spec });
  }
}

/** How long {@link probeChatStore} waits for the store's answer by default. */
export const STORE_PROBE_TIMEOUT_MS = 5_000;

/**
 * Asks `store` whether it answers (its `ping()`: one `PING` for Redis), and
 * resolves with null once it answered, or with the coded error when it
 * failed or did not answer within `timeoutMs` (`NETLOOP_STORE_UNAVAILABLE`).
 * Never rejects. A store without `ping()` is asked for a lookup of an id no
 * session has, which every store answers.
 */
export async function probeChatStore(store: SessionStore, timeoutMs = STORE_PROBE_TIMEOUT_MS): Promise<NetloopError | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new NetloopError(ErrorCode.STORE_UNAVAILABLE, `the store did not answer within ${timeoutMs} ms`, { details: { timeoutMs } })),
      timeoutMs,
    );
  });
  const ask = store.ping !== undefined ? store.ping() : store.get('00000000-0000-7000-8000-000000000000');
  ask.catch(() => undefined); // the deadline may win; the lookup's own failure must not go unhandled
  try {
    await Promise.race([ask, deadline]);
    return null;
  } catch (err) {
    return isNetloopError(err) ? err : new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'the store failed', { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** The start-up line that says whether the store answered (its kind, and the error code when it did not). */
export function storeLine(kind: string, failure: NetloopError | null, ms: number): string {
  if (failure === null) return `store ${kind}: answered in ${Math.round(ms)} ms`;
  const syscall = failure.details['syscallCode'];
  return (
    `store ${kind}: no answer (${failure.code}${typeof syscall === 'string' ? ` ${syscall}` : ''}); ` +
    `serving anyway: a client that gets no session receives netloop.Error ${failure.code}, then a close`
  );
}
