import { suite } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManualClock } from '../../../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../../../lib/core/errors.js';
import type { NetloopError } from '../../../../lib/core/errors.js';
import { FileStore, openFileStore } from '../../../../lib/store/file/file-store.js';
import type { FileStoreEvents, FileStoreOptions } from '../../../../lib/store/file/file-store.js';
import { encodeJournalRecord } from '../../../../lib/store/file/journal.js';
import type { SessionRecord } from '../../../../lib/store/contract.js';
import { FaultyFs } from '../../../../lib/testing/faulty-fs.js';
import { ManualScheduler } from '../../../../lib/testing/manual-scheduler.js';
import { makeRecord } from '../../../../lib/testing/store-conformance.js';
import { until } from '../../../helpers/net.js';
import { crashCampaign } from '../../../helpers/file-store-crash.js';
import { watchProcessFaults } from '../../../helpers/process-faults.js';

const dirs: string[] = [];
async function tmpDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  dirs.push(d);
  return d;
}
async function removeDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
}

async function rejection(p: Promise<unknown>): Promise<NetloopError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isNetloopError(err), `expected a NetloopError, got ${String(err)}`);
    return err as NetloopError;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

/** Resolves with the arguments of the store's next `name` event. */
function nextEvent<K extends keyof FileStoreEvents>(store: FileStore, name: K): Promise<Parameters<FileStoreEvents[K]>> {
  return new Promise((resolve) => store.once(name, ((...args: Parameters<FileStoreEvents[K]>) => resolve(args)) as FileStoreEvents[K]));
}

async function readSnapshot(file: string): Promise<{ seq: number; sessions: SessionRecord[] }> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as { seq: number; sessions: SessionRecord[] };
}

/** A store in virtual time: nothing is saved unless the test advances the scheduler, a batch fills, or it flushes. */
async function virtualStore(extra: Partial<FileStoreOptions> = {}): Promise<{ store: FileStore; sched: ManualScheduler; clock: ManualClock; ffs: FaultyFs; file: string; dir: string }> {
  const dir = await tmpDir();
  const file = path.join(dir, 'sessions.json');
  const sched = new ManualScheduler();
  const ffs = new FaultyFs();
  const store = await FileStore.open({ path: file, clock: sched.clock, scheduler: sched, fs: ffs, ...extra });
  return { store, sched, clock: sched.clock, ffs, file, dir };
}

/**
 * Runs due virtual timers (the retry backoff) while real I/O completes, until
 * `done()`; fails clearly after a bounded real-time deadline.
 */
async function drive(s: ManualScheduler, done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) assert.unreachable(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
    s.advance(0);
  }
}

const tmpOpens = (ffs: FaultyFs): number => ffs.log.filter((l) => l === 'open sessions.json.tmp').length;

// ─── snapshot mode: scheduling ───────────────────────────────────────────────

const sched = suite('file store: delayed and batched saves');
sched.after.each(removeDirs);

sched('a change is saved after saveDelayMs, not before; later changes do not push the save back', async () => {
  const { store, sched: s, ffs, file } = await virtualStore();
  const a = makeRecord(s.clock);
  await store.create(a);
  assert.is(store.dirty, true);
  assert.is(store.pendingChanges, 1);
  s.advance(3000);
  await store.create(makeRecord(s.clock));
  await store.touch(a.id, s.clock.wallNow() + 60_000, s.clock.wallNow());
  s.advance(1999);
  assert.is(tmpOpens(ffs), 0, 'nothing written before the delay');
  const saved = nextEvent(store, 'save');
  s.advance(1);
  const [info] = (await saved) as [{ kind: string; sessions: number; seq: number }];
  assert.is(info.kind, 'snapshot');
  assert.is(info.sessions, 2);
  assert.is(info.seq, 3);
  assert.is(tmpOpens(ffs), 1);
  assert.is(store.dirty, false);
  assert.is(store.pendingChanges, 0);
  const disk = await readSnapshot(file);
  assert.is(disk.sessions.length, 2);
  assert.is(disk.seq, 3);
  await store.close();
});

