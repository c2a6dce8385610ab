/**
 * No handler can take the process down: every call into application code
 * from the network (each event of a Server and a Connector, the framing's
 * 'message' event, write-complete, high-water and close callbacks) runs
 * under a guard. A throw or a rejected promise closes only the client it
 * concerns (`handler-error`, `NETLOOP_HANDLER_ERROR` with `cause` and
 * `details.clientId`); a fault that concerns no open client goes to the
 * owner's 'error' path, which is a process warning when nobody listens.
 *
 * Each test sends the input that makes one handler fail, then checks that
 * the server still serves a second client, and that nothing reached the
 * process as an uncaught exception or an unhandled rejection (a trap stands
 * in for the crash those would be without it).
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as dc from 'node:diagnostics_channel';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server, type ServerOptions } from '../../../lib/reactor/server.js';
import { Connector } from '../../../lib/reactor/connector.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import type { FramedClient, FramedMessage } from '../../../lib/framing/framed-client.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import { bindSessions } from '../../../lib/binding/session-binding.js';
import { connectionProbe } from '../../../lib/binding/connection-probe.js';
import { CHANNEL_NAMES } from '../../../lib/reactor/diagnostics.js';
import type { HandlerErrorMessage } from '../../../lib/reactor/diagnostics.js';
import { collectAll, connectRaw, destroyAll, readBytes, refusedPort, until, waitFor } from '../../helpers/net.js';

// ─── harness ─────────────────────────────────────────────────────────────────

/**
 * What would have ended the process: uncaught exceptions, unhandled
 * rejections. Listening for them keeps the run alive, so a fault that
 * escapes fails its test by assertion instead of killing every test.
 * Warnings are collected too (the 'error' path's default).
 */
interface Trap {
  readonly fatal: unknown[];
  readonly warnings: Error[];
  release(): void;
}

function trap(): Trap {
  const fatal: unknown[] = [];
  const warnings: Error[] = [];
  const onFatal = (err: unknown): void => {
    fatal.push(err);
  };
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  process.on('warning', onWarning);
  return {
    fatal,
    warnings,
    release() {
      process.off('uncaughtException', onFatal);
      process.off('unhandledRejection', onFatal);
      process.off('warning', onWarning);
    },
  };
}

/** Lets queued microtasks, nextTicks and a couple of loop turns run (a fault reported late shows up). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

interface Closed {
  client: Client;
  reason: CloseReason;
  error: NetloopError | undefined;
}

/** The 'data' listener of {@link echoServer}: echoes every chunk except those containing `boom`. */
function echo(c: Client, chunk: Buffer): void {
  if (!chunk.includes('boom')) c.write(chunk);
}

/**
 * A server whose raw 'data' echoes ({@link echo}), recording every close.
 * `firstClose` is a 'close' listener registered before the recording one.
 */
async function echoServer(
  loop: EventLoop,
  options: ServerOptions = {},
  firstClose?: (client: Client, reason: CloseReason, error?: NetloopError) => void,
): Promise<{ server: Server; closes: Closed[] }> {
  const server = await new Server(loop, options).listen();
  const closes: Closed[] = [];
  if (firstClose !== undefined) server.on('close', firstClose);
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
  server.on('data', echo);
  return { server, closes };
}

/** A second client of a raw echo server sends a line and gets it back: the server still serves. */
async function assertEchoes(port: number): Promise<void> {
  const peer = await connectRaw(port);
  try {
    peer.write('still serving');
    assert.is((await readBytes(peer, 13)).toString(), 'still serving');
  } finally {
    await destroyAll(peer);
  }
}

/** The close of `client` from `closes`, once it is there. */
async function closeOf(closes: Closed[], client: () => Client | undefined): Promise<Closed> {
  await until(() => closes.some((c) => c.client === client()), 'the close of the failing client');
  return closes.find((c) => c.client === client())!;
}

