import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { flushOnSignals } from '../../../lib/core/flush-on-signals.js';

// In-process tests use SIGUSR2 with exit: false and emit the signal as an event, so nothing is
// actually delivered to the test process.
const SIG = 'SIGUSR2' as const;

test('flushes every target once (close preferred), removes its listeners, then reports done', async () => {
  const calls: string[] = [];
  const a = { close: async () => void calls.push('a.close'), flush: async () => void calls.push('a.flush') };
  const b = { flush: async () => void calls.push('b.flush') };
  const before = process.listenerCount(SIG);
  let done: (s: NodeJS.Signals) => void = () => undefined;
  const finished = new Promise<NodeJS.Signals>((r) => (done = r));
  const dispose = flushOnSignals([a, b], { signals: [SIG], exit: false, onDone: (s) => done(s) });
  assert.is(process.listenerCount(SIG), before + 1);
  process.emit(SIG, SIG);
  assert.is(process.listenerCount(SIG), before, 'listeners removed at the first signal');
  assert.is(await finished, SIG);
  assert.equal(calls.sort(), ['a.close', 'b.flush']);
  dispose();
  dispose();
});

test("method 'flush' prefers flush; failures and timeouts go to onError and never block", async () => {
  const calls: string[] = [];
  const errors: unknown[] = [];
  const ok = { close: async () => void calls.push('close'), flush: async () => void calls.push('flush') };
  const bad = {
    flush: () => {
      throw new Error('sync boom');
    },
  };
  const rejecting = { flush: async () => Promise.reject(new Error('async boom')) };
  const hanging = { flush: () => new Promise<void>(() => undefined) };
  const empty = {};
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  flushOnSignals([ok, bad, rejecting, hanging, empty], { signals: [SIG], method: 'flush', exit: false, timeoutMs: 20, onError: (e) => errors.push(e), onDone: () => done() });
  process.emit(SIG, SIG);
  await finished;
  assert.equal(calls, ['flush']);
  assert.equal(errors.map((e) => (e as Error).message).sort(), ['async boom', 'flush did not finish within 20 ms', 'sync boom']);
});

test('a bad timeout is refused', () => {
  assert.throws(() => flushOnSignals({}, { timeoutMs: -1 }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
});

test('a child process flushes its file store on SIGTERM, then exits by that signal', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  try {
    const file = path.join(dir, 'sessions.json');
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../fixtures/flush-on-signals-child.js', import.meta.url)), file, '7'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (code, signal) => r([code, signal])));
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (stdout.includes('\n')) resolve();
      });
      child.on('close', () => reject(new Error(`child ended early: ${stderr}`)));
    });
    assert.is(stdout.trim(), 'ready 7', 'seven changes pending, nothing saved yet');
    const existedBefore = await fs.access(file).then(() => true, () => false);
    assert.is(existedBefore, false);
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.is(signal, 'SIGTERM', `exit ${String(code)} ${stderr}`);
    const doc = JSON.parse(await fs.readFile(file, 'utf8')) as { sessions: unknown[] };
    assert.is(doc.sessions.length, 7);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test.run();