sched('heartbeats never trigger a batch save: 50 touches wait for the delay timer, then one save', async () => {
  const { store, sched: s, ffs, file } = await virtualStore();
  const a = makeRecord(s.clock);
  await store.create(a);
  for (let i = 1; i <= 50; i++) await store.touch(a.id, s.clock.wallNow() + 60_000 + i, s.clock.wallNow());
  assert.is(store.pendingChanges, 51);
  assert.is(tmpOpens(ffs), 0, 'touches alone never reach the batch threshold');
  // A real change still counts toward the batch on its own terms (1 of 10 here).
  await store.create(makeRecord(s.clock));
  assert.is(tmpOpens(ffs), 0);
  const saved = nextEvent(store, 'save');
  s.advance(5000);
  await saved;
  assert.is(tmpOpens(ffs), 1);
  const disk = await readSnapshot(file);
  const rec = disk.sessions.find((r) => r.id === a.id);
  assert.is(rec?.expiresAt, a.createdAt + 60_000 + 50, 'the last heartbeat was saved');
  await store.close();
});

sched('the 10th pending change saves at once; 100 changes in a burst cost at most 10 saves', async () => {
  const { store, sched: s, ffs, file } = await virtualStore();
  for (let i = 0; i < 9; i++) await store.create(makeRecord(s.clock));
  assert.is(tmpOpens(ffs), 0);
  const saved = nextEvent(store, 'save');
  await store.create(makeRecord(s.clock));
  assert.is(tmpOpens(ffs), 1, 'the threshold started a save without any timer');
  await saved;
  for (let i = 0; i < 90; i++) await store.create(makeRecord(s.clock));
  await store.flush();
  assert.ok(tmpOpens(ffs) <= 10, `saves: ${tmpOpens(ffs)}`);
  assert.is((await readSnapshot(file)).sessions.length, 100);
  assert.is(store.stats().snapshots, tmpOpens(ffs));
  await store.close();
});

sched('one save at a time: changes during a save wait for the next one', async () => {
  const { store, sched: s, ffs, file } = await virtualStore();
  const gate = ffs.gate('sync', (f) => f.endsWith('.tmp'));
  for (let i = 0; i < 10; i++) await store.create(makeRecord(s.clock));
  await gate.reached;
  for (let i = 0; i < 25; i++) await store.create(makeRecord(s.clock));
  const flushed = store.flush();
  s.advance(10_000); // timers may fire; still no second save while the first holds
  assert.is(tmpOpens(ffs), 1, 'no concurrent save');
  assert.is(store.pendingChanges, 35);
  gate.release();
  await flushed;
  assert.is(tmpOpens(ffs), 2);
  assert.is(store.pendingChanges, 0);
  assert.is((await readSnapshot(file)).sessions.length, 35);
  await store.close();
});

sched('flush forces a save; a clean flush writes nothing; close flushes and is idempotent', async () => {
  const { store, sched: s, ffs, file } = await virtualStore();
  await store.flush();
  assert.is(tmpOpens(ffs), 0, 'nothing to save');
  const r = makeRecord(s.clock);
  await store.create(r);
  await store.flush();
  assert.is(tmpOpens(ffs), 1);
  await store.flush();
  assert.is(tmpOpens(ffs), 1);
  await store.delete(r.id);
  const durable = store.durable();
  await store.close();
  await durable;
  await store.close();
  assert.is(store.status, 'closed');
  assert.is((await readSnapshot(file)).sessions.length, 0, 'the delete reached the disk on close');
  assert.is((await rejection(store.flush())).code, ErrorCode.STORE_CLOSED);
  assert.is((await rejection(store.durable())).code, ErrorCode.STORE_CLOSED);
  assert.is(s.pending, 0, 'close cancelled every timer');
});

sched('durable() waits for the scheduled save without forcing it', async () => {
  const { store, sched: s, ffs } = await virtualStore();
  await store.create(makeRecord(s.clock));
  let done = false;
  const p = store.durable().then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  assert.is(done, false);
  assert.is(tmpOpens(ffs), 0);
  s.advance(5000);
  await p;
  assert.is(tmpOpens(ffs), 1);
  await store.durable(); // nothing pending: resolves at once
  await store.close();
});

sched('data survives a reopen; indexes are rebuilt', async () => {
  const { store, sched: s, file } = await virtualStore();
  const a = makeRecord(s.clock, { userId: 'ann', connectionId: 'c-a', metadata: { room: 'x' } });
  const b = makeRecord(s.clock, { userId: 'ann', connectionId: null });
  await store.create(a);
  await store.create(b);
  await store.close();
  const again = await openFileStore({ path: file, clock: s.clock, scheduler: s });
  assert.equal(await again.get(a.id), a);
  assert.equal(await again.getByConnection('c-a'), a);
  assert.equal(await again.getByTokenHash(b.tokenHash), b);
  assert.equal((await again.getByUser('ann')).map((r) => r.id), [a.id, b.id]);
  assert.is(again.loadReport.sessions, 2);
  await again.close();
});

