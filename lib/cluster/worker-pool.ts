/**
 * A `node:cluster` primary's pool of worker processes behind one port, with
 * rolling restarts: each worker in turn is replaced by a fresh one, which
 * must report ready before the old one is asked to drain, so the port is
 * always served and a bad release stops at its first worker.
 *
 * ```
 *   slots:   [ 0: worker g0 ]  [ 1: worker g1 ]          (g = generation, counting every fork)
 *
 *   restart(), one slot at a time:
 *     fork g2 for slot 0 ──▶ { type: ready } within readyTimeoutMs ──▶ slot 0 = g2
 *                                                                   ──▶ g0: { type: drain }
 *                                  g0: stop accepting, notice, graceful close, exit
 *                                  (SIGKILL once drainTimeoutMs passes)
 *     then slot 1 the same way. A fresh worker that exits or stays silent: it is
 *     killed, the old one keeps serving, restart() rejects NETLOOP_WORKER_FAILED.
 *
 *   a serving worker that exits unasked ──▶ 'exit' (planned false) ──▶ a replacement
 *     forked for its slot (respawn); a replacement that fails before ready is not
 *     forked again ('error', NETLOOP_WORKER_FAILED): a crash loop stops at once.
 *
 *   close(): every worker drains at once; resolves once all have exited.
 * ```
 *
 * The workers are the program itself (`cluster.fork()` runs the primary's
 * script again); each calls `joinWorkerPool(server)` once it listens. The
 * drained worker's clients see a graceful close (with the notice the worker
 * chose) and reconnect: the primary hands the new connection to another
 * worker, and a session kept in a shared store resumes there.
 *
 * @module
 */

import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import * as os from 'node:os';
import { TypedEmitter } from '../core/emitter.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkObject } from '../core/validate.js';
import { WORKER_GENERATION_ENV, WORKER_MESSAGES, WORKER_SLOT_ENV, isWorkerMessage } from './worker-messages.js';

/** Defaults of {@link WorkerPoolOptions}. */
export const WORKER_POOL_DEFAULTS = Object.freeze({
  /** See {@link WorkerPoolOptions.readyTimeoutMs}. */
  readyTimeoutMs: 30_000,
  /** See {@link WorkerPoolOptions.drainTimeoutMs}. */
  drainTimeoutMs: 10_000,
  /** See {@link WorkerPoolOptions.respawn}. */
  respawn: true,
});

/** The most workers one pool forks. */
export const MAX_POOL_WORKERS = 1024;

/** Options of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** How many workers serve at once, 1 to 1024; default `os.availableParallelism()`. */
  workers?: number;
  /** Extra environment variables for every worker (beside the primary's own, which they inherit). */
  env?: Readonly<Record<string, string>>;
  /** How long a fresh worker may take to report ready before it is killed and counted failed; default 30,000 ms. */
  readyTimeoutMs?: number;
  /**
   * How long a draining worker may take to close its clients and exit before
   * it is killed (SIGKILL); default 10,000 ms. Give it more than the
   * worker's own `flushTimeoutMs`, so that its clients are closed gracefully.
   */
  drainTimeoutMs?: number;
  /** Replace a serving worker that exits unasked (a crash); default true. */
  respawn?: boolean;
}

/** A worker of the pool. */
export interface PoolWorker {
  /** Its slot, 0 to `size - 1`. */
  readonly slot: number;
  /** Its generation (unique in the pool, counting every fork). */
  readonly generation: number;
  /** Its process id. */
  readonly pid: number;
  /** The `node:cluster` worker. */
  readonly worker: Worker;
}

/** How a worker of the pool ended. */
export interface PoolWorkerExit {
  /** Its exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null when it exited by itself. */
  signal: NodeJS.Signals | null;
  /** The pool asked it to go (a drain, a restart, close(), or a fresh worker that failed to become ready). */
  planned: boolean;
  /** The pool killed it (it did not drain, or report ready, in time). */
  killed: boolean;
}

/** The events of a {@link WorkerPool}. */
export interface WorkerPoolEvents {
  /** A worker reported ready and now serves its slot. */
  ready: (worker: PoolWorker) => void;
  /** A worker exited. */
  exit: (worker: PoolWorker, exit: PoolWorkerExit) => void;
  /** A replacement of a crashed worker failed (`NETLOOP_WORKER_FAILED`); its slot stays empty. */
  error: (error: NetloopError) => void;
}

/** One forked worker and what the pool knows of it. */
interface Entry extends PoolWorker {
  ready: boolean;
  planned: boolean;
  killed: boolean;
  /** Settles once the worker reported ready; rejects with NETLOOP_WORKER_FAILED. */
  readonly whenReady: Promise<void>;
  /** Settles once the worker has exited. */
  readonly whenExited: Promise<PoolWorkerExit>;
}

