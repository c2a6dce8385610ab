/**
 * A crash-safe local file store for sessions.
 *
 * The working set lives in memory (Maps and indexes); the disk holds a
 * snapshot file and, in `journal` mode, an append-only journal beside it.
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
 * @module
 */

import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { ErrorCode, NetloopError, checkInteger, checkNumber } from '../../core/errors.js';
import { callGuarded, listenerError, reportFault } from '../../core/listener-guard.js';
import type { FsFacade, FsFileHandle } from './fs-facade.js';
import { realFs } from './fs-facade.js';
import { DEFAULT_MAX_RECORD_BYTES, JournalDecoder, encodeJournalRecord } from './journal.js';
import type { JournalTail } from './journal.js';
import { SESSION_STATES, copySessionRecord } from '../contract.js';
import type {
  CreateOptions,
  Page,
  SessionFilter,
  SessionPage,
  SessionRecord,
  SessionStore,
} from '../contract.js';

/** A cancellable one-shot timer returned by a {@link StoreScheduler}. */
export interface StoreTimer {
  cancel(): void;
}

/**
 * The timer seam of the file store. The default is {@link systemScheduler};
 * tests pass a virtual-time scheduler so no test sleeps for a save delay.
 */
export interface StoreScheduler {
  /**
   * Calls `callback` once after `ms` milliseconds. With `unref`, the timer
   * does not keep the process alive.
   */
  setTimeout(callback: () => void, ms: number, options?: { unref?: boolean }): StoreTimer;
}

/** The scheduler over Node's `setTimeout`. */
export const systemScheduler: StoreScheduler = Object.freeze({
  setTimeout(callback: () => void, ms: number, options?: { unref?: boolean }): StoreTimer {
    const t = setTimeout(callback, ms);
    if (options?.unref === true) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
});

/** How changes reach the disk; see the module documentation for the loss bound of each. */
export type FileStoreDurability = 'snapshot' | 'journal';

/** Options of {@link FileStore.open}. Every limit has a finite default and is validated. */
export interface FileStoreOptions {
  /** The snapshot file, e.g. `data/sessions.json`. Its folder is created if missing. */
  path: string;
  /** `'snapshot'` (default) or `'journal'`. */
  durability?: FileStoreDurability;
  /** Delay between the first unsaved change and the save that covers it (default 5000 ms; 0 to 3 600 000). */
  saveDelayMs?: number;
  /** Pending changes that trigger an immediate save in snapshot mode (default 10; 1 to 1 000 000). */
  batchThreshold?: number;
  /** Journal mode: delay between the first uncommitted record and its group commit (default 100 ms; 0 to 60 000). */
  fsyncIntervalMs?: number;
  /** Journal mode: compact (snapshot then truncate the journal) once it would exceed this many bytes (default 4 MiB). */
  compactAfterBytes?: number;
  /** Largest journal record payload (default 4 MiB); a bigger record is refused with NETLOOP_INVALID_VALUE. */
  maxRecordBytes?: number;
  /** Retries of a failed save or commit before the store enters its error state (default 3; 0 to 20). */
  retries?: number;
  /** Backoff before the first retry; doubled each time (default 100 ms; 0 to 60 000). */
  retryDelayMs?: number;
  /** Period of the sweep that drops expired sessions from memory (default 600 000 ms = 10 min). */
  cleanupIntervalMs?: number;
  /** Largest page {@link FileStore.list} returns (default 1000; 1 to 1 000 000). */
  maxListLimit?: number;
  /** Time source: `wallNow()` decides expiry and stamps files (default {@link systemClock}). */
  clock?: Clock;
  /** Timer seam (default {@link systemScheduler}). */
  scheduler?: StoreScheduler;
  /** File-system seam (default {@link realFs}). */
  fs?: FsFacade;
}

/** `open` normally; `error` after a save failed all its retries (until one succeeds); `closed` after close. */
export type FileStoreStatus = 'open' | 'error' | 'closing' | 'closed';

/** What {@link FileStore.open} found on disk. */
export interface FileStoreLoadReport {
  /** Live sessions loaded (after replaying the journal). */
  sessions: number;
  /** Sessions dropped because they had expired. */
  expiredDropped: number;
  /** Journal records applied on top of the snapshot. */
  journalRecordsReplayed: number;
  /** A truncated or torn journal tail that was dropped, or null. */
  journalTail: JournalTail | null;
  /** Stale temporary files found and removed (names only). */
  staleTempFilesRemoved: string[];
}

/** Payload of the `save` event. */
export interface FileStoreSaveInfo {
  /** `snapshot` for a full save (or a compaction), `journal` for a group commit. */
  kind: 'snapshot' | 'journal';
  /** The highest change sequence number now durable. */
  seq: number;
  /** Bytes written. */
  bytes: number;
  /** Sessions in the snapshot (snapshot saves only; 0 for a journal commit). */
  sessions: number;
}

/** Counters for observability; see {@link FileStore.stats}. */
export interface FileStoreStats {
  status: FileStoreStatus;
  dirty: boolean;
  pendingChanges: number;
  seq: number;
  durableSeq: number;
  /** Completed snapshot saves (compactions included). */
  snapshots: number;
  /** Completed journal group commits. */
  commits: number;
  /** Failed attempts, each retried or ending in the error state. */
  failedAttempts: number;
  /** Bytes in the journal file (journal mode). */
  journalBytes: number;
  /** Records held in memory, expired ones not yet swept included. */
  memoryRecords: number;
  /** The error that put the store in its error state, or null. */
  lastError: NetloopError | null;
}

/** The snapshot file format identifier. */
export const SNAPSHOT_FORMAT = 'netloop-sessions';
/** The snapshot format version this code writes and reads. */
export const SNAPSHOT_VERSION = 1;

type JournalOp =
  | { s: number; o: 'c' | 'p'; r: SessionRecord }
  | { s: number; o: 't'; i: string; e: number; l: number }
  | { s: number; o: 'd'; i: string }
  | { s: number; o: 'x' };

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

const STAT_KEYS = ['bytesIn', 'bytesOut', 'messagesIn', 'messagesOut', 'heartbeats'] as const;

function cloneRecord(r: SessionRecord): SessionRecord {
  return { ...r, metadata: { ...r.metadata }, stats: { ...r.stats } };
}

function compareAge(a: SessionRecord, b: SessionRecord): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Checks the shape of a record read from disk; returns a reason, or null when valid. */
export function validateSessionRecord(x: unknown): string | null {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const r = x as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id.length === 0) return 'bad id';
  if (typeof r.tokenHash !== 'string' || r.tokenHash.length === 0) return 'bad tokenHash';
  if (!isStrOrNull(r.userId) || !isStrOrNull(r.connectionId) || !isStrOrNull(r.remoteAddress)) return 'bad userId, connectionId or remoteAddress';
  if (!(SESSION_STATES as readonly unknown[]).includes(r.state)) return 'bad state';
  if (typeof r.metadata !== 'object' || r.metadata === null || Array.isArray(r.metadata)) return 'bad metadata';
  for (const v of Object.values(r.metadata)) if (typeof v !== 'string') return 'bad metadata value';
  if (typeof r.stats !== 'object' || r.stats === null) return 'bad stats';
  const stats = r.stats as Record<string, unknown>;
  for (const k of STAT_KEYS) if (!isNum(stats[k])) return `bad stats.${k}`;
  if (!isNum(r.createdAt) || !isNum(r.lastActiveAt) || !isNum(r.expiresAt) || !isNum(r.ttl)) return 'bad time fields';
  return null;
}

