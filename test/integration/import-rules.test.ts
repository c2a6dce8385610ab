/**
 * The import rules (`.dependency-cruiser.cjs`): the repository passes them,
 * run exactly as `npm run check:deps` runs them (this file is how `npm test`
 * checks them, beside the other test files rather than before them all); and
 * they catch what they are for: run on a small tree of their own, they report
 * a cycle made only of type imports, an import against the layers'
 * direction, the library importing a test, an example importing a path of
 * the library instead of the package, and an example importing the test kit
 * (by a path, or by the package's name); and they pass the same tree once
 * fixed.
 *
 * @module
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { uncoveredEnv } from '../helpers/child-env.js';

/** The repository's root (this file runs from `dist/test/integration/`). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');

/** Writes `files` (path → source) under a fresh folder with a tsconfig like the project's; returns the folder. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'netloop-imports-'));
  const tsconfig = { compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['**/*.ts'] };
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  for (const [file, source] of Object.entries(files)) {
    await mkdir(path.join(dir, path.dirname(file)), { recursive: true });
    await writeFile(path.join(dir, file), source);
  }
  return dir;
}

/** Runs dependency-cruiser with `args` in `dir`: the exit status and each violation as `rule: from → to`, sorted. */
function cruise(dir: string, args: string[]): { status: number | null; violations: string[]; text: string } {
  // dependency-cruiser is a tool, not the library: its child runs without coverage.
  const env = uncoveredEnv({ FORCE_COLOR: '0', NO_COLOR: '1' });
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env });
  // Colours, should a terminal setting still ask for them, are taken out before reading the lines.
  const text = `${r.stdout}${r.stderr}`.replace(/\u001b\[[0-9;]*m/g, '');
  const violations = [...text.matchAll(/^\s*error ([\w-]+): (.+)$/gm)].map((m) => `${m[1]!}: ${m[2]!.trim()}`);
  return { status: r.status, violations: [...new Set(violations)].sort(), text };
}

/** The rules on `dir`, with the reporter `check:deps` uses: one line per violation, a non-zero exit status on an error. */
function check(dir: string, folders: string[]): { status: number | null; violations: string[] } {
  return cruise(dir, [...folders, '--config', CONFIG, '--output-type', 'err']);
}

test("the repository passes its import rules, checked as `npm run check:deps` checks them", () => {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const [bin, ...args] = (scripts['check:deps'] ?? '').split(' ');
  assert.is(bin, 'depcruise', 'check:deps runs dependency-cruiser');
  const r = cruise(ROOT, args);
  assert.is(r.status, 0, `the import rules fail:\n${r.text}`);
  assert.equal(r.violations, []);
  assert.match(r.text, /no dependency violations found \(\d+ modules/);
});

// Each run of dependency-cruiser loads TypeScript to parse the tree (about a
// second of CPU), so one tree holds every mistake and one its fixed form.

/** The package's own shape: exports whose require condition comes first, resolving to cjs/. */
function exportsOf(name: string): object {
  return {
    require: { types: `./cjs/${name}.d.cts`, default: `./cjs/${name}.cjs` },
    types: `./dist/lib/${name}.d.ts`,
    default: `./dist/lib/${name}.js`,
  };
}

/** What both trees share: a package named `pkg` that exports `.` and `./testing`, as netloop does. */
const PACKAGE: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'pkg', type: 'module', exports: { '.': exportsOf('index'), './testing': exportsOf('testing') } }),
  'cjs/index.cjs': "module.exports = require('../dist/lib/index.js');\n",
  'cjs/index.d.cts': "export * from '../dist/lib/index.js';\n",
  'cjs/testing.cjs': "module.exports = require('../dist/lib/testing.js');\n",
  'cjs/testing.d.cts': "export * from '../dist/lib/testing.js';\n",
  'lib/testing.ts': 'export const K = 1;\n',
  // The package's main entry, by its name: allowed.
  'examples/ok.ts': "import { I } from 'pkg';\nexport const O = I;\n",
};

test("a type-only cycle, an upward import, lib importing a test, an example importing lib/ or the test kit (by a path or by 'pkg/testing'): each is reported; fixed, the tree passes", async () => {
  const bad = await tree({
    ...PACKAGE,
    'lib/index.ts': 'export const I = 1;\n',
    // A cycle of type imports only: nothing of it exists at run time, it is still a cycle.
    'lib/reactor/a.ts': "import type { B } from './b.js';\nexport interface A { b: B }\n",
    'lib/reactor/b.ts': "import type { A } from './a.js';\nexport interface B { a: A }\n",
    // core imports nothing else; the reactor does not import the framing layer.
    'lib/core/c.ts': "import type { A } from '../reactor/a.js';\nexport type C = A;\n",
    'lib/framing/f.ts': 'export const F = 1;\n',
    'lib/reactor/r.ts': "import { F } from '../framing/f.js';\nexport const R = F;\n",
    'lib/reactor/t.ts': "import { T } from '../../test/t.js';\nexport const U = T;\n",
    'test/t.ts': 'export const T = 1;\n',
    'examples/e.ts': "import { K } from '../lib/testing.js';\nexport const E = K;\n",
    'examples/p.ts': "import type { A } from '../lib/reactor/a.js';\nexport type P = A;\n",
    'examples/kit.ts': "import { K } from 'pkg/testing';\nexport const E = K;\n",
  });
  const good = await tree({
    ...PACKAGE,
    'lib/reactor/a.ts': 'export interface A { n: number }\n',
    'lib/reactor/b.ts': "import type { A } from './a.js';\nexport interface B { a: A }\n",
    'lib/core/c.ts': 'export type C = number;\n',
    'lib/framing/f.ts': "import type { B } from '../reactor/b.js';\nimport type { C } from '../core/c.js';\nexport type F = [B, C];\n",
    'lib/index.ts': "export type { F } from './framing/f.js';\nexport const I = 1;\n",
    'test/t.ts': "import type { F } from '../lib/index.js';\nexport type T = F;\n",
  });
  try {
    const found = check(bad, ['lib', 'test', 'examples']);
    assert.is.not(found.status, 0, 'the check fails');
    const rule = (v: string): string => v.slice(0, v.indexOf(':'));
    assert.equal(
      [...new Set(found.violations.map(rule))].sort(),
      ['examples-not-the-test-kit', 'examples-use-the-package', 'layer-core', 'layer-reactor', 'lib-not-from-outside', 'no-circular'],
      found.violations.join('\n'),
    );
    // The test kit by the package's name is caught on its own line; the package's main entry is not.
    const fromExamples = found.violations.filter((v) => / examples\//.test(v)).map((v) => v.replace(/ →.*/, ''));
    assert.equal(fromExamples, ['examples-not-the-test-kit: examples/e.ts', 'examples-not-the-test-kit: examples/kit.ts', 'examples-use-the-package: examples/p.ts']);
    const fixed = check(good, ['lib', 'test', 'examples']);
    assert.is(fixed.status, 0, `the fixed tree passes: ${fixed.violations.join('\n')}`);
    assert.equal(fixed.violations, []);
  } finally {
    await rm(bad, { recursive: true, force: true });
    await rm(good, { recursive: true, force: true });
  }
});

test.run();
