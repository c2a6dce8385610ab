/**
 * A notice reaches a slow reader that keeps sending. Every close that
 * follows a notice is graceful: flush, FIN, then read and discard the
 * peer's input until it closes. A destroy with unread input pending makes
 * the kernel reset the connection and drop what it still holds for the peer
 * (the notice's tail); these tests overrun the kernel's buffers on purpose
 * (a 4 MiB notice to a peer reading about 2 MiB/s, or 1 MiB of queued chat
 * at 512 KiB/s) and check every byte arrives, then EOF, in 8 of 8 tries:
 *
 *   (a) the seed flow: append, enable writing, a write-complete callback
 *       that calls loop.removeClient, updateClient;
 *   (b) the session binding's expiry notice (bindSessions with a notice
 *       builder returning 4 MiB);
 *   (c) the chat example, whose server must also answer nothing more on a
 *       connection once its Expired notice is queued.
 *
 * The eight tries of a case run side by side, so each case takes the time
 * of one slow read.
 */

import { suite } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { Client } from '../../lib/reactor/client.js';
import type { CloseReason } from '../../lib/reactor/close-reason.js';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';
import type { NetloopError } from '../../lib/core/errors.js';
import { ManualClock } from '../../lib/core/clock.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { bindSessions } from '../../lib/binding/session-binding.js';
import { connectionProbe } from '../../lib/binding/connection-probe.js';
import { LtvDecoder } from '../../lib/codec/ltv-decoder.js';
import { createChatProtocol } from '../../examples/chat/protocol.js';
import type { Expired, HeartbeatAck } from '../../examples/chat/protocol.js';
import { digest, pattern, until, withTimeout } from '../helpers/net.js';
import { exampleScript, startChatChild } from '../helpers/chat.js';
import { waitForLog } from '../helpers/log-lines.js';
import { Server } from '../../lib/reactor/server.js';
import { FramedServer } from '../../lib/framing/framed-server.js';

const TRIES = 8;
const NOTICE_BYTES = 4 * 1024 * 1024;

/** What a slow peer saw. */
interface PeerResult {
  /** Every byte received, in order. */
  data: Buffer;
  /** The peer's FIN arrived (EOF) before any error. */
  eof: boolean;
  /** The socket error, if any (ECONNRESET when the kernel reset the connection). */
  error: string | null;
}

/**
 * A peer that reads at `rate` bytes/s (pausing its socket whenever it is
 * ahead) and sends `next()` every `everyMs` until the server's FIN; then it
 * ends its side too. Its first `onData` sees every chunk (to react to what
 * it reads).
 */
function slowPeer(
  port: number,
  rate: number,
  everyMs: number,
  next: () => Buffer | null,
  onData: (chunk: Buffer, socket: net.Socket) => void = () => undefined,
): { socket: net.Socket; result: Promise<PeerResult> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let got = 0;
  let t0 = 0;
  let eof = false;
  let error: string | null = null;
  const sender = setInterval(() => {
    if (!socket.writable || socket.connecting) return;
    const b = next();
    if (b !== null) socket.write(b);
  }, everyMs);
  socket.on('data', (c: Buffer) => {
    if (t0 === 0) t0 = Date.now();
    chunks.push(c);
    got += c.length;
    onData(c, socket);
    const allowed = ((Date.now() - t0) / 1000) * rate;
    if (got > allowed) {
      socket.pause();
      setTimeout(() => socket.resume(), ((got - allowed) / rate) * 1000);
    }
  });
  socket.on('end', () => {
    if (error === null) eof = true;
    clearInterval(sender);
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? String(e);
  });
  const result = withTimeout(
    new Promise<PeerResult>((resolve) => {
      socket.on('close', () => {
        clearInterval(sender);
        resolve({ data: Buffer.concat(chunks), eof, error });
      });
    }),
    30_000,
    'the slow peer to be closed',
  );
  return { socket, result };
}

interface Closed {
  client: Client;
  reason: CloseReason;
  error: NetloopError | undefined;
}

const N = suite('a notice reaches a slow reader that keeps sending');