/** A close with handler-error, its error coded, naming the client and carrying the cause. */
function assertHandlerError(c: Closed, cause: RegExp | string): void {
  assert.is(c.reason, 'handler-error');
  assert.ok(c.error !== undefined, 'the close carries an error');
  assert.is(c.error.code, ErrorCode.HANDLER_ERROR);
  assert.is(c.error.details['clientId'], c.client.id);
  const inner = c.error.cause;
  if (typeof cause === 'string') assert.ok(isNetloopError(inner) && inner.code === cause, `cause is ${cause}: ${String(inner)}`);
  else assert.match(String((inner as Error)?.message ?? inner), cause);
}

function clean(t: Trap): void {
  assert.equal(t.fatal.map(String), [], 'nothing escaped to the process');
}

// ─── the Server's events ─────────────────────────────────────────────────────

const S = suite("a failing listener of a Server's event");

S("an async 'data' listener that rejects (the README's bindSessions login, the same line sent twice) closes only that client", async () => {
  const t = trap();
  const loop = new EventLoop();
  const registry = new SessionRegistry({ ttlMs: 60_000, autoAudit: false, isConnectionAlive: connectionProbe(loop) });
  const { server, closes } = await echoServer(loop);
  server.off('data', echo);
  const sessions = bindSessions(server, registry, { handshakeTimeoutMs: 5_000 });
  server.on('data', async (client: Client, chunk: Buffer) => {
    const { token } = await sessions.login(client, { userId: String(chunk).trim() });
    client.write(`TOKEN ${token}\n`);
  });
  const first = await connectRaw(server.port);
  try {
    await until(() => server.clientCount === 1, 'the first client');
    const accepted = waitFor<[Client]>(server, 'connection');
    const second = await connectRaw(server.port);
    const [secondClient] = await accepted;
    const got = collectAll(second);
    second.write('alice\n');
    await until(() => sessions.sessionOf(secondClient) !== undefined, 'the first login');
    second.write('alice\n'); // the same login line again: sessions.login rejects
    const c = await closeOf(closes, () => secondClient);
    assertHandlerError(c, ErrorCode.ALREADY_BOUND);
    await got;
    // The server lives: another client logs in.
    first.write('bob\n');
    const line = (await readBytes(first, 6)).toString();
    assert.is(line, 'TOKEN ');
    await settle();
    clean(t);
  } finally {
    t.release();
    await destroyAll(first);
    await loop.close({ flushTimeoutMs: 100 });
    await sessions.close();
    await registry.close();
  }
});

