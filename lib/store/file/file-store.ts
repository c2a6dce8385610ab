/**
 * A crash-safe local file store for sessions.
 *
 * The working set lives in memory (`working-set.ts`); the disk holds a
 * snapshot file (`snapshot.ts`) and, in `journal` mode, an append-only
 * journal beside it (`journal.ts`, `replay.ts`).
 *
 * ```
 *   memory (working set)                       disk (folder of `path`)
 *   ┌────────────────────────────┐             ┌─────────────────────────────┐
 *   │ records:  id ──► record    │  snapshot   │ sessions.json               │
 *   │ byToken:  hash ──► id      │ ──save────► │   (temp, fsync, rename,     │
 *   │ byConn:   conn ──► id      │             │    fsync folder)            │
 *   │ byUser:   user ──► {id..}  │  journal    │ sessions.json.journal       │
 *   │ seq (changes), durableSeq  │ ──commit──► │   (append, fsync per group) │
 *   └────────────────────────────┘             └─────────────────────────────┘
 * ```
 *
 * Every change gets a sequence number `seq`. `durableSeq` is the highest seq
 * known to be on stable storage; `pendingChanges = seq - durableSeq`. Nothing
 * is reported saved (a resolved {@link FileStore.flush}, a `save` event) before
 * the fsyncs that make it durable have returned.
 *
 * Loss bounds on a crash (process kill or power loss):
 * - `snapshot` mode: the changes not yet in a completed save, i.e. at most
 *   those made during the last `saveDelayMs` (default 5 s) plus the duration
 *   of the save in progress; fewer when `batchThreshold` changes trigger an
 *   earlier save.
 * - `journal` mode: at most the changes made during the last
 *   `fsyncIntervalMs` (default 100 ms) plus the duration of the group commit
 *   in progress (one write and one fsync).
 *
 * This file holds the store's interface and its one I/O worker (one save,
 * group commit or compaction at a time, with retries and an error state):
 * together they are one state machine over `seq`, `durableSeq`, the waiters
 * and the status, which is why they stay in one file.
 *
 * @module
 */

import { OperationStats } from '../operation-stats.js';
import type { StoreOperationSample } from '../operation-stats.js';
import * as path from 'node:path';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { TypedEmitter, reportFault } from '../../core/emitter.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import { checkInteger, checkNumber } from '../../core/validate.js';
import type { CreateOptions, OnlinePage, OnlineUsersPage, Page, SessionFilter, SessionPage, SessionPatch, SessionRecord, SessionStore, WriteCondition } from '../contract.js';
import {
  assertCondition,
  checkWriteCondition,
  applySessionPatch,
  checkFilter,
  checkMaxPerUser,
  checkOnlinePage,
  checkPage,
  checkSessionPatch,
  checkSessionRecord,
  checkTouch,
  checkUserId,
  copySessionRecord,
  onlinePageOf,
  pageOf,
} from '../record.js';
import { syncDir } from './disk.js';
import { loadFromDisk, retryAtOpen } from './loader.js';
import type { DiskContext } from './loader.js';
import type { FsFacade } from './fs-facade.js';
import { realFs } from './fs-facade.js';
import { DEFAULT_MAX_RECORD_BYTES } from './journal.js';
import { systemScheduler } from './scheduler.js';
import type { StoreScheduler, StoreTimer } from './scheduler.js';
import { SaveWorker, storeClosedError } from './save-worker.js';
import type { SaveWorkerSettings } from './save-worker.js';
import type {
  FileStoreDurability,
  FileStoreEvents,
  FileStoreLoadReport,
  FileStoreOptions,
  FileStoreStats,
  FileStoreStatus,
} from './types.js';
import { WorkingSet, conflict } from './working-set.js';
import { listenerFaultError } from '../listener-fault.js';

export { systemScheduler } from './scheduler.js';
export type { StoreScheduler, StoreTimer } from './scheduler.js';
export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from './snapshot.js';
export type {
  FileStoreDurability,
  FileStoreEvents,
  FileStoreLoadReport,
  FileStoreOptions,
  FileStoreSaveInfo,
  FileStoreStats,
  FileStoreStatus,
} from './types.js';

