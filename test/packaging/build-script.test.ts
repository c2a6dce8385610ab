/**
 * scripts/build.mjs, the build every npm script runs: incremental, dist/ a
 * mirror of the sources, and one build at a time under its lock. Each test
 * builds a small project of its own in a temporary folder (`--project`).
 *
 * ```
 *   <tmp>/tsconfig.json   src/a.ts ◀── src/b.ts    ──build──▶   out/{a,b}.{js,js.map,d.ts}
 *                                                                out/.tsbuildinfo, out/.lock (while building)
 * ```
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { suite } from '../helpers/uvu.js';
import { until, withTimeout } from '../helpers/net.js';
import { uncoveredEnv } from '../helpers/child-env.js';

const BUILD = fileURLToPath(new URL('../../../scripts/build.mjs', import.meta.url));
/** A build of the small project takes about a second; a loaded machine may take many. */
const BUILD_MS = 60_000;

interface Project {
  dir: string;
  src: (name: string) => string;
  out: (name: string) => string;
}

interface BuildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function makeProject(): Project {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-build-'));
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        // No default library: the globals TypeScript needs are declared in
        // src/globals.d.ts, so a build costs little more than loading TypeScript.
        noLib: true,
        types: [],
        rootDir: 'src',
        outDir: 'out',
        incremental: true,
        tsBuildInfoFile: 'out/.tsbuildinfo',
        declaration: true,
        sourceMap: true,
        strict: true,
      },
      include: ['src/**/*.ts'],
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'src', 'globals.d.ts'),
    ['Array<T>', 'Boolean', 'CallableFunction', 'Function', 'IArguments', 'NewableFunction', 'Number', 'Object', 'RegExp', 'String']
      .map((name) => `interface ${name} {}\n`)
      .join(''),
  );
  fs.writeFileSync(path.join(dir, 'src', 'a.ts'), 'export const a: number = 1;\n');
  fs.writeFileSync(path.join(dir, 'src', 'b.ts'), "import { a } from './a.js';\nexport const b: number = a + 1;\n");
  return { dir, src: (name) => path.join(dir, 'src', name), out: (name) => path.join(dir, 'out', name) };
}

/** Starts the build script on a project; `onStderr` sees its error output as it comes. */
function startBuild(project: Project, args: string[] = [], onStderr?: (text: string) => void): Promise<BuildResult> {
  const child = spawn(process.execPath, [BUILD, '--project', path.join(project.dir, 'tsconfig.json'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // The build script runs TypeScript only, nothing of the library: no coverage to collect.
    env: uncoveredEnv(),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onStderr?.(stderr);
  });
  const done = new Promise<BuildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return withTimeout(done, BUILD_MS, 'the build script to exit');
}

async function build(project: Project, args: string[] = []): Promise<BuildResult> {
  const result = await startBuild(project, args);
  assert.is(result.code, 0, `build failed:\n${result.stdout}${result.stderr}`);
  return result;
}

const mtime = (file: string): number => fs.statSync(file).mtimeMs;

const test = suite<{ project: Project }>('build script', { project: undefined as unknown as Project });

test.before.each((ctx) => {
  ctx.project = makeProject();
});

test.after.each((ctx) => {
  fs.rmSync(ctx.project.dir, { recursive: true, force: true });
});

test('builds incrementally: nothing is written when nothing changed, and an edit re-emits only its file', async ({ project }) => {
  await build(project);
  for (const name of ['a.js', 'a.js.map', 'a.d.ts', 'b.js', '.tsbuildinfo']) assert.ok(fs.existsSync(project.out(name)), name);
  assert.not.ok(fs.existsSync(project.out('.lock')), 'the lock is released');
  const a = mtime(project.out('a.js'));
  const b = mtime(project.out('b.js'));

  const again = await build(project, ['--verbose']);
  assert.match(again.stdout, /is up to date/);
  assert.is(mtime(project.out('a.js')), a);
  assert.is(mtime(project.out('b.js')), b);

  fs.writeFileSync(project.src('b.ts'), "import { a } from './a.js';\nexport const b: number = a + 2;\n");
  await build(project);
  assert.is(mtime(project.out('a.js')), a, 'a.js, unchanged, is not written again');
  assert.match(fs.readFileSync(project.out('b.js'), 'utf8'), /a \+ 2/);
});

test('keeps the output a mirror of the sources: a removed source loses its output, a removed output is built again; --clean empties it', async ({ project }) => {
  await build(project);
  fs.rmSync(project.src('b.ts'));
  await build(project);
  for (const name of ['b.js', 'b.js.map', 'b.d.ts']) assert.not.ok(fs.existsSync(project.out(name)), `${name} is removed with its source`);
  assert.ok(fs.existsSync(project.out('a.js')));

  fs.rmSync(project.out('a.js'));
  await build(project);
  assert.ok(fs.existsSync(project.out('a.js')), 'a.js, deleted by hand, is emitted again');

  await build(project, ['--clean']);
  assert.equal(fs.readdirSync(path.join(project.dir, 'out')), [], '--clean empties the output folder');
});

test('two builds started together: one compiles, the other waits for it and finds everything up to date', async ({ project }) => {
  const [first, second] = await Promise.all([startBuild(project, ['--verbose']), startBuild(project, ['--verbose'])]);
  assert.is(first.code, 0, first.stdout + first.stderr);
  assert.is(second.code, 0, second.stdout + second.stderr);
  const compiled = [first, second].filter((r) => /Building project/.test(r.stdout));
  assert.is(compiled.length, 1, `exactly one build compiles:\n--- first\n${first.stdout}\n--- second\n${second.stdout}`);
  assert.ok(fs.existsSync(project.out('b.js')));
});

test('waits while a live process holds the lock, and builds once it is released', async ({ project }) => {
  fs.mkdirSync(project.out('.lock'), { recursive: true });
  fs.writeFileSync(project.out('.lock/pid'), `${process.pid}\n`);
  let waiting = false;
  const running = startBuild(project, [], (stderr) => (waiting ||= /waiting for another build \(pid \d+\)/.test(stderr)));
  await until(() => waiting, 'the build to say it waits', BUILD_MS);
  assert.not.ok(fs.existsSync(project.out('a.js')), 'nothing is built while the lock is held');
  fs.rmSync(project.out('.lock'), { recursive: true });
  const result = await running;
  assert.is(result.code, 0, result.stdout + result.stderr);
  assert.ok(fs.existsSync(project.out('a.js')));
});

test('takes over a lock whose owner is dead', async ({ project }) => {
  const dead = spawn(process.execPath, ['-e', '0']);
  const pid = dead.pid;
  await new Promise((resolve) => dead.on('exit', resolve));
  assert.ok(pid !== undefined);
  fs.mkdirSync(project.out('.lock'), { recursive: true });
  fs.writeFileSync(project.out('.lock/pid'), `${pid}\n`);
  const result = await build(project);
  assert.not.match(result.stderr, /waiting/);
  assert.ok(fs.existsSync(project.out('a.js')));
  assert.not.ok(fs.existsSync(project.out('.lock')), 'the lock is released');
});

test.run();
