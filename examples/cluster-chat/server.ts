/**
 * The chat server on several processes: `node:cluster` forks one worker per
 * event loop; they share the listening port (the primary hands connections
 * out round-robin), keep sessions in Redis ({@link RedisStore}) and broadcast
 * through Redis pub/sub, so a message sent by a client of one worker reaches
 * the clients of every worker.
 *
 * ```sh
 * npm run build
 * node dist/examples/cluster-chat/server.js --redis redis://127.0.0.1:6379 [--workers 2] [--port 18801] [--host H]
 * ```
 *
 * ```
 *                          primary (forks, restarts a worker that dies)
 *              ┌──────────────────┴──────────────────┐
 *          worker 0                               worker 1
 *   ChatServer ─ ChatREQ ─▶ PUBLISH chat      ChatServer
 *        ▲                     │                   ▲
 *        └── broadcast ◀── SUBSCRIBE (duplicate client) ──▶ broadcast ──┘
 *   RedisStore (sessions, shared: a client may resume on any worker)
 * ```
 *
 * Every worker delivers only what comes back from the subscription, its own
 * clients' messages included, so all clients see one order: Redis's order of
 * publication. A worker that dies loses only its own connections (their
 * clients reconnect, to any worker, and resume their sessions from Redis);
 * the others go on, and the primary forks a replacement. Each worker reports
 * its pid in `netloop.Welcome`, so a client can tell which one serves it.
 *
 * The `Id` of a chat message is `(worker index · 1024 + generation) · 2^32 +
 * connection id`, unique across workers and their replacements.
 *
 * @module
 */

import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { ChatServer } from '../chat/server.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT } from '../chat/protocol.js';
import { RedisStore } from '../../lib/redis-store.js';
import type { RedisClientLike } from '../../lib/redis-store.js';
import { closeOnSignals } from '../../lib/close-on-signals.js';
import { ErrorCode, NetloopError } from '../../lib/errors.js';

/** The pub/sub channel of the chat messages (the ChatACK frames, as bytes). */
export const CLUSTER_CHAT_CHANNEL = 'netloop:chat:broadcast';
/** The key prefix of the shared sessions. */
export const CLUSTER_CHAT_PREFIX = 'netloop:chat:';

/** What the command line selects. */
export interface ClusterChatArgs {
  redis: string;
  workers: number;
  host: string;
  port: number;
}

/** The usage line. */
export const CLUSTER_CHAT_USAGE = 'usage: node dist/examples/cluster-chat/server.js --redis redis://HOST:PORT [--workers N] [--port N] [--host H]';

