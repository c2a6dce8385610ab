/**
 * docs/errors.md is the catalogue generated from `ErrorCode` and its TSDoc
 * (scripts/gen-errors.mjs): it is current, it has a row for every code and no
 * row for a code that does not exist, and the generator's check fails when a
 * code is added without its row or without its TSDoc.
 *
 * @module
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../../lib/core/errors.js';
import { uncoveredEnv } from '../helpers/child-env.js';

/** The repository's root (this file runs from `dist/test/integration/`). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GENERATOR = path.join(ROOT, 'scripts', 'gen-errors.mjs');
const SOURCE = path.join(ROOT, 'lib', 'core', 'errors.ts');
const CATALOGUE = path.join(ROOT, 'docs', 'errors.md');

function generate(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [GENERATOR, ...args], { encoding: 'utf8', env: uncoveredEnv() }); // a tool: no library code to cover
  return { status: r.status, stderr: r.stderr };
}

/** A copy of lib/core/errors.ts with `member` added after the last code, in a temporary folder. */
function sourceWith(dir: string, member: string): string {
  const text = fs.readFileSync(SOURCE, 'utf8');
  const anchor = "BENCH_FAILED: 'NETLOOP_BENCH_FAILED',";
  assert.ok(text.includes(anchor), 'the last code is where this test expects it');
  const file = path.join(dir, 'errors.ts');
  fs.writeFileSync(file, text.replace(anchor, `${anchor}\n${member}`));
  return file;
}

test('docs/errors.md is what the generator writes from lib/core/errors.ts (run `npm run docs:errors` after changing a code)', () => {
  const r = generate('--check');
  assert.is(r.status, 0, r.stderr);
});

test('docs/errors.md: one row per ErrorCode, with its constant; no row for a code that does not exist', () => {
  const text = fs.readFileSync(CATALOGUE, 'utf8');
  const rows = [...text.matchAll(/^\| `(NETLOOP_[A-Z0-9_]+)` \| `ErrorCode\.([A-Z0-9_]+)` \| (.+) \|$/gm)].map((m) => [m[1]!, m[2]!, m[3]!] as const);
  const expected = Object.entries(ErrorCode).map(([key, code]) => [code, key] as const);
  assert.equal(
    rows.map(([code, key]) => [code, key]),
    expected,
    'the rows, in the order of ErrorCode',
  );
  for (const [code, , meaning] of rows) assert.ok(meaning.trim().length > 10, `${code} says when it is raised`);
});

test('the check fails, naming the code, when a code is added without its row; a code without TSDoc is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-errors-'));
  try {
    const documented = sourceWith(dir, "  /** A failure this test invents. */\n  INVENTED_FAILURE: 'NETLOOP_INVENTED_FAILURE',");
    const stale = generate('--check', '--source', documented);
    assert.is(stale.status, 1, stale.stderr);
    assert.match(stale.stderr, 'codes without their row: NETLOOP_INVENTED_FAILURE');

    // Generating from it gives a catalogue that passes the check, with the new row.
    const out = path.join(dir, 'errors.md');
    assert.is(generate('--source', documented, '--out', out).status, 0);
    assert.is(generate('--check', '--source', documented, '--out', out).status, 0);
    assert.match(fs.readFileSync(out, 'utf8'), '| `NETLOOP_INVENTED_FAILURE` | `ErrorCode.INVENTED_FAILURE` | A failure this test invents. |');

    const undocumented = sourceWith(dir, "  INVENTED_FAILURE: 'NETLOOP_INVENTED_FAILURE',");
    const refused = generate('--check', '--source', undocumented);
    assert.is(refused.status, 2);
    assert.match(refused.stderr, 'ErrorCode.INVENTED_FAILURE has no TSDoc comment');

    const misnamed = sourceWith(dir, "  /** Misnamed. */\n  INVENTED_FAILURE: 'NETLOOP_SOMETHING_ELSE',");
    const wrong = generate('--source', misnamed, '--out', out);
    assert.is(wrong.status, 2);
    assert.match(wrong.stderr, "must be 'NETLOOP_INVENTED_FAILURE'");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
