/**
 * Heartbeats in batches: the touches asked for in one turn of the event loop
 * (the registry's write-behind issues a whole audit's worth at once) go to
 * etcd as few transactions, each moving up to {@link TOUCHES_PER_TXN}
 * sessions, instead of one transaction per session.
 *
 * ```
 *   touch(id, e, l) ──▶ pending: Map<id, {expiresAt, lastActiveAt, waiters}>   (a second touch
 *                       │                                                      of an id in the
 *                       └─ first of the turn: queueMicrotask(flush)            turn replaces it)
 *   flush ──▶ batches of 25 sessions, each one operation under the deadline:
 *     read the sessions not known (one transaction of ranges)
 *     transaction  compare  Mod(s/<id>) = as known, for each session
 *                  success  put each session's keys with its new expiry's lease
 *                           (or delete them: an expiry already past ends it)
 *                  failure  range s/<id> for each: the fresh records, then again
 *   each waiter ◀── true (moved), false (gone or expired), or the batch's coded error
 * ```
 *
 * 25 sessions of at most 5 keys each keep a transaction within etcd's
 * default limit of 128 operations. One session changed by another process
 * fails the whole transaction's compare; the failure branch brings every
 * record of the batch back, so the next attempt has them all fresh.
 *
 * @module
 */

import type { Etcd3 } from 'etcd3';
import type { Clock } from '../../core/clock.js';
import { copySessionRecord } from '../record.js';
import { decodeRecord } from './codec.js';
import type { CallOptions, EtcdConnection } from './connection.js';
import type { KeySpace } from './keys.js';
import type { LeaseBuckets } from './leases.js';
import { MAX_TXN_OPS } from './reads.js';
import { TxnPlan, commit, get } from './writes.js';
import type { RecordCache, Stored } from './writes.js';

/** Sessions moved by one transaction: at most 5 keys each within etcd's default 128 operations. */
export const TOUCHES_PER_TXN = Math.floor(MAX_TXN_OPS / 5);

/** One session's touch, waiting for its batch. */
interface Pending {
  readonly id: string;
  expiresAt: number;
  lastActiveAt: number;
  readonly waiters: Array<{ resolve: (moved: boolean) => void; reject: (err: unknown) => void }>;
  /** What is known of the session: undefined until read (or found in the cache). */
  cur: Stored | null | undefined;
  /** True once `cur` was read from etcd in this batch (not only cached). */
  fresh: boolean;
  /** The outcome, once decided. */
  result: boolean | undefined;
}

/** See the module documentation. */
export class TouchBatcher {
  #pending = new Map<string, Pending>();
  #scheduled = false;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly keys: KeySpace,
    private readonly leases: LeaseBuckets,
    private readonly cache: RecordCache,
    private readonly clock: Clock,
  ) {}

  /** Queues a touch (checked by the caller) for this turn's batch. */
  touch(id: string, expiresAt: number, lastActiveAt: number): Promise<boolean> {
    let p = this.#pending.get(id);
    if (p === undefined) {
      p = { id, expiresAt, lastActiveAt, waiters: [], cur: undefined, fresh: false, result: undefined };
      this.#pending.set(id, p);
    } else {
      p.expiresAt = expiresAt;
      p.lastActiveAt = lastActiveAt;
    }
    const promise = new Promise<boolean>((resolve, reject) => p.waiters.push({ resolve, reject }));
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return promise;
  }

  #flush(): void {
    this.#scheduled = false;
    const all = [...this.#pending.values()];
    this.#pending = new Map();
    for (let i = 0; i < all.length; i += TOUCHES_PER_TXN) {
      const batch = all.slice(i, i + TOUCHES_PER_TXN);
      this.#run(batch).then(
        () => {
          for (const p of batch) for (const w of p.waiters) w.resolve(p.result ?? false);
        },
        (err: unknown) => {
          for (const p of batch) for (const w of p.waiters) w.reject(err);
        },
      );
    }
  }

  /** Moves one batch: see the module documentation. */
  #run(batch: Pending[]): Promise<void> {
    for (const p of batch) p.cur = this.cache.get(p.id);
    return this.conn.op('touch', async (client, call) => {
      for (;;) {
        const unknown = batch.filter((p) => p.result === undefined && p.cur === undefined);
        if (unknown.length > 0) await this.#read(client, call, unknown);
        const now = this.clock.wallNow();
        const active: Pending[] = [];
        let reread = false;
        for (const p of batch) {
          if (p.result !== undefined) continue;
          const alive = p.cur !== null && p.cur !== undefined && p.cur.rec.expiresAt > now;
          if (!alive && !p.fresh) {
            // "Gone" is never decided from the cache: read it.
            p.cur = undefined;
            reread = true;
          } else if (!alive) {
            p.result = false;
          } else {
            active.push(p);
          }
        }
        if (reread) continue;
        if (active.length === 0) return;
        const plan = new TxnPlan(this.keys);
        const used = new Set<string>();
        const next = new Map<string, ReturnType<typeof copySessionRecord>>();
        for (const p of active) {
          const cur = p.cur!;
          const recordKey = this.keys.record(p.id);
          plan.modIs(recordKey, cur.mod);
          plan.failure.push(get(recordKey));
          const moved = copySessionRecord(cur.rec);
          moved.expiresAt = p.expiresAt;
          moved.lastActiveAt = p.lastActiveAt;
          if (moved.expiresAt > now) {
            const lease = await this.leases.leaseFor(moved.expiresAt, now, client, call);
            used.add(lease);
            plan.putSession(moved, lease);
            next.set(p.id, moved);
          } else {
            plan.removeSession(cur.rec);
          }
        }
        const res = await commit(this.conn, this.leases, client, call, plan, [...used]);
        if (res === null) continue;
        const rev = String(this.conn.observe(res.header));
        if (res.succeeded) {
          for (const p of active) {
            const moved = next.get(p.id);
            if (moved === undefined) this.cache.delete(p.id);
            else this.cache.set(p.id, { rec: moved, mod: rev });
            p.result = true;
          }
          return;
        }
        for (const [i, p] of active.entries()) {
          const kv = res.responses[i]?.response_range.kvs[0];
          this.#learn(p, kv === undefined ? null : { rec: decodeRecord(kv.value, this.keys.prefix), mod: kv.mod_revision });
        }
      }
    });
  }

  /** Reads the records of `pending` in one transaction of ranges. */
  async #read(client: Etcd3, call: CallOptions, pending: Pending[]): Promise<void> {
    const res = await client.kv.txn({ success: pending.map((p) => get(this.keys.record(p.id))) }, call);
    this.conn.observe(res.header);
    for (const [i, p] of pending.entries()) {
      const kv = res.responses[i]?.response_range.kvs[0];
      this.#learn(p, kv === undefined ? null : { rec: decodeRecord(kv.value, this.keys.prefix), mod: kv.mod_revision });
    }
  }

  #learn(p: Pending, stored: Stored | null): void {
    p.cur = stored;
    p.fresh = true;
    if (stored === null) this.cache.delete(p.id);
    else this.cache.set(p.id, stored);
  }
}
