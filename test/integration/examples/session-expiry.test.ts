/**
 * The session-expiry example, run as a child process and driven over a
 * socket: a login, then silence; the expired client reads its large HTTP 401
 * notice slowly and gets every byte before the FIN; its token no longer
 * resumes; SIGTERM stops the process cleanly.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isNetloopError, ErrorCode } from '../../../lib/core/errors.js';
import { parseSessionExpiryArgs, expiryNotice, startSessionExpiryServer } from '../../../examples/session-expiry/server.js';
import { connectRaw, destroyAll, until, withTimeout } from '../../helpers/net.js';
import { logMatches, parseLogLine } from '../../helpers/log-lines.js';
import type { LogPattern, LogRecord } from '../../helpers/log-lines.js';

const SCRIPT = fileURLToPath(new URL('../../../examples/session-expiry/server.js', import.meta.url));

/** The child's stdout, line by line, with a wait for a line matching a pattern. */
function watch(child: ChildProcessWithoutNullStreams): {
  lines: string[];
  next(re: RegExp, what: string): Promise<RegExpMatchArray>;
  nextLog(want: LogPattern, what: string): Promise<LogRecord>;
} {
  const lines: string[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => {
    rest += s;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      lines.push(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  });
  return {
    lines,
    async next(re, what) {
      let m: RegExpMatchArray | null = null;
      await until(() => lines.some((l) => (m = re.exec(l)) !== null), `the example to print ${what}`, 10_000);
      return m!;
    },
    async nextLog(want, what) {
      let r: LogRecord | null = null;
      const find = (l: string): boolean => {
        const p = parseLogLine(l);
        return p !== null && logMatches(p, want) && (r = p) !== null;
      };
      await until(() => lines.some(find), `the example to log ${what}`, 10_000);
      return r!;
    },
  };
}

/** Reads from a socket until `pred` holds on what arrived. */
function readUntil(socket: import('node:net').Socket, pred: (text: string) => boolean, what: string): Promise<string> {
  let text = '';
  return withTimeout(
    new Promise<string>((resolve) => {
      const on = (c: Buffer): void => {
        text += c.toString('latin1');
        if (pred(text)) {
          socket.off('data', on);
          resolve(text);
        }
      };
      socket.on('data', on);
    }),
    5_000,
    what,
  );
}

test('parseSessionExpiryArgs accepts its flags and refuses anything else', () => {
  assert.equal(parseSessionExpiryArgs(['--port', '0', '--ttl-ms', '500', '--notice-kib', '64', '--handshake-ms', '0', '--host', '::1']), {
    port: 0,
    ttlMs: 500,
    noticeKiB: 64,
    handshakeMs: 0,
    host: '::1',
  });
  for (const bad of [['--port', '70000'], ['--ttl-ms', 'x'], ['--what', '1'], ['--port']]) {
    try {
      parseSessionExpiryArgs(bad);
      assert.unreachable(bad.join(' '));
    } catch (err) {
      assert.ok(isNetloopError(err) && err.code === ErrorCode.INVALID_OPTION, String(err));
    }
  }
  const plain = Buffer.from(expiryNotice(0)({ kind: 'expired', reason: 'ttl', session: { id: 'S' } as never, client: null as never }) as Uint8Array);
  const padded = Buffer.from(expiryNotice(100)({ kind: 'expired', reason: 'ttl', session: { id: 'S' } as never, client: null as never }) as Uint8Array);
  assert.ok(padded.length >= plain.length + 100);
});

test('lines sent together are answered in their order: a PING behind a LOGIN waits for its TOKEN', async () => {
  const app = await startSessionExpiryServer({ port: 0 });
  const peer = await connectRaw(app.server.port);
  try {
    // One write, so one read on the server: the LOGIN's answer is asynchronous, the PING's is not.
    peer.write('LOGIN ann\nPING\nWHAT\nPING\n');
    const text = await readUntil(peer, (t) => t.split('\n').length > 4, 'four answers');
    const lines = text.split('\n').slice(0, 4);
    assert.match(lines[0]!, /^TOKEN \S+$/, text);
    assert.equal(lines.slice(1), ['PONG', 'ERR unknown command (LOGIN <user> | PING | RESUME <token>)', 'PONG'], text);
  } finally {
    await destroyAll(peer);
    await app.stop();
  }
});

test('the example: an expired client reads its 6 MiB notice slowly, in full, then FIN; SIGTERM stops it', async () => {
  const child = spawn(process.execPath, [SCRIPT, '--port', '0', '--ttl-ms', '400', '--notice-kib', '6144'], { stdio: 'pipe' });
  const out = watch(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const sockets: import('node:net').Socket[] = [];
  try {
    const [, port] = await out.next(/listening on 127\.0\.0\.1:(\d+)/, 'its port');
    const peer = await connectRaw(Number(port));
    sockets.push(peer);
    peer.write('LOGIN alice\n');
    const tokenLine = await readUntil(peer, (t) => t.includes('\n'), 'the token');
    const token = /^TOKEN (\S+)\n$/.exec(tokenLine)?.[1];
    assert.ok(token !== undefined, tokenLine);
    // Silence: the session expires; the client does not read for a while, then reads slowly.
    peer.pause();
    const expired = await out.nextLog({ event: 'expired', sessionId: /^\S+$/, clientId: /^\d+$/, reason: 'ttl' }, 'the expiry');
    assert.ok(Number(expired['noticeBytes']) > 6144 * 1024, `the notice is queued whole: ${String(expired['noticeBytes'])} bytes`);
    const chunks: Buffer[] = [];
    peer.on('data', (c: Buffer) => {
      chunks.push(c);
      peer.pause();
      setTimeout(() => peer.resume(), 1);
    });
    const fin = new Promise<void>((resolve) => peer.once('end', () => resolve()));
    peer.resume();
    await withTimeout(fin, 30_000, 'the FIN after the notice');
    const notice = Buffer.concat(chunks);
    const sep = notice.indexOf('\r\n\r\n');
    assert.ok(sep > 0, 'an HTTP head');
    const head = notice.subarray(0, sep).toString('latin1');
    const body = notice.subarray(sep + 4);
    assert.ok(head.startsWith('HTTP/1.1 401 Unauthorized\r\n'), head);
    assert.is(Number(/Content-Length: (\d+)/.exec(head)?.[1]), body.length, 'every byte of the body arrived, nothing more');
    assert.ok(body.length > 6144 * 1024);
    const json = JSON.parse(body.toString('utf8')) as { error: string; session: string };
    assert.is(json.error, 'session_expired');
    assert.ok(!body.toString().includes(token!), 'the token is never echoed');
    await out.nextLog({ event: 'close', clientId: expired['clientId'] as number, reason: 'session-expired' }, 'the close after the flush');

    // The expired session's token no longer resumes.
    const again = await connectRaw(Number(port));
    sockets.push(again);
    again.write(`RESUME ${token!}\n`);
    assert.is(await readUntil(again, (t) => t.includes('\n'), 'the resume answer'), `ERR ${ErrorCode.BAD_TOKEN}\n`);
    again.write('PING\n');
    assert.is(await readUntil(again, (t) => t.includes('\n'), 'the pong'), 'PONG\n');

    child.kill('SIGTERM');
    assert.is(await withTimeout(exited, 10_000, 'the example to exit'), 0);
    assert.ok(out.lines.some((l) => l.startsWith('SIGTERM: closing')), out.lines.join('\n'));
    assert.is(stderr, '');
  } finally {
    await destroyAll(...sockets);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
});

test.run();
