import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../../lib/core/clock.js';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { MemoryStore } from '../../../lib/store/memory-store.js';
import type { SessionEventName, SessionEvents, SessionRegistryEvents, SessionRegistryOptions } from '../../../lib/session/session-registry.js';
import { SessionRegistry, canTransition } from '../../../lib/session/session-registry.js';
import type { OnlinePage, SessionPatch, SessionRecord, SessionStore, WriteCondition } from '../../../lib/store/contract.js';
import { TOKEN_LENGTH, createToken, tokenSessionId } from '../../../lib/session/token.js';
import { until } from '../../helpers/net.js';
import { watchProcessFaults } from '../../helpers/process-faults.js';

const TTL = 60_000;
const WINDOW = 10_000;
const GRAN = 1_000;

/**
 * A store reached only through the SessionStore interface (as a remote store
 * is): the registry cannot update it in place, so heartbeats are written
 * behind. It delegates to a real MemoryStore and counts writes.
 */
class InterfaceOnlyStore implements SessionStore {
  readonly kind = 'interface-only';
  touches = 0;
  sets = 0;
  updates = 0;
  constructor(readonly inner: MemoryStore) {}
  update(id: string, p: SessionPatch, c?: WriteCondition) { this.updates++; return this.inner.update(id, p, c); }
  isOnline(u: string) { return this.inner.isOnline(u); }
  onlineCount() { return this.inner.onlineCount(); }
  onlineUsers(p?: OnlinePage) { return this.inner.onlineUsers(p); }
  create(r: SessionRecord, o?: { maxPerUser?: number }) { return this.inner.create(r, o); }
  get(id: string) { return this.inner.get(id); }
  set(r: SessionRecord, c?: WriteCondition) { this.sets++; return this.inner.set(r, c); }
  touch(id: string, e: number, l: number, c?: WriteCondition) { this.touches++; return this.inner.touch(id, e, l, c); }
  delete(id: string, c?: WriteCondition) { return this.inner.delete(id, c); }
  getByTokenHash(h: string) { return this.inner.getByTokenHash(h); }
  getByConnection(c: string) { return this.inner.getByConnection(c); }
  getByUser(u: string) { return this.inner.getByUser(u); }
  list(f?: Parameters<SessionStore['list']>[0], p?: Parameters<SessionStore['list']>[1]) { return this.inner.list(f, p); }
  count(f?: Parameters<SessionStore['count']>[0]) { return this.inner.count(f); }
  clear() { return this.inner.clear(); }
  close() { return this.inner.close(); }
}

function make(options: SessionRegistryOptions = {}): { reg: SessionRegistry; clock: ManualClock } {
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock();
  const reg = new SessionRegistry({ clock, ttlMs: TTL, resumeWindowMs: WINDOW, granularityMs: GRAN, autoAudit: false, ...options });
  return { reg, clock };
}

/** Records every event, in order. */
function recorder(reg: SessionRegistry): { log: { name: SessionEventName; payload: SessionEvents[SessionEventName] }[]; of<E extends SessionEventName>(n: E): SessionEvents[E][] } {
  const log: { name: SessionEventName; payload: SessionEvents[SessionEventName] }[] = [];
  const names: SessionEventName[] = ['created', 'resumed', 'detached', 'expired', 'replaced', 'closed', 'deleted'];
  const listen = <E extends SessionEventName>(name: E): void => void reg.on(name, ((payload: SessionEvents[E]) => void log.push({ name, payload })) as SessionRegistryEvents[E]);
  for (const name of names) listen(name);
  return { log, of: <E extends SessionEventName>(n: E) => log.filter((e) => e.name === n).map((e) => e.payload as SessionEvents[E]) };
}

