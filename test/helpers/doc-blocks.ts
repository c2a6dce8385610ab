/**
 * The TypeScript blocks of the documentation, as code: extracted from
 * Markdown, written into a small project outside the repository that imports
 * `'netloop'` as an application does, compiled with strict TypeScript, and,
 * when marked so, run under a time limit.
 *
 * ```
 *   README.md, docs/**.md ──extractBlocks──▶ DocBlock { file, line, code, prelude, mode }
 *                                                │
 *   createDocProject()  tmp/netloop-docs-XXXX/   ▼
 *     package.json          {"type":"module"}   blocks/<file>-L<line>.ts  (prelude + code + `export {}`)
 *     node_modules/netloop ─▶ this repository (its package.json `exports`: dist/lib, built)
 *     node_modules/<dep>   ─▶ this repository's node_modules/<dep>  (@types/node, redis, ...)
 *                                                │ compileBlocks: strict, NodeNext, one program
 *                                                ▼
 *                             out/<file>-L<line>.js ──runBlock (mode 'run')──▶ node, bounded in time
 * ```
 *
 * How a block is marked (the info string after the fence, or an HTML comment
 * on the line right above the fence; an opt-out always carries its reason):
 *
 * | marker | effect |
 * |---|---|
 * | ```` ```ts ```` (or `typescript`) | type-checked |
 * | ```` ```ts run ```` , ```` ```ts run timeout=20000 ```` | type-checked, then run (default limit 10 s); it must exit by itself with status 0 and use port 0 on 127.0.0.1 |
 * | ```` ```ts no-check <reason> ```` | not compiled |
 * | `<!-- docs-check: skip <reason> -->` | not compiled |
 * | `<!-- docs-check: pending-api -->` | not compiled: written against an API that is being replaced (greppable, to be rewritten) |
 * | `<!-- docs-check: prelude ... -->` | the comment's lines are compiled before the block, unseen by readers (declarations a fragment assumes) |
 *
 * A `docs-check:` comment that is not directly above a TypeScript fence, an
 * unknown verb or word, or an opt-out without a reason is an error: a typo
 * never turns a check off silently.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type * as TS from 'typescript';

// require(), not import: importing CommonJS from an ES module makes Node scan
// typescript.js (9 MB) for its export names first, which costs about a second.
const ts = createRequire(import.meta.url)('typescript') as typeof TS;

/** One fenced TypeScript block of a Markdown file. */
export interface DocBlock {
  /** The Markdown file, relative to the repository (or as given to {@link extractBlocks}). */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The block's code, without the fence's indentation. */
  code: string;
  /** Hidden code compiled before the block (a `prelude` directive), or ''. */
  prelude: string;
  /** `check`: compiled; `run`: compiled and run; `skip`: neither. */
  mode: 'check' | 'run' | 'skip';
  /** Why a `skip` block is skipped. */
  skipReason: string;
  /** Skipped as written against an API that is being replaced. */
  pendingApi: boolean;
  /** Time limit of a `run` block, in ms. */
  timeoutMs: number;
}

/** The default time limit of a runnable block. */
export const DEFAULT_RUN_TIMEOUT_MS = 10_000;

/** The marker of a block written against an API that is being replaced. */
export const PENDING_API_MARKER = '<!-- docs-check: pending-api -->';

const TS_LANGUAGES = new Set(['ts', 'typescript', 'mts']);

/** A malformed marker, with the place it was found. */
export class DocMarkerError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'DocMarkerError';
  }
}

/** A `docs-check:` directive found in an HTML comment. */
interface Directive {
  verb: string;
  rest: string;
  /** 0-based first and last line of the comment. */
  start: number;
  end: number;
}

/**
 * Every TypeScript block of one Markdown text, with its markers applied.
 * Throws a {@link DocMarkerError} for a malformed or orphaned marker. A
 * directive is an HTML comment that starts its line (`<!-- docs-check: ...`),
 * outside any code block, so text that quotes a marker is not one.
 */
