/**
 * A large file sent with `sendFile` from a child process to a reader that
 * reads 1 MiB/s for a while, then as fast as it can, under a 4 MiB hard
 * output limit: the bytes arrive whole (SHA-256), the sending process's RSS
 * grows by less than 32 MiB, the client's write-complete callback fires
 * once, at the end, and the file's descriptor is released; in plain TCP and
 * through TLS. The file is 64 MiB here; test/stress/stream-1gib.test.ts
 * sends 1 GiB the same way.
 *
 * @module
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { siblingScript, startServer } from '../../bench/processes.js';
import { fileSha256, makeSparseFile, readSlowThenFast } from '../helpers/streams.js';
import { makeTestPki } from '../helpers/tls-cert.js';
import type { TestPki } from '../helpers/tls-cert.js';

/** The file's size (NETLOOP_STREAM_BYTES overrides it: the stress run sends 1 GiB). */
export const SIZE = Number(process.env['NETLOOP_STREAM_BYTES'] ?? 64 * 1024 * 1024);
/** How long the reader reads at 1 MiB/s before it speeds up. */
export const SLOW_MS = Number(process.env['NETLOOP_STREAM_SLOW_MS'] ?? 1_500);
const RSS_LIMIT = 32 * 1024 * 1024;
const MAX_OUTPUT = 4 * 1024 * 1024;
const SENDER = siblingScript(import.meta.url, path.join('..', 'fixtures', 'stream-sender.js'));

interface SenderReport {
  bytes: number;
  resolvedAt: number;
  writeCompletes: number;
  writeCompleteAt: number;
  rssBefore: number;
  rssMax: number;
  fdsBefore: number;
  fdsDuring: number;
  fdsAfter: number;
  error: string | null;
}

let dir = '';
let file = '';
let expected = '';
let pki: TestPki | null = null;

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-stream-'));
  file = path.join(dir, 'big.bin');
  makeSparseFile(file, SIZE);
  expected = await fileSha256(file);
  pki = await makeTestPki();
  fs.writeFileSync(path.join(dir, 'key.pem'), pki.key);
  fs.writeFileSync(path.join(dir, 'cert.pem'), pki.cert);
});

test.after(async () => {
  await pki?.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(useTls: boolean): Promise<void> {
  const args = ['--file', file, '--max-output', String(MAX_OUTPUT)];
  if (useTls) args.push('--tls-key', path.join(dir, 'key.pem'), '--tls-cert', path.join(dir, 'cert.pem'));
  const timeoutMs = 60_000 + SLOW_MS + SIZE / 50_000;
  const { handle, port } = await startServer({ script: SENDER, args, execArgv: ['--expose-gc'], timeoutMs, name: 'stream-sender' });
  try {
    const socket: net.Socket = useTls
      ? tls.connect({ host: '127.0.0.1', port, ca: pki!.ca, servername: 'localhost' })
      : net.connect(port, '127.0.0.1');
    const read = await readSlowThenFast(socket, { slowMs: SLOW_MS, ms: timeoutMs });
    const report = await handle.nextJson<SenderReport>(30_000, "the sender's report");
    const growth = report.rssMax - report.rssBefore;
    const what = `${useTls ? 'TLS' : 'TCP'} ${SIZE} bytes`;
    console.log(
      `  ${what}: sender RSS +${(growth / 1048576).toFixed(1)} MiB, ${read.slowBytes} bytes in the slow phase, write-complete ${report.writeCompletes}`,
    );
    assert.is(report.error, null, `${what}: the transfer failed`);
    assert.is(read.failed, false, `${what}: the reader saw an error`);
    assert.is(read.bytes, SIZE, `${what}: bytes read`);
    assert.is(read.sha256, expected, `${what}: SHA-256`);
    assert.ok(read.slowBytes > 0 && read.slowBytes < SIZE / 2, `${what}: the slow phase read ${read.slowBytes} bytes`);
    assert.is(report.bytes, SIZE);
    assert.ok(growth < RSS_LIMIT, `${what}: the sender's RSS grew by ${growth} bytes`);
    // Once, at the end: the transfer resolves when its last byte reached the
    // kernel, and write-complete fires at that moment (in the same loop turn
    // or the next), not during the slow phase seconds before.
    assert.is(report.writeCompletes, 1, `${what}: write-complete fired ${report.writeCompletes} times`);
    assert.ok(Math.abs(report.writeCompleteAt - report.resolvedAt) < 250, `${what}: write-complete ${report.resolvedAt - report.writeCompleteAt} ms before the end`);
    assert.equal([report.fdsBefore, report.fdsDuring, report.fdsAfter], [0, 1, 0], `${what}: descriptors on the file`);
    socket.destroy();
  } finally {
    await handle.kill();
  }
}

test(`a ${SIZE >> 20} MiB file to a reader at 1 MiB/s, then fast, under a 4 MiB output limit: whole, flat RSS, one write-complete, descriptor released`, async () => {
  await run(false);
});

test(`the same through TLS`, async () => {
  await run(true);
});

test.run();
