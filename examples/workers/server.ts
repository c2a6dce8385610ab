/**
 * One port, many processes: a `node:cluster` primary keeps a
 * {@link WorkerPool} of worker processes that share one port, each running
 * a small line-protocol server whose sessions live in Redis; `SIGHUP`
 * restarts the workers one at a time, and the clients of a draining worker
 * reconnect and resume their session on another.
 *
 * ```sh
 * npm run build
 * node dist/examples/workers/server.js --redis redis://127.0.0.1:6379 [--workers 2] [--port 7400] [--host H] [--reuse-port]
 * node dist/examples/workers/server.js --help
 * kill -HUP <primary pid>     # rolling restart
 * kill -TERM <primary pid>    # drain every worker, then exit
 * ```
 *
 * The protocol, one line each way (try it with `nc 127.0.0.1 7400`):
 *
 * ```
 *   LOGIN <user>      ─▶ TOKEN <token> <pid>            a new session, served by worker <pid>
 *   RESUME <token>    ─▶ RESUMED <session> <pid> <n>    the session, on whichever worker took the connection
 *   INCR              ─▶ COUNT <n> <pid>                a counter kept in the session (in Redis)
 *   (drain)           ◀─ BYE <pid> restarting: reconnect and RESUME your token     then a graceful close
 *   anything else     ─▶ ERR <code>
 * ```
 *
 * ```
 *                primary: WorkerPool (SIGHUP: restart(), SIGTERM: close())
 *        ┌────────────────────┴────────────────────┐
 *    worker slot 0                             worker slot 1        one port: the primary hands out
 *    Server ─ bindSessions ─ SessionRegistry    Server ─ ...         connections (or, --reuse-port,
 *                      └──────── RedisStore ────────┘                the kernel spreads them)
 * ```
 *
 * A drained worker stops accepting, sends `BYE` to each client, flushes and
 * closes (its sessions become resumable, in Redis), closes its store, and
 * exits; the pool forked its replacement, and waited for it to listen,
 * before asking. `--reuse-port` (Node 22.12 or later on Linux) gives every
 * worker a socket of its own, bound with SO_REUSEPORT; it needs a fixed
 * port.
 *
 * @module
 */

import cluster from 'node:cluster';
import {
  ErrorCode,
  EventLoop,
  NetloopError,
  RedisStore,
  Server,
  SessionRegistry,
  WorkerPool,
  bindSessions,
  connectionProbe,
  isNetloopError,
  joinWorkerPool,
  reusePortSupported,
  workerIdentity,
} from 'netloop';
import type { Client, CloseOptions } from 'netloop';
import { defineCommand, isMain, parseCommandLine, runCommand, usageError } from '../shared/cli.js';
import type { OptionValues } from '../shared/cli.js';

/** What the command line selects. */
export interface WorkersArgs {
  redis: string;
  workers: number;
  host: string;
  port: number;
  reusePort: boolean;
}

/** The port when none is given. */
export const WORKERS_DEFAULT_PORT = 7400;
/** The key prefix of the shared sessions. */
export const WORKERS_PREFIX = 'netloop:workers:';
/** How long a draining worker's clients may take to read their notice and close. */
export const WORKERS_FLUSH_MS = 3_000;

