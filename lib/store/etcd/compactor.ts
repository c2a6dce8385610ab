/**
 * Compaction behind the store: etcd keeps every revision of every key until
 * it is compacted, and the store writes a new revision of a session's keys
 * at each heartbeat, so history grows with traffic, not with sessions.
 *
 * ```
 *   every retention / 5:  sample (now, the highest revision seen)
 *                         compact to the newest sample at least `retention` old
 *                         (logical compaction; etcd frees the space itself)
 *   samples: [ (t0, r0), (t1, r1), ... ]   oldest first, dropped once compacted past
 * ```
 *
 * So etcd keeps at least `retention` of history: a watch that reconnects
 * within it resumes without losing a change; one away longer starts again
 * from the current revision and its store reports the gap (`'feed'` `'up'`
 * after `'down'`). Every process sharing the store may compact: compacting
 * to a revision already compacted is harmless and ignored. A deployment
 * that sets etcd's own `--auto-compaction-retention` can turn this off
 * (`compactionRetentionMs: 0`).
 *
 * @module
 */

import type { NetloopError } from '../../core/errors.js';
import type { EtcdConnection } from './connection.js';

/** See the module documentation. */
export class Compactor {
  readonly #conn: EtcdConnection;
  readonly #retentionMs: number;
  readonly #onError: (err: NetloopError) => void;
  readonly #samples: Array<{ at: number; revision: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #compacted = 0;
  #running: Promise<void> | undefined;

  constructor(conn: EtcdConnection, retentionMs: number, onError: (err: NetloopError) => void) {
    this.#conn = conn;
    this.#retentionMs = retentionMs;
    this.#onError = onError;
  }

  /** Starts sampling (idempotent); the timer never keeps the process alive. */
  start(): void {
    if (this.#timer !== undefined || this.#retentionMs === 0) return;
    this.#timer = setInterval(() => {
      this.#running ??= this.tick(performance.now()).finally(() => (this.#running = undefined));
    }, Math.max(1_000, Math.floor(this.#retentionMs / 5)));
    this.#timer.unref();
  }

  /** Stops; resolves once a compaction in progress has settled. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One round: sample the revision seen, compact to the newest sample old enough. */
  async tick(now: number): Promise<void> {
    const revision = this.#conn.revision;
    if (revision > 0) this.#samples.push({ at: now, revision });
    let target = 0;
    while (this.#samples.length > 0 && now - this.#samples[0]!.at >= this.#retentionMs) target = this.#samples.shift()!.revision;
    if (target <= this.#compacted) return;
    try {
      await this.#conn.op('compact', async (client, call) => {
        try {
          this.#conn.observe((await client.kv.compact({ revision: target, physical: false }, call)).header);
        } catch (err) {
          // Another process compacted as far already.
          if (!this.#conn.isCompacted(err)) throw err;
        }
      });
      this.#compacted = target;
    } catch (err) {
      this.#onError(this.#conn.wrap('compact', err));
    }
  }
}
