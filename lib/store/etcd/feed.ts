/**
 * The change feed of the etcd store, as a subscriber sees it: one etcd watch
 * on the changes prefix (`P v/`), PUT events only (the changes' own expiry,
 * a DELETE, is no news), from the revision the store started at.
 *
 * ```
 *   start() ─▶ open(from R0 + 1) ─▶ watcher ── 'connected' ──▶ feed 'up'
 *                                     │ 'put' (another origin's key) ──▶ parse, check ──▶ 'change'
 *                                     │ 'disconnected' ──▶ feed 'down'; etcd3 reconnects by
 *                                     │                    itself, from the last revision seen
 *                                     └ 'error' (cancelled: its revision was compacted away,
 *                                        or etcd refused it) ──▶ feed 'down'; open again from
 *                                        the current revision after a backoff
 * ```
 *
 * Why changes are keys of their own and not the session keys' deletions:
 * every heartbeat re-puts a session's keys, and a watch of them would carry
 * every heartbeat to every process; the deletions alone (etcd's NOPUT
 * filter) would say that a session ended but not why (replaced, kicked,
 * deleted), which only the process that ended it knows. A change put by
 * that process says both, in one small event per ended session.
 *
 * Delivery is at least once, best effort: a watch that could not resume
 * (its revision compacted, or the gap longer than etcd keeps) misses what
 * was published meanwhile, and `'up'` after `'down'` says so; the registry
 * then reconciles its sessions against the store.
 *
 * @module
 */

import type { Watcher } from 'etcd3';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { EtcdConnection } from './connection.js';
import { RECONNECT_BASE_MS } from './connection.js';
import type { KeySpace } from './keys.js';
import type { SessionChange } from '../contract.js';
import { copySessionChange, validateSessionChange } from '../record.js';

/** Where the feed reports. */
export interface FeedHandlers {
  change(change: SessionChange): void;
  state(state: 'up' | 'down'): void;
  error(err: NetloopError): void;
}

/** See the module documentation. */
export class ChangeFeed {
  readonly #conn: EtcdConnection;
  readonly #keys: KeySpace;
  readonly #ownPrefix: string;
  readonly #on: FeedHandlers;
  readonly #retryMaxMs: number;
  #running = false;
  #up = false;
  #watcher: Watcher | undefined;
  #retry: NodeJS.Timeout | undefined;
  #attempt = 0;

  /**
   * @param ownPrefix the key prefix of this store's own changes (not delivered back to it).
   * @param retryMaxMs the longest pause before opening the watch again.
   */
  constructor(conn: EtcdConnection, keys: KeySpace, ownPrefix: string, handlers: FeedHandlers, retryMaxMs: number) {
    this.#conn = conn;
    this.#keys = keys;
    this.#ownPrefix = ownPrefix;
    this.#on = handlers;
    this.#retryMaxMs = retryMaxMs;
  }

  /** True while the watch is established. */
  get up(): boolean {
    return this.#up;
  }

  /** Starts watching (once); from the revision the store started at, or the current one if it has made no request yet. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#open(this.#conn.startRevision);
  }

  /** Stops watching; idempotent. Resolves once the watch is cancelled (or after the command timeout). */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#retry);
    const watcher = this.#watcher;
    this.#watcher = undefined;
    this.#setUp(false);
    if (watcher === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#conn.timeoutMs);
    });
    await Promise.race([watcher.cancel().catch(() => undefined), late]);
    clearTimeout(timer);
  }

  /** Opens the watch from `fromRevision` + 1 (0: from the current revision), or schedules another try. */
  async #open(fromRevision: number): Promise<void> {
    if (!this.#running) return;
    let from = fromRevision;
    try {
      const client = await this.#conn.client();
      if (from === 0) {
        from = await this.#conn.op('feed', async (c, call) => this.#conn.observe((await c.kv.range({ key: this.#keys.pingKey, count_only: true }, call)).header));
      }
      if (!this.#running) return;
      const watcher = client.watch().prefix(this.#keys.changes.key).only('put').startRevision(String(from + 1)).watcher();
      this.#watcher = watcher;
      watcher.on('connected', () => {
        this.#attempt = 0;
        this.#setUp(true);
      });
      watcher.on('disconnected', () => this.#setUp(false));
      watcher.on('put', (kv) => this.#deliver(kv.key, kv.value));
      watcher.on('error', (err: Error) => {
        // etcd cancelled the watch (most often: its revision was compacted away).
        // It is detached already; open a new one from the current revision.
        if (this.#watcher !== watcher) return;
        this.#watcher = undefined;
        this.#setUp(false);
        this.#on.error(this.#conn.wrap('feed', err));
        this.#later(0);
      });
    } catch (err) {
      if (!this.#running) return;
      this.#on.error(this.#conn.wrap('feed', err));
      this.#later(from);
    }
  }

  /** Opens the watch again after a backoff (50 ms, doubling up to the maximum, with jitter). */
  #later(fromRevision: number): void {
    if (!this.#running) return;
    const ceiling = Math.min(this.#retryMaxMs, RECONNECT_BASE_MS * 2 ** Math.min(this.#attempt++, 20));
    this.#retry = setTimeout(() => void this.#open(fromRevision), Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
    this.#retry.unref();
  }

  #setUp(up: boolean): void {
    if (this.#up === up) return;
    this.#up = up;
    this.#on.state(up ? 'up' : 'down');
  }

  /** One change put by some process: delivered unless it is this store's own, or not a change at all. */
  #deliver(key: Buffer, value: Buffer): void {
    if (key.toString('utf8').startsWith(this.#ownPrefix)) return;
    let change: unknown;
    try {
      change = JSON.parse(value.toString('utf8'));
    } catch {
      change = undefined;
    }
    const bad = validateSessionChange(change);
    if (bad !== null) {
      this.#on.error(
        new NetloopError(ErrorCode.STORE_CORRUPT, `etcd store: a published change under prefix ${this.#keys.prefix} is not a session change (${bad})`, {
          details: { prefix: this.#keys.prefix, reason: bad },
        }),
      );
      return;
    }
    this.#on.change(copySessionChange(change as SessionChange));
  }
}
