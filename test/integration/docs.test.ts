/**
 * The documentation says what the code does: every option of a public
 * options interface is in its table, every key of a stats snapshot is named
 * where the snapshot is described, the token facts are the code's, and no
 * tracked file cites a document a reader cannot open.
 *
 * ```
 *   DOC_FILES ──read──▶ sections by heading ──▶ option tables / the row of a call
 *        ▲                                          │ compared with
 *        │ (add docs/*.md here when the README      ▼
 *        │  is split: headings stay unique)     key lists checked against the
 *                                               interfaces at compile time
 * ```
 *
 * The key lists are kept here with `satisfies Record<keyof Interface, true>`:
 * an option added to an interface without being added here fails to compile,
 * and once added here, fails this test until the documentation lists it.
 *
 * @module
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { CloseOptions, EventLoopOptions, LoopStats } from '../../lib/reactor/event-loop.js';
import type { LoopCounters } from '../../lib/reactor/diagnostics.js';
import { Server, type ServerOptions } from '../../lib/reactor/server.js';
import { Connector, type ConnectorOptions, type ReconnectOptions } from '../../lib/reactor/connector.js';
import type { FramedStats } from '../../lib/framing/framed-client.js';
import type { FramingOptions } from '../../lib/framing/framing.js';
import type { LtvLayoutOptions } from '../../lib/codec/ltv-layout.js';
import type { LtvDecoderOptions } from '../../lib/codec/ltv-decoder.js';
import type { LtvEncoderOptions } from '../../lib/codec/ltv-encoder.js';
import type { MessageRegistryOptions } from '../../lib/codec/message-registry.js';
import type { RegistryCounters, RegistryStats, SessionRegistryOptions } from '../../lib/session/session-registry.js';
import type { SessionBindingOptions, SessionBindingStats } from '../../lib/binding/binding-types.js';
import type { MemoryStoreOptions } from '../../lib/store/memory-store.js';
import type { FileStoreOptions, FileStoreStats } from '../../lib/store/file/file-store.js';
import type { RedisStoreOptions } from '../../lib/store/redis/redis-store.js';
import type { EtcdStoreOptions } from '../../lib/store/etcd/etcd-store.js';
import type { CloseOnSignalsOptions } from '../../lib/reactor/close-on-signals.js';
import type { FlushOnSignalsOptions } from '../../lib/core/flush-on-signals.js';
import type { HeartbeatOptions, KeepAliveOptions, KeepAliveStats } from '../../lib/messaging/keep-alive.js';
import type { RpcLatency, RpcOptions, RpcStats } from '../../lib/messaging/rpc.js';
import type { FramedStreamsOptions } from '../../lib/messaging/stream-framed.js';
import type { RawStreamOptions } from '../../lib/messaging/stream-send.js';
import type { ClientReadableOptions } from '../../lib/messaging/stream-readable.js';
import {
  TOKEN_BYTES,
  TOKEN_HASH_BYTES,
  TOKEN_HASH_LENGTH,
  TOKEN_LENGTH,
  TOKEN_SECRET_LENGTH,
  createToken,
  hashToken,
} from '../../lib/session/token.js';
import { uuidv7 } from '../../lib/session/uuid-v7.js';

/** The repository's root (this file runs from `dist/test/integration/`). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * The files that document the API, searched together by heading. When a
 * section of the README moves into `docs/`, list its new file here; every
 * heading used below must stay unique across them.
 */
const DOC_FILES: readonly string[] = [
  'README.md',
  'docs/guides/reactor.md',
  'docs/guides/framing.md',
  'docs/guides/sessions.md',
  'docs/guides/stores.md',
  'docs/guides/keep-alive.md',
  'docs/guides/streams.md',
  'docs/guides/rpc.md',
  'docs/design/security.md',
];

// ─── the key lists (checked against the interfaces when this file compiles) ───

