/**
 * The registry's side of a shared store's change feed: publishing the ends
 * this process decides, acting on those other processes publish, and
 * reconciling when events may have been lost.
 *
 * ```
 *   this process                                  the store (shared)            other processes
 *   registry ends s ──publish(change)───────────▶ tombstone x:s + channel ─────▶ 'change'
 *   'change' (origin ≠ ours) ──▶ s held here? ──▶ store.get(s) ──gone, or bound elsewhere──▶
 *                                                  host.endRemote(h, reason)  (the binding notifies, closes)
 *   'feed' 'up' / every reconcileIntervalMs ──▶ reconcile(): every handle bound here, in batches
 *        store.get(id) ──gone / bound elsewhere──▶ tombstone(id) → reason (none: 'expired'
 *                                                   when gone, 'replaced' when bound elsewhere)
 * ```
 *
 * A change is acted on only once the store confirms it (the session is gone,
 * or bound to another connection), so a late or repeated change never ends a
 * session that lives on here (delivery is at least once, in no guaranteed
 * order). The bound of a lost change is one reconciliation: the next
 * `reconcileIntervalMs`, or the feed's reconnection, plus one store round
 * trip per batch.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import type { SessionChange, SessionEndReason, SessionRecord, SharedSessionStore } from '../store/contract.js';
import type { SessionHandle } from './handle.js';
import { ATTACHED, ENDED } from './handle.js';

/** Sessions checked against the store at once by a reconciliation. */
export const RECONCILE_BATCH = 256;

/**
 * How long a session that a write found gone, with no tombstone yet, waits
 * for one before it is called expired. The process that ended it deletes
 * it first and writes its tombstone and change one store round trip later
 * (the change is acted on only once the store confirms the end), so a
 * write landing between the two finds neither: this is that round trip's
 * bound, with room for a loaded machine.
 */
export const TOMBSTONE_WAIT_MS = 1_000;

/** Why a local session ends after another process's change, and its details. */
export interface RemoteEnd {
  reason: SessionEndReason;
  /** The event's reason text. */
  detail: string;
  by?: string;
}

/** What the feed asks of the registry. */
export interface FeedHost {
  readonly processId: string;
  readonly clock: Clock;
  /** True once the registry is closed. */
  isClosed(): boolean;
  /** The local handle of a session (any mode), or undefined. */
  handle(id: string): SessionHandle | undefined;
  /** Every local handle bound to a connection of this process. */
  bound(): SessionHandle[];
  /** Ends a local session that another process ended: no store write, the matching event. */
  endRemote(h: SessionHandle, end: RemoteEnd): void;
  /** A failure nobody awaits: to the registry's `error` event. */
  fail(error: NetloopError, operation: 'feed' | 'reconcile'): void;
}

