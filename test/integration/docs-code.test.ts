/**
 * Every TypeScript block of the README and of docs/ is code that compiles
 * against the built package, imported as `'netloop'` from an application
 * folder with a strict tsconfig, and the blocks marked ```` ```ts run ```` run
 * to a clean exit within their time limit. The markers and the harness are in
 * `test/helpers/doc-blocks.ts`; the first tests here prove the harness can
 * fail (a block that does not compile, a block that throws or hangs, a marker
 * with a typo), the last one checks the documentation itself.
 *
 * @module
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DocMarkerError,
  PENDING_API_MARKER,
  compileBlocks,
  createDocProject,
  docFiles,
  extractBlocks,
  fixedPorts,
  runBlock,
} from '../helpers/doc-blocks.js';
import type { DocBlock } from '../helpers/doc-blocks.js';

/** The repository's root (this file runs from `dist/test/integration/`). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const FENCE = '```';

// ─── the markers ──────────────────────────────────────────────────────────────

test('markers: plain, run, no-check, skip, pending-api and prelude, each at its fence line', () => {
  const md = [
    '# Title', //                                               1
    '', //                                                      2
    `${FENCE}ts`, //                                            3
    'const a: number = 1;', //                                  4
    FENCE, //                                                   5
    `${FENCE}ts run timeout=2500`, //                           6
    'console.log(1);', //                                       7
    FENCE, //                                                   8
    `${FENCE}ts no-check a shape, not code`, //                 9
    'x', //                                                     10
    FENCE, //                                                   11
    '<!-- docs-check: skip needs a Redis server -->', //         12
    `${FENCE}typescript`, //                                    13
    'y', //                                                     14
    FENCE, //                                                   15
    PENDING_API_MARKER, //                                      16
    `${FENCE}ts`, //                                            17
    'loop.listen();', //                                        18
    FENCE, //                                                   19
    '<!-- docs-check: prelude', //                              20
    'declare const client: { id: number };', //                 21
    '-->', //                                                   22
    `${FENCE}ts`, //                                            23
    'client.id;', //                                            24
    FENCE, //                                                   25
    `${FENCE}sh`, //                                            26
    'npm test', //                                              27
    FENCE, //                                                   28
    '- a list item:', //                                        29
    '', //                                                      30
    `  ${FENCE}ts`, //                                          31
    '  const indented = true;', //                              32
    `  ${FENCE}`, //                                            33
    'Quoting a marker in text, `<!-- docs-check: skip -->`, is not one.', // 34
  ].join('\n');
  const blocks = extractBlocks('fake.md', md);
  const brief = blocks.map((b: DocBlock) => [b.line, b.mode, b.skipReason, b.pendingApi, b.timeoutMs, b.prelude, b.code]);
  assert.equal(brief, [
    [3, 'check', '', false, 10_000, '', 'const a: number = 1;'],
    [6, 'run', '', false, 2500, '', 'console.log(1);'],
    [9, 'skip', 'a shape, not code', false, 10_000, '', 'x'],
    [13, 'skip', 'needs a Redis server', false, 10_000, '', 'y'],
    [17, 'skip', 'written against an API that is being replaced', true, 10_000, '', 'loop.listen();'],
    [23, 'check', '', false, 10_000, 'declare const client: { id: number };', 'client.id;'],
    [31, 'check', '', false, 10_000, '', 'const indented = true;'],
  ]);
});

test('markers: an opt-out without its reason, an unknown word or directive, or a directive not right above a ts fence is an error', () => {
  const bad: Array<[string, RegExp]> = [
    [`${FENCE}ts no-check\nx\n${FENCE}`, /fake\.md:1: .*needs a reason/],
    [`${FENCE}ts nocheck because\nx\n${FENCE}`, /fake\.md:1: unknown word "nocheck"/],
    [`${FENCE}ts run timeout=soon\nx\n${FENCE}`, /fake\.md:1: unknown word "timeout=soon"/],
    [`<!-- docs-check: skip -->\n${FENCE}ts\nx\n${FENCE}`, /fake\.md:1: .*needs a reason/],
    [`<!-- docs-check: pending-api because -->\n${FENCE}ts\nx\n${FENCE}`, /fake\.md:1: .*takes no words/],
    [`<!-- docs-check: skp typo -->\n${FENCE}ts\nx\n${FENCE}`, /fake\.md:1: unknown directive "docs-check: skp"/],
    [`${PENDING_API_MARKER}\n\n${FENCE}ts\nx\n${FENCE}`, /fake\.md:1: .*not directly above/],
    [`${PENDING_API_MARKER}\n${FENCE}sh\nx\n${FENCE}`, /fake\.md:1: .*above a ```sh block/],
    [`text\n${PENDING_API_MARKER}`, /fake\.md:2: .*not directly above/],
    [`<!-- docs-check: prelude\nconst x = 1;\n`, /fake\.md:1: .*not closed/],
  ];
  for (const [md, expected] of bad) {
    try {
      extractBlocks('fake.md', md);
      assert.unreachable(`no error for ${JSON.stringify(md)}`);
    } catch (err) {
      assert.instance(err, DocMarkerError, `a DocMarkerError for ${JSON.stringify(md)}`);
      assert.match((err as Error).message, expected);
    }
  }
});

test("markers: a runnable block that takes a fixed port is reported; port 0 is not", () => {
  const [fixed, zero] = extractBlocks(
    'fake.md',
    `${FENCE}ts run\nserver.listen(7000);\nconst o = { port: 2007 };\n${FENCE}\n${FENCE}ts run\nconst o = { host: '127.0.0.1', port: 0 };\n${FENCE}`,
  );
  assert.equal(fixedPorts(fixed!), ['.listen(7000', 'port: 2007']);
  assert.equal(fixedPorts(zero!), []);
});

// ─── the harness can fail ─────────────────────────────────────────────────────

test("compiling: a block that does not compile is reported at its Markdown line; 'netloop' resolves to the built package, typed", () => {
  const md = [
    `${FENCE}ts`, //                                                      1
    "import { LtvEncoder, ErrorCode } from 'netloop';", //                2
    "const frame: Buffer = new LtvEncoder({ layout: 'netloop' }).encode(1, Buffer.from('hi'));", // 3
    'const code: string = ErrorCode.FRAME_TOO_LARGE;', //                4
    'console.log(frame.length, code);', //                               5
    FENCE, //                                                             6
    `${FENCE}ts`, //                                                      7
    "import { NoSuchExport } from 'netloop';", //                         8
    FENCE, //                                                             9
    `${FENCE}ts`, //                                                      10
    "const n: number = 'not a number';", //                               11
    FENCE, //                                                             12
    '<!-- docs-check: prelude', //                                        13
    "declare const ready: boolean;", //                                  14
    '-->', //                                                             15
    `${FENCE}ts`, //                                                      16
    'const flag: string = ready;', //                                    17
    FENCE, //                                                             18
    `${FENCE}ts`, //                                                      19
    'function f(x) { return x; }', //                                    20
    FENCE, //                                                             21
  ].join('\n');
  const project = createDocProject(ROOT);
  try {
    const { errors, compiled } = compileBlocks(project, extractBlocks('fake.md', md));
    assert.is(compiled.length, 5);
    const places = errors.map((e) => /^(fake\.md:\d+): (TS\d+)/.exec(e)?.slice(1, 3).join(' ') ?? e);
    assert.equal(places.sort(), ['fake.md:11 TS2322', 'fake.md:17 TS2322', 'fake.md:20 TS7006', 'fake.md:8 TS2305'], errors.join('\n'));
  } finally {
    project.cleanup();
  }
});

test('running: exit 0 within the limit passes (a real socket on 127.0.0.1 port 0); a throw, a non-zero exit or a hang fails', async () => {
  const md = [
    `${FENCE}ts run`,
    "import * as net from 'node:net';",
    'const server = net.createServer((s) => s.pipe(s));',
    "await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));",
    'const { port } = server.address() as net.AddressInfo;',
    "const socket = net.connect({ host: '127.0.0.1', port });",
    "socket.end('ping');",
    'let echoed = "";',
    "for await (const chunk of socket) echoed += String(chunk);",
    'server.close();',
    "if (echoed !== 'ping') throw new Error(echoed);",
    FENCE,
    `${FENCE}ts run`,
    "throw new Error('a documented claim that is false');",
    FENCE,
    `${FENCE}ts run`,
    'process.exitCode = 3;',
    FENCE,
    `${FENCE}ts run timeout=1500`,
    'setInterval(() => {}, 1000);',
    FENCE,
  ].join('\n');
  const project = createDocProject(ROOT);
  try {
    const { errors, compiled } = compileBlocks(project, extractBlocks('fake.md', md));
    assert.equal(errors, []);
    const [echo, thrown, status, hang] = await Promise.all(compiled.map((c) => runBlock(project, c)));
    assert.ok(echo!.ok, echo!.stderr);
    assert.not.ok(thrown!.ok);
    assert.match(thrown!.stderr, 'a documented claim that is false');
    assert.equal([status!.ok, status!.status], [false, 3]);
    assert.equal([hang!.ok, hang!.timedOut], [false, true]);
  } finally {
    project.cleanup();
  }
});

// ─── the documentation ────────────────────────────────────────────────────────

test('every TypeScript block of README.md, SECURITY.md and docs/ compiles against the package, and the runnable ones run', async () => {
  const files = docFiles(ROOT);
  assert.ok(files.includes('README.md') && files.some((f) => f.startsWith('docs/')), `the file list is real: ${files.join(', ')}`);
  const blocks = files.flatMap((f) => extractBlocks(f, fs.readFileSync(path.join(ROOT, f), 'utf8')));

  const ports = blocks.filter((b) => b.mode === 'run').flatMap((b) => fixedPorts(b).map((p) => `${b.file}:${b.line}: ${p}`));
  assert.equal(ports, [], 'runnable blocks must listen on port 0');

  const project = createDocProject(ROOT);
  try {
    const { errors, compiled } = compileBlocks(project, blocks);
    assert.equal(errors, [], `blocks that do not compile:\n${errors.join('\n')}`);
    const failures: string[] = [];
    // One at a time: the machine is shared, and a block may measure or listen.
    for (const c of compiled.filter((x) => x.block.mode === 'run')) {
      const r = await runBlock(project, c);
      if (!r.ok) {
        const why = r.timedOut ? `still running after ${c.block.timeoutMs} ms` : `exit status ${String(r.status)}`;
        failures.push(`${c.block.file}:${c.block.line}: ${why}\n${r.stderr.trim()}`);
      }
    }
    assert.equal(failures, [], `runnable blocks that failed:\n${failures.join('\n')}`);
  } finally {
    project.cleanup();
  }

  const skipped = blocks.filter((b) => b.mode === 'skip');
  const pending = skipped.filter((b) => b.pendingApi).length;
  console.log(
    `  docs: ${blocks.length} TypeScript blocks in ${files.length} files: ${blocks.length - skipped.length} compiled ` +
      `(${blocks.filter((b) => b.mode === 'run').length} run), ${skipped.length} skipped (${pending} pending-api)`,
  );
});

test.run();