export function extractBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  let pending: Directive[] = [];
  const orphan = (d: Directive, why: string): DocMarkerError =>
    new DocMarkerError(file, d.start + 1, `"docs-check: ${d.verb}" ${why}`);

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trimStart().startsWith(DIRECTIVE)) {
      const d = readDirective(file, lines, i);
      if (pending.length > 0 && pending[pending.length - 1]!.end !== i - 1) throw orphan(pending[0]!, 'is not directly above a ```ts block');
      pending.push(d);
      i = d.end;
      continue;
    }
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`~]*)(.*)$/.exec(line);
    if (open === null) {
      if (pending.length > 0) throw orphan(pending[0]!, 'is not directly above a ```ts block');
      continue;
    }
    const indent = open[1]!.length;
    const fence = open[2]!;
    const language = open[3]!.toLowerCase();
    const meta = open[4]!.trim();
    // The closing fence: the same character, at least as long, nothing after it.
    const closing = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    let close = i + 1;
    while (close < lines.length && !closing.test(lines[close]!)) close++;
    const body = lines.slice(i + 1, close).map((l) => stripIndent(l, indent));
    const fenceLine = i + 1;
    i = close; // on after the block (an unclosed fence runs to the end, as in CommonMark)
    const directives = pending;
    pending = [];
    if (!TS_LANGUAGES.has(language)) {
      if (directives.length > 0) throw orphan(directives[0]!, `is above a \`\`\`${language} block, not a \`\`\`ts one`);
      continue;
    }
    const block: DocBlock = {
      file,
      line: fenceLine,
      code: body.join('\n'),
      prelude: '',
      mode: 'check',
      skipReason: '',
      pendingApi: false,
      timeoutMs: DEFAULT_RUN_TIMEOUT_MS,
    };
    applyInfo(block, meta);
    for (const d of directives) applyDirective(block, d);
    blocks.push(block);
  }
  if (pending.length > 0) throw orphan(pending[0]!, 'is not directly above a ```ts block');
  return blocks;
}

const DIRECTIVE = '<!-- docs-check:';

/** Reads the directive whose comment starts on line `i` (it may span lines). */
function readDirective(file: string, lines: string[], i: number): Directive {
  let end = i;
  while (end < lines.length && !lines[end]!.includes('-->')) end++;
  if (end === lines.length) throw new DocMarkerError(file, i + 1, 'a docs-check comment is not closed with -->');
  const text = lines.slice(i, end + 1).join('\n');
  const inner = text.slice(text.indexOf(DIRECTIVE) + DIRECTIVE.length, text.lastIndexOf('-->'));
  const m = /^[ \t]*([a-z-]+)([\s\S]*)$/.exec(inner);
  if (m === null) throw new DocMarkerError(file, i + 1, 'a docs-check comment names no directive');
  const verb = m[1]!;
  // A prelude keeps its lines; the other directives are one line of words.
  const rest = verb === 'prelude' ? m[2]!.replace(/^[ \t]*\n/, '').replace(/\s+$/, '') : m[2]!.trim();
  return { verb, rest, start: i, end };
}

function stripIndent(line: string, indent: number): string {
  let n = 0;
  while (n < indent && n < line.length && line[n] === ' ') n++;
  return line.slice(n);
}

/** The info string after the language: `run`, `run timeout=N`, `no-check <reason>`. */
function applyInfo(block: DocBlock, meta: string): void {
  if (meta === '') return;
  const words = meta.split(/\s+/);
  const first = words[0]!;
  if (first === 'no-check') {
    const reason = words.slice(1).join(' ');
    if (reason === '') throw new DocMarkerError(block.file, block.line, '```ts no-check needs a reason after it');
    block.mode = 'skip';
    block.skipReason = reason;
    return;
  }
  if (first === 'run') {
    block.mode = 'run';
    for (const word of words.slice(1)) {
      const m = /^timeout=(\d+)$/.exec(word);
      if (m === null) throw new DocMarkerError(block.file, block.line, `unknown word "${word}" after \`\`\`ts run (expected timeout=MS)`);
      block.timeoutMs = Number(m[1]);
    }
    return;
  }
  throw new DocMarkerError(block.file, block.line, `unknown word "${first}" after \`\`\`ts (expected run or no-check <reason>)`);
}

