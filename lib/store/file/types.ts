/**
 * The public types of the file store: its options, status, load report,
 * counters and events.
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import type { NetloopError } from '../../core/errors.js';
import type { FsFacade } from './fs-facade.js';
import type { JournalTail } from './journal.js';
import type { StoreScheduler } from './scheduler.js';

/** How changes reach the disk; see the file store's module documentation for the loss bound of each. */
export type FileStoreDurability = 'snapshot' | 'journal';

/** Options of `FileStore.open`. Every limit has a finite default and is validated. */
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
  /** Largest page `FileStore.list` returns, and its page when given no `limit` (default 1000; 1 to 1 000 000). */
  maxListLimit?: number;
  /** Time source: `wallNow()` decides expiry and stamps files (default `systemClock`). */
  clock?: Clock;
  /** Timer seam (default `systemScheduler`). */
  scheduler?: StoreScheduler;
  /** File-system seam (default `realFs`). */
  fs?: FsFacade;
}

/** `open` normally; `error` after a save failed all its retries (until one succeeds); `closed` after close. */
export type FileStoreStatus = 'open' | 'error' | 'closing' | 'closed';

/** What `FileStore.open` found on disk. */
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

/** Counters for observability; see `FileStore.stats`. */
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

/**
 * The events of a file store. Every listener is called guarded: none can
 * fail a save, stop the other listeners, or crash the process.
 */
export interface FileStoreEvents {
  /** After each durable snapshot or group commit. */
  save: (info: FileStoreSaveInfo) => void;
  /**
   * `NETLOOP_STORE_IO` when a save fails all its retries and the store enters
   * its error state; `NETLOOP_HANDLER_ERROR` when a listener of `save` or
   * `recovered` threw or rejected (`cause` is the fault, `details.event` the
   * event; the save stands). Without a listener, an error is reported as a
   * process warning (`NetloopWarning`), never thrown: the state is also
   * visible in `status`, `ping()` and rejected `flush()` calls.
   */
  error: (err: NetloopError) => void;
  /** The first successful save after the error state. */
  recovered: () => void;
}
