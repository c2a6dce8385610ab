/**
 * The chat example (examples/chat), its traffic and limits: every client
 * (raw cellnet peers and the terminal client, as child processes) receives
 * every message in one order; a client that never reads is closed at the
 * hard output limit with a coded reason, and the others get everything.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../../../lib/core/errors.js';
import { spawn } from 'node:child_process';
import { CHAT_CLIENT, ChatRig, acceptedId } from '../../helpers/chat.js';
import { waitForLog } from '../../helpers/log-lines.js';
import { until, withTimeout } from '../../helpers/net.js';

const rig = new ChatRig();
test.after.each(() => rig.cleanup());

test('every client receives every message, in one order; the netloop client chats too', async () => {
  const { port, handle: srv } = await rig.server();
  const a = await rig.peer(port);
  const b = await rig.peer(port);
  const c = rig.client(port, 'cli');
  const welcome = await c.waitForLine(/^\* session \S+ new as sid\d+/, 15_000, 'a welcome');
  const cid = /as sid(\d+)/.exec(welcome)![1]!;
  const N = 30;
  for (let i = 0; i < N; i++) {
    a.say(`a${i}`);
    b.say(`b${i}`);
    c.send(`c${i}`);
  }
  const total = 3 * N;
  const fromA = await a.waitAcks(total);
  const fromB = await b.waitAcks(total);
  const lines: string[] = [];
  while (lines.length < total) lines.push(await c.waitForLine(/^sid\d+ say: /, 15_000, `ack ${lines.length + 1} of ${total}`));
  // Everyone saw the same sequence, and each sender's messages in the order sent.
  const seq = fromA.map((m) => `sid${m.id} say: ${m.content}`);
  assert.equal(fromB.map((m) => `sid${m.id} say: ${m.content}`), seq);
  assert.equal(lines, seq);
  for (const [who, prefix] of [['a', 'a'], ['b', 'b'], ['c', 'cli: c']] as const) {
    const mine = seq.filter((l) => l.includes(`say: ${prefix}`)).map((l) => l.slice(l.indexOf('say: ') + 5));
    assert.equal(mine, Array.from({ length: N }, (_, i) => `${prefix}${i}`), `order of ${who}`);
  }
  assert.ok(seq.filter((l) => l.startsWith(`sid${cid} `)).length === N, "the netloop client's messages carry its id");
  // The raw cellnet peers never said hello: not one netloop message reached them.
  const ack = a.protocol.ChatACK.id;
  assert.ok(a.frames.every((f) => f.type === ack) && b.frames.every((f) => f.type === ack));
  await waitForLog(srv, { event: 'hello', clientId: cid, sessionId: /^\S+$/, resumed: false, userName: 'cli' }, 5_000, 'the hello log line');
});

test('piped input: the client sends every line, those read before it connected too, then exits 0 at the end of its input', async () => {
  const { port } = await rig.server();
  const peer = await rig.peer(port);
  const child = spawn(process.execPath, [CHAT_CLIENT, '--port', String(port), '--name', 'bot'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  try {
    // The whole input at once: its end is read before the connection is made.
    child.stdin.end('hello\nworld\n');
    assert.is(await withTimeout(exited, 15_000, 'the client to exit'), 0);
    const acks = await peer.waitAcks(2);
    assert.equal(
      acks.map((a) => a.content),
      ['bot: hello', 'bot: world'],
    );
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('a client that never reads: the others get everything; it is closed at the hard limit with a coded reason', async () => {
  const { port, handle: srv } = await rig.server(['--max-output-bytes', String(4 * 1024 * 1024), '--soft-output-bytes', '0']);
  const slow = await rig.peer(port);
  slow.socket.pause();
  const slowId = await acceptedId(srv, slow);
  const sender = await rig.peer(port);
  const other = await rig.peer(port);
  // Enough to fill the kernel's buffers on both sides of the slow socket and then 4 MiB more.
  const M = 400;
  const body = 'x'.repeat(60_000);
  // The sender keeps at most 8 messages in flight, so the readers are never far behind.
  for (let i = 0; i < M; i++) {
    if (i >= 8) await until(() => sender.frames.length >= i - 8, `echo ${i - 8}`, 15_000);
    sender.say(`${i}:${body}`);
  }
  const got = await other.waitAcks(M, 30_000);
  const mine = await sender.waitAcks(M, 30_000);
  assert.equal(got.map((m) => m.content.slice(0, m.content.indexOf(':'))), Array.from({ length: M }, (_, i) => String(i)));
  assert.is(mine.length, M);
  await waitForLog(srv, { event: 'close', clientId: slowId, reason: 'output-limit', code: ErrorCode.OUTPUT_LIMIT }, 10_000, 'the output-limit close');
  assert.not.ok(other.closed || sender.closed, 'the readers were not dropped');
});

test.run();
