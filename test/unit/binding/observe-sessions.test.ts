/**
 * Session diagnostics: expiries published on `netloop:session:expire`,
 * with ids and the reason only, until stopped.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as dc from 'node:diagnostics_channel';
import { ManualClock } from '../../../lib/core/clock.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import { CHANNEL_NAMES } from '../../../lib/reactor/diagnostics.js';
import type { SessionExpireMessage } from '../../../lib/reactor/diagnostics.js';
import { observeSessions } from '../../../lib/binding/observe-sessions.js';
import { until } from '../../helpers/net.js';

test('session expiry is published with ids and the reason only, never the token or its hash; after stop(), nothing more', async () => {
  const clock = new ManualClock();
  const reg = new SessionRegistry({ clock, ttlMs: 1_000, granularityMs: 100, autoAudit: false });
  const seen: SessionExpireMessage[] = [];
  const onMessage = (m: unknown): void => {
    seen.push(m as SessionExpireMessage);
  };
  dc.subscribe(CHANNEL_NAMES.sessionExpire, onMessage);
  const stop = observeSessions(reg);
  try {
    const { session, token } = await reg.create({ userId: 'u1', connectionId: 'conn-9' });
    clock.advance(1_100);
    await reg.audit();
    await until(() => seen.length === 1, 'the expiry message');
    assert.equal(seen[0], { sessionId: session.id, userId: 'u1', connectionId: 'conn-9', reason: 'ttl' });
    assert.not.ok(JSON.stringify(seen).includes(token), 'the token never appears');
    stop();
    await reg.create({ userId: 'u2', connectionId: 'conn-10' });
    clock.advance(1_100);
    await reg.audit();
    await new Promise<void>((r) => setImmediate(r));
    assert.is(seen.length, 1, 'stopped: the second expiry is not published');
  } finally {
    dc.unsubscribe(CHANNEL_NAMES.sessionExpire, onMessage);
    stop();
    await reg.close();
  }
});

test.run();
