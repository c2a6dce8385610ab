/**
 * The file store against the memory store and against a naive file store, in
 * the same run.
 *
 * 1. Operations per second for create, get, heartbeat (touch) and delete on
 *    the file store (snapshot and journal modes, default settings, saves
 *    running in the background), beside the memory store as the reference.
 * 2. Disk work per 1000 changes at the default settings against a naive store
 *    that saves the whole file after every change (the usual starting point
 *    of a file-backed session store; here: batchThreshold 1 and a flush
 *    awaited after each change):
 *    - `paced`: one change every 2 ms, the steady load of a busy server;
 *    - `burst`: changes back to back.
 *    Counted through a counting file-system facade: write calls and fsyncs.
 *    Paced runs count the steady state (the single save `close()` makes for
 *    the last partial batch is left out, for both stores); burst runs count
 *    everything up to the end of `close()`.
 *    Target: at least 10x fewer writes (one save per batch of 10 changes
 *    instead of one per change: 90 % less I/O).
 *
 * Standalone: `node dist/bench/file-store.js [--quick] [--json [FILE]]`.
 *
 * @module
 */

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { measurement } from './scenario.js';
import type { Measurement, Scenario, ScenarioOptions } from './scenario.js';
import { isMain } from './processes.js';
import { FileStore } from '../lib/store/file/file-store.js';
import type { FileStoreDurability } from '../lib/store/file/file-store.js';
import { MemoryStore } from '../lib/store/memory-store.js';
import { countingFs } from '../lib/store/file/fs-facade.js';
import type { SessionRecord, SessionStore } from '../lib/store/contract.js';

const TTL = 3_600_000;

function record(i: number, run: string): SessionRecord {
  const now = Date.now();
  return {
    id: `${run}-${i}`,
    tokenHash: randomBytes(32).toString('hex'),
    userId: `user-${i % 100}`,
    connectionId: `conn-${run}-${i}`,
    remoteAddress: '127.0.0.1',
    remotePort: 50_000,
    state: 'ACTIVE',
    metadata: { room: 'lobby' },
    stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
    createdAt: now,
    lastActiveAt: now,
    expiresAt: now + TTL,
    ttl: TTL,
  };
}

type Op = 'create' | 'get' | 'touch' | 'delete';
const OPS: readonly Op[] = ['create', 'get', 'touch', 'delete'];