/**
 * A {@link SessionStore} kept in memory and saved to a local file, crash-safe.
 *
 * ```ts
 * const store = await FileStore.open({ path: 'data/sessions.json' });
 * await store.create(record);
 * await store.flush();          // durable now
 * await store.close();          // flushes, then releases the file
 * ```
 *
 * Events ({@link FileStoreEvents}, `on`/`once`/`off`):
 * - `save` ({@link FileStoreSaveInfo}): after each durable snapshot or group commit.
 * - `error` ({@link NetloopError}): `NETLOOP_STORE_IO` when a save fails all its
 *   retries and the store enters its error state; `NETLOOP_HANDLER_ERROR` when a
 *   listener of `save` or `recovered` threw or rejected (`cause` is the fault,
 *   `details.event` the event; the save stands). Without a listener, an error
 *   is reported as a process warning (`NetloopWarning`), never thrown: the
 *   state is also visible in {@link FileStore.status}, {@link FileStore.ping}
 *   and rejected {@link FileStore.flush} calls.
 * - `recovered`: the first successful save after the error state.
 *
 * Every listener is called guarded: none can fail a save, stop the other
 * listeners, or crash the process.
 *
 * One process owns a store's files at a time.
 */
export class FileStore extends TypedEmitter<FileStoreEvents> implements SessionStore {
  /** @inheritDoc */
  readonly kind = 'file';
  /** The snapshot file. */
  readonly path: string;
  /** The journal file (`<path>.journal`). */
  readonly journalPath: string;
  /** The durability mode. */
  readonly durability: FileStoreDurability;
  /** What was found on disk at open. */
  readonly loadReport: FileStoreLoadReport;

  readonly #fs: FsFacade;
  readonly #clock: Clock;
  readonly #scheduler: StoreScheduler;
  readonly #dir: string;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #maxRecordBytes: number;
  readonly #cleanupIntervalMs: number;
  readonly #maxListLimit: number;
  /** The working set and its indexes (always consistent with each other). */
  readonly #ws = new WorkingSet();
  /** The I/O worker: sequence numbers, saves, retries, the status. */
  readonly #worker: SaveWorker;
  #cleanupTimer: StoreTimer | null = null;
  #closePromise: Promise<void> | null = null;

  /** Per-operation timings (see {@link FileStore.operationStats}). */
  readonly #ops = new OperationStats();

