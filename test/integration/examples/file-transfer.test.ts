/**
 * End-to-end tests of the file-transfer example (examples/file-transfer):
 * the compiled server and client run as child processes and a file crosses
 * whole with its progress printed and its SHA-256 verified; the client's
 * `fetchFile` against the server reports a missing file, a name outside the
 * server's folder and a transfer cut short with their codes; SIGTERM stops
 * the server with status 0; bad command lines are NETLOOP_INVALID_OPTION.
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawnChild } from '../../../bench/processes.js';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { fetchFile, parseFileClientArgs } from '../../../examples/file-transfer/client.js';
import { parseFileServerArgs, startFileServer } from '../../../examples/file-transfer/server.js';
import { fileSha256 } from '../../helpers/streams.js';
import { pattern, withTimeout } from '../../helpers/net.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const serverScript = path.join(here, '..', '..', '..', 'examples', 'file-transfer', 'server.js');
const clientScript = path.join(here, '..', '..', '..', 'examples', 'file-transfer', 'client.js');
const MiB = 1024 * 1024;

function tempDir(): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-file-transfer-'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function startServer(root: string): Promise<{ handle: ReturnType<typeof spawnChild>; port: number }> {
  const handle = spawnChild({ script: serverScript, args: ['--root', root, '--port', '0'], timeoutMs: 60_000, name: 'file-server' });
  const line = await handle.waitForLine(/listening on /, 10_000, 'the file server to listen');
  const port = Number(/:(\d+),/.exec(line)?.[1]);
  assert.ok(port > 0, line);
  return { handle, port };
}

async function rejectsWith(promise: Promise<unknown>, code: string, what: string): Promise<NetloopError> {
  try {
    await withTimeout(promise, 20_000, what);
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: ${String(err)}`);
    assert.is((err as NetloopError).code, code, `${what}: ${(err as Error).message}`);
    return err as NetloopError;
  }
  assert.unreachable(`${what} did not fail`);
  throw new Error('unreachable');
}

test('the server and the client as programs: a 24 MiB file arrives whole, with its progress in tenths and its SHA-256 verified; SIGTERM stops the server with status 0', async () => {
  const tmp = tempDir();
  const { handle, port } = await startServer(tmp.dir);
  try {
    const size = 24 * MiB + 5;
    fs.writeFileSync(path.join(tmp.dir, 'data.bin'), pattern(size, 11));
    const out = path.join(tmp.dir, 'copy.bin');
    const client = spawnChild({
      script: clientScript,
      args: ['--port', String(port), '--name', 'data.bin', '--out', out],
      timeoutMs: 60_000,
      name: 'file-client',
    });
    const percents: number[] = [];
    while (percents.at(-1) !== 100) {
      const line = await client.waitForLine(/^progress /, 30_000, 'a progress line');
      const m = /^progress (\d+)% \((\d+) of (\d+) bytes\)$/.exec(line);
      assert.ok(m !== null, line);
      assert.is(Number(m[3]), size);
      percents.push(Number(m[1]));
    }
    assert.is(percents.length, 10, percents.join(' '));
    for (let i = 0; i < 9; i++) assert.ok(percents[i]! >= (i + 1) * 10 && percents[i]! < 100, percents.join(' '));
    const done = await client.waitForLine(/verified$/, 10_000, 'the verified line');
    assert.ok(done.startsWith(`data.bin: ${size} bytes, sha256 `), done);
    assert.is((await client.exited).code, 0, client.stderr());
    assert.is(await fileSha256(out), await fileSha256(path.join(tmp.dir, 'data.bin')));
    await handle.waitForLine(new RegExp(`^sent data\\.bin to client \\d+: ${size} bytes`), 10_000, "the server's transfer line");

    const missing = spawnChild({ script: clientScript, args: ['--port', String(port), '--name', 'nope', '--out', out], timeoutMs: 30_000, name: 'file-client' });
    assert.is((await missing.exited).code, 1);
    assert.match(missing.stderr(), /NETLOOP_STREAM_SOURCE_FAILED.*\(ENOENT\)/);
    const usage = spawnChild({ script: clientScript, args: ['--name', '../x', '--out', out], timeoutMs: 30_000, name: 'file-client' });
    assert.is((await usage.exited).code, 2);
    assert.match(usage.stderr(), /NETLOOP_INVALID_OPTION/);

    const closing = handle.waitForLine(/^SIGTERM: closed every connection/, 10_000, 'the SIGTERM line');
    handle.child.kill('SIGTERM');
    await closing;
    assert.is((await handle.exited).code, 0);
  } finally {
    await handle.kill();
    tmp.remove();
  }
});

test('fetchFile: a missing file and a name outside the folder are refused with their codes; a server that stops mid-transfer fails it with NETLOOP_STREAM_INTERRUPTED; an empty file verifies', async () => {
  const tmp = tempDir();
  const transfers: string[] = [];
  const { loop, server } = await startFileServer({ root: tmp.dir, port: 0, onTransfer: (line) => transfers.push(line) });
  try {
    const out = path.join(tmp.dir, 'out.bin');
    const missing = await rejectsWith(fetchFile({ port: server.port, name: 'nope', out }), ErrorCode.STREAM_SOURCE_FAILED, 'a missing file');
    assert.is(missing.details['remoteCode'], 'ENOENT');
    const outside = await rejectsWith(fetchFile({ port: server.port, name: '../etc', out }), ErrorCode.STREAM_SOURCE_FAILED, 'a name with a folder');
    assert.is(outside.details['remoteCode'], ErrorCode.INVALID_VALUE);

    fs.writeFileSync(path.join(tmp.dir, 'empty'), '');
    const empty = await fetchFile({ port: server.port, name: 'empty', out });
    assert.equal([empty.bytes, empty.verified], [0, true]);

    fs.writeFileSync(path.join(tmp.dir, 'big.bin'), pattern(64 * MiB, 3));
    let stopped = false;
    const cut = fetchFile({
      port: server.port,
      name: 'big.bin',
      out,
      onProgress: () => {
        if (stopped) return;
        stopped = true;
        for (const client of [...server.clients()]) client.destroy();
      },
    });
    await rejectsWith(cut, ErrorCode.STREAM_INTERRUPTED, 'the cut transfer');
    assert.ok(stopped);
    assert.ok(transfers.some((line) => line.startsWith('big.bin to client') && line.endsWith(ErrorCode.STREAM_INTERRUPTED)), transfers.join('\n'));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
  await rejectsWith(startFileServer({ root: path.join(tmp.dir, 'gone'), port: 0 }), ErrorCode.INVALID_OPTION, 'a missing root');
});

test('bad command lines are NETLOOP_INVALID_OPTION', () => {
  const bad: Array<[(argv: string[]) => unknown, string[]]> = [
    [parseFileServerArgs, []],
    [parseFileServerArgs, ['--root', '.', '--port', '70000']],
    [parseFileServerArgs, ['--root', '.', '--port', '-1']],
    [parseFileServerArgs, ['--bogus']],
    [parseFileClientArgs, ['--out', 'x']],
    [parseFileClientArgs, ['--name', 'a/b', '--out', 'x']],
    [parseFileClientArgs, ['--name', 'a']],
    [parseFileClientArgs, ['--name', 'a', '--out', 'x', 'extra']],
  ];
  for (const [parse, argv] of bad) {
    try {
      parse(argv);
      assert.unreachable(argv.join(' '));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), `${argv.join(' ')}: ${String(err)}`);
    }
  }
  assert.equal(parseFileServerArgs(['--root', 'files', '--port', '0', '--host', '127.0.0.1']), { root: 'files', port: 0, host: '127.0.0.1' });
  assert.equal(parseFileClientArgs(['--name', 'a.bin', '--out', 'b', '--port', '7']), { name: 'a.bin', out: 'b', port: 7 });
});

test.run();
