/**
 * Sessions across two processes sharing a Redis store (a real
 * `redis-server` on a free loopback port): a session server in a child
 * process holds 40 clients; this process, with a registry of its own on the
 * same store, replaces, kicks or deletes their sessions. Every client of
 * the child, quiet or talking, must receive its notice and be closed with
 * the right reason within a second.
 *
 * ```
 *   this process (registry B) ──create / kick / delete──▶ Redis ──feed──▶ child (registry A)
 *   40 sockets ──LOGIN user-i──▶ child ──notice, FIN──▶ sockets      child ──{"closed",reason}──▶ stdout
 * ```
 *
 * Without `redis-server` on the PATH the file is skipped with a loud
 * notice, except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import type { LoginPolicy } from '../../lib/session/types.js';
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import { redisServerForTests } from '../helpers/redis-server.js';
import { withTimeout } from '../helpers/net.js';

const server = await redisServerForTests('the cross-process session tests (test/integration/cross-process-sessions.test.ts)');

const USERS = 40;
/** The bound the issue sets: every old connection told and closed within this long. */
const BOUND_MS = 1_000;

/** The child's report of one closed client. */
interface Closed {
  closed: string | null;
  reason: string;
}

/** The session server process (test/fixtures/session-server.ts). */
class Child {
  readonly proc: ChildProcess;
  readonly closes: Closed[] = [];
  readonly port: Promise<number>;

  constructor(url: string, prefix: string, policy: LoginPolicy) {
    const script = fileURLToPath(new URL('../fixtures/session-server.js', import.meta.url));
    this.proc = spawn(process.execPath, [script, url, prefix, policy, 'A'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let ready: (port: number) => void = () => undefined;
    this.port = withTimeout(new Promise<number>((resolve) => (ready = resolve)), 20_000, 'the session server to listen');
    readline.createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; port?: number } & Closed;
      if (msg.ready === true) ready(msg.port!);
      else this.closes.push(msg);
    });
  }

  async end(): Promise<number | null> {
    const exit = new Promise<number | null>((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    const code = await exit;
    clearTimeout(timer);
    return code;
  }
}

/** One client of the child: its socket, what it received, and when it saw the FIN. */
interface Peer {
  user: string;
  socket: net.Socket;
  sessionId: string;
  received: string;
  endedAt: number | null;
  talker: NodeJS.Timeout | null;
}

async function login(port: number, user: string, talking: boolean): Promise<Peer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const peer: Peer = { user, socket, sessionId: '', received: '', endedAt: null, talker: null };
  socket.on('data', (d: Buffer) => (peer.received += d.toString('utf8')));
  socket.on('end', () => (peer.endedAt = performance.now()));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`LOGIN ${user}\n`);
  await withTimeout(
    new Promise<void>((resolve) => {
      const check = (): void => {
        const m = /^OK (\S+)\n/.exec(peer.received);
        if (m === null) return;
        peer.sessionId = m[1]!;
        peer.received = peer.received.slice(m[0].length);
        socket.off('data', check);
        resolve();
      };
      socket.on('data', check);
    }),
    10_000,
    `the login of ${user}`,
  );
  // A talking client sends a line every 20 ms until its connection ends; a quiet one never sends.
  if (talking) {
    peer.talker = setInterval(() => socket.writable && socket.write('PING\n'), 20);
    socket.once('close', () => clearInterval(peer.talker!));
  }
  return peer;
}

/** p-th percentile (0..100) of `xs`, nearest rank. */
function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