function applyDirective(block: DocBlock, d: Directive): void {
  switch (d.verb) {
    case 'pending-api':
      if (d.rest !== '') throw new DocMarkerError(block.file, d.start + 1, 'docs-check: pending-api takes no words after it');
      block.mode = 'skip';
      block.pendingApi = true;
      block.skipReason = 'written against an API that is being replaced';
      return;
    case 'skip':
      if (d.rest === '') throw new DocMarkerError(block.file, d.start + 1, 'docs-check: skip needs a reason after it');
      block.mode = 'skip';
      block.skipReason = d.rest;
      return;
    case 'prelude':
      block.prelude = d.rest;
      return;
    default:
      throw new DocMarkerError(block.file, d.start + 1, `unknown directive "docs-check: ${d.verb}" (expected pending-api, skip <reason> or prelude)`);
  }
}

// ─── files ────────────────────────────────────────────────────────────────────

/**
 * The Markdown files whose blocks are checked, relative to `root`: the README,
 * SECURITY.md, and every `.md` under docs/ except what tools generate: the
 * API reference (docs/api/, not versioned) and the API report
 * (docs/api-report/, declarations as API Extractor prints them).
 */
export function docFiles(root: string): string[] {
  const files: string[] = [];
  for (const f of ['README.md', 'SECURITY.md']) if (fs.existsSync(path.join(root, f))) files.push(f);
  const walk = (dir: string): void => {
    const full = path.join(root, dir);
    if (!fs.existsSync(full)) return;
    for (const e of fs.readdirSync(full, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) {
        if (rel !== 'docs/api' && rel !== 'docs/api-report') walk(rel);
      } else if (e.name.endsWith('.md')) {
        files.push(rel);
      }
    }
  };
  walk('docs');
  return files;
}

// ─── the project ──────────────────────────────────────────────────────────────

/** A temporary application folder that depends on this repository as `netloop`. */
export interface DocProject {
  dir: string;
  /** Removes the folder. */
  cleanup(): void;
}

/**
 * Creates the project: `package.json` (an ES module application), and
 * `node_modules/` holding `netloop` (a link to `root`, resolved through its
 * package.json `exports` to the built library, as an installed package is)
 * and a link to each package of `root/node_modules` (types and optional peers
 * a block may import). The library must be built (`dist/lib`).
 */
export function createDocProject(root: string): DocProject {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-docs-'));
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'netloop-docs-check', private: true, type: 'module' }, null, 2)}\n`);
  const modules = path.join(dir, 'node_modules');
  fs.mkdirSync(modules);
  fs.symlinkSync(root, path.join(modules, 'netloop'), 'dir');
  const rootModules = path.join(root, 'node_modules');
  for (const name of fs.existsSync(rootModules) ? fs.readdirSync(rootModules) : []) {
    if (name.startsWith('.') || name === 'netloop') continue;
    fs.symlinkSync(path.join(rootModules, name), path.join(modules, name), 'dir');
  }
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The options of an application's strict tsconfig, as a user of netloop would write it. */
export function docCompilerOptions(dir: string): TS.CompilerOptions {
  return {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    strict: true,
    skipLibCheck: true,
    rootDir: path.join(dir, 'blocks'),
    outDir: path.join(dir, 'out'),
    newLine: ts.NewLineKind.LineFeed,
  };
}

/** A compiled block: where its source and output are. */
export interface CompiledBlock {
  block: DocBlock;
  source: string;
  output: string;
}

/** The result of {@link compileBlocks}. */
export interface CompileResult {
  /** One message per diagnostic, placed at the Markdown line (`README.md:42: TS2304 ...`). */
  errors: string[];
  compiled: CompiledBlock[];
}

/**
 * Writes the blocks that are not skipped into `project.dir/blocks/`, compiles
 * them as one program and emits JavaScript into `out/`. Errors are reported at
 * their line in the Markdown file.
 */
export function compileBlocks(project: DocProject, blocks: readonly DocBlock[]): CompileResult {
  const blocksDir = path.join(project.dir, 'blocks');
  fs.mkdirSync(blocksDir, { recursive: true });
  const compiled: CompiledBlock[] = [];
  const byFile = new Map<string, { block: DocBlock; preludeLines: number }>();
  for (const block of blocks) {
    if (block.mode === 'skip') continue;
    const name = `${block.file.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-')}-L${block.line}`;
    const source = path.join(blocksDir, `${name}.ts`);
    const preludeLines = block.prelude === '' ? 0 : block.prelude.split('\n').length;
    // `export {}` makes every block a module of its own (top-level await, no clash of names).
    const text = `${block.prelude === '' ? '' : `${block.prelude}\n`}${block.code}\nexport {};\n`;
    fs.writeFileSync(source, text);
    compiled.push({ block, source, output: path.join(project.dir, 'out', `${name}.js`) });
    byFile.set(path.resolve(source), { block, preludeLines });
  }
  if (compiled.length === 0) return { errors: [], compiled };

  const options = docCompilerOptions(project.dir);
  const program = ts.createProgram(
    compiled.map((c) => c.source),
    options,
    sharingHost(options, project.dir),
  );
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  const errors: string[] = [];
  for (const d of diagnostics) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const where = d.file === undefined ? undefined : byFile.get(path.resolve(d.file.fileName));
    if (d.file === undefined || d.start === undefined || where === undefined) {
      errors.push(`${d.file?.fileName ?? '(project)'}: TS${d.code} ${message}`);
      continue;
    }
    const line = d.file.getLineAndCharacterOfPosition(d.start).line + 1; // 1-based line of the written file
    const codeLine = line - where.preludeLines;
    const place =
      codeLine >= 1
        ? `${where.block.file}:${where.block.line + codeLine}`
        : `${where.block.file}:${where.block.line} (line ${line} of its prelude)`;
    errors.push(`${place}: TS${d.code} ${message}`);
  }
  return { errors, compiled };
}

