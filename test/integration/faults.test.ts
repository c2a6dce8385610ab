/**
 * One named test for each of twenty bad inputs and faults a trustworthy
 * network server must survive (numbered items 1 to 20 below: lying frame
 * lengths, desync, slowloris, floods, a peer that never reads, too many
 * connections, handler faults, then a kill mid-save, a torn journal, a full
 * disk and a Redis restart), each against a live server where a
 * connection is involved. Each ends with a stable error code, closes only the
 * offender, and a witness peer proves the server still serves the others.
 * Items covered in depth elsewhere say where in a comment and still assert
 * something real here.
 */
import { suite } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as net from 'node:net';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { Client } from '../../lib/reactor/client.js';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';
import type { NetloopError } from '../../lib/core/errors.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import type { FramedMessage } from '../../lib/framing/framed-client.js';
import { LtvDecoder } from '../../lib/codec/ltv-decoder.js';
import { encodeJournalRecord, parseJournal } from '../../lib/store/file/journal.js';
import { FileStore } from '../../lib/store/file/file-store.js';
import { ManualClock } from '../../lib/core/clock.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { bindSessions } from '../../lib/binding/session-binding.js';
import { FaultyFs, makeRecord } from '../../lib/testing.js';
import { HEADER, frame, header, startLive } from '../helpers/live-server.js';
import { collectAll, connectRaw, destroyAll, pattern, readBytes, until, waitFor, withTimeout } from '../helpers/net.js';
import { Server } from '../../lib/reactor/server.js';

const F = suite('faults (twenty bad inputs and faults, items 1 to 20)');

/** A netloop layout with 1 KiB values at most: small enough to cross quickly. */
const SMALL = { preset: 'netloop', maxFrameLength: HEADER + 1024 } as const;
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

F('item 1: length 0 and exactly max are served; max + 1, 0xFFFFFFFF and a high-bit length close with NETLOOP_FRAME_TOO_LARGE', async () => {
  const live = await startLive({}, { layout: SMALL });
  try {
    const { peer } = await live.connect();
    const zero = frame(7, Buffer.alloc(0));
    const max = frame(8, pattern(1024), HEADER + 1024);
    peer.write(Buffer.concat([zero, max]));
    assert.ok((await readBytes(peer, zero.length + max.length)).equals(Buffer.concat([zero, max])));
    for (const len of [1025, 0xffffffff, 0x80000000, 0x80000001]) {
      const { peer: bad, client } = await live.connect();
      bad.write(header(len, 1));
      const rec = await live.closeOf(client);
      assert.equal(rec, { reason: 'protocol-error', code: ErrorCode.FRAME_TOO_LARGE }, `length ${len}`);
    }
    // A huge declared length allocated nothing: the decoder itself refuses it from the header.
    const sizes: number[] = [];
    const d = new LtvDecoder({ layout: SMALL, onFrame: () => undefined, allocate: (n) => (sizes.push(n), Buffer.alloc(n)) });
    assert.throws(() => d.feed(Buffer.concat([header(0xffffffff, 1), Buffer.alloc(10)])), (e: unknown) => isNetloopError(e, ErrorCode.FRAME_TOO_LARGE));
    assert.equal(sizes, []);
    peer.write(frame(9, 'still'));
    assert.is((await readBytes(peer, HEADER + 5)).subarray(HEADER).toString(), 'still');
    await live.witness();
  } finally {
    await live.stop();
  }
});

F('item 2: a length below the header it must include closes with NETLOOP_FRAME_TOO_SHORT', async () => {
  const layout = { preset: 'netloop', lengthIncludesLength: true, lengthIncludesType: true, maxFrameLength: 2048 } as const;
  const live = await startLive({}, { layout });
  try {
    const { peer, client } = await live.connect();
    peer.write(header(3, 1)); // declares 3 bytes for a frame whose header alone is 6
    assert.equal(await live.closeOf(client), { reason: 'protocol-error', code: ErrorCode.FRAME_TOO_SHORT });
    assert.is(live.server.clientCount, 0);
  } finally {
    await live.stop();
  }
});

