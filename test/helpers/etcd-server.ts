/**
 * A real single-member `etcd` (v3 API) for tests and benchmarks, started on
 * free loopback ports (client and peer) with its data in a temporary folder.
 *
 * ```
 *   startEtcdServer()
 *     ├─ free ports: client C and peer P (bind 127.0.0.1:0, read, close)
 *     ├─ mkdtemp(os.tmpdir()/netloop-etcd-XXXX)            data in XXXX/data
 *     ├─ spawn etcd --name netloop --data-dir XXXX/data
 *     │        --listen-client-urls http://127.0.0.1:C --advertise-client-urls (same)
 *     │        --listen-peer-urls http://127.0.0.1:P --initial-advertise-peer-urls (same)
 *     │        --initial-cluster netloop=http://127.0.0.1:P --logger zap --log-level warn
 *     │        --heartbeat-interval 10 --election-timeout 100   (see FAST_RAFT below)
 *     └─ ready when GET http://127.0.0.1:C/health answers {"health":"true"}
 *        (the member has a leader and serves reads; bounded by startTimeoutMs)
 *
 *   server.url          http://127.0.0.1:C   (gRPC and the JSON gateway share it)
 *   server.endpoints    [url]                (etcd3's `hosts`)
 *   server.restart()    stop, then start again on the same ports and data: etcd keeps
 *                       what it committed (write-ahead log), even across SIGKILL
 *   server.pause()      SIGSTOP: the server freezes, connections stay open (a hung server)
 *   server.resume()     SIGCONT
 *   server.stop()       SIGTERM (SIGKILL after a grace), then remove the folder; idempotent
 * ```
 *
 * {@link etcdServerForTests} applies the suite's policy when no `etcd` is on
 * the PATH: under CI (`CI=true`) it throws, so a missing server is a failure;
 * elsewhere it prints a loud message on stderr and resolves null, and the
 * caller skips its etcd tests.
 *
 * A server left running by a crashed test is killed when the process exits.
 *
 * @module
 */

import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';
import { findExecutable, freePort } from './redis-server.js';
import { freezeProcess, launchServer, quoteArg, terminateServer } from './server-process.js';

/** Options of {@link startEtcdServer}. */
export interface EtcdServerOptions {
  /** The executable; default: `etcd` found on the PATH. */
  executable?: string;
  /** Extra command-line arguments, e.g. `['--quota-backend-bytes', '67108864']`. */
  extraArgs?: readonly string[];
  /** How long to wait for the server to answer its health check, in ms. Default 15,000. */
  startTimeoutMs?: number;
}

/** A running single-member `etcd` owned by the caller. */
export interface EtcdServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The client port (gRPC, the JSON gateway, /health and /metrics), the same across restarts. */
  readonly clientPort: number;
  /** The peer (raft) port, the same across restarts. */
  readonly peerPort: number;
  /** `http://127.0.0.1:<clientPort>`. */
  readonly url: string;
  /** `[url]`, the shape etcd3's `hosts` option and most clients take. */
  readonly endpoints: readonly string[];
  /** The member's data folder (kept across restarts, removed by stop). */
  readonly dataDir: string;
  /** The current process id (changes on restart). */
  readonly pid: number;
  /** The command line that started the server, for printing. */
  readonly commandLine: string;
  /** One GET /health: true when the member has a leader and no alarm. Rejects when unreachable. */
  health(timeoutMs?: number): Promise<boolean>;
  /**
   * One GET /metrics, parsed: each sample's name (with its labels, as printed)
   * to its value, e.g. `etcd_mvcc_db_total_size_in_bytes`, `process_resident_memory_bytes`.
   */
  metrics(): Promise<Map<string, number>>;
  /** Stops the server (SIGTERM, or `signal`) and starts it again on the same ports and data; resolves once healthy. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
  /** Stops the server and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

const MEMBER_NAME = 'netloop';

/**
 * Raft timing ten times faster than etcd's defaults (100 ms heartbeat, 1 s
 * election). A single member has no peer to lose its leadership to, so the
 * short timeout costs nothing in stability, while the new member elects
 * itself within about one election timeout: start-up takes tens of ms instead
 * of hundreds. It also lowers etcd's minimum lease TTL (1.5 election
 * timeouts, rounded up to whole seconds: 1 s instead of 2 s), so tests can
 * use one-second leases as asked. `extraArgs` come later on the command line
 * and win, e.g. to measure with etcd's defaults.
 */
const FAST_RAFT = ['--heartbeat-interval', '10', '--election-timeout', '100'];
const PORT_ATTEMPTS = 5;
const PROBE_TIMEOUT_MS = 1_000;