/** Refuses a malformed record from a caller with NETLOOP_INVALID_VALUE before anything is stored. */
function checkInput(x: SessionRecord): SessionRecord {
  const bad = validateSessionRecord(x);
  if (bad !== null) throw new NetloopError(ErrorCode.INVALID_VALUE, `invalid session record: ${bad}`, { details: { reason: bad } });
  return x;
}

/** Keeps only the known fields, so nothing foreign is persisted or returned. */
const normalise = copySessionRecord;

function syscallCode(err: unknown): string {
  const c = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof c === 'string' ? c : 'UNKNOWN';
}

function ioError(message: string, err: unknown, details: Record<string, unknown>): NetloopError {
  if (err instanceof NetloopError) return err;
  return new NetloopError(ErrorCode.STORE_IO, `${message}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    details: { ...details, syscallCode: syscallCode(err) },
  });
}

async function writeAll(h: FsFileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await h.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) {
      throw Object.assign(new Error('write returned no progress'), { code: 'EIO' });
    }
    done += bytesWritten;
  }
}

const noop = (): void => undefined;

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
 * Events:
 * - `save` ({@link FileStoreSaveInfo}): after each durable snapshot or group commit.
 * - `error` ({@link NetloopError}): `NETLOOP_STORE_IO` when a save fails all its
 *   retries and the store enters its error state; `NETLOOP_HANDLER_ERROR` when a
 *   listener of `save` or `recovered` threw or rejected (`cause` is the fault,
 *   `details.event` the event; the save stands). Without a listener, an error
 *   is reported as a process warning (`NetloopWarning`, rate-limited), never
 *   thrown: the state is also visible in {@link FileStore.status},
 *   {@link FileStore.ping} and rejected {@link FileStore.flush} calls.
 * - `recovered`: the first successful save after the error state.
 *
 * Every listener is called guarded: none can fail a save, stop the other
 * listeners, or crash the process.
 *
 * One process owns a store's files at a time.
 */
export class FileStore extends EventEmitter implements SessionStore {
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
  readonly #tmpPath: string;
  readonly #saveDelayMs: number;
  readonly #batchThreshold: number;
  readonly #fsyncIntervalMs: number;
  readonly #compactAfterBytes: number;
  readonly #maxRecordBytes: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;
  readonly #cleanupIntervalMs: number;
  readonly #maxListLimit: number;

  // The working set and its indexes (always consistent with each other).
  readonly #records = new Map<string, SessionRecord>();
  readonly #byToken = new Map<string, string>();
  readonly #byConnection = new Map<string, string>();
  readonly #byUser = new Map<string, Set<string>>();

  #seq = 0;
  #durableSeq = 0;
  /** The seq a snapshot save in flight will make durable (equals `#durableSeq` when none is in flight). */
  #inFlightSeq = 0;
  /** Sequence numbers of the unsaved changes that count toward `batchThreshold` (all but heartbeats), increasing. */
  #batchSeqs: number[] = [];
  #status: FileStoreStatus = 'open';
  #lastError: NetloopError | null = null;
  #snapshots = 0;
  #commits = 0;
  #failedAttempts = 0;

  // The single I/O worker: one save, commit or compaction at a time.
  #busy = false;
  #wantSave = false;
  #wantCompact = false;
  #timer: StoreTimer | null = null;
  #cleanupTimer: StoreTimer | null = null;
  #waiters: Waiter[] = [];
  #idleWaiters: Array<() => void> = [];
  #closePromise: Promise<void> | null = null;

  // Journal mode.
  #journal: FsFileHandle | null = null;
  #journalBytes = 0;
  #journalPending: PendingRecord[] = [];
  #journalPendingBytes = 0;
  /** A failed append may have left bytes past `#journalBytes`; they are cut before the next append. */
  #journalTailDirty = false;

  private constructor(options: FileStoreOptions, loadReport: FileStoreLoadReport) {
    super();
    this.path = path.resolve(options.path);
    this.journalPath = `${this.path}.journal`;
    this.#dir = path.dirname(this.path);
    this.#tmpPath = `${this.path}.tmp`;
    this.durability = options.durability ?? 'snapshot';
    this.#fs = options.fs ?? realFs;
    this.#clock = options.clock ?? systemClock;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#saveDelayMs = checkNumber('saveDelayMs', options.saveDelayMs ?? 5000, 0, 3_600_000);
    this.#batchThreshold = checkInteger('batchThreshold', options.batchThreshold ?? 10, 1, 1_000_000);
    this.#fsyncIntervalMs = checkNumber('fsyncIntervalMs', options.fsyncIntervalMs ?? 100, 0, 60_000);
    this.#compactAfterBytes = checkInteger('compactAfterBytes', options.compactAfterBytes ?? 4 * 1024 * 1024, 1024, 2 ** 40);
    this.#maxRecordBytes = checkInteger('maxRecordBytes', options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES, 64, 0x7fffffff);
    this.#retries = checkInteger('retries', options.retries ?? 3, 0, 20);
    this.#retryDelayMs = checkNumber('retryDelayMs', options.retryDelayMs ?? 100, 0, 60_000);
    this.#cleanupIntervalMs = checkNumber('cleanupIntervalMs', options.cleanupIntervalMs ?? 600_000, 1, 86_400_000);
    this.#maxListLimit = checkInteger('maxListLimit', options.maxListLimit ?? 1000, 1, 1_000_000);
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
    return this.#seq > this.#durableSeq;
  }

  /** Changes made but not yet durable. */
  get pendingChanges(): number {
    return this.#seq - this.#durableSeq;
  }

  /** The store's state; see {@link FileStoreStatus}. */
  get status(): FileStoreStatus {
    return this.#status;
  }

  /** The error of the last failed save, or null since the last success. */
  get lastError(): NetloopError | null {
    return this.#lastError;
  }

  /** A snapshot of the store's counters. */
  stats(): FileStoreStats {
    return {
      status: this.#status,
      dirty: this.dirty,
      pendingChanges: this.pendingChanges,
      seq: this.#seq,
      durableSeq: this.#durableSeq,
      snapshots: this.#snapshots,
      commits: this.#commits,
      failedAttempts: this.#failedAttempts,
      journalBytes: this.#journalBytes,
      memoryRecords: this.#records.size,
      lastError: this.#lastError,
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
    if (this.#status === 'closed') return Promise.reject(this.#closedError());
    return this.#waitFor(this.#seq, true);
  }

  /**
   * Resolves once every change made before the call is durable, without
   * forcing a save: it waits for the scheduled save or group commit. Rejects
   * like {@link FileStore.flush}.
   */
  durable(): Promise<void> {
    if (this.#status === 'closed') return Promise.reject(this.#closedError());
    return this.#waitFor(this.#seq, false);
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
    if (this.#status === 'error' && this.#lastError !== null) throw this.#lastError;
  }

  async #close(): Promise<void> {
    this.#status = 'closing';
    this.#cleanupTimer?.cancel();
    this.#cleanupTimer = null;
    let failure: unknown = null;
    try {
      if (this.#seq > this.#durableSeq) await this.#waitFor(this.#seq, true);
    } catch (err) {
      failure = err;
    }
    await this.#whenIdle();
    if (failure === null && this.durability === 'journal' && this.#journalBytes > 0) {
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
    for (const w of left) w.reject(this.#closedError());
    if (failure !== null) throw failure;
  }

  // ─── SessionStore ────────────────────────────────────────────────────────

  /** @inheritDoc */
  async create(record: SessionRecord, options: CreateOptions = {}): Promise<boolean> {
    this.#checkOpen();
    const r = normalise(checkInput(record));
    const now = this.#clock.wallNow();
    this.#evictIfExpired(r.id, now);
    if (this.#records.has(r.id)) throw this.#conflict('id', r.id);
    this.#checkIndexFree(r, now);
    if (options.maxPerUser !== undefined && r.userId !== null) {
      checkInteger('maxPerUser', options.maxPerUser, 0, Number.MAX_SAFE_INTEGER);
      if (this.#liveOfUser(r.userId, now).length >= options.maxPerUser) return false;
    }
    const bytes = this.#encode({ s: 0, o: 'c', r });
    this.#insert(r);
    this.#changed(bytes);
    return true;
  }

  /** @inheritDoc */
  async get(id: string): Promise<SessionRecord | null> {
    this.#checkOpen();
    const r = this.#live(id, this.#clock.wallNow());
    return r === null ? null : cloneRecord(r);
  }

  /** @inheritDoc */
  async set(record: SessionRecord): Promise<boolean> {
    this.#checkOpen();
    const now = this.#clock.wallNow();
    const old = this.#live(String(record?.id), now);
    if (old === null) return false;
    const r = normalise(checkInput(record));
    this.#checkIndexFree(r, now);
    const bytes = this.#encode({ s: 0, o: 'p', r });
    this.#remove(old);
    this.#insert(r);
    this.#changed(bytes);
    return true;
  }

  /** @inheritDoc */
  async touch(id: string, expiresAt: number, lastActiveAt: number): Promise<boolean> {
    this.#checkOpen();
    const r = this.#live(id, this.#clock.wallNow());
    if (r === null) return false;
    const bytes = this.#encode({ s: 0, o: 't', i: id, e: expiresAt, l: lastActiveAt });
    r.expiresAt = expiresAt;
    r.lastActiveAt = lastActiveAt;
    // A heartbeat is saved by the delay timer but never triggers a batch save:
    // with many sessions heartbeating, counting them would rewrite the whole
    // snapshot many times a second for changes that are cheap to lose (a lost
    // heartbeat only brings an expiry forward by at most one delay window).
    this.#changed(bytes, false);
    return true;
  }

  /** @inheritDoc */
  async delete(id: string): Promise<boolean> {
    this.#checkOpen();
    const r = this.#records.get(id);
    if (r === undefined) return false;
    const wasLive = r.expiresAt > this.#clock.wallNow();
    const bytes = this.#encode({ s: 0, o: 'd', i: id });
    this.#remove(r);
    this.#changed(bytes);
    return wasLive;
  }

  /** @inheritDoc */
  async getByTokenHash(tokenHash: string): Promise<SessionRecord | null> {
    this.#checkOpen();
    const id = this.#byToken.get(tokenHash);
    const r = id === undefined ? null : this.#live(id, this.#clock.wallNow());
    return r === null ? null : cloneRecord(r);
  }

  /** @inheritDoc */
  async getByConnection(connectionId: string): Promise<SessionRecord | null> {
    this.#checkOpen();
    const id = this.#byConnection.get(connectionId);
    const r = id === undefined ? null : this.#live(id, this.#clock.wallNow());
    return r === null ? null : cloneRecord(r);
  }

  /** @inheritDoc */
  async getByUser(userId: string): Promise<SessionRecord[]> {
    this.#checkOpen();
    return this.#liveOfUser(userId, this.#clock.wallNow()).sort(compareAge).map(cloneRecord);
  }

  /** @inheritDoc */
  async list(filter: SessionFilter = {}, page: Page = {}): Promise<SessionPage> {
    this.#checkOpen();
    const offset = checkInteger('page.offset', page.offset ?? 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = Math.min(checkInteger('page.limit', page.limit ?? this.#maxListLimit, 0, Number.MAX_SAFE_INTEGER), this.#maxListLimit);
    const matched = this.#matching(filter).sort(compareAge);
    return { sessions: matched.slice(offset, offset + limit).map(cloneRecord), total: matched.length };
  }

  /** @inheritDoc */
  async count(filter: SessionFilter = {}): Promise<number> {
    this.#checkOpen();
    return this.#matching(filter).length;
  }

  /** @inheritDoc */
  async clear(): Promise<void> {
    this.#checkOpen();
    const bytes = this.#encode({ s: 0, o: 'x' });
    this.#records.clear();
    this.#byToken.clear();
    this.#byConnection.clear();
    this.#byUser.clear();
    this.#changed(bytes);
  }

  // ─── working set ─────────────────────────────────────────────────────────

  #checkOpen(): void {
    if (this.#status === 'closing' || this.#status === 'closed') throw this.#closedError();
  }

  #closedError(): NetloopError {
    return new NetloopError(ErrorCode.STORE_CLOSED, 'file store is closed', { details: { file: this.path } });
  }

  #conflict(field: string, value: string): NetloopError {
    // A token hash is not the token, but it is still not echoed: only the field is named.
    return new NetloopError(ErrorCode.INVALID_VALUE, `another live session already holds this ${field}`, {
      details: field === 'id' ? { field, id: value } : { field },
    });
  }

  /** The record if present and not expired. */
  #live(id: string, now: number): SessionRecord | null {
    const r = this.#records.get(id);
    return r !== undefined && r.expiresAt > now ? r : null;
  }

  #evictIfExpired(id: string | undefined, now: number): void {
    if (id === undefined) return;
    const r = this.#records.get(id);
    if (r !== undefined && r.expiresAt <= now) this.#remove(r);
  }

  /** Throws if the record's token hash or connection belongs to another live record; evicts expired holders. */
  #checkIndexFree(r: SessionRecord, now: number): void {
    this.#evictIfExpired(this.#byToken.get(r.tokenHash), now);
    const tokenOwner = this.#byToken.get(r.tokenHash);
    if (tokenOwner !== undefined && tokenOwner !== r.id) throw this.#conflict('tokenHash', r.tokenHash);
    if (r.connectionId !== null) {
      this.#evictIfExpired(this.#byConnection.get(r.connectionId), now);
      const connOwner = this.#byConnection.get(r.connectionId);
      if (connOwner !== undefined && connOwner !== r.id) throw this.#conflict('connectionId', r.connectionId);
    }
  }

  #liveOfUser(userId: string, now: number): SessionRecord[] {
    const ids = this.#byUser.get(userId);
    const out: SessionRecord[] = [];
    if (ids === undefined) return out;
    for (const id of ids) {
      const r = this.#live(id, now);
      if (r !== null) out.push(r);
    }
    return out;
  }

  #matching(filter: SessionFilter): SessionRecord[] {
    const now = this.#clock.wallNow();
    const source = filter.userId !== undefined ? this.#liveOfUser(filter.userId, now) : this.#records.values();
    const out: SessionRecord[] = [];
    for (const r of source) {
      if (r.expiresAt <= now) continue;
      if (filter.state !== undefined && r.state !== filter.state) continue;
      out.push(r);
    }
    return out;
  }

  #insert(r: SessionRecord): void {
    this.#records.set(r.id, r);
    this.#byToken.set(r.tokenHash, r.id);
    if (r.connectionId !== null) this.#byConnection.set(r.connectionId, r.id);
    if (r.userId !== null) {
      let set = this.#byUser.get(r.userId);
      if (set === undefined) this.#byUser.set(r.userId, (set = new Set()));
      set.add(r.id);
    }
  }

  #remove(r: SessionRecord): void {
    this.#records.delete(r.id);
    if (this.#byToken.get(r.tokenHash) === r.id) this.#byToken.delete(r.tokenHash);
    if (r.connectionId !== null && this.#byConnection.get(r.connectionId) === r.id) this.#byConnection.delete(r.connectionId);
    if (r.userId !== null) {
      const set = this.#byUser.get(r.userId);
      set?.delete(r.id);
      if (set?.size === 0) this.#byUser.delete(r.userId);
    }
  }

  /** Drops expired records from memory. Not a change: saves never write expired records anyway. */
  #sweep(): number {
    const now = this.#clock.wallNow();
    let n = 0;
    for (const r of [...this.#records.values()]) {
      if (r.expiresAt <= now) {
        this.#remove(r);
        n++;
      }
    }
    return n;
  }

  #scheduleCleanup(): void {
    this.#cleanupTimer = this.#scheduler.setTimeout(
      () => {
        if (this.#status === 'closing' || this.#status === 'closed') return;
        this.#sweep();
        this.#scheduleCleanup();
      },
      this.#cleanupIntervalMs,
      { unref: true },
    );
  }

  /**
   * Journal mode: encodes the next change's record BEFORE the working set is
   * touched, so an oversize record is refused with nothing changed. Snapshot
   * mode: null.
   */
  #encode(op: JournalOp): Buffer | null {
    if (this.durability !== 'journal') return null;
    op.s = this.#seq + 1;
    return encodeJournalRecord(Buffer.from(JSON.stringify(op)), this.#maxRecordBytes);
  }

  /**
   * Records one change (already applied): gives it its sequence number and
   * schedules its save. `counts` is false for heartbeats, which wait for the
   * delay timer instead of counting toward `batchThreshold`.
   */
  #changed(bytes: Buffer | null, counts = true): void {
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
        this.#arm(this.#status === 'error' ? Math.max(this.#saveDelayMs, this.#fsyncIntervalMs) : this.#fsyncIntervalMs);
      }
      return;
    }
    // The batch counts changes no save covers yet: those made during a save in flight wait for the next batch.
    if (counts && this.#uncoveredBatch(Math.max(this.#durableSeq, this.#inFlightSeq)) >= this.#batchThreshold && this.#status !== 'error') {
      this.#wantSave = true;
      this.#kick();
    } else {
      this.#arm(this.#saveDelayMs);
    }
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
    return this.#journalBytes + this.#journalPendingBytes > this.#compactAfterBytes;
  }

  /** Starts the save timer unless one runs: the first unsaved change starts it, later ones never push it back. */
  #arm(ms: number): void {
    if (this.#timer !== null) return;
    this.#timer = this.#scheduler.setTimeout(() => {
      this.#timer = null;
      this.#wantSave = true;
      this.#kick();
    }, ms);
  }

  #waitFor(seq: number, force: boolean): Promise<void> {
    if (seq <= this.#durableSeq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      if (force) {
        this.#wantSave = true;
        this.#kick();
      }
    });
  }

  #whenIdle(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // ─── the I/O worker ──────────────────────────────────────────────────────

  /** Runs the next save, commit or compaction if none is running. */
  #kick(): void {
    if (this.#busy) return;
    let job: (() => Promise<unknown>) | null = null;
    if (this.durability === 'journal') {
      if (this.#wantCompact || (this.#wantSave && this.#journalOverThreshold())) job = () => this.#withRetries('compaction', () => this.#compactOnce());
      else if (this.#wantSave && this.#journalPending.length > 0) job = () => this.#withRetries('journal commit', () => this.#commitOnce());
    } else if (this.#wantSave && this.dirty) {
      job = () => this.#withRetries('snapshot save', () => this.#snapshotOnce());
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
      } else if (this.#closePromise === null && this.dirty) {
        this.#rearmAfterJob();
      }
      this.#kick();
    });
  }

  #rearmAfterJob(): void {
    if (this.#status === 'error') {
      this.#arm(Math.max(this.#saveDelayMs, this.#fsyncIntervalMs));
    } else if (this.durability === 'journal') {
      this.#arm(this.#fsyncIntervalMs);
    } else if (this.#uncoveredBatch(this.#durableSeq) >= this.#batchThreshold) {
      this.#wantSave = true;
    } else {
      this.#arm(this.#saveDelayMs);
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
    let delay = this.#retryDelayMs;
    for (let i = 0; ; i++) {
      try {
        await attempt();
        if (this.#status === 'error') {
          this.#status = this.#closePromise !== null ? 'closing' : 'open';
          this.#lastError = null;
          this.#notify('recovered');
        }
        this.#settleWaiters();
        return null;
      } catch (err) {
        this.#failedAttempts++;
        const e = ioError(`file store ${what} failed`, err, { file: this.path, attempts: i + 1 });
        if (i >= this.#retries) {
          this.#fail(e);
          return e;
        }
        await new Promise<void>((resolve) => this.#scheduler.setTimeout(resolve, delay));
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
    this.#notify('error', err);
  }

  /**
   * Calls the listeners of one of the store's events, each guarded: a
   * listener that throws or whose promise rejects neither stops the others
   * nor reaches the save that emitted the event (a listener's fault is not a
   * disk fault: the save stands). Its fault goes to the `error` event as
   * `NETLOOP_HANDLER_ERROR` (with the fault as `cause`); `error` without a
   * listener, and a failing `error` listener, are reported as a process
   * warning, never thrown.
   */
  #notify(name: 'save' | 'recovered' | 'error', arg?: unknown): void {
    // rawListeners keeps `once` wrappers, which remove themselves when called.
    const listeners = this.rawListeners(name) as Array<(...args: never[]) => unknown>;
    if (listeners.length === 0) {
      if (name === 'error') reportFault(this, `file store ${this.path}`, arg);
      return;
    }
    const args = arg === undefined ? [] : [arg];
    for (const fn of listeners) {
      callGuarded(fn, this, args, (err, rejected) => {
        const error = listenerError(`a file store '${name}' listener`, err, rejected, { event: name, file: this.path });
        if (name === 'error') reportFault(this, `file store ${this.path} error listener`, error, false);
        else this.#notify('error', error);
      });
    }
  }

  /** One atomic snapshot of the working set, at the current seq. */
  async #snapshotOnce(): Promise<void> {
    const seq = this.#seq;
    const { data, sessions } = this.#serialize(seq);
    this.#inFlightSeq = seq;
    try {
      await this.#atomicWrite(data);
    } catch (err) {
      this.#inFlightSeq = this.#durableSeq;
      throw err;
    }
    this.#snapshots++;
    if (seq > this.#durableSeq) this.#durableSeq = seq;
    this.#notify('save', { kind: 'snapshot', seq, bytes: data.length, sessions } satisfies FileStoreSaveInfo);
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
    this.#commits++;
    if (lastSeq > this.#durableSeq) this.#durableSeq = lastSeq;
    this.#notify('save', { kind: 'journal', seq: lastSeq, bytes: data.length, sessions: 0 } satisfies FileStoreSaveInfo);
  }

  /** Snapshot, then truncate the journal: records up to the snapshot's seq are no longer needed. */
  async #compactOnce(): Promise<void> {
    const seq = this.#seq;
    await this.#snapshotOnce();
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

  #serialize(seq: number): { data: Buffer; sessions: number } {
    const now = this.#clock.wallNow();
    const live: SessionRecord[] = [];
    for (const r of this.#records.values()) if (r.expiresAt > now) live.push(r);
    live.sort(compareAge);
    const head = JSON.stringify({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, seq, savedAt: now });
    // One session per line keeps the file readable and diffable.
    const body = live.map((r) => JSON.stringify(r)).join(',\n');
    const text = `${head.slice(0, -1)},"sessions":[${live.length > 0 ? `\n${body}\n` : ''}]}\n`;
    return { data: Buffer.from(text, 'utf8'), sessions: live.length };
  }

  /** Temp file in the same folder, fsync, rename over the target, fsync the folder. */
  async #atomicWrite(data: Buffer): Promise<void> {
    let h: FsFileHandle | null = null;
    try {
      h = await this.#fs.open(this.#tmpPath, 'w');
      await writeAll(h, data, 0);
      await h.sync();
      const closing = h;
      h = null;
      await closing.close();
      await this.#fs.rename(this.#tmpPath, this.path);
    } catch (err) {
      if (h !== null) await h.close().catch(noop);
      await this.#fs.unlink(this.#tmpPath).catch(noop);
      throw err;
    }
    await this.#syncDir();
  }

  /** fsync of the folder, so a rename or a new file survives a power loss. */
  async #syncDir(): Promise<void> {
    let h: FsFileHandle;
    try {
      h = await this.#fs.open(this.#dir, 'r');
    } catch (err) {
      // Platforms that cannot open a folder (Windows) have no folder fsync to do.
      if (syscallCode(err) === 'EISDIR' || syscallCode(err) === 'EPERM') return;
      throw err;
    }
    try {
      await h.sync();
    } catch (err) {
      const code = syscallCode(err);
      if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
    } finally {
      await h.close().catch(noop);
    }
  }

  // ─── loading ─────────────────────────────────────────────────────────────

  /** Runs `fn` with the store's retry policy at open time; failures become NETLOOP_STORE_IO. */
  async #retryAtOpen<T>(what: string, file: string, fn: () => Promise<T>): Promise<T> {
    let delay = this.#retryDelayMs;
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof NetloopError || i >= this.#retries) throw ioError(`file store could not ${what}`, err, { file, attempts: i + 1 });
        await new Promise<void>((resolve) => this.#scheduler.setTimeout(resolve, delay));
        delay *= 2;
      }
    }
  }

  /** Reads a file, or null if it does not exist. */
  async #readIfExists(file: string): Promise<Buffer | null> {
    return this.#retryAtOpen('read', file, async () => {
      try {
        return await this.#fs.readFile(file);
      } catch (err) {
        if (syscallCode(err) === 'ENOENT') return null;
        throw err;
      }
    });
  }

  async #load(): Promise<void> {
    await this.#retryAtOpen('create its folder', this.#dir, () => this.#fs.mkdir(this.#dir));
    const base = path.basename(this.path);
    const names = await this.#retryAtOpen('list its folder', this.#dir, () => this.#fs.readdir(this.#dir));
    for (const name of names) {
      // A temporary file is only ever complete once renamed; any left over is from an interrupted save.
      if (name === `${base}.tmp`) {
        await this.#retryAtOpen('remove a stale temporary file', path.join(this.#dir, name), async () => {
          try {
            await this.#fs.unlink(path.join(this.#dir, name));
          } catch (err) {
            if (syscallCode(err) !== 'ENOENT') throw err;
          }
        });
        this.loadReport.staleTempFilesRemoved.push(name);
      }
    }

    const snapshot = await this.#readIfExists(this.path);
    if (snapshot !== null) await this.#loadSnapshot(snapshot);
    let replayed = 0;
    const journal = await this.#readIfExists(this.journalPath);
    if (journal !== null) replayed = this.#replayJournal(journal);
    this.loadReport.journalRecordsReplayed = replayed;
    this.loadReport.expiredDropped += this.#sweep();
    this.loadReport.sessions = this.#records.size;
    this.#durableSeq = this.#seq;

    // Anything in the journal (records or a tail) is folded into a fresh snapshot, so the
    // journal can start empty: a torn tail must never sit in front of new appends.
    const journalHasContent = journal !== null && journal.length > 0;
    if (replayed > 0 || journalHasContent) {
      await this.#retryAtOpen('compact the journal', this.path, () => this.#snapshotOnce());
    }
    if (this.durability === 'journal') {
      this.#journal = await this.#retryAtOpen('open the journal', this.journalPath, () => this.#fs.open(this.journalPath, 'w'));
      await this.#retryAtOpen('sync the journal', this.journalPath, async () => {
        await this.#journal!.sync();
        await this.#syncDir();
      });
    } else if (journal !== null) {
      await this.#retryAtOpen('remove the journal', this.journalPath, async () => {
        await this.#fs.unlink(this.journalPath);
        await this.#syncDir();
      });
    }
  }

  async #loadSnapshot(data: Buffer): Promise<void> {
    let why: string | null = null;
    let sessions: unknown[] = [];
    let seq = 0;
    try {
      const doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as Record<string, unknown>;
      if (typeof doc !== 'object' || doc === null || doc.format !== SNAPSHOT_FORMAT) why = 'not a netloop sessions file';
      else if (doc.version !== SNAPSHOT_VERSION) why = `unsupported version ${String(doc.version)}`;
      else if (!Number.isSafeInteger(doc.seq) || (doc.seq as number) < 0) why = 'bad seq';
      else if (!Array.isArray(doc.sessions)) why = 'sessions is not an array';
      else {
        sessions = doc.sessions;
        seq = doc.seq as number;
      }
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    for (let i = 0; why === null && i < sessions.length; i++) {
      const bad = validateSessionRecord(sessions[i]);
      const r = sessions[i] as SessionRecord;
      if (bad !== null) why = `session ${i}: ${bad}`;
      else if (this.#records.has(r.id) || this.#byToken.has(r.tokenHash)) why = `session ${i}: duplicate id or tokenHash`;
      else this.#insert(normalise(r));
    }
    if (why !== null) {
      this.#records.clear();
      this.#byToken.clear();
      this.#byConnection.clear();
      this.#byUser.clear();
      throw await this.#setAside(why);
    }
    this.#seq = seq;
  }

  /** Renames a corrupt snapshot aside and builds the error that names both files. */
  async #setAside(why: string): Promise<NetloopError> {
    const stamp = new Date(this.#clock.wallNow()).toISOString().replace(/[:.]/g, '-');
    const movedTo = `${this.path}.corrupt-${stamp}`;
    try {
      await this.#fs.rename(this.path, movedTo);
      await this.#syncDir();
    } catch (err) {
      return new NetloopError(ErrorCode.STORE_CORRUPT, `session file ${this.path} is corrupt (${why}) and could not be moved aside`, {
        cause: err,
        details: { file: this.path, reason: why, syscallCode: syscallCode(err) },
      });
    }
    return new NetloopError(ErrorCode.STORE_CORRUPT, `session file ${this.path} is corrupt (${why}); kept aside as ${movedTo}`, {
      details: { file: this.path, movedTo, reason: why },
    });
  }

  /** Applies the journal's records newer than the snapshot; returns how many were applied. */
  #replayJournal(data: Buffer): number {
    const decoder = new JournalDecoder(this.#maxRecordBytes);
    const corrupt = (offset: number, why: string, cause?: unknown): NetloopError =>
      new NetloopError(ErrorCode.JOURNAL_CORRUPT, `journal ${this.journalPath} corrupt at offset ${offset}: ${why}`, {
        cause,
        details: { file: this.journalPath, offset },
      });
    let records;
    try {
      records = decoder.push(data);
    } catch (err) {
      const e = err as NetloopError;
      throw corrupt(Number(e.details?.offset ?? 0), e.message, err);
    }
    const end = decoder.end();
    this.loadReport.journalTail = end.tail;
    let applied = 0;
    for (const rec of records) {
      let op: JournalOp;
      try {
        op = JSON.parse(rec.payload.toString('utf8')) as JournalOp;
      } catch (err) {
        throw corrupt(rec.offset, 'record is not JSON', err);
      }
      if (typeof op !== 'object' || op === null || !Number.isSafeInteger(op.s)) throw corrupt(rec.offset, 'record has no sequence number');
      if (op.s <= this.#seq) continue; // already in the snapshot (a crash between snapshot and truncation)
      if (op.s !== this.#seq + 1) throw corrupt(rec.offset, `sequence gap: expected ${this.#seq + 1}, found ${op.s}`);
      const bad = this.#apply(op);
      if (bad !== null) throw corrupt(rec.offset, bad);
      this.#seq = op.s;
      applied++;
    }
    return applied;
  }

  /** Applies one journal operation to the working set; returns a reason if it is malformed. */
  #apply(op: JournalOp): string | null {
    switch (op.o) {
      case 'c':
      case 'p': {
        const bad = validateSessionRecord(op.r);
        if (bad !== null) return bad;
        const old = this.#records.get(op.r.id);
        if (old !== undefined) this.#remove(old);
        const holder = this.#byToken.get(op.r.tokenHash);
        if (holder !== undefined) this.#remove(this.#records.get(holder)!);
        this.#insert(normalise(op.r));
        return null;
      }
      case 't': {
        if (typeof op.i !== 'string' || !isNum(op.e) || !isNum(op.l)) return 'bad touch record';
        const r = this.#records.get(op.i);
        if (r !== undefined) {
          r.expiresAt = op.e;
          r.lastActiveAt = op.l;
        }
        return null;
      }
      case 'd': {
        if (typeof op.i !== 'string') return 'bad delete record';
        const r = this.#records.get(op.i);
        if (r !== undefined) this.#remove(r);
        return null;
      }
      case 'x':
        this.#records.clear();
        this.#byToken.clear();
        this.#byConnection.clear();
        this.#byUser.clear();
        return null;
      default:
        return `unknown operation ${JSON.stringify((op as { o: unknown }).o)}`;
    }
  }
}

/** Shorthand for {@link FileStore.open}. */
export function openFileStore(options: FileStoreOptions): Promise<FileStore> {
  return FileStore.open(options);
}