/** One pass of `n` of each operation; returns ops/s per operation. */
async function opsPass(store: SessionStore, n: number, run: string): Promise<Record<Op, number>> {
  const recs = Array.from({ length: n }, (_, i) => record(i, run));
  const out = {} as Record<Op, number>;
  const time = async (op: Op, fn: (r: SessionRecord) => Promise<unknown>): Promise<void> => {
    const t0 = performance.now();
    for (const r of recs) await fn(r);
    out[op] = n / ((performance.now() - t0) / 1000);
  };
  await time('create', (r) => store.create(r));
  await time('get', (r) => store.get(r.id));
  await time('touch', (r) => store.touch(r.id, Date.now() + TTL, Date.now()));
  await time('delete', (r) => store.delete(r.id));
  return out;
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-bench-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Disk work of `changes` changes (create, touch, delete in turn), paced or in a burst. */
async function diskPass(
  kind: 'default' | 'naive',
  durability: FileStoreDurability,
  changes: number,
  paceMs: number,
): Promise<{ writes: number; fsyncs: number }> {
  return withDir(async (dir) => {
    const cfs = countingFs();
    const store = await FileStore.open({
      path: path.join(dir, 'sessions.json'),
      fs: cfs,
      durability,
      ...(kind === 'naive' ? { batchThreshold: 1 } : {}),
    });
    cfs.reset();
    const live: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < changes; i++) {
      if (i % 3 === 2 && live.length > 0) await store.delete(live.shift()!);
      else if (i % 3 === 1 && live.length > 0) await store.touch(live[live.length - 1]!, Date.now() + TTL, Date.now());
      else {
        const r = record(i, 'd');
        await store.create(r);
        live.push(r.id);
      }
      if (kind === 'naive') await store.flush();
      if (paceMs > 0) {
        const wait = t0 + (i + 1) * paceMs - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
    // Paced: steady state, the one save close() makes for the last partial batch is not counted.
    // Burst: the whole burst lands before any save can start, so the saves close() waits for are the work.
    const counted = { writes: cfs.counts.writes, fsyncs: cfs.counts.fsyncs };
    await store.close();
    return paceMs > 0 ? counted : { writes: cfs.counts.writes, fsyncs: cfs.counts.fsyncs };
  });
}

async function run(options: ScenarioOptions): Promise<Measurement[]> {
  const repeats = options.quick ? 2 : 5;
  const n = options.quick ? 2000 : 10_000;
  const changes = options.quick ? 200 : 1500;
  const out: Measurement[] = [];

  // 1. Operations per second.
  const runs: Record<string, Record<Op, number[]>> = {};
  const keep = (name: string, r: Record<Op, number>): void => {
    runs[name] ??= { create: [], get: [], touch: [], delete: [] };
    for (const op of OPS) runs[name]![op].push(r[op]);
  };
  // Run -1 warms the JIT up for every store and is discarded.
  for (let k = -1; k < repeats; k++) {
    options.progress(`file-store: ops/s run ${k + 1}/${repeats}`);
    const collect = k < 0 ? () => undefined : keep;
    collect('memory', await opsPass(new MemoryStore(), n, `m${k}`));
    for (const durability of ['snapshot', 'journal'] as const) {
      collect(durability, await withDir(async (dir) => {
        const store = await FileStore.open({ path: path.join(dir, 'sessions.json'), durability });
        const r = await opsPass(store, n, `${durability[0]}${k}`);
        await store.close();
        return r;
      }));
    }
  }
  for (const durability of ['snapshot', 'journal'] as const) {
    for (const op of OPS) {
      out.push(measurement({
        scenario: 'file-store',
        params: { op, mode: durability, sessions: n },
        metric: 'ops_per_s',
        unit: 'ops/s',
        baselineName: 'memory store',
        higherIsBetter: true,
        runs: { netloop: runs[durability]![op], baseline: runs['memory']![op] },
      }));
    }
  }

  // 2. Disk work per 1000 changes against the naive store.
  for (const [load, paceMs] of [['paced', 2], ['burst', 0]] as const) {
    for (const durability of ['snapshot', 'journal'] as const) {
      const w: { netloop: number[]; baseline: number[] } = { netloop: [], baseline: [] };
      const f: { netloop: number[]; baseline: number[] } = { netloop: [], baseline: [] };
      for (let k = 0; k < repeats; k++) {
        options.progress(`file-store: ${load} ${durability} run ${k + 1}/${repeats}`);
        const ours = await diskPass('default', durability, changes, paceMs);
        const naive = await diskPass('naive', 'snapshot', changes, paceMs);
        w.netloop.push((ours.writes * 1000) / changes);
        w.baseline.push((naive.writes * 1000) / changes);
        f.netloop.push((ours.fsyncs * 1000) / changes);
        f.baseline.push((naive.fsyncs * 1000) / changes);
      }
      const params = { load, mode: durability, changes, ...(paceMs > 0 ? { pace_ms: paceMs } : {}) };
      out.push(measurement({
        scenario: 'file-store', params, metric: 'writes_per_1000_changes', unit: 'writes',
        baselineName: 'naive (save per change)', higherIsBetter: false, runs: w, target: '>= 10x',
      }));
      out.push(measurement({
        scenario: 'file-store', params, metric: 'fsyncs_per_1000_changes', unit: 'fsyncs',
        baselineName: 'naive (save per change)', higherIsBetter: false, runs: f,
      }));
    }
  }
  return out;
}

/** The file store scenario (see the module comment). */
export const scenario: Scenario = {
  name: 'file-store',
  description: 'file store ops/s (create/get/touch/delete) vs the memory store, and writes/fsyncs per 1000 changes vs a naive save-per-change store',
  run,
};

if (isMain(import.meta.url)) {
  const { runStandalone } = await import('./run.js');
  await runStandalone(scenario);
}