F('item 3: the same stream fed one byte at a time is echoed identically (every offset is a cut)', async () => {
  // Every cut of every chunking is also checked on the pure decoder (ltv-decoder.test.ts, property tests).
  const live = await startLive();
  try {
    const { peer } = await live.connect();
    peer.setNoDelay(true);
    const stream = Buffer.concat([frame(1, 'a'), frame(2, Buffer.alloc(0)), frame(3, pattern(40)), frame(65535, 'zz')]);
    const back = readBytes(peer, stream.length);
    for (let i = 0; i < stream.length; i++) {
      peer.write(stream.subarray(i, i + 1));
      await tick();
    }
    assert.ok((await back).equals(stream));
  } finally {
    await live.stop();
  }
});

F('item 4: many frames plus a partial one in one chunk: all whole frames now, the partial one when it completes', async () => {
  const got: number[] = [];
  const live = await startLive({}, { onMessage: (_c, m) => void got.push(m.type) });
  try {
    const { peer } = await live.connect();
    const frames = Array.from({ length: 50 }, (_, i) => frame(i + 1, pattern(i)));
    const last = frame(51, pattern(300));
    peer.write(Buffer.concat([...frames, last.subarray(0, 100)]));
    await until(() => got.length === 50, '50 messages');
    assert.equal(got, Array.from({ length: 50 }, (_, i) => i + 1));
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
    assert.is(got.length, 50, 'the partial frame is not handed out');
    peer.write(last.subarray(100));
    await until(() => got.length === 51, 'the 51st message');
  } finally {
    await live.stop();
  }
});

F('item 5: an unknown message type (strict registry) closes with NETLOOP_UNKNOWN_TYPE before its value is read', async () => {
  const registry = new MessageRegistry();
  registry.register(1, 'echo', 'raw');
  const live = await startLive({}, { registry });
  try {
    const { peer, client } = await live.connect();
    peer.write(Buffer.concat([header(1000, 99), Buffer.alloc(10)]));
    assert.equal(await live.closeOf(client), { reason: 'protocol-error', code: ErrorCode.UNKNOWN_TYPE });
    await live.witness();
  } finally {
    await live.stop();
  }
});

F('item 6: a NUL then a flood (desync) closes with a coded reason; random bytes never crash the server (see fuzz-server.test.ts)', async () => {
  const live = await startLive({}, { layout: SMALL });
  try {
    const { peer, client } = await live.connect();
    peer.write(Buffer.concat([Buffer.from([0]), Buffer.alloc(256 * 1024, 0x41)]));
    assert.equal(await live.closeOf(client), { reason: 'protocol-error', code: ErrorCode.FRAME_TOO_LARGE });
    const { peer: rnd, client: rc } = await live.connect();
    // Fixed pseudo-random bytes (xorshift, seed 1): replayable without a random source.
    let x = 1;
    const junk = Buffer.alloc(4096, 0).map(() => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    });
    rnd.write(junk);
    const rec = await live.closeOf(rc);
    assert.is(rec.reason, 'protocol-error');
    assert.ok(rec.code === ErrorCode.FRAME_TOO_LARGE || rec.code === ErrorCode.FRAME_TOO_SHORT);
    await live.witness();
  } finally {
    await live.stop();
  }
});

