/**
 * End-to-end test of the workers example (examples/workers): a node:cluster
 * primary with two workers on one port and a real redis-server; a client
 * logs in and counts on one worker; a rolling restart (SIGHUP) drains that
 * worker, the client is told (`BYE <pid>`) and closed gracefully, reconnects
 * at once, and resumes its session, counter included, on another worker;
 * SIGTERM drains the rest and the primary exits.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { parseWorkersArgs } from '../../../examples/workers/server.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { reusePortSupported } from '../../../lib/reactor/reuse-port.js';
import { exampleScript, startChatChild } from '../../helpers/chat.js';
import { redisServerForTests } from '../../helpers/redis-server.js';
import { until, withTimeout } from '../../helpers/net.js';

const SCRIPT = exampleScript('workers', 'server.js');
const WAIT = 20_000;

test('command line: --redis is required, values are checked, --reuse-port needs a fixed port', () => {
  assert.equal(parseWorkersArgs(['--redis', 'redis://127.0.0.1:1']), {
    redis: 'redis://127.0.0.1:1',
    workers: 2,
    host: '127.0.0.1',
    port: 7400,
    reusePort: false,
  });
  assert.ok(parseWorkersArgs(['--redis', 'redis://x', '--reuse-port', '--port', '9000']).reusePort);
  for (const bad of [
    [],
    ['--redis', 'http://x'],
    ['--redis', 'redis://x', '--workers', '0'],
    ['--redis', 'redis://x', '--port'],
    ['--redis', 'redis://x', '--reuse-port', '--port', '0'],
    ['--redis', 'redis://x', '--reuse-port=yes'],
    ['--what', '1'],
  ]) {
    try {
      parseWorkersArgs(bad);
      assert.unreachable(bad.join(' '));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), bad.join(' '));
    }
  }
});

/**
 * A client that keeps its session across workers: on every close it
 * reconnects at once and sends `RESUME <token>`; it records every line and
 * how each connection ended.
 */
class ResumingClient {
  lines: string[] = [];
  /** One entry per connection that ended: whether it ended with a FIN (not a reset), and its last line. */
  ends: Array<{ fin: boolean; last: string }> = [];
  token = '';
  #socket: net.Socket | null = null;
  #stopped = false;
  constructor(readonly port: number) {}

  connect(first: string): void {
    const socket = net.connect({ host: '127.0.0.1', port: this.port });
    this.#socket = socket;
    let partial = '';
    let fin = false;
    let mine: string[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        mine.push(line);
        const token = /^TOKEN (\S+) /.exec(line);
        if (token !== null) this.token = token[1]!;
      }
    });
    socket.on('end', () => (fin = true));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ends.push({ fin, last: mine.at(-1) ?? '' });
      mine = [];
      if (!this.#stopped) this.connect(`RESUME ${this.token}`);
    });
    socket.write(`${first}\n`);
  }

  send(line: string): void {
    this.#socket?.write(`${line}\n`);
  }

  async waitLine(re: RegExp, what: string, from = 0): Promise<RegExpExecArray> {
    let m: RegExpExecArray | null = null;
    await until(() => this.lines.slice(from).some((l) => (m = re.exec(l)) !== null), what, WAIT);
    return m!;
  }

  stop(): void {
    this.#stopped = true;
    this.#socket?.destroy();
  }
}

/** A port free a moment ago (SO_REUSEPORT needs a fixed one: port 0 would give each worker its own). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a rolling restart: the client is told, closed gracefully, and resumes its session (and its counter) on another worker', async () => {
  await rollingRestart(['--port', '0']);
});

if (reusePortSupported()) {
  test('the same with --reuse-port: every worker listens on a socket of its own (SO_REUSEPORT)', async () => {
    await rollingRestart(['--port', String(await freePort()), '--reuse-port']);
  });
}

async function rollingRestart(extra: readonly string[]): Promise<void> {
  const redis = await redisServerForTests('workers example');
  if (redis === null) return;
  let child: Awaited<ReturnType<typeof startChatChild>> | null = null;
  const client = { current: null as ResumingClient | null };
  try {
    child = await startChatChild(SCRIPT, ['--redis', redis.url, '--workers', '2', ...extra], /^primary pid \d+ listening on \S+:\d+ \(2 workers/);
    const { handle, port } = child;
    const c = new ResumingClient(port);
    client.current = c;
    c.connect('LOGIN ann');
    const [, , first] = await c.waitLine(/^TOKEN (\S+) (\d+)$/, 'a token');
    const firstPid = Number(first);
    c.send('INCR');
    await c.waitLine(/^COUNT 1 \d+$/, 'the first count');

    handle.child.kill('SIGHUP');
    const restarted = await handle.waitForLine(/^restarted: pids \d+ \d+$/, WAIT, 'the end of the restart');
    const fresh = restarted.slice('restarted: pids '.length).split(' ').map(Number);
    assert.not.ok(fresh.includes(firstPid));
    // The client's first worker told it, then closed it with a FIN; the client resumed elsewhere.
    await until(() => c.ends.length >= 1, 'the drained connection ended', WAIT);
    assert.equal(c.ends[0], { fin: true, last: `BYE ${firstPid} restarting: reconnect and RESUME your token` });
    const resumed = await c.waitLine(/^RESUMED \S+ (\d+) (\d+)$/, 'a resume');
    assert.is.not(Number(resumed[1]), firstPid, 'resumed on another worker');
    assert.is(resumed[2], '1', 'with the session state kept in Redis');
    // Once the restart is over the client settles on a new worker (a second drain, if it landed on the other old one, is resumed too).
    await until(() => c.lines.some((l) => new RegExp(`^RESUMED \\S+ (${fresh.join('|')}) 1$`).test(l)), 'a resume on a new worker', WAIT);
    assert.ok(c.ends.every((e) => e.fin && /^BYE \d+ restarting/.test(e.last)), JSON.stringify(c.ends));
    const before = c.lines.length;
    c.send('INCR');
    const count = await c.waitLine(/^COUNT (\d+) (\d+)$/, 'the next count', before);
    assert.is(count[1], '2', 'the counter went on');
    assert.ok(fresh.includes(Number(count[2])), 'served by a new worker');

    c.stop();
    handle.child.kill('SIGTERM');
    await handle.waitForLine(/^stopped$/, WAIT, "'stopped'");
    const exit = await withTimeout(handle.exited, WAIT, 'the primary exits');
    assert.is(exit.code, 0);
  } finally {
    client.current?.stop();
    if (child !== null) await child.handle.kill();
    await redis.stop();
  }
}

test.run();
