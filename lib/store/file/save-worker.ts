/**
 * The file store's single I/O worker: it numbers the changes, decides when
 * they are saved (a snapshot, or a group commit of the journal), runs one
 * save, commit or compaction at a time with retries, keeps the error state,
 * and tells waiters when their change is durable.
 *
 * ```
 *   change ──changed()──▶ seq++ ─┬─ snapshot mode: batchThreshold reached? ──▶ save now
 *                                │                  else: arm the saveDelayMs timer
 *                                └─ journal mode: record pending; journal too big? ──▶ compact now
 *                                                   else: arm the fsyncIntervalMs timer
 *   timer / flush() / threshold ──▶ kick(): one job at a time (busy)
 *        job = withRetries(snapshot | commit | compaction)
 *          ok:   durableSeq = the job's seq; waiters up to it resolve; 'error' ──▶ 'open' (recovered)
 *          fail: after `retries` (doubling retryDelayMs): status 'error', waiters beyond reject,
 *                the next attempt waits for the slower error-state timer or a flush()
 *
 *   status:  open ◀──▶ error        open/error ──close()──▶ closing ──▶ closed
 * ```
 *
 * `durableSeq` only moves after the fsyncs that make a change durable have
 * returned, so nothing is reported saved before it is. This is one state
 * machine (the sequence numbers, the waiters, the timer, the job and the
 * status change together), which is why it is one file.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionRecord } from '../contract.js';
import { atomicWrite, ioError, writeAll } from './disk.js';
import type { FsFacade, FsFileHandle } from './fs-facade.js';
import { encodeOp } from './replay.js';
import type { JournalOp } from './replay.js';
import type { StoreScheduler, StoreTimer } from './scheduler.js';
import { encodeSnapshot } from './snapshot.js';
import type { FileStoreDurability, FileStoreSaveInfo, FileStoreStatus } from './types.js';

/** The worker's settings, validated by the store. */
export interface SaveWorkerSettings {
  readonly fs: FsFacade;
  readonly scheduler: StoreScheduler;
  /** The snapshot file, its temporary file and its folder. */
  readonly path: string;
  readonly tmpPath: string;
  readonly dir: string;
  readonly durability: FileStoreDurability;
  readonly saveDelayMs: number;
  readonly batchThreshold: number;
  readonly fsyncIntervalMs: number;
  readonly compactAfterBytes: number;
  readonly maxRecordBytes: number;
  readonly retries: number;
  readonly retryDelayMs: number;
}

/** What the worker asks of the store. */
export interface SaveWorkerHost {
  /** The live records to snapshot (oldest first) and the wall time they were judged live at. */
  snapshotContent(): { sessions: SessionRecord[]; now: number };
  /** A save or commit became durable. */
  saved(info: FileStoreSaveInfo): void;
  /** The store entered (or stays in) its error state with `err`. */
  failed(err: NetloopError): void;
  /** The first successful save after the error state. */
  recovered(): void;
}

/** A change waiting in memory for its group commit. */
interface PendingRecord {
  seq: number;
  bytes: Buffer;
}

/** A caller of flush() or durable() waiting for `seq` to be durable. */
interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: NetloopError) => void;
}

const noop = (): void => undefined;

/** See the module documentation. */
export class SaveWorker {
  readonly #s: SaveWorkerSettings;
  readonly #host: SaveWorkerHost;

  #seq = 0;
  #durableSeq = 0;
  /** The seq a snapshot save in flight will make durable (equals `#durableSeq` when none is in flight). */
  #inFlightSeq = 0;
  /** Sequence numbers of the unsaved changes that count toward `batchThreshold` (all but heartbeats), increasing. */
  #batchSeqs: number[] = [];
  #status: FileStoreStatus = 'open';
  #lastError: NetloopError | null = null;
  /** Completed snapshot saves (compactions included), group commits, failed attempts. */
  snapshots = 0;
  commits = 0;
  failedAttempts = 0;

  #busy = false;
  #wantSave = false;
  #wantCompact = false;
  #closing = false;
  #timer: StoreTimer | null = null;
  #waiters: Waiter[] = [];
  #idleWaiters: Array<() => void> = [];