F('item 7: one byte every (idle timeout - epsilon): the idle timer never fires, the frame deadline closes it (slowloris)', async () => {
  const live = await startLive({ idleTimeoutMs: 150 }, { frameTimeoutMs: 300 });
  try {
    const { peer, client } = await live.connect();
    const f = frame(1, pattern(100));
    let i = 0;
    const drip = setInterval(() => {
      if (!peer.destroyed && i < f.length - 1) peer.write(f.subarray(i, ++i));
    }, 60);
    const t0 = Date.now();
    try {
      const rec = await live.closeOf(client, 5_000);
      assert.equal(rec, { reason: 'frame-timeout', code: ErrorCode.FRAME_TIMEOUT });
      const took = Date.now() - t0;
      assert.ok(took >= 250 && took < 2_000, `closed at the frame deadline (${took} ms)`);
      assert.ok(i >= 3, 'bytes kept arriving within the idle timeout');
    } finally {
      clearInterval(drip);
    }
    await live.witness();
  } finally {
    await live.stop();
  }
});

F('item 8: a flood of tiny frames while the handler never keeps up: reading pauses at the inbound limit, memory stays bounded', async () => {
  const releases: Array<() => void> = [];
  let handled = 0;
  let flooder: Client | null = null;
  const live = await startLive(
    {},
    {
      maxPendingMessages: 16,
      maxPendingBytes: 64 * 1024,
      onMessage: (c, m) => {
        if (c !== flooder) {
          c.send(m.type, m.value);
          return undefined;
        }
        handled++;
        return new Promise<void>((resolve) => releases.push(resolve));
      },
    },
  );
  try {
    const { peer, client } = await live.connect();
    flooder = client;
    const tiny = frame(1, 'x');
    const flood = Buffer.concat(Array.from({ length: 20_000 }, () => tiny));
    for (let i = 0; i < 10; i++) peer.write(flood);
    await until(() => client.framingStats().paused === true, 'reading to pause');
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    const st = client.framingStats();
    assert.ok(st.inFlight <= 16, `at most 16 handlers at once (${st.inFlight})`);
    assert.ok(handled <= 16, `no handler beyond the limit ran (${handled})`);
    assert.ok(st.pendingBytes <= 64 * 1024 + flood.length, `pending bytes bounded (${st.pendingBytes})`);
    assert.not.ok(client.isReading());
    // The handler catches up: reading resumes and more messages flow.
    while (releases.length > 0) releases.shift()!();
    await until(() => handled > 16, 'more messages after the handler caught up');
    assert.is(client.closed, false);
    await live.witness();
  } finally {
    for (const r of releases) r();
    await live.stop();
  }
});

F('item 9: a large frame before authentication is refused by the smaller pre-auth limit; the same frame passes after it', async () => {
  const live = await startLive(
    {},
    {
      layout: { preset: 'netloop', maxFrameLength: 1024 * 1024 },
      preAuthMaxFrameLength: 512,
      onMessage: (c, m: FramedMessage) => {
        if (m.type === 100) c.markAuthenticated();
        else c.send(m.type, m.value);
      },
    },
  );
  try {
    const big = frame(2, pattern(4096));
    const { peer: anon, client: anonClient } = await live.connect();
    anon.write(big);
    assert.equal(await live.closeOf(anonClient), { reason: 'protocol-error', code: ErrorCode.FRAME_TOO_LARGE });
    const { peer } = await live.connect();
    peer.write(Buffer.concat([frame(100, 'login'), big]));
    assert.ok((await readBytes(peer, big.length)).equals(big));
  } finally {
    await live.stop();
  }
});

