/**
 * The chat server on several processes: `node:cluster` forks one worker per
 * event loop; they share the listening port (the primary hands connections
 * out round-robin), keep sessions in Redis ({@link RedisStore}) and broadcast
 * through a {@link RoomsAdapter}, so a message sent by a client of one worker
 * reaches the clients of every worker.
 *
 * ```sh
 * npm run build
 * node dist/examples/cluster-chat/server.js --redis redis://127.0.0.1:6379 [--workers 2] [--port 18801] [--host H] [--redis-attempts 10]
 * ```
 *
 * ```
 *                          primary (forks, restarts a worker that dies)
 *              ┌──────────────────┴──────────────────┐
 *          worker 0                               worker 1
 *   ChatServer ─ ChatACK ─▶ rooms.broadcast     ChatServer
 *        ▲                     │ (Redis pub/sub)     ▲
 *        └──── delivered ◀─────┴──────────▶ delivered ┘
 *   RedisStore (sessions, shared: a client may resume on any worker)
 * ```
 *
 * The adapter runs with `loopback: true`: every worker delivers only what
 * comes back from Redis, its own clients' messages included, so all clients
 * see one order, Redis's. A worker that dies loses only its own connections
 * (their clients reconnect, to any worker, and resume their sessions from
 * Redis); the others go on, and the primary forks a replacement. Each worker
 * reports its pid in `netloop.Welcome`, so a client can tell which one serves
 * it. The `Id` of a chat message is `(worker index · 1024 + generation) ·
 * 2^32 + connection id`, unique across workers and their replacements.
 *
 * Redis unreachable at start-up is said, and bounded ({@link connectRedis}):
 * the primary reaches Redis before it forks any worker, and a worker before
 * it listens; each failed attempt is printed with the time of the next, and
 * after `--redis-attempts` (default 10: about 11 s when connections are
 * refused, at most 31 s when they hang) the process gives up with a message
 * and a non-zero exit. A worker that gives up exits with
 * {@link EXIT_REDIS_UNREACHABLE}, and the primary then stops every worker and
 * exits with 1 instead of forking replacements that would fail the same way.
 * Once connected, a client reconnects without a bound.
 *
 * @module
 */

import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { ErrorCode, NetloopError, RedisStore, RoomsAdapter, REDIS_CONNECT_DEFAULTS, closeOnSignals, connectRedis } from 'netloop';
import type { PubSubClientLike, RedisClientLike } from 'netloop';
import { ChatServer } from '../chat/chat-server.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT } from '../chat/protocol.js';

/** The key prefix of the shared sessions; the broadcasts travel on `<prefix>rooms:0`. */
export const CLUSTER_CHAT_PREFIX = 'netloop:chat:';

/** What the command line selects. */
export interface ClusterChatArgs {
  redis: string;
  workers: number;
  host: string;
  port: number;
  /** Connection attempts to Redis at start-up before giving up (per process). */
  redisAttempts: number;
}

/** Defaults of the command line. */
export const CLUSTER_CHAT_DEFAULTS = Object.freeze({ workers: 2, redisAttempts: 10 });

/** The exit code of a worker that gave up reaching Redis at start-up (the primary then stops, with 1). */
export const EXIT_REDIS_UNREACHABLE = 3;

/** The usage line. */
export const CLUSTER_CHAT_USAGE =
  'usage: node dist/examples/cluster-chat/server.js --redis redis://HOST:PORT [--workers N] [--port N] [--host H] [--redis-attempts N] [--help]';

const D = REDIS_CONNECT_DEFAULTS;

/** What `--help` prints. */
export const CLUSTER_CHAT_HELP = [
  CLUSTER_CHAT_USAGE,
  '  --redis URL          the Redis server that holds the sessions and carries the broadcast (required)',
  `  --workers N          worker processes sharing the port, 1 to 64 (default ${CLUSTER_CHAT_DEFAULTS.workers})`,
  `  --port N             port, 0 for a free one (default ${CHAT_DEFAULT_PORT})`,
  `  --host H             address to bind (default ${CHAT_DEFAULT_HOST})`,
  `  --redis-attempts N   connection attempts to Redis at start-up before giving up with exit code 1, 1 to 1000 (default ${CLUSTER_CHAT_DEFAULTS.redisAttempts});`,
  `                       each attempt at most ${D.connectTimeoutMs} ms, then a wait doubling from ${D.initialDelayMs} ms to ${D.maxDelayMs} ms`,
].join('\n');

