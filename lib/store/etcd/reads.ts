/**
 * The etcd store's reads of many sessions: listing, counting and presence.
 * Each reads one consistent snapshot, a single etcd revision, even across
 * several requests, so a page and its total always agree.
 *
 * ```
 *   scan(range)        range [key, end) in batches of scanBatch keys, the first at the
 *                      latest revision R, the rest at R ("more" → from the last key + \0)
 *   fetch(ids, R)      transactions of up to 128 ranges s/<id> at revision R, in parallel
 *   list / count       scan l/ (or u/<user>/), keep the live entries that match, order
 *                      them (createdAt, id), cut the page, fetch its records at R
 *   presence           scan u/<user>/ (isOnline) or u/ (onlineCount, onlineUsers):
 *                      a user is online while one of their entries is live and bound
 * ```
 *
 * A revision compacted away in the middle (another process compacted) makes
 * the read start again at the latest revision.
 *
 * Costs: list and count read every entry of the range (a few dozen bytes
 * each, O(sessions)), whatever the page; a page's records cost one more
 * round trip. Presence of one user reads that user's entries only.
 *
 * @module
 */

import type { Etcd3, IKeyValue } from 'etcd3';
import type { SessionRecord } from '../contract.js';
import { decodeListEntry, decodeRecord } from './codec.js';
import type { ListEntry } from './codec.js';
import type { CallOptions, EtcdConnection } from './connection.js';
import type { KeyRange, KeySpace } from './keys.js';

/** etcd's default `--max-txn-ops`: the most operations one transaction may hold. */
export const MAX_TXN_OPS = 128;

/** One consistent scan's entries and the revision they were read at. */
export interface Snapshot<E> {
  readonly entries: E[];
  readonly revision: number;
}

/** See the module documentation. */
export class SessionReader {
  constructor(
    private readonly conn: EtcdConnection,
    private readonly keys: KeySpace,
    private readonly scanBatch: number,
  ) {}

  /**
   * Runs `body` again from the latest revision when the revision it read at
   * was compacted away meanwhile (bounded by the operation's deadline).
   */
  async consistent<T>(body: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await body();
      } catch (err) {
        if (!this.conn.isCompacted(err)) throw err;
      }
    }
  }

  /** Every key-value of `range` at one revision (the latest), read in batches. */
  async scan(client: Etcd3, call: CallOptions, range: KeyRange, from?: Buffer): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const kvs: IKeyValue[] = [];
    let revision = 0;
    let key = from ?? range.key;
    for (;;) {
      const res = await client.kv.range({ key, range_end: range.end, limit: this.scanBatch, revision }, call);
      const rev = this.conn.observe(res.header);
      if (revision === 0) revision = rev;
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) return { kvs, revision };
      key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
  }

  /** The entries (`l/` or `u/` values) of `range`, decoded, at one revision. */
  async entries(client: Etcd3, call: CallOptions, range: KeyRange): Promise<Snapshot<ListEntry>> {
    const { kvs, revision } = await this.scan(client, call, range);
    const prefix = this.keys.prefix;
    return { entries: kvs.map((kv) => decodeListEntry(this.keys.idOf(kv.key), kv.value, prefix)), revision };
  }

  /**
   * The records of `ids` at `revision`, in the order of `ids`; an id with no
   * record there is left out (an index entry never outlives its record: they
   * are written and deleted together).
   */
  async fetch(client: Etcd3, call: CallOptions, ids: readonly string[], revision: number): Promise<SessionRecord[]> {
    const batches: Promise<SessionRecord[]>[] = [];
    for (let i = 0; i < ids.length; i += MAX_TXN_OPS) {
      const slice = ids.slice(i, i + MAX_TXN_OPS);
      batches.push(
        client.kv.txn({ success: slice.map((id) => ({ request_range: { key: this.keys.record(id), revision } })) }, call).then((res) => {
          this.conn.observe(res.header);
          const out: SessionRecord[] = [];
          for (const r of res.responses) {
            const kv = r.response_range.kvs[0];
            if (kv !== undefined) out.push(decodeRecord(kv.value, this.keys.prefix));
          }
          return out;
        }),
      );
    }
    return (await Promise.all(batches)).flat();
  }
}