sched('expired sessions are dropped on load and swept from memory periodically', async () => {
  const { store, sched: s, file } = await virtualStore({ cleanupIntervalMs: 60_000 });
  const short = makeRecord(s.clock, { expiresAt: s.clock.wallNow() + 1000, ttl: 1000 });
  const long = makeRecord(s.clock);
  await store.create(short);
  await store.create(long);
  await store.close();
  s.clock.advance(5000);
  const again = await FileStore.open({ path: file, clock: s.clock, scheduler: s, cleanupIntervalMs: 60_000 });
  assert.is(again.loadReport.expiredDropped, 1);
  assert.is(again.loadReport.sessions, 1);
  assert.is(await again.get(short.id), null);
  assert.ok((await again.get(long.id)) !== null);
  assert.is(again.stats().memoryRecords, 1);
  // The sweep drops a record that expired in memory; it is not a change to save.
  await again.touch(long.id, s.clock.wallNow() + 10, s.clock.wallNow());
  await again.flush();
  s.advance(60_000);
  assert.is(again.stats().memoryRecords, 0);
  assert.is(again.pendingChanges, 0);
  const fresh = makeRecord(s.clock);
  await again.create(fresh);
  await again.close();
  assert.equal((await readSnapshot(file)).sessions.map((r) => r.id), [fresh.id], 'expired records are never written');
});

sched('conflicting ids, token hashes and connections are refused with NETLOOP_INVALID_VALUE', async () => {
  const { store, sched: s } = await virtualStore();
  const a = makeRecord(s.clock, { connectionId: 'c-1' });
  await store.create(a);
  const b = makeRecord(s.clock);
  for (const [bad, field] of [
    [{ ...b, id: a.id }, 'id'],
    [{ ...b, tokenHash: a.tokenHash }, 'tokenHash'],
    [{ ...b, connectionId: 'c-1' }, 'connectionId'],
  ] as const) {
    const err = await rejection(store.create(bad));
    assert.is(err.code, ErrorCode.INVALID_VALUE);
    assert.is(err.details.field, field);
    assert.ok(!err.message.includes(a.tokenHash), 'never echoes a token hash');
  }
  await store.create(b);
  assert.is((await rejection(store.set({ ...b, connectionId: 'c-1' }))).code, ErrorCode.INVALID_VALUE);
  assert.equal(await store.get(b.id), b, 'a refused set changes nothing');
  assert.is(store.pendingChanges, 2);
  await store.close();
});

sched('options are validated at open', async () => {
  const dir = await tmpDir();
  const file = path.join(dir, 's.json');
  for (const bad of [
    { saveDelayMs: -1 },
    { batchThreshold: 0 },
    { fsyncIntervalMs: Number.NaN },
    { retries: 1.5 },
    { maxListLimit: 0 },
    { durability: 'fast' as unknown as 'journal' },
    { path: '' },
  ]) {
    const err = await rejection(FileStore.open({ path: file, ...bad }));
    assert.is(err.code, ErrorCode.INVALID_OPTION, JSON.stringify(bad));
  }
});

sched.run();

// ─── snapshot mode: atomic saves, corruption, disk faults ────────────────────

const disk = suite('file store: atomic saves and disk faults');
disk.after.each(removeDirs);

disk('a save is temp file, fsync, close, rename, fsync of the folder, in that order', async () => {
  const { store, sched: s, ffs, dir } = await virtualStore();
  await store.create(makeRecord(s.clock));
  ffs.log.length = 0;
  await store.flush();
  const base = path.basename(dir);
  assert.equal(ffs.log, [
    'open sessions.json.tmp',
    'write sessions.json.tmp',
    'sync sessions.json.tmp',
    'close sessions.json.tmp',
    'rename sessions.json.tmp',
    `open ${base}`,
    `sync ${base}`,
    `close ${base}`,
  ]);
  await store.close();
});