/** Parses the command line; a bad argument is `NETLOOP_INVALID_OPTION`. */
export function parseClusterChatArgs(argv: readonly string[]): ClusterChatArgs {
  const args: ClusterChatArgs = { redis: '', workers: 2, host: CHAT_DEFAULT_HOST, port: CHAT_DEFAULT_PORT };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw usageError(`${arg} needs a value`, arg);
    i++;
    if (arg === '--redis') {
      if (!/^rediss?:\/\//.test(value)) throw usageError(`--redis must be a redis:// URL, got ${value}`, arg);
      args.redis = value;
    } else if (arg === '--host') args.host = value;
    else if (arg === '--workers' || arg === '--port') {
      const n = Number(value);
      const [min, max] = arg === '--workers' ? [1, 64] : [0, 65535];
      if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${arg} must be an integer in [${min}, ${max}], got ${value}`, arg);
      if (arg === '--workers') args.workers = n;
      else args.port = n;
    } else throw usageError(`unknown argument ${arg}`, arg);
  }
  if (args.redis === '') throw usageError('--redis is required', '--redis');
  return args;
}

function usageError(message: string, option: string): NetloopError {
  return new NetloopError(ErrorCode.INVALID_OPTION, `${message}\n${CLUSTER_CHAT_USAGE}`, { details: { option } });
}

/** A worker's message to the primary once it listens. */
interface ListeningMessage {
  kind: 'listening';
  index: number;
  pid: number;
  address: string;
  port: number;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

// ─── primary ──────────────────────────────────────────────────────────────────

function runPrimary(args: ClusterChatArgs): void {
  const generation = new Array<number>(args.workers).fill(0);
  const byWorker = new Map<Worker, number>();
  const up = new Set<number>();
  let announced = false;
  let stopping = false;

  const fork = (index: number): void => {
    const w = cluster.fork({
      NETLOOP_CHAT_WORKER: String(index),
      NETLOOP_CHAT_GENERATION: String(generation[index]! % 1024),
    });
    generation[index]!++;
    byWorker.set(w, index);
    w.on('message', (msg: ListeningMessage) => {
      if (msg?.kind !== 'listening') return;
      out(`worker ${msg.index} pid ${msg.pid} listening on ${msg.address}:${msg.port}`);
      up.add(msg.index);
      if (!announced && up.size === args.workers) {
        announced = true;
        out(`netloop cluster chat listening on ${msg.address}:${msg.port} (${args.workers} workers, sessions and broadcast in Redis)`);
        out(`connect a client:  npm run chat -- --port ${msg.port} --host ${msg.address}`);
      }
    });
  };

  cluster.on('exit', (w, code, signal) => {
    const index = byWorker.get(w);
    byWorker.delete(w);
    if (index === undefined) return;
    up.delete(index);
    out(`worker ${index} pid ${w.process.pid ?? '?'} exited (${signal ?? `code ${String(code)}`})${stopping ? '' : '; starting a replacement'}`);
    if (!stopping) fork(index);
    else if (byWorker.size === 0) {
      out('stopped');
      process.exit(0);
    }
  });

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    out(`${signal}: stopping ${byWorker.size} worker(s)`);
    if (byWorker.size === 0) process.exit(0);
    for (const w of byWorker.keys()) w.process.kill('SIGTERM');
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  for (let i = 0; i < args.workers; i++) fork(i);
}

// ─── worker ───────────────────────────────────────────────────────────────────

async function runWorker(args: ClusterChatArgs): Promise<void> {
  const index = Number(process.env['NETLOOP_CHAT_WORKER'] ?? '0');
  const generation = Number(process.env['NETLOOP_CHAT_GENERATION'] ?? '0');
  const tag = `[worker ${index} pid ${process.pid}]`;
  const log = (line: string): void => out(`${tag} ${line}`);
  // One client publishes and serves the store; a duplicate SUBSCRIBEs (a
  // subscribed connection can run nothing else).
  const pub = createClient({ url: args.redis, disableOfflineQueue: true });
  pub.on('error', (err: Error) => log(`redis error: ${err.message}`));
  await pub.connect();
  const sub = pub.duplicate();
  sub.on('error', (err: Error) => log(`redis subscriber error: ${err.message}`));
  await sub.connect();
  const store = new RedisStore({ client: pub as unknown as RedisClientLike, prefix: CLUSTER_CHAT_PREFIX });
  const chat = await ChatServer.start({
    host: args.host,
    port: args.port,
    store,
    idBase: (index * 1024 + generation) * 2 ** 32,
    connectionPrefix: `${process.pid}:`,
    publish: (frame) => {
      pub.publish(CLUSTER_CHAT_CHANNEL, frame).catch((err: unknown) => log(`publish failed: ${err instanceof Error ? err.message : String(err)}`));
    },
    log,
  });
  await sub.subscribe(CLUSTER_CHAT_CHANNEL, (message: Buffer) => chat.broadcast(message), true);
  const { address, port } = chat.server.address();
  const msg: ListeningMessage = { kind: 'listening', index, pid: process.pid, address, port };
  process.send?.(msg);
  // SIGTERM (from the primary): clients flush and close, sessions are detached
  // into Redis; then the Redis clients close. chat.close() resolves once, so
  // both ways in end the same.
  let finishing: Promise<void> | null = null;
  const finish = (): Promise<void> =>
    (finishing ??= (async () => {
      await chat.close();
      await sub.close().catch(() => undefined);
      await store.close();
      await pub.close().catch(() => undefined);
      process.exit(0);
    })());
  closeOnSignals(chat, { signals: ['SIGTERM'], flushTimeoutMs: 2_000, exit: false, onDone: () => void finish() });
  // The primary is gone (killed): no worker outlives it.
  process.on('disconnect', () => void finish());
  // Ctrl-C reaches every process of the group; the primary decides.
  process.on('SIGINT', () => undefined);
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  try {
    const args = parseClusterChatArgs(process.argv.slice(2));
    if (cluster.isPrimary) runPrimary(args);
    else {
      runWorker(args).catch((err: unknown) => {
        process.stderr.write(`worker failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      });
    }
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
