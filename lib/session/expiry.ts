/**
 * Expiry of the registry's local sessions: one hashed timing wheel on the
 * monotonic clock, the audit that advances it, and the audit timer.
 *
 * ```
 *   wheel  TimingWheel<SessionHandle>     every local session, filed by deadline
 *   audit(): up to AUDIT_ROUNDS rounds of
 *     refresh the wall base ─▶ wheel.advanceInto(now, backlog)
 *     backlog[pos..] ─▶ slices of at most auditBudgetMs (clock read every SLICE_CHECK):
 *        each due handle ─▶ host.expire(h, 'ttl' | 'resume-window')
 *        (a deadline moved later meanwhile: filed again instead)
 *     a turn of the event loop (setImmediate) between slices
 *   then host.afterAudit() (write-behind flush, deferred cleanup)
 * ```
 *
 * An audit costs what expires (plus lazy re-filing), never a scan.
 * Concurrent calls share one run. A due session that waits in the backlog is
 * refused by every lookup and heartbeat meanwhile (they check the deadline),
 * so it is never seen alive.
 *
 * @module
 */

import { DurationHistogram } from '../core/histogram.js';
import type { SessionHandle } from './handle.js';
import { DETACHED, ENDED, NOT_FILED } from './handle.js';
import { TimingWheel } from './timing-wheel.js';

/** Due sessions expired between two reads of the time in an audit slice. */
const SLICE_CHECK = 64;
/** Rounds of advance-and-expire one audit run makes before it leaves the rest to the next call. */
const AUDIT_ROUNDS = 4;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What expiry asks of the registry. */
export interface ExpiryHost {
  /** True once the registry is closed: audits stop. */
  isClosed(): boolean;
  /** Monotonic now relative to the registry's epoch, after refreshing its wall base (which follows wall-clock steps). */
  refreshWallBase(): number;
  /** Monotonic now relative to the registry's epoch. */
  rel(): number;
  /** Ends a due session; returns the store write still pending, or null. */
  expire(h: SessionHandle, reason: 'ttl' | 'resume-window'): Promise<unknown> | null;
  /** After an audit's expiries: the storage's own work (a write-behind flush), or null. */
  afterAudit(): Promise<void> | null;
  /** An audit of the timer failed (a store that is down); nobody awaits it. */
  auditFailed(err: unknown): void;
}

/** Settings of {@link Expiry}. */
export interface ExpirySettings {
  readonly granularityMs: number;
  readonly wheelSlots: number;
  readonly auditBudgetMs: number;
}

/** See the module documentation. */
export class Expiry {
  readonly #host: ExpiryHost;
  readonly #s: ExpirySettings;
  /** Every local session, filed by deadline. */
  readonly wheel: TimingWheel<SessionHandle>;
  /** Due sessions not yet expired: `#backlog[#backlogPos..]` (carried over between audit slices). */
  #backlog: SessionHandle[] = [];
  #backlogPos = 0;
  #auditing: Promise<number> | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** How long each audit run took, start to settle (read by the registry's stats()). */
  readonly auditTimes = new DurationHistogram();

  constructor(settings: ExpirySettings, host: ExpiryHost) {
    this.#s = settings;
    this.#host = host;
    this.wheel = new TimingWheel<SessionHandle>({ tickMs: settings.granularityMs, slots: settings.wheelSlots, start: 0, indexByKey: false });
  }

  /** True while an audit runs. */
  get auditing(): boolean {
    return this.#auditing !== null;
  }

  /** The audit in progress, or null. */
  get running(): Promise<number> | null {
    return this.#auditing;
  }

  /** Expires what is due (see the module documentation); resolves how many expired. */
  audit(): Promise<number> {
    if (this.#host.isClosed()) return Promise.resolve(0);
    if (this.#auditing !== null) return this.#auditing;
    const started = performance.now();
    const run = this.#runAudit();
    this.#auditing = run;
    // Timed from start to settle, failed runs included; both handlers given, so this branch never rejects.
    const observe = (): void => this.auditTimes.observe((performance.now() - started) / 1000);
    run.then(observe, observe);
    return run;
  }

  /**
   * Expires now, in one go, every local session that is due (the memory
   * store asks before it counts, so that counts stay exact).
   */
  settle(): void {
    if (this.#host.isClosed()) return;
    this.wheel.advanceInto(this.#host.rel(), this.#backlog);
    if (this.#backlogPos < this.#backlog.length) this.#expireDue(Number.POSITIVE_INFINITY, null);
  }

  /** Starts the audit timer: an audit every `granularityMs`, on an unref'd timer. */
  arm(): void {
    const tick = (): void => {
      this.#timer = null;
      if (this.#host.isClosed()) return;
      this.audit()
        .catch((err: unknown) => {
          // Nobody awaits this audit: its failure (a store that is down) goes to the 'error' path.
          if (!this.#host.isClosed()) this.#host.auditFailed(err);
        })
        .finally(() => {
          if (!this.#host.isClosed() && this.#timer === null) this.arm();
        });
    };
    this.#timer = setTimeout(tick, this.#s.granularityMs);
    this.#timer.unref();
  }

  /** Stops the timer and forgets every session (the registry is closing). */
  clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.wheel.clear();
    this.#backlog = [];
    this.#backlogPos = 0;
  }

  /** Stops the audit timer. */
  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #runAudit(): Promise<number> {
    // The run clears #auditing itself as it ends (its own `finally` rather
    // than a chained `.finally()`: fewer promise hops per tick).
    const host = this.#host;
    try {
      await null; // never run listeners' work inside the caller's frame
      const budget = this.#s.auditBudgetMs;
      let expired = 0;
      for (let round = 0; round < AUDIT_ROUNDS && !host.isClosed(); round++) {
        // The slice that advances the wheel counts the advance too (collecting
        // thousands of cold handles is itself a few ms at scale).
        let until = performance.now() + budget;
        const now = host.refreshWallBase();
        this.wheel.advanceInto(now, this.#backlog);
        if (this.#backlogPos >= this.#backlog.length) break;
        while (this.#backlogPos < this.#backlog.length && !host.isClosed()) {
          const pending: Promise<unknown>[] = [];
          expired += this.#expireDue(until, pending);
          if (pending.length > 0) await Promise.all(pending);
          if (this.#backlogPos < this.#backlog.length) await yieldToLoop();
          until = performance.now() + budget;
        }
      }
      const after = host.afterAudit();
      if (after !== null) await after;
      return expired;
    } finally {
      this.#auditing = null;
    }
  }

  /**
   * Expires the backlog of due sessions until it is empty or the
   * performance clock passes `until`; store writes still in flight are
   * pushed to `pending` (when given). Returns how many expired.
   */
  #expireDue(until: number, pending: Promise<unknown>[] | null): number {
    const due = this.#backlog;
    const now = this.#host.rel();
    let i = this.#backlogPos;
    let expired = 0;
    while (i < due.length) {
      const h = due[i]!;
      i++;
      if (h._mode === ENDED) continue;
      if (h.deadline > now) {
        // Its deadline moved later after it was found due (a store write): file it again.
        if (h._slot === NOT_FILED) this.wheel.scheduleEntry(h);
        continue;
      }
      expired++;
      const p = this.#host.expire(h, h._mode === DETACHED ? 'resume-window' : 'ttl');
      if (p !== null && pending !== null) pending.push(p);
      if (i % SLICE_CHECK === 0 && performance.now() >= until) break;
    }
    if (i >= due.length) {
      due.length = 0;
      this.#backlogPos = 0;
    } else {
      this.#backlogPos = i;
    }
    return expired;
  }
}
