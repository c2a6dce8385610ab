/**
 * The reactor: one {@link EventLoop} holds the servers and connectors built
 * on it, every live client, the queue of deferred functions and the one
 * shared timer queue. Node's own event loop does the polling; this class
 * adds the discipline of muduo's `EventLoop` on top of it. The loop builds
 * nothing itself: `new Server(loop, options)` and `new Connector(loop,
 * options)` register with it, and it knows them, and their clients, only
 * through the small interfaces of `loop-member.ts`.
 *
 * ```
 *   Node I/O callbacks (data, drain, close, accept)
 *        │  appendToOutputBuffer / queueInLoop / updateClient
 *        ▼
 *   ┌────────────────────────── one turn (setImmediate) ───────────────────────┐
 *   │ functors: [f1, f2, ...]    run FIFO; those queued meanwhile wait a turn   │
 *   │ dirty:    [c7, c3, ...]    each flushed once: one socket write per turn   │
 *   └──────────────────────────────────────────────────────────────────────────┘
 *   timers: TimerQueue (binary heap on the monotonic clock, ONE Node timer)
 *   clients: Map<id, LoopClient>  services: Set<LoopService>  pool: a few empty OutputBuffers
 * ```
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkNumber } from '../core/validate.js';
import { OutputBuffer } from './output-buffer.js';
import { TimerQueue } from './timer-queue.js';
import type { TimerDriver, TimerEntry } from './timer-queue.js';
import { ClientFlag } from './loop-member.js';
import type { LoopClient, LoopService } from './loop-member.js';
import type { CloseReason } from './close-reason.js';
import { broadcastTo } from './broadcast.js';
import type { BroadcastMessage, BroadcastOptions } from './broadcast.js';
import { DEFAULT_FLUSH_TIMEOUT_MS, checkNotice, checkSettle, closeTimeoutError, settleAll } from './graceful-close.js';
import type { CloseNotice, CloseOptions } from './graceful-close.js';
import type { Flushable } from '../core/flush-on-signals.js';
import { copyCounters, createCounters } from './diagnostics.js';
import type { LoopCounters } from './diagnostics.js';

export { DEFAULT_FLUSH_TIMEOUT_MS, closeTimeoutError } from './graceful-close.js';
export type { CloseOptions } from './graceful-close.js';

/** Options of an {@link EventLoop}. */
export interface EventLoopOptions {
  /** The time source of every timer and deadline; default {@link systemClock} (monotonic `performance.now()`). */
  clock?: Clock;
  /** The Node timer functions the timer queue arms; default `setTimeout` / `clearTimeout`. A seam for tests. */
  timerDriver?: TimerDriver;
  /**
   * The longest one turn spends handing queued output to sockets, in ms of
   * the loop's clock (default 10; at least 1). A broadcast to thousands of
   * clients queues its bytes at once (by reference), but handing them to the
   * kernel is a copy per client; past this budget the clients left keep
   * their place and are flushed first in the next turn, after timers and I/O
   * had their say. Output is delayed, never dropped or reordered. Checked
   * every 16 clients, so a turn may run over by up to 16 flushes.
   */
  flushSliceMs?: number;
}

/** Default of {@link EventLoopOptions.flushSliceMs}. */
export const DEFAULT_FLUSH_SLICE_MS = 10;

/** A snapshot of what a loop holds. */
export interface LoopStats {
  /** Live clients, all servers and connectors. */
  clients: number;
  /** Entries in the timer queue (user timers and per-client deadlines). */
  timers: number;
  /** Servers listening or closing. */
  servers: number;
  /** Connectors not stopped. */
  connectors: number;
  /** Functions queued by {@link EventLoop.queueInLoop} not yet run. */
  pendingFunctors: number;
  /** Bytes queued for output across every client (own buffers plus socket buffers). */
  queuedBytes: number;
  /** Accepted, connected, dropped and TLS-failed connections, and closes by reason, since the loop was created. */
  counters: LoopCounters;
}

/** The handle of a timer, for {@link EventLoop.cancel}. */
export type TimerId = number;

/** Longest accepted delay or interval: about 68 years, far above any real use, still exact in a double. */
const MAX_DELAY_MS = 2 ** 41;
/** Empty output buffers kept for reuse. */
const POOL_SIZE = 64;
/** Clients flushed between two reads of the clock in a turn (see {@link EventLoopOptions.flushSliceMs}). */
const FLUSH_CHECK = 16;

/** A user timer: a queue entry that knows its id and callback. */
interface UserTimer extends TimerEntry {
  id: number;
  cb: () => void;
  loop: EventLoop;
}

