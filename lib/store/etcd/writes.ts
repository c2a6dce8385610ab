/**
 * Every write of the etcd store is one transaction that changes a session
 * and all its index keys together, guarded by compares on the revisions it
 * read, so that no other process's write can slip in between the read and
 * the write (optimistic concurrency; on a failed compare the transaction's
 * failure branch reads what changed, and the write is decided again).
 *
 * ```
 *   create(r)    compare  Mod(s/<id>) = Mod(t/<tok>) = Mod(c/<conn>) = as read (0: absent)
 *                         [maxPerUser: Mod of every key in u/<user>/ < the revision read + 1]
 *                         [an expired holder evicted: Mod(s/<holder>) = as read]
 *                success  delete the expired holders' keys; put s, t, c, u, l with the lease
 *                failure  range s/<id>, t/<tok>, c/<conn>   ── learn the holders, decide again
 *   rewrite(id)  compare  Mod(s/<id>) = as read (or as cached)  [+ claims of new t, c keys]
 *   (set, touch, success  delete the keys the session leaves; put the ones it keeps or takes
 *    update,             (with the lease of its new expiry), or delete them all when it ends
 *    delete)    failure  range s/<id> [+ the claimed keys]
 * ```
 *
 * The first attempt of a write uses what this process last knew of the
 * session (a bounded cache of records and their revisions, filled by its
 * own reads and writes): a heartbeat is then one round trip. A stale entry
 * costs a failed compare, whose failure branch brings the current record;
 * "gone" is never decided from the cache alone.
 *
 * Attempts repeat until one succeeds or the operation's deadline passes
 * (`NETLOOP_STORE_UNAVAILABLE`); a transaction whose answer is lost is not
 * sent again (it may have been applied: the session is then wholly written
 * or wholly absent, never half).
 *
 * @module
 */

import type { Etcd3, ICompare, IRequestOp, IResponseOp } from 'etcd3';
import type { Clock } from '../../core/clock.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionRecord } from '../contract.js';
import { copySessionRecord } from '../record.js';
import { decodeListEntry, decodeRecord, encodeRecord, listValue } from './codec.js';
import type { CallOptions, EtcdConnection } from './connection.js';
import type { KeySpace } from './keys.js';
import type { LeaseBuckets } from './leases.js';

/** A record as read from etcd, with the revision its key was last written at. */
export interface Stored {
  readonly rec: SessionRecord;
  readonly mod: string;
}

/**
 * The records this process last read or wrote, with their revisions: a
 * bounded map (the oldest entry leaves first). Entries are only hints for a
 * write's first attempt; the compare decides.
 *
 * ```
 *   Map<id, Stored>   insertion order = age; set() re-inserts; > max: the oldest goes
 * ```
 */
export class RecordCache {
  readonly #max: number;
  readonly #map = new Map<string, Stored>();

  constructor(max: number) {
    this.#max = max;
  }

  get(id: string): Stored | undefined {
    return this.#map.get(id);
  }

  set(id: string, stored: Stored): void {
    if (this.#max === 0) return;
    this.#map.delete(id);
    this.#map.set(id, stored);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  delete(id: string): void {
    this.#map.delete(id);
  }

  clear(): void {
    this.#map.clear();
  }
}

/** Which one-to-one key a claim is for (in the order duplicates are reported). */
type ClaimKind = 'id' | 'token' | 'connection';

/** A one-to-one key a write needs for its session, and what is known of it. */
interface Claim {
  readonly kind: ClaimKind;
  readonly key: Buffer;
  /** The key's revision as last read; '0' for absent (assumed until read). */
  mod: string;
  /** The session holding it (for an `id` claim: the record stored under this id), or null. */
  holder: Stored | null;
}

const claim = (kind: ClaimKind, key: Buffer): Claim => ({ kind, key, mod: '0', holder: null });
/** A range of one key, as a transaction operation. */
export const get = (key: Buffer): IRequestOp => ({ request_range: { key } });
const keyId = (key: Buffer): string => key.toString('latin1');

/** The duplicate a live holder of a claim makes (`NETLOOP_INVALID_VALUE`; the token hash is never echoed). */
function duplicate(kind: ClaimKind, r: SessionRecord): NetloopError {
  if (kind === 'id') return new NetloopError(ErrorCode.INVALID_VALUE, 'a session with this id already exists', { details: { id: r.id } });
  if (kind === 'token') return new NetloopError(ErrorCode.INVALID_VALUE, 'another live session has this token hash', { details: { id: r.id } });
  return new NetloopError(ErrorCode.INVALID_VALUE, 'another live session is bound to this connection', {
    details: { id: r.id, connectionId: r.connectionId },
  });
}

/**
 * One transaction being built: compares, the failure branch's reads, and
 * the success branch's deletes and puts (a key both deleted and put is only
 * put: etcd refuses a transaction that names a key twice).
 */
export class TxnPlan {
  readonly compare: ICompare[] = [];
  readonly failure: IRequestOp[] = [];
  readonly #compared = new Set<string>();
  readonly #deletes = new Map<string, Buffer>();
  readonly #puts: IRequestOp[] = [];
  readonly #putKeys = new Set<string>();
  /** Ids of expired holders this transaction evicts. */
  readonly evicted: string[] = [];

