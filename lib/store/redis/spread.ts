/**
 * The Redis store's operations on a cluster with its keys spread: each
 * session's keys in the session's slot, each user's in the user's, each
 * token hash and connection in its own. No script may span slots of
 * different nodes, so an operation that touches a session and its index
 * entries runs in steps, in an order that keeps every read right if a
 * process dies between two of them:
 *
 * ```
 *   create   s-stage (the hash, marked pending: invisible)           session slot
 *            u-entry reserve (maxPerUser, atomic) | put               user slot
 *            ix-claim token, ix-claim connection                      their slots
 *            s-commit (the pending mark goes: the session exists)     session slot
 *            a failure on the way drops what was done; a death leaves a pending hash
 *            that expires with its window, and entries no live session backs
 *   delete   s-delete (the session is gone) ▶ its entries dropped     index slots after
 *   set      claims and user entry for the new fields ▶ s-write ▶ the old entries dropped
 *            (a write condition is checked first, and again by s-write, atomically with
 *            the write: refused there, the new claims are given back)
 *   touch    s-touch per node (the hashes only) ▶ past a horizon: entries moved first,
 *            then s-commit; earlier: s-commit first, then the entries fitted
 *   update   the update script, in the session's slot alone
 * ```
 *
 * Index entries point to sessions and are verified on every read against
 * the session they name (its live hash holds the same token hash,
 * connection or user), so an entry left behind is never believed; it expires
 * with its horizon. A claim that finds an entry holds it only when that
 * entry's session backs it (a staged create's pending session counts until
 * its window ends).
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionRecord } from '../contract.js';
import { assertCondition, compareSessions, conditionFailed } from '../record.js';
import { conditionArgs, decodeFields, recordArgs, writeResult } from './codec.js';
import type { RedisConnection } from './connection.js';
import { Keys, horizonOf } from './keys.js';
import { DUP_CONN, DUP_ID, DUP_TOKEN, MOVED, READ_FIELDS } from './scripts/index.js';

/** Tries of a claim or reservation that keeps finding dead holders replaced by new ones. */
const CONTENTION_TRIES = 4;

/** One touch of a batch. */
export interface TouchEntry {
  readonly id: string;
  readonly expiresAt: number;
  readonly lastActiveAt: number;
  /** The checked write condition (see `checkWriteCondition`); undefined for none. */
  readonly expected: string | null | undefined;
}

/** The spread settings, validated by the store. */
export interface SpreadSettings {
  readonly conn: RedisConnection;
  readonly keys: Keys;
  readonly clock: Clock;
  readonly graceMs: number;
  /** Keep the token index. */
  readonly tokens: boolean;
  /** How long a staged create stays pending before it counts as dead, in ms. */
  readonly pendingMs: number;
}

const isNull = (v: unknown): boolean => v === null || v === undefined;

/** See the module documentation. */
export class SpreadOps {
  readonly #s: SpreadSettings;

  constructor(settings: SpreadSettings) {
    this.#s = settings;
  }

  /** PX that keeps an index entry until the horizon `h`. */
  #pxTo(h: number): number {
    return Math.max(1, Math.ceil(h - this.#s.clock.wallNow()) + this.#s.graceMs);
  }

  /**
   * True when session `id` backs an index entry of `field` = `value`: its
   * hash holds the value and it is live, or it is a create still pending.
   */
  async #backs(id: string, field: 't' | 'c' | 'u', value: string): Promise<boolean> {
    const { conn, keys, clock } = this.#s;
    const key = keys.session(id);
    const g = await conn.send<unknown[]>(['HMGET', key, field, 'e', 'p'], key);
    const now = clock.wallNow();
    return g[0] === value && Number(g[1]) > now && (isNull(g[2]) || Number(g[2]) > now);
  }

  /** Claims a token hash ('t') or connection ('c') entry for `id`; false when a live session holds it. */
  async #claim(kind: 't' | 'c', value: string, id: string, px: number): Promise<boolean> {
    const { conn, keys } = this.#s;
    const key = kind === 't' ? keys.token(value) : keys.connection(value);
    let dead = '';
    for (let i = 0; i < CONTENTION_TRIES; i++) {
      const holder = String(await conn.run('ix-claim', [kind, value, id, String(px), dead], key));
      if (holder === '') return true;
      if (await this.#backs(holder, kind, value)) return false;
      dead = holder;
    }
    return false;
  }

