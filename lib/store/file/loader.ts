/**
 * What the file store does at open, before it serves anything: tidy its
 * folder, load the snapshot, replay the journal, drop what expired.
 *
 * ```
 *   mkdir -p folder ── remove a stale <file>.tmp (an interrupted save)
 *     └─ read <file> ──decodeSnapshot──validate each──▶ working set   (corrupt: renamed
 *          └─ read <file>.journal ──replayJournal──▶ working set        aside, STORE_CORRUPT)
 *               └─ sweep the expired ──▶ { seq, compact }
 * ```
 *
 * Every disk call is retried with the store's policy (`retries`, doubling
 * `retryDelayMs`); what still fails is `NETLOOP_STORE_IO`.
 *
 * @module
 */

import * as path from 'node:path';
import type { Clock } from '../../core/clock.js';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionRecord } from '../contract.js';
import { copySessionRecord, validateSessionRecord } from '../record.js';
import { ioError, syncDir, syscallCode } from './disk.js';
import type { FsFacade } from './fs-facade.js';
import { replayJournal } from './replay.js';
import type { StoreScheduler } from './scheduler.js';
import { decodeSnapshot } from './snapshot.js';
import type { FileStoreLoadReport } from './types.js';
import type { WorkingSet } from './working-set.js';

/** What loading needs of the store. */
export interface DiskContext {
  readonly fs: FsFacade;
  readonly clock: Clock;
  readonly scheduler: StoreScheduler;
  /** The snapshot file, its journal and its folder. */
  readonly path: string;
  readonly journalPath: string;
  readonly dir: string;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly maxRecordBytes: number;
}

/** Runs `fn` with the store's retry policy at open time; failures become `NETLOOP_STORE_IO`. */
export async function retryAtOpen<T>(ctx: DiskContext, what: string, file: string, fn: () => Promise<T>): Promise<T> {
  let delay = ctx.retryDelayMs;
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof NetloopError || i >= ctx.retries) throw ioError(`file store could not ${what}`, err, { file, attempts: i + 1 });
      await new Promise<void>((resolve) => ctx.scheduler.setTimeout(resolve, delay));
      delay *= 2;
    }
  }
}

/** Reads a file, or null if it does not exist. */
function readIfExists(ctx: DiskContext, file: string): Promise<Buffer | null> {
  return retryAtOpen(ctx, 'read', file, async () => {
    try {
      return await ctx.fs.readFile(file);
    } catch (err) {
      if (syscallCode(err) === 'ENOENT') return null;
      throw err;
    }
  });
}

/** What {@link loadFromDisk} found. */
export interface Loaded {
  /** The sequence number of the last change loaded. */
  seq: number;
  /** True when a journal file was found (snapshot mode removes it). */
  journalFound: boolean;
  /**
   * True when the journal held anything (records or a tail): it must be
   * folded into a fresh snapshot before new appends, so that a torn tail
   * never sits in front of them.
   */
  compact: boolean;
}

/**
 * Fills the (empty) working set from the disk and fills in `report`; see
 * the module documentation. Rejects with `NETLOOP_STORE_CORRUPT` (the
 * snapshot renamed aside), `NETLOOP_JOURNAL_CORRUPT` or `NETLOOP_STORE_IO`.
 */
export async function loadFromDisk(ctx: DiskContext, ws: WorkingSet, report: FileStoreLoadReport): Promise<Loaded> {
  await retryAtOpen(ctx, 'create its folder', ctx.dir, () => ctx.fs.mkdir(ctx.dir));
  const base = path.basename(ctx.path);
  const names = await retryAtOpen(ctx, 'list its folder', ctx.dir, () => ctx.fs.readdir(ctx.dir));
  for (const name of names) {
    // A temporary file is only ever complete once renamed; any left over is from an interrupted save.
    if (name === `${base}.tmp`) {
      await retryAtOpen(ctx, 'remove a stale temporary file', path.join(ctx.dir, name), async () => {
        try {
          await ctx.fs.unlink(path.join(ctx.dir, name));
        } catch (err) {
          if (syscallCode(err) !== 'ENOENT') throw err;
        }
      });
      report.staleTempFilesRemoved.push(name);
    }
  }

  let seq = 0;
  const snapshot = await readIfExists(ctx, ctx.path);
  if (snapshot !== null) seq = await loadSnapshot(ctx, ws, snapshot);
  let replayed = 0;
  const journal = await readIfExists(ctx, ctx.journalPath);
  if (journal !== null) {
    const replay = replayJournal(journal, ws, seq, ctx.maxRecordBytes, ctx.journalPath);
    report.journalTail = replay.tail;
    seq = replay.seq;
    replayed = replay.applied;
  }
  report.journalRecordsReplayed = replayed;
  report.expiredDropped += ws.sweep(ctx.clock.wallNow());
  report.sessions = ws.size;
  return { seq, journalFound: journal !== null, compact: replayed > 0 || (journal !== null && journal.length > 0) };
}

/** Loads a snapshot's sessions into the working set; returns its `seq`. A corrupt snapshot is renamed aside. */
async function loadSnapshot(ctx: DiskContext, ws: WorkingSet, data: Buffer): Promise<number> {
  const doc = decodeSnapshot(data);
  if ('why' in doc) throw await setAside(ctx, doc.why);
  let why: string | null = null;
  for (let i = 0; why === null && i < doc.sessions.length; i++) {
    const bad = validateSessionRecord(doc.sessions[i]);
    const r = doc.sessions[i] as SessionRecord;
    if (bad !== null) why = `session ${i}: ${bad}`;
    else if (ws.held(r.id) !== undefined || ws.tokenHolder(r.tokenHash) !== undefined) why = `session ${i}: duplicate id or tokenHash`;
    else ws.insert(copySessionRecord(r));
  }
  if (why !== null) {
    ws.clear();
    throw await setAside(ctx, why);
  }
  return doc.seq;
}

/** Renames a corrupt snapshot aside and builds the error that names both files. */
async function setAside(ctx: DiskContext, why: string): Promise<NetloopError> {
  const stamp = new Date(ctx.clock.wallNow()).toISOString().replace(/[:.]/g, '-');
  const movedTo = `${ctx.path}.corrupt-${stamp}`;
  try {
    await ctx.fs.rename(ctx.path, movedTo);
    await syncDir(ctx.fs, ctx.dir);
  } catch (err) {
    return new NetloopError(ErrorCode.STORE_CORRUPT, `session file ${ctx.path} is corrupt (${why}) and could not be moved aside`, {
      cause: err,
      details: { file: ctx.path, reason: why, syscallCode: syscallCode(err) },
    });
  }
  return new NetloopError(ErrorCode.STORE_CORRUPT, `session file ${ctx.path} is corrupt (${why}); kept aside as ${movedTo}`, {
    details: { file: ctx.path, movedTo, reason: why },
  });
}
