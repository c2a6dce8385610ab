/**
 * The etcd harness itself (test/helpers/etcd-server.ts) against a real
 * `etcd`: it starts healthy on free loopback ports, serves the v3 API through
 * both gRPC (the etcd3 client) and the JSON gateway, keeps committed data
 * across a SIGKILL restart, freezes on pause, and leaves neither a process
 * nor a folder behind when stopped. The suite's skip/fail policy is checked
 * with an empty PATH.
 *
 * Without `etcd` on the PATH the server tests are skipped with a loud notice,
 * except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { ErrorCodeValue } from '../../../lib/core/errors.js';
import { etcdHttp, etcdServerForTests, startEtcdServer } from '../../helpers/etcd-server.js';
import type { EtcdServer } from '../../helpers/etcd-server.js';
import { connectRaw, until } from '../../helpers/net.js';
import { processAlive } from '../../helpers/server-process.js';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

/** A put through the JSON gateway; resolves with the revision it created. */
async function gatewayPut(server: EtcdServer, key: string, value: string): Promise<number> {
  const { status, body } = await etcdHttp(server.url, '/v3/kv/put', { body: JSON.stringify({ key: b64(key), value: b64(value) }) });
  assert.is(status, 200, body);
  return Number((JSON.parse(body) as { header: { revision: string } }).header.revision);
}

/** A get through the JSON gateway; null when absent. */
async function gatewayGet(server: EtcdServer, key: string, timeoutMs?: number): Promise<string | null> {
  const { status, body } = await etcdHttp(server.url, '/v3/kv/range', {
    body: JSON.stringify({ key: b64(key) }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  assert.is(status, 200, body);
  const kvs = (JSON.parse(body) as { kvs?: Array<{ value?: string }> }).kvs;
  return kvs === undefined ? null : unb64(kvs[0]!.value ?? '');
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCodeValue, what: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isNetloopError(err, code), `${what}: ${String(err)}`);
    return;
  }
  assert.unreachable(`${what} resolved`);
}

/** Runs `fn` with PATH emptied and CI set as given, then restores both. */
async function withEnv<T>(ci: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = { PATH: process.env['PATH'], CI: process.env['CI'] };
  process.env['PATH'] = '';
  if (ci === undefined) delete process.env['CI'];
  else process.env['CI'] = ci;
  try {
    return await fn();
  } finally {
    process.env['PATH'] = saved.PATH;
    if (saved.CI === undefined) delete process.env['CI'];
    else process.env['CI'] = saved.CI;
  }
}

// Started before any suite runs: uvu starts running queued suites on a timer,
// and a suite queued after an await would race that run.
const server = await etcdServerForTests('etcd harness tests (test/etcd-server.test.ts)');

const policy = suite('etcd harness: policy when etcd is absent');

policy('under CI a missing etcd is a failure (NETLOOP_STORE_UNAVAILABLE)', async () => {
  await withEnv('true', () => rejectsWith(etcdServerForTests('policy check'), ErrorCode.STORE_UNAVAILABLE, 'CI=true'));
});

policy('elsewhere it resolves null and prints a loud notice naming the skipped tests', async () => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.is(await withEnv(undefined, () => etcdServerForTests('the policy check')), null);
  } finally {
    process.stderr.write = write;
  }
  const notice = written.join('');
  assert.match(notice, 'SKIPPED: the policy check');
  assert.match(notice, 'apt-get install etcd-server');
});

policy('an executable that exits at once is reported, not waited for', async () => {
  const started = Date.now();
  await rejectsWith(startEtcdServer({ executable: '/bin/false', startTimeoutMs: 10_000 }), ErrorCode.STORE_UNAVAILABLE, '/bin/false');
  assert.ok(Date.now() - started < 5_000, 'gave up on exit, not on the deadline');
});

policy.run();