  /** Drops (`px` '') or moves an index entry of `id`, when it is still `id`'s. */
  #own(kind: 't' | 'c', value: string, id: string, px: string): Promise<unknown> {
    const { conn, keys } = this.#s;
    return conn.run('ix-own', [kind, value, id, px], kind === 't' ? keys.token(value) : keys.connection(value));
  }

  /** Puts, drops or (with `max`) reserves `id`'s entry of `userId`; false when the user is full. */
  async #user(op: 'put' | 'drop' | 'reserve', userId: string, id: string, h = 0, max = 0): Promise<boolean> {
    const { conn, keys } = this.#s;
    const key = keys.user(userId);
    let dead: string[] = [];
    for (let i = 0; i < CONTENTION_TRIES; i++) {
      const out = (await conn.run('u-entry', [userId, op, id, String(h), String(max), ...dead], key)) as unknown[];
      if (Number(out[0]) === 1) return true;
      const members = out.slice(1).map(String);
      const backed = await Promise.all(members.map((m) => this.#backs(m, 'u', userId)));
      dead = members.filter((_, k) => !backed[k]);
      if (dead.length === 0) return false;
    }
    return false;
  }

  /** See `SessionStore.create`: resolves 1 | 0 (maxPerUser) or throws the duplicate's error. */
  async create(r: SessionRecord, max: number): Promise<boolean> {
    const { conn, keys, clock, tokens, pendingMs } = this.#s;
    const sk = keys.session(r.id);
    const now = clock.wallNow();
    if (!(r.expiresAt > now)) {
      // Accepted and never seen (as every store does), unless the id is a live session's.
      const g = await conn.send<unknown[]>(['HMGET', sk, 'e', 'p'], sk);
      if (Number(g[0]) > now && (isNull(g[1]) || Number(g[1]) > now)) writeResult(DUP_ID, r);
      return true;
    }
    const args = recordArgs(r);
    writeResult(Number(await conn.run('s-stage', [...args, String(pendingMs)], sk)), r);
    const h = horizonOf(r.expiresAt, now);
    const px = this.#pxTo(h);
    let user = false;
    let token = false;
    let connection = false;
    try {
      if (r.userId !== null) {
        user = await this.#user(max > 0 ? 'reserve' : 'put', r.userId, r.id, h, max);
        if (!user) {
          await this.#undo(r, false, false, false);
          return false;
        }
      }
      if (tokens) {
        token = await this.#claim('t', r.tokenHash, r.id, px);
        if (!token) writeResult(DUP_TOKEN, r);
      }
      if (r.connectionId !== null) {
        connection = await this.#claim('c', r.connectionId, r.id, px);
        if (!connection) writeResult(DUP_CONN, r);
      }
      if (Number(await conn.run('s-commit', [r.id, '', '', ''], sk)) !== 1) {
        throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis store: a create took longer than its pending window', {
          details: { operation: 'create', pendingMs },
        });
      }
      return true;
    } catch (err) {
      await this.#undo(r, user, token, connection).catch(() => undefined);
      throw err;
    }
  }

  /** Drops what a create that failed half-way did (best effort: leftovers are never believed). */
  async #undo(r: SessionRecord, user: boolean, token: boolean, connection: boolean): Promise<void> {
    const { conn, keys } = this.#s;
    const steps: Promise<unknown>[] = [conn.run('s-delete', [r.id, '1'], keys.session(r.id))];
    if (user && r.userId !== null) steps.push(this.#user('drop', r.userId, r.id));
    if (token) steps.push(this.#own('t', r.tokenHash, r.id, ''));
    if (connection && r.connectionId !== null) steps.push(this.#own('c', r.connectionId, r.id, ''));
    await Promise.all(steps);
  }

  /** See `SessionStore.set`; `expected` is the checked write condition (see `checkWriteCondition`). */
  async set(r: SessionRecord, expected?: string | null): Promise<boolean> {
    const { conn, keys, clock, tokens } = this.#s;
    const sk = keys.session(r.id);
    const old = await conn.send<unknown[]>(['HMGET', sk, 't', 'u', 'c', 'e', 'p'], sk);
    const now = clock.wallNow();
    if (!(Number(old[3]) > now) || !isNull(old[4])) return false;
    // Refused early, before any claim; s-write checks again, atomically with the write.
    assertCondition(r.id, typeof old[2] === 'string' ? old[2] : null, expected);
    if (!(r.expiresAt > now)) {
      await this.delete(r.id, expected);
      return true;
    }
    const h = horizonOf(r.expiresAt, now);
    const px = this.#pxTo(h);
    if (tokens && !(await this.#claim('t', r.tokenHash, r.id, px))) writeResult(DUP_TOKEN, r);
    if (r.connectionId !== null && !(await this.#claim('c', r.connectionId, r.id, px))) {
      if (tokens && r.tokenHash !== old[0]) await this.#own('t', r.tokenHash, r.id, '');
      writeResult(DUP_CONN, r);
    }
    if (r.userId !== null) await this.#user('put', r.userId, r.id, h);
    const written = Number(await conn.run('s-write', [...recordArgs(r), ...conditionArgs(expected)], sk));
    if (written === MOVED) {
      // Another process rebound the session between the first check and the write: give back the new claims.
      const back: Promise<unknown>[] = [];
      if (tokens && r.tokenHash !== old[0]) back.push(this.#own('t', r.tokenHash, r.id, ''));
      if (r.connectionId !== null && r.connectionId !== old[2]) back.push(this.#own('c', r.connectionId, r.id, ''));
      await Promise.all(back);
      throw conditionFailed(r.id);
    }
    if (written !== 1) return false;
    const drops: Promise<unknown>[] = [];
    if (typeof old[0] === 'string' && old[0] !== r.tokenHash) drops.push(this.#own('t', old[0], r.id, ''));
    if (typeof old[2] === 'string' && old[2] !== r.connectionId) drops.push(this.#own('c', old[2], r.id, ''));
    if (typeof old[1] === 'string' && old[1] !== r.userId) drops.push(this.#user('drop', old[1], r.id));
    await Promise.all(drops);
    return true;
  }

  /** See `SessionStore.delete` (`expected` as in `set`): the hash first, then its index entries. */
  async delete(id: string, expected?: string | null): Promise<boolean> {
    const { conn, keys } = this.#s;
    const out = (await conn.run('s-delete', [id, '0', ...conditionArgs(expected)], keys.session(id))) as unknown[];
    if (Number(out[0]) === MOVED) throw conditionFailed(id);
    await this.#dropEntries(id, out[1], out[2], out[3]);
    return Number(out[0]) === 1;
  }

  #dropEntries(id: string, t: unknown, u: unknown, c: unknown): Promise<unknown> {
    const drops: Promise<unknown>[] = [];
    if (typeof t === 'string' && t !== '') drops.push(this.#own('t', t, id, ''));
    if (typeof c === 'string' && c !== '') drops.push(this.#own('c', c, id, ''));
    if (typeof u === 'string' && u !== '') drops.push(this.#user('drop', u, id));
    return Promise.all(drops);
  }

  /**
   * Touches a batch: grouped by the node of each session, one `s-touch` per
   * node (falling back to one per session while slots move between nodes);
   * the touches that pass a horizon move their index entries and commit.
   * Resolves one result per entry, in order: 1 done, 0 gone, MOVED the
   * entry's condition not met.
   */
  async touch(batch: readonly TouchEntry[]): Promise<number[]> {
    const { conn, keys } = this.#s;
    const groups = new Map<string, number[]>();
    for (let i = 0; i < batch.length; i++) {
      const node = conn.nodeOf(keys.session(batch[i]!.id));
      let g = groups.get(node);
      if (g === undefined) groups.set(node, (g = []));
      g.push(i);
    }
    const results: number[] = new Array<number>(batch.length).fill(0);
    await Promise.all(
      [...groups.values()].map(async (idx) => {
        const entries = idx.map((i) => batch[i]!);
        let words: unknown[];
        try {
          words = await this.#touchGroup(entries);
        } catch (err) {
          // A slot moved to another node under the batch: one script per session, each routed by its own key.
          if (!(err instanceof Error) || !/non local key|CROSSSLOT|MOVED|ASK/.test(err.message) || entries.length === 1) throw err;
          words = (await Promise.all(entries.map((e) => this.#touchGroup([e])))).flat();
        }
        await Promise.all(
          idx.map(async (i, k) => {
            results[i] = await this.#touched(batch[i]!, words, k * 5);
          }),
        );
      }),
    );
    return results;
  }

  #touchGroup(entries: readonly TouchEntry[]): Promise<unknown[]> {
    const { conn, keys } = this.#s;
    const args: string[] = [String(entries.length)];
    for (const e of entries) args.push(e.id, String(e.expiresAt), String(e.lastActiveAt), ...conditionArgs(e.expected));
    return conn.run('s-touch', args, keys.session(entries[0]!.id)) as Promise<unknown[]>;
  }

  /** Finishes one touch from its five words (see `s-touch`). */
  async #touched(e: TouchEntry, w: readonly unknown[], at: number): Promise<number> {
    const code = Number(w[at]);
    if (code === 0 || code === 1 || code === MOVED) return code;
    const [t, u, c] = [w[at + 1], w[at + 2], w[at + 3]];
    if (code === 3) {
      await this.#dropEntries(e.id, t, u, c);
      return 1;
    }
    const h = Number(w[at + 4]);
    const px = String(this.#pxTo(h));
    const move = async (): Promise<void> => {
      const steps: Promise<unknown>[] = [];
      if (typeof t === 'string' && t !== '' && this.#s.tokens) steps.push(this.#own('t', t, e.id, px));
      if (typeof c === 'string' && c !== '') steps.push(this.#own('c', c, e.id, px));
      if (typeof u === 'string' && u !== '') steps.push(this.#user('put', u, e.id, h));
      await Promise.all(steps);
    };
    const commit = async (): Promise<number> =>
      Number(await this.#s.conn.run('s-commit', [e.id, String(e.expiresAt), String(e.lastActiveAt), String(h), ...conditionArgs(e.expected)], this.#s.keys.session(e.id)));
    // Later: the entries must outlive the session first; earlier: the session moves first.
    // (Entries moved for a touch refused at its commit only outlive the session a little longer.)
    if (code === 2) {
      await move();
      return commit();
    }
    const done = await commit();
    if (done === 1) await move();
    return done;
  }

  /** The live session an index entry ('t' token hash, 'c' connection) names, verified against it, or null. */
  async lookup(kind: 't' | 'c', value: string): Promise<SessionRecord | null> {
    const { conn, keys } = this.#s;
    const key = kind === 't' ? keys.token(value) : keys.connection(value);
    const id = await conn.send<unknown>(['GET', key], key);
    if (typeof id !== 'string') return null;
    const rows = await this.#load([id], kind);
    const row = rows[0];
    return row !== undefined && row.check === value ? row.record : null;
  }

  /** Every live session of a user (entries verified against their sessions), oldest first. */
  async user(userId: string): Promise<SessionRecord[]> {
    const rows = await this.#load(await this.#userIds(userId), 'u');
    return rows
      .filter((row) => row.check === userId)
      .map((row) => row.record)
      .sort(compareSessions);
  }

  /** True when a live session of the user is bound to a connection. */
  async isOnline(userId: string): Promise<boolean> {
    const rows = await this.#load(await this.#userIds(userId), 'u');
    return rows.some((row) => row.check === userId && row.record.connectionId !== null);
  }

  async #userIds(userId: string): Promise<string[]> {
    const { conn, keys, clock } = this.#s;
    const key = keys.user(userId);
    const ids = await conn.send<unknown[]>(['ZRANGEBYSCORE', key, `(${clock.wallNow()}`, '+inf'], key);
    return ids.map(String);
  }

  /** The live sessions among `ids`, each with the value of `field` its hash holds (for verification). */
  async #load(ids: readonly string[], field: 't' | 'c' | 'u'): Promise<Array<{ record: SessionRecord; check: unknown }>> {
    const { conn, keys, clock } = this.#s;
    const replies = await Promise.all(
      ids.map((id) => {
        const key = keys.session(id);
        return conn.send<unknown[]>(['HMGET', key, ...READ_FIELDS, field], key);
      }),
    );
    const now = clock.wallNow();
    const out: Array<{ record: SessionRecord; check: unknown }> = [];
    for (const f of replies) {
      const record = decodeFields(f, 0, keys.prefix, f[6]);
      if (record !== null && record.expiresAt > now) out.push({ record, check: f[7] });
    }
    return out;
  }
}
