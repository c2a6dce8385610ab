/**
 * The `'replace'` login policy under concurrency: logins of one user issued
 * at the same instant in one process, on every store (memory in place, file,
 * Redis against a real `redis-server`). `replace` means the newest login
 * wins: none is refused, each earlier one is replaced (event `replaced`, by
 * the login that followed it), and exactly one session is left.
 *
 * Without `redis-server` on the PATH the Redis cases are skipped with a loud
 * notice, except under CI (`CI=true`), where that is a failure.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { FileStore } from '../../../lib/store/file/file-store.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import { RedisStore } from '../../../lib/store/redis/redis-store.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import type { CreatedSession, SessionEvents } from '../../../lib/session/session-registry.js';
import type { SessionStore } from '../../../lib/store/contract.js';
import { redisServerForTests } from '../../helpers/redis-server.js';
import { until } from '../../helpers/net.js';

const redis = await redisServerForTests('the replace-policy tests on Redis (test/login-replace.test.ts)');

interface StoreCase {
  name: string;
  open(): Promise<{ store: SessionStore | undefined; dispose(): Promise<void> }>;
}

let prefixSeq = 0;

const cases: StoreCase[] = [
  {
    name: 'memory (in place)',
    async open() {
      return { store: undefined, dispose: async () => undefined };
    },
  },
  {
    name: 'file',
    async open() {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-replace-'));
      const store = await FileStore.open({ path: path.join(dir, 'sessions.json'), saveDelayMs: 50 });
      return {
        store,
        async dispose() {
          await store.close();
          await fs.rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];
if (redis !== null) {
  cases.push({
    name: 'redis',
    async open() {
      const store = new RedisStore({ url: redis.url, prefix: `netloop-replace-${process.pid}-${++prefixSeq}:`, commandTimeoutMs: 10_000 });
      return {
        store,
        async dispose() {
          await store.purgeKeys().catch(() => undefined);
          await store.close();
        },
      };
    },
  });
}

const s = suite('login policy replace: concurrent logins of one user');

for (const c of cases) {
  for (const n of [5, 20]) {
    s(`${c.name}: ${n} logins of one user at the same instant: none refused, each replaced by the next, the newest left alone`, async () => {
      const { store, dispose } = await c.open();
      const reg = new SessionRegistry({ policy: 'replace', autoAudit: false, ...(store === undefined ? {} : { store }) });
      try {
        const replaced: SessionEvents['replaced'][] = [];
        reg.on('replaced', (p) => void replaced.push(p));
        const outcomes = await Promise.allSettled(
          Array.from({ length: n }, (_, i) => reg.create({ userId: 'same-user', connectionId: `conn-${i}` })),
        );
        const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason as unknown);
        assert.equal(
          refused.map((e) => (isNetloopError(e) ? e.code : String(e))),
          [],
          'no login was refused',
        );
        const created = outcomes.map((o) => (o as PromiseFulfilledResult<CreatedSession>).value);
        await until(() => replaced.length >= n - 1, `${n - 1} replaced events`);
        // Call order is login order: each session was replaced by the login after it.
        assert.equal(
          replaced.map((p) => [p.session.id, p.by]),
          created.slice(0, -1).map((x, i) => [x.session.id, created[i + 1]!.session.id]),
        );
        assert.ok(replaced.every((p, i) => p.connectionId === `conn-${i}`), 'each replaced event names its connection');
        const left = await reg.getByUser('same-user');
        assert.equal(
          left.map((x) => x.id),
          [created[n - 1]!.session.id],
          'exactly the newest session is left',
        );
        assert.ok(created[n - 1]!.handle.alive);
        assert.ok(created.slice(0, -1).every((x) => !x.handle.alive), 'the others ended');
        const stats = await reg.stats();
        assert.is(stats.counters.refused, 0);
        assert.is(stats.counters.replaced, n - 1);
        assert.is(stats.counters.created, n);
        assert.is(stats.local, 1);
      } finally {
        await reg.close();
        await dispose();
      }
    });
  }
}

s('the logins of one user waiting for each other are bounded: past maxPendingLoginsPerUser, NETLOOP_LOGIN_REFUSED', async () => {
  const reg = new SessionRegistry({ policy: 'replace', autoAudit: false, maxPendingLoginsPerUser: 3, store: new MemoryStore() });
  try {
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => reg.create({ userId: 'busy' })));
    assert.equal(
      outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : isNetloopError(o.reason) ? o.reason.code : String(o.reason))),
      ['ok', 'ok', 'ok', ErrorCode.LOGIN_REFUSED, ErrorCode.LOGIN_REFUSED],
    );
    const err = (outcomes[3] as PromiseRejectedResult).reason as { details: Record<string, unknown> };
    assert.is(err.details['limit'], 'maxPendingLoginsPerUser');
    // Once they settled, the chain is free again; other users never waited.
    await reg.create({ userId: 'busy' });
    assert.is((await reg.getByUser('busy')).length, 1);
    try {
      new SessionRegistry({ maxPendingLoginsPerUser: 0 });
      assert.unreachable('maxPendingLoginsPerUser 0 was accepted');
    } catch (e) {
      assert.ok(isNetloopError(e, ErrorCode.INVALID_OPTION), String(e));
    }
  } finally {
    await reg.close();
  }
});

s.run();

if (redis !== null) {
  const teardown = suite('login policy replace: teardown');
  teardown('stop the redis server', async () => {
    await redis.stop();
  });
  teardown.run();
}