disk('a stale temporary file is ignored and removed at open', async () => {
  const { store, sched: s, file, dir } = await virtualStore();
  const a = makeRecord(s.clock);
  await store.create(a);
  await store.close();
  await fs.writeFile(`${file}.tmp`, '{"format":"netloop-sessions","version":1,"seq":99,"sessions":[{"torn');
  const again = await FileStore.open({ path: file, clock: s.clock, scheduler: s });
  assert.equal(again.loadReport.staleTempFilesRemoved, ['sessions.json.tmp']);
  assert.equal(await again.get(a.id), a, 'the real file wins');
  assert.equal((await fs.readdir(dir)).sort(), ['sessions.json']);
  await again.close();
});

disk('a corrupt file is NETLOOP_STORE_CORRUPT naming the file, kept aside, never silently emptied', async () => {
  const dir = await tmpDir();
  const file = path.join(dir, 'sessions.json');
  const clock = new ManualClock();
  const bad = [
    '{"format":"netloop-sessions","version":1,"seq":3,"sessions":[{"id":',
    '{"something":"else"}',
    '{"format":"netloop-sessions","version":9,"seq":0,"sessions":[]}',
    JSON.stringify({ format: 'netloop-sessions', version: 1, seq: 1, sessions: [{ ...makeRecord(clock), state: 'DANCING' }] }),
    Buffer.from([0xff, 0xfe, 0x00]),
  ];
  for (const content of bad) {
    await fs.writeFile(file, content);
    const err = await rejection(FileStore.open({ path: file, clock }));
    assert.is(err.code, ErrorCode.STORE_CORRUPT);
    assert.is(err.details.file, file);
    const movedTo = String(err.details.movedTo);
    assert.ok(movedTo.startsWith(`${file}.corrupt-`), movedTo);
    assert.ok(err.message.includes(file));
    assert.equal(await fs.readFile(movedTo), Buffer.from(content), 'kept aside byte for byte');
    assert.is(await fs.access(file).then(() => true, () => false), false, 'the original name is free');
    await fs.rm(movedTo);
  }
  // Once the operator has seen the error, the next open starts empty, explicitly.
  const fresh = await FileStore.open({ path: file, clock });
  assert.is(await fresh.count(), 0);
  await fresh.close();
});

disk('a read error at open is NETLOOP_STORE_IO after bounded retries; the file is left alone', async () => {
  const { store, sched: s, file } = await virtualStore();
  await store.create(makeRecord(s.clock));
  await store.close();
  const before = await fs.readFile(file);
  const ffs = new FaultyFs();
  ffs.fail('readFile', 'EIO', { times: Infinity, match: (f) => f === file });
  const err = await rejection(FileStore.open({ path: file, fs: ffs, retries: 2, retryDelayMs: 0 }));
  assert.is(err.code, ErrorCode.STORE_IO);
  assert.is(err.details.syscallCode, 'EIO');
  assert.is(err.details.file, file);
  assert.is(ffs.counts.readFile, 3);
  assert.equal(await fs.readFile(file), before);
});

for (const [step, code] of [['write', 'ENOSPC'], ['sync', 'EIO'], ['rename', 'EIO']] as const) {
  disk(`${code} on ${step}: bounded retries, then the error state; the old file is intact and nothing is reported saved`, async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'sessions.json');
    const clock = new ManualClock();
    const ffs = new FaultyFs();
    const store = await FileStore.open({ path: file, clock, fs: ffs, retries: 2, retryDelayMs: 1, saveDelayMs: 3_600_000 });
    const a = makeRecord(clock);
    await store.create(a);
    await store.flush();
    const before = await fs.readFile(file);
    ffs.fail(step, code, { times: Infinity, match: (f) => f.endsWith('.tmp'), partial: 0.5 });
    const errors: NetloopError[] = [];
    store.on('error', (e: NetloopError) => errors.push(e));
    let saves = 0;
    store.on('save', () => saves++);
    const b = makeRecord(clock);
    await store.create(b);
    const callsBefore = ffs.counts[step];
    const err = await rejection(store.flush());
    assert.is(err.code, ErrorCode.STORE_IO);
    assert.is(err.details.syscallCode, code);
    assert.is(err.details.file, file);
    assert.is(ffs.counts[step] - callsBefore, 3, 'one attempt and two retries');
    assert.is(store.status, 'error');
    assert.is(store.lastError, err);
    assert.equal(errors, [err]);
    assert.is(saves, 0, 'no save reported');
    assert.is(store.pendingChanges, 1, 'the change is still pending');
    assert.is(store.dirty, true);
    assert.equal(await fs.readFile(file), before, 'the old file is intact');
    assert.equal((await fs.readdir(dir)).sort(), ['sessions.json'], 'the temp file was cleaned up');
    assert.equal(await store.get(b.id), b, 'the working set still serves');
    // Subsequent flushes keep failing while the disk does.
    assert.is((await rejection(store.flush())).details.syscallCode, code);
    // When the disk recovers, a flush succeeds and the error state clears.
    ffs.heal();
    const recovered = nextEvent(store, 'recovered');
    await store.flush();
    await recovered;
    assert.is(store.status, 'open');
    assert.is(store.lastError, null);
    assert.is((await readSnapshot(file)).sessions.length, 2);
    await store.close();
  });
}