N('(a) the seed flow (append, enable writing, write-complete -> removeClient, update): the whole 4 MiB notice then EOF, 8 of 8', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  const notice = pattern(NOTICE_BYTES, 3);
  const closes: Closed[] = [];
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  const removed = new Set<Client>();
  let dataAfterRemove = 0;
  server.on('data', (client: Client) => {
    if (removed.has(client)) dataAfterRemove++;
  });
  server.on('connection', (client: Client) => {
    client.appendToOutputBuffer(notice);
    client.enableWriting();
    client.setWriteCompleteCallback((c) => {
      removed.add(c);
      loop.removeClient(c.id);
    });
    loop.updateClient(client);
  });
  try {
    const input = Buffer.alloc(1024, 0x62);
    const peers = Array.from({ length: TRIES }, () => slowPeer(server.port, 2 * 1024 * 1024, 5, () => input));
    const results = await Promise.all(peers.map((p) => p.result));
    const expected = digest(notice);
    const summary = results.map((r) => `${r.data.length} ${r.eof ? 'EOF' : 'no EOF'} ${r.error ?? ''}`);
    assert.ok(
      results.every((r) => r.error === null && r.eof && r.data.length === NOTICE_BYTES && digest(r.data) === expected),
      `every try got the whole notice then EOF: ${summary.join('; ')}`,
    );
    await until(() => closes.length === TRIES, 'every close reported');
    assert.ok(closes.every((c) => c.reason === 'removed' && c.error === undefined), JSON.stringify(closes.map((c) => [c.reason, c.error?.code])));
    assert.is(removed.size, TRIES);
    assert.is(dataAfterRemove, 0, 'nothing read after removeClient reached the application');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

N("(b) the session binding's expiry notice (4 MiB from the notice builder): whole, then EOF, 8 of 8", async () => {
  const loop = new EventLoop();
  const registry = new SessionRegistry({ ttlMs: 300, granularityMs: 50, autoAudit: false, isConnectionAlive: connectionProbe(loop) });
  const server = await new Server(loop).listen();
  const notice = pattern(NOTICE_BYTES, 5);
  // Traffic does not refresh the session (only heartbeats would): it expires while the peer keeps sending.
  const sessions = bindSessions(server, registry, { refreshOn: 'heartbeat', notice: () => notice });
  const closes: Closed[] = [];
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  server.on('connection', (client: Client) => {
    sessions.login(client).catch(() => undefined);
  });
  try {
    const input = Buffer.alloc(1024, 0x63);
    const peers = Array.from({ length: TRIES }, () => slowPeer(server.port, 2 * 1024 * 1024, 5, () => input));
    const results = await Promise.all(peers.map((p) => p.result));
    const expected = digest(notice);
    const summary = results.map((r) => `${r.data.length} ${r.eof ? 'EOF' : 'no EOF'} ${r.error ?? ''}`);
    assert.ok(
      results.every((r) => r.error === null && r.eof && r.data.length === NOTICE_BYTES && digest(r.data) === expected),
      `every try got the whole notice then EOF: ${summary.join('; ')}`,
    );
    await until(() => closes.length === TRIES, 'every close reported');
    assert.ok(
      closes.every((c) => c.reason === 'session-expired' && c.error === undefined),
      JSON.stringify(closes.map((c) => [c.reason, c.error?.code])),
    );
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    await sessions.close();
    await registry.close();
  }
});

N('(c) the chat example: a talking client whose session expires gets its queued chat and the Expired notice, then EOF, and no answer after it, 8 of 8', async () => {
  const { port, handle } = await startChatChild(exampleScript('chat', 'server.js'), ['--port', '0', '--ttl-ms', '400']);
  const p = createChatProtocol();
  const BURST = 128;
  const content = 'c'.repeat(1000);
  try {
    // Each peer says hello, and once every peer has its welcome, sends a burst of chat that
    // the server broadcasts to all (BURST x TRIES ChatACKs of about 1 KiB queued to each);
    // then it reads slowly and sends a heartbeat every second, more than the TTL apart, so
    // the session expires while it still has most of its chat to read, and keeps talking.
    const peers = Array.from({ length: TRIES }, () => {
      const frames: Array<{ type: number; value: Buffer }> = [];
      const decoder = new LtvDecoder({ layout: p.layout, copy: true, onFrame: (type, value) => frames.push({ type, value }) });
      let hello = false;
      const peer = slowPeer(
        port,
        512 * 1024,
        1000,
        () => (hello ? p.frame(p.Heartbeat, {}) : null),
        (chunk) => decoder.feed(chunk),
      );
      peer.socket.once('connect', () => {
        peer.socket.write(p.frame(p.Hello, { name: '', token: '' }));
        hello = true;
      });
      return { ...peer, frames };
    });
    await until(() => peers.every((x) => x.frames.some((f) => f.type === p.Welcome.id)), 'every welcome', 10_000);
    const burst = Buffer.concat(Array.from({ length: BURST }, () => p.frame(p.ChatREQ, { content })));
    for (const x of peers) x.socket.write(burst);
    const results = await Promise.all(peers.map((x) => x.result));
    for (const [i, x] of peers.entries()) {
      const r = results[i]!;
      const types = x.frames.map((f) => f.type);
      const acks = types.filter((t) => t === p.ChatACK.id).length;
      const zeroAcks = x.frames.filter(
        (f) => f.type === p.HeartbeatACK.id && (p.registry.decode(f.type, f.value).payload as HeartbeatAck).ttlMs === 0,
      ).length;
      const expiredAt = types.indexOf(p.Expired.id);
      const what = `try ${i}: ${r.data.length} bytes, ${acks} acks, expired at ${expiredAt} of ${types.length}, ${zeroAcks} HeartbeatACK{0}, ${r.eof ? 'EOF' : 'no EOF'} ${r.error ?? ''}`;
      assert.ok(r.error === null && r.eof, what);
      assert.is(acks, BURST * TRIES, what);
      assert.is(expiredAt, types.length - 1, `the Expired notice is the last frame: ${what}`);
      assert.equal(p.registry.decode(p.Expired.id, x.frames[expiredAt]!.value).payload as Expired, { reason: 'ttl' });
      assert.is(zeroAcks, 0, `no answer after the notice: ${what}`);
    }
    for (let i = 0; i < TRIES; i++) await waitForLog(handle, { event: 'close', reason: 'session-expired' }, 5_000, 'a session-expired close');
  } finally {
    await handle.kill();
  }
});

N('a close of ours reads and discards even when the application or the framing layer paused reading: the peer gets every byte and EOF, and the close is reported when it closes', async () => {
  const loop = new EventLoop();
  const raw = await new Server(loop, { shutdownTimeoutMs: 60_000 }).listen();
  // A handler that never settles: the framing layer pauses reading after one message.
  const framed = await new FramedServer(loop, { shutdownTimeoutMs: 60_000, maxPendingMessages: 1, onMessage: () => new Promise<void>(() => undefined) }).listen();
  const closes: Closed[] = [];
  for (const s of [raw, framed]) s.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  try {
    const reply = pattern(1024 * 1024, 9);
    const input = Buffer.from([0, 0, 0, 0, 0, 1]); // one empty netloop frame of type 1, again and again
    const make = async (port: number): Promise<{ client: Client; peer: ReturnType<typeof slowPeer> }> => {
      const server = port === raw.port ? raw : framed;
      const accepted = new Promise<Client>((r) => server.once('connection', r));
      const peer = slowPeer(port, 2 * 1024 * 1024, 2, () => input);
      return { client: await accepted, peer };
    };
    const a = await make(raw.port);
    const b = await make(framed.port);
    a.client.pause();
    await until(() => !b.client.isReading(), 'the framing layer to pause reading');
    for (const x of [a, b]) {
      x.client.write(reply);
      x.client.end();
    }
    const results = await Promise.all([a.peer.result, b.peer.result]);
    for (const r of results) {
      assert.is(r.error, null);
      assert.ok(r.eof);
      assert.is(digest(r.data), digest(reply));
    }
    await until(() => closes.length === 2, 'both closes, reported as the peers closed (well before the 60 s deadline)');
    assert.ok(closes.every((c) => c.reason === 'shutdown' && c.error === undefined), JSON.stringify(closes.map((c) => [c.reason, c.error?.code])));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

N("removeClient's deadline: a peer that never closes is destroyed after timeoutMs, the caller's reason kept with NETLOOP_CLOSE_TIMEOUT; destroy stays the immediate destroy", async () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  const server = await new Server(loop, { shutdownTimeoutMs: 60_000 }).listen();
  const closes: Closed[] = [];
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  const accepted: Client[] = [];
  server.on('connection', (c: Client) => accepted.push(c));
  // Peers that read everything but never close their side.
  const peers = [
    net.connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true }),
    net.connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true }),
  ];
  const got = peers.map(() => ({ bytes: 0, eof: false }));
  peers.forEach((p, i) => {
    p.on('data', (c: Buffer) => (got[i]!.bytes += c.length));
    p.on('end', () => (got[i]!.eof = true));
    p.on('error', () => undefined);
  });
  try {
    await until(() => accepted.length === 2, 'two clients');
    const [a, b] = accepted as [Client, Client];
    a.write(pattern(100_000));
    assert.ok(loop.removeClient(a.id, 'session-expired', { timeoutMs: 1_000 }));
    assert.not.ok(a.writable);
    assert.throws(() => loop.removeClient(b.id, 'removed', { timeoutMs: -1 }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    await until(() => got[0]!.eof, 'the FIN after every queued byte');
    assert.is(got[0]!.bytes, 100_000);
    assert.not.ok(a.closed, 'still open: the peer has not closed');
    clock.advance(1_000);
    loop.runDueTimers();
    await until(() => closes.length === 1, 'the close at the deadline');
    assert.is(closes[0]!.reason, 'session-expired');
    assert.is(closes[0]!.error?.code, ErrorCode.CLOSE_TIMEOUT);
    // destroy: queued output dropped, no FIN first.
    b.disableWriting();
    b.appendToOutputBuffer(pattern(100_000));
    b.destroy('removed');
    await until(() => closes.length === 2, 'the forced close');
    assert.is(closes[1]!.reason, 'removed');
    assert.is(got[1]!.bytes, 0);
  } finally {
    for (const p of peers) p.destroy();
    await loop.close({ flushTimeoutMs: 100 });
  }
});

N.run();