/** The command line. */
export const WORKERS_COMMAND = defineCommand({
  name: 'workers-server',
  usage: 'node dist/examples/workers/server.js --redis URL [options]',
  summary:
    'Worker processes behind one port with sessions in Redis (a node:cluster WorkerPool). SIGHUP restarts the workers one at a time; SIGINT or SIGTERM drains them all and exits.',
  options: {
    redis: {
      type: 'string',
      required: true,
      arg: 'URL',
      check: (v) => (/^rediss?:\/\//.test(v) ? null : 'must be a redis:// URL'),
      help: 'the Redis server that holds the sessions',
    },
    workers: { type: 'integer', default: 2, min: 1, max: 64, help: 'worker processes sharing the port' },
    port: { type: 'integer', default: WORKERS_DEFAULT_PORT, min: 0, max: 65535, help: 'port; 0 picks a free one (not with --reuse-port)' },
    host: { type: 'string', default: '127.0.0.1', arg: 'H', help: 'address to bind' },
    'reuse-port': { type: 'flag', help: 'every worker binds its own socket with SO_REUSEPORT (Node 22.12+ on Linux; needs a fixed --port)' },
  },
  notes: ['kill -HUP <primary pid>    restart the workers one at a time', 'kill -TERM <primary pid>   drain every worker, then exit'],
});

/** Parses the command line; a bad argument is `NETLOOP_INVALID_OPTION`. */
export function parseWorkersArgs(argv: readonly string[]): WorkersArgs {
  return toWorkersArgs(parseCommandLine(WORKERS_COMMAND, argv));
}

function toWorkersArgs(v: OptionValues<typeof WORKERS_COMMAND.options>): WorkersArgs {
  // Port 0 with SO_REUSEPORT would give every worker a port of its own.
  if (v['reuse-port'] && v.port === 0) throw usageError('--reuse-port needs a fixed --port', '--reuse-port');
  return { redis: v.redis, workers: v.workers, host: v.host, port: v.port, reusePort: v['reuse-port'] };
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

// ─── primary ──────────────────────────────────────────────────────────────────

async function runPrimary(args: WorkersArgs): Promise<void> {
  if (args.reusePort && !reusePortSupported()) {
    throw new NetloopError(ErrorCode.UNSUPPORTED, `--reuse-port needs Node 22.12 or later on Linux (this is Node ${process.versions.node})`);
  }
  const pool = new WorkerPool({ workers: args.workers, drainTimeoutMs: WORKERS_FLUSH_MS + 5_000 });
  pool.on('ready', (w) => out(`worker ${w.slot} pid ${w.pid} ready`));
  pool.on('exit', (w, e) => {
    const how = e.signal ?? `code ${String(e.code)}`;
    out(`worker ${w.slot} pid ${w.pid} exited (${how}${e.killed ? ', killed' : e.planned ? ', drained' : ', crashed'})`);
  });
  pool.on('error', (err) => out(`worker failed: ${err.code} ${err.message}`));
  // The port the workers share, as the primary bound it (port 0 picks one); with SO_REUSEPORT, the fixed one.
  let port = args.port;
  cluster.once('listening', (_w, address) => (port = address.port));

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    out(`${signal}: draining ${pool.workers().length} worker(s)`);
    void pool.close().then(() => {
      out('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (stopping) return;
    out(`SIGHUP: restarting ${pool.size} worker(s), one at a time`);
    pool.restart().then(
      () => out(`restarted: pids ${pool.workers().map((w) => w.pid).join(' ')}`),
      (err: unknown) => out(`restart stopped: ${isNetloopError(err) ? err.code : ''} ${err instanceof Error ? err.message : String(err)}`),
    );
  });
  await pool.start();
  out(`primary pid ${process.pid} listening on ${args.host}:${port} (${args.workers} workers${args.reusePort ? ', SO_REUSEPORT' : ''}, sessions in Redis)`);
}

// ─── worker ───────────────────────────────────────────────────────────────────

/** The session counter, in the session's metadata (strings). */
async function increment(registry: SessionRegistry, sessionId: string): Promise<number> {
  const info = await registry.get(sessionId);
  const n = Number(info?.metadata['count'] ?? '0') + 1;
  await registry.updateMetadata(sessionId, { count: String(n) });
  return n;
}

/** Start-up attempts at Redis before a worker gives up (the pool then reports it failed). */
export const WORKERS_STORE_ATTEMPTS = 10;

/**
 * Pings the store until it answers, at most {@link WORKERS_STORE_ATTEMPTS}
 * times, 250 ms apart, saying each failure: a loaded machine can take longer
 * than one command timeout to load the Redis client and connect.
 */
async function reachStore(registry: SessionRegistry, slot: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await registry.ping();
      return;
    } catch (err) {
      const why = isNetloopError(err) ? `${err.code}: ${err.message}` : String(err);
      if (attempt >= WORKERS_STORE_ATTEMPTS) throw err;
      out(`[worker ${slot}] redis attempt ${attempt} of ${WORKERS_STORE_ATTEMPTS} failed (${why}); next in 250 ms`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function runWorker(args: WorkersArgs): Promise<void> {
  const { slot } = workerIdentity() ?? { slot: 0 };
  const pid = process.pid;
  const prefix = `${pid}:`;
  const loop = new EventLoop();
  const store = new RedisStore({ url: args.redis, prefix: WORKERS_PREFIX, onError: (err) => out(`[worker ${slot}] redis: ${err.message}`) });
  const registry = new SessionRegistry({
    store,
    ttlMs: 60_000,
    resumeWindowMs: 60_000,
    // The binding audits on the loop's timer, and answers for this process's connections only.
    autoAudit: false,
    isConnectionAlive: connectionProbe(loop, prefix),
  });
  await reachStore(registry, slot);
  const server = await new Server(loop, { host: args.host, port: args.port, reusePort: args.reusePort }).listen();
  const binding = bindSessions(server, registry, { connectionPrefix: prefix, handshakeTimeoutMs: 30_000 });

  const reply = (client: Client, line: string): void => {
    if (client.writable) client.write(`${line}\n`);
  };
  const fail = (client: Client) => (err: unknown) => reply(client, `ERR ${isNetloopError(err) ? err.code : 'ERROR'}`);
  const handleLine = (client: Client, line: string): void => {
    const [cmd = '', arg = ''] = line.split(' ', 2);
    if (cmd === 'LOGIN' && arg !== '') {
      binding.login(client, { userId: arg }).then(({ token }) => reply(client, `TOKEN ${token} ${pid}`), fail(client));
    } else if (cmd === 'RESUME' && arg !== '') {
      binding
        .resume(client, arg)
        .then(async ({ session }) => reply(client, `RESUMED ${session.id} ${pid} ${(await registry.get(session.id))?.metadata['count'] ?? '0'}`))
        .catch(fail(client));
    } else if (cmd === 'INCR') {
      const session = binding.sessionOf(client);
      if (session === undefined) return reply(client, `ERR ${ErrorCode.SESSION_NOT_FOUND}`);
      increment(registry, session.id).then((n) => reply(client, `COUNT ${n} ${pid}`), fail(client));
    } else reply(client, `ERR ${ErrorCode.INVALID_VALUE}`);
  };
  // Lines, at most 1 KiB each: the rest of a line is kept in the client's context.
  server.on('data', (client, chunk) => {
    let buf = (typeof client.context === 'string' ? client.context : '') + chunk.toString('latin1');
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      handleLine(client, buf.slice(0, nl).replace(/\r$/, ''));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > 1024) {
      reply(client, `ERR ${ErrorCode.FRAME_TOO_LARGE}`);
      client.end();
      buf = '';
    }
    client.context = buf;
  });
  out(`[worker ${slot}] pid ${pid} listening on ${args.host}:${server.port}`);

  // Drained by the pool: the server closes gracefully with the notice (the
  // sessions detach into Redis, resumable elsewhere), then the session layer and the store.
  const app = {
    close: async (options: CloseOptions): Promise<void> => {
      await server.close(options);
      await binding.close();
      await registry.close();
      await store.close();
      await loop.close();
    },
  };
  joinWorkerPool(app, { notice: `BYE ${pid} restarting: reconnect and RESUME your token\n`, flushTimeoutMs: WORKERS_FLUSH_MS });
  // Ctrl-C reaches every process of the group; the primary decides.
  process.on('SIGINT', () => undefined);
}

if (isMain(import.meta.url)) {
  runCommand(WORKERS_COMMAND, process.argv.slice(2), (args) => (cluster.isPrimary ? runPrimary(args) : runWorker(args)), toWorkersArgs);
}
