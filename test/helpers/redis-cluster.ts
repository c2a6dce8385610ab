/**
 * A real Redis Cluster for tests and benchmarks: N masters (default three, no
 * replicas), each a `redis-server` on free loopback ports with persistence off
 * in its own temporary folder, joined by `redis-cli --cluster create`.
 *
 * ```
 *   startRedisCluster()
 *     ├─ per node i: free port Pi and cluster-bus port Bi; mkdtemp(netloop-redis-cluster-XXXX)/i
 *     │    spawn redis-server --port Pi --cluster-port Bi --bind 127.0.0.1
 *     │          --cluster-enabled yes --cluster-config-file nodes.conf
 *     │          --cluster-node-timeout T --save '' --appendonly no --dir XXXX/i
 *     │    ready on "Ready to accept connections"
 *     ├─ redis-cli --cluster create 127.0.0.1:P0 ... --cluster-replicas 0 --cluster-yes
 *     │    (16384 slots split evenly: node 0 holds the lowest range)
 *     └─ wait until CLUSTER INFO says cluster_state:ok on every node
 *
 *   cluster.nodes[i]          { index, host, port, busPort, url, pid, running, slots }
 *   cluster.dir               the folder of the nodes' folders
 *   cluster.rootNodes         [{ url }, ...]   node-redis `createCluster({ rootNodes })`
 *   cluster.nodeForKey(k)     the node that owns k's hash slot (the slot map of creation)
 *   cluster.stopNode(i)       SIGTERM (or a signal) one node; its folder and nodes.conf stay
 *   cluster.startNode(i)      start it again on the same ports and identity (its data is gone:
 *                             no persistence); resolves once every running node says ok
 *   cluster.pauseNode(i)      SIGSTOP one node; resumeNode(i) SIGCONT
 *   cluster.waitForState(s)   until every running node (or those named) reports cluster_state:s
 *   cluster.stop()            stop every node and remove the folder; idempotent
 * ```
 *
 * A stopped master leaves its slots uncovered: after the node timeout the
 * others mark it failed and (with the default cluster-require-full-coverage)
 * answer CLUSTERDOWN until it returns. A returning master with slots is
 * cleared of its failure flag about two node timeouts after it was marked.
 *
 * {@link redisClusterForTests} applies the suite's policy when `redis-server`
 * or `redis-cli` is missing: a failure under CI (`CI=true`), a loud notice and
 * null elsewhere.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';
import { findExecutable, freePort } from './redis-server.js';
import { PROBE_INTERVAL_MS, freezeProcess, launchServer, quoteArg, terminateServer } from './server-process.js';

/** The number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters, at least 3 (what `redis-cli --cluster create` accepts without replicas). Default 3. */
  masters?: number;
  /** The server executable; default: `redis-server` found on the PATH. */
  executable?: string;
  /** The CLI used to create the cluster; default: `redis-cli` found on the PATH. */
  cliExecutable?: string;
  /** `cluster-node-timeout`: how long a silent node takes to be suspected failed, in ms. Default 2,000. */
  nodeTimeoutMs?: number;
  /** Extra arguments for every node, e.g. `['--cluster-require-full-coverage', 'no']`. */
  extraArgs?: readonly string[];
  /** How long to wait for each node and for the whole cluster to be ready, in ms. Default 20,000. */
  startTimeoutMs?: number;
}

/** One master of a {@link RedisCluster}. */
export interface RedisClusterNode {
  /** The node's position in `cluster.nodes`, also its slot order (node 0 has the lowest slots). */
  readonly index: number;
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The client port, the same across restarts. */
  readonly port: number;
  /** The cluster-bus port (`--cluster-port`), the same across restarts. */
  readonly busPort: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** The current process id, -1 while stopped. */
  readonly pid: number;
  /** Whether the node's process is running (a paused node counts as running). */
  readonly running: boolean;
  /** The slot ranges `[first, last]` (inclusive) the node was given at creation. */
  readonly slots: ReadonlyArray<readonly [number, number]>;
}

