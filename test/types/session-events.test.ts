/**
 * The registry's and the stores' events are typed: a misspelled event name
 * or a listener of another payload does not compile (each
 * `@ts-expect-error` below fails the build if the error it expects goes
 * away), and a correct listener's payload is typed without a cast.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../lib/core/clock.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import type { FileStore } from '../../lib/store/file/file-store.js';
import type { RedisStore } from '../../lib/store/redis/redis-store.js';

/** Compiled, never called: the stores need a disk or a server to exist. */
function storeEventTypes(file: FileStore, redis: RedisStore): void {
  // @ts-expect-error a misspelled event of the file store
  file.on('saved', () => undefined);
  // @ts-expect-error a listener of another payload
  file.on('save', (info: string) => void info.length);
  file.on('save', (info) => void info.seq.toFixed());
  file.once('error', (err) => void err.code.startsWith('NETLOOP_'));
  // @ts-expect-error a misspelled event of the Redis store
  redis.on('eror', () => undefined);
  redis.on('error', (err) => void err.details);
}

test('the registry: a misspelled event or a wrong listener is a compile error; on() returns the registry for chaining, off() removes', async () => {
  void storeEventTypes;
  const reg = new SessionRegistry({ clock: new ManualClock(), autoAudit: false });
  try {
    // @ts-expect-error a misspelled event name
    reg.on('expird', () => undefined);
    // @ts-expect-error a listener of another payload
    reg.on('expired', (p: { nope: number }) => void p.nope);
    // @ts-expect-error on() returns the registry, not an unsubscribe function
    const unsubscribe: () => void = reg.on('created', () => undefined);
    assert.is(unsubscribe as unknown, reg);
    const seen: string[] = [];
    const onCreated = ({ session }: { session: { id: string } }): void => void seen.push(session.id);
    reg.on('created', onCreated).on('deleted', (p) => void seen.push(p.reason));
    const { session } = await reg.create({ userId: 'u' });
    reg.off('created', onCreated);
    await reg.create({ userId: 'v' });
    await reg.delete(session.id, 'bye');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(seen, [session.id, 'bye']);
  } finally {
    await reg.close();
  }
});

test.run();