disk('ping: resolves while saves succeed, rejects with the failed save\'s NETLOOP_STORE_IO in the error state, resolves after recovery, NETLOOP_STORE_CLOSED once closed', async () => {
  const { store, sched: s, ffs } = await virtualStore({ retries: 0 });
  store.on('error', () => undefined);
  await store.ping();
  await store.create(makeRecord(s.clock));
  ffs.fail('write', 'ENOSPC', { times: Infinity, match: (f) => f.endsWith('.tmp') });
  await rejection(store.flush());
  assert.is(store.status, 'error');
  const err = await rejection(store.ping());
  assert.is(err.code, ErrorCode.STORE_IO);
  assert.is(err.details.syscallCode, 'ENOSPC');
  ffs.heal();
  await store.flush();
  await store.ping();
  await store.close();
  assert.is((await rejection(store.ping())).code, ErrorCode.STORE_CLOSED);
});

disk("a 'save' or 'recovered' listener that throws or rejects fails no save: the save stands, the fault is an 'error' (NETLOOP_HANDLER_ERROR); a failing 'error' listener, or none, is a warning", async () => {
  const faults = watchProcessFaults();
  const { store, sched: s, ffs } = await virtualStore({ retries: 0 });
  try {
    store.on('save', () => {
      throw new Error('save listener failed');
    });
    store.on('save', async () => {
      throw new Error('async save listener failed');
    });
    let saves = 0;
    store.on('save', () => void saves++);
    const errors: NetloopError[] = [];
    const onError = (e: NetloopError): void => void errors.push(e);
    store.on('error', onError);
    await store.create(makeRecord(s.clock));
    await store.flush();
    assert.is(store.status, 'open', 'a listener fault is not a disk fault');
    assert.is(store.pendingChanges, 0, 'the save stands');
    assert.is(store.stats().failedAttempts, 0);
    assert.is(saves, 1, 'the other listeners ran');
    await until(() => errors.length === 2, 'both faults on error');
    for (const e of errors) {
      assert.is(e.code, ErrorCode.HANDLER_ERROR);
      assert.is(e.details.event, 'save');
    }
    assert.equal(errors.map((e) => (e.cause as Error).message).sort(), ['async save listener failed', 'save listener failed']);
    // 'recovered' after the error state, with a listener that throws.
    store.on('recovered', () => {
      throw new Error('recovered listener failed');
    });
    ffs.fail('write', 'EIO', { times: 1, match: (f) => f.endsWith('.tmp') });
    await store.create(makeRecord(s.clock));
    await rejection(store.flush());
    await store.flush();
    assert.is(store.status, 'open');
    await until(() => errors.some((e) => e.details.event === 'recovered'), "the 'recovered' fault");
    // Without an 'error' listener: a warning (the save fault and the listener faults alike).
    store.off('error', onError);
    await store.create(makeRecord(s.clock));
    await store.flush();
    await faults.warning(ErrorCode.HANDLER_ERROR, /save listener failed/);
    store.on('error', () => {
      throw new Error('error listener failed');
    });
    await store.create(makeRecord(s.clock));
    await store.flush();
    await faults.warning(ErrorCode.HANDLER_ERROR, /error listener failed/);
    faults.assertClean();
  } finally {
    faults.stop();
    await store.close();
  }
});