const EVENT_LOOP_OPTIONS = { clock: true, timerDriver: true, flushSliceMs: true } satisfies Record<keyof EventLoopOptions, true>;
const CLOSE_OPTIONS = { flushTimeoutMs: true, notice: true, settle: true } satisfies Record<keyof CloseOptions, true>;
const LOOP_STATS = {
  clients: true,
  timers: true,
  servers: true,
  connectors: true,
  pendingFunctors: true,
  queuedBytes: true,
  counters: true,
} satisfies Record<keyof LoopStats, true>;
const LOOP_COUNTERS = { accepted: true, connected: true, dropped: true, tlsErrors: true, closed: true, framesIn: true, framesOut: true, inboundPauses: true } satisfies Record<keyof LoopCounters, true>;
const SERVER_OPTIONS = {
  host: true,
  port: true,
  backlog: true,
  maxConnections: true,
  noDelay: true,
  maxOutputBytes: true,
  softOutputLimit: true,
  idleTimeoutMs: true,
  halfOpen: true,
  shutdownTimeoutMs: true,
  tls: true,
  readPauseOutputBytes: true,
  tcpKeepAliveMs: true,
  reusePort: true,
} satisfies Record<keyof ServerOptions, true>;
const CONNECTOR_OPTIONS = {
  host: true,
  port: true,
  connectTimeoutMs: true,
  reconnect: true,
  random: true,
  noDelay: true,
  maxOutputBytes: true,
  softOutputLimit: true,
  idleTimeoutMs: true,
  halfOpen: true,
  shutdownTimeoutMs: true,
  tls: true,
  readPauseOutputBytes: true,
  tcpKeepAliveMs: true,
} satisfies Record<keyof ConnectorOptions, true>;
const RECONNECT_OPTIONS = { initialDelayMs: true, maxDelayMs: true, factor: true, jitter: true, maxAttempts: true } satisfies Record<
  keyof ReconnectOptions,
  true
>;
const LAYOUT_OPTIONS = {
  preset: true,
  lengthBytes: true,
  typeBytes: true,
  byteOrder: true,
  fieldOrder: true,
  lengthIncludesType: true,
  lengthIncludesLength: true,
  maxFrameLength: true,
} satisfies Record<keyof LtvLayoutOptions, true>;
const DECODER_OPTIONS = { layout: true, onFrame: true, onRawFrame: true, copy: true, isKnownType: true, allocate: true, retainChunks: true } satisfies Record<
  keyof LtvDecoderOptions,
  true
