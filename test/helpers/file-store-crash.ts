/**
 * The file store's crash campaign: a writer process (test/fixtures/file-store-writer.ts)
 * creates and deletes sessions under load and is killed with SIGKILL at moments drawn from
 * a fixed fast-check seed (a failure replays exactly), alternately in `snapshot` and
 * `journal` durability; after each kill the file is reopened and checked: it always parses,
 * no temp file is left, no record is torn, no acknowledged change is lost, and every loss
 * lies after the writer's last acknowledgement.
 *
 * ```
 *   kills K ──▶ K/2 generations per mode, the two modes side by side (separate folders)
 *     writer gen g ──lines: c <id> | x <id> | a <acked>──▶ kill after N lines ──▶ reopen, verify
 * ```
 *
 * The unit suite runs a few kills; the stress suite (`npm run test:stress`) runs fifty.
 */

import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as fc from 'fast-check';
import { FileStore } from '../../lib/store/file/file-store.js';
import { uncoveredEnv } from './child-env.js';

interface ChildRun {
  /** `c`/`x` events in the order the child made them. */
  events: Array<{ kind: 'c' | 'x'; id: string }>;
  /** The child's last durability acknowledgement: the first `acked` events are durable. */
  acked: number;
}

/** Runs the writer until it has printed `killAt` lines, then SIGKILLs it. */
function runUntilKilled(writer: string, file: string, mode: string, generation: number, killAt: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    // The writer always ends with SIGKILL, so it never writes a coverage report: it runs uninstrumented.
    const child = spawn(process.execPath, [writer, file, mode, String(generation)], { stdio: ['ignore', 'pipe', 'pipe'], env: uncoveredEnv() });
    const run: ChildRun = { events: [], acked: 0 };
    let buffered = '';
    let lines = -1; // counts lines after `ready`
    let stderr = '';
    let killed = false;
    const kill = (): void => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    // A safety net only: the kill normally comes from the line count.
    const safety = setTimeout(kill, 5000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === 'ready') lines = 0;
        else if (line.startsWith('c ') || line.startsWith('x ')) run.events.push({ kind: line[0] as 'c' | 'x', id: line.slice(2) });
        else if (line.startsWith('a ')) run.acked = Math.max(run.acked, Number(line.slice(2)));
        if (lines >= 0 && ++lines > killAt) kill();
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(safety);
      if (signal !== 'SIGKILL') reject(new Error(`writer ended with code ${String(code)} / ${String(signal)}: ${stderr}`));
      else resolve(run);
    });
  });
}

/**
 * Runs the campaign with `kills` kills in all and resolves how many changes the writers
 * acknowledged as durable; removes its folders whatever happens.
 */
export async function crashCampaign(kills: number): Promise<number> {
  const dirs: string[] = [];
  try {
    const writer = fileURLToPath(new URL('../fixtures/file-store-writer.js', import.meta.url));
    // Kill moments come from a fixed fast-check seed, so a failure replays exactly.
    const killPoints = fc.sample(fc.integer({ min: 0, max: 400 }), { seed: 0x5eed, numRuns: kills });
    let totalAcked = 0;
    // The two modes use separate folders, so their generations run side by side.
    const campaign = async (mode: 'snapshot' | 'journal', points: number[]): Promise<void> => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-crash-'));
      dirs.push(dir);
      const file = path.join(dir, 'sessions.json');
      const known = new Map<string, boolean>();
      for (const [i, killAt] of points.entries()) {
        const gen = i * 2 + (mode === 'journal' ? 1 : 0);
        const run = await runUntilKilled(writer, file, mode, gen, killAt);
        const ctx = `generation ${gen} (${mode}, kill after ${killAt} lines, ${run.events.length} changes, ${run.acked} acknowledged)`;
        // The snapshot on disk is always a whole file: the old one or the new one.
        const raw = await fs.readFile(file, 'utf8').catch(() => null);
        if (raw !== null) JSON.parse(raw);
        let store: FileStore;
        try {
          store = await FileStore.open({ path: file, durability: mode, maxListLimit: 1_000_000 });
        } catch (err) {
          assert.unreachable(`${ctx}: reopening failed: ${(err as Error).message}`);
          return;
        }
        assert.not.ok((await fs.readdir(dir)).some((n) => n.endsWith('.tmp')), `no temp file left: ${ctx}`);
        const present = new Set((await store.list({}, { limit: 1_000_000 })).sessions.map((r) => r.id));
        assert.is(await store.count(), present.size, ctx);
        // Earlier generations' sessions are exactly as the last verification left them.
        for (const [id, was] of known) assert.is(present.has(id), was, `${ctx}: earlier session ${id}`);
        const durableCreate = new Set<string>();
        const durableDelete = new Set<string>();
        const anyDelete = new Set<string>();
        const created = new Set<string>();
        for (const [k, e] of run.events.entries()) {
          if (e.kind === 'c') created.add(e.id);
          else anyDelete.add(e.id);
          if (k < run.acked) (e.kind === 'c' ? durableCreate : durableDelete).add(e.id);
        }
        // The kill can also drop the child's last lines (output still queued), so the parent may
        // not have seen everything the child did. The writer's own rule says which sessions it
        // deletes (index j with j % 7 == 1, right after creating j + 5): one whose `x` line could
        // be among the dropped lines may be gone; any session created after the last line seen
        // may exist unannounced.
        const indexOf = (id: string): number => Number(id.split('-')[1]);
        const lastIndex = Math.max(-1, ...[...created].map(indexOf));
        const mayBeDeleted = (id: string): boolean => anyDelete.has(id) || (indexOf(id) % 7 === 1 && indexOf(id) + 6 > lastIndex);
        for (const id of durableCreate) {
          if (!mayBeDeleted(id)) assert.ok(present.has(id), `${ctx}: acknowledged session ${id} lost`);
        }
        for (const id of durableDelete) assert.not.ok(present.has(id), `${ctx}: acknowledged delete of ${id} undone`);
        let lost = 0;
        for (const id of created) if (!present.has(id) && !mayBeDeleted(id)) lost++;
        for (const id of present) {
          const unannounced = id.startsWith(`g${gen}-`) && indexOf(id) > lastIndex;
          assert.ok(known.has(id) || created.has(id) || unannounced, `${ctx}: unknown session ${id}`);
          if (unannounced) created.add(id);
        }
        // Every loss lies after the last acknowledgement: the documented window.
        assert.ok(lost <= run.events.length - run.acked, `${ctx}: lost ${lost}`);
        if (process.env.NETLOOP_DEBUG !== undefined) process.stderr.write(`${ctx}: lost ${lost}\n`);
        totalAcked += run.acked;
        for (const id of created) known.set(id, present.has(id));
        await store.close();
      }
    };
    await Promise.all([
      campaign('snapshot', killPoints.filter((_, i) => i % 2 === 0)),
      campaign('journal', killPoints.filter((_, i) => i % 2 === 1)),
    ]);
    return totalAcked;
  } finally {
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  }
}