disk('a failed folder fsync is a failed save, even though the rename happened', async () => {
  const { store, sched: s, ffs, dir } = await virtualStore({ retries: 0 });
  await store.create(makeRecord(s.clock));
  ffs.fail('sync', 'EIO', { match: (f) => f === dir });
  const err = await rejection(store.flush());
  assert.is(err.details.syscallCode, 'EIO');
  assert.is(store.pendingChanges, 1, 'not reported durable');
  await store.flush();
  assert.is(store.pendingChanges, 0);
  await store.close();
});

disk('transient faults within the retry budget are invisible, apart from the counter', async () => {
  const dir = await tmpDir();
  const ffs = new FaultyFs();
  const store = await FileStore.open({ path: path.join(dir, 's.json'), fs: ffs, retries: 3, retryDelayMs: 1 });
  ffs.fail('write', 'ENOSPC', { times: 2 });
  let errors = 0;
  store.on('error', () => errors++);
  await store.create(makeRecord(new ManualClock(Date.now(), Date.now())));
  await store.flush();
  assert.is(store.status, 'open');
  assert.is(store.stats().failedAttempts, 2);
  assert.is(errors, 0);
  await store.close();
});

disk('close with a failing disk rejects with NETLOOP_STORE_IO and still closes', async () => {
  const { store, sched: s, ffs } = await virtualStore({ retries: 0 });
  await store.create(makeRecord(s.clock));
  ffs.fail('write', 'ENOSPC', { times: Infinity });
  const err = await rejection(store.close());
  assert.is(err.code, ErrorCode.STORE_IO);
  assert.is(store.status, 'closed');
  assert.is((await rejection(store.get('x'))).code, ErrorCode.STORE_CLOSED);
  assert.is(await store.close().catch((e: NetloopError) => e.code), ErrorCode.STORE_IO, 'idempotent: the same outcome');
});

disk('without an error listener a failure never throws; the state is still visible', async () => {
  const { store, sched: s, ffs } = await virtualStore({ retries: 0 });
  ffs.fail('open', 'EIO', { times: Infinity, match: (f) => f.endsWith('.tmp') });
  for (let i = 0; i < 10; i++) await store.create(makeRecord(s.clock));
  await store.durable().catch(() => undefined);
  assert.is(store.status, 'error');
  assert.is(store.stats().lastError?.details.syscallCode, 'EIO');
  // In the error state, new changes wait for the (slower) timer instead of retrying on every batch.
  const opensBefore = ffs.counts.open;
  for (let i = 0; i < 20; i++) await store.create(makeRecord(s.clock));
  assert.is(ffs.counts.open, opensBefore);
  ffs.heal();
  s.advance(5000);
  await store.durable();
  assert.is(store.status, 'open');
  await store.close();
});

disk.run();

// ─── journal mode ────────────────────────────────────────────────────────────

const jr = suite('file store: journal mode');
jr.after.each(removeDirs);

const journalWrites = (ffs: FaultyFs): number => ffs.log.filter((l) => l === 'write sessions.json.journal').length;
const journalSyncs = (ffs: FaultyFs): number => ffs.log.filter((l) => l === 'sync sessions.json.journal').length;

jr('group commit: one write and one fsync for every record since the last, after fsyncIntervalMs', async () => {
  const { store, sched: s, ffs } = await virtualStore({ durability: 'journal', fsyncIntervalMs: 100 });
  const syncs0 = journalSyncs(ffs);
  for (let i = 0; i < 25; i++) await store.create(makeRecord(s.clock));
  let durable = false;
  const d = store.durable().then(() => (durable = true));
  s.advance(99);
  await new Promise((r) => setImmediate(r));
  assert.is(journalWrites(ffs), 0);
  assert.is(durable, false);
  const saved = nextEvent(store, 'save');
  s.advance(1);
  const [info] = (await saved) as [{ kind: string; seq: number }];
  await d;
  assert.is(info.kind, 'journal');
  assert.is(info.seq, 25);
  assert.is(journalWrites(ffs), 1);
  assert.is(journalSyncs(ffs) - syncs0, 1);
  assert.is(store.pendingChanges, 0);
  assert.is(tmpOpens(ffs), 0, 'no snapshot for a commit');
  await store.flush(); // nothing pending
  assert.is(journalWrites(ffs), 1);
  await store.close();
});