  private constructor(options: FileStoreOptions, loadReport: FileStoreLoadReport) {
    super();
    this.#ops.wrap(this);
    this.path = path.resolve(options.path);
    this.journalPath = `${this.path}.journal`;
    this.#dir = path.dirname(this.path);
    this.durability = options.durability ?? 'snapshot';
    this.#fs = options.fs ?? realFs;
    this.#clock = options.clock ?? systemClock;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#retries = checkInteger('retries', options.retries ?? 3, 0, 20);
    this.#retryDelayMs = checkNumber('retryDelayMs', options.retryDelayMs ?? 100, 0, 60_000);
    this.#maxRecordBytes = checkInteger('maxRecordBytes', options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES, 64, 0x7fffffff);
    this.#cleanupIntervalMs = checkNumber('cleanupIntervalMs', options.cleanupIntervalMs ?? 600_000, 1, 86_400_000);
    this.#maxListLimit = checkInteger('maxListLimit', options.maxListLimit ?? 1000, 1, 1_000_000);
    const settings: SaveWorkerSettings = {
      fs: this.#fs,
      scheduler: this.#scheduler,
      path: this.path,
      tmpPath: `${this.path}.tmp`,
      dir: this.#dir,
      durability: this.durability,
      saveDelayMs: checkNumber('saveDelayMs', options.saveDelayMs ?? 5000, 0, 3_600_000),
      batchThreshold: checkInteger('batchThreshold', options.batchThreshold ?? 10, 1, 1_000_000),
      fsyncIntervalMs: checkNumber('fsyncIntervalMs', options.fsyncIntervalMs ?? 100, 0, 60_000),
      compactAfterBytes: checkInteger('compactAfterBytes', options.compactAfterBytes ?? 4 * 1024 * 1024, 1024, 2 ** 40),
      maxRecordBytes: this.#maxRecordBytes,
      retries: this.#retries,
      retryDelayMs: this.#retryDelayMs,
    };
    this.#worker = new SaveWorker(settings, {
      snapshotContent: () => {
        const now = this.#clock.wallNow();
        return { sessions: this.#ws.liveRecords(now), now };
      },
      saved: (info) => this.emit('save', info),
      failed: (err) => this.#error(err),
      recovered: () => this.emit('recovered'),
    });
    this.loadReport = loadReport;
  }

  /**
   * Opens (or creates) the store at `options.path`: removes a stale temporary
   * file, loads the snapshot, replays the journal if there is one, drops
   * expired sessions, and compacts a non-empty journal into the snapshot.
   *
   * Rejects with `NETLOOP_STORE_CORRUPT` when the snapshot cannot be parsed (the
   * file is renamed aside to `<path>.corrupt-<stamp>`, named in `details`),
   * `NETLOOP_JOURNAL_CORRUPT` when the journal is corrupt before its tail (the
   * journal is left in place), `NETLOOP_STORE_IO` when the disk fails, and
   * `NETLOOP_INVALID_OPTION` for a bad option.
   */
  static async open(options: FileStoreOptions): Promise<FileStore> {
    if (typeof options?.path !== 'string' || options.path.length === 0) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'FileStore: path must be a non-empty string', { details: { option: 'path' } });
    }
    const durability = options.durability ?? 'snapshot';
    if (durability !== 'snapshot' && durability !== 'journal') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `FileStore: durability must be 'snapshot' or 'journal'`, {
        details: { option: 'durability', value: durability },
      });
    }
    const report: FileStoreLoadReport = { sessions: 0, expiredDropped: 0, journalRecordsReplayed: 0, journalTail: null, staleTempFilesRemoved: [] };
    const store = new FileStore(options, report);
    await store.#load();
    store.#scheduleCleanup();
    return store;
  }

  // ─── observability ───────────────────────────────────────────────────────

  /** True while some change is not yet durable. */
  get dirty(): boolean {
    return this.#worker.dirty;
  }

  /** Changes made but not yet durable. */
  get pendingChanges(): number {
    return this.#worker.seq - this.#worker.durableSeq;
  }

  /** The store's state; see {@link FileStoreStatus}. */
  get status(): FileStoreStatus {
    return this.#worker.status;
  }

  /** The error of the last failed save, or null since the last success. */
  get lastError(): NetloopError | null {
    return this.#worker.lastError;
  }

  /** A snapshot of the store's counters. */
  stats(): FileStoreStats {
    const w = this.#worker;
    return {
      status: w.status,
      dirty: w.dirty,
      pendingChanges: this.pendingChanges,
      seq: w.seq,
      durableSeq: w.durableSeq,
      snapshots: w.snapshots,
      commits: w.commits,
      failedAttempts: w.failedAttempts,
      journalBytes: w.journalBytes,
      memoryRecords: this.#ws.size,
      lastError: w.lastError,
    };
  }

  // ─── durability API ──────────────────────────────────────────────────────

  /**
   * Forces a save now (snapshot mode) or a group commit now (journal mode) and
   * resolves once every change made before the call is durable. Rejects with
   * `NETLOOP_STORE_IO` (`details.syscallCode`) when the save fails all its
   * retries, and with `NETLOOP_STORE_CLOSED` once closed.
   */
  flush(): Promise<void> {
    if (this.#worker.status === 'closed') return Promise.reject(storeClosedError(this.path));
    return this.#worker.waitFor(this.#worker.seq, true);
  }

  /**
   * Resolves once every change made before the call is durable, without
   * forcing a save: it waits for the scheduled save or group commit. Rejects
   * like {@link FileStore.flush}.
   */
  durable(): Promise<void> {
    if (this.#worker.status === 'closed') return Promise.reject(storeClosedError(this.path));
    return this.#worker.waitFor(this.#worker.seq, false);
  }

  /**
   * Flushes every pending change (and, in journal mode, compacts the journal
   * into the snapshot), then releases the journal file and timers. Resolves
   * once the data is durable; rejects with `NETLOOP_STORE_IO` if the final
   * save failed (the store is closed either way). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closePromise !== null) return this.#closePromise;
    this.#closePromise = this.#close();
    return this.#closePromise;
  }

  /**
   * Resolves while the store is open and its saves succeed. Rejects with
   * `NETLOOP_STORE_CLOSED` once closing or closed, and with the last failed
   * save's error (`NETLOOP_STORE_IO`, `details.syscallCode`) while the store
   * is in its error state (until a save succeeds again). Costs no I/O: the
   * working set is in memory, and the disk's health is what the last save
   * or commit found.
   */
  async ping(): Promise<void> {
    this.#checkOpen();
    const w = this.#worker;
    if (w.status === 'error' && w.lastError !== null) throw w.lastError;
  }

  async #close(): Promise<void> {
    this.#cleanupTimer?.cancel();
    this.#cleanupTimer = null;
    const failure = await this.#worker.close(() => storeClosedError(this.path));
    if (failure !== null) throw failure;
  }

  // ─── SessionStore ────────────────────────────────────────────────────────

  /**
   * How long each operation took and how often it failed, by operation, for
   * the operations called at least once since the store was created (read
   * by netloop/ops at scrape time). Durations are histograms in seconds,
   * from the call to the settling of its promise; failures are counted by
   * their stable code.
   */
  operationStats(): StoreOperationSample[] {
    return this.#ops.sample();
  }

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#checkOpen();
    const r = copySessionRecord(checkSessionRecord(record));
    const max = checkMaxPerUser(options.maxPerUser);
    const now = this.#clock.wallNow();
    const ws = this.#ws;
    ws.evictIfExpired(r.id, now);
    if (ws.held(r.id) !== undefined) throw conflict('id', r.id);
    ws.checkIndexFree(r, now);
    if (max !== undefined && r.userId !== null && ws.liveOfUser(r.userId, now).length >= max) return false;
    const bytes = this.#worker.encode({ s: 0, o: 'c', r });
    ws.insert(r);
    this.#worker.changed(bytes);
    return true;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#checkOpen();
    const r = this.#ws.live(id, this.#clock.wallNow());
    return r === null ? null : copySessionRecord(r);
  }

  /** @inheritDoc */
  async set(record: SessionRecord, condition?: WriteCondition): Promise<boolean> {
    this.#checkOpen();
    const expected = checkWriteCondition(condition);
    const now = this.#clock.wallNow();
    const ws = this.#ws;
    const old = ws.live(String(record?.id), now);
    if (old === null) return false;
    const r = copySessionRecord(checkSessionRecord(record));
    assertCondition(old.id, old.connectionId, expected);
    ws.checkIndexFree(r, now);
    const bytes = this.#worker.encode({ s: 0, o: 'p', r });
    ws.remove(old);
    ws.insert(r);
    this.#worker.changed(bytes);
    return true;
  }

  /** @inheritDoc */
  async touch(id: string, expiresAt: number, lastActiveAt: number, condition?: WriteCondition): Promise<boolean> {
    this.#checkOpen();
    checkTouch(id, expiresAt, lastActiveAt);
    const expected = checkWriteCondition(condition);
    const r = this.#ws.live(id, this.#clock.wallNow());
    if (r === null) return false;
    assertCondition(id, r.connectionId, expected);
    const bytes = this.#worker.encode({ s: 0, o: 't', i: id, e: expiresAt, l: lastActiveAt });
    r.expiresAt = expiresAt;
    r.lastActiveAt = lastActiveAt;
    // A heartbeat is saved by the delay timer but never triggers a batch save:
    // with many sessions heartbeating, counting them would rewrite the whole
    // snapshot many times a second for changes that are cheap to lose (a lost
    // heartbeat only brings an expiry forward by at most one delay window).
    this.#worker.changed(bytes, false);
    return true;
  }

  /**
   * Saved as the whole record after the change (a `put` in the journal, as
   * `set` writes): the store is one process's, so the change is atomic.
   */
  async update(id: string, patch: SessionPatch, condition?: WriteCondition): Promise<SessionRecord | null> {
    this.#checkOpen();
    checkSessionPatch(patch);
    const expected = checkWriteCondition(condition);
    const ws = this.#ws;
    const old = ws.live(id, this.#clock.wallNow());
    if (old === null) return null;
    assertCondition(id, old.connectionId, expected);
    const r = applySessionPatch(old, patch);
    const bytes = this.#worker.encode({ s: 0, o: 'p', r });
    // Nothing a patch changes is indexed: the record is replaced under the same keys.
    ws.remove(old);
    ws.insert(r);
    this.#worker.changed(bytes);
    return copySessionRecord(r);
  }

  /** This process's sessions (one process owns a file store). Cost: O(sessions of the user). */
  async isOnline(userId: string): Promise<boolean> {
    this.#checkOpen();
    checkUserId(userId);
    return this.#ws.isOnline(userId, this.#clock.wallNow());
  }

  /** Cost: O(sessions with a user). */
  async onlineCount(): Promise<number> {
    this.#checkOpen();
    return this.#ws.onlineUsers(this.#clock.wallNow()).length;
  }

  /** Ascending user id; the cursor is the last user of the page. Cost: O(s + u log u) per page. */
  async onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage> {
    this.#checkOpen();
    const bounds = checkOnlinePage(page, Math.min(100, this.#maxListLimit), this.#maxListLimit);
    return onlinePageOf(this.#ws.onlineUsers(this.#clock.wallNow()), bounds);
  }

  /** @inheritDoc */
  async delete(id: string, condition?: WriteCondition): Promise<boolean> {
    this.#checkOpen();
    const expected = checkWriteCondition(condition);
    const r = this.#ws.held(id);
    if (r === undefined) return false;
    const wasLive = r.expiresAt > this.#clock.wallNow();
    if (wasLive) assertCondition(id, r.connectionId, expected);
    const bytes = this.#worker.encode({ s: 0, o: 'd', i: id });
    this.#ws.remove(r);
    this.#worker.changed(bytes);
    return wasLive;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#checkOpen();
    const r = this.#ws.liveByToken(tokenHash, this.#clock.wallNow());
    return r === null ? null : copySessionRecord(r);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#checkOpen();
    const r = this.#ws.liveByConnection(connectionId, this.#clock.wallNow());
    return r === null ? null : copySessionRecord(r);
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#checkOpen();
    return pageOf(this.#ws.liveOfUser(userId, this.#clock.wallNow()), { offset: 0, limit: Number.MAX_SAFE_INTEGER }, copySessionRecord).sessions;
  }

  /** @inheritDoc */
  async list(filter: SessionFilter = {}, page: Page = {}): Promise<SessionPage> {
    this.#checkOpen();
    const f = checkFilter(filter);
    const bounds = checkPage(page, this.#maxListLimit, this.#maxListLimit);
    return pageOf(this.#ws.matching(f, this.#clock.wallNow()), bounds, copySessionRecord);
  }

  /** @inheritDoc */
  async count(filter: SessionFilter = {}): Promise<number> {
    this.#checkOpen();
    return this.#ws.matching(checkFilter(filter), this.#clock.wallNow()).length;
  }

  /** @inheritDoc */
  async clear(): Promise<void> {
    this.#checkOpen();
    const bytes = this.#worker.encode({ s: 0, o: 'x' });
    this.#ws.clear();
    this.#worker.changed(bytes);
  }

  // ─── working set ─────────────────────────────────────────────────────────

  #checkOpen(): void {
    const status = this.#worker.status;
    if (status === 'closing' || status === 'closed') throw storeClosedError(this.path);
  }

  #scheduleCleanup(): void {
    this.#cleanupTimer = this.#scheduler.setTimeout(
      () => {
        const status = this.#worker.status;
        if (status === 'closing' || status === 'closed') return;
        this.#ws.sweep(this.#clock.wallNow());
        this.#scheduleCleanup();
      },
      this.#cleanupIntervalMs,
      { unref: true },
    );
  }

  /**
   * Delivers a store error to the `error` listeners, or reports it as a
   * process warning when there is none (never thrown).
   */
  #error(err: NetloopError): void {
    if (this.listenerCount('error') === 0) reportFault(err, `file store ${this.path}`, this);
    else this.emit('error', err);
  }

  /**
   * A listener of one of the store's events threw or its promise rejected.
   * A listener's fault is not a disk fault: the save that emitted the event
   * stands. The fault goes to the `error` event as `NETLOOP_HANDLER_ERROR`
   * (with the fault as `cause`); a failing `error` listener is reported as a
   * process warning, never thrown.
   */
  protected override _listenerFault(fault: unknown, name: string, _args: readonly unknown[]): void {
    const error = listenerFaultError('a file store', name, fault, { file: this.path });
    if (name === 'error') reportFault(error, `file store ${this.path} error listener`, this);
    else this.#error(error);
  }

  // ─── loading ─────────────────────────────────────────────────────────────

  /** The store's disk settings, for loading (`loader.ts`). */
  #disk(): DiskContext {
    return {
      fs: this.#fs,
      clock: this.#clock,
      scheduler: this.#scheduler,
      path: this.path,
      journalPath: this.journalPath,
      dir: this.#dir,
      retries: this.#retries,
      retryDelayMs: this.#retryDelayMs,
      maxRecordBytes: this.#maxRecordBytes,
    };
  }

  /** Loads the working set, folds a non-empty journal into the snapshot, and opens (or removes) the journal. */
  async #load(): Promise<void> {
    const disk = this.#disk();
    const loaded = await loadFromDisk(disk, this.#ws, this.loadReport);
    const worker = this.#worker;
    worker.loaded(loaded.seq);
    if (loaded.compact) await retryAtOpen(disk, 'compact the journal', this.path, () => worker.snapshotOnce());
    if (this.durability === 'journal') {
      const journal = await retryAtOpen(disk, 'open the journal', this.journalPath, () => this.#fs.open(this.journalPath, 'w'));
      worker.attachJournal(journal);
      await retryAtOpen(disk, 'sync the journal', this.journalPath, async () => {
        await journal.sync();
        await syncDir(this.#fs, this.#dir);
      });
    } else if (loaded.journalFound) {
      await retryAtOpen(disk, 'remove the journal', this.journalPath, async () => {
        await this.#fs.unlink(this.journalPath);
        await syncDir(this.#fs, this.#dir);
      });
    }
  }
}

/** Shorthand for {@link FileStore.open}. */
export function openFileStore(options: FileStoreOptions): Promise<FileStore> {
  return FileStore.open(options);
}
