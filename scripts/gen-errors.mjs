#!/usr/bin/env node
// @ts-check
/**
 * Writes docs/errors.md, the catalogue of error codes, from `ErrorCode` in
 * lib/core/errors.ts: one row per code with its TSDoc, under the heading of
 * the group comment (`// Framing.`) that precedes it.
 *
 * ```
 *   lib/core/errors.ts ──TypeScript parser──▶ [{ group, key, code, doc }] ──▶ docs/errors.md
 *     // Framing.                                                              ## Framing
 *     /** A frame's declared ... *\/                                           | `NETLOOP_FRAME_TOO_LARGE` | ...
 *     FRAME_TOO_LARGE: 'NETLOOP_FRAME_TOO_LARGE',
 * ```
 *
 * Every code must have a TSDoc comment and the value `NETLOOP_<KEY>`; a
 * duplicate value is refused. `--check` writes nothing and exits 1 when the
 * catalogue on disk differs from what would be written (a code added without
 * its row, a changed description), naming the codes concerned; `npm test`
 * runs it.
 *
 * Usage: `node scripts/gen-errors.mjs [--check] [--source <errors.ts>] [--out <errors.md>]`
 * (`npm run docs:errors`). Exit status: 0 done or current, 1 stale, 2 a bad
 * source or argument.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// require(), not import: importing CommonJS from an ES module makes Node scan
// typescript.js (9 MB) for its export names first, which costs about a second.
/** @type {typeof import('typescript')} */
const ts = createRequire(import.meta.url)('typescript');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let source = path.join(root, 'lib', 'core', 'errors.ts');
let out = path.join(root, 'docs', 'errors.md');
let check = false;
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i] ?? '';
  if (arg === '--check') check = true;
  else if (arg === '--source' && i + 1 < process.argv.length) source = path.resolve(process.argv[++i] ?? '');
  else if (arg === '--out' && i + 1 < process.argv.length) out = path.resolve(process.argv[++i] ?? '');
  else fail(`unknown argument ${arg} (expected --check, --source <file> or --out <file>)`);
}

const codes = readCodes(source);
const text = render(codes);
if (check) {
  const current = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (current === text) process.exit(0);
  const missing = codes.filter((c) => !current.includes(`| \`${c.code}\` |`)).map((c) => c.code);
  const stale = [...current.matchAll(/^\| `(NETLOOP_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]).filter((code) => !codes.some((c) => c.code === code));
  console.error(`gen-errors: ${path.relative(root, out)} is not the catalogue generated from ${path.relative(root, source)}.`);
  if (missing.length > 0) console.error(`  codes without their row: ${missing.join(', ')}`);
  if (stale.length > 0) console.error(`  rows of codes that no longer exist: ${stale.join(', ')}`);
  if (missing.length === 0 && stale.length === 0) console.error('  a description, a group or the introduction changed.');
  console.error('  Run `npm run docs:errors` and commit docs/errors.md.');
  process.exit(1);
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text);
console.log(`gen-errors: wrote ${path.relative(root, out)} (${codes.length} codes)`);

/**
 * @typedef {{ group: string, key: string, code: string, doc: string }} CodeEntry
 */

/**
 * The codes of `ErrorCode`, in source order, with their group and TSDoc.
 * @param {string} file
 * @returns {CodeEntry[]}
 */
function readCodes(file) {
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  /** @type {import('typescript').ObjectLiteralExpression | undefined} */
  let literal;
  for (const statement of sf.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const decl of statement.declarationList.declarations) {
      if (!ts.isIdentifier(decl.name) || decl.name.text !== 'ErrorCode' || decl.initializer === undefined) continue;
      let init = decl.initializer;
      while (ts.isAsExpression(init) || ts.isSatisfiesExpression(init) || ts.isParenthesizedExpression(init)) init = init.expression;
      if (ts.isObjectLiteralExpression(init)) literal = init;
    }
  }
  if (literal === undefined) fail(`${file}: no \`export const ErrorCode = { ... }\` found`);

  /** @type {CodeEntry[]} */
  const entries = [];
  let group = '';
  for (const prop of literal.properties) {
    if (!ts.isPropertyAssignment(prop) || !(ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name))) {
      fail(`${where(sf, prop)}: every member of ErrorCode must be \`KEY: 'NETLOOP_KEY'\``);
    }
    const key = prop.name.text;
    if (!ts.isStringLiteral(prop.initializer)) fail(`${where(sf, prop)}: ErrorCode.${key} is not a string literal`);
    const code = prop.initializer.text;
    if (code !== `NETLOOP_${key}`) fail(`${where(sf, prop)}: ErrorCode.${key} must be 'NETLOOP_${key}', not '${code}'`);
    if (entries.some((e) => e.code === code)) fail(`${where(sf, prop)}: ${code} appears twice`);

    let doc = '';
    for (const range of ts.getLeadingCommentRanges(text, prop.pos) ?? []) {
      const comment = text.slice(range.pos, range.end);
      if (range.kind === ts.SyntaxKind.SingleLineCommentTrivia) {
        group = comment.replace(/^\/\/\s*/, '').replace(/\.\s*$/, '').trim();
      } else if (comment.startsWith('/**')) {
        doc = comment
          .replace(/^\/\*\*|\*\/$/g, '')
          .split('\n')
          .map((line) => line.replace(/^\s*\*?\s?/, '').trim())
          .filter((line) => line !== '')
          .join(' ');
      }
    }
    if (doc === '') fail(`${where(sf, prop)}: ErrorCode.${key} has no TSDoc comment (a /** ... */ line saying when it is raised)`);
    if (group === '') fail(`${where(sf, prop)}: ErrorCode.${key} is under no group comment (// Group.)`);
    entries.push({ group, key, code, doc });
  }
  if (entries.length === 0) fail(`${file}: ErrorCode has no codes`);
  return entries;
}