  // Journal mode.
  #journal: FsFileHandle | null = null;
  #journalBytes = 0;
  #journalPending: PendingRecord[] = [];
  #journalPendingBytes = 0;
  /** A failed append may have left bytes past `#journalBytes`; they are cut before the next append. */
  #journalTailDirty = false;

  constructor(settings: SaveWorkerSettings, host: SaveWorkerHost) {
    this.#s = settings;
    this.#host = host;
  }

  /** The last change's sequence number. */
  get seq(): number {
    return this.#seq;
  }

  /** The highest sequence number known to be on stable storage. */
  get durableSeq(): number {
    return this.#durableSeq;
  }

  /** True while some change is not yet durable. */
  get dirty(): boolean {
    return this.#seq > this.#durableSeq;
  }

  /** See `FileStoreStatus`. */
  get status(): FileStoreStatus {
    return this.#status;
  }

  /** The error of the last failed save, or null since the last success. */
  get lastError(): NetloopError | null {
    return this.#lastError;
  }

  /** Bytes in the journal file. */
  get journalBytes(): number {
    return this.#journalBytes;
  }

  /** At open: what was loaded is durable up to `seq`. */
  loaded(seq: number): void {
    this.#seq = seq;
    this.#durableSeq = seq;
    this.#inFlightSeq = seq;
  }

  /** At open, journal mode: the (empty) journal file the group commits append to. */
  attachJournal(journal: FsFileHandle): void {
    this.#journal = journal;
  }

  /**
   * Journal mode: encodes the next change's record BEFORE the working set is
   * touched, so an oversize record is refused with nothing changed. Snapshot
   * mode: null.
   */
  encode(op: JournalOp): Buffer | null {
    if (this.#s.durability !== 'journal') return null;
    op.s = this.#seq + 1;
    return encodeOp(op, this.#s.maxRecordBytes);
  }

  /**
   * Records one change (already applied): gives it its sequence number and
   * schedules its save. `counts` is false for heartbeats, which wait for the
   * delay timer instead of counting toward `batchThreshold`.
   */
  changed(bytes: Buffer | null, counts = true): void {
    const s = this.#s;
    const seq = ++this.#seq;
    if (counts) this.#batchSeqs.push(seq);
    if (bytes !== null) {
      this.#journalPending.push({ seq, bytes });
      this.#journalPendingBytes += bytes.length;
      if (this.#journalOverThreshold() && this.#status !== 'error') {
        // Compaction subsumes every pending record and restarts the journal from empty.
        this.#wantCompact = true;
        this.#kick();
      } else {
        this.#arm(this.#status === 'error' ? Math.max(s.saveDelayMs, s.fsyncIntervalMs) : s.fsyncIntervalMs);
      }
      return;
    }
    // The batch counts changes no save covers yet: those made during a save in flight wait for the next batch.
    if (counts && this.#uncoveredBatch(Math.max(this.#durableSeq, this.#inFlightSeq)) >= s.batchThreshold && this.#status !== 'error') {
      this.#wantSave = true;
      this.#kick();
    } else {
      this.#arm(s.saveDelayMs);
    }
  }

  /**
   * Resolves once change `seq` is durable; with `force`, starts a save (or
   * commit) now rather than waiting for the scheduled one. Rejects with the
   * save's error when it fails all its retries.
   */
  waitFor(seq: number, force: boolean): Promise<void> {
    if (seq <= this.#durableSeq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      if (force) {
        this.#wantSave = true;
        this.#kick();
      }
    });
  }