if (server !== null) {
  const url = server.url;
  let serial = 0;
  const s = suite('sessions across processes');

  /**
   * Starts the child with `policy`, logs 40 users in there (half of them
   * talking), runs `act` with a registry of this process on the same store,
   * and checks that every client got the notice of `expected(i)` and was
   * closed with its reason within {@link BOUND_MS} of the change of its
   * session. `act` makes the changes one after another and notes in
   * `decided[i]` when the change of client i was decided (just before its
   * call); the latencies returned are from then to the client's FIN.
   */
  const scenario = async (
    policy: LoginPolicy,
    act: (registry: SessionRegistry, peers: Peer[], decided: number[]) => Promise<void>,
    expected: (i: number) => { notice: string; reason: string },
  ): Promise<number[]> => {
    const prefix = `xp${++serial}:`;
    const child = new Child(url, prefix, policy);
    const store = new RedisStore({ url, prefix, commandTimeoutMs: 10_000 });
    const registry = new SessionRegistry({ store, policy, processId: 'B', ttlMs: 60_000, autoAudit: false });
    const peers: Peer[] = [];
    try {
      const port = await child.port;
      for (let i = 0; i < USERS; i++) peers.push(await login(port, `user-${i}`, i % 2 === 0));
      assert.is(await registry.onlineCount(), USERS, 'presence sees the other process\'s users');
      const started = performance.now();
      const decided: number[] = peers.map(() => started);
      await act(registry, peers, decided);
      await withTimeout(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (peers.every((p) => p.endedAt !== null) && child.closes.length >= USERS) resolve();
            else setTimeout(check, 5);
          };
          check();
        }),
        BOUND_MS * 10,
        'every client of the other process to be closed',
      );
      const latencies = peers.map((p, i) => p.endedAt! - decided[i]!);
      for (const [i, p] of peers.entries()) {
        const want = expected(i);
        const notice = JSON.parse(p.received.trim().split('\n').pop()!) as { event: string; session: string };
        assert.is(notice.event, want.notice, `${p.user}: the notice`);
        assert.is(notice.session, p.sessionId, `${p.user}: the notice names its session`);
        const closed = child.closes.find((c) => c.closed === p.user);
        assert.ok(closed !== undefined, `${p.user}: closed in the other process`);
        assert.is(closed.reason, want.reason, `${p.user}: the close reason`);
        assert.ok(latencies[i]! < BOUND_MS, `${p.user} (${i % 2 === 0 ? 'talking' : 'quiet'}): closed ${latencies[i]!.toFixed(0)} ms after the change`);
      }
      return latencies;
    } finally {
      for (const p of peers) {
        if (p.talker !== null) clearInterval(p.talker);
        p.socket.destroy();
      }
      await registry.close();
      await store.close();
      assert.is(await child.end(), 0, 'the session server exits cleanly');
    }
  };

  const report = (what: string, latencies: number[]): void => {
    // From the change's call in this process to the client's FIN from the other.
    process.stdout.write(`\n  ${what}: median ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms (${latencies.length} clients)\n`);
  };

  s("'replace': 40 logins here replace the 40 sessions held there; every old client is told and closed (session-replaced)", async () => {
    const latencies = await scenario(
      'replace',
      async (registry, _peers, decided) => {
        for (let i = 0; i < USERS; i++) {
          decided[i] = performance.now();
          await registry.create({ userId: `user-${i}`, connectionId: `B:${i}` });
        }
      },
      () => ({ notice: 'session_replaced', reason: 'session-replaced' }),
    );
    report('replace', latencies);
  });

  s("'multiple': kicks and deletes here close the clients there (session-kicked, session-deleted)", async () => {
    const latencies = await scenario(
      'multiple',
      async (registry, peers, decided) => {
        for (const [i, p] of peers.entries()) {
          decided[i] = performance.now();
          assert.ok(await (i % 4 < 2 ? registry.kick(p.sessionId, 'banned') : registry.delete(p.sessionId, 'logout')), `${p.user}: live in the store`);
        }
      },
      (i) => (i % 4 < 2 ? { notice: 'session_kicked', reason: 'session-kicked' } : { notice: 'session_deleted', reason: 'session-deleted' }),
    );
    report('kick and delete', latencies);
  });

  s("'refuse': logins here are refused while the clients there are online; a kick then closes them (session-kicked)", async () => {
    const latencies = await scenario(
      'refuse',
      async (registry, peers, decided) => {
        for (let i = 0; i < USERS; i++) {
          try {
            await registry.create({ userId: `user-${i}`, connectionId: `B:${i}` });
            assert.unreachable(`user-${i}: a second login is refused`);
          } catch (err) {
            assert.ok(isNetloopError(err, ErrorCode.LOGIN_REFUSED), String(err));
          }
        }
        assert.ok(peers.every((p) => p.endedAt === null), 'a refused login closes nothing');
        for (const [i, p] of peers.entries()) {
          decided[i] = performance.now();
          await registry.kick(p.sessionId);
        }
      },
      () => ({ notice: 'session_kicked', reason: 'session-kicked' }),
    );
    report('refuse, then kick', latencies);
  });

  s.run();

  const teardown = suite('cross-process sessions: teardown');
  teardown('stop the redis server', async () => {
    await server.stop();
  });
  teardown.run();
}