F('item 10: a peer that never reads: the hard limit closes at once, the soft limit after its time; others unaffected', async () => {
  const live = await startLive({ maxOutputBytes: 2 * 1024 * 1024, softOutputLimit: { bytes: 256 * 1024, forMs: 200 } });
  try {
    // Hard: one client flooded past 2 MiB queued.
    const { peer: p1, client: c1 } = await live.connect();
    p1.pause();
    let refused = false;
    for (let i = 0; i < 200 && !refused; i++) {
      refused = !c1.write(pattern(64 * 1024, i));
      await tick();
    }
    assert.ok(refused);
    assert.equal(await live.closeOf(c1), { reason: 'output-limit', code: ErrorCode.OUTPUT_LIMIT });
    // Soft: held above 256 KiB (and below the hard limit) for 200 ms.
    const { peer: p2, client: c2 } = await live.connect();
    p2.pause();
    const t0 = Date.now();
    const fill = setInterval(() => {
      if (!c2.closed && !c2.closing && c2.queuedBytes < 1024 * 1024) c2.write(pattern(64 * 1024));
    }, 10);
    try {
      assert.equal(await live.closeOf(c2), { reason: 'output-soft-limit', code: ErrorCode.OUTPUT_SOFT_LIMIT });
      assert.ok(Date.now() - t0 >= 180, 'not before its time');
    } finally {
      clearInterval(fill);
    }
    await live.witness();
  } finally {
    await live.stop();
  }
});

