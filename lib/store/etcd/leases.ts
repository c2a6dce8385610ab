/**
 * Lease buckets: the leases that make etcd remove a session's keys by itself
 * when nobody is left to do it (the process that wrote them crashed).
 *
 * Sessions are grouped by expiry time: one lease per bucket of `widthMs`,
 * granted the first time this process writes a key expiring in that bucket,
 * to live until the bucket's end. A session's keys carry the lease of the
 * bucket its `expiresAt` (+ grace) falls in; a heartbeat moves them to a
 * later bucket by putting them again with that bucket's lease. When a
 * bucket's lease runs out, etcd revokes it and deletes every key attached to
 * it in one step.
 *
 * ```
 *   time ──▶   now                    expiresAt + grace
 *               │   bucket b-1   │   bucket b   │  bucket b+1  │
 *               │                │      ▲       │              │
 *                                       └ the session's keys: lease of bucket b,
 *                                         granted with TTL = end of b - now
 *   buckets: Map<b, Promise<lease id>>   one grant per bucket, shared by every
 *                                        write that needs it; dropped once the
 *                                        bucket has ended
 * ```
 *
 * No lease is ever kept alive: each lives exactly until its bucket ends, so
 * a session of a crashed process ends at its own expiry (at most one bucket
 * width later), never earlier. About `(TTL + grace) / widthMs + 1` leases
 * exist per process at a time, whatever the number of sessions; and no
 * create waits for a grant except the first one in a bucket.
 *
 * The price: a key may outlive its session's `expiresAt` by up to one bucket
 * width (plus etcd's own lease timing; a restarted or newly elected etcd
 * leader gives every lease its full TTL again). The store never trusts a key
 * for liveness: every read checks the record's own `expiresAt`.
 *
 * @module
 */

import type { Etcd3 } from 'etcd3';
import type { CallOptions } from './connection.js';

/** etcd's largest lease TTL, in seconds (`MaxLeaseTTL`). */
export const MAX_LEASE_TTL_S = 9_000_000_000;

/** See the module documentation. */
export class LeaseBuckets {
  readonly #widthMs: number;
  readonly #graceMs: number;
  readonly #buckets = new Map<number, { end: number; lease: Promise<string> }>();

  /**
   * @param widthMs the bucket width (whole seconds are what etcd counts).
   * @param graceMs how much longer than its expiry a key lives (`expiryGraceMs`).
   */
  constructor(widthMs: number, graceMs: number) {
    this.#widthMs = widthMs;
    this.#graceMs = graceMs;
  }

  /** How many buckets this process holds a lease for. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * The lease for keys that must live until `expiresAt` (+ grace), judged at
   * wall time `now`: the lease of the bucket it falls in, granted now if this
   * process has none for it yet.
   */
  leaseFor(expiresAt: number, now: number, client: Etcd3, call: CallOptions): Promise<string> {
    const width = this.#widthMs;
    const bucket = Math.floor((expiresAt + this.#graceMs) / width);
    const held = this.#buckets.get(bucket);
    if (held !== undefined) return held.lease;
    const end = (bucket + 1) * width;
    this.#sweep(now);
    const ttl = Math.min(MAX_LEASE_TTL_S, Math.max(1, Math.ceil((end - now) / 1000)));
    const lease = client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }, call).then((res) => res.ID);
    const entry = { end, lease };
    this.#buckets.set(bucket, entry);
    // A failed grant is not remembered: the next write asks again.
    lease.catch(() => {
      if (this.#buckets.get(bucket) === entry) this.#buckets.delete(bucket);
    });
    return lease;
  }

  /**
   * Forgets a lease etcd no longer knows ("requested lease not found": it
   * ran out sooner than this process's clock expected, or was revoked), so
   * the next write for its bucket is granted a new one.
   */
  async forget(leaseId: string): Promise<void> {
    for (const [bucket, entry] of this.#buckets) {
      if ((await entry.lease.catch(() => null)) === leaseId && this.#buckets.get(bucket) === entry) this.#buckets.delete(bucket);
    }
  }

  /** Drops the buckets that have ended by `now`: their leases are gone or about to be. */
  #sweep(now: number): void {
    for (const [bucket, entry] of this.#buckets) if (entry.end <= now) this.#buckets.delete(bucket);
  }
}