function fireUserTimer(t: UserTimer): void {
  if (t.interval === 0) t.loop._timerIds.delete(t.id);
  t.cb();
}

/**
 * The reactor. Create one per process (or per independent service), then
 * build servers and connectors on it.
 *
 * ```ts
 * const loop = new EventLoop();
 * const server = await new Server(loop, { port: 7000 }).listen();
 * server.on('data', (client, chunk) => client.write(chunk));   // echo
 * ```
 */
export class EventLoop {
  /** The loop's time source. */
  readonly clock: Clock;
  /** @internal The one shared timer queue. */
  readonly _timers: TimerQueue;
  /** @internal User timers by id. */
  readonly _timerIds = new Map<number, UserTimer>();
  /** @internal Counters kept by the reactor (see `diagnostics.ts`). */
  readonly _counters: LoopCounters = createCounters();
  readonly #clients = new Map<number, LoopClient>();
  readonly #services = new Set<LoopService>();
  #functors: Array<() => void> = [];
  #spareFunctors: Array<() => void> = [];
  #dirty: LoopClient[] = [];
  #spareDirty: LoopClient[] = [];
  #scheduled = false;
  #nextTimerId = 1;
  readonly #pool: OutputBuffer[] = [];
  #closing: Promise<void> | null = null;
  #closed = false;
  #emptyWaiters: Array<() => void> = [];
  /**
   * @internal How many turns have started. Work budgeted per turn (the
   * framing layer's `maxMessagesPerTurn`) is counted against this value and
   * starts afresh when it changes. Such work calls
   * {@link EventLoop._requestTurn} once it is under way, so the count ends with
   * the Node event loop's turn even when nothing else schedules one (a reply
   * flushed from its own read callback schedules none).
   */
  _turnSeq = 0;
  readonly #runTurn = (): void => this.#turn();
  readonly #flushSliceMs: number;

  constructor(options: EventLoopOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this._timers = new TimerQueue(this.clock, options.timerDriver);
    this.#flushSliceMs = checkNumber('flushSliceMs', options.flushSliceMs ?? DEFAULT_FLUSH_SLICE_MS, 1, 60_000);
  }

  /** Monotonic milliseconds from the loop's clock. */
  now(): number {
    return this.clock.now();
  }

  /** Live clients, all servers and connectors. */
  get clientCount(): number {
    return this.#clients.size;
  }

  /** True once {@link EventLoop.close} was called. */
  get closing(): boolean {
    return this.#closing !== null;
  }

  /**
   * The live client with this id, if any (a `Client`; a framed server's are
   * `FramedClient`s). Part of the low-level batching API, with
   * {@link EventLoop.updateClient} and {@link EventLoop.removeClient}.
   */
  getClient(id: number): LoopClient | undefined {
    return this.#clients.get(id);
  }

  /**
   * Applies the client's writing interest: when writing is enabled and the
   * client has queued output, it is flushed later in this turn, once, together
   * with everything else appended to it meanwhile.
   */
  updateClient(client: LoopClient): void {
    const f = client._flags;
    const mask = ClientFlag.WRITING | ClientFlag.DIRTY | ClientFlag.AWAIT_DRAIN | ClientFlag.CLOSED | ClientFlag.DESTROYED;
    if ((f & mask) !== ClientFlag.WRITING || client._out === null) return;
    client._flags = f | ClientFlag.DIRTY;
    // Inside the client's own read callback, the callback's end flushes it (see the client's _onData).
    if ((f & ClientFlag.IN_READ) !== 0) return;
    this.#dirty.push(client);
    this.#schedule();
  }

  /**
   * Closes the client gracefully, as the notice-then-close pattern needs (a
   * notice queued, then `setWriteCompleteCallback(() => loop.removeClient(id))`):
   * what is queued is sent, then FIN, then input is read and discarded
   * (nothing more reaches the application) until the peer closes, so every
   * byte queued reaches the peer; the close is then reported with `reason`
   * (default `'removed'`). Past `options.timeoutMs` (default: the owner's
   * `shutdownTimeoutMs`) the socket is destroyed, the close keeping `reason`
   * with a `NETLOOP_CLOSE_TIMEOUT` error. From the call on, appends return
   * false. A client already closing keeps its own close. For the immediate
   * destroy (queued output dropped), use `client.destroy(reason)`; for a
   * graceful close with the reason `'shutdown'` and the owner's deadline,
   * `client.end()`.
   *
   * @returns false when no live client has this id.
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad `timeoutMs`.
   */
  removeClient(id: number, reason: CloseReason = 'removed', options: { timeoutMs?: number } = {}): boolean {
    const timeoutMs = options.timeoutMs === undefined ? undefined : checkNumber('timeoutMs', options.timeoutMs, 0, MAX_DELAY_MS);
    const client = this.#clients.get(id);
    if (client === undefined || client.closed) return false;
    client._beginGracefulClose(reason, timeoutMs ?? client._shutdownTimeoutMs);
    return true;
  }