const flushEvents = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function rejects(p: Promise<unknown>, code: string, what = code): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: ${String(err)}`);
    assert.is((err as { code: string }).code, code, what);
    return err as Error;
  }
  assert.unreachable(`${what}: expected rejection`);
  throw new Error('unreachable');
}

// ── Basics ──────────────────────────────────────────────────────────────────

const basics = suite('registry basics');

basics('options are validated with NETLOOP_INVALID_OPTION', () => {
  const bad: SessionRegistryOptions[] = [
    { ttlMs: 0 },
    { ttlMs: 1.5 },
    { resumeWindowMs: -1 },
    { granularityMs: 20_000 }, // more than ttl / 4
    { policy: 'sometimes' as never },
    { maxPerUser: 0 },
    { maxSessions: 0 },
    { wheelSlots: 100 },
    { isConnectionAlive: 5 as never },
  ];
  for (const o of bad) {
    try {
      new SessionRegistry({ clock: new ManualClock(), ttlMs: TTL, autoAudit: false, ...o });
      assert.unreachable(JSON.stringify(o));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), `${JSON.stringify(o)}: ${String(err)}`);
    }
  }
  const reg = new SessionRegistry({ autoAudit: false });
  assert.is(reg.options.ttlMs, 300_000);
  assert.is(reg.options.resumeWindowMs, 30_000);
  assert.is(reg.options.granularityMs, 1_000);
  assert.is(reg.options.wheelSlots, 512);
  assert.is(reg.options.policy, 'multiple');
  assert.is(reg.options.maxPerUser, 16);
  return reg.close();
});

basics('create returns the session, its token once, and a handle; lookups find it', async () => {
  const { reg, clock } = make();
  const ev = recorder(reg);
  const { session, token, handle } = await reg.create({ userId: 'alice', connectionId: 'c1', remoteAddress: '10.0.0.1', metadata: { room: 'a' } });
  assert.match(session.id, /^[0-9a-f-]{36}$/);
  assert.is(token.length, TOKEN_LENGTH);
  assert.is(tokenSessionId(token), session.id, 'the token names its session');
  assert.is((session as unknown as Record<string, unknown>)['tokenHash'], undefined, 'no token hash in a session');
  assert.is(session.state, 'ACTIVE');
  assert.is(session.expiresAt, clock.wallNow() + TTL);
  assert.is(handle.id, session.id);
  assert.equal(await reg.get(session.id), session);
  assert.equal(await reg.getByToken(token), session);
  assert.equal(await reg.getByConnection('c1'), session);
  assert.equal(await reg.getByUser('alice'), [session]);
  assert.is(await reg.getByToken('x'.repeat(43)), null);
  assert.is(await reg.getByToken('short'), null);
  // Another session's id with this token's secret, and this id with a fresh secret, are both refused.
  const other = await reg.create({ userId: 'bob' });
  assert.is(await reg.getByToken(`${other.session.id}${token.slice(36)}`), null);
  assert.is(await reg.getByToken(createToken(session.id).token), null);
  assert.equal(await reg.getByToken(other.token), other.session);
  assert.is(await reg.get('nope'), null);
  assert.is(await reg.getByConnection('c-none'), null);
  assert.is(reg.handle(session.id), handle);
  assert.is(reg.handleByConnection('c1'), handle);
  await flushEvents();
  assert.is(ev.of('created').length, 2);
  assert.not.match(JSON.stringify(ev.log), token);
  await reg.close();
});

basics('events are delivered after the call, never inside it', async () => {
  const { reg } = make();
  let inside = true;
  let seen = false;
  reg.on('created', () => {
    seen = true;
    assert.not.ok(inside, 'listener ran inside create()');
  });
  const p = reg.create({ userId: 'u' });
  inside = false;
  await p;
  await flushEvents();
  assert.ok(seen);
  const unreachable = (): void => assert.unreachable('unsubscribed');
  assert.is(reg.on('deleted', unreachable), reg, 'on() returns the registry');
  reg.off('deleted', unreachable);
  const { session } = await reg.create({});
  await reg.delete(session.id);
  await flushEvents();
  await reg.close();
});

basics('input validation: ids, initial state, metadata limits checked before storing', async () => {
  const { reg } = make({ maxMetadataKeys: 2, maxMetadataKeyLength: 4, maxMetadataValueLength: 5, maxIdLength: 8 });
  await rejects(reg.create({ userId: '' }), ErrorCode.INVALID_VALUE, 'empty user');
  await rejects(reg.create({ userId: 'x'.repeat(9) }), ErrorCode.INVALID_VALUE, 'long user');
  await rejects(reg.create({ state: 'IDLE' as never }), ErrorCode.INVALID_VALUE, 'initial IDLE');
  await rejects(reg.create({ metadata: { a: '1', b: '2', c: '3' } }), ErrorCode.INVALID_VALUE, 'too many keys');
  await rejects(reg.create({ metadata: { abcde: '1' } }), ErrorCode.INVALID_VALUE, 'long key');
  await rejects(reg.create({ metadata: { a: '123456' } }), ErrorCode.INVALID_VALUE, 'long value');
  await rejects(reg.create({ metadata: { a: 5 as never } }), ErrorCode.INVALID_VALUE, 'non-string');
  await rejects(reg.create({ metadata: JSON.parse('{"__proto__":"x"}') as Record<string, string> }), ErrorCode.INVALID_VALUE, '__proto__');
  assert.is((await reg.stats()).total, 0, 'nothing stored');
  const { session } = await reg.create({ connectionId: 'c1', state: 'CONNECTING' });
  assert.is(session.state, 'CONNECTING');
  await rejects(reg.create({ connectionId: 'c1' }), ErrorCode.ALREADY_BOUND, 'connection already bound');
  await reg.close();
});

basics('list with filter and paging reports the total', async () => {
  const { reg, clock } = make();
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    ids.push((await reg.create({ userId: i % 3 === 0 ? 'bob' : 'alice' })).session.id);
    clock.advance(1);
  }
  const page = await reg.list({}, { offset: 5, limit: 4 });
  assert.is(page.total, 12);
  assert.equal(page.sessions.map((s) => s.id), ids.slice(5, 9));
  const bob = await reg.list({ userId: 'bob' });
  assert.is(bob.total, 4);
  await reg.updateState(ids[1]!, 'IDLE');
  const idle = await reg.list({ state: 'IDLE' });
  assert.equal(idle.sessions.map((s) => s.id), [ids[1]]);
  await reg.close();
});

// ── Heartbeats and expiry ──────────────────────────────────────────────────

basics("listeners are called guarded: a throw or a rejection stops no other listener and goes to 'error' (NETLOOP_HANDLER_ERROR with the session and connection); without an 'error' listener it is a warning, never an uncaught exception", async () => {
  const faults = watchProcessFaults();
  const { reg } = make();
  try {
    const seen: string[] = [];
    reg.on('created', () => {
      throw new Error('created listener failed');
    });
    reg.on('created', (p) => void seen.push(`created ${String(p.session.userId)}`));
    reg.on('deleted', async () => {
      await Promise.resolve();
      throw new Error('deleted listener failed');
    });
    reg.on('deleted', (p) => void seen.push(`deleted ${p.reason}`));
    const errors: SessionEvents['error'][] = [];
    const onError = (p: SessionEvents['error']): void => void errors.push(p);
    reg.on('error', onError);
    const { session } = await reg.create({ userId: 'u', connectionId: 'c9' });
    await reg.delete(session.id, 'bye');
    await until(() => errors.length === 2, "both faults on 'error'");
    assert.equal(seen, ['created u', 'deleted bye'], 'the other listeners ran');
    const [created, deleted] = errors as [SessionEvents['error'], SessionEvents['error']];
    assert.is(created.operation, 'listener');
    assert.is(created.event, 'created');
    assert.ok(isNetloopError(created.error, ErrorCode.HANDLER_ERROR));
    assert.is((created.error.cause as Error).message, 'created listener failed');
    assert.equal({ ...created.error.details }, { event: 'created', sessionId: session.id, connectionId: 'c9' });
    assert.is(deleted.event, 'deleted');
    assert.is((deleted.error.cause as Error).message, 'deleted listener failed');
    // Without an 'error' listener: a process warning with the code.
    reg.off('error', onError);
    await reg.create({ userId: 'v' });
    await faults.warning(ErrorCode.HANDLER_ERROR, /created listener failed/);
    // An 'error' listener that fails is reported the same way.
    reg.on('error', () => {
      throw new Error('error listener failed');
    });
    await reg.create({ userId: 'w' });
    await faults.warning(ErrorCode.HANDLER_ERROR, /error listener failed/);
    faults.assertClean();
  } finally {
    faults.stop();
    await reg.close();
  }
});

const expiry = suite('registry heartbeats and expiry');

expiry('heartbeat extends by the TTL and returns the time left; audit expires at the deadline', async () => {
  const { reg, clock } = make();
  const ev = recorder(reg);
  const { session, handle } = await reg.create({ userId: 'u', connectionId: 'c1' });
  clock.advance(TTL - 1);
  assert.is(await reg.heartbeat(session.id), TTL);
  assert.is(handle.timeLeft(), TTL);
  clock.advance(TTL - 1);
  assert.is(await reg.audit(), 0);
  assert.ok(handle.alive);
  assert.is(handle.heartbeat(), TTL, 'handle fast path');
  assert.is(reg.touch(session.id), TTL, 'by-id fast path');
  const info = await reg.get(session.id);
  assert.is(info!.stats.heartbeats, 3);
  assert.is(info!.expiresAt, clock.wallNow() + TTL);
  clock.advance(TTL);
  assert.is(handle.heartbeat(), -1, 'a heartbeat after the deadline never revives');
  await rejects(reg.heartbeat(session.id), ErrorCode.SESSION_EXPIRED);
  assert.is(await reg.get(session.id), null, 'past its deadline: not returned even before the audit');
  clock.advance(GRAN); // the wheel reports it at the next tick boundary, within one granularity
  assert.is(await reg.audit(), 1);
  await flushEvents();
  const exp = ev.of('expired');
  assert.is(exp.length, 1);
  assert.is(exp[0]!.connectionId, 'c1', 'the binding needs the connection to send the notice');
  assert.is(exp[0]!.reason, 'ttl');
  assert.is(exp[0]!.session.state, 'CLOSED');
  assert.not.ok(handle.alive);
  assert.is(handle.state, 'CLOSED');
  assert.is(handle.connectionId, null);
  assert.is(handle.timeLeft(), 0);
  await rejects(reg.heartbeat(session.id), ErrorCode.SESSION_NOT_FOUND);
  assert.is(reg.touch(session.id), -1);
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  assert.is((await reg.stats()).counters.expired, 1);
  await reg.close();
});

expiry('expiry happens within one granularity of the deadline, never before', async () => {
  const { reg, clock } = make();
  const made: { id: string; deadline: number }[] = [];
  for (let i = 0; i < 40; i++) {
    const { handle } = await reg.create({});
    made.push({ id: handle.id, deadline: handle.deadline + reg.epoch });
    clock.advance(137);
  }
  const expiredAt = new Map<string, number>();
  reg.on('expired', (e) => expiredAt.set(e.session.id, clock.now()));
  for (let step = 0; step < 700; step++) {
    clock.advance(100);
    await reg.audit();
    await flushEvents();
  }
  for (const m of made) {
    const at = expiredAt.get(m.id);
    assert.ok(at !== undefined, 'expired');
    assert.ok(at >= m.deadline, `never early (${at} < ${m.deadline})`);
    assert.ok(at - m.deadline < GRAN + 100, `within granularity (+ audit step): ${at - m.deadline}`);
  }
  await reg.close();
});

expiry('concurrent audits share one run; the audit yields between slices', async () => {
  const { reg, clock } = make({ auditBudgetMs: 1 });
  for (let i = 0; i < 3_000; i++) await reg.create({ connectionId: `c${i}` });
  clock.advance(TTL + GRAN);
  const a = reg.audit();
  const b = reg.audit();
  assert.is(a, b);
  assert.is(await a, 3_000);
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  await reg.close();
});

expiry('an expiry ends the session at once; its removal from the memory store follows in loop slices', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const { reg } = make({ clock, store, auditBudgetMs: 1, resumeWindowMs: 0, maxPerUser: 1_000 });
  const expired: string[] = [];
  reg.on('expired', (p) => expired.push(p.session.id));
  const made = [];
  for (let i = 0; i < 5_000; i++) made.push(await reg.create({ userId: `u${i % 10}`, connectionId: `c${i}` }));
  clock.advance(TTL + GRAN);
  assert.is(await reg.audit(), 5_000);
  // Over for every read before any sweep ran.
  assert.ok(reg.cleanupPending > 0, 'removal is deferred');
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  assert.equal(store.ownedSizes(), { entries: 0, bound: 0 });
  const { handle, session, token } = made[17]!;
  assert.is(handle.alive, false);
  assert.is(handle.state, 'CLOSED');
  assert.is(handle.connectionId, null);
  assert.is(reg.handle(session.id), undefined);
  assert.is(reg.handleByConnection('c17'), undefined);
  assert.is(reg.touch(session.id), -1);
  assert.is(await reg.get(session.id), null);
  assert.is(await reg.getByToken(token), null);
  assert.is(await reg.getByConnection('c17'), null);
  assert.equal(await reg.getByUser('u7'), []);
  assert.is(await store.getByConnection('c17'), null);
  // A new session may take a connection at once.
  const again = await reg.create({ userId: 'u7', connectionId: 'c17' });
  assert.is(reg.handleByConnection('c17'), again.handle);
  // The sweep runs in slices from the loop; wait for it turn by turn (bounded).
  for (let turn = 0; turn < 10_000 && reg.cleanupPending > 0; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  assert.is(reg.cleanupPending, 0, 'the sweep finished on its own');
  assert.is(reg.handleByConnection('c17'), again.handle, 'the sweep left the new holder');
  assert.equal(store.indexSizes(), { records: 1, tokens: 1, connections: 1, users: 1, heap: 0 });
  await reg.delete(again.session.id);
  // flush() completes a pending sweep at once.
  for (let i = 0; i < 500; i++) await reg.create({ connectionId: `d${i}` });
  clock.advance(TTL + GRAN);
  assert.is(await reg.audit(), 500);
  await reg.flush();
  assert.is(reg.cleanupPending, 0);
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.is(expired.length, 5_500, 'one event per expiry');
  assert.is(new Set(expired).size, 5_500);
  await reg.close();
  await store.close();
});

expiry('autoAudit runs on its own timer and close() stops it', async () => {
  const clock = new ManualClock();
  const reg = new SessionRegistry({ clock, ttlMs: 40, granularityMs: 10, resumeWindowMs: 0 });
  const { session } = await reg.create({});
  clock.advance(100);
  // The registry's timer is unref'd; a bounded, ref'd guard keeps the process up and fails clearly.
  let guard: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    new Promise<string>((resolve) => reg.on('expired', (e) => resolve(e.session.id))),
    new Promise<string>((resolve) => {
      guard = setTimeout(() => resolve('timed out waiting for the automatic audit'), 5_000);
    }),
  ]);
  clearTimeout(guard);
  assert.is(ended, session.id);
  await reg.close();
  await reg.close();
});

// ── States, metadata, stats, delete ────────────────────────────────────────

const updates = suite('registry updates');

updates('state transitions are enforced; CLOSED ends the session', async () => {
  assert.ok(canTransition('CONNECTING', 'ACTIVE'));
  assert.not.ok(canTransition('CONNECTING', 'IDLE'));
  assert.not.ok(canTransition('CLOSED', 'CLOSED'));
  assert.ok(canTransition('IDLE', 'IDLE'));
  const { reg } = make();
  const ev = recorder(reg);
  const { session } = await reg.create({ state: 'CONNECTING', connectionId: 'c' });
  const err = await rejects(reg.updateState(session.id, 'IDLE'), ErrorCode.INVALID_TRANSITION);
  assert.equal((err as unknown as { details: unknown }).details, { id: session.id, from: 'CONNECTING', to: 'IDLE' });
  assert.is((await reg.updateState(session.id, 'ACTIVE')).state, 'ACTIVE');
  assert.is((await reg.updateState(session.id, 'ACTIVE')).state, 'ACTIVE', 'same state is a no-op');
  assert.is((await reg.updateState(session.id, 'IDLE')).state, 'IDLE');
  assert.is((await reg.get(session.id))!.state, 'IDLE');
  assert.is((await reg.updateState(session.id, 'ACTIVE')).state, 'ACTIVE');
  assert.is((await reg.updateState(session.id, 'CLOSED')).state, 'CLOSED');
  await rejects(reg.updateState(session.id, 'ACTIVE'), ErrorCode.SESSION_NOT_FOUND);
  await flushEvents();
  assert.is(ev.of('closed')[0]!.reason, 'state-closed');
  assert.is(ev.of('closed')[0]!.connectionId, 'c');
  await reg.close();
});

updates('metadata merges, null removes, limits hold on the merged result', async () => {
  const { reg } = make({ maxMetadataKeys: 3 });
  const { session } = await reg.create({ metadata: { a: '1', b: '2' } });
  let s = await reg.updateMetadata(session.id, { b: null, c: '3' });
  assert.equal(s.metadata, { a: '1', c: '3' });
  s = await reg.updateMetadata(session.id, { d: '4' });
  assert.equal(s.metadata, { a: '1', c: '3', d: '4' });
  await rejects(reg.updateMetadata(session.id, { e: '5' }), ErrorCode.INVALID_VALUE);
  assert.equal((await reg.get(session.id))!.metadata, { a: '1', c: '3', d: '4' }, 'unchanged after a refused merge');
  await rejects(reg.updateMetadata('nope', { a: '1' }), ErrorCode.SESSION_NOT_FOUND);
  await reg.close();
});

updates('stats: updateStats and the handle counters', async () => {
  const { reg } = make();
  const { session, handle } = await reg.create({ connectionId: 'c' });
  handle.recordIn(100, 2);
  handle.recordOut(50);
  const s = await reg.updateStats(session.id, { bytesIn: 10, messagesOut: 3 });
  assert.equal(s.stats, { bytesIn: 110, bytesOut: 50, messagesIn: 2, messagesOut: 4, heartbeats: 0 });
  await rejects(reg.updateStats(session.id, { bytesIn: -1 }), ErrorCode.INVALID_OPTION);
  await rejects(reg.updateStats(session.id, { nonsense: 1 } as never), ErrorCode.INVALID_VALUE);
  await reg.close();
});

updates('delete with a reason ends once; statistics count it', async () => {
  const { reg } = make();
  const ev = recorder(reg);
  const a = await reg.create({ userId: 'u', connectionId: 'c1' });
  await reg.create({ userId: 'u', state: 'CONNECTING' });
  assert.ok(await reg.delete(a.session.id, 'admin kick'));
  assert.not.ok(await reg.delete(a.session.id));
  assert.not.ok(a.handle.alive);
  await flushEvents();
  assert.equal(ev.of('deleted').map((e) => [e.reason, e.connectionId]), [['admin kick', 'c1']]);
  const st = await reg.stats();
  assert.is(st.total, 1);
  assert.equal(st.byState, { CONNECTING: 1, ACTIVE: 0, IDLE: 0, CLOSED: 0 });
  assert.is(st.counters.created, 2);
  assert.is(st.counters.deleted, 1);
  assert.is(st.local, 1);
  assert.is(st.timers, 1);
  await reg.close();
  await rejects(reg.get(a.session.id), ErrorCode.REGISTRY_CLOSED);
  await rejects(reg.create({}), ErrorCode.REGISTRY_CLOSED);
  assert.is(await reg.audit(), 0);
});

updates('maxSessions is a hard limit (NETLOOP_SESSION_LIMIT)', async () => {
  const { reg } = make({ maxSessions: 2 });
  await reg.create({});
  await reg.create({});
  await rejects(reg.create({}), ErrorCode.SESSION_LIMIT);
  assert.is((await reg.stats()).counters.refused, 1);
  await reg.close();
});

// ── Policies ───────────────────────────────────────────────────────────────

const policies = suite('registry login policies');

policies("'multiple' allows up to maxPerUser", async () => {
  const { reg } = make({ policy: 'multiple', maxPerUser: 2 });
  await reg.create({ userId: 'u' });
  await reg.create({ userId: 'u' });
  await rejects(reg.create({ userId: 'u' }), ErrorCode.LOGIN_REFUSED);
  await reg.create({ userId: 'v' });
  await reg.create({});
  await reg.create({});
  assert.is((await reg.getByUser('u')).length, 2);
  await reg.close();
});

policies("'replace' ends the old session with a replaced event naming its connection", async () => {
  const { reg } = make({ policy: 'replace' });
  const ev = recorder(reg);
  const old = await reg.create({ userId: 'u', connectionId: 'c-old' });
  const neu = await reg.create({ userId: 'u', connectionId: 'c-new' });
  await flushEvents();
  const rep = ev.of('replaced');
  assert.is(rep.length, 1);
  assert.is(rep[0]!.session.id, old.session.id);
  assert.is(rep[0]!.connectionId, 'c-old');
  assert.is(rep[0]!.by, neu.session.id);
  assert.not.ok(old.handle.alive);
  assert.equal((await reg.getByUser('u')).map((s) => s.id), [neu.session.id]);
  await rejects(reg.resume(old.token, 'c-x'), ErrorCode.BAD_TOKEN, 'a replaced session cannot be resumed');
  assert.is(await reg.detach('c-old'), null, 'the close that follows the notice is a no-op');
  assert.equal(reg.localSizes(), { handles: 1, connections: 1, timers: 1, dirty: 0 });
  await reg.close();
});

policies("'refuse' refuses while the old connection is alive, never because of a dead one", async () => {
  const alive = new Set<string>();
  const { reg } = make({ policy: 'refuse', isConnectionAlive: (id) => alive.has(id) });
  const ev = recorder(reg);
  alive.add('c1');
  const first = await reg.create({ userId: 'u', connectionId: 'c1' });
  await rejects(reg.create({ userId: 'u', connectionId: 'c2' }), ErrorCode.LOGIN_REFUSED);
  // The connection dies without any close being reported (half-open): the hook says so.
  alive.delete('c1');
  const second = await reg.create({ userId: 'u', connectionId: 'c2' });
  await flushEvents();
  assert.not.ok(first.handle.alive);
  assert.equal(ev.of('closed').map((e) => [e.session.id, e.reason]), [[first.session.id, 'dead-connection']]);
  // A detached session (connection closed, waiting for resume) does not block a fresh login either.
  alive.add('c2');
  await reg.detach('c2');
  const third = await reg.create({ userId: 'u', connectionId: 'c3' });
  assert.not.ok(second.handle.alive);
  assert.ok(third.handle.alive);
  await reg.close();
});

policies("'refuse' without a hook: detach on close is enough; expiry frees the user too", async () => {
  const { reg, clock } = make({ policy: 'refuse', resumeWindowMs: 0 });
  await reg.create({ userId: 'u', connectionId: 'c1' });
  await rejects(reg.create({ userId: 'u', connectionId: 'c2' }), ErrorCode.LOGIN_REFUSED);
  await reg.detach('c1');
  const b = await reg.create({ userId: 'u', connectionId: 'c2' });
  clock.advance(TTL);
  await reg.create({ userId: 'u', connectionId: 'c3' }); // past the TTL: never counted, even before an audit
  assert.is(await reg.audit(), 1);
  assert.not.ok(b.handle.alive);
  await reg.close();
});

// ── Detach and resume ──────────────────────────────────────────────────────

const resume = suite('registry detach and resume');

resume('detach keeps the session for the window; resume with the token binds a new connection', async () => {
  const { reg, clock } = make();
  const ev = recorder(reg);
  const { session, token, handle } = await reg.create({ userId: 'u', connectionId: 'c1' });
  const d = await reg.detach('c1', 'peer-closed');
  assert.is(d!.state, 'IDLE');
  assert.is(d!.connectionId, null);
  assert.is(handle.heartbeat(), -1, 'a detached session takes no heartbeat');
  assert.is(await reg.getByConnection('c1'), null);
  assert.is(await reg.detach('c1'), null, 'idempotent');
  clock.advance(WINDOW - 1);
  const r = await reg.resume(token, 'c2', '10.1.1.1');
  assert.is(r.previousConnectionId, null);
  assert.is(r.handle, handle);
  assert.is(r.session.state, 'ACTIVE');
  assert.is(r.session.connectionId, 'c2');
  assert.is(r.session.remoteAddress, '10.1.1.1');
  assert.is(r.session.expiresAt, clock.wallNow() + TTL, 'fresh TTL');
  assert.equal(await reg.getByConnection('c2'), r.session);
  assert.is(handle.heartbeat(), TTL);
  await flushEvents();
  assert.equal(ev.of('detached').map((e) => [e.connectionId, e.reason]), [['c1', 'peer-closed']]);
  assert.is(ev.of('resumed')[0]!.session.id, session.id);
  assert.is((await reg.stats()).counters.resumed, 1);
  await reg.close();
});

resume('a wrong, malformed, expired or deleted token is refused with NETLOOP_BAD_TOKEN, never echoed', async () => {
  const { reg, clock } = make();
  const ev = recorder(reg);
  const a = await reg.create({ connectionId: 'c1' });
  await reg.detach('c1');
  const wrong = a.token.slice(0, 42) + (a.token.endsWith('A') ? 'B' : 'A');
  const err = await rejects(reg.resume(wrong, 'c2'), ErrorCode.BAD_TOKEN);
  assert.not.match(err.message + JSON.stringify((err as unknown as { details: unknown }).details), wrong);
  await rejects(reg.resume('nonsense', 'c2'), ErrorCode.BAD_TOKEN);
  clock.advance(WINDOW);
  await rejects(reg.resume(a.token, 'c2'), ErrorCode.BAD_TOKEN, 'window passed, before the audit');
  await reg.audit();
  await flushEvents();
  assert.is(ev.of('expired')[0]!.reason, 'resume-window');
  assert.is(ev.of('expired')[0]!.connectionId, null);
  await rejects(reg.resume(a.token, 'c2'), ErrorCode.BAD_TOKEN, 'expired');
  const b = await reg.create({ connectionId: 'c3' });
  await reg.delete(b.session.id);
  await rejects(reg.resume(b.token, 'c4'), ErrorCode.BAD_TOKEN, 'deleted');
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  await reg.close();
});

resume('the resume window never extends a session past its TTL', async () => {
  const { reg, clock } = make();
  const { handle, token } = await reg.create({ connectionId: 'c1' });
  clock.advance(TTL - 100);
  await reg.detach('c1');
  assert.is(handle.timeLeft(), 100);
  clock.advance(100);
  await rejects(reg.resume(token, 'c2'), ErrorCode.BAD_TOKEN);
  await reg.close();
});

resume('resume while still bound elsewhere moves the session and names the old connection', async () => {
  const { reg } = make();
  const a = await reg.create({ connectionId: 'c1' });
  await reg.create({ connectionId: 'c-other' });
  await rejects(reg.resume(a.token, 'c-other'), ErrorCode.ALREADY_BOUND, 'target connection bound to another session');
  const r = await reg.resume(a.token, 'c2');
  assert.is(r.previousConnectionId, 'c1');
  assert.is(await reg.getByConnection('c1'), null);
  assert.is(await reg.detach('c1'), null, 'closing the old connection does not touch the session');
  assert.ok(a.handle.alive);
  const again = await reg.resume(a.token, 'c2');
  assert.is(again.previousConnectionId, null, 'same connection: nothing to close');
  await reg.close();
});

resume('without a resume window, or while CONNECTING, a close ends the session', async () => {
  const { reg } = make({ resumeWindowMs: 0 });
  const ev = recorder(reg);
  const a = await reg.create({ connectionId: 'c1' });
  await reg.detach('c1', 'reset');
  assert.not.ok(a.handle.alive);
  await rejects(reg.resume(a.token, 'c2'), ErrorCode.BAD_TOKEN);
  const r2 = make();
  const b = await r2.reg.create({ connectionId: 'c1', state: 'CONNECTING' });
  await r2.reg.detach('c1');
  assert.not.ok(b.handle.alive);
  await flushEvents();
  assert.equal(ev.of('closed').map((e) => [e.reason, e.connectionId]), [['reset', 'c1']]);
  await reg.close();
  await r2.reg.close();
});

// ── Write-behind with a store reached through the interface only ───────────

const remote = suite('registry write-behind (interface-only store)');

remote('ping asks the store: resolves while it answers, its code when it does not, count() for a store without ping, NETLOOP_REGISTRY_CLOSED once closed', async () => {
  const clock = new ManualClock();
  const { reg } = make({ clock });
  await reg.ping();
  // A store written outside netloop, without ping(): the registry asks count() instead.
  const inner = new MemoryStore({ clock });
  const plain = new InterfaceOnlyStore(inner);
  const { reg: viaCount } = make({ clock, store: plain });
  let counted = 0;
  plain.count = (f) => {
    counted++;
    return inner.count(f);
  };
  await viaCount.ping();
  assert.is(counted, 1, 'count() stood in for ping()');
  // An uncoded failure of such a store is reported as NETLOOP_STORE_UNAVAILABLE, with the failure as cause.
  const boom = new Error('socket hang up');
  plain.count = () => Promise.reject(boom);
  const err = await rejects(viaCount.ping(), ErrorCode.STORE_UNAVAILABLE, 'uncoded failure');
  assert.is(err.cause, boom);
  // A coded failure keeps its code.
  await inner.close();
  plain.count = (f) => inner.count(f);
  await rejects(viaCount.ping(), ErrorCode.STORE_CLOSED, 'closed store');
  await viaCount.close();
  await reg.close();
  await rejects(reg.ping(), ErrorCode.REGISTRY_CLOSED, 'closed registry');
});

remote("an audit of the registry's own timer that fails (the store is down) goes to 'error' with operation 'audit'; without a listener it is a warning", async () => {
  const faults = watchProcessFaults();
  const clock = new ManualClock();
  const store = new InterfaceOnlyStore(new MemoryStore({ clock }));
  const reg = new SessionRegistry({ clock, store, ttlMs: 400, granularityMs: 5, autoAudit: true });
  try {
    const { handle } = await reg.create({ connectionId: 'c1' });
    const down = new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'redis is down');
    store.touch = () => Promise.reject(down);
    const errors: SessionEvents['error'][] = [];
    const onError = (p: SessionEvents['error']): void => void errors.push(p);
    reg.on('error', onError);
    handle.heartbeat();
    await until(() => errors.length > 0, "the audit's 'error'");
    assert.is(errors[0]!.operation, 'audit');
    assert.is(errors[0]!.error, down);
    reg.off('error', onError);
    handle.heartbeat();
    await faults.warning(ErrorCode.STORE_UNAVAILABLE, /redis is down/);
    faults.assertClean();
  } finally {
    faults.stop();
    await reg.close();
  }
});

remote('heartbeats are written behind on the audit tick; other changes at once', async () => {
  const clock = new ManualClock();
  const store = new InterfaceOnlyStore(new MemoryStore({ clock }));
  const { reg } = make({ clock, store });
  const ev = recorder(reg);
  const { session, handle, token } = await reg.create({ userId: 'u', connectionId: 'c1' });
  clock.advance(5_000);
  for (let i = 0; i < 10; i++) handle.heartbeat();
  handle.recordIn(7);
  assert.is(store.touches, 0, 'nothing written yet');
  assert.is((await store.get(session.id))!.expiresAt, session.expiresAt, 'store lags');
  assert.is((await reg.get(session.id))!.expiresAt, clock.wallNow() + TTL, 'the registry answers from its handle');
  assert.is(reg.localSizes().dirty, 1);
  await reg.audit();
  assert.is(reg.localSizes().dirty, 0);
  const stored = await store.get(session.id);
  assert.is(stored!.expiresAt, clock.wallNow() + TTL);
  assert.is(stored!.stats.heartbeats, 10);
  assert.is(stored!.stats.bytesIn, 7);
  assert.is(store.touches, 1, 'the expiry by a touch');
  assert.is(store.updates, 1, 'the counters by an update (state and metadata are not rewritten)');
  assert.is(store.sets, 0, 'no whole-record write behind');
  handle.heartbeat();
  await reg.flush();
  assert.is(store.touches, 2, 'a touch for an expiry-only change');
  assert.is(store.updates, 1, 'and no update');
  await reg.updateState(session.id, 'IDLE');
  assert.is((await store.get(session.id))!.state, 'IDLE');
  // The store loses the session (another process deleted it): the next flush ends it here.
  await store.inner.delete(session.id);
  handle.heartbeat();
  await reg.audit();
  await flushEvents();
  assert.not.ok(handle.alive);
  assert.is(ev.of('expired')[0]!.reason, 'store');
  await rejects(reg.resume(token, 'c9'), ErrorCode.BAD_TOKEN);
  await reg.close();
  await store.close();
});

remote('a session created elsewhere (store only) can be looked up, heartbeated, resumed, detached and deleted', async () => {
  const clock = new ManualClock();
  const shared = new MemoryStore({ clock });
  const a = make({ clock, store: new InterfaceOnlyStore(shared) });
  const b = make({ clock, store: new InterfaceOnlyStore(shared) });
  const made = await a.reg.create({ userId: 'u', connectionId: 'a-1' });
  assert.is((await b.reg.get(made.session.id))!.id, made.session.id);
  assert.is((await b.reg.getByToken(made.token))!.id, made.session.id);
  assert.is((await b.reg.getByConnection('a-1'))!.id, made.session.id);
  clock.advance(1_000);
  assert.is(await b.reg.heartbeat(made.session.id), TTL);
  await b.reg.updateMetadata(made.session.id, { k: 'v' });
  const moved = await b.reg.resume(made.token, 'b-1');
  assert.is(moved.previousConnectionId, 'a-1');
  assert.is((await b.reg.detach('b-1'))!.state, 'IDLE');
  assert.ok(await b.reg.delete(made.session.id));
  await rejects(b.reg.heartbeat(made.session.id), ErrorCode.SESSION_NOT_FOUND);
  await a.reg.close();
  await b.reg.close();
  await shared.close();
});

remote('local handles and the store stay in step through detach, resume (from detached and from bound), delete and expiry', async () => {
  const clock = new ManualClock();
  const inner = new MemoryStore({ clock });
  const { reg } = make({ clock, store: new InterfaceOnlyStore(inner) });
  const events = recorder(reg);
  const a = await reg.create({ userId: 'u', connectionId: 'c1' });
  const b = await reg.create({ userId: 'v', connectionId: 'c2' });
  const c = await reg.create({ userId: 'w', connectionId: 'c3' });
  // Detach: the connection leaves the local index and the store alike.
  await reg.detach('c1');
  assert.is(reg.handleByConnection('c1'), undefined);
  assert.is(await inner.getByConnection('c1'), null);
  assert.is((await inner.get(a.session.id))!.state, 'IDLE');
  // Resume a detached session on a new connection: the same handle, indexed under it.
  const ra = await reg.resume(a.token, 'c4');
  assert.is(ra.handle, a.handle);
  assert.is(ra.previousConnectionId, null);
  assert.is(reg.handleByConnection('c4'), a.handle);
  assert.is((await inner.getByConnection('c4'))!.id, a.session.id);
  // Resume a session still bound elsewhere: the old connection is named and unindexed.
  const rb = await reg.resume(b.token, 'c5');
  assert.is(rb.previousConnectionId, 'c2');
  assert.is(reg.handleByConnection('c2'), undefined);
  assert.is(reg.handleByConnection('c5'), b.handle);
  assert.is(await inner.getByConnection('c2'), null);
  assert.is((await inner.getByConnection('c5'))!.id, b.session.id);
  // Delete: gone locally and from the store.
  assert.ok(await reg.delete(c.session.id));
  assert.is(reg.handle(c.session.id), undefined);
  assert.is(reg.handleByConnection('c3'), undefined);
  assert.is(await inner.get(c.session.id), null);
  assert.equal(reg.localSizes(), { handles: 2, connections: 2, timers: 2, dirty: 0 });
  // Expiry: the audit ends both here and deletes them from the store before it resolves.
  clock.advance(TTL + GRAN);
  assert.is(await reg.audit(), 2);
  assert.is(await inner.get(a.session.id), null);
  assert.is(await inner.get(b.session.id), null);
  assert.is(reg.handleByConnection('c4'), undefined);
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  await flushEvents();
  assert.equal(events.of('expired').map((e) => e.connectionId).sort(), ['c4', 'c5']);
  assert.is(await inner.count(), 0);
  await reg.close();
  await inner.close();
});

remote('close() leaves a passed-in store with this process\'s sessions detached, never bound to dead connections', async () => {
  const clock = new ManualClock();
  const inner = new MemoryStore({ clock });
  const { reg } = make({ clock, store: new InterfaceOnlyStore(inner), policy: 'refuse' });
  const { session, handle } = await reg.create({ userId: 'u', connectionId: 'c1' });
  handle.heartbeat();
  await reg.close();
  const rec = await inner.get(session.id);
  assert.is(rec!.connectionId, null);
  assert.is(rec!.state, 'IDLE');
  assert.is(rec!.expiresAt, clock.wallNow() + WINDOW);
  assert.is(inner.closed, false, 'the owner closes its store');
  const next = make({ clock, store: new InterfaceOnlyStore(inner), policy: 'refuse' });
  await next.reg.create({ userId: 'u', connectionId: 'c2' }); // not locked out by the old process
  await next.reg.close();
  await inner.close();
});

// ── Leaks ──────────────────────────────────────────────────────────────────

const leaks = suite('registry leaks');

leaks('10,000 create/close cycles over every ending path leave no session, timer or index entry', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const { reg } = make({ clock, store, policy: 'replace' });
  for (let i = 0; i < 10_000; i++) {
    const conn = `c${i}`;
    const { session, token } = await reg.create({ userId: `u${i % 7}`, connectionId: conn, metadata: { i: String(i) } });
    switch (i % 5) {
      case 0:
        await reg.detach(conn);
        break;
      case 1:
        await reg.delete(session.id);
        break;
      case 2:
        await reg.updateState(session.id, 'CLOSED');
        break;
      case 3: {
        await reg.detach(conn);
        await reg.resume(token, `${conn}-r`);
        await reg.detach(`${conn}-r`);
        break;
      }
      default:
        break; // left to expire, or replaced by the same user's next login
    }
    if (i % 1_000 === 999) {
      clock.advance(TTL + GRAN);
      await reg.audit();
    }
  }
  clock.advance(TTL + GRAN);
  await reg.audit();
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  assert.is(await store.count(), 0);
  assert.equal(store.indexSizes(), { records: 0, tokens: 0, connections: 0, users: 0, heap: 0 });
  const st = await reg.stats();
  assert.is(st.counters.created, 10_000);
  await reg.close();
  assert.ok(store.closed === false);
  await store.close();
});

basics.run();
expiry.run();
updates.run();
policies.run();
const inPlace = suite('registry in place (memory store)');

inPlace('the handle is the store record: heartbeats are visible to the store at once, counts settle due sessions', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const { reg } = make({ clock, store });
  const a = await reg.create({ userId: 'u', connectionId: 'c1' });
  const b = await reg.create({ userId: 'v', connectionId: 'c2' });
  assert.is(store.ownedById(a.session.id), a.handle as unknown);
  clock.advance(TTL / 2);
  assert.is(a.handle.heartbeat(clock.now()), TTL);
  const stored = await store.get(a.session.id);
  assert.is(stored!.expiresAt, clock.wallNow() + TTL, 'no write-behind: the store reads the handle');
  assert.is(stored!.stats.heartbeats, 1);
  const log = recorder(reg);
  clock.advance(TTL / 2 + GRAN);
  // b is due but no audit ran: counting expires it first, so the total is exact.
  const st = await reg.stats();
  assert.is(st.total, 1);
  assert.is(st.counters.expired, 1);
  assert.is(b.handle.alive, false);
  await flushEvents();
  assert.equal(log.of('expired').map((e) => [e.session.id, e.connectionId, e.reason]), [[b.session.id, 'c2', 'ttl']]);
  // A delete through the store's public interface ends the local session too (reason 'store').
  assert.ok(await store.delete(a.session.id));
  assert.is(a.handle.alive, false);
  await flushEvents();
  assert.equal(log.of('expired').map((e) => e.reason), ['ttl', 'store']);
  assert.equal(reg.localSizes(), { handles: 0, connections: 0, timers: 0, dirty: 0 });
  await reg.close();
  await store.close();
});

inPlace("the registry's own store keeps no token index; creation times survive the handle's compact form", async () => {
  const clock = new ManualClock();
  const { reg } = make({ clock });
  const store = reg.store as MemoryStore;
  const a = await reg.create({ userId: 'u', connectionId: 'c1' });
  assert.is(store.indexSizes().tokens, 0, 'tokens are resolved by the id they name');
  try {
    await store.getByTokenHash((await store.get(a.session.id))!.tokenHash);
    assert.unreachable('a store without a token index answered a token-hash lookup');
  } catch (err) {
    assert.ok(isNetloopError(err));
    assert.is(err.code, ErrorCode.INVALID_OPTION);
  }
  // The creation time is the id's millisecond (UUIDv7) at creation.
  assert.is(a.session.createdAt, Math.floor(clock.wallNow()));
  assert.is(a.handle.createdAt, a.session.createdAt);
  // Any creation time a record brings is kept exactly: integers far from the id's stamp, fractions, negatives.
  for (const createdAt of [42, a.session.createdAt - 86_400_000 * 400, 1234.5, -7, Number.MAX_SAFE_INTEGER]) {
    const rec = (await store.get(a.session.id))!;
    assert.ok(await store.set({ ...rec, createdAt }));
    assert.is(a.handle.createdAt, createdAt);
    assert.is((await reg.get(a.session.id))!.createdAt, createdAt);
  }
  assert.equal(await reg.getByToken(a.token), await reg.get(a.session.id));
  await reg.close();
});

inPlace('closing a registry gives its sessions back to a shared memory store, detached', async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const { reg } = make({ clock, store });
  const a = await reg.create({ userId: 'u', connectionId: 'c1' });
  await reg.create({ userId: 'u' });
  await reg.close();
  assert.is(a.handle.alive, false);
  assert.equal(store.ownedSizes(), { entries: 0, bound: 0 });
  const kept = await store.get(a.session.id);
  assert.is(kept!.connectionId, null);
  assert.is(kept!.state, 'IDLE');
  assert.is(await store.count(), 2);
  const { reg: next } = make({ clock, store });
  const back = await next.resume(a.token, 'c9');
  assert.is(back.session.id, a.session.id);
  assert.is(store.ownedById(a.session.id), back.handle as unknown, 'adopted by the new registry');
  await next.close();
  await store.close();
});

resume.run();
remote.run();
leaks.run();
inPlace.run();