jr('a touch with a time that is not a finite number is refused: it never reaches the journal (as JSON null, which replay refuses), so the store reopens after a crash', async () => {
  const { store, sched: s, file, clock, ffs } = await virtualStore({ durability: 'journal' });
  const rec = makeRecord(clock);
  await store.create(rec);
  for (const [expiresAt, lastActiveAt] of [[Number.NaN, 0], [Number.POSITIVE_INFINITY, 0], [clock.wallNow() + 1, Number.NaN]] as const) {
    assert.is((await rejection(store.touch(rec.id, expiresAt, lastActiveAt))).code, ErrorCode.INVALID_VALUE);
  }
  await store.flush();
  await ffs.closeAll(); // a crash: close() is never called, the journal is replayed at open
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.equal(await again.get(rec.id), rec, 'the record as it was before the refused touches');
  await again.close();
});

/** Runs every kind of change, commits, then "crashes": handles closed, close() never called. */
async function crashAfterWork(extra: Partial<FileStoreOptions> = {}) {
  const v = await virtualStore({ durability: 'journal', ...extra });
  const { store, clock } = v;
  const a = makeRecord(clock, { userId: 'u1' });
  const b = makeRecord(clock, { userId: 'u1', connectionId: 'c-b' });
  const c = makeRecord(clock);
  await store.create(a);
  await store.create(b);
  await store.create(c);
  await store.set({ ...b, connectionId: 'c-b2', state: 'IDLE', metadata: { k: 'v' } });
  await store.touch(a.id, clock.wallNow() + 120_000, clock.wallNow());
  await store.delete(c.id);
  await store.flush();
  const expected = await store.list({}, { limit: 100 });
  await v.ffs.closeAll();
  return { ...v, expected, ids: { a: a.id, b: b.id, c: c.id } };
}

jr('replay after a crash rebuilds the exact state; the journal is then compacted', async () => {
  const { sched: s, file, expected, ids } = await crashAfterWork();
  const journal = await fs.readFile(`${file}.journal`);
  assert.ok(journal.length > 0);
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.is(again.loadReport.journalRecordsReplayed, 6);
  assert.is(again.loadReport.journalTail, null);
  assert.equal(await again.list({}, { limit: 100 }), expected);
  assert.equal((await again.getByConnection('c-b2'))?.id, ids.b);
  assert.is(await again.get(ids.c), null);
  assert.is((await fs.stat(`${file}.journal`)).size, 0, 'compacted into the snapshot');
  assert.is((await readSnapshot(file)).sessions.length, 2);
  await again.close();
});

jr('a truncated journal tail is dropped and reported; what precedes it survives', async () => {
  const { sched: s, file, expected } = await crashAfterWork();
  const extra = encodeJournalRecord(Buffer.from(JSON.stringify({ s: 7, o: 'd', i: 'whatever' })));
  await fs.appendFile(`${file}.journal`, extra.subarray(0, extra.length - 3));
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.equal(again.loadReport.journalTail?.reason, 'truncated');
  assert.is(again.loadReport.journalTail?.bytes, extra.length - 3);
  assert.equal(await again.list({}, { limit: 100 }), expected);
  await again.close();
});

jr('a torn tail (zero-filled after a power loss) is dropped too', async () => {
  const { sched: s, file, expected } = await crashAfterWork();
  await fs.appendFile(`${file}.journal`, Buffer.alloc(4096));
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.equal(again.loadReport.journalTail?.reason, 'torn');
  assert.equal(await again.list({}, { limit: 100 }), expected);
  await again.close();
});

jr('corruption in the middle of the journal is refused with NETLOOP_JOURNAL_CORRUPT naming file and offset', async () => {
  const { sched: s, file } = await crashAfterWork();
  const jpath = `${file}.journal`;
  const bytes = await fs.readFile(jpath);
  bytes[20] = bytes[20]! ^ 0x40; // inside the first record's payload
  await fs.writeFile(jpath, bytes);
  const err = await rejection(FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s }));
  assert.is(err.code, ErrorCode.JOURNAL_CORRUPT);
  assert.is(err.details.offset, 0);
  assert.is(err.details.file, jpath);
  assert.equal(await fs.readFile(jpath), bytes, 'the journal is left in place for inspection');
});