/** A failure as a coded error. */
function coded(err: unknown, what: string): NetloopError {
  if (err instanceof NetloopError) return err;
  return new NetloopError(ErrorCode.STORE_UNAVAILABLE, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** See the module documentation. */
export class SessionFeed {
  readonly #store: SharedSessionStore;
  readonly #host: FeedHost;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;
  /** A reconciliation was asked for while one ran: run again after it. */
  #again = false;
  readonly #pending = new Set<Promise<unknown>>();
  /**
   * Handles waiting for a tombstone ({@link SessionFeed.endOfLost}), one wait
   * per handle however many writes found it gone: it ends at its deadline,
   * when the handle's change ends it, or at stop.
   */
  readonly #waiting = new Map<SessionHandle, { readonly done: Promise<void>; readonly wake: () => void }>();
  #started = false;

  constructor(store: SharedSessionStore, host: FeedHost, reconcileIntervalMs: number) {
    this.#store = store;
    this.#host = host;
    this.#intervalMs = reconcileIntervalMs;
  }

  /** Subscribes to the store's changes and arms the reconciliation timer. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#store.on('change', this.#onChange);
    this.#store.on('feed', this.#onFeed);
    this.#arm();
  }

  /** Unsubscribes, stops the timer, and waits for what is in flight. */
  async stop(): Promise<void> {
    if (this.#started) {
      this.#store.off('change', this.#onChange);
      this.#store.off('feed', this.#onFeed);
    }
    this.#started = false;
    for (const wait of [...this.#waiting.values()]) wait.wake();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    if (this.#running !== null) await this.#running.catch(() => undefined);
  }

  /**
   * Publishes the end of a session decided here (the store writes its
   * tombstone first). A failure is reported (`'feed'`), never thrown: the
   * session is already over here, and the other processes reconcile.
   */
  async publish(end: { id: string; connectionId: string | null; userId: string | null; reason: SessionEndReason; detail: string; by?: string }): Promise<void> {
    const change: SessionChange = {
      kind: 'ended',
      id: end.id,
      connectionId: end.connectionId,
      userId: end.userId,
      reason: end.reason,
      detail: end.detail,
      origin: this.#host.processId,
      at: this.#host.clock.wallNow(),
    };
    if (end.by !== undefined) change.by = end.by;
    try {
      await this.#store.publish(change);
    } catch (err) {
      if (!this.#host.isClosed()) this.#host.fail(coded(err, 'publishing a session change failed'), 'feed');
    }
  }

  /**
   * Checks every session bound to a connection of this process against the
   * store, in batches of {@link RECONCILE_BATCH}; ends those that are gone or
   * bound elsewhere (with the reason of their tombstone). Resolves how many
   * ended. Concurrent calls share a run; one asked for during a run runs
   * again after it.
   */
  reconcile(): Promise<number> {
    if (this.#running !== null) {
      this.#again = true;
      return this.#running;
    }
    const run = this.#reconcile().finally(() => {
      this.#running = null;
      if (this.#again && !this.#host.isClosed()) {
        this.#again = false;
        this.#track(this.reconcile());
      }
    });
    this.#running = run;
    return run;
  }

  /**
   * Why a session that is gone (`rec` null) or bound elsewhere ended: its
   * tombstone's reason, else `'expired'` (gone) or `'replaced'` (bound
   * elsewhere: resumed on another connection).
   */
  async endOf(id: string, rec: SessionRecord | null): Promise<RemoteEnd> {
    const t = await this.#store.tombstone(id);
    if (t !== null) return t.by === undefined ? { reason: t.reason, detail: t.detail ?? t.reason } : { reason: t.reason, detail: t.detail ?? t.reason, by: t.by };
    return rec === null ? { reason: 'expired', detail: 'store' } : { reason: 'replaced', detail: 'resumed-elsewhere', by: id };
  }

  /**
   * Why a session that a write of this process found gone ended: as
   * {@link SessionFeed.endOf}, but when there is no tombstone yet it waits
   * up to {@link TOMBSTONE_WAIT_MS} for the ending process's change (which
   * ends the handle through the feed with its own reason) and reads the
   * tombstone once more before settling for `'expired'`.
   */
  async endOfLost(h: SessionHandle): Promise<RemoteEnd> {
    const first = await this.endOf(h.id, null);
    if (first.reason !== 'expired' || h._mode === ENDED || this.#host.isClosed()) return first;
    let wait = this.#waiting.get(h);
    if (wait === undefined) {
      let wake: () => void = () => undefined;
      const done = new Promise<void>((resolve) => {
        const timer = setTimeout(() => wake(), TOMBSTONE_WAIT_MS);
        timer.unref();
        wake = () => {
          clearTimeout(timer);
          this.#waiting.delete(h);
          resolve();
        };
      });
      wait = { done, wake };
      this.#waiting.set(h, wait);
    }
    await wait.done;
    if (h._mode === ENDED || this.#host.isClosed()) return first;
    return this.endOf(h.id, null);
  }

  async #reconcile(): Promise<number> {
    let ended = 0;
    const handles = this.#host.bound();
    for (let i = 0; i < handles.length && !this.#host.isClosed(); i += RECONCILE_BATCH) {
      const batch = handles.slice(i, i + RECONCILE_BATCH);
      const recs = await Promise.all(batch.map((h) => this.#store.get(h.id)));
      const checks: Promise<void>[] = [];
      for (let j = 0; j < batch.length; j++) {
        const h = batch[j]!;
        const rec = recs[j]!;
        if (h._mode !== ATTACHED || (rec !== null && rec.connectionId === h.connectionId)) continue;
        checks.push(
          this.endOf(h.id, rec).then((end) => {
            if (h._mode === ATTACHED && !this.#host.isClosed()) {
              this.#host.endRemote(h, end);
              ended++;
            }
          }),
        );
      }
      await Promise.all(checks);
    }
    return ended;
  }

  /** Acts on another process's change once the store confirms it (see the module documentation). */
  async #act(change: SessionChange): Promise<void> {
    const h = this.#host.handle(change.id);
    if (h === undefined || h._mode === ENDED) return;
    const rec = await this.#store.get(change.id);
    if (h._mode === ENDED || this.#host.isClosed()) return;
    // Still bound here (or, for a handle without a connection, still without one): a late or stale change.
    if (rec !== null && rec.connectionId === h.connectionId) return;
    const end: RemoteEnd = { reason: change.reason, detail: change.detail ?? change.reason };
    if (change.by !== undefined) end.by = change.by;
    this.#host.endRemote(h, end);
    this.#waiting.get(h)?.wake();
  }

  readonly #onChange = (change: SessionChange): void => {
    if (change.origin === this.#host.processId || this.#host.isClosed()) return;
    this.#track(
      this.#act(change).catch((err: unknown) => {
        if (!this.#host.isClosed()) this.#host.fail(coded(err, 'acting on a session change failed'), 'feed');
      }),
    );
  };

  readonly #onFeed = (state: 'up' | 'down'): void => {
    if (state !== 'up' || this.#host.isClosed()) return;
    // Changes published while the subscription was down are lost: check what is bound here.
    this.#track(this.reconcile());
  };

  #track(p: Promise<unknown>): void {
    const tracked: Promise<unknown> = p.then(
      () => this.#pending.delete(tracked),
      (err: unknown) => {
        this.#pending.delete(tracked);
        if (!this.#host.isClosed()) this.#host.fail(coded(err, 'reconciling sessions with the store failed'), 'reconcile');
      },
    );
    this.#pending.add(tracked);
  }

  #arm(): void {
    if (this.#intervalMs === 0 || !this.#started) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#started || this.#host.isClosed()) return;
      this.#track(this.reconcile());
      this.#arm();
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