>;
const ENCODER_OPTIONS = { layout: true, copyThreshold: true } satisfies Record<keyof LtvEncoderOptions, true>;
const MESSAGE_REGISTRY_OPTIONS = { strict: true, maxId: true, maxNameLength: true } satisfies Record<keyof MessageRegistryOptions, true>;
const FRAMING_OPTIONS = {
  layout: true,
  registry: true,
  copy: true,
  copyThreshold: true,
  onMessage: true,
  onRawFrame: true,
  maxPendingMessages: true,
  maxPendingBytes: true,
  maxMessagesPerTurn: true,
  frameTimeoutMs: true,
  preAuthMaxFrameLength: true,
  requireAuthentication: true,
  maxCountedTypes: true,
} satisfies Record<keyof FramingOptions, true>;
const KEEP_ALIVE_OPTIONS = { pingIntervalMs: true, pingTimeoutMs: true, pingType: true, heartbeat: true } satisfies Record<keyof KeepAliveOptions, true>;
const HEARTBEAT_OPTIONS = { type: true, payload: true, intervalMs: true } satisfies Record<keyof HeartbeatOptions, true>;
const RPC_OPTIONS = {
  calls: true,
  envelope: true,
  frameType: true,
  timeoutMs: true,
  maxCallsInFlight: true,
  maxHandlersInFlight: true,
} satisfies Record<keyof RpcOptions<Record<string, { request: unknown; reply: unknown }>>, true>;
const RPC_STATS = {
  calls: true,
  inFlight: true,
  replies: true,
  remoteErrors: true,
  timeouts: true,
  aborts: true,
  closed: true,
  limited: true,
  lateReplies: true,
  requests: true,
  handling: true,
  answered: true,
  failed: true,
  unknown: true,
  busy: true,
  badRequests: true,
  cancelled: true,
  latency: true,
} satisfies Record<keyof RpcStats, true>;
const RPC_LATENCY = { bounds: true, counts: true, sum: true, count: true } satisfies Record<keyof RpcLatency, true>;
const KEEP_ALIVE_STATS = {
  peers: true,
  pingsSent: true,
  pongsReceived: true,
  pingsAnswered: true,
  timeouts: true,
  heartbeatsSent: true,
} satisfies Record<keyof KeepAliveStats, true>;
const TRANSFER_OPTIONS = { windowBytes: true, chunkBytes: true, signal: true, end: true } satisfies Record<keyof RawStreamOptions, true>;
const CLIENT_READABLE_OPTIONS = { highWaterMark: true, signal: true } satisfies Record<keyof ClientReadableOptions, true>;
const FRAMED_STREAMS_OPTIONS = {
  type: true,
  maxConcurrentStreams: true,
  maxChunkBytes: true,
  maxMetaBytes: true,
  highWaterMark: true,
  windowBytes: true,
  chunkBytes: true,
} satisfies Record<keyof FramedStreamsOptions, true>;
const FRAMED_STATS = {
  inFlight: true,
  backlog: true,
  pendingBytes: true,
  paused: true,
  bufferedBytes: true,
  frames: true,
  maxFrameLength: true,
  heldBytes: true,
  reservedBytes: true,
} satisfies Record<keyof FramedStats, true>;
const REGISTRY_OPTIONS = {
  store: true,
  clock: true,
  ttlMs: true,
  resumeWindowMs: true,
  granularityMs: true,
  wheelSlots: true,
  autoAudit: true,
  auditBudgetMs: true,
  maxSessions: true,
  maxPerUser: true,
  policy: true,
  maxMetadataKeys: true,
  maxMetadataKeyLength: true,
  maxMetadataValueLength: true,
  maxIdLength: true,
  isConnectionAlive: true,
  maxPendingLoginsPerUser: true,
  processId: true,
  reconcileIntervalMs: true,
} satisfies Record<keyof SessionRegistryOptions, true>;
const REGISTRY_STATS = { total: true, byState: true, local: true, attached: true, timers: true, counters: true, audit: true } satisfies Record<
  keyof RegistryStats,
  true
>;
const REGISTRY_COUNTERS = {
  created: true,
  resumed: true,
  detached: true,
  expired: true,
  replaced: true,
  closed: true,
  deleted: true,
  kicked: true,
  refused: true,
  endedRemotely: true,
} satisfies Record<keyof RegistryCounters, true>;
const BINDING_OPTIONS = {
  handshakeTimeoutMs: true,
  noticeTimeoutMs: true,
  refreshOn: true,
  heartbeatTypes: true,
  notice: true,
  recordTraffic: true,
  connectionPrefix: true,
  encodeFrame: true,
} satisfies Record<keyof SessionBindingOptions, true>;
const BINDING_STATS = {
  clients: true,
  bound: true,
  users: true,
  deadlines: true,
  notifying: true,
  pending: true,
  auditTimer: true,
} satisfies Record<keyof SessionBindingStats, true>;
const MEMORY_STORE_OPTIONS = { clock: true, defaultPageSize: true, maxPageSize: true, indexTokens: true } satisfies Record<
  keyof MemoryStoreOptions,
  true
