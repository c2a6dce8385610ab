/**
 * Listing, counting and presence without listing indexes: every master's
 * keys walked with `SCAN`, every session read and judged. What a store with
 * its keys spread over a cluster does (no index may gather every session on
 * one node), and what a store created with `listing: false` does.
 *
 * ```
 *   for each master:  SCAN 0 MATCH P s:{* COUNT 1000 ... ──▶ keys
 *                     HMGET key j m st b e a p  (in batches, on that master) ──▶ live records
 *   list / count / onlineCount / onlineUsers: filtered, ordered and paged here
 *   clear: SCAN P* on every master ──▶ UNLINK each key
 * ```
 *
 * Cost: O(keys under the prefix) round trips' worth of work per call, every
 * call (SCAN visits the whole keyspace of each master, and each session is
 * read): fine for an administrative page or a health check, not for a hot
 * path. `SCAN` may return a key twice; sessions are counted once by id.
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import type { SessionRecord } from '../contract.js';
import { decodeFields } from './codec.js';
import type { RedisConnection } from './connection.js';
import type { Keys } from './keys.js';
import { READ_FIELDS } from './scripts/index.js';

/** Keys read at once from one master. */
const READ_BATCH = 256;

/** Every live session of the store, in no particular order, each once. */
export async function scanSessions(conn: RedisConnection, keys: Keys, clock: Clock): Promise<SessionRecord[]> {
  const byId = new Map<string, SessionRecord>();
  for (const send of await conn.masters()) {
    let cursor = '0';
    do {
      const [next, found] = await send<[string, string[]]>(['SCAN', cursor, 'MATCH', keys.sessionPattern, 'COUNT', '1000']);
      cursor = String(next);
      for (let i = 0; i < found.length; i += READ_BATCH) {
        const replies = await Promise.all(found.slice(i, i + READ_BATCH).map((key) => send<unknown[]>(['HMGET', key, ...READ_FIELDS])));
        const now = clock.wallNow();
        for (const f of replies) {
          const r = decodeFields(f, 0, keys.prefix, f[6]);
          if (r !== null && r.expiresAt > now) byId.set(r.id, r);
        }
      }
    } while (cursor !== '0');
  }
  return [...byId.values()];
}

/** Every user with a live session bound to a connection, each once. */
export function onlineOf(sessions: readonly SessionRecord[]): string[] {
  const users = new Set<string>();
  for (const r of sessions) if (r.userId !== null && r.connectionId !== null) users.add(r.userId);
  return [...users];
}

/**
 * Removes every key under the prefix on every master, whatever it holds
 * (one `UNLINK` per key on a cluster, whose keys are in many slots).
 * Returns how many were removed.
 */
export async function unlinkAll(conn: RedisConnection, keys: Keys): Promise<number> {
  let removed = 0;
  const spread = conn.cluster !== null;
  for (const send of await conn.masters()) {
    let cursor = '0';
    do {
      const [next, found] = await send<[string, string[]]>(['SCAN', cursor, 'MATCH', keys.allPattern, 'COUNT', '1000']);
      cursor = String(next);
      if (found.length === 0) continue;
      if (!spread) removed += Number(await send(['UNLINK', ...found]));
      else removed += (await Promise.all(found.map((key) => conn.send(['UNLINK', key], key)))).reduce<number>((n, x) => n + Number(x), 0);
    } while (cursor !== '0');
  }
  return removed;
}
