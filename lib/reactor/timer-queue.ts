/**
 * The loop's one shared timer structure: a binary min-heap of entries keyed
 * by monotonic deadline (ties broken by insertion order), armed with ONE Node
 * timer for the earliest deadline. Per-connection deadlines (idle, soft output
 * limit, shutdown linger, connect timeout) are entries here, never Node timers
 * of their own.
 *
 * ```
 *                 heap[0]  (earliest deadline; the Node timer is armed for it)
 *                /       \
 *           heap[1]     heap[2]        entry = { deadline, seq, index, interval, fn, arg }
 *           /    \       /    \        index = its slot in the heap, -1 when not queued
 *        [3]    [4]    [5]    [6]
 * ```
 *
 * Deadlines come from an injected {@link Clock}'s monotonic `now()`, so a
 * wall-clock jump changes nothing (muduo #168). An entry is popped from the
 * heap just before its callback runs, and a cancelled entry is removed from the
 * heap at once, so any callback may cancel any other timer, even one due in the
 * same pass (muduo #668). A pass runs only entries that were queued before it
 * started, so a callback that schedules a zero-delay timer cannot loop forever.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';

/** Longest delay Node's setTimeout accepts; longer waits are re-armed. */
const MAX_NODE_DELAY = 0x7fffffff;

/**
 * One scheduled callback. Internal callers (clients, connectors) keep the
 * entry itself and pass a shared `fn` with an `arg`, so a connection's deadline
 * costs one small object and no closure.
 */
export interface TimerEntry {
  /** Monotonic deadline in ms. */
  deadline: number;
  /** Insertion order, to keep equal deadlines FIFO. */
  seq: number;
  /** Position in the heap, or -1 when not queued. */
  index: number;
  /** Repeat period in ms, or 0 for a one-shot entry. */
  interval: number;
  /** Called with `arg` when the entry is due. */
  fn: (arg: any) => void;
  /** The argument of `fn`. */
  arg: unknown;
}

/** The Node timer functions the queue arms; a seam for tests. */
export interface TimerDriver {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Node's own `setTimeout` / `clearTimeout`. */
export const nodeTimerDriver: TimerDriver = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A binary heap of deadlines driven by one Node timer. See the module comment. */
export class TimerQueue {
  readonly #clock: Clock;
  readonly #driver: TimerDriver;
  readonly #heap: TimerEntry[] = [];
  #seq = 0;
  #handle: unknown = null;
  #armedFor = Number.POSITIVE_INFINITY;
  #expiring = false;
  readonly #onTimer = (): void => {
    this.#handle = null;
    this.#armedFor = Number.POSITIVE_INFINITY;
    this.expire();
  };

  constructor(clock: Clock, driver: TimerDriver = nodeTimerDriver) {
    this.#clock = clock;
    this.#driver = driver;
  }

  /** Entries queued. */
  get size(): number {
    return this.#heap.length;
  }

  /** The earliest deadline queued, or `Infinity`. */
  get nextDeadline(): number {
    return this.#heap.length === 0 ? Number.POSITIVE_INFINITY : this.#heap[0]!.deadline;
  }

  /** Creates and queues an entry due at `deadline` (monotonic ms). */
  schedule(deadline: number, fn: (arg: any) => void, arg?: unknown, interval = 0): TimerEntry {
    const entry: TimerEntry = { deadline, seq: 0, index: -1, interval, fn, arg };
    this.insert(entry);
    return entry;
  }

  /** Queues `entry` (again) at its current `deadline`. Does nothing if it is queued already. */
  insert(entry: TimerEntry): void {
    if (entry.index !== -1) return;
    entry.seq = this.#seq++;
    entry.index = this.#heap.length;
    this.#heap.push(entry);
    this.#up(entry.index);
    if (entry.deadline < this.#armedFor && !this.#expiring) this.#arm();
  }

  /** Moves a queued entry to a new deadline, or queues it there when it is not queued. */
  reschedule(entry: TimerEntry, deadline: number): void {
    if (entry.index === -1) {
      entry.deadline = deadline;
      this.insert(entry);
      return;
    }
    const earlier = deadline < entry.deadline;
    entry.deadline = deadline;
    entry.seq = this.#seq++;
    if (earlier) this.#up(entry.index);
    else this.#down(entry.index);
    if (deadline < this.#armedFor && !this.#expiring) this.#arm();
  }

  /** Removes `entry`; true when it was queued. Safe from inside any callback. */
  remove(entry: TimerEntry): boolean {
    const i = entry.index;
    if (i === -1) return false;
    const heap = this.#heap;
    const last = heap.pop()!;
    entry.index = -1;
    if (last !== entry) {
      heap[i] = last;
      last.index = i;
      this.#down(i);
      this.#up(last.index);
    }
    if (heap.length === 0) this.#disarm();
    return true;
  }

  /**
   * Runs every entry due at the clock's `now()` that was queued before this
   * call, earliest first; returns how many ran. A repeating entry is queued
   * again one interval after its deadline (or one interval from now when it
   * fell further behind: missed periods are skipped, never replayed).
   */
  expire(): number {
    const now = this.#clock.now();
    const limit = this.#seq;
    const heap = this.#heap;
    const nested = this.#expiring;
    this.#expiring = true;
    let ran = 0;
    try {
      while (heap.length > 0) {
        const top = heap[0]!;
        if (top.deadline > now || top.seq >= limit) break;
        this.remove(top);
        if (top.interval > 0) {
          top.deadline += top.interval;
          if (top.deadline <= now) top.deadline = now + top.interval;
          this.insert(top);
        }
        ran++;
        top.fn(top.arg);
      }
    } finally {
      // Re-armed once at the end of the pass, even when a callback threw, so
      // the entries left keep their Node timer.
      this.#expiring = nested;
      if (!nested) this.#arm();
    }
    return ran;
  }

  /** Removes every entry and releases the Node timer. */
  clear(): void {
    for (const e of this.#heap) e.index = -1;
    this.#heap.length = 0;
    this.#disarm();
  }

  /** Arms the Node timer for the earliest deadline (or releases it when the heap is empty). */
  #arm(): void {
    this.#disarm();
    if (this.#heap.length === 0) return;
    const deadline = this.#heap[0]!.deadline;
    const delay = Math.min(MAX_NODE_DELAY, Math.max(1, Math.ceil(deadline - this.#clock.now())));
    this.#armedFor = deadline;
    this.#handle = this.#driver.set(this.#onTimer, delay);
  }

  #disarm(): void {
    if (this.#handle !== null) {
      this.#driver.clear(this.#handle);
      this.#handle = null;
    }
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #less(a: TimerEntry, b: TimerEntry): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!this.#less(entry, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#less(heap[r]!, heap[l]!) ? r : l;
      const child = heap[c]!;
      if (!this.#less(child, entry)) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = entry;
    entry.index = i;
  }
}