  /**
   * Ends the worker: saves every pending change (and, in journal mode, folds
   * the journal into the snapshot), releases the journal file and the timer,
   * and rejects any waiter left with `closedError()`. Status: `closing`, then
   * `closed`. Resolves the final save's failure, or null.
   */
  async close(closedError: () => NetloopError): Promise<unknown> {
    this.#closing = true;
    this.#status = 'closing';
    let failure: unknown = null;
    try {
      if (this.#seq > this.#durableSeq) await this.waitFor(this.#seq, true);
    } catch (err) {
      failure = err;
    }
    await this.#whenIdle();
    if (failure === null && this.#s.durability === 'journal' && this.#journalBytes > 0) {
      // Fold the journal into the snapshot so a clean shutdown leaves one self-contained file.
      // No change can arrive while closing, and the worker is idle, so this runs alone.
      this.#busy = true;
      failure = await this.#withRetries('compaction', () => this.#compactOnce());
      this.#busy = false;
    }
    this.#timer?.cancel();
    this.#timer = null;
    if (this.#journal !== null) {
      const h = this.#journal;
      this.#journal = null;
      await h.close().catch(noop);
    }
    this.#status = 'closed';
    const left = this.#waiters;
    this.#waiters = [];
    for (const w of left) w.reject(closedError());
    return failure;
  }

  /** One atomic snapshot of the working set, at the current seq (also the compaction at open). */
  async snapshotOnce(): Promise<void> {
    const seq = this.#seq;
    const { sessions, now } = this.#host.snapshotContent();
    const data = encodeSnapshot(sessions, seq, now);
    this.#inFlightSeq = seq;
    try {
      await atomicWrite(this.#s.fs, this.#s.path, this.#s.tmpPath, this.#s.dir, data);
    } catch (err) {
      this.#inFlightSeq = this.#durableSeq;
      throw err;
    }
    this.snapshots++;
    if (seq > this.#durableSeq) this.#durableSeq = seq;
    this.#host.saved({ kind: 'snapshot', seq, bytes: data.length, sessions: sessions.length });
  }

  /**
   * How many batch-counting changes have a sequence number above `covered`.
   * `#batchSeqs` is increasing, so the covered ones are dropped from its front.
   */
  #uncoveredBatch(covered: number): number {
    const seqs = this.#batchSeqs;
    let i = 0;
    while (i < seqs.length && seqs[i]! <= covered) i++;
    if (i > 0) seqs.splice(0, i);
    return seqs.length;
  }

  #journalOverThreshold(): boolean {
    return this.#journalBytes + this.#journalPendingBytes > this.#s.compactAfterBytes;
  }

  /** Starts the save timer unless one runs: the first unsaved change starts it, later ones never push it back. */
  #arm(ms: number): void {
    if (this.#timer !== null) return;
    this.#timer = this.#s.scheduler.setTimeout(() => {
      this.#timer = null;
      this.#wantSave = true;
      this.#kick();
    }, ms);
  }

  #whenIdle(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Runs the next save, commit or compaction if none is running. */
  #kick(): void {
    if (this.#busy) return;
    let job: (() => Promise<unknown>) | null = null;
    if (this.#s.durability === 'journal') {
      if (this.#wantCompact || (this.#wantSave && this.#journalOverThreshold())) job = () => this.#withRetries('compaction', () => this.#compactOnce());
      else if (this.#wantSave && this.#journalPending.length > 0) job = () => this.#withRetries('journal commit', () => this.#commitOnce());
    } else if (this.#wantSave && this.dirty) {
      job = () => this.#withRetries('snapshot save', () => this.snapshotOnce());
    }
    this.#wantSave = false;
    if (job === null) {
      this.#settleWaiters();
      const idle = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const f of idle) f();
      return;
    }
    this.#busy = true;
    if (this.#timer !== null) {
      // This job covers every change so far; a later change re-arms the timer.
      this.#timer.cancel();
      this.#timer = null;
    }
    void job().then(() => {
      this.#busy = false;
      // Changes made during the job wait for their own trigger, unless a waiter or the batch threshold wants them now.
      // A waiter (flush, durable, close) wants the rest now; while closing, nothing else is re-armed.
      if (this.#waiters.some((w) => w.seq > this.#durableSeq)) {
        this.#wantSave = true;
      } else if (!this.#closing && this.dirty) {
        this.#rearmAfterJob();
      }
      this.#kick();
    });
  }

  #rearmAfterJob(): void {
    const s = this.#s;
    if (this.#status === 'error') {
      this.#arm(Math.max(s.saveDelayMs, s.fsyncIntervalMs));
    } else if (s.durability === 'journal') {
      this.#arm(s.fsyncIntervalMs);
    } else if (this.#uncoveredBatch(this.#durableSeq) >= s.batchThreshold) {
      this.#wantSave = true;
    } else {
      this.#arm(s.saveDelayMs);
    }
  }

  /** Resolves every waiter whose change is durable. */
  #settleWaiters(): void {
    if (this.#waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.seq <= this.#durableSeq) w.resolve();
      else keep.push(w);
    }
    this.#waiters = keep;
  }

  /**
   * Runs `attempt`, retrying with doubling backoff; after the last failure
   * enters the error state and returns the error (null on success).
   */
  async #withRetries(what: string, attempt: () => Promise<void>): Promise<NetloopError | null> {
    let delay = this.#s.retryDelayMs;
    for (let i = 0; ; i++) {
      try {
        await attempt();
        if (this.#status === 'error') {
          this.#status = this.#closing ? 'closing' : 'open';
          this.#lastError = null;
          this.#host.recovered();
        }
        this.#settleWaiters();
        return null;
      } catch (err) {
        this.failedAttempts++;
        const e = ioError(`file store ${what} failed`, err, { file: this.#s.path, attempts: i + 1 });
        if (i >= this.#s.retries) {
          this.#fail(e);
          return e;
        }
        await new Promise<void>((resolve) => this.#s.scheduler.setTimeout(resolve, delay));
        delay *= 2;
      }
    }
  }

  /** Enters the error state: rejects every waiter whose change is not durable. */
  #fail(err: NetloopError): void {
    this.#lastError = err;
    if (this.#status === 'open') this.#status = 'error';
    const waiting = this.#waiters.filter((w) => w.seq > this.#durableSeq);
    this.#waiters = this.#waiters.filter((w) => w.seq <= this.#durableSeq);
    // No immediate retry: the next attempt comes from the (slower) error-state timer or a flush().
    this.#wantCompact = false;
    for (const w of waiting) w.reject(err);
    this.#host.failed(err);
  }

  /** One group commit: every pending journal record, one write, one fsync. */
  async #commitOnce(): Promise<void> {
    const h = this.#journal;
    if (h === null || this.#journalPending.length === 0) return;
    // A copy: records added while this commit is in flight belong to the next one.
    const batch = this.#journalPending.slice();
    const data = batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((p) => p.bytes));
    const lastSeq = batch[batch.length - 1]!.seq;
    if (this.#journalTailDirty) {
      await h.truncate(this.#journalBytes);
      this.#journalTailDirty = false;
    }
    this.#journalTailDirty = true;
    await writeAll(h, data, this.#journalBytes);
    await h.sync();
    this.#journalTailDirty = false;
    this.#journalBytes += data.length;
    // Records added during the commit stay pending for the next one.
    this.#journalPending = this.#journalPending.slice(batch.length);
    this.#journalPendingBytes -= data.length;
    this.commits++;
    if (lastSeq > this.#durableSeq) this.#durableSeq = lastSeq;
    this.#host.saved({ kind: 'journal', seq: lastSeq, bytes: data.length, sessions: 0 });
  }

  /** Snapshot, then truncate the journal: records up to the snapshot's seq are no longer needed. */
  async #compactOnce(): Promise<void> {
    const seq = this.#seq;
    await this.snapshotOnce();
    this.#journalPending = this.#journalPending.filter((p) => p.seq > seq);
    this.#journalPendingBytes = this.#journalPending.reduce((n, p) => n + p.bytes.length, 0);
    const h = this.#journal;
    if (h !== null && (this.#journalBytes > 0 || this.#journalTailDirty)) {
      this.#journalTailDirty = true;
      await h.truncate(0);
      await h.sync();
      this.#journalTailDirty = false;
      this.#journalBytes = 0;
    }
    this.#wantCompact = false;
  }
}

/** The error every call of a closed file store rejects with. */
export function storeClosedError(file: string): NetloopError {
  return new NetloopError(ErrorCode.STORE_CLOSED, 'file store is closed', { details: { file } });
}