  constructor(private readonly keys: KeySpace) {}

  modIs(key: Buffer, mod: string): void {
    const k = keyId(key);
    if (this.#compared.has(k)) return;
    this.#compared.add(k);
    this.compare.push({ key, target: 'Mod', result: 'Equal', mod_revision: mod });
  }

  delete(key: Buffer): void {
    this.#deletes.set(keyId(key), key);
  }

  put(key: Buffer, value: Buffer, lease: string): void {
    this.#putKeys.add(keyId(key));
    this.#puts.push({ request_put: { key, value, lease } });
  }

  /** One more operation of the success branch, on a key no other operation names (a tombstone). */
  extra(op: IRequestOp): void {
    this.#puts.push(op);
  }

  /** Deletes every key of `r`. */
  removeSession(r: SessionRecord): void {
    for (const key of sessionKeys(this.keys, r)) this.delete(key);
  }

  /** Puts every key of `r` with `lease`. */
  putSession(r: SessionRecord, lease: string): void {
    const k = this.keys;
    const entry = listValue(r);
    const id = Buffer.from(r.id);
    this.put(k.record(r.id), encodeRecord(r), lease);
    this.put(k.token(r.tokenHash), id, lease);
    this.put(k.listEntry(r.id), entry, lease);
    if (r.connectionId !== null) this.put(k.connection(r.connectionId), id, lease);
    if (r.userId !== null) this.put(k.userEntry(r.userId, r.id), entry, lease);
  }

  /** A claim: its compare, its read on failure, and the eviction of an expired holder. */
  claim(c: Claim): void {
    this.modIs(c.key, c.mod);
    this.failure.push(get(c.key));
    if (c.holder !== null) {
      this.modIs(this.keys.record(c.holder.rec.id), c.holder.mod);
      this.removeSession(c.holder.rec);
      this.evicted.push(c.holder.rec.id);
    }
  }

  build(): { compare: ICompare[]; success: IRequestOp[]; failure: IRequestOp[] } {
    const success: IRequestOp[] = [];
    for (const [k, key] of this.#deletes) if (!this.#putKeys.has(k)) success.push({ request_delete_range: { key } });
    success.push(...this.#puts);
    return { compare: this.compare, success, failure: this.failure };
  }
}

/** A transaction's answer. */
export type TxnResult = Awaited<ReturnType<Etcd3['kv']['txn']>>;

/**
 * Sends the transaction of `plan`. Resolves null when one of its `leases`
 * was unknown to etcd (it ran out sooner than this process's clock
 * expected): the leases are forgotten and the caller tries again with new
 * ones.
 */
export async function commit(conn: EtcdConnection, leases: LeaseBuckets, client: Etcd3, call: CallOptions, plan: TxnPlan, used: readonly string[]): Promise<TxnResult | null> {
  try {
    return await client.kv.txn(plan.build(), call);
  } catch (err) {
    if (used.length > 0 && conn.isLeaseNotFound(err)) {
      for (const lease of used) await leases.forget(lease);
      return null;
    }
    throw err;
  }
}

/** Every key of a session (see the key layout in `keys.ts`). */
export function sessionKeys(keys: KeySpace, r: SessionRecord): Buffer[] {
  const out = [keys.record(r.id), keys.token(r.tokenHash), keys.listEntry(r.id)];
  if (r.connectionId !== null) out.push(keys.connection(r.connectionId));
  if (r.userId !== null) out.push(keys.userEntry(r.userId, r.id));
  return out;
}

/** What a rewrite does to a session (see {@link SessionWriter.rewrite}). */
export interface Rewrite<T> {
  /** The operation's name, for errors. */
  readonly name: string;
  readonly id: string;
  /** The result when the session is gone (absent, or expired by the clock). */
  readonly gone: T;
  /** The next version of a live record (null: the session ends), and the operation's result. */
  decide(cur: SessionRecord, now: number): { next: SessionRecord | null; result: T };
  /** Removes a session found expired whose keys are still there (delete does, to free them at once). */
  readonly removeExpired?: boolean;
  /** The one-to-one keys `next` takes that `cur` does not hold (set). */
  claims?(cur: SessionRecord, next: SessionRecord): Array<'token' | 'connection'>;
  /** More operations for the same transaction when the session ends (a tombstone). */
  onEnd?(cur: SessionRecord, now: number, client: Etcd3, call: CallOptions): Promise<IRequestOp[]>;
}

/** The store's writes; see the module documentation. */
export class SessionWriter {
  constructor(
    private readonly conn: EtcdConnection,
    private readonly keys: KeySpace,
    private readonly leases: LeaseBuckets,
    private readonly cache: RecordCache,
    private readonly clock: Clock,
  ) {}

  /**
   * Inserts a record (checked by the caller) and its index keys; resolves
   * false when `max` (the user's live sessions) refused it. A record already
   * expired is accepted, frees the keys it names from expired holders, and
   * is not stored.
   */
  create(record: SessionRecord, max: number | undefined): Promise<boolean> {
    const { keys, conn, clock, leases } = this;
    const rec = copySessionRecord(record);
    const claims: Claim[] = [claim('id', keys.record(rec.id)), claim('token', keys.token(rec.tokenHash))];
    if (rec.connectionId !== null) claims.push(claim('connection', keys.connection(rec.connectionId)));
    const userRange = max !== undefined && rec.userId !== null ? keys.user(rec.userId) : null;
    return conn.op('create', async (client, call) => {
      let learned = false;
      for (;;) {
        const now = clock.wallNow();
        let userRev = 0;
        if (userRange !== null) {
          // The claims and the user's sessions, read at one revision; the
          // transaction below succeeds only if none of the user's keys changed since.
          const read = await client.kv.txn({ success: [...claims.map((c) => get(c.key)), { request_range: { key: userRange.key, range_end: userRange.end } }] }, call);
          userRev = conn.observe(read.header);
          await this.#learn(client, call, rec.id, claims, read.responses);
          this.#check(claims[0]!, now, rec);
          let live = 0;
          for (const kv of read.responses[claims.length]!.response_range.kvs) {
            if (decodeListEntry('', kv.value, keys.prefix).expiresAt > now) live++;
          }
          if (live >= max!) return false;
          for (const c of claims.slice(1)) this.#check(c, now, rec);
        } else if (learned) {
          for (const c of claims) this.#check(c, now, rec);
        }
        const plan = new TxnPlan(keys);
        for (const c of claims) plan.claim(c);
        if (userRange !== null) {
          plan.compare.push({ key: userRange.key, range_end: userRange.end, target: 'Mod', result: 'Less', mod_revision: userRev + 1 });
          plan.failure.length = 0;
        }
        let lease: string | undefined;
        if (rec.expiresAt > now) {
          lease = await leases.leaseFor(rec.expiresAt, now, client, call);
          plan.putSession(rec, lease);
        }
        const res = await this.#commit(client, call, plan, lease);
        if (res === null) continue;
        const rev = String(conn.observe(res.header));
        if (res.succeeded) {
          for (const id of plan.evicted) this.cache.delete(id);
          if (lease !== undefined) this.cache.set(rec.id, { rec, mod: rev });
          return true;
        }
        if (userRange === null) {
          await this.#learn(client, call, rec.id, claims, res.responses);
          learned = true;
        }
      }
    });
  }

  /**
   * Changes (or ends) one live session in one transaction: `w.decide` gives
   * its next version from the current one. Resolves `w.gone` when it is
   * absent or expired.
   */
  rewrite<T>(w: Rewrite<T>): Promise<T> {
    const { keys, conn, clock, leases, cache } = this;
    const id = w.id;
    const recordKey = keys.record(id);
    return conn.op(w.name, async (client, call) => {
      let cur: Stored | null | undefined = cache.get(id);
      let fresh = false;
      const learned = new Map<string, Claim>();
      for (;;) {
        if (cur === undefined) {
          cur = await this.read(client, call, id);
          fresh = true;
        }
        const now = clock.wallNow();
        const alive = cur !== null && cur.rec.expiresAt > now;
        if (!alive && !fresh) {
          // "Gone" is never decided from the cache: read it.
          cur = undefined;
          continue;
        }
        if (cur === null || (!alive && w.removeExpired !== true)) return w.gone;
        const { next, result } = alive ? w.decide(cur.rec, now) : { next: null, result: w.gone };
        const plan = new TxnPlan(keys);
        plan.modIs(recordKey, cur.mod);
        plan.failure.push(get(recordKey));
        const claims: Claim[] = [];
        const stays = next !== null && next.expiresAt > now;
        if (stays && w.claims !== undefined) {
          for (const kind of w.claims(cur.rec, next)) {
            const key = kind === 'token' ? keys.token(next.tokenHash) : keys.connection(next.connectionId!);
            const c = learned.get(keyId(key)) ?? claim(kind, key);
            this.#check(c, now, next);
            claims.push(c);
            plan.claim(c);
          }
        }
        plan.removeSession(cur.rec);
        let lease: string | undefined;
        if (stays) {
          lease = await leases.leaseFor(next.expiresAt, now, client, call);
          plan.putSession(next, lease);
        } else if (alive && w.onEnd !== undefined) {
          for (const op of await w.onEnd(cur.rec, now, client, call)) plan.extra(op);
        }
        const res = await this.#commit(client, call, plan, lease);
        if (res === null) continue;
        const rev = String(conn.observe(res.header));
        if (res.succeeded) {
          for (const evicted of plan.evicted) cache.delete(evicted);
          if (stays) cache.set(id, { rec: copySessionRecord(next), mod: rev });
          else cache.delete(id);
          return result;
        }
        const kv = res.responses[0]?.response_range.kvs[0];
        cur = kv === undefined ? null : { rec: decodeRecord(kv.value, keys.prefix), mod: kv.mod_revision };
        fresh = true;
        if (cur === null) cache.delete(id);
        else cache.set(id, cur);
        if (claims.length > 0) {
          await this.#learn(client, call, id, claims, res.responses.slice(1));
          for (const c of claims) learned.set(keyId(c.key), c);
        }
      }
    });
  }

  /** The stored record of `id` (expired or not), or null. */
  async read(client: Etcd3, call: CallOptions, id: string): Promise<Stored | null> {
    const res = await client.kv.range({ key: this.keys.record(id) }, call);
    this.conn.observe(res.header);
    const kv = res.kvs[0];
    if (kv === undefined) {
      this.cache.delete(id);
      return null;
    }
    const stored = { rec: decodeRecord(kv.value, this.keys.prefix), mod: kv.mod_revision };
    this.cache.set(id, stored);
    return stored;
  }

  /**
   * Sends a transaction. Resolves null when its lease was unknown to etcd
   * (it ran out sooner than this process's clock expected): the lease is
   * forgotten and the caller tries again with a new one.
   */
  #commit(client: Etcd3, call: CallOptions, plan: TxnPlan, lease: string | undefined): Promise<TxnResult | null> {
    return commit(this.conn, this.leases, client, call, plan, lease === undefined ? [] : [lease]);
  }

  /** A live holder of a claim other than the session itself is a duplicate. */
  #check(c: Claim, now: number, r: SessionRecord): void {
    if (c.holder !== null && c.holder.rec.expiresAt > now) throw duplicate(c.kind, r);
  }

  /**
   * Learns each claim's key from the responses of ranges over them (in
   * claim order): its revision, and its holder with the holder's record
   * (read in one more round trip). An index key whose holder has no record
   * is an orphan: it is simply overwritten (its revision is compared).
   */
  async #learn(client: Etcd3, call: CallOptions, id: string, claims: Claim[], responses: IResponseOp[]): Promise<void> {
    const wanted = new Map<string, Claim[]>();
    for (const [i, c] of claims.entries()) {
      const kv = responses[i]?.response_range.kvs[0];
      c.holder = null;
      if (kv === undefined) {
        c.mod = '0';
        continue;
      }
      c.mod = kv.mod_revision;
      if (c.kind === 'id') {
        c.holder = { rec: decodeRecord(kv.value, this.keys.prefix), mod: kv.mod_revision };
        continue;
      }
      const holderId = kv.value.toString('utf8');
      // Held by this very id: the id claim evicts that record (its keys included).
      if (holderId === id) continue;
      const list = wanted.get(holderId);
      if (list === undefined) wanted.set(holderId, [c]);
      else list.push(c);
    }
    if (wanted.size === 0) return;
    const ids = [...wanted.keys()];
    const res = await client.kv.txn({ success: ids.map((h) => get(this.keys.record(h))) }, call);
    this.conn.observe(res.header);
    for (const [i, h] of ids.entries()) {
      const kv = res.responses[i]?.response_range.kvs[0];
      if (kv === undefined) continue;
      const holder = { rec: decodeRecord(kv.value, this.keys.prefix), mod: kv.mod_revision };
      for (const c of wanted.get(h)!) c.holder = holder;
    }
  }
}