/**
 * One HTTP request to etcd's client port with a fresh connection (no agent),
 * so that no pooled socket outlives the call and keeps a test process alive.
 * Resolves with the status and the body as text.
 */
export function etcdHttp(
  url: string,
  pathname: string,
  options: { method?: string; body?: string; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(pathname, url),
      {
        method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
        agent: false,
        headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: options.timeoutMs ?? 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`${pathname} timed out after ${options.timeoutMs ?? 5_000} ms`)));
    req.once('error', reject);
    req.end(options.body);
  });
}

async function healthOf(url: string, timeoutMs: number): Promise<boolean> {
  const { status, body } = await etcdHttp(url, '/health', { timeoutMs });
  if (status !== 200) return false;
  return (JSON.parse(body) as { health?: unknown }).health === 'true';
}

/** Parses Prometheus text: every sample line's name (labels included, as printed) to its value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (space <= 0) continue;
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/**
 * Starts a single-member `etcd` on free loopback ports. Rejects with
 * `NETLOOP_STORE_UNAVAILABLE` when no executable is found or the server does
 * not become healthy in time.
 */
export async function startEtcdServer(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const executable = options.executable ?? findExecutable('etcd');
  if (executable === null) {
    throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'etcd is not on the PATH');
  }
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'netloop-etcd-'));
  const dataDir = path.join(dir, 'data');
  const argsFor = (clientPort: number, peerPort: number): string[] => {
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    return [
      '--name', MEMBER_NAME,
      '--data-dir', dataDir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${MEMBER_NAME}=${peer}`,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
      ...FAST_RAFT,
      ...(options.extraArgs ?? []),
    ];
  };
  const launch = (clientPort: number, peerPort: number): Promise<ChildProcess> => {
    const url = `http://127.0.0.1:${clientPort}`;
    return launchServer({
      name: 'etcd',
      executable,
      args: argsFor(clientPort, peerPort),
      timeoutMs: startTimeoutMs,
      probe: () => healthOf(url, PROBE_TIMEOUT_MS),
    });
  };

  let child: ChildProcess | undefined;
  let clientPort = 0;
  let peerPort = 0;
  let lastError: unknown;
  // Either free port can be taken between the probe and etcd's bind; try a few pairs.
  for (let attempt = 0; attempt < PORT_ATTEMPTS && child === undefined; attempt++) {
    clientPort = await freePort();
    do peerPort = await freePort();
    while (peerPort === clientPort);
    try {
      child = await launch(clientPort, peerPort);
    } catch (err) {
      lastError = err;
      // A member that failed half-way leaves a data folder for the old ports behind.
      await fs.promises.rm(dataDir, { recursive: true, force: true });
    }
  }
  if (child === undefined) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw lastError;
  }

  let current: ChildProcess = child;
  let stopped = false;
  const url = `http://127.0.0.1:${clientPort}`;
  const commandLine = [executable, ...argsFor(clientPort, peerPort)].map(quoteArg).join(' ');
  return {
    host: '127.0.0.1',
    clientPort,
    peerPort,
    url,
    endpoints: [url],
    dataDir,
    get pid(): number {
      return current.pid ?? -1;
    },
    commandLine,
    health(timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
      return healthOf(url, timeoutMs);
    },
    async metrics(): Promise<Map<string, number>> {
      const { status, body } = await etcdHttp(url, '/metrics');
      if (status !== 200) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, `etcd /metrics answered ${status}`);
      return parseMetrics(body);
    },
    async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      if (stopped) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the etcd server was stopped');
      await terminateServer(current, signal);
      current = await launch(clientPort, peerPort);
    },
    pause(): void {
      freezeProcess(current);
    },
    resume(): void {
      current.kill('SIGCONT');
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await terminateServer(current, 'SIGTERM');
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The suite's policy: a started server, or null when the etcd tests must be
 * skipped. Without `etcd` on the PATH it throws under CI (`CI=true`: a
 * missing server is a failure, never a skip) and otherwise prints a loud
 * notice on stderr and resolves null.
 *
 * @param what names the skipped tests in the notice.
 */
export async function etcdServerForTests(what: string, options: EtcdServerOptions = {}): Promise<EtcdServer | null> {
  if (options.executable === undefined && findExecutable('etcd') === null) {
    if (process.env['CI'] === 'true') {
      throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, `etcd is not on the PATH; it is required under CI (${what})`);
    }
    const bar = '!'.repeat(72);
    process.stderr.write(
      `\n${bar}\n!! SKIPPED: ${what}\n!! etcd is not on the PATH; install it (Debian: apt-get install etcd-server)\n!! to run these tests. Under CI (CI=true) this is a failure.\n${bar}\n\n`,
    );
    return null;
  }
  return startEtcdServer(options);
}
