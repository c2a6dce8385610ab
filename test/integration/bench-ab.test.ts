/**
 * The two-version comparison tool (`bench/ab.ts`): its arithmetic, and that
 * it refuses to run without the other build rather than compare a build
 * with itself.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatAb, median } from '../../bench/ab.js';

test('median: the middle run, or the mean of the two middle runs', () => {
  assert.is(median([3]), 3);
  assert.is(median([5, 1, 3]), 3);
  assert.is(median([4, 1, 3, 2]), 2.5);
});

test('a line of the table: medians, ranges, and B / A', () => {
  const line = formatAb({ scenario: 'pingpong', params: 'sessions=1', unit: 'MiB/s', a: [100, 90, 110], b: [120, 95, 105] });
  assert.is(line, '| pingpong | sessions=1 | MiB/s | 100 [90–110] | 105 [95–120] | 1.050x |');
});

function runAb(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const script = fileURLToPath(new URL('../../bench/ab.js', import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stderr });
    });
  });
}

test('without --base, or with a folder that holds no build, it fails with NETLOOP_INVALID_OPTION before measuring', async () => {
  const none = await runAb([]);
  assert.is(none.code, 1);
  assert.match(none.stderr, /NETLOOP_INVALID_OPTION/);
  assert.match(none.stderr, /--base DIR/);
  const empty = await runAb(['--base', os.tmpdir()]);
  assert.is(empty.code, 1);
  assert.match(empty.stderr, /is missing: build the other version first/);
});

test('an --impl other than netloop or netloop-message fails with NETLOOP_INVALID_OPTION before measuring', async () => {
  // This build stands in as the other version: only the flag is wrong.
  const here = fileURLToPath(new URL('../../..', import.meta.url));
  const bad = await runAb(['--base', here, '--impl', 'tuned']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /NETLOOP_INVALID_OPTION/);
  assert.match(bad.stderr, /--impl must be netloop or netloop-message/);
});

test.run();