S("a 'connection' listener that throws or rejects closes only that client; every other 'connection' listener still runs", async () => {
  for (const kind of ['throw', 'reject'] as const) {
    const t = trap();
    const loop = new EventLoop();
    const { server, closes } = await echoServer(loop);
    let failed: Client | undefined;
    let seenAfter = 0;
    server.on('connection', async (c: Client) => {
      if (failed !== undefined) return;
      failed = c;
      if (kind === 'reject') await Promise.resolve();
      throw new Error(`connection listener ${kind}`);
    });
    server.on('connection', () => seenAfter++);
    const peer = await connectRaw(server.port);
    try {
      assertHandlerError(await closeOf(closes, () => failed), /connection listener/);
      assert.is(seenAfter, 1, 'the next listener ran');
      await assertEchoes(server.port);
      await settle();
      clean(t);
    } finally {
      t.release();
      await destroyAll(peer);
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

S("an 'end' listener (halfOpen) that throws or rejects closes only that client", async () => {
  for (const kind of ['throw', 'reject'] as const) {
    const t = trap();
    const loop = new EventLoop();
    const { server, closes } = await echoServer(loop, { halfOpen: true });
    let failed: Client | undefined;
    server.on('end', async (c: Client) => {
      failed = c;
      if (kind === 'reject') await Promise.resolve();
      throw new Error(`end listener ${kind}`);
    });
    const peer = await connectRaw(server.port, { allowHalfOpen: true });
    try {
      peer.end();
      assertHandlerError(await closeOf(closes, () => failed), /end listener/);
      await assertEchoes(server.port);
      await settle();
      clean(t);
    } finally {
      t.release();
      await destroyAll(peer);
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

S("a 'close' listener that throws or rejects goes to the server's 'error' event; the other 'close' listeners still run", async () => {
  for (const kind of ['throw', 'reject'] as const) {
    const t = trap();
    const loop = new EventLoop();
    const { server, closes } = await echoServer(loop, {}, async () => {
      if (kind === 'reject') await Promise.resolve();
      throw new Error(`close listener ${kind}`);
    });
    const errors: NetloopError[] = [];
    server.on('error', (e: NetloopError) => errors.push(e));
    const accepted = waitFor<[Client]>(server, 'connection');
    const peer = await connectRaw(server.port);
    try {
      const [c] = await accepted;
      peer.end();
      await closeOf(closes, () => c);
      assert.is(closes[0]!.reason, 'peer-closed', 'the close listener after the failing one ran');
      await until(() => errors.length === 1, "the 'error' event");
      assert.is(errors[0]!.code, ErrorCode.HANDLER_ERROR);
      assert.is(errors[0]!.details['clientId'], c.id);
      assert.match(String((errors[0]!.cause as Error).message), /close listener/);
      await assertEchoes(server.port);
      await settle();
      clean(t);
      assert.is(t.warnings.length, 0, "heard by the 'error' listener, so no warning");
    } finally {
      t.release();
      await destroyAll(peer);
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

S("a 'drop' listener that throws, with nobody on 'error', is a process warning with its code, once; an 'error' listener that throws is a warning too", async () => {
  const t = trap();
  const loop = new EventLoop();
  const { server } = await echoServer(loop, { maxConnections: 1 });
  server.on('drop', () => {
    throw new Error('drop listener failed');
  });
  const peers: net.Socket[] = [];
  try {
    peers.push(await connectRaw(server.port));
    await until(() => server.clientCount === 1, 'the first client');
    const dropped = waitFor(server, 'drop');
    peers.push(await connectRaw(server.port));
    await dropped;
    await until(() => t.warnings.length === 1, 'the warning');
    const w = t.warnings[0] as Error & { code?: string };
    assert.is(w.code, ErrorCode.HANDLER_ERROR);
    assert.match(w.message, /'drop' listener/);
    // Now an 'error' listener that fails in turn: reported as a warning, never thrown.
    server.on('error', () => {
      throw new Error('error listener failed');
    });
    const dropped2 = waitFor(server, 'drop');
    peers.push(await connectRaw(server.port));
    await dropped2;
    await until(() => t.warnings.length === 2, 'the second warning');
    assert.match(t.warnings[1]!.message, /'error' listener/);
    peers[0]!.write('still serving');
    assert.is((await readBytes(peers[0]!, 13)).toString(), 'still serving');
    await settle();
    clean(t);
    assert.is(t.warnings.length, 2, 'one warning per fault');
  } finally {
    t.release();
    await destroyAll(...peers);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

S("a 'message' listener that destructures a null payload (a JSON type, the peer sends null) closes only that client, sync or async", async () => {
  for (const kind of ['sync', 'async'] as const) {
    const t = trap();
    const registry = new MessageRegistry();
    registry.register(1, 'login', 'json');
    const loop = new EventLoop();
    const server = await new FramedServer(loop, { registry }).listen();
    const closes: Closed[] = [];
    server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
    const onLogin = (client: FramedClient, message: FramedMessage): void => {
      const { user } = message.payload as { user: string };
      client.send('login', { user, ok: true });
    };
    if (kind === 'sync') server.on('message', onLogin);
    else server.on('message', async (client: FramedClient, message: FramedMessage) => onLogin(client, message));
    const encoder = new LtvEncoder({ layout: 'netloop' });
    const accepted = waitFor<[Client]>(server, 'connection');
    const bad = await connectRaw(server.port);
    try {
      const [badClient] = await accepted;
      bad.write(encoder.encode(1, Buffer.from('null')));
      const c = await closeOf(closes, () => badClient);
      assertHandlerError(c, /null|undefined/);
      // Another client logs in with a real payload.
      const good = await connectRaw(server.port);
      try {
        const request = encoder.encode(1, Buffer.from(JSON.stringify({ user: 'amy' })));
        good.write(request);
        const reply = encoder.encode(1, Buffer.from(JSON.stringify({ user: 'amy', ok: true })));
        assert.equal(await readBytes(good, reply.length), reply);
      } finally {
        await destroyAll(good);
      }
      await settle();
      clean(t);
    } finally {
      t.release();
      await destroyAll(bad);
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

// ─── the client's callbacks ──────────────────────────────────────────────────

const C = suite("a failing callback of a Client");

C('a write-complete callback that throws or rejects closes only that client', async () => {
  for (const kind of ['throw', 'reject'] as const) {
    const t = trap();
    const loop = new EventLoop();
    const { server, closes } = await echoServer(loop);
    let failed: Client | undefined;
    server.on('data', (c: Client, chunk: Buffer) => {
      if (!chunk.includes('boom')) return;
      failed = c;
      c.setWriteCompleteCallback(async () => {
        if (kind === 'reject') await Promise.resolve();
        throw new Error(`write-complete ${kind}`);
      });
      c.write('reply');
    });
    const peer = await connectRaw(server.port);
    try {
      peer.write('boom');
      assertHandlerError(await closeOf(closes, () => failed), /write-complete/);
      await assertEchoes(server.port);
      await settle();
      clean(t);
    } finally {
      t.release();
      await destroyAll(peer);
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

C('a high-water-mark callback that throws or rejects closes only that client', async () => {
  for (const kind of ['throw', 'reject'] as const) {
    const t = trap();
    const loop = new EventLoop();
    const { server, closes } = await echoServer(loop);
    let failed: Client | undefined;
    server.on('data', (c: Client, chunk: Buffer) => {
      if (!chunk.includes('boom')) return;
      failed = c;
      c.setHighWaterMarkCallback(async () => {
        if (kind === 'reject') await Promise.resolve();
        throw new Error(`high-water ${kind}`);
      }, 1024);
      c.write(Buffer.alloc(4096));
    });
    const peer = await connectRaw(server.port);
    try {
      peer.write('boom');
      assertHandlerError(await closeOf(closes, () => failed), /high-water/);
      await assertEchoes(server.port);
      await settle();
      clean(t);
    } finally {
      t.release();
      await destroyAll(peer);
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

C("a close callback that rejects goes to the server's 'error' path; without a listener, a warning", async () => {
  const t = trap();
  const loop = new EventLoop();
  const { server, closes } = await echoServer(loop);
  const accepted = waitFor<[Client]>(server, 'connection');
  const peer = await connectRaw(server.port);
  try {
    const [c] = await accepted;
    c.setCloseCallback(async () => {
      await Promise.resolve();
      throw new Error('close callback rejected');
    });
    c.destroy();
    await closeOf(closes, () => c);
    await until(() => t.warnings.length === 1, 'the warning');
    const w = t.warnings[0] as Error & { code?: string };
    assert.is(w.code, ErrorCode.HANDLER_ERROR);
    // The warning carries the fault itself as its cause, with the client it concerned.
    assert.ok(isNetloopError(w.cause, ErrorCode.HANDLER_ERROR));
    assert.is(w.cause.details['clientId'], c.id);
    await assertEchoes(server.port);
    await settle();
    clean(t);
  } finally {
    t.release();
    await destroyAll(peer);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

C('a fault is published on netloop:handler:error with the client and the source, never the message', async () => {
  const t = trap();
  const seen: HandlerErrorMessage[] = [];
  const onMessage = (m: unknown): void => {
    seen.push(m as HandlerErrorMessage);
  };
  dc.subscribe(CHANNEL_NAMES.handlerError, onMessage);
  const loop = new EventLoop();
  const { server, closes } = await echoServer(loop);
  let failed: Client | undefined;
  server.on('data', async (c: Client, chunk: Buffer) => {
    if (!chunk.includes('boom')) return;
    failed = c;
    throw new TypeError('secret-ish detail');
  });
  const peer = await connectRaw(server.port);
  try {
    peer.write('boom');
    await closeOf(closes, () => failed);
    assert.equal(seen, [{ clientId: failed!.id, source: "'data' listener", code: ErrorCode.HANDLER_ERROR, causeName: 'TypeError' }]);
    assert.not.match(JSON.stringify(seen), /secret/);
    clean(t);
  } finally {
    dc.unsubscribe(CHANNEL_NAMES.handlerError, onMessage);
    t.release();
    await destroyAll(peer);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

// ─── the Connector's events ──────────────────────────────────────────────────

const K = suite("a failing listener of a Connector's event");

/** A raw netloop server that echoes, for connectors to reach. */
async function connectorRig(): Promise<{ loop: EventLoop; server: Server; closes: Closed[] }> {
  const loop = new EventLoop();
  const { server } = await echoServer(loop);
  return { loop, server, closes: [] };
}

function recordCloses(connector: Connector, closes: Closed[]): void {
  connector.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => closes.push({ client, reason, error }));
}

K("a 'connected' listener that rejects closes that connection; the connector reconnects and the next one works", async () => {
  const t = trap();
  const { loop, server } = await connectorRig();
  const closes: Closed[] = [];
  const connector = new Connector(loop, { port: server.port, reconnect: { initialDelayMs: 10, jitter: 0 } }).connect();
  recordCloses(connector, closes);
  let n = 0;
  let first: Client | undefined;
  connector.on('connected', async (c: Client) => {
    if (++n > 1) return;
    first = c;
    await Promise.resolve();
    throw new Error('connected listener rejected');
  });
  try {
    assertHandlerError(await closeOf(closes, () => first), /connected listener/);
    await until(() => n === 2 && connector.client !== null, 'the reconnection');
    const echoed = waitFor<[Client, Buffer]>(connector, 'data');
    connector.client!.write('over again');
    assert.is((await echoed)[1].toString(), 'over again');
    await settle();
    clean(t);
  } finally {
    t.release();
    await loop.close({ flushTimeoutMs: 100 });
  }
});

K("an async 'data' listener that rejects closes that connection only", async () => {
  const t = trap();
  const { loop, server } = await connectorRig();
  const closes: Closed[] = [];
  const connector = new Connector(loop, { port: server.port, reconnect: false }).connect();
  recordCloses(connector, closes);
  let failed: Client | undefined;
  connector.on('data', async (c: Client) => {
    failed = c;
    await Promise.resolve();
    throw new Error('connector data listener rejected');
  });
  try {
    const [c] = await waitFor<[Client]>(connector, 'connected');
    c.write('echo me');
    assertHandlerError(await closeOf(closes, () => failed), /connector data listener/);
    await assertEchoes(server.port);
    await settle();
    clean(t);
  } finally {
    t.release();
    await loop.close({ flushTimeoutMs: 100 });
  }
});

K("'connect-error', 'give-up' and 'close' listeners that throw go to the connector's 'error' event, or a warning", async () => {
  const t = trap();
  const loop = new EventLoop();
  const port = await refusedPort();
  const connector = new Connector(loop, { port, reconnect: { initialDelayMs: 1, maxAttempts: 2, jitter: 0 } }).connect();
  connector.on('connect-error', () => {
    throw new Error('connect-error listener failed');
  });
  connector.on('give-up', async () => {
    await Promise.resolve();
    throw new Error('give-up listener rejected');
  });
  const errors: NetloopError[] = [];
  let gaveUp = false;
  connector.on('give-up', () => (gaveUp = true));
  const onError = (e: NetloopError): void => {
    errors.push(e);
  };
  connector.on('error', onError);
  try {
    await until(() => gaveUp && errors.length === 3, 'two connect-errors and a give-up, each reported');
    assert.ok(errors.every((e) => e.code === ErrorCode.HANDLER_ERROR && e.details['clientId'] === null));
    assert.equal(errors.map((e) => e.details['source']), ["'connect-error' listener", "'connect-error' listener", "'give-up' listener"]);
    // The same with nobody on 'error': warnings, one per fault.
    connector.off('error', onError);
    const { server } = await echoServer(loop);
    const second = new Connector(loop, { port: server.port, reconnect: false }).connect();
    second.on('close', () => {
      throw new Error('close listener failed');
    });
    const [c] = await waitFor<[Client]>(second, 'connected');
    c.destroy();
    await until(() => t.warnings.length === 1, 'the warning');
    assert.is((t.warnings[0] as Error & { code?: string }).code, ErrorCode.HANDLER_ERROR);
    await assertEchoes(server.port);
    await settle();
    clean(t);
  } finally {
    t.release();
    await loop.close({ flushTimeoutMs: 100 });
  }
});

S.run();
C.run();
K.run();