/** A running Redis Cluster owned by the caller. */
export interface RedisCluster {
  readonly nodes: readonly RedisClusterNode[];
  /** `[{ url }, ...]`, every node: what node-redis `createCluster({ rootNodes })` takes. */
  readonly rootNodes: ReadonlyArray<{ url: string }>;
  /** The folder holding every node's folder (`<dir>/<index>`), removed by stop. */
  readonly dir: string;
  /** The `redis-cli --cluster create` command line, for printing. */
  readonly createCommandLine: string;
  /** The node whose slots hold `key` (by {@link keySlot} and the slot map of creation). */
  nodeForKey(key: string | Uint8Array): RedisClusterNode;
  /** CLUSTER INFO of node `index`, as field to value. Rejects when the node does not answer. */
  clusterInfo(index: number): Promise<Record<string, string>>;
  /**
   * Resolves once every running node (or the nodes in `options.nodes`) reports
   * `cluster_state:<state>`; rejects with `NETLOOP_STORE_UNAVAILABLE` after `timeoutMs`.
   */
  waitForState(state: 'ok' | 'fail', options?: { nodes?: readonly number[]; timeoutMs?: number }): Promise<void>;
  /** Stops node `index` (SIGTERM, or `signal`); its folder and cluster identity stay for startNode. */
  stopNode(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped node again on its ports; resolves once every running node says cluster_state:ok. */
  startNode(index: number): Promise<void>;
  /** stopNode then startNode. */
  restartNode(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Freezes node `index` (SIGSTOP): connections stay open, nothing is answered. */
  pauseNode(index: number): void;
  /** Thaws a paused node (SIGCONT). */
  resumeNode(index: number): void;
  /** Stops every node and removes the folder. Idempotent. */
  stop(): Promise<void>;
}

const PORT_ATTEMPTS = 5;
const READY_LINE = 'Ready to accept connections';

// CRC16/XMODEM (polynomial 0x1021, initial 0), the hash of Redis Cluster's key slots
// (the specification's crc16.c), one table entry per byte value.
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/**
 * The hash slot of `key`, as Redis Cluster computes it: CRC16 of the key, or
 * of its hash tag (the bytes between the first `{` and the next `}`, when
 * that is not empty), modulo 16384.
 */
export function keySlot(key: string | Uint8Array): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes, open + 1, close) % CLUSTER_SLOTS;
  }
  return crc16(bytes, 0, bytes.length) % CLUSTER_SLOTS;
}

/**
 * Sends one command to 127.0.0.1:`port` over a fresh connection and resolves
 * with its reply: a string for simple, bulk and integer replies (null for a
 * null bulk). An error reply rejects. Arrays are not needed here and reject.
 */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 2_000): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    const done = (err: Error | null, value?: string | null): void => {
      socket.destroy();
      if (err === null) resolve(value ?? null);
      else reject(err);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`redis ${args[0]} on port ${port} timed out after ${timeoutMs} ms`)));
    socket.once('error', (err) => done(err));
    socket.once('connect', () => {
      const parts = [`*${args.length}\r\n`];
      for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
      socket.write(parts.join(''));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const lineEnd = buffer.indexOf('\r\n');
      if (lineEnd === -1) return;
      const kind = String.fromCharCode(buffer[0]!);
      const line = buffer.toString('utf8', 1, lineEnd);
      if (kind === '+' || kind === ':') return done(null, line);
      if (kind === '-') return done(new Error(line));
      if (kind === '$') {
        const length = Number(line);
        if (length < 0) return done(null, null);
        if (buffer.length < lineEnd + 2 + length + 2) return;
        return done(null, buffer.toString('utf8', lineEnd + 2, lineEnd + 2 + length));
      }
      done(new Error(`unexpected reply type ${kind} to ${args[0]}`));
    });
  });
}

/** Parses CLUSTER INFO's `field:value` lines. */
function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