/**
 * A pool of `node:cluster` workers sharing the primary's port (see the module
 * comment). Construct and start it in the primary only.
 *
 * ```ts
 * if (cluster.isPrimary) {
 *   const pool = await new WorkerPool({ workers: 2 }).start();
 *   process.on('SIGHUP', () => void pool.restart());
 *   process.on('SIGTERM', () => void pool.close().then(() => process.exit(0)));
 * } else {
 *   const server = await new Server(new EventLoop(), { port: 7000 }).listen();
 *   joinWorkerPool(server, { notice: 'restarting, reconnect\n' });
 * }
 * ```
 */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  /** How many workers serve at once. */
  readonly size: number;
  readonly #env: Readonly<Record<string, string>>;
  readonly #readyTimeoutMs: number;
  readonly #drainTimeoutMs: number;
  readonly #respawn: boolean;
  /** The serving worker of each slot (null while a slot has none). */
  readonly #slots: Array<Entry | null>;
  /** Every worker forked and not yet exited: serving, starting or draining. */
  readonly #live = new Set<Entry>();
  #generation = 0;
  #starting: Promise<this> | null = null;
  #restarting: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  /**
   * Validates the options; forks nothing (see {@link WorkerPool.start}).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option, or when
   *   this process is not a cluster primary.
   */
  constructor(options: WorkerPoolOptions = {}) {
    super();
    checkObject('options', options);
    if (!cluster.isPrimary) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'a WorkerPool runs in the cluster primary only', { details: { option: 'cluster' } });
    }
    this.size = checkInteger('workers', options.workers ?? os.availableParallelism(), 1, MAX_POOL_WORKERS);
    this.#readyTimeoutMs = checkInteger('readyTimeoutMs', options.readyTimeoutMs ?? WORKER_POOL_DEFAULTS.readyTimeoutMs, 1, 2 ** 31 - 1);
    this.#drainTimeoutMs = checkInteger('drainTimeoutMs', options.drainTimeoutMs ?? WORKER_POOL_DEFAULTS.drainTimeoutMs, 1, 2 ** 31 - 1);
    this.#respawn = checkBoolean('respawn', options.respawn ?? WORKER_POOL_DEFAULTS.respawn);
    const env = options.env ?? {};
    checkObject('env', env);
    for (const [k, v] of Object.entries(env)) {
      if (typeof v !== 'string') {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `env.${k} must be a string`, { details: { option: 'env', key: k } });
      }
    }
    this.#env = { ...env };
    this.#slots = new Array<Entry | null>(this.size).fill(null);
  }

  /**
   * Forks every worker and resolves once all report ready. Calling it again
   * returns the same promise.
   *
   * @throws NetloopError (as a rejection) `NETLOOP_WORKER_FAILED` when a
   *   worker exits or stays silent first (every worker is then stopped);
   *   `NETLOOP_LOOP_CLOSED` once the pool is closing.
   */
  start(): Promise<this> {
    return (this.#starting ??= this.#start());
  }

  async #start(): Promise<this> {
    if (this.#closing !== null) throw closedError();
    const entries = this.#slots.map((_, slot) => this.#fork(slot));
    try {
      // Each serves its slot from its ready on (a crash after it is then replaced).
      await Promise.all(entries.map((e) => e.whenReady.then(() => void (this.#slots[e.slot] = e))));
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  /**
   * Replaces every worker, one slot at a time: a fresh worker is forked and
   * must report ready before the old one of its slot is asked to drain; the
   * next slot waits until the drained one has exited. A call while a restart
   * runs returns that restart.
   *
   * @throws NetloopError (as a rejection) `NETLOOP_WORKER_FAILED` when a
   *   fresh worker fails (it is killed; the old one goes on serving, and the
   *   slots not yet reached keep their workers); `NETLOOP_LOOP_CLOSED` when
   *   the pool is not started or is closing.
   */
  restart(): Promise<void> {
    if (this.#restarting !== null) return this.#restarting;
    const run = this.#restart().finally(() => {
      this.#restarting = null;
    });
    this.#restarting = run;
    return run;
  }

  async #restart(): Promise<void> {
    if (this.#starting === null || this.#closing !== null) throw closedError();
    await this.#starting;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.#closing !== null) throw closedError();
      const fresh = this.#fork(slot);
      await fresh.whenReady;
      // The slot's worker is read now, not before the fork: a crash meanwhile may have replaced it.
      const old = this.#slots[slot] ?? null;
      this.#slots[slot] = fresh;
      if (old !== null) await this.#drain(old);
    }
  }

  /**
   * Drains every worker at once (none is replaced from now on) and resolves
   * once all have exited, the slow ones killed after `drainTimeoutMs`.
   * Resolves once; calling it again returns the same promise.
   */
  close(): Promise<void> {
    return (this.#closing ??= this.#close());
  }

  async #close(): Promise<void> {
    this.#slots.fill(null);
    await Promise.all([...this.#live].map((e) => this.#drain(e)));
  }

  /** True once {@link WorkerPool.close} was called. */
  get closing(): boolean {
    return this.#closing !== null;
  }

  /** The serving workers, by slot (a slot between a crash and its replacement's ready is left out). */
  workers(): PoolWorker[] {
    return this.#slots.filter((e): e is Entry => e !== null).map(publicView);
  }

  #fork(slot: number): Entry {
    const generation = this.#generation++;
    const worker = cluster.fork({ ...this.#env, [WORKER_SLOT_ENV]: String(slot), [WORKER_GENERATION_ENV]: String(generation) });
    // A send to a worker whose channel just closed reports EPIPE here; its exit tells the rest.
    worker.on('error', () => undefined);
    let markReady!: () => void;
    let fail!: (err: NetloopError) => void;
    const whenReady = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      fail = reject;
    });
    // A rejection nobody awaits (a respawn's is handled below) must not be reported as unhandled.
    whenReady.catch(() => undefined);
    const whenExited = new Promise<PoolWorkerExit>((resolve) => {
      worker.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        resolve({ code, signal, planned: entry.planned, killed: entry.killed });
      });
    });
    const entry: Entry = { slot, generation, pid: worker.process.pid ?? 0, worker, ready: false, planned: false, killed: false, whenReady, whenExited };
    this.#live.add(entry);
    const readyTimer = setTimeout(() => {
      fail(workerFailed(entry, `did not report ready within ${this.#readyTimeoutMs} ms`, null));
      entry.planned = entry.killed = true;
      worker.process.kill('SIGKILL');
    }, this.#readyTimeoutMs);
    const onMessage = (msg: unknown): void => {
      if (entry.ready || !isWorkerMessage(msg, WORKER_MESSAGES.ready)) return;
      clearTimeout(readyTimer);
      worker.off('message', onMessage);
      entry.ready = true;
      markReady();
      this.emit('ready', publicView(entry));
    };
    worker.on('message', onMessage);
    void whenExited.then((exit) => {
      clearTimeout(readyTimer);
      worker.off('message', onMessage);
      this.#live.delete(entry);
      if (!entry.ready) fail(workerFailed(entry, 'exited before it reported ready', exit));
      this.#exited(entry, exit);
    });
    return entry;
  }

  /** A worker exited: its slot is emptied and, for a crash of a serving worker, refilled. */
  #exited(entry: Entry, exit: PoolWorkerExit): void {
    const serving = this.#slots[entry.slot] === entry;
    if (serving) this.#slots[entry.slot] = null;
    this.emit('exit', publicView(entry), exit);
    if (!serving || entry.planned || !this.#respawn || this.#closing !== null) return;
    const fresh = this.#fork(entry.slot);
    fresh.whenReady.then(
      () => {
        if (this.#closing === null && this.#slots[fresh.slot] === null) this.#slots[fresh.slot] = fresh;
        else void this.#drain(fresh);
      },
      (err: NetloopError) => this.emit('error', err),
    );
  }

  /**
   * Asks a worker to drain (a ready one gets the drain message; one still
   * starting has nothing to close and gets SIGTERM), kills it after
   * `drainTimeoutMs`, resolves once it has exited.
   */
  async #drain(entry: Entry): Promise<PoolWorkerExit> {
    if (!entry.planned) {
      entry.planned = true;
      if (entry.ready && entry.worker.isConnected()) entry.worker.send({ type: WORKER_MESSAGES.drain });
      else entry.worker.process.kill('SIGTERM');
      const timer = setTimeout(() => {
        entry.killed = true;
        entry.worker.process.kill('SIGKILL');
      }, this.#drainTimeoutMs);
      void entry.whenExited.then(() => clearTimeout(timer));
    }
    return entry.whenExited;
  }
}

function publicView(e: Entry): PoolWorker {
  return { slot: e.slot, generation: e.generation, pid: e.pid, worker: e.worker };
}

function closedError(): NetloopError {
  return new NetloopError(ErrorCode.LOOP_CLOSED, 'the worker pool is not started, or is closing');
}

function workerFailed(e: Entry, what: string, exit: PoolWorkerExit | null): NetloopError {
  return new NetloopError(ErrorCode.WORKER_FAILED, `worker ${e.slot} (pid ${e.pid}) ${what}`, {
    details: { slot: e.slot, generation: e.generation, pid: e.pid, exitCode: exit?.code ?? null, signal: exit?.signal ?? null },
  });
}