F("item 11: write after the peer's FIN or RST, and destroy() with writes queued: coded errors, each waiter settled once", async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { softOutputLimit: null }).listen();
  const peers: net.Socket[] = [];
  try {
    // After FIN: the client flushes and closes (peer-closed); writes then return false, queuing nothing.
    const c1p = waitFor<[Client]>(server, 'connection');
    const fin = await connectRaw(server.port, { allowHalfOpen: true });
    peers.push(fin);
    const [c1] = await c1p;
    const got = collectAll(fin);
    const closed1 = waitFor(server, 'close', { filter: (c) => c === c1 });
    c1.write('before');
    fin.end();
    await closed1;
    assert.is((await got).data.toString(), 'before', 'output queued before the FIN was still sent (muduo #130)');
    assert.is(c1.write('after'), false);
    // After RST: the close is 'reset' with ECONNRESET, never an unhandled error.
    const c2p = waitFor<[Client]>(server, 'connection');
    const rst = await connectRaw(server.port);
    peers.push(rst);
    const [c2] = await c2p;
    const closed2 = waitFor<[Client, string, NetloopError]>(server, 'close', { filter: (c) => c === c2 });
    rst.resetAndDestroy();
    const [, reason2, err2] = await closed2;
    assert.is(reason2, 'reset');
    assert.is(err2.details['syscallCode'], 'ECONNRESET');
    assert.is(c2.write('after'), false);
    // destroy with 8 MiB queued to a peer that does not read: the waiter rejects once, no write-complete.
    const c3p = waitFor<[Client]>(server, 'connection');
    const slow = await connectRaw(server.port);
    peers.push(slow);
    slow.pause();
    const [c3] = await c3p;
    let completes = 0;
    c3.setWriteCompleteCallback(() => completes++);
    for (let i = 0; i < 8; i++) c3.write(pattern(1024 * 1024, i));
    await tick();
    const settled: string[] = [];
    const waiter = c3.flushed().then(
      () => settled.push('resolved'),
      (e: unknown) => settled.push((e as NetloopError).code),
    );
    const closed3 = waitFor<[Client, string]>(server, 'close', { filter: (c) => c === c3 });
    c3.destroy();
    const [, reason3] = await closed3;
    await waiter;
    assert.is(reason3, 'force-close');
    assert.equal(settled, [ErrorCode.CLIENT_CLOSED]);
    assert.is(completes, 0);
    assert.is(server.clientCount, 0);
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

F('item 12: more connections than maxConnections: the extra is dropped and counted; the others are untouched', async () => {
  // Also: server.test.ts ("beyond maxConnections ...") and tls-transport.test.ts over TLS.
  const live = await startLive({ maxConnections: 2 });
  try {
    const a = await live.connect();
    await live.connect();
    const dropped = waitFor(live.server, 'drop');
    const extra = await connectRaw(live.port);
    await dropped;
    await collectAll(extra);
    assert.is(live.loop.stats().counters.dropped, 1);
    a.peer.write(frame(1, 'ok'));
    assert.is((await readBytes(a.peer, HEADER + 2)).subarray(HEADER).toString(), 'ok');
  } finally {
    await live.stop();
  }
});

F('item 13: an idle or half-open peer is closed by idle detection, and its session ends with it (session binding)', async () => {
  const live = await startLive({ idleTimeoutMs: 100 });
  const registry = new SessionRegistry({ clock: live.loop.clock, ttlMs: 60_000, resumeWindowMs: 0, autoAudit: false });
  const binding = bindSessions(live.server, registry, { handshakeTimeoutMs: 0 });
  try {
    const { client } = await live.connect();
    const { session, token } = await binding.login(client, { userId: 'idle-user' });
    assert.ok((await registry.get(session.id)) !== null);
    assert.equal(await live.closeOf(client), { reason: 'idle-timeout', code: ErrorCode.IDLE_TIMEOUT });
    // No resume window: the session ends with its connection and can never be resumed.
    const deadline = Date.now() + 5_000;
    while ((await registry.get(session.id)) !== null) {
      if (Date.now() > deadline) throw new Error('the session outlived its idle connection');
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
    }
    let code: unknown;
    try {
      await registry.resume(token, 'another-connection', null);
    } catch (err) {
      code = (err as NetloopError).code;
    }
    assert.is(code, ErrorCode.BAD_TOKEN);
  } finally {
    await binding.close();
    await live.stop();
    await registry.close();
  }
});

F('item 14: close() under traffic ends each client exactly once and resolves once (in depth: graceful-close.test.ts)', async () => {
  const live = await startLive();
  try {
    const { peer, client } = await live.connect();
    const pump = setInterval(() => {
      if (!peer.destroyed) peer.write(frame(1, pattern(200)));
    }, 1);
    let resolved = 0;
    try {
      const p = live.server.close({ flushTimeoutMs: 500, notice: frame(2, 'bye') });
      void p.then(() => resolved++);
      await p;
    } finally {
      clearInterval(pump);
    }
    await tick();
    assert.is(resolved, 1);
    assert.is(live.closes.get(client.id)!.length, 1);
    assert.is(live.closes.get(client.id)![0]!.reason, 'server-close');
  } finally {
    await live.stop();
  }
});

F('item 15: a handler that throws or rejects closes only that connection with NETLOOP_HANDLER_ERROR; the server lives', async () => {
  const live = await startLive(
    {},
    {
      onMessage: (c, m) => {
        if (m.type === 13) throw new Error('handler bug');
        if (m.type === 14) return Promise.reject(new Error('async handler bug'));
        c.send(m.type, m.value);
        return undefined;
      },
    },
  );
  try {
    const { peer: a, client: ca } = await live.connect();
    const { peer: b, client: cb } = await live.connect();
    a.write(frame(13, 'x'));
    b.write(frame(14, 'y'));
    assert.equal(await live.closeOf(ca), { reason: 'handler-error', code: ErrorCode.HANDLER_ERROR });
    assert.equal(await live.closeOf(cb), { reason: 'handler-error', code: ErrorCode.HANDLER_ERROR });
    await live.witness();
  } finally {
    await live.stop();
  }
});

F('item 16: the application sends an oversize frame or a wrong-typed value: a synchronous coded error, nothing partial on the wire', async () => {
  const registry = new MessageRegistry();
  registry.register(1, 'text', 'utf8');
  registry.register(2, 'bytes', 'raw');
  const live = await startLive({}, { layout: SMALL, registry });
  try {
    const { peer, client } = await live.connect();
    assert.throws(() => client.send('bytes', Buffer.alloc(1025)), (e: unknown) => isNetloopError(e, ErrorCode.FRAME_TOO_LARGE));
    assert.throws(() => client.send('text', 42), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_VALUE));
    assert.is(client.queuedBytes, 0, 'nothing was queued');
    client.send('text', 'ok');
    const expected = frame(1, 'ok');
    assert.ok((await readBytes(peer, expected.length)).equals(expected), 'the first bytes on the wire are the good frame');
    assert.is(client.closed, false);
  } finally {
    await live.stop();
  }
});