/** @param {import('typescript').SourceFile} sf @param {import('typescript').Node} node */
function where(sf, node) {
  return `${path.relative(root, sf.fileName)}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`;
}

/** TSDoc inline tags and table-breaking characters made Markdown. @param {string} doc */
function markdown(doc) {
  return doc
    .replace(/\{@link\s+([^}\s|]+)(?:\s*\|\s*([^}]+))?\s*\}/g, (_, target, label) => `\`${(label ?? target).trim()}\``)
    .replace(/\|/g, '\\|');
}

/** @param {CodeEntry[]} entries */
function render(entries) {
  const lines = [
    '<!-- Generated by scripts/gen-errors.mjs from ErrorCode in lib/core/errors.ts: do not edit by hand.',
    '     `npm run docs:errors` rewrites it; `npm test` fails while it is stale. -->',
    '',
    '# Errors',
    '',
    'Every error netloop raises or reports is a `NetloopError` (`error instanceof NetloopError`) with a',
    'stable `code`. **Match on `error.code`** (or `isNetloopError(error, ErrorCode.X)`), never on the',
    'message: messages are written for people and may change, while a code never changes meaning and',
    'new codes are only ever added. `error.details` holds the facts of the failure (sizes, limits, file',
    'names, system codes such as `details.syscallCode`), never a secret; `error.cause` holds the',
    'underlying error when there is one. A client that netloop closes reports a close reason (such as',
    '`protocol-error`) together with the error whose code is below.',
    '',
    '```ts run',
    "import { ErrorCode, LtvDecoder, isNetloopError } from 'netloop';",
    "import assert from 'node:assert/strict';",
    '',
    "const decoder = new LtvDecoder({ layout: 'netloop', onFrame: () => {} });",
    'try {',
    '  decoder.feed(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01])); // a header declaring 4 GiB',
    '  assert.fail("the header is refused");',
    '} catch (error) {',
    '  if (!isNetloopError(error, ErrorCode.FRAME_TOO_LARGE)) throw error;',
    "  assert.equal(error.code, 'NETLOOP_FRAME_TOO_LARGE');",
    '  assert.equal(error.details.declared, 0xffffffff); // the length field, as the peer sent it',
    '}',
    '```',
    '',
    `The ${entries.length} codes, by the layer that raises them:`,
  ];
  let group = '';
  for (const e of entries) {
    if (e.group !== group) {
      group = e.group;
      lines.push('', `## ${group}`, '', '| code | constant | when |', '|---|---|---|');
    }
    lines.push(`| \`${e.code}\` | \`ErrorCode.${e.key}\` | ${markdown(e.doc)} |`);
  }
  lines.push('');
  return lines.join('\n');
}

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`gen-errors: ${message}`);
  process.exit(2);
}