  /**
   * The live clients of every server and connector, including those closing
   * (until their close is reported); `client.writable` tells them apart.
   */
  clients(): IterableIterator<LoopClient> {
    return this.#clients.values();
  }

  /**
   * Sends `message` to every open client of every server and connector of
   * the loop (closing clients are skipped), except `options.except`, and only
   * those passing `options.filter`: raw bytes (a string is UTF-8) to all, or
   * `{ type, payload }` to the clients whose owner has a codec (a framed
   * server or connector), encoded once per owner. See `Server.broadcast`.
   *
   * @returns how many clients queued it.
   */
  broadcast(message: BroadcastMessage, options: BroadcastOptions<LoopClient> = {}): number {
    return broadcastTo(() => this.#clients.values(), message, options, null);
  }

  /**
   * Runs `fn` later in this turn of the loop, after the current callback
   * returns; never re-entrantly, in FIFO order. Functions queued while the
   * queue runs wait for the next turn.
   */
  queueInLoop(fn: () => void): void {
    this.#functors.push(fn);
    this.#schedule();
  }

  /** Runs `cb` once, `delayMs` (monotonic) from now. */
  runAfter(delayMs: number, cb: () => void): TimerId {
    checkNumber('delayMs', delayMs, 0, MAX_DELAY_MS);
    return this.#addTimer(delayMs, 0, cb);
  }

  /** Runs `cb` every `intervalMs` (monotonic); periods missed while the process was busy are skipped, not replayed. */
  runEvery(intervalMs: number, cb: () => void): TimerId {
    checkNumber('intervalMs', intervalMs, 1, MAX_DELAY_MS);
    return this.#addTimer(intervalMs, intervalMs, cb);
  }

  /** Cancels a timer; true when it was pending. Safe from inside any timer callback, including its own; twice is a no-op. */
  cancel(id: TimerId): boolean {
    const t = this._timerIds.get(id);
    if (t === undefined) return false;
    this._timerIds.delete(id);
    this._timers.remove(t);
    return true;
  }

  /**
   * Runs every timer whose deadline has passed on the loop's clock; returns
   * how many ran. The loop does this by itself on its Node timer; call it after
   * moving a `ManualClock` (netloop/testing) to run timers in virtual time.
   */
  runDueTimers(): number {
    return this._timers.expire();
  }

  /**
   * Closes everything: connectors stop reconnecting, servers stop accepting,
   * every client flushes its queued output and closes (`'server-close'`);
   * those not done after `flushTimeoutMs` are destroyed (with a
   * `NETLOOP_CLOSE_TIMEOUT` error). Resolves once, after every client closed.
   */
  close(options: CloseOptions<LoopClient> = {}): Promise<void> {
    const ms = checkNumber('flushTimeoutMs', options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS, 0, MAX_DELAY_MS);
    return (this.#closing ??= this.#close(ms, checkNotice(options.notice), checkSettle(options.settle)));
  }

  /** A snapshot of what the loop holds. */
  stats(): LoopStats {
    let queuedBytes = 0;
    for (const c of this.#clients.values()) queuedBytes += c.queuedBytes;
    let servers = 0;
    for (const s of this.#services) if (s._serviceKind === 'server') servers++;
    return {
      clients: this.#clients.size,
      timers: this._timers.size,
      servers,
      connectors: this.#services.size - servers,
      pendingFunctors: this.#functors.length,
      queuedBytes,
      counters: copyCounters(this._counters),
    };
  }

  // ─── internals ──────────────────────────────────────────────────────────────

  /** @internal A client was created (it registers itself). */
  _addClient(client: LoopClient): void {
    this.#clients.set(client.id, client);
  }

  /** @internal A client's close was reported. */
  _removeClient(client: LoopClient): void {
    this.#clients.delete(client.id);
    if (this.#clients.size === 0 && this.#emptyWaiters.length > 0) {
      const waiters = this.#emptyWaiters;
      this.#emptyWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * @internal A server starts listening or a connector starts connecting:
   * the loop closes it with everything else. Throws `NETLOOP_LOOP_CLOSED`
   * once the loop is closing.
   */
  _addService(service: LoopService): void {
    this.#assertOpen(service._serviceKind === 'server' ? 'listen on' : 'connect from');
    this.#services.add(service);
  }

  /** @internal A service is closed (or gave up, or failed to listen). */
  _removeService(service: LoopService): void {
    this.#services.delete(service);
  }

  /**
   * @internal Makes sure a turn is scheduled (one `setImmediate` per turn at
   * most), so work budgeted per turn starts afresh with the next turn of the
   * Node event loop, not whenever some other event happens to schedule one.
   */
  _requestTurn(): void {
    this.#schedule();
  }

  /** @internal Flushes a dirty client now, ahead of the turn (its entry in the dirty list is skipped). */
  _flushNow(client: LoopClient): void {
    client._flags &= ~ClientFlag.DIRTY;
    client._flush();
  }

  /** @internal An empty output buffer, from the pool when one is there. */
  _acquireOutput(): OutputBuffer {
    return this.#pool.pop() ?? new OutputBuffer();
  }

  /** @internal Gives an output buffer back (emptied) for reuse. */
  _releaseOutput(out: OutputBuffer): void {
    out.clear();
    if (this.#pool.length < POOL_SIZE) this.#pool.push(out);
  }

  #addTimer(delayMs: number, interval: number, cb: () => void): TimerId {
    if (this.#closed) throw new NetloopError(ErrorCode.LOOP_CLOSED, 'cannot start a timer: the loop is closed');
    const id = this.#nextTimerId++;
    const t: UserTimer = { deadline: this.now() + delayMs, seq: 0, index: -1, interval, fn: fireUserTimer, arg: null, id, cb, loop: this };
    t.arg = t;
    this._timerIds.set(id, t);
    this._timers.insert(t);
    return id;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#runTurn);
  }

  #turn(): void {
    this.#scheduled = false;
    this._turnSeq++;
    const fns = this.#functors;
    if (fns.length > 0) {
      this.#functors = this.#spareFunctors;
      let i = 0;
      try {
        while (i < fns.length) {
          const fn = fns[i]!;
          i++;
          fn();
        }
      } catch (err) {
        // Those not run yet keep their place ahead of any queued meanwhile.
        this.#functors = fns.slice(i).concat(this.#functors);
        fns.length = 0;
        this.#spareFunctors = fns;
        this.#schedule();
        throw err;
      }
      fns.length = 0;
      this.#spareFunctors = fns;
    }
    const dirty = this.#dirty;
    if (dirty.length > 0) {
      this.#dirty = this.#spareDirty;
      const until = dirty.length > FLUSH_CHECK ? this.clock.now() + this.#flushSliceMs : Number.POSITIVE_INFINITY;
      let i = 0;
      while (i < dirty.length) {
        const c = dirty[i]!;
        i++;
        if ((c._flags & ClientFlag.DIRTY) === 0) continue;
        c._flags &= ~ClientFlag.DIRTY;
        c._flush();
        if (i % FLUSH_CHECK === 0 && i < dirty.length && this.clock.now() >= until) break;
      }
      if (i < dirty.length) {
        // Out of budget: the rest keep their DIRTY flag and go first next turn,
        // ahead of clients made dirty meanwhile (so no client is starved).
        const rest = dirty.slice(i);
        for (const c of this.#dirty) rest.push(c);
        this.#dirty = rest;
        this.#schedule();
      }
      dirty.length = 0;
      this.#spareDirty = dirty;
    }
  }

  #assertOpen(what: string): void {
    if (this.#closing !== null) throw new NetloopError(ErrorCode.LOOP_CLOSED, `cannot ${what} a closed loop`);
  }

  async #close(flushTimeoutMs: number, notice: CloseNotice<LoopClient> | undefined, settle: readonly Flushable[]): Promise<void> {
    const tasks: Array<Promise<void>> = [];
    // Connectors first (no reconnection starts while servers close), then servers.
    const services = [...this.#services];
    for (const s of services) if (s._serviceKind === 'connector') tasks.push(s.close({ flushTimeoutMs }));
    for (const s of services) if (s._serviceKind === 'server') tasks.push(s.close({ flushTimeoutMs, notice }));
    for (const c of [...this.#clients.values()]) c._beginGracefulClose('server-close', flushTimeoutMs);
    if (this.#clients.size > 0) {
      await new Promise<void>((resolve) => {
        const deadline = this._timers.schedule(this.now() + flushTimeoutMs, () => {
          const err = closeTimeoutError(flushTimeoutMs);
          for (const c of [...this.#clients.values()]) c.destroy('server-close', err);
        });
        this.#emptyWaiters.push(() => {
          this._timers.remove(deadline);
          resolve();
        });
      });
    }
    await Promise.all(tasks);
    this.#closed = true;
    this._timerIds.clear();
    this._timers.clear();
    await settleAll(settle, flushTimeoutMs);
  }
}