/** The node that owns each slot range, from `CLUSTER NODES` (ports mapped to node indexes). */
async function slotMap(port: number, portToIndex: ReadonlyMap<number, number>): Promise<Array<Array<[number, number]>>> {
  const text = (await redisCommand(port, ['CLUSTER', 'NODES'])) ?? '';
  const out: Array<Array<[number, number]>> = Array.from({ length: portToIndex.size }, () => []);
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    // <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link-state> <slot> ...
    const nodePort = Number(fields[1]!.split('@')[0]!.split(':').at(-1));
    const index = portToIndex.get(nodePort);
    if (index === undefined) continue;
    for (const range of fields.slice(8)) {
      if (range.startsWith('[')) continue; // A slot being migrated or imported: none here.
      const [first, last] = range.split('-').map(Number) as [number, number | undefined];
      out[index]!.push([first, last ?? first]);
    }
  }
  return out;
}

function runCli(executable: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(executable, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else
        reject(
          new NetloopError(ErrorCode.STORE_UNAVAILABLE, `redis-cli --cluster create failed: ${err.message}`, {
            cause: err,
            details: { output: `${stdout}${stderr}`.slice(-2_000) },
          }),
        );
    });
  });
}

interface NodeState {
  index: number;
  port: number;
  busPort: number;
  dir: string;
  child: ChildProcess | null;
  slots: Array<[number, number]>;
}

