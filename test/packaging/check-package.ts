/**
 * The package as a user gets it: `npm pack`, then checks on the tarball and
 * on a fresh application that installs it, outside the repository.
 *
 * ```
 *   npm pack ─▶ netloop-x.y.z.tgz ─┬─ contents: entry points, LICENSE, no stale or test output,
 *                                  │  every source map's sources shipped
 *                                  ├─ publint --strict, attw (every resolution mode, no rule ignored)
 *                                  └─ npm install into <tmp>/app (type commonjs)
 *                                       ├─ node require.cjs / import.mjs, on every Node tested
 *                                       └─ tsc, strict, skipLibCheck off: module nodenext, node16,
 *                                          preserve + bundler, commonjs + node10; run what nodenext emits
 * ```
 *
 * The application's files are in test/packaging/app/. TypeScript and
 * @types/node come from this repository's node_modules (typeRoots), so the
 * check needs no network: the tarball has no dependencies to fetch.
 *
 * Usage: `npm run test:packaging`. The Node binaries that run the application
 * are this one and every `.ci/node/<major>/node_modules/.bin/node` present
 * (.ci/run installs Node 22 and 24 there); NETLOOP_PACKAGING_NODES (a
 * colon-separated list of paths) replaces that list. NETLOOP_PACKAGING_KEEP=1
 * keeps the temporary folder and prints its path.
 *
 * @module
 */

import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const appSources = path.join(repo, 'test', 'packaging', 'app');
const bin = (name: string): string => path.join(repo, 'node_modules', '.bin', name);
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

let passed = 0;
let failed = 0;