jr('a well-formed record that is not valid JSON, or a sequence gap, is refused', async () => {
  const dir = await tmpDir();
  const file = path.join(dir, 'sessions.json');
  for (const payload of ['not json', JSON.stringify({ s: 5, o: 'x' }), JSON.stringify({ s: 1, o: 'z' }), JSON.stringify({ o: 'x' })]) {
    await fs.writeFile(`${file}.journal`, encodeJournalRecord(Buffer.from(payload)));
    const err = await rejection(FileStore.open({ path: file, durability: 'journal' }));
    assert.is(err.code, ErrorCode.JOURNAL_CORRUPT, payload);
    assert.is(err.details.offset, 0);
  }
});

jr('a crash between the compacted snapshot and the journal truncation replays nothing twice', async () => {
  const { store, sched: s, file } = await virtualStore({ durability: 'journal' });
  const a = makeRecord(s.clock);
  await store.create(a);
  await store.create(makeRecord(s.clock));
  await store.delete(a.id);
  await store.flush();
  const oldJournal = await fs.readFile(`${file}.journal`);
  await store.close(); // snapshot at seq 3, journal truncated
  await fs.writeFile(`${file}.journal`, oldJournal); // as if the truncation never happened
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.is(again.loadReport.journalRecordsReplayed, 0);
  assert.is(await again.count(), 1);
  await again.close();
});

jr('the journal is compacted into the snapshot once it passes compactAfterBytes', async () => {
  const { store, sched: s, file } = await virtualStore({ durability: 'journal', compactAfterBytes: 4096 });
  const made: SessionRecord[] = [];
  for (let i = 0; i < 40; i++) {
    const r = makeRecord(s.clock, { metadata: { pad: 'x'.repeat(100) } });
    made.push(r);
    await store.create(r);
    if (i % 5 === 4) await store.flush();
  }
  await store.flush();
  const st = store.stats();
  assert.ok(st.snapshots >= 2, `compactions: ${st.snapshots}`);
  assert.ok(st.journalBytes <= 4096, `journal bytes ${st.journalBytes}`);
  assert.ok((await fs.stat(`${file}.journal`)).size <= 4096);
  await store.close();
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.is(await again.count(), 40);
  await again.close();
});

jr('ENOSPC during a commit (a torn append): error state, then recovery rewrites the tail cleanly', async () => {
  const { store, sched: s, ffs, file } = await virtualStore({ durability: 'journal', retries: 1, retryDelayMs: 0 });
  const a = makeRecord(s.clock);
  await store.create(a);
  await store.flush();
  ffs.fail('write', 'ENOSPC', { times: Infinity, match: (f) => f.endsWith('.journal'), partial: 0.5 });
  const b = makeRecord(s.clock);
  await store.create(b);
  const flushing = rejection(store.flush());
  await drive(s, () => store.status === 'error', 'the error state');
  const err = await flushing;
  assert.is(err.details.syscallCode, 'ENOSPC');
  assert.is(store.pendingChanges, 1);
  ffs.heal();
  await store.flush();
  assert.is(store.pendingChanges, 0);
  assert.ok(ffs.counts.truncate >= 1, 'the torn append was cut before rewriting');
  await ffs.closeAll(); // crash
  const again = await FileStore.open({ path: file, durability: 'journal', clock: s.clock, scheduler: s });
  assert.is(again.loadReport.journalTail, null, 'no torn record left behind');
  assert.is(await again.count(), 2);
  await again.close();
});

jr('opening a journal in snapshot mode replays it, then removes it', async () => {
  const { sched: s, file, expected } = await crashAfterWork();
  const again = await FileStore.open({ path: file, clock: s.clock, scheduler: s });
  assert.equal(await again.list({}, { limit: 100 }), expected);
  await fs.access(`${file}.journal`).then(
    () => assert.unreachable('journal should be gone'),
    () => undefined,
  );
  await again.close();
});

jr('an oversize record is refused at once and changes nothing', async () => {
  const { store, sched: s } = await virtualStore({ durability: 'journal', maxRecordBytes: 1024 });
  const big = makeRecord(s.clock, { metadata: { pad: 'x'.repeat(2000) } });
  assert.is((await rejection(store.create(big))).code, ErrorCode.INVALID_VALUE);
  await store.close();
});

jr.run();

// ─── crash safety: SIGKILL under load ────────────────────────────────────────

const crash = suite('file store: SIGKILL under load');

crash('kills at random moments: the file always parses, no torn record, no acknowledged change lost (6 here; 50 in the stress suite)', async () => {
  assert.ok((await crashCampaign(6)) > 0, 'the writers acknowledged durable changes');
});

crash.run();