if (server !== null) {
  const s = suite('etcd harness');

  s('starts healthy on loopback ports, with a leader', async () => {
    assert.ok(server.clientPort > 0 && server.peerPort > 0 && server.clientPort !== server.peerPort);
    assert.is(server.url, `http://127.0.0.1:${server.clientPort}`);
    assert.equal(server.endpoints, [server.url]);
    assert.ok(processAlive(server.pid));
    assert.is(await server.health(), true);
    const metrics = await server.metrics();
    assert.is(metrics.get('etcd_server_has_leader'), 1);
    assert.ok((metrics.get('etcd_mvcc_db_total_size_in_bytes') ?? 0) > 0);
  });

  s('serves the v3 API through the JSON gateway and through gRPC (etcd3)', async () => {
    const revision = await gatewayPut(server, 'harness/gateway', 'one');
    assert.ok(revision > 1);
    assert.is(await gatewayGet(server, 'harness/gateway'), 'one');
    const client = new Etcd3({ hosts: [...server.endpoints] });
    try {
      assert.is(await client.get('harness/gateway').string(), 'one');
      await client.put('harness/grpc').value('two');
      assert.is(await gatewayGet(server, 'harness/grpc'), 'two');
    } finally {
      client.close();
    }
  });

  s('grants a one-second lease as asked (raft timing lowers the minimum TTL)', async () => {
    const { status, body } = await etcdHttp(server.url, '/v3/lease/grant', { body: JSON.stringify({ TTL: '1' }) });
    assert.is(status, 200, body);
    assert.is((JSON.parse(body) as { TTL: string }).TTL, '1');
  });

  s('restart after SIGKILL keeps committed data, ports and health', async () => {
    await gatewayPut(server, 'harness/durable', 'kept');
    const { clientPort, peerPort, pid } = server;
    await server.restart('SIGKILL');
    assert.is.not(server.pid, pid);
    assert.not.ok(processAlive(pid));
    assert.is(server.clientPort, clientPort);
    assert.is(server.peerPort, peerPort);
    assert.is(await server.health(), true);
    assert.is(await gatewayGet(server, 'harness/durable'), 'kept');
  });

  s('pause freezes the server (requests time out), resume thaws it', async () => {
    await gatewayPut(server, 'harness/paused', 'before');
    server.pause();
    try {
      let timedOut = false;
      try {
        await gatewayGet(server, 'harness/paused', 300);
      } catch {
        timedOut = true;
      }
      assert.ok(timedOut, 'a paused server answered');
      assert.ok(processAlive(server.pid), 'a paused server is still a process');
    } finally {
      server.resume();
    }
    assert.is(await gatewayGet(server, 'harness/paused'), 'before');
  });

  s('restart thaws a paused server first', async () => {
    server.pause();
    await server.restart();
    assert.is(await server.health(), true);
  });

  s('stop ends the process, frees the port and removes the data; idempotent', async () => {
    const { pid, clientPort, dataDir } = server;
    assert.ok(fs.existsSync(dataDir));
    await server.stop();
    assert.not.ok(processAlive(pid), 'etcd still runs');
    assert.not.ok(fs.existsSync(dataDir), 'the data folder is left');
    let refused = false;
    try {
      (await connectRaw(clientPort)).destroy();
    } catch (err) {
      refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    }
    assert.ok(refused, 'the client port still accepts');
    await server.stop();
    await rejectsWith(server.restart(), ErrorCode.STORE_CLOSED, 'restart after stop');
  });

  s('a server left running is killed when its test process exits', async () => {
    // A child process starts a server and exits without stopping it.
    const helper = new URL('../../helpers/etcd-server.js', import.meta.url).href;
    const script = `const { startEtcdServer } = await import(${JSON.stringify(helper)});
      const s = await startEtcdServer();
      process.stdout.write(JSON.stringify({ pid: s.pid, dir: path.dirname(s.dataDir) }));
      process.exit(0);`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', `import * as path from 'node:path';\n${script}`],
        { timeout: 10_000 },
        (err, stdout) => (err === null ? resolve(stdout) : reject(err)),
      ),
    );
    const { pid, dir } = JSON.parse(out) as { pid: number; dir: string };
    assert.ok(pid > 0);
    try {
      await until(() => !processAlive(pid), `etcd ${pid} to die with its parent`);
    } finally {
      // The folder is the caller's to remove when it never called stop().
      assert.ok(path.basename(dir).startsWith('netloop-etcd-'));
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  });

  s.after(async () => {
    await server.stop();
  });

  s.run();
}
