/**
 * The log subscriber over real sockets, real stores and real pino: one
 * structured line per event, with ids and codes, and never a payload byte,
 * a token or a token hash.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { pino } from 'pino';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { FramedClient } from '../../../lib/framing/framed-client.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import { bindSessions } from '../../../lib/binding/session-binding.js';
import { hashToken } from '../../../lib/session/token.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import { FileStore } from '../../../lib/store/file/file-store.js';
import { createLogSubscriber } from '../../../lib/ops/log-subscriber.js';
import type { Logger } from '../../../lib/ops/logger.js';
import { consoleLogger } from '../../../lib/ops/logger.js';
import { connectRaw, until, waitFor } from '../../helpers/net.js';
import { frame } from '../../helpers/live-server.js';
import { startOpsEcho, slowConsumer } from '../../helpers/ops-load.js';
import { FaultyFs } from '../../../lib/testing/faulty-fs.js';
import { throwsCode } from '../../helpers/ltv.js';

/** A real pino logger writing JSON lines into an array. */
function recorder(): { logger: Logger; lines: string[]; records(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger: Logger = pino({ base: null, timestamp: false, level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('accepts, closes, limits and drops: one line each, at the level of the event, with ids, reasons, codes and sizes', async () => {
  const rec = recorder();
  const logs = createLogSubscriber(rec.logger);
  const echo = await startOpsEcho({ maxOutputBytes: 1024 * 1024, maxConnections: 2 });
  try {
    const peer = await connectRaw(echo.port);
    await until(() => rec.records().some((r) => r['event'] === 'accept'), 'the accept line');
    const accept = rec.records().find((r) => r['event'] === 'accept')!;
    assert.is(accept['level'], 30);
    assert.is(accept['msg'], 'connection accepted');
    assert.is(accept['component'], 'netloop');
    assert.is(accept['remoteAddress'], '127.0.0.1');
    assert.is(accept['remotePort'], peer.localPort);
    const id = accept['clientId'];
    peer.end();
    await until(() => rec.records().some((r) => r['event'] === 'close' && r['clientId'] === id), 'the close line');
    const close = rec.records().find((r) => r['event'] === 'close')!;
    assert.equal(close, { level: 30, component: 'netloop', event: 'close', clientId: id, reason: 'peer-closed', msg: 'connection closed' });

    const greedy = await slowConsumer(echo.port, 16 * 1024 * 1024);
    await until(() => rec.records().some((r) => r['event'] === 'limit'), 'the limit line');
    const limit = rec.records().find((r) => r['event'] === 'limit')!;
    assert.is(limit['level'], 40);
    assert.is(limit['limit'], 'output-limit');
    assert.is(limit['code'], ErrorCode.OUTPUT_LIMIT);
    assert.is((limit['details'] as Record<string, unknown>)['limit'], 1024 * 1024);
    assert.type((limit['details'] as Record<string, unknown>)['queuedBytes'], 'number');
    const limitClose = rec.records().find((r) => r['event'] === 'close' && r['reason'] === 'output-limit')!;
    assert.is(limitClose['level'], 40, 'a limit close is a warning');
    assert.is(limitClose['code'], ErrorCode.OUTPUT_LIMIT);
    greedy.destroy();

    const a = await connectRaw(echo.port);
    const b = await connectRaw(echo.port);
    const c = await connectRaw(echo.port).catch(() => null);
    await until(() => rec.records().some((r) => r['event'] === 'drop'), 'the drop line');
    const drop = rec.records().find((r) => r['event'] === 'drop')!;
    assert.equal([drop['level'], drop['reason'], drop['limit']], [40, 'max-connections', 2]);
    for (const s of [a, b, c]) s?.destroy();
  } finally {
    logs.close();
    await echo.stop();
  }
});

test('never a payload byte, a token or its hash: a login, a handler that throws quoting both, a listener fault and an expiry are logged by ids and codes only', async () => {
  const rec = recorder();
  const loop = new EventLoop();
  const registry = new SessionRegistry({ store: new MemoryStore(), ttlMs: 300, granularityMs: 50, autoAudit: false });
  const secrets: string[] = [];
  const PAYLOAD = 'PAYLOAD-SECRET-7f3a9c';
  let binding: ReturnType<typeof bindSessions>;
  const server = await new FramedServer(loop, {
    layout: 'netloop',
    onMessage: async (client: FramedClient, m) => {
        const text = m.value.toString();
        if (text.startsWith('login:')) {
          const { token } = await binding.login(client, { userId: text.slice(6) });
          secrets.push(token, hashToken(token));
          client.send(1, 'ok');
          return;
        }
        throw new Error(`refused ${secrets.join(' ')} ${text}`);
    },
  }).listen();
  const logs = createLogSubscriber(rec.logger, { registries: [registry] });
  try {
    binding = bindSessions(server, registry);
    registry.on('created', ({ session }) => {
      // A faulty listener for bob's session only (its fault closes bob's connection).
      if (session.userId === 'bob') throw new Error(`listener fault quoting ${secrets.join(' ')}`);
    });
    const peer = await connectRaw(server.port);
    const alicePort = peer.localPort;
    peer.on('error', () => undefined);
    peer.write(frame(1, 'login:alice'));
    await until(() => secrets.length === 2, 'the login');
    peer.write(frame(1, `${PAYLOAD} ${secrets[0]}`));
    await until(() => rec.records().some((r) => r['event'] === 'handler-error'), 'the handler fault');
    const other = await connectRaw(server.port);
    other.on('error', () => undefined);
    other.write(frame(1, 'login:bob'));
    await until(() => rec.records().some((r) => r['event'] === 'session-expire'), 'an expiry', 5_000);
    await until(() => rec.records().some((r) => r['event'] === 'registry-error'), 'the listener fault');

    const all = rec.lines.join('');
    for (const s of [PAYLOAD, ...secrets]) assert.not.ok(all.includes(s), `no line holds ${s.slice(0, 6)}...`);
    assert.not.ok(all.includes('refused'), 'no error message is logged');
    const aliceId = rec.records().find((r) => r['event'] === 'accept' && r['remotePort'] === alicePort)!['clientId'];
    const fault = rec.records().find((r) => r['event'] === 'handler-error' && r['clientId'] === aliceId)!;
    assert.equal([fault['level'], fault['code'], fault['source']], [50, ErrorCode.HANDLER_ERROR, 'handler']);
    assert.match(String(fault['causeName']), /^[A-Z]\w*Error$/, 'the class of what was thrown, not its message');
    const closed = rec.records().find((r) => r['event'] === 'close' && r['clientId'] === aliceId)!;
    assert.is(closed['reason'], 'handler-error');
    assert.is(closed['level'], 50);
    const listener = rec.records().find((r) => r['event'] === 'registry-error')!;
    assert.equal([listener['operation'], listener['listenerOf'], listener['code']], ['listener', 'created', ErrorCode.HANDLER_ERROR]);
    const expire = rec.records().find((r) => r['event'] === 'session-expire')!;
    assert.is(expire['userId'], 'alice');
    assert.ok(expire['reason'] === 'ttl' || expire['reason'] === 'resume-window', String(expire['reason']));
    assert.type(expire['sessionId'], 'string');
    peer.destroy();
    other.destroy();
  } finally {
    logs.close();
    await loop.close({ flushTimeoutMs: 200 });
    await registry.close();
  }
});

test('store failures and recoveries: a FileStore whose saves fail is logged with its code and system code, then its recovery', async () => {
  const rec = recorder();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-ops-logs-'));
  const ffs = new FaultyFs();
  const store = await FileStore.open({ path: path.join(dir, 's.json'), fs: ffs, retries: 0, retryDelayMs: 0, saveDelayMs: 3_600_000 });
  const logs = createLogSubscriber(rec.logger, { stores: { sessions: store } });
  const registry = new SessionRegistry({ store, autoAudit: false });
  try {
    ffs.fail('write', 'ENOSPC', { times: Infinity, match: (f) => f.endsWith('.tmp') });
    await registry.create({ userId: 'u' });
    await store.flush().catch(() => undefined);
    const err = rec.records().find((r) => r['event'] === 'store-error')!;
    assert.equal(
      [err['level'], err['store'], err['kind'], err['code'], err['syscallCode'], err['msg']],
      [50, 'sessions', 'file', ErrorCode.STORE_IO, 'ENOSPC', 'store failed'],
    );
    assert.not.ok(rec.lines.join('').includes(dir), 'no file path (an error message would quote it)');
    ffs.heal();
    const recovered = new Promise<void>((resolve) => store.once('recovered', () => resolve()));
    await store.flush();
    await recovered;
    const ok = rec.records().find((r) => r['event'] === 'store-recovered')!;
    assert.equal([ok['level'], ok['store'], ok['msg']], [30, 'sessions', 'store recovered']);
  } finally {
    logs.close();
    await registry.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a logger that throws never takes the process down: one process warning, and netloop goes on serving', async () => {
  const boom: Logger = {
    debug: () => undefined,
    info: () => {
      throw new Error('logger down');
    },
    warn: () => undefined,
    error: () => undefined,
    child: () => boom,
  };
  const logs = createLogSubscriber(boom);
  const echo = await startOpsEcho();
  try {
    const warned = waitFor<[Error & { code?: string }]>(process, 'warning');
    const a = await connectRaw(echo.port);
    const [w] = await warned;
    assert.is(w.code, ErrorCode.HANDLER_ERROR);
    const b = await connectRaw(echo.port);
    b.write(frame(1, 'still here'));
    await once(b, 'data');
    a.destroy();
    b.destroy();
  } finally {
    logs.close();
    await echo.stop();
  }
});

test('options: a logger without the level methods or too many stores is NETLOOP_INVALID_OPTION; close() stops the lines (idempotent); events can be turned off', async () => {
  throwsCode(() => createLogSubscriber({ info() {} } as unknown as Logger), ErrorCode.INVALID_OPTION);
  const many: Record<string, FileStore> = {};
  for (let i = 0; i < 33; i++) many[`s${i}`] = {} as FileStore;
  throwsCode(() => createLogSubscriber(consoleLogger(), { stores: many }), ErrorCode.INVALID_OPTION);
  const rec = recorder();
  const logs = createLogSubscriber(rec.logger, { events: { accept: false } });
  const echo = await startOpsEcho();
  try {
    const a = await connectRaw(echo.port);
    a.destroy();
    await until(() => rec.records().some((r) => r['event'] === 'close'), 'the close line');
    assert.not.ok(rec.records().some((r) => r['event'] === 'accept'), 'accepts were turned off');
    logs.close();
    logs.close();
    const n = rec.lines.length;
    const b = await connectRaw(echo.port);
    b.destroy();
    await until(() => echo.server.clientCount === 0, 'the close');
    assert.is(rec.lines.length, n, 'nothing after close()');
  } finally {
    await echo.stop();
  }
});

test.run();
