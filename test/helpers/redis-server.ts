/**
 * A real `redis-server` for tests and benchmarks, started on a free loopback
 * port with persistence off, in its own temporary folder.
 *
 * ```
 *   startRedisServer()
 *     ├─ free port: bind 127.0.0.1:0 with node:net, read the port, close
 *     ├─ mkdtemp(os.tmpdir()/netloop-redis-XXXX)          (--dir, nothing is saved)
 *     ├─ spawn redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --dir D
 *     └─ await "Ready to accept connections" on stdout     (bounded by startTimeoutMs)
 *
 *   server.url          redis://127.0.0.1:P
 *   server.restart()    stop, then start again on the same port (data is lost: no persistence)
 *   server.pause()      SIGSTOP: the server freezes, connections stay open (a hung server)
 *   server.resume()     SIGCONT
 *   server.stop()       SIGTERM (SIGKILL after a grace), then remove the folder; idempotent
 * ```
 *
 * {@link redisServerForTests} applies the suite's policy when no `redis-server`
 * is on the PATH: under CI (`CI=true`) it throws, so a missing server is a
 * failure; elsewhere it prints a loud message on stderr and resolves null, and
 * the caller skips its Redis tests.
 *
 * A server left running by a crashed test is killed when the process exits.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The executable; default: `redis-server` found on the PATH. */
  executable?: string;
  /** Extra command-line arguments, e.g. `['--maxmemory', '64mb']`. */
  extraArgs?: readonly string[];
  /** How long to wait for the server to accept connections, in ms. Default 10,000. */
  startTimeoutMs?: number;
  /** The port to listen on (e.g. one a store was pointed at while nothing listened). Default: a free port. */
  port?: number;
}

/** A running `redis-server` owned by the caller. */
export interface RedisServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The TCP port, the same across restarts. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** The current process id (changes on restart). */
  readonly pid: number;
  /** The command line that started the server, for printing. */
  readonly commandLine: string;
  /** Stops the server (SIGTERM, or `signal`) and starts it again on the same port; resolves once it is ready. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
  /** Stops the server and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

const READY_LINE = 'Ready to accept connections';
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 5;
const LOG_TAIL_CHARS = 4_000;

/** Every server started by this module and not yet stopped, killed if the process exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** The absolute path of `name` on the PATH, or null. */
export function findExecutable(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return null;
}

/** A loopback port that was free a moment ago (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

function quote(arg: string): string {
  return /^[\w./:=,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Resolves once `child` has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Spawns one server on `port` and resolves once it logs that it accepts
 * connections; rejects (after killing it) if it exits first or the deadline passes.
 */
function launch(executable: string, args: readonly string[], timeoutMs: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let log = '';
    let settled = false;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err === null) {
        // Keep draining output so the server never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(child);
      } else {
        child.kill('SIGKILL');
        live.delete(child);
        reject(err);
      }
    };
    const onOutput = (chunk: Buffer): void => {
      log = (log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
      if (log.includes(READY_LINE)) finish(null);
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('error', (err) =>
      finish(new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis-server failed to start: ${err.message}`, { cause: err })),
    );
    child.once('exit', (code, signal) => {
      live.delete(child);
      finish(
        new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis-server exited before it was ready (code ${code}, signal ${signal})`, {
          details: { log },
        }),
      );
    });
    const timer = setTimeout(
      () =>
        finish(
          new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis-server was not ready within ${timeoutMs} ms`, {
            details: { log },
          }),
        ),
      timeoutMs,
    );
  });
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    // A paused server cannot act on SIGTERM until it is thawed; SIGKILL needs no thaw, and
    // must not get one: a killed paused server never answers what it was sent.
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited(child);
    clearTimeout(grace);
  }
  live.delete(child);
}

/**
 * Starts a `redis-server` on a free loopback port (or `options.port`) with persistence off.
 * Rejects with `NETLOOP_STORE_UNAVAILABLE` when no executable is found or the
 * server does not become ready in time.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const executable = options.executable ?? findExecutable('redis-server');
  if (executable === null) {
    throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis-server is not on the PATH');
  }
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  installExitHook();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'netloop-redis-'));
  const argsFor = (port: number): string[] => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    ...(options.extraArgs ?? []),
  ];

  let child: ChildProcess | undefined;
  let port = 0;
  let lastError: unknown;
  // The free port can be taken between the probe and the server's bind; try a few.
  // A given port is tried once: it is the caller's.
  const attempts = options.port === undefined ? PORT_ATTEMPTS : 1;
  for (let attempt = 0; attempt < attempts && child === undefined; attempt++) {
    port = options.port ?? (await freePort());
    try {
      child = await launch(executable, argsFor(port), startTimeoutMs);
    } catch (err) {
      lastError = err;
    }
  }
  if (child === undefined) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw lastError;
  }

  let current: ChildProcess = child;
  let stopped = false;
  const commandLine = [executable, ...argsFor(port)].map(quote).join(' ');
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid(): number {
      return current.pid ?? -1;
    },
    commandLine,
    async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      if (stopped) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the redis server was stopped');
      await terminate(current, signal);
      current = await launch(executable, argsFor(port), startTimeoutMs);
    },
    pause(): void {
      current.kill('SIGSTOP');
    },
    resume(): void {
      current.kill('SIGCONT');
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await terminate(current, 'SIGTERM');
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The suite's policy: a started server, or null when the Redis tests must be
 * skipped. Without `redis-server` on the PATH it throws under CI
 * (`CI=true`: a missing server is a failure, never a skip) and otherwise
 * prints a loud notice on stderr and resolves null.
 *
 * @param what names the skipped tests in the notice.
 */
export async function redisServerForTests(what: string, options: RedisServerOptions = {}): Promise<RedisServer | null> {
  if (options.executable === undefined && findExecutable('redis-server') === null) {
    if (process.env['CI'] === 'true') {
      throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis-server is not on the PATH; it is required under CI (${what})`);
    }
    const bar = '!'.repeat(72);
    process.stderr.write(
      `\n${bar}\n!! SKIPPED: ${what}\n!! redis-server is not on the PATH; install it (Debian: apt-get install redis-server)\n!! to run these tests. Under CI (CI=true) this is a failure.\n${bar}\n\n`,
    );
    return null;
  }
  return startRedisServer(options);
}