/**
 * Declarations read by an earlier program of this process: TypeScript's
 * default library, `@types/node` and the built package's `.d.ts` files.
 * None of them changes while a test file runs (the package is built
 * before), and parsing them is a large part of each program's cost, so a
 * second and third program reuse the parsed files (TypeScript's language
 * service shares source files between programs the same way). The key is
 * the file's name and the language settings it was parsed with.
 */
const declarations = new Map<string, TS.SourceFile>();

/** A compiler host that reuses {@link declarations} for every file outside the project folder `dir`. */
function sharingHost(options: TS.CompilerOptions, dir: string): TS.CompilerHost {
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  const inside = `${path.resolve(dir)}${path.sep}`;
  host.getSourceFile = (fileName, settings, onError, fresh) => {
    if (path.resolve(fileName).startsWith(inside) || fresh === true) return read(fileName, settings, onError, fresh);
    const s = typeof settings === 'object' ? settings : { languageVersion: settings };
    const key = `${fileName}\0${String(s.languageVersion)}\0${String(s.impliedNodeFormat)}`;
    let file = declarations.get(key);
    if (file === undefined) {
      file = read(fileName, settings, onError, fresh);
      if (file !== undefined) declarations.set(key, file);
    }
    return file;
  };
  return host;
}

/** The result of {@link runBlock}. */
export interface RunResult {
  ok: boolean;
  /** Exit status, or null when killed. */
  status: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a compiled block with the current Node, in the project's folder, killed past its time limit. */
export function runBlock(project: DocProject, compiled: CompiledBlock): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [compiled.output],
      { cwd: project.dir, timeout: compiled.block.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number | string; killed?: boolean; signal?: string }) | null;
        const timedOut = e !== null && e.killed === true;
        const status = e === null ? 0 : typeof e.code === 'number' ? e.code : null;
        resolve({ ok: e === null, status, timedOut, stdout, stderr });
      },
    );
  });
}

/**
 * A runnable block must not take a fixed port (two runs, or another
 * program, would collide): any `port: N`, `port = N` or `.listen(N` with N
 * other than 0 is reported.
 */
export function fixedPorts(block: DocBlock): string[] {
  const found: string[] = [];
  const code = `${block.prelude}\n${block.code}`;
  for (const m of code.matchAll(/\bport\s*[:=]\s*(\d+)|\.listen\(\s*(\d+)/g)) {
    const n = Number(m[1] ?? m[2]);
    if (n !== 0) found.push(m[0]);
  }
  return found;
}