F('item 17: a kill during a save leaves the old or the new file, never a torn one (in depth: the crash campaign of file-store.test.ts, 50 kills in test/stress/file-store-crash.test.ts)', async () => {
  // In process: a save that fails on its final rename leaves the previous snapshot intact and parseable.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  const file = path.join(dir, 'sessions.json');
  const clock = new ManualClock();
  try {
    const first = await FileStore.open({ path: file, clock });
    await first.create(makeRecord(clock, { id: 'old' }));
    await first.close();
    const before = await fs.readFile(file, 'utf8');
    const faulty = new FaultyFs();
    const store = await FileStore.open({ path: file, clock, fs: faulty, retries: 0 });
    faulty.fail('rename', 'EIO');
    await store.create(makeRecord(clock, { id: 'new' }));
    let code: unknown;
    try {
      await store.flush();
    } catch (err) {
      code = (err as NetloopError).code;
    }
    assert.is(code, ErrorCode.STORE_IO);
    assert.is(await fs.readFile(file, 'utf8'), before, 'the old file, byte for byte');
    JSON.parse(before);
    await store.close().catch(() => undefined);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

F('item 18: a truncated journal tail is dropped; a bad checksum mid-file is NETLOOP_JOURNAL_CORRUPT', () => {
  // In depth: journal.test.ts (every cut offset) and file-store.test.ts (the store's recovery).
  const recs = ['set a', 'set b', 'del a'].map((t) => encodeJournalRecord(Buffer.from(t)));
  const all = Buffer.concat(recs);
  const cut = parseJournal(all.subarray(0, all.length - 3));
  assert.is(cut.records.length, 2);
  assert.is(cut.tail?.reason, 'truncated');
  const bad = Buffer.from(all);
  bad[recs[0]!.length + recs[1]!.length - 1]! ^= 0xff; // the last byte of the middle record's payload
  assert.throws(() => parseJournal(bad), (e: unknown) => isNetloopError(e, ErrorCode.JOURNAL_CORRUPT));
});

F('item 19: ENOSPC while saving: bounded retries, an error state, nothing reported durable (in depth: file-store.test.ts)', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-'));
  const clock = new ManualClock();
  try {
    const faulty = new FaultyFs();
    const store = await FileStore.open({ path: path.join(dir, 's.json'), clock, fs: faulty, retries: 2, retryDelayMs: 1 });
    faulty.fail('write', 'ENOSPC', { times: Infinity });
    await store.create(makeRecord(clock, { id: 'x' }));
    let err: unknown;
    try {
      await store.flush();
    } catch (e) {
      err = e;
    }
    assert.ok(isNetloopError(err, ErrorCode.STORE_IO));
    assert.is((err as NetloopError).details['syscallCode'], 'ENOSPC');
    assert.ok(faulty.counts.write >= 1 && faulty.counts.write <= 3, `bounded retries (${faulty.counts.write} writes)`);
    assert.is(store.status, 'error');
    faulty.heal();
    await store.close().catch(() => undefined);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

F('item 20: Redis restarted mid-command: see redis-store.test.ts "Redis restarted mid-command"; here the coded error of an unreachable Redis', async () => {
  const { RedisStore } = await import('../../lib/store/redis/redis-store.js');
  const { refusedPort } = await import('../helpers/net.js');
  const port = await refusedPort();
  const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300, connectTimeoutMs: 300, reconnectMaxDelayMs: 50 });
  let err: unknown;
  try {
    await withTimeout(store.get('x'), 5_000, 'a command against a dead Redis');
  } catch (e) {
    err = e;
  }
  assert.ok(isNetloopError(err, ErrorCode.STORE_UNAVAILABLE), `got ${String((err as Error)?.message)}`);
  await store.close().catch(() => undefined);
});

F.run();