/** Runs a command; returns its output, or throws with it when the command fails. */
function run(command: string, args: readonly string[], options: SpawnSyncOptions = {}): { stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited with ${result.status ?? result.signal}\n${stdout}${stderr}`);
  }
  return { stdout, stderr };
}

/** Runs one named check, reporting its result and time; a failure does not stop the others. */
function check(name: string, fn: () => void): void {
  const started = performance.now();
  try {
    fn();
    passed++;
    console.log(`  ok   ${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed++;
    console.log(`  FAIL ${name}\n${String(error instanceof Error ? error.message : error).replace(/^/gm, '       ')}`);
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** The Node binaries the application runs on. */
function nodeBinaries(): string[] {
  const listed = process.env['NETLOOP_PACKAGING_NODES'];
  if (listed) return listed.split(':').filter((p) => p !== '');
  const found = [process.execPath];
  const ciNodes = path.join(repo, '.ci', 'node');
  if (fs.existsSync(ciNodes)) {
    for (const major of fs.readdirSync(ciNodes).sort()) {
      const node = path.join(ciNodes, major, 'node_modules', '.bin', 'node');
      if (fs.existsSync(node)) found.push(node);
    }
  }
  return found;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-packaging-'));
const app = path.join(tmp, 'app');
console.log(`packaging: checking the packed tarball in a fresh application`);

try {
  // npm pack runs `prepare` (the locked incremental build), so the tarball
  // holds what the sources compile to now.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: repo }).stdout) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  const info = packed[0];
  assert(info, 'npm pack printed no result');
  const tarball = path.join(tmp, info.filename);
  const files = new Set(info.files.map((f) => f.path));
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
    name: string;
    license: string;
    main: string;
    types: string;
    exports: Record<string, unknown>;
  };

  check('the tarball holds every entry point of package.json and nothing built from tests, examples or benchmarks', () => {
    const targets: string[] = [pkg.main, pkg.types];
    const collect = (value: unknown): void => {
      if (typeof value === 'string') targets.push(value);
      else if (value && typeof value === 'object') for (const v of Object.values(value)) collect(v);
    };
    collect(pkg.exports);
    for (const target of targets) assert(files.has(path.posix.normalize(target)), `${target} is in package.json but not in the tarball`);
    for (const file of files) {
      assert(!/^(dist\/(test|examples|bench)\/|test\/|examples\/|bench\/|node_modules\/)/.test(file), `${file} should not ship`);
      assert(!/(^|\/)\.|tsbuildinfo/.test(file), `${file} (build state) should not ship`);
    }
  });

  check('dist/lib mirrors lib: every source compiled, no output of a removed source', () => {
    const sources = [...files].filter((f) => f.startsWith('lib/') && f.endsWith('.ts'));
    assert(sources.length > 0, 'no library sources in the tarball');
    for (const source of sources) {
      const js = `dist/${source.replace(/\.ts$/, '.js')}`;
      assert(files.has(js) && files.has(js.replace(/\.js$/, '.d.ts')), `${source} has no ${js} (or .d.ts) in the tarball`);
    }
    for (const file of files) {
      if (!file.startsWith('dist/lib/')) continue;
      const source = file.slice('dist/'.length).replace(/(\.d)?\.js(\.map)?$|\.d\.ts(\.map)?$/, '.ts');
      assert(files.has(source), `${file} has no source ${source} in the tarball (stale output?)`);
    }
  });

  check('every source map and sourceMappingURL points at files that ship', () => {
    let maps = 0;
    for (const file of files) {
      const full = path.join(repo, file);
      if (file.endsWith('.map')) {
        maps++;
        const map = JSON.parse(fs.readFileSync(full, 'utf8')) as { sources: string[]; sourceRoot?: string };
        for (const source of map.sources) {
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), map.sourceRoot ?? '', source));
          assert(files.has(target), `${file} maps to ${target}, which is not in the tarball`);
        }
      } else if (/\.(c|m)?js$|\.d\.(c|m)?ts$/.test(file)) {
        const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(full, 'utf8'))?.[1];
        if (url && !url.startsWith('data:')) {
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), url));
          assert(files.has(target), `${file} names ${target}, which is not in the tarball`);
        }
      }
    }
    assert(maps > 0, 'no source maps in the tarball (expected .js.map and .d.ts.map beside dist/lib)');
  });

  check('LICENSE ships and is the MIT license package.json names', () => {
    assert(files.has('LICENSE'), 'no LICENSE in the tarball');
    assert(pkg.license === 'MIT', `package.json says license ${pkg.license}`);
    assert(/^MIT License\b/.test(fs.readFileSync(path.join(repo, 'LICENSE'), 'utf8')), 'LICENSE is not the MIT license');
  });

  check('publint --strict', () => {
    const { stdout } = run(bin('publint'), ['run', '--strict', tarball]);
    assert(!/\b(warn|error)/i.test(stdout.replace(/\b0 (warnings|errors)\b/g, '')), stdout);
  });

  check('attw: node10, node16 from CommonJS and from ESM, and bundler all resolve, no rule ignored', () => {
    run(bin('attw'), ['--no-definitely-typed', '--format', 'ascii', tarball]);
  });

  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, 'package.json'),
    `${JSON.stringify({ name: 'netloop-packaging-app', version: '1.0.0', private: true, type: 'commonjs' }, null, 2)}\n`,
  );
  for (const name of fs.readdirSync(appSources)) fs.copyFileSync(path.join(appSources, name), path.join(app, name));

  check('npm install <tarball> in a fresh application, without network', () => {
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], { cwd: app });
    assert(fs.existsSync(path.join(app, 'node_modules', pkg.name, 'package.json')), 'netloop is not in node_modules');
  });

  for (const node of nodeBinaries()) {
    const version = run(node, ['--version']).stdout.trim();
    check(`Node ${version}: require('netloop') from CommonJS and import from ESM give one copy, with no warning`, () => {
      for (const file of ['require.cjs', 'import.mjs']) {
        const { stdout, stderr } = run(node, [file], { cwd: app });
        assert(stdout.includes(`${file}: ok`), `${file} printed ${stdout}`);
        assert(stderr === '', `${file} wrote to stderr:\n${stderr}`);
      }
    });
  }

  const typeRoots = [path.join(repo, 'node_modules', '@types')];
  // node10 (`moduleResolution: node`, which ignores `exports`) sees the
  // `types` and `typesVersions` fields; it has no ES module files to check.
  const esmAndCjs = ['consumer.mts', 'consumer.cts', 'require.cjs', 'import.mjs'];
  const configs: Array<{ name: string; options: Record<string, unknown>; files: string[]; emit: boolean }> = [
    { name: 'nodenext', options: { module: 'nodenext', moduleResolution: 'nodenext' }, files: esmAndCjs, emit: true },
    { name: 'node16', options: { module: 'node16', moduleResolution: 'node16' }, files: esmAndCjs, emit: false },
    { name: 'bundler', options: { module: 'preserve', moduleResolution: 'bundler' }, files: esmAndCjs, emit: false },
    { name: 'node10', options: { module: 'commonjs', moduleResolution: 'node10' }, files: ['consumer.cts', 'require.cjs'], emit: false },
  ];
  for (const { name, options, files, emit } of configs) {
    check(`strict TypeScript (module ${String(options['module'])}, resolution ${name}) compiles ${files.join(', ')}`, () => {
      const config = {
        compilerOptions: {
          ...options,
          target: 'ES2022',
          lib: ['ES2022'],
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          allowJs: true,
          checkJs: true,
          types: ['node'],
          typeRoots,
          resolveJsonModule: true,
          outDir: `out-${name}`,
          noEmit: !emit,
        },
        files,
      };
      fs.writeFileSync(path.join(app, `tsconfig.${name}.json`), JSON.stringify(config, null, 2));
      run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], { cwd: app });
      if (emit) {
        for (const file of ['consumer.mjs', 'consumer.cjs']) {
          const { stdout } = run(process.execPath, [path.join(`out-${name}`, file)], { cwd: app });
          assert(stdout.includes(`${file.replace(/js$/, 'ts')}: ok`), `${file} printed ${stdout}`);
        }
      }
    });
  }
} catch (error) {
  failed++;
  console.log(`  FAIL ${error instanceof Error ? error.message : String(error)}`);
} finally {
  if (process.env['NETLOOP_PACKAGING_KEEP'] === '1') console.log(`packaging: kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
}

console.log(`packaging: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