>;
const FILE_STORE_OPTIONS = {
  path: true,
  durability: true,
  saveDelayMs: true,
  batchThreshold: true,
  fsyncIntervalMs: true,
  compactAfterBytes: true,
  maxRecordBytes: true,
  retries: true,
  retryDelayMs: true,
  cleanupIntervalMs: true,
  maxListLimit: true,
  clock: true,
  scheduler: true,
  fs: true,
} satisfies Record<keyof FileStoreOptions, true>;
const FILE_STORE_STATS = {
  status: true,
  dirty: true,
  pendingChanges: true,
  seq: true,
  durableSeq: true,
  snapshots: true,
  commits: true,
  failedAttempts: true,
  journalBytes: true,
  memoryRecords: true,
  lastError: true,
} satisfies Record<keyof FileStoreStats, true>;
const REDIS_STORE_OPTIONS = {
  client: true,
  url: true,
  prefix: true,
  clock: true,
  commandTimeoutMs: true,
  connectTimeoutMs: true,
  reconnectMaxDelayMs: true,
  maxQueuedCommands: true,
  defaultPageSize: true,
  maxPageSize: true,
  pruneBatch: true,
  expiryGraceMs: true,
  listing: true,
  tokenIndex: true,
  tombstoneTtlMs: true,
  onError: true,
} satisfies Record<keyof RedisStoreOptions, true>;
const ETCD_STORE_OPTIONS = {
  hosts: true,
  credentials: true,
  auth: true,
  prefix: true,
  clock: true,
  commandTimeoutMs: true,
  connectTimeoutMs: true,
  reconnectMaxDelayMs: true,
  leaseBucketMs: true,
  expiryGraceMs: true,
  defaultPageSize: true,
  maxPageSize: true,
  scanBatch: true,
  cacheSize: true,
  changeTtlMs: true,
  tombstoneTtlMs: true,
  compactionRetentionMs: true,
  onError: true,
} satisfies Record<keyof EtcdStoreOptions, true>;
const CLOSE_ON_SIGNALS_OPTIONS = {
  signals: true,
  notice: true,
  flushTimeoutMs: true,
  stores: true,
  exit: true,
  onError: true,
  onDone: true,
} satisfies Record<keyof CloseOnSignalsOptions, true>;
const FLUSH_ON_SIGNALS_OPTIONS = { signals: true, method: true, timeoutMs: true, exit: true, onError: true, onDone: true } satisfies Record<
  keyof FlushOnSignalsOptions,
  true
>;

// ─── reading the documentation ────────────────────────────────────────────────

interface DocFile {
  name: string;
  lines: string[];
}

const docs: DocFile[] = DOC_FILES.map((name) => ({ name, lines: fs.readFileSync(path.join(ROOT, name), 'utf8').split('\n') }));

/**
 * The text under the one heading (any level) that starts with `heading`, up to
 * the next heading of the same or a higher level, in whichever documentation
 * file holds it. Fails unless exactly one heading matches.
 */
