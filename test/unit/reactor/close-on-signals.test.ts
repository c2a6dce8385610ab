import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { closeOnSignals } from '../../../lib/reactor/close-on-signals.js';
import { collectAll, connectRaw, destroyAll, readBytes, withTimeout } from '../../helpers/net.js';
import { Server } from '../../../lib/reactor/server.js';

// In-process tests use SIGUSR2 with exit: false and emit the signal as an event, so nothing is
// actually delivered to the test process.
const SIG = 'SIGUSR2' as const;

test('a signal closes the loop once (notice, flush, settle), removes the handlers, then reports done', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, {}).listen();
  let settled = 0;
  const before = process.listenerCount(SIG);
  let done!: (s: NodeJS.Signals) => void;
  const finished = new Promise<NodeJS.Signals>((r) => (done = r));
  const dispose = closeOnSignals(loop, {
    signals: [SIG],
    exit: false,
    notice: 'bye',
    flushTimeoutMs: 1_000,
    stores: [{ flush: async () => void settled++ }],
    onDone: (s) => done(s),
  });
  assert.is(process.listenerCount(SIG), before + 1);
  const peer = await connectRaw(server.port);
  const got = collectAll(peer);
  process.emit(SIG, SIG);
  assert.is(process.listenerCount(SIG), before, 'handlers removed at the first signal');
  assert.is(await withTimeout(finished, 5_000, 'onDone'), SIG);
  assert.is((await got).data.toString(), 'bye');
  assert.is(settled, 1);
  assert.ok(loop.closing);
  assert.is(loop.stats().clients, 0);
  dispose();
  await destroyAll(peer);
});

test('a failed close goes to onError; bad arguments are refused with NETLOOP_INVALID_OPTION', async () => {
  const errors: unknown[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const failing = { close: () => Promise.reject(new Error('cannot close')) };
  closeOnSignals(failing, { signals: [SIG], exit: false, onError: (e) => errors.push(e), onDone: () => done() });
  process.emit(SIG, SIG);
  await finished;
  assert.equal(
    errors.map((e) => (e as Error).message),
    ['cannot close'],
  );
  for (const bad of [null, {}, 'loop']) {
    assert.throws(() => closeOnSignals(bad as unknown as EventLoop), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  }
  const loop = new EventLoop();
  assert.throws(() => closeOnSignals(loop, { flushTimeoutMs: -1 }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  assert.throws(() => closeOnSignals(loop, { notice: 5 as unknown as string }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  assert.throws(() => closeOnSignals(loop, { stores: [{} as never] }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  await loop.close();
});

test('a child process on SIGTERM: its peer gets the notice then FIN, the store settles after the clients, the child ends by SIGTERM', async () => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../fixtures/close-on-signals-child.js', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (code, signal) => r([code, signal])));
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          if (stdout.includes('\n')) resolve();
        });
        child.on('close', () => reject(new Error(`child ended early: ${stderr}`)));
      }),
      10_000,
      'the child to listen',
    );
    const port = Number(/^ready (\d+)/.exec(stdout)![1]);
    const peer = await connectRaw(port);
    peer.write('ping');
    assert.is((await readBytes(peer, 4)).toString(), 'ping');
    const rest = collectAll(peer);
    child.kill('SIGTERM');
    const [code, signal] = await withTimeout(exited, 10_000, 'the child to exit');
    assert.is(signal, 'SIGTERM', `exit ${String(code)} ${stderr}`);
    const r = await rest;
    assert.is(r.data.toString(), 'bye\n');
    assert.is(r.reset, false, 'a clean FIN, not a reset');
    assert.match(stdout, /settled 0\n/);
    await destroyAll(peer);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test.run();
