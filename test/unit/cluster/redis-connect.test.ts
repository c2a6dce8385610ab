/**
 * Reaching Redis within a start-up bound: every failed attempt is reported
 * with the time of the next, the last one gives up with a coded error
 * within the documented time; once connected, the client reconnects without
 * a bound (it outlives a Redis restart).
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createClient } from 'redis';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { REDIS_CONNECT_DEFAULTS, connectRedis, redisRetryDelay } from '../../../lib/cluster/redis-connect.js';
import type { RedisAttemptFailure } from '../../../lib/cluster/redis-connect.js';
import { redisServerForTests, startRedisServer } from '../../helpers/redis-server.js';
import type { RedisServer } from '../../helpers/redis-server.js';
import { refusedPort, until } from '../../helpers/net.js';

test('redisRetryDelay doubles from the initial wait up to the longest', () => {
  assert.equal([1, 2, 3, 4, 5, 6, 7].map((n) => redisRetryDelay(n)), [100, 200, 400, 800, 1600, 2000, 2000]);
  assert.equal([1, 2, 3, 4].map((n) => redisRetryDelay(n, 10, 35)), [10, 20, 35, 35]);
  assert.is(redisRetryDelay(10_000), REDIS_CONNECT_DEFAULTS.maxDelayMs);
});

test('refused: each attempt is reported with the wait and the time of the next; the last gives up; NETLOOP_STORE_UNAVAILABLE within the bound', async () => {
  const port = await refusedPort();
  const failures: RedisAttemptFailure[] = [];
  const started = Date.now();
  try {
    await connectRedis((socket) => createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true, socket }), {
      attempts: 4,
      initialDelayMs: 20,
      maxDelayMs: 50,
      target: `127.0.0.1:${port}`,
      onAttemptFailed: (f) => {
        failures.push(f);
      },
    });
    assert.unreachable('connected to a refused port');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.STORE_UNAVAILABLE), String(err));
    assert.equal({ ...err.details, elapsedMs: 0 }, { target: `127.0.0.1:${port}`, attempts: 4, cause: 'ECONNREFUSED', elapsedMs: 0 });
  }
  const elapsed = Date.now() - started;
  assert.equal(failures.map((f) => [f.attempt, f.attempts, f.cause, f.delayMs]), [
    [1, 4, 'ECONNREFUSED', 20],
    [2, 4, 'ECONNREFUSED', 40],
    [3, 4, 'ECONNREFUSED', 50],
    [4, 4, 'ECONNREFUSED', 0],
  ]);
  assert.is(failures[3]!.nextAt, null, 'the last says no next attempt');
  for (const f of failures.slice(0, 3)) assert.ok(Math.abs(f.nextAt! - (Date.now() - 60_000)) < 120_000, 'a real wall time');
  assert.ok(elapsed >= 20 + 40 + 50 && elapsed < 10_000, `the waits, and no more: ${elapsed} ms`);
});

test('a reporting callback that throws changes nothing; one attempt is allowed', async () => {
  const port = await refusedPort();
  let calls = 0;
  try {
    await connectRedis((socket) => createClient({ url: `redis://127.0.0.1:${port}`, socket }), {
      attempts: 1,
      onAttemptFailed: () => {
        calls++;
        throw new Error('a faulty report');
      },
    });
    assert.unreachable('connected');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.STORE_UNAVAILABLE));
  }
  assert.is(calls, 1);
});

test('connected: resolves with the client, which then reconnects without a bound after a Redis restart', async () => {
  let redis: RedisServer | null = await redisServerForTests('connectRedis');
  if (redis === null) return;
  const port = redis.port;
  try {
    const client = await connectRedis((socket) => createClient({ url: redis!.url, disableOfflineQueue: true, socket }), { attempts: 2, initialDelayMs: 10, maxDelayMs: 50 });
    let errors = 0;
    client.on('error', () => errors++);
    assert.ok(client.isReady);
    assert.is(await client.ping(), 'PONG');
    // Down for far longer than two attempts' worth of waits: start-up's bound no longer applies.
    await redis.stop();
    redis = null;
    await until(() => errors >= 5, 'five failed reconnection attempts', 10_000);
    assert.ok(client.isOpen, 'still trying');
    redis = await startRedisServer({ port });
    await until(() => client.isReady, 'the reconnection', 10_000);
    assert.is(await client.ping(), 'PONG');
    await client.close();
  } finally {
    await redis?.stop();
  }
});

test('bad options are NETLOOP_INVALID_OPTION', async () => {
  const create = (socket: object): ReturnType<typeof createClient> => createClient({ socket });
  for (const bad of [{ attempts: 0 }, { attempts: 1001 }, { connectTimeoutMs: 0 }, { initialDelayMs: -1 }, { maxDelayMs: 1.5 }, { onAttemptFailed: 5 }]) {
    try {
      await connectRedis(create, bad as object);
      assert.unreachable(JSON.stringify(bad));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), JSON.stringify(bad));
    }
  }
  try {
    await connectRedis(null as unknown as typeof create);
    assert.unreachable('no factory');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
  }
});

test.run();
