/**
 * The registry's one atomic `update`, `kick`, presence, and sessions
 * created without a connection (heartbeats accepted, attached later by
 * `resume`), over the memory store and a write-behind store.
 */

import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';
import type { SessionEndEvent, SessionRegistryOptions } from '../../../lib/session/types.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import { FileStore } from '../../../lib/store/file/file-store.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const TTL = 10_000;

async function rejects(p: Promise<unknown>, code: string, what = code): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: ${String(err)}`);
    assert.is(err.code, code, what);
    return;
  }
  assert.unreachable(`${what}: expected ${code}`);
}

/** A registry over the memory store (in place), or over a file store (written behind). */
async function make(kind: 'memory' | 'file', options: SessionRegistryOptions = {}): Promise<{ reg: SessionRegistry; clock: ManualClock; done(): Promise<void> }> {
  const clock = new ManualClock();
  if (kind === 'memory') {
    const reg = new SessionRegistry({ clock, ttlMs: TTL, granularityMs: 100, autoAudit: false, ...options });
    return { reg, clock, done: () => reg.close() };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netloop-reg-update-'));
  const store = await FileStore.open({ path: path.join(dir, 'sessions.json'), clock });
  const reg = new SessionRegistry({ clock, store, ttlMs: TTL, granularityMs: 100, autoAudit: false, ...options });
  return {
    reg,
    clock,
    async done() {
      await reg.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

for (const kind of ['memory', 'file'] as const) {
  const s = suite(`registry update, kick, presence (${kind} store)`);

  s('update changes state, metadata and counters in one step; the shorthands go through it', async () => {
    const { reg, done } = await make(kind);
    try {
      const { session } = await reg.create({ userId: 'u', connectionId: 'c1', metadata: { a: '1', b: '2' } });
      const after = await reg.update(session.id, { state: 'IDLE', metadata: { a: null, c: '3' }, stats: { set: { bytesIn: 10 }, add: { bytesIn: 5, heartbeats: 2 } } });
      assert.is(after.state, 'IDLE');
      assert.equal(after.metadata, { b: '2', c: '3' });
      assert.is(after.stats.bytesIn, 15);
      assert.is(after.stats.heartbeats, 2);
      const stored = await reg.store.get(session.id);
      assert.is(stored!.state, 'IDLE');
      assert.equal(stored!.metadata, { b: '2', c: '3' });
      assert.is(stored!.stats.bytesIn, 15);
      assert.is((await reg.updateStats(session.id, { messagesIn: 4 })).stats.messagesIn, 4);
      assert.equal((await reg.updateMetadata(session.id, { b: null })).metadata, { c: '3' });
      assert.is((await reg.updateState(session.id, 'ACTIVE')).state, 'ACTIVE');
      await rejects(reg.update(session.id, { metadata: { x: 5 as unknown as string } }), ErrorCode.INVALID_VALUE, 'a bad patch');
      await rejects(reg.update(session.id, { state: 'CONNECTING' }), ErrorCode.INVALID_TRANSITION, 'ACTIVE to CONNECTING');
      await rejects(reg.update('0190a4b2-7c3e-7a41-9f2b-ffffffffffff', { state: 'IDLE' }), ErrorCode.SESSION_NOT_FOUND, 'an unknown id');
      const closed = new Promise<SessionEndEvent>((resolve) => reg.once('closed', resolve));
      assert.is((await reg.update(session.id, { state: 'CLOSED', metadata: { ignored: 'x' } })).state, 'CLOSED');
      assert.is((await closed).reason, 'state-closed');
      assert.is(await reg.get(session.id), null);
    } finally {
      await done();
    }
  });

  s('update checks the metadata limits on the merged result before storing anything', async () => {
    const { reg, done } = await make(kind, { maxMetadataKeys: 2 });
    try {
      const { session } = await reg.create({ userId: 'u', metadata: { a: '1', b: '2' } });
      await rejects(reg.update(session.id, { metadata: { c: '3' }, state: 'IDLE' }), ErrorCode.INVALID_VALUE, 'a third key');
      const stored = await reg.store.get(session.id);
      assert.is(stored!.state, 'ACTIVE', 'nothing stored');
      assert.equal((await reg.update(session.id, { metadata: { a: null, c: '3' } })).metadata, { b: '2', c: '3' });
    } finally {
      await done();
    }
  });

  s('kick ends a session with event kicked; presence follows bound sessions', async () => {
    const { reg, clock, done } = await make(kind);
    try {
      const a = await reg.create({ userId: 'alice', connectionId: 'c-a' });
      await reg.create({ userId: 'bob', connectionId: 'c-b' });
      await reg.create({ userId: 'carol' });
      assert.ok(await reg.isOnline('alice'));
      assert.not.ok(await reg.isOnline('carol'), 'no connection: not online');
      assert.is(await reg.onlineCount(), 2);
      assert.equal((await reg.onlineUsers({ limit: 1 })).users.length, 1);
      const kicked = new Promise<SessionEndEvent>((resolve) => reg.once('kicked', resolve));
      assert.ok(await reg.kick(a.session.id, 'banned'));
      const ev = await kicked;
      assert.is(ev.reason, 'banned');
      assert.is(ev.connectionId, 'c-a');
      assert.not.ok(await reg.kick(a.session.id), 'already gone');
      assert.not.ok(await reg.isOnline('alice'));
      assert.is((await reg.stats()).counters.kicked, 1);
      clock.advance(TTL + 200);
      await reg.audit();
      assert.is(await reg.onlineCount(), 0, 'offline at expiry');
      await rejects(reg.isOnline(5 as unknown as string), ErrorCode.INVALID_VALUE, 'a user id that is not a string');
    } finally {
      await done();
    }
  });

  s('a session created without a connection accepts heartbeats, lives by its TTL, and is attached by resume', async () => {
    const { reg, clock, done } = await make(kind, { resumeWindowMs: 1_000 });
    try {
      const { session, token } = await reg.create({ userId: 'http' });
      // Well past the resume window: a session that was never bound has none.
      clock.advance(5_000);
      await reg.audit();
      assert.is(await reg.heartbeat(session.id), TTL, 'a heartbeat extends it');
      // Written behind (file store) at the next audit tick; the clock jumps further than a tick here.
      await reg.flush();
      clock.advance(8_000);
      await reg.audit();
      assert.ok((await reg.get(session.id)) !== null, 'alive past its first TTL thanks to the heartbeat');
      const resumed = await reg.resume(token, 'c-later', '10.0.0.1', 4242);
      assert.is(resumed.session.connectionId, 'c-later');
      assert.is(resumed.previousConnectionId, null);
      assert.is((await reg.store.get(session.id))!.remotePort, 4242, 'the port stored beside the address');
      assert.ok(await reg.isOnline('http'), 'online once attached');
      await reg.detach('c-later');
      await rejects(reg.heartbeat(session.id), ErrorCode.SESSION_NOT_FOUND, 'detached: waits for a resume');
      const other = await reg.create({ userId: 'idle' });
      clock.advance(TTL);
      await reg.audit();
      assert.is(await reg.get(other.session.id), null, 'without heartbeats it expires at its TTL');
      await rejects(reg.create({ userId: 'x', connectionId: 'c', remoteAddress: 'a', remotePort: 70_000 }), ErrorCode.INVALID_VALUE, 'a port out of range');
    } finally {
      await done();
    }
  });

  s.run();
}