/** Parses the command line; a bad argument is `NETLOOP_INVALID_OPTION`. */
export function parseClusterChatArgs(argv: readonly string[]): ClusterChatArgs {
  const args: ClusterChatArgs = {
    redis: '',
    workers: CLUSTER_CHAT_DEFAULTS.workers,
    host: CHAT_DEFAULT_HOST,
    port: CHAT_DEFAULT_PORT,
    redisAttempts: CLUSTER_CHAT_DEFAULTS.redisAttempts,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw usageError(`${arg} needs a value`, arg);
    i++;
    if (arg === '--redis') {
      if (!/^rediss?:\/\//.test(value)) throw usageError(`--redis must be a redis:// URL, got ${value}`, arg);
      args.redis = value;
    } else if (arg === '--host') args.host = value;
    else if (arg === '--workers' || arg === '--port' || arg === '--redis-attempts') {
      const n = Number(value);
      const [min, max] = arg === '--workers' ? [1, 64] : arg === '--port' ? [0, 65535] : [1, 1000];
      if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${arg} must be an integer in [${min}, ${max}], got ${value}`, arg);
      if (arg === '--workers') args.workers = n;
      else if (arg === '--port') args.port = n;
      else args.redisAttempts = n;
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

// ─── reaching Redis at start-up ───────────────────────────────────────────────

/** Where a Redis URL points, without its credentials (never printed). */
export function redisTarget(url: string): string {
  try {
    return new URL(url).host || '127.0.0.1:6379';
  } catch {
    return 'redis';
  }
}

/**
 * Connects a client to `args.redis` within the start-up bound, printing each
 * failed attempt with the time of the next; rejects with a message naming
 * the bound when Redis did not answer.
 */
async function reachRedis(args: ClusterChatArgs, print: (line: string) => void): Promise<ReturnType<typeof createClient>> {
  const target = redisTarget(args.redis);
  try {
    return await connectRedis((socket) => createClient({ url: args.redis, disableOfflineQueue: true, socket }), {
      attempts: args.redisAttempts,
      target,
      onAttemptFailed: (f) => {
        const head = `redis ${target}: attempt ${f.attempt} of ${f.attempts} failed (${f.cause})`;
        print(f.nextAt === null ? `${head}; giving up` : `${head}; next attempt at ${new Date(f.nextAt).toISOString()} (in ${f.delayMs} ms)`);
      },
    });
  } catch (err) {
    const d = (err as NetloopError).details as { cause: string; elapsedMs: number };
    throw new NetloopError(
      ErrorCode.STORE_UNAVAILABLE,
      `cannot reach Redis at ${target} after ${args.redisAttempts} attempts in ${(d.elapsedMs / 1000).toFixed(1)} s (${d.cause}); giving up (--redis-attempts sets the bound)`,
      { cause: err },
    );
  }
}

// ─── primary ──────────────────────────────────────────────────────────────────

async function runPrimary(args: ClusterChatArgs): Promise<void> {
  try {
    await (await reachRedis(args, out)).close();
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const generation = new Array<number>(args.workers).fill(0);
  const byWorker = new Map<Worker, number>();
  const up = new Set<number>();
  let announced = false;
  let stopping = false;
  let exitCode = 0;

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
    if (code === EXIT_REDIS_UNREACHABLE && !stopping) {
      // A replacement would meet the same Redis: stop everything, and say why.
      process.stderr.write(`worker ${index} pid ${w.process.pid ?? '?'} could not reach Redis; stopping the cluster\n`);
      exitCode = 1;
      stop('Redis unreachable');
    } else out(`worker ${index} pid ${w.process.pid ?? '?'} exited (${signal ?? `code ${String(code)}`})${stopping ? '' : '; starting a replacement'}`);
    if (!stopping) fork(index);
    else if (byWorker.size === 0) {
      out('stopped');
      process.exit(exitCode);
    }
  });

  function stop(why: string): void {
    if (stopping) return;
    stopping = true;
    out(`${why}: stopping ${byWorker.size} worker(s)`);
    if (byWorker.size === 0) {
      out('stopped');
      process.exit(exitCode);
    }
    for (const w of byWorker.keys()) w.process.kill('SIGTERM');
  }
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
  let pub: ReturnType<typeof createClient>;
  try {
    pub = await reachRedis(args, log);
  } catch (err) {
    process.stderr.write(`${tag} ${(err as Error).message}\n`);
    process.exit(EXIT_REDIS_UNREACHABLE);
  }
  pub.on('error', (err: Error) => log(`redis error: ${err.message}`));
  // One client serves the store and publishes; the adapter subscribes with a duplicate of it.
  const store = new RedisStore({ client: pub as unknown as RedisClientLike, prefix: CLUSTER_CHAT_PREFIX });
  let rooms: RoomsAdapter | null = null;
  const chat = await ChatServer.start({
    host: args.host,
    port: args.port,
    store,
    idBase: (index * 1024 + generation) * 2 ** 32,
    connectionPrefix: `${process.pid}:`,
    // Made in the same turn as the listening server, before any client can speak.
    publish: (frame) => rooms!.broadcast(frame),
    log,
  });
  rooms = new RoomsAdapter({ server: chat.server, redis: pub as unknown as PubSubClientLike, prefix: `${CLUSTER_CHAT_PREFIX}rooms:`, loopback: true });
  rooms.on('error', (err) => log(`rooms: ${err.message}`));
  rooms.on('dropped', (d) => log(`rooms: ${d.messages} broadcast(s) dropped (${d.reason})`));
  await rooms.ready();
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
      await rooms?.close();
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
    if (process.argv.includes('--help')) {
      out(CLUSTER_CHAT_HELP);
      process.exit(0);
    }
    const args = parseClusterChatArgs(process.argv.slice(2));
    if (cluster.isPrimary) {
      runPrimary(args).catch((err: unknown) => {
        process.stderr.write(`primary failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      });
    } else {
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