function section(heading: string): string {
  const found: string[] = [];
  for (const doc of docs) {
    for (let i = 0; i < doc.lines.length; i++) {
      const m = /^(#{1,6}) (.*)$/.exec(doc.lines[i]!);
      if (m === null || !m[2]!.startsWith(heading)) continue;
      const level = m[1]!.length;
      let end = i + 1;
      while (end < doc.lines.length) {
        const h = /^(#{1,6}) /.exec(doc.lines[end]!);
        if (h !== null && h[1]!.length <= level) break;
        end++;
      }
      found.push(doc.lines.slice(i, end).join('\n'));
    }
  }
  assert.is(found.length, 1, `one heading starting with ${JSON.stringify(heading)} in ${DOC_FILES.join(', ')} (found ${found.length})`);
  return found[0]!;
}

/** The cells of a Markdown table row, trimmed (null for a line that is not a row). */
function cells(line: string): string[] | null {
  const t = line.trim();
  if (!t.startsWith('|') || !t.endsWith('|')) return null;
  return t.slice(1, -1).split('|').map((c) => c.trim());
}

/**
 * The names in the first column of every table of `text` whose header's
 * first cell is "option": each backticked name of the cell, without a call's
 * parentheses (`onFrame(type, value)` is `onFrame`).
 */
function optionNames(text: string): string[] {
  const names: string[] = [];
  let inOptionTable = false;
  let sawHeader = false;
  for (const line of text.split('\n')) {
    const row = cells(line);
    if (row === null) {
      inOptionTable = sawHeader = false;
      continue;
    }
    if (!sawHeader) {
      sawHeader = true;
      inOptionTable = row[0]!.toLowerCase() === 'option';
      continue;
    }
    if (!inOptionTable || /^-+$/.test(row[0]!)) continue;
    for (const m of row[0]!.matchAll(/`([A-Za-z_$][\w$]*)/g)) names.push(m[1]!);
  }
  return names;
}

/** The table row of `text` whose first cell starts with `first` (e.g. "`stats()`"); fails unless there is exactly one. */
function row(text: string, first: string): string {
  const rows = text.split('\n').filter((line) => cells(line)?.[0]?.startsWith(first) === true);
  assert.is(rows.length, 1, `one row starting with ${first} (found ${rows.length})`);
  return rows[0]!;
}

/** The keys of `keys` that `text` does not name as a whole word. */
function unnamed(text: string, keys: object): string[] {
  return Object.keys(keys).filter((k) => !new RegExp(`(^|[^\\w$])${k.replace(/\$/g, '\\$')}($|[^\\w$])`).test(text));
}

/** Asserts that the option tables of `text` list exactly `keys`. */
function assertOptionTable(what: string, text: string, keys: object): void {
  const documented = optionNames(text);
  const expected = Object.keys(keys);
  const missing = expected.filter((k) => !documented.includes(k));
  const stale = documented.filter((k) => !expected.includes(k));
  assert.equal(missing, [], `${what}: options of the interface missing from the table`);
  assert.equal(stale, [], `${what}: options in the table that the interface does not have`);
}

// ─── the reactor ──────────────────────────────────────────────────────────────

test('loop.stats(): every key and every counter of a real snapshot is named in the stats() row', async () => {
  const loop = new EventLoop();
  const stats = loop.stats();
  await loop.close();
  // The snapshot itself has exactly the keys the list holds (so the list cannot drift from run-time truth).
  assert.equal(Object.keys(stats).sort(), Object.keys(LOOP_STATS).sort());
  assert.equal(Object.keys(stats.counters).sort(), Object.keys(LOOP_COUNTERS).sort());
  const text = row(section('`EventLoop`'), '`stats()`');
  assert.equal(unnamed(text, LOOP_STATS), [], 'loop.stats() keys missing from the stats() row');
  assert.equal(unnamed(text, LOOP_COUNTERS), [], 'loop.stats().counters keys missing from the stats() row');
});

test('EventLoop: the options table and the close() row', () => {
  const s = section('`EventLoop`');
  assertOptionTable('new EventLoop(options)', s, EVENT_LOOP_OPTIONS);
  assert.equal(unnamed(row(s, '`close('), CLOSE_OPTIONS), [], 'CloseOptions missing from the close() row');
});

test('Server: the options table lists every ServerOptions key, tls included', () => {
  assertOptionTable('new Server(loop, options).listen()', section('`Server`'), SERVER_OPTIONS);
});

test('Connector: the options table lists every ConnectorOptions key; the reconnect row every ReconnectOptions key', () => {
  const s = section('`Connector`');
  assertOptionTable('new Connector(loop, options).connect()', s, CONNECTOR_OPTIONS);
  assert.equal(unnamed(row(s, '`reconnect`'), RECONNECT_OPTIONS), []);
});

// ─── framing ──────────────────────────────────────────────────────────────────

test('framing: layout, decoder, encoder, registry and framing option tables; framedStats keys', () => {
  assertOptionTable('ltvLayout(options)', section('Layout options'), LAYOUT_OPTIONS);
  assertOptionTable('new LtvDecoder(options)', section('Decoder'), DECODER_OPTIONS);
  assertOptionTable('new LtvEncoder(options)', section('Encoder'), ENCODER_OPTIONS);
  assertOptionTable('new MessageRegistry(options)', section('Message registry'), MESSAGE_REGISTRY_OPTIONS);
  const framing = section('Framing on a server or connector');
  assertOptionTable('the framing option', framing, FRAMING_OPTIONS);
  const statsLine = /`client\.framingStats\(\)` returns `\{([^}]*)\}`/.exec(framing.replace(/\n/g, ' '));
  assert.ok(statsLine !== null, "client.framingStats() described");
  assert.equal(unnamed(statsLine[1]!, FRAMED_STATS), []);
});

// ─── messaging ────────────────────────────────────────────────────────────────

test('keep-alive: the keepAlive options table, every heartbeat field, the stats() row', () => {
  const s = section('Options of `keepAlive`');
  assertOptionTable('keepAlive(owner, options)', s, KEEP_ALIVE_OPTIONS);
  const fields = s.split('\n').filter((line) => cells(line) !== null && /^`(type|payload|intervalMs)`$/.test(cells(line)![0]!));
  assert.equal(unnamed(fields.join('\n'), HEARTBEAT_OPTIONS), [], 'heartbeat fields missing from their table');
  assert.equal(unnamed(row(s, '`stats()`'), KEEP_ALIVE_STATS), []);
});

test('request/response: the enableRpc options table, every key of stats() and of its latency', () => {
  const s = section('Options of `enableRpc`');
  assertOptionTable('enableRpc(owner, options)', s, RPC_OPTIONS);
  const stats = row(s, '`stats()`');
  assert.equal(unnamed(stats, RPC_STATS), []);
  assert.equal(unnamed(stats, RPC_LATENCY), []);
});

test('streams: the options tables of a transfer, of createClientReadable and of FramedStreams', () => {
  assertOptionTable('sendFile / sendStream / createClientWritable options', section('Options of a transfer'), TRANSFER_OPTIONS);
  assertOptionTable('createClientReadable(client, options)', section('Options of `createClientReadable`'), CLIENT_READABLE_OPTIONS);
  assertOptionTable('new FramedStreams(owner, options)', section('Options of `FramedStreams`'), FRAMED_STREAMS_OPTIONS);
});

// ─── sessions and stores ──────────────────────────────────────────────────────

test('sessions: registry options and stats, binding options and stats', () => {
  assertOptionTable('new SessionRegistry(options)', section('Options (every limit'), REGISTRY_OPTIONS);
  const stats = row(section('Operations'), '`stats()`');
  assert.equal(unnamed(stats, REGISTRY_STATS), []);
  assert.equal(unnamed(stats, REGISTRY_COUNTERS), []);
  const binding = section('`bindSessions`');
  assertOptionTable('bindSessions(server, registry, options)', binding, BINDING_OPTIONS);
  assert.equal(unnamed(row(binding, '`stats()`'), BINDING_STATS), []);
});

test('stores: memory, file and Redis store options; file store stats', () => {
  const memory = /new MemoryStore\(\{([^}]*)\}\)/.exec(section('Stores'));
  assert.ok(memory !== null, 'new MemoryStore({ ... }) described');
  assert.equal(unnamed(memory[1]!, MEMORY_STORE_OPTIONS), []);
  const file = section('File store');
  assertOptionTable('FileStore.open(options)', file, FILE_STORE_OPTIONS);
  const stats = /`stats\(\)` \(`\{([^}]*)\}`/.exec(file.replace(/\n/g, ' '));
  assert.ok(stats !== null, 'the file store stats() described');
  assert.equal(unnamed(stats[1]!, FILE_STORE_STATS), []);
  assert.equal(unnamed(/`flushOnSignals\(targets, options\?\)`[\s\S]*?\n\n/.exec(file)?.[0] ?? '', FLUSH_ON_SIGNALS_OPTIONS), []);
  assertOptionTable('new RedisStore(options)', section('Redis store'), REDIS_STORE_OPTIONS);
});

test('etcd store: the option table of the stores guide lists every EtcdStoreOptions key', () => {
  const guide = fs.readFileSync(path.join(ROOT, 'docs/guides/stores.md'), 'utf8');
  const start = guide.indexOf('\n## etcd store');
  assert.ok(start >= 0, 'docs/guides/stores.md has an etcd store section');
  const end = guide.indexOf('\n## ', start + 1);
  assertOptionTable('new EtcdStore(options)', guide.slice(start, end < 0 ? undefined : end), ETCD_STORE_OPTIONS);
});

test('closeOnSignals: every option named where it is described', () => {
  const shutdown = /`closeOnSignals` wires it[\s\S]*?Options:[^\n]*\n[^\n]*/.exec(section('TLS, observability'));
  assert.ok(shutdown !== null, 'closeOnSignals described');
  assert.equal(unnamed(shutdown[0], CLOSE_ON_SIGNALS_OPTIONS), []);
});

// ─── tokens ───────────────────────────────────────────────────────────────────

test("tokens: the documentation states lib/session/token.ts's lengths, encoding and lookup, and none of the old claims", () => {
  // The facts, from the code itself.
  const { token, hash } = createToken(uuidv7());
  assert.is(token.length, TOKEN_LENGTH);
  assert.is(token.indexOf('.'), 36, 'the session id, then a dot');
  assert.is(token.length - 37, TOKEN_SECRET_LENGTH);
  assert.is(hash, hashToken(token));
  assert.is(hash.length, TOKEN_HASH_LENGTH);
  assert.ok(/^[A-Za-z0-9_-]+$/.test(hash), 'the hash is base64url');
  assert.is(Buffer.from(hash, 'base64url').length, TOKEN_HASH_BYTES);

  const tokens = section('Tokens').replace(/\s+/g, ' ');
  for (const fact of [
    `${TOKEN_LENGTH} characters`,
    `${TOKEN_SECRET_LENGTH} characters`,
    `${TOKEN_BYTES * 8} random bits`,
    `first ${TOKEN_HASH_BYTES * 8} bits of its SHA-256`,
    `${TOKEN_HASH_LENGTH} characters`,
    'base64url',
    'by the session id',
    'timingSafeEqual',
  ]) {
    assert.ok(tokens.includes(fact), `the Tokens section says "${fact}"`);
  }
  // What the documentation once said, and the code never did.
  assert.not.ok(/\bhex\b/i.test(tokens), 'no hex hash');
  assert.not.ok(/lookups go by hash/i.test(tokens), 'no lookup by hash');
  assert.ok(section('The model').replace(/\s+/g, ' ').includes(`${TOKEN_LENGTH} characters`), 'the model gives the token length');
});

// ─── citations ────────────────────────────────────────────────────────────────

/**
 * Documents a reader of the repository cannot open. Built from pieces so this
 * file does not match itself.
 */
const UNREADABLE: readonly RegExp[] = [
  new RegExp(['design', 'notes?'].join('\\s+'), 'gi'),
  new RegExp(['REFERENCE', '(\\.md)?', '\\s*(section|§)'].join(''), 'gi'),
  new RegExp(['REFERENCE', '\\.md'].join(''), 'gi'),
  new RegExp(['the', 'reference', 'list'].join('\\s+'), 'gi'),
  new RegExp(['seed', 'pattern'].join('\\s+'), 'gi'),
];

/** Every tracked text file (git's list; without git, a walk of the folders that hold text). */
function trackedTextFiles(): string[] {
  let files: string[];
  try {
    files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter((f) => f !== '');
  } catch {
    files = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
        const rel = path.join(dir, e.name);
        if (e.isDirectory()) walk(rel);
        else files.push(rel);
      }
    };
    for (const f of ['README.md', 'SECURITY.md']) files.push(f);
    for (const d of ['docs', 'lib', 'examples', 'test', 'bench']) if (fs.existsSync(path.join(ROOT, d))) walk(d);
  }
  return files.filter((f) => /\.(ts|js|mjs|md|json|txt|sh|yml|yaml)$|(^|\/)run$/.test(f) && fs.existsSync(path.join(ROOT, f)));
}

test('no tracked text file cites a document that is not in the repository', () => {
  const files = trackedTextFiles();
  assert.ok(files.includes('README.md') && files.some((f) => f.startsWith('lib/')), `the file list is real (${files.length} files)`);
  const hits: string[] = [];
  for (const f of files) {
    // The whole text, so a citation cut by a line break is found too.
    const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
    for (const re of UNREADABLE) {
      for (const m of text.matchAll(re)) hits.push(`${f}:${text.slice(0, m.index).split('\n').length}: ${m[0].replace(/\s+/g, ' ')}`);
    }
  }
  assert.equal(hits, [], 'citations of documents a reader cannot open');
});

test.run();
