/**
 * End-to-end tests of the echo / pingpong pair (examples/echo, examples/pingpong):
 * the compiled echo server runs as a child process, a raw socket checks that it
 * echoes bytes exactly, the pingpong client drives it in this process and as a
 * child, and SIGTERM stops the server cleanly.
 */

import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawnChild } from '../../../bench/processes.js';
import { ErrorCode, NetloopError } from '../../../lib/core/errors.js';
import { parseEchoArgs } from '../../../examples/echo/server.js';
import { parsePingpongArgs, runPingpong } from '../../../examples/pingpong/client.js';
import type { PingpongResult } from '../../../examples/pingpong/client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const echoScript = path.join(here, '..', '..', '..', 'examples', 'echo', 'server.js');
const pingpongScript = path.join(here, '..', '..', '..', 'examples', 'pingpong', 'client.js');

async function startEcho(): Promise<{ handle: ReturnType<typeof spawnChild>; port: number }> {
  const handle = spawnChild({ script: echoScript, args: ['--port', '0'], timeoutMs: 30_000, name: 'echo' });
  const line = await handle.waitForLine(/listening on /, 10_000, 'the echo server to listen');
  const port = Number(/:(\d+)$/.exec(line)?.[1]);
  assert.ok(port > 0, line);
  return { handle, port };
}

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

test('the echo server returns every byte of a 4 MiB stream, in order', async () => {
  const { handle, port } = await startEcho();
  try {
    const data = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12)) & 0xff;
    const socket = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let n = 0;
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        got.push(d);
        n += d.length;
        if (n >= data.length) resolve();
      });
      socket.on('error', reject);
    });
    socket.write(data);
    await done;
    socket.destroy();
    assert.is(n, data.length);
    assert.is(sha(Buffer.concat(got)), sha(data));
  } finally {
    await handle.kill();
  }
});

test('the pingpong client drives the echo server (in process and as a program); SIGTERM stops the server with code 0', async () => {
  const { handle, port } = await startEcho();
  try {
    const r = await runPingpong({ port, sessions: 4, bytes: 16_384, seconds: 0.3 });
    assert.is(r.sessions, 4);
    assert.ok(r.totalBytes >= 4 * 16_384, `bytes echoed: ${r.totalBytes}`);
    assert.ok(r.mibPerSec > 0);
    const cli = spawnChild({
      script: pingpongScript,
      args: ['--port', String(port), '--sessions', '2', '--bytes', '1024', '--seconds', '0.2', '--json'],
      timeoutMs: 20_000,
      name: 'pingpong',
    });
    const out = await cli.result<PingpongResult>();
    assert.is(out.sessions, 2);
    assert.ok(out.totalBytes >= 2 * 1024);
    const closing = handle.waitForLine(/^SIGTERM: closed every connection/, 10_000, 'the SIGTERM line');
    handle.child.kill('SIGTERM');
    await closing;
    const exit = await handle.exited;
    assert.is(exit.code, 0);
  } finally {
    await handle.kill();
  }
});

test('bad command lines are NETLOOP_INVALID_OPTION', () => {
  for (const argv of [['--port', '70000'], ['--bogus']]) {
    try {
      parseEchoArgs(argv);
      assert.unreachable(argv.join(' '));
    } catch (err) {
      assert.ok(err instanceof NetloopError && err.code === ErrorCode.INVALID_OPTION, String(err));
    }
  }
  for (const argv of [['--port'], ['--sessions', '2'], ['--bogus', '1', '--port', '1']]) {
    try {
      parsePingpongArgs(argv);
      assert.unreachable(argv.join(' '));
    } catch (err) {
      assert.ok(err instanceof NetloopError && err.code === ErrorCode.INVALID_OPTION, String(err));
    }
  }
  assert.equal(parseEchoArgs(['--port', '0', '--host', '127.0.0.1']), { port: 0, host: '127.0.0.1' });
});

test.run();