/**
 * Starts a Redis Cluster of `masters` (default 3) `redis-server` processes on
 * free loopback ports and resolves once every node reports `cluster_state:ok`.
 * Rejects with `NETLOOP_STORE_UNAVAILABLE` (having stopped what it started)
 * when an executable is missing or the cluster does not form in time.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const executable = options.executable ?? findExecutable('redis-server');
  const cli = options.cliExecutable ?? findExecutable('redis-cli');
  if (executable === null) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis-server is not on the PATH');
  if (cli === null) throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis-cli is not on the PATH');
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `masters must be an integer >= 3, got ${masters}`);
  }
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'netloop-redis-cluster-'));

  const argsFor = (node: NodeState): string[] => [
    '--port', String(node.port),
    '--cluster-port', String(node.busPort),
    '--bind', '127.0.0.1',
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(nodeTimeoutMs),
    '--save', '',
    '--appendonly', 'no',
    '--dir', node.dir,
    ...(options.extraArgs ?? []),
  ];
  const launch = (node: NodeState): Promise<ChildProcess> =>
    launchServer({ name: `redis-server (cluster node ${node.index})`, executable, args: argsFor(node), timeoutMs: startTimeoutMs, readyLine: READY_LINE });

  const nodes: NodeState[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map(async (node) => node.child !== null && terminateServer(node.child, 'SIGTERM')));
    for (const node of nodes) node.child = null;
    await fs.promises.rm(root, { recursive: true, force: true });
  };

  const waitForState = async (
    state: 'ok' | 'fail',
    which: readonly number[] = nodes.filter((n) => n.child !== null).map((n) => n.index),
    timeoutMs = startTimeoutMs,
  ): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(which);
    let last = '';
    while (pending.size > 0) {
      for (const index of [...pending]) {
        try {
          const info = parseInfo((await redisCommand(nodes[index]!.port, ['CLUSTER', 'INFO'])) ?? '');
          last = `node ${index}: cluster_state:${info['cluster_state']}`;
          if (info['cluster_state'] === state) pending.delete(index);
        } catch (err) {
          last = `node ${index}: ${(err as Error).message}`;
        }
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, `the cluster did not reach cluster_state:${state} within ${timeoutMs} ms`, {
          details: { last, pending: [...pending] },
        });
      }
      // Cluster state changes on the nodes' own cron and gossip; there is no event to await.
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
  };

  let createCommandLine = '';
  try {
    for (let index = 0; index < masters; index++) {
      const node: NodeState = { index, port: 0, busPort: 0, dir: path.join(root, String(index)), child: null, slots: [] };
      await fs.promises.mkdir(node.dir);
      nodes.push(node);
      let lastError: unknown;
      // Either free port can be taken between the probe and the server's bind; try a few pairs.
      for (let attempt = 0; attempt < PORT_ATTEMPTS && node.child === null; attempt++) {
        node.port = await freePort();
        do node.busPort = await freePort();
        while (node.busPort === node.port);
        try {
          node.child = await launch(node);
        } catch (err) {
          lastError = err;
        }
      }
      if (node.child === null) throw lastError;
    }
    const cliArgs = ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'];
    createCommandLine = [cli, ...cliArgs].map(quoteArg).join(' ');
    await runCli(cli, cliArgs, startTimeoutMs);
    await waitForState('ok');
    const portToIndex = new Map(nodes.map((n) => [n.port, n.index]));
    const slots = await slotMap(nodes[0]!.port, portToIndex);
    for (const node of nodes) node.slots = slots[node.index]!;
  } catch (err) {
    await stopAll();
    throw err;
  }

  // Slot to node index, for nodeForKey; the map of creation (the harness never reshards).
  const owner = new Uint8Array(CLUSTER_SLOTS);
  for (const node of nodes) for (const [first, last] of node.slots) owner.fill(node.index, first, last + 1);

  let stopped = false;
  const nodeAt = (index: number): NodeState => {
    const node = nodes[index];
    if (node === undefined) throw new NetloopError(ErrorCode.INVALID_OPTION, `no cluster node ${index}`);
    if (stopped) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the redis cluster was stopped');
    return node;
  };
  const views: RedisClusterNode[] = nodes.map((node) => ({
    index: node.index,
    host: '127.0.0.1',
    port: node.port,
    busPort: node.busPort,
    url: `redis://127.0.0.1:${node.port}`,
    get pid(): number {
      return node.child?.pid ?? -1;
    },
    get running(): boolean {
      return node.child !== null;
    },
    slots: node.slots,
  }));

  const cluster: RedisCluster = {
    nodes: views,
    rootNodes: views.map((v) => ({ url: v.url })),
    dir: root,
    createCommandLine,
    nodeForKey(key: string | Uint8Array): RedisClusterNode {
      return views[owner[keySlot(key)]!]!;
    },
    async clusterInfo(index: number): Promise<Record<string, string>> {
      return parseInfo((await redisCommand(nodeAt(index).port, ['CLUSTER', 'INFO'])) ?? '');
    },
    waitForState(state, waitOptions = {}): Promise<void> {
      return waitForState(state, waitOptions.nodes, waitOptions.timeoutMs);
    },
    async stopNode(index: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      const node = nodeAt(index);
      if (node.child === null) return;
      await terminateServer(node.child, signal);
      node.child = null;
    },
    async startNode(index: number): Promise<void> {
      const node = nodeAt(index);
      if (node.child !== null) return;
      node.child = await launch(node);
      await waitForState('ok');
    },
    async restartNode(index: number, signal?: NodeJS.Signals): Promise<void> {
      await cluster.stopNode(index, signal);
      await cluster.startNode(index);
    },
    pauseNode(index: number): void {
      const child = nodeAt(index).child;
      if (child !== undefined && child !== null) freezeProcess(child);
    },
    resumeNode(index: number): void {
      nodeAt(index).child?.kill('SIGCONT');
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await stopAll();
    },
  };
  return cluster;
}

/**
 * The suite's policy: a started cluster, or null when the cluster tests must
 * be skipped. Without `redis-server` or `redis-cli` on the PATH it throws
 * under CI (`CI=true`: a missing server is a failure, never a skip) and
 * otherwise prints a loud notice on stderr and resolves null.
 *
 * @param what names the skipped tests in the notice.
 */
export async function redisClusterForTests(what: string, options: RedisClusterOptions = {}): Promise<RedisCluster | null> {
  const missing = [
    options.executable === undefined && findExecutable('redis-server') === null ? 'redis-server' : null,
    options.cliExecutable === undefined && findExecutable('redis-cli') === null ? 'redis-cli' : null,
  ].filter((name): name is string => name !== null);
  if (missing.length > 0) {
    const names = missing.join(' and ');
    if (process.env['CI'] === 'true') {
      throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, `${names} not on the PATH; required under CI (${what})`);
    }
    const bar = '!'.repeat(72);
    process.stderr.write(
      `\n${bar}\n!! SKIPPED: ${what}\n!! ${names} not on the PATH; install them (Debian: apt-get install redis-server,\n!! which brings redis-tools) to run these tests. Under CI (CI=true) this is a failure.\n${bar}\n\n`,
    );
    return null;
  }
  return startRedisCluster(options);
}
