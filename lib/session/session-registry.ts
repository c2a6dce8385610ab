/**
 * The session registry: lifecycle, login policy, resume, heartbeats and
 * expiry of sessions, on top of any {@link SessionStore}. It knows nothing of
 * sockets: a server binding tells it about connections (by string id) and
 * turns its events into notices and closes.
 *
 * ```
 *   SessionRegistry (this file)    the lifecycle state machine: create (login policy),
 *     │                            resume, detach, updates, end; counters
 *     ├─ SessionEventSource        typed, deferred, guarded events   (events.ts)
 *     ├─ Expiry                    the timing wheel and the audit     (expiry.ts)
 *     ├─ SessionStorage            ONE interface, two strategies      (storage.ts)
 *     │    ├─ InPlaceStorage       the MemoryStore: the handle IS the record (in-place-storage.ts)
 *     │    └─ WriteBehindStorage   any other store: a local copy, written behind (write-behind-storage.ts)
 *     ├─ SessionHandle             the per-session fast path         (handle.ts)
 *     ├─ SessionFeed               a shared store's changes, reconciliation (feed.ts)
 *     └─ checks, LoginChains       options and inputs (checks.ts); 'replace' logins in order (login-chain.ts)
 *   public types: types.ts; the state machine of a session's states: transitions.ts
 * ```
 *
 * **Local sessions and handles.** Every session created or resumed through
 * this registry gets a {@link SessionHandle}, kept until the session ends. The
 * handle is the synchronous fast path: `handle.heartbeat(now)` rewrites the
 * deadline and last-activity numbers of that one object and nothing else (no
 * clock read when the caller passes `now`, no promise, no store call, no
 * allocation). How a handle relates to the store is the storage strategy's
 * business (see `storage.ts`).
 *
 * **Expiry.** Each local session is filed in one hashed timing wheel on the
 * monotonic clock; {@link SessionRegistry.audit} advances it, so an audit
 * costs what expires (plus lazy re-filing), never a scan. The due sessions
 * are expired in slices of at most `auditBudgetMs`; what does not fit is
 * carried over to the next slice, after a turn of the event loop. Sessions
 * that live only in a shared store (created by another process) expire by
 * the store's TTL.
 *
 * This file is the lifecycle of a session across its states (create,
 * resume, detach, update, end), one state machine over the handle's mode,
 * the store and the counters, which is why it stays in one file.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import { isSharedStore } from '../store/contract.js';
import type {
  OnlinePage,
  OnlineUsersPage,
  Page,
  SessionEndReason,
  SessionFilter,
  SessionPatch,
  SessionRecord,
  SessionState,
  SessionStats,
  SessionStore,
} from '../store/contract.js';
import { EMPTY_METADATA, ownMetadata } from '../store/flat-session.js';
import { MemoryStore } from '../store/memory-store.js';
import type { OwnedEntry } from '../store/memory-store.js';
import { checkSessionPatch } from '../store/record.js';
import { checkId, checkPort, checkStatsDelta, mergeMetadata, resolveRegistryOptions } from './checks.js';
import type { ResolvedRegistryOptions } from './checks.js';
import { SessionEventSource } from './events.js';
import { Expiry } from './expiry.js';
import { SessionFeed } from './feed.js';
import type { RemoteEnd } from './feed.js';
import { ATTACHED, DETACHED, ENDED, UNBOUND, SessionHandle } from './handle.js';
import type { HandleOwner } from './handle.js';
import { InPlaceStorage } from './in-place-storage.js';
import { LoginChains } from './login-chain.js';
import type { SessionStorage } from './storage.js';
import { sessionInfo } from './storage.js';
import { createToken, tokenMatches, tokenSessionId } from './token.js';
import { canTransition } from './transitions.js';
import type {
  CreateSessionInput,
  RegistryCounters,
  RegistryStats,
  SessionEventName,
  SessionInfo,
  SessionRegistryOptions,
} from './types.js';
import { uuidv7 } from './uuid-v7.js';
import { WriteBehindStorage } from './write-behind-storage.js';

export { SessionHandle } from './handle.js';
export { SESSION_TRANSITIONS, canTransition } from './transitions.js';
export type {
  CreateSessionInput,
  LoginPolicy,
  RegistryCounters,
  RegistryErrorEvent,
  RegistryStats,
  SessionEndEvent,
  SessionEventName,
  SessionEvents,
  SessionInfo,
  SessionRegistryEvents,
  SessionRegistryOptions,
} from './types.js';

/** The result of {@link SessionRegistry.create}: the only time the token is ever visible. */
export interface CreatedSession {
  session: SessionInfo;
  /** The secret the client must keep to resume; never stored, logged or shown again. */
  token: string;
  /** The local fast-path handle. */
  handle: SessionHandle;
}

/** The result of {@link SessionRegistry.resume}. */
export interface ResumedSession {
  session: SessionInfo;
  handle: SessionHandle;
  /** The connection the session was bound to before, if any (the binding closes it when it differs). */
  previousConnectionId: string | null;
}

/** Options of {@link SessionRegistry.delete}. */
export interface DeleteOptions {
  /**
   * End the session only while it is bound to this connection (what a
   * logout asked for on a connection passes): a session bound elsewhere
   * meanwhile is left as it is.
   */
  connectionId?: string;
}

/** True for a store's refusal of a conditional write (`NETLOOP_CONDITION_FAILED`): the session moved to another connection. */
function isConditionFailed(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === ErrorCode.CONDITION_FAILED;
}

/** A failure as a coded error: a NetloopError unchanged, anything else as `NETLOOP_STORE_UNAVAILABLE` with it as `cause`. */
function asStoreError(err: unknown): NetloopError {
  if (err instanceof NetloopError) return err;
  return new NetloopError(ErrorCode.STORE_UNAVAILABLE, `the session store failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Tries of a `'replace'` login that lost a race to another process's login of the same user. */
const LOGIN_RETRIES = 3;

/** What {@link SessionRegistry.create} checked, handed to the insertion. */
interface NewSession {
  userId: string | null;
  connectionId: string | null;
  remoteAddress: string | null;
  remotePort: number | null;
  state: 'CONNECTING' | 'ACTIVE';
  ttl: number;
  metadata: Readonly<Record<string, string>>;
}

/**
 * Sessions: create, look up, heartbeat, resume, expire, end; see the module
 * documentation for the design and the README section `sessions` for usage.
 * Every method that may reach the store returns a promise; the handle and
 * `touch` are synchronous. Events ({@link SessionRegistryEvents}, with
 * `on`, `once` and `off`) are delivered after the call that caused them.
 */
export class SessionRegistry extends SessionEventSource implements HandleOwner {
  /** The clock deadlines are measured on. */
  readonly clock: Clock;
  /** The store sessions live in. */
  readonly store: SessionStore;
  /** Resolved options (defaults applied). */
  readonly options: ResolvedRegistryOptions;

  /** The monotonic time (`clock.now()`) at construction: deadlines are kept in ms relative to it. */
  readonly epoch: number;
  /** @internal Wall time at relative time 0, refreshed by every audit (follows wall-clock steps). */
  _wallBase: number;

  readonly #ownsStore: boolean;
  readonly #isConnectionAlive: ((connectionId: string) => boolean | undefined) | undefined;
  /** How sessions are kept in the store: in place (memory store) or written behind. */
  readonly #storage: SessionStorage;
  /** The timing wheel, the audit and its timer. */
  readonly #expiry: Expiry;
  /** A shared store's change feed and reconciliation, or null (the store is this process's alone). */
  readonly #feed: SessionFeed | null;
  #local = 0;
  #attached = 0;
  #closed = false;
  /** Logins of one user waiting for each other under 'replace'. */
  readonly #loginChains: LoginChains;
  readonly #counters: RegistryCounters = {
    created: 0,
    resumed: 0,
    detached: 0,
    expired: 0,
    replaced: 0,
    closed: 0,
    deleted: 0,
    kicked: 0,
    refused: 0,
    endedRemotely: 0,
    superseded: 0,
  };

  constructor(options: SessionRegistryOptions = {}) {
    super();
    this.clock = options.clock ?? systemClock;
    this.options = resolveRegistryOptions(options);
    this.#isConnectionAlive = options.isConnectionAlive;
    this.#loginChains = new LoginChains(this.options.maxPendingLoginsPerUser);
    this.#ownsStore = options.store === undefined;
    // Tokens name their session, so the registry's own store needs no token index.
    this.store = options.store ?? new MemoryStore({ clock: this.clock, indexTokens: false });
    this.epoch = this.clock.now();
    this._wallBase = this.clock.wallNow();
    const host = {
      owner: this as HandleOwner,
      store: this.store,
      budgetMs: this.options.auditBudgetMs,
      isClosed: () => this.#closed,
      isAuditing: () => this.#expiry.auditing,
      lost: (h: SessionHandle) => this.#lost(h),
      superseded: (err: unknown) => {
        if (!isConditionFailed(err)) return false;
        this.#counters.superseded++;
        return true;
      },
      shared: isSharedStore(this.store),
    };
    // The one place the two storage modes are told apart: the strategy is chosen once.
    this.#storage = this.store instanceof MemoryStore ? new InPlaceStorage(host, this.store) : new WriteBehindStorage(host);
    this.#expiry = new Expiry(this.options, {
      isClosed: () => this.#closed,
      rel: () => this.#rel(),
      refreshWallBase: () => {
        const now = this.#rel();
        this._wallBase = this.clock.wallNow() - now;
        return now;
      },
      expire: (h, reason) => this.#expireLocal(h, reason),
      afterAudit: () => this.#storage.afterAudit(),
      auditFailed: (err) => this._fail({ error: asStoreError(err), operation: 'audit' }),
    });
    if (this.options.autoAudit) this.#expiry.arm();
    const store = this.store;
    this.#feed = isSharedStore(store)
      ? new SessionFeed(
          store,
          {
            processId: this.options.processId,
            clock: this.clock,
            isClosed: () => this.#closed,
            handle: (id) => this.#storage.get(id),
            bound: () => this.#storage.bound(),
            endRemote: (h, end) => this.#endRemote(h, end),
            fail: (error, operation) => this._fail({ error, operation }),
          },
          this.options.reconcileIntervalMs,
        )
      : null;
    this.#feed?.start();
  }

  // ── Create ────────────────────────────────────────────────────────────────

  /**
   * Creates a session under the login policy and returns it with its token
   * (the only time the token is visible) and its local handle.
   *
   * Errors: `NETLOOP_LOGIN_REFUSED` (policy), `NETLOOP_SESSION_LIMIT`
   * (`maxSessions`), `NETLOOP_INVALID_VALUE` (bad input, metadata over a
   * limit), `NETLOOP_ALREADY_BOUND` (the connection is bound to a session),
   * `NETLOOP_REGISTRY_CLOSED`, and the store's (`NETLOOP_STORE_UNAVAILABLE`
   * within its bound when it is down).
   */
  create(input: CreateSessionInput = {}): Promise<CreatedSession> {
    // Not an async function: returning the insertion's own promise costs no extra turns of the microtask queue.
    let fields: NewSession;
    try {
      fields = this.#checkNew(input);
    } catch (err) {
      return Promise.reject(err);
    }
    const userId = fields.userId;
    // Under 'replace', one user's logins run one after another, in call order:
    // each finds the one before it and replaces it, so the newest wins and none is refused.
    if (userId !== null && this.options.policy === 'replace') {
      return this.#loginChains.run(userId, () => this.#insertSession(fields), () => void this.#counters.refused++);
    }
    return this.#insertSession(fields);
  }

  /** Validates a create's input (every limit before anything is stored). */
  #checkNew(input: CreateSessionInput): NewSession {
    this.#open();
    const userId = checkId('userId', input.userId ?? null, this.options.maxIdLength);
    const connectionId = checkId('connectionId', input.connectionId ?? null, this.options.maxIdLength);
    const remoteAddress = checkId('remoteAddress', input.remoteAddress ?? null, this.options.maxIdLength);
    const remotePort = checkPort(input.remotePort ?? null);
    const state = input.state ?? 'ACTIVE';
    if (state !== 'ACTIVE' && state !== 'CONNECTING') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `a session starts CONNECTING or ACTIVE, not ${String(state)}`);
    }
    const ttl = input.ttlMs === undefined ? this.options.ttlMs : checkInteger('ttlMs', input.ttlMs, 1, 2 ** 31 - 1);
    const metadata = input.metadata === undefined ? EMPTY_METADATA : ownMetadata(mergeMetadata({}, input.metadata, this.options));
    if (this.#local >= this.options.maxSessions) {
      this.#counters.refused++;
      throw new NetloopError(ErrorCode.SESSION_LIMIT, 'the session registry is full', {
        details: { maxSessions: this.options.maxSessions },
      });
    }
    if (connectionId !== null) this.#checkConnectionFree(connectionId);
    return { userId, connectionId, remoteAddress, remotePort, state, ttl, metadata };
  }

  /** Applies the login policy and inserts the session (create's second half). */
  async #insertSession(fields: NewSession): Promise<CreatedSession> {
    const { userId, connectionId, remoteAddress, remotePort, state, ttl, metadata } = fields;
    this.#open();
    const policy = this.options.policy;
    for (let attempt = 0; ; attempt++) {
      let maxPerUser: number | undefined;
      let replaced: SessionRecord[] = [];
      if (userId !== null) {
        if (policy === 'multiple') maxPerUser = this.options.maxPerUser;
        else {
          maxPerUser = 1;
          const existing = await this.store.getByUser(userId);
          if (policy === 'replace') replaced = existing;
          else {
            for (const rec of existing) {
              if (this.#connectionDead(rec)) await this.#end(rec.id, 'closed', 'dead-connection', rec);
            }
          }
        }
      }
      const nowRel = this.#rel();
      const wall = nowRel + this._wallBase;
      // Whole milliseconds, as the id's stamp: the creation time is then the stamp (see `_createdDelta`).
      const createdAt = Math.floor(wall);
      const id = uuidv7(createdAt);
      // The token names its session (a split token): resolving it is one lookup by id.
      const { token, hash } = createToken(id);
      const record: SessionRecord = {
        id,
        tokenHash: hash,
        userId,
        connectionId,
        remoteAddress,
        remotePort,
        state,
        metadata,
        stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
        createdAt,
        lastActiveAt: wall,
        expiresAt: wall + ttl,
        ttl,
      };
      for (const old of replaced) await this.#end(old.id, 'replaced', 'replaced', old, record.id);
      this.#open();
      if (connectionId !== null) this.#checkConnectionFree(connectionId);
      const inserted = this.#storage.insert(record, Math.ceil(nowRel + ttl), nowRel, maxPerUser === undefined ? {} : { maxPerUser });
      // In place the insertion is synchronous: no promise, no extra turn.
      const handle = inserted instanceof Promise ? await inserted : inserted;
      if (handle === null) {
        // Another login of the same user won a race (possibly in another process): retry the policy, boundedly.
        if (policy === 'replace' && attempt + 1 < LOGIN_RETRIES) continue;
        this.#counters.refused++;
        throw new NetloopError(ErrorCode.LOGIN_REFUSED, 'the login policy refused a new session for this user', {
          details: { policy, maxPerUser },
        });
      }
      if (this.#closed) {
        await this.#storage.abandon(handle);
        this.#open();
      }
      this.#track(handle);
      this.#counters.created++;
      const session = handle.snapshot();
      this._queue('created', { session });
      return { session, token, handle };
    }
  }

  // ── Lookups ───────────────────────────────────────────────────────────────

  /** The local handle of a session, or undefined (synchronous; local sessions only). */
  handle(id: string): SessionHandle | undefined {
    const h = this.#storage.get(id);
    return h === undefined || h._mode === ENDED ? undefined : h;
  }

  /** The local handle bound to a connection, or undefined (synchronous). */
  handleByConnection(connectionId: string): SessionHandle | undefined {
    const h = this.#storage.getByConnection(connectionId);
    return h === undefined || h._mode !== ATTACHED ? undefined : h;
  }

  /**
   * Synchronous heartbeat by id: the local handle's {@link SessionHandle.heartbeat}
   * (one Map lookup more). Returns the time left, or -1 when the session is
   * not local, detached, ended or past its deadline.
   */
  touch(id: string, now?: number): number {
    const h = this.#storage.get(id);
    return h === undefined ? -1 : h.heartbeat(now);
  }

  /** The live session with this id, or null. */
  async get(id: string): Promise<SessionInfo | null> {
    this.#open();
    const h = this.#liveHandle(id);
    if (h !== undefined) return h.snapshot();
    const rec = await this.store.get(id);
    return rec === null || this.#storage.get(rec.id) !== undefined ? null : sessionInfo(rec);
  }

  /**
   * The live session whose token this is, or null. The token is hashed and
   * checked in constant time; a malformed token is simply not found.
   */
  async getByToken(token: string): Promise<SessionInfo | null> {
    this.#open();
    const rec = await this.#recordByToken(token);
    if (rec === null) return null;
    const h = this.#liveHandle(rec.id);
    return h !== undefined ? h.snapshot() : this.#storage.get(rec.id) !== undefined ? null : sessionInfo(rec);
  }

  /** The live session bound to this connection, or null. */
  async getByConnection(connectionId: string): Promise<SessionInfo | null> {
    this.#open();
    const h = this.#storage.getByConnection(connectionId);
    if (h !== undefined && h._mode === ATTACHED) return this.#liveHandle(h.id)?.snapshot() ?? null;
    const rec = await this.store.getByConnection(connectionId);
    return rec === null || this.#storage.get(rec.id) !== undefined ? null : sessionInfo(rec);
  }

  /** Every live session of a user, oldest first. */
  async getByUser(userId: string): Promise<SessionInfo[]> {
    this.#open();
    return (await this.store.getByUser(userId)).map((r) => this.#storage.info(r));
  }

  /** One page of the live sessions matching `filter`, oldest first, with the total that matched. */
  async list(filter: SessionFilter = {}, page?: Page): Promise<{ sessions: SessionInfo[]; total: number }> {
    this.#open();
    const res = await this.store.list(filter, page);
    return { sessions: res.sessions.map((r) => this.#storage.info(r)), total: res.total };
  }

  // ── Updates ───────────────────────────────────────────────────────────────

  /**
   * Extends a session's expiry by its TTL and resolves the time left. Works for
   * sessions held only in the store too, and for a session created without a
   * connection (it lives by its TTL until a resume binds it).
   * `NETLOOP_SESSION_EXPIRED` when the deadline has passed,
   * `NETLOOP_SESSION_NOT_FOUND` when there is no such live session, or it is
   * detached (its connection closed: it waits for a resume; a stored session
   * without a connection in state IDLE counts as detached).
   */
  async heartbeat(id: string): Promise<number> {
    this.#open();
    const h = this.#storage.get(id);
    if (h !== undefined) {
      const left = h.heartbeat(this.clock.now());
      if (left >= 0) return left;
      if (h._mode === ATTACHED || h._mode === UNBOUND) throw this.#expiredError(id);
      throw this.#notFound(id);
    }
    const rec = await this.store.get(id);
    if (rec === null || (rec.connectionId === null && rec.state === 'IDLE')) throw this.#notFound(id);
    const wall = this.clock.wallNow();
    if (!(await this.store.touch(id, wall + rec.ttl, wall))) throw this.#notFound(id);
    await this.store.update(id, { stats: { add: { heartbeats: 1 } } });
    return rec.ttl;
  }

  /**
   * Changes a session's state, metadata and counters in one atomic step of
   * the store (see {@link SessionPatch}): metadata merged (a string sets a
   * key, null removes it), counters set then added (`stats.add` is what
   * concurrent writers use: no add is lost, in any store, across processes),
   * the state moved along `SESSION_TRANSITIONS`. Resolves the session as it is
   * afterwards.
   *
   * A move to `'CLOSED'` ends the session (event `closed`, reason
   * `'state-closed'`) and applies nothing else. Limits (`maxMetadataKeys`,
   * key and value lengths) are checked on the merged result before anything
   * is stored. For a session held here (written behind), the counters are
   * this process's own: they are written as its handle counts them, with the
   * patch applied.
   *
   * Errors: `NETLOOP_INVALID_VALUE` (a malformed patch, a metadata limit),
   * `NETLOOP_INVALID_TRANSITION`, `NETLOOP_SESSION_NOT_FOUND`,
   * `NETLOOP_SESSION_EXPIRED`, and the store's.
   */
  async update(id: string, patch: SessionPatch): Promise<SessionInfo> {
    this.#open();
    checkSessionPatch(patch);
    const rec = await this.#current(id);
    const state = patch.state;
    if (state !== undefined) {
      if (!canTransition(rec.state, state)) {
        throw new NetloopError(ErrorCode.INVALID_TRANSITION, `a session cannot go from ${rec.state} to ${String(state)}`, {
          details: { id, from: rec.state, to: state },
        });
      }
      if (state === 'CLOSED') {
        const info = await this.#end(id, 'closed', 'state-closed', rec);
        if (info === null) throw this.#notFound(id);
        return info;
      }
    }
    // The limits are checked on the result as this process sees it, before anything is stored.
    if (patch.metadata !== undefined) mergeMetadata(rec.metadata, patch.metadata, this.options);
    const h = this.#storage.get(id);
    const local = h !== undefined && h._mode !== ENDED ? h : undefined;
    let storePatch: SessionPatch = patch;
    if (local !== undefined && this.#storage.writeBehind && patch.stats !== undefined) {
      // The handle counts this session's traffic ahead of the store: write its counters, with the patch applied.
      const stats = local.stats;
      const set = patch.stats.set;
      const add = patch.stats.add;
      for (const k of Object.keys(stats) as (keyof SessionStats)[]) stats[k] = (set?.[k] ?? stats[k]) + (add?.[k] ?? 0);
      storePatch = { ...patch, stats: { set: stats } };
    }
    const next = await this.store.update(id, storePatch);
    if (next === null) {
      if (local !== undefined && local._mode !== ENDED) this.#endLocalOnly(local, 'store');
      throw this.#notFound(id);
    }
    if (local !== undefined && local._mode !== ENDED) {
      this.#storage.patched(local, next);
      return local.snapshot();
    }
    return sessionInfo(next);
  }

  /**
   * Changes a session's state along `SESSION_TRANSITIONS`; `'CLOSED'`
   * ends it (event `closed`, reason `'state-closed'`). Resolves the session as
   * it is afterwards. `NETLOOP_INVALID_TRANSITION` for a move the machine
   * does not allow. A shorthand for {@link SessionRegistry.update}.
   */
  async updateState(id: string, state: SessionState): Promise<SessionInfo> {
    this.#open();
    const rec = await this.#current(id);
    if (rec.state === state && state !== 'CLOSED') return this.#storage.info(rec);
    return this.update(id, { state });
  }

  /**
   * Merges `patch` into the session's metadata: a string sets a key, null
   * removes it. Limits (`maxMetadataKeys`, key and value lengths) are checked
   * on the merged result before anything is stored (`NETLOOP_INVALID_VALUE`).
   * A shorthand for {@link SessionRegistry.update}.
   */
  async updateMetadata(id: string, patch: Record<string, string | null>): Promise<SessionInfo> {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'metadata must be an object of strings');
    }
    return this.update(id, { metadata: patch });
  }

  /**
   * Adds `delta` (non-negative integers) to the session's traffic counters.
   * A shorthand for {@link SessionRegistry.update} with `stats.add`.
   */
  async updateStats(id: string, delta: Partial<SessionStats>): Promise<SessionInfo> {
    checkStatsDelta(delta);
    return this.update(id, { stats: { add: delta } });
  }

  /**
   * Ends a session (event `deleted` with `reason`). Resolves false if there
   * was no live session.
   *
   * With `options.connectionId` (a logout asked for by the client on that
   * connection), the session is ended only while it is bound to that
   * connection: one resumed meanwhile on another connection (in another
   * process) is left to it, counted (`counters.superseded`), and false is
   * resolved.
   */
  async delete(id: string, reason = 'deleted', options: DeleteOptions = {}): Promise<boolean> {
    this.#open();
    const on = options.connectionId;
    if (on !== undefined) checkId('connectionId', on, this.options.maxIdLength);
    return (await this.#end(id, 'deleted', String(reason), undefined, undefined, on, on !== undefined)) !== null;
  }

  /**
   * Ends a session as a kick (event `kicked` with `reason`): the session is
   * deleted, and the connection it is bound to, in this process or another
   * sharing the store, is told (notice kind `'kicked'`) and closed
   * (`'session-kicked'`). Resolves false if there was no live session.
   */
  async kick(id: string, reason = 'kicked'): Promise<boolean> {
    this.#open();
    return (await this.#end(id, 'kicked', String(reason))) !== null;
  }

  // ── Presence ──────────────────────────────────────────────────────────────

  /**
   * True while at least one live session of `userId` is bound to a
   * connection. With a shared store (Redis, etcd) the answer covers every
   * process: a crashed process's users go offline when their sessions'
   * TTLs run out, with no cleanup step. With the memory or file store it
   * covers this process.
   */
  async isOnline(userId: string): Promise<boolean> {
    this.#open();
    return this.store.isOnline(userId);
  }

  /** How many users are online (see {@link SessionRegistry.isOnline}). */
  async onlineCount(): Promise<number> {
    this.#open();
    return this.store.onlineCount();
  }

  /**
   * One page of the users online (see {@link SessionRegistry.isOnline}), in
   * the store's order; follow `cursor` until it is null to see them all, each
   * once.
   *
   * ```ts
   * let page = await registry.onlineUsers({ limit: 50 });
   * for (;;) { show(page.users); if (page.cursor === null) break; page = await registry.onlineUsers({ cursor: page.cursor, limit: 50 }); }
   * ```
   */
  async onlineUsers(page?: OnlinePage): Promise<OnlineUsersPage> {
    this.#open();
    return this.store.onlineUsers(page);
  }

  // ── Other processes ───────────────────────────────────────────────────────

  /**
   * With a shared store: checks every session bound to a connection of this
   * process against the store, and ends (with the matching event, reason of
   * the session's tombstone) those that another process ended or took over
   * while their change did not reach this process. The registry runs it by
   * itself every `reconcileIntervalMs` and whenever the store's feed
   * reconnects; call it yourself after a known outage. Resolves how many
   * sessions it ended (always 0 with a store that is not shared).
   *
   * The bound this gives: no connection outlives its session by more than
   * `reconcileIntervalMs` plus one store round trip per 256 bound sessions,
   * even when the change's event was lost.
   */
  async reconcile(): Promise<number> {
    this.#open();
    return this.#feed === null ? 0 : this.#feed.reconcile();
  }

  // ── Connections ───────────────────────────────────────────────────────────

  /**
   * Tells the registry that a connection closed, for whatever reason. The
   * binding calls it on EVERY close (peer FIN, reset, error, timeouts, server
   * close, after an expiry notice). The session bound to it, if any, is kept
   * detached for `resumeWindowMs` (state IDLE, event `detached`), or closed
   * (event `closed`) when resume is disabled or the session was still
   * CONNECTING. Idempotent; resolves the session's state afterwards or null.
   *
   * The store is changed only while the session is still bound there to
   * `connectionId`: when another process resumed it meanwhile (a client that
   * moved to another worker before this one noticed its old connection
   * close), the detach changes nothing in the store, emits nothing, lets go
   * of the session here, counts it (`counters.superseded`) and resolves null.
   */
  async detach(connectionId: string, reason = 'connection-closed'): Promise<SessionInfo | null> {
    this.#open();
    const found = this.#storage.getByConnection(connectionId);
    const h = found !== undefined && found._mode === ATTACHED ? found : undefined;
    let rec: SessionRecord | null;
    if (h !== undefined) {
      rec = h._toRecord();
    } else {
      rec = await this.store.getByConnection(connectionId);
      if (rec === null) return null;
    }
    if (this.options.resumeWindowMs === 0 || rec.state === 'CONNECTING') {
      return this.#end(rec.id, 'closed', String(reason), rec, undefined, connectionId, true);
    }
    const now = this.#rel();
    const deadline = Math.min(h !== undefined ? h.deadline : now + (rec.expiresAt - this.clock.wallNow()), now + this.options.resumeWindowMs);
    const next: SessionRecord = { ...rec, connectionId: null, state: 'IDLE', expiresAt: deadline + this._wallBase };
    if (h !== undefined) {
      this.#storage.unbind(h, connectionId);
      this.#setMode(h, DETACHED);
      this.#expiry.wheel.rescheduleEntry(h, Math.ceil(deadline));
    }
    let ok: boolean;
    try {
      // Only while the stored session is still this connection's: a resume in another process may
      // have bound it to a connection there, and this late detach must not unbind it.
      ok = await this.store.set(next, { ifConnection: connectionId });
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      this.#counters.superseded++;
      if (h !== undefined) this.#dropLocal(h);
      return null;
    }
    if (!ok) {
      // Gone from the store meanwhile (expired or deleted elsewhere).
      if (h !== undefined) this.#dropLocal(h);
      return null;
    }
    if (h !== undefined && h._mode !== ENDED) this.#storage.stored(h, next);
    const session = h !== undefined && h._mode !== ENDED ? h.snapshot() : sessionInfo(next);
    this.#counters.detached++;
    this._queue('detached', { session, connectionId, reason: String(reason) });
    return session;
  }

  /**
   * Binds a session to a new connection, given its token. Works for a
   * detached session within its resume window, for a session created
   * without a connection (the way to attach one later), and for a session
   * still bound elsewhere (a reconnect before the old connection was noticed
   * dead): then `previousConnectionId` names the old connection, which the
   * binding closes (in this process, or, through a shared store's feed, in
   * the process that holds it). The session becomes ACTIVE with a fresh TTL;
   * `remoteAddress` and `remotePort` replace the old ones when an address is given.
   *
   * `NETLOOP_BAD_TOKEN` for a malformed, unknown, expired or deleted token
   * (the error never says which, and never holds the token);
   * `NETLOOP_ALREADY_BOUND` when `connectionId` is bound to another session.
   */
  async resume(token: string, connectionId: string, remoteAddress: string | null = null, remotePort: number | null = null): Promise<ResumedSession> {
    this.#open();
    checkId('connectionId', connectionId, this.options.maxIdLength);
    checkId('remoteAddress', remoteAddress, this.options.maxIdLength);
    checkPort(remotePort);
    const found = await this.#recordByToken(token);
    const known = found === null ? undefined : this.#storage.get(found.id);
    const local = known !== undefined && known._mode !== ENDED ? known : undefined;
    const rec = local !== undefined ? local._toRecord() : found;
    if (rec === null || (local !== undefined && this.#liveHandle(local.id) === undefined)) throw this.#badToken();
    const holder = this.#storage.getByConnection(connectionId);
    if (holder !== undefined && holder._mode === ATTACHED && holder.id !== rec.id) {
      throw new NetloopError(ErrorCode.ALREADY_BOUND, 'this connection is already bound to another session', {
        details: { connectionId },
      });
    }
    const previousConnectionId = rec.connectionId === connectionId ? null : rec.connectionId;
    const now = this.#rel();
    const deadline = Math.ceil(now + rec.ttl);
    const wall = now + this._wallBase;
    const next: SessionRecord = {
      ...rec,
      connectionId,
      remoteAddress: remoteAddress ?? rec.remoteAddress,
      remotePort: remoteAddress !== null ? remotePort : rec.remotePort,
      state: 'ACTIVE',
      lastActiveAt: wall,
      expiresAt: deadline + this._wallBase,
    };
    if (!(await this.store.set(next))) {
      if (local !== undefined) this.#dropLocal(local);
      throw this.#badToken();
    }
    this.#open();
    let handle: SessionHandle;
    if (local !== undefined && local._mode !== ENDED) {
      handle = local;
      this.#storage.rebound(local, next, previousConnectionId);
      this.#setMode(local, ATTACHED);
      local._lastActive = Math.floor(now);
      this.#expiry.wheel.rescheduleEntry(local, deadline);
    } else {
      handle = this.#storage.adopt(next, deadline, now);
      this.#track(handle);
    }
    this.#counters.resumed++;
    const session = handle.snapshot();
    this._queue('resumed', { session, previousConnectionId });
    if (local === undefined && this.#feed !== null) {
      // Another process may hold the session (bound, detached, or created there without a
      // connection): it lets go of it, and closes its connection as replaced by a resume.
      await this.#feed.publish({
        id: rec.id,
        connectionId: rec.connectionId,
        userId: rec.userId,
        reason: 'replaced',
        detail: 'resumed-elsewhere',
        by: rec.id,
      });
    }
    return { session, handle, previousConnectionId };
  }

  // ── Audit ─────────────────────────────────────────────────────────────────

  /**
   * Expires every local session whose deadline has passed (events `expired`,
   * delivered in one batch per slice), then writes the dirty handles behind
   * to the store. Cost: what is due plus the wheel slots passed, never a scan.
   *
   * The due sessions are expired in synchronous slices of at most
   * `auditBudgetMs`, separated by a turn of the event loop (`setImmediate`),
   * so no audit blocks the loop longer than about the budget. Normally one
   * slice suffices and every session expires within `granularityMs` of its
   * deadline. When more are due than one slice can expire, the rest is
   * carried over to the following slices of the same run; expiry then lags by
   * the backlog (each slice expires roughly `auditBudgetMs` worth, oldest tick
   * first), and a due session is refused by every lookup and heartbeat in the
   * meantime, so it is never seen alive. Concurrent calls share one run; a
   * run re-reads the clock after its backlog and continues (at most a few
   * rounds) so that ticks that passed meanwhile are not left waiting.
   * Resolves how many sessions expired.
   */
  audit(): Promise<number> {
    return this.#expiry.audit();
  }

  /**
   * Writes every dirty handle to the store now (the write-behind queue) and
   * completes the removal of expired sessions from the memory store's Maps
   * ({@link SessionRegistry.cleanupPending}); resolves when done.
   */
  async flush(): Promise<void> {
    this.#open();
    await this.#storage.flush();
  }

  // ── Statistics and close ──────────────────────────────────────────────────

  /**
   * Asks the store whether it answers now: resolves once it did, rejects with
   * its coded error within the store's own bound, never hangs. Call it at
   * start-up to say whether the store answered (a server may start anyway:
   * logins and resumes then reject with the same code until the store is
   * back), or from a health check.
   *
   * ```ts
   * try { await registry.ping(); log(`store ${registry.store.kind}: answered`); }
   * catch (err) { log(`store ${registry.store.kind}: ${(err as NetloopError).code}`); }
   * ```
   *
   * Rejects with `NETLOOP_STORE_UNAVAILABLE` (Redis unreachable, or no answer
   * within its `commandTimeoutMs`), `NETLOOP_STORE_IO` (a file store whose
   * saves are failing), `NETLOOP_STORE_CLOSED`, `NETLOOP_REGISTRY_CLOSED`. A
   * store without `ping()` is asked for `count()`; an uncoded failure of it
   * is reported as `NETLOOP_STORE_UNAVAILABLE` with the failure as `cause`.
   */
  async ping(): Promise<void> {
    this.#open();
    const store = this.store;
    try {
      if (typeof store.ping === 'function') await store.ping();
      else await store.count();
    } catch (err) {
      throw asStoreError(err);
    }
  }

  /** Totals from the store (per state) and this registry's local figures and counters. */
  async stats(): Promise<RegistryStats> {
    this.#open();
    const [total, connecting, active, idle] = await Promise.all([
      this.store.count(),
      this.store.count({ state: 'CONNECTING' }),
      this.store.count({ state: 'ACTIVE' }),
      this.store.count({ state: 'IDLE' }),
    ]);
    return {
      total,
      byState: { CONNECTING: connecting, ACTIVE: active, IDLE: idle, CLOSED: 0 },
      local: this.#local,
      attached: this.#attached,
      timers: this.#expiry.wheel.size,
      counters: { ...this.#counters },
      audit: this.#expiry.auditTimes.sample(),
    };
  }

  /**
   * Expired sessions (in place, in the memory store) that are over for every
   * read but not yet taken out of the store's Maps. An audit ends each due
   * session at once (state, counters, event) and leaves the removal from the
   * store's string-keyed Maps to sweep slices of at most
   * `auditBudgetMs` each, run from the loop after the audit; `flush()`,
   * `close()` and the store's counts complete it at once.
   */
  get cleanupPending(): number {
    return this.#storage.cleanupPending;
  }

  /** Sizes of the local structures, for leak checks: all 0 when no session is held. */
  localSizes(): { handles: number; connections: number; timers: number; dirty: number } {
    return { handles: this.#local, connections: this.#attached, timers: this.#expiry.wheel.size, dirty: this.#storage.dirtyCount };
  }

  /** True once {@link SessionRegistry.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops the audit timer, writes the dirty handles behind, and releases the
   * local sessions. With a store of its own (the default memory store) the
   * store is closed too. With a store passed in, the sessions bound to this
   * process's connections are left detached in it (resumable within the
   * window, then expired by the store; deleted when resume is disabled) so
   * that no stale binding can lock a user out, and the other local sessions
   * are left as they are (a memory store takes its records back as its own);
   * the store is left open (its owner closes it). No events are emitted.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#expiry.stop();
    if (this.#feed !== null) await this.#feed.stop();
    const running = this.#expiry.running;
    if (running !== null) await running.catch(() => undefined);
    const now = this.#rel();
    const window = this.options.resumeWindowMs;
    // A session bound to this process's connection is left detached (or deleted when it cannot be resumed).
    const park = (h: SessionHandle): SessionRecord | null =>
      window === 0 || h.state === 'CONNECTING'
        ? null
        : { ...h._toRecord(), connectionId: null, state: 'IDLE', expiresAt: Math.min(h.deadline, now + window) + this._wallBase };
    for (const h of await this.#storage.close(!this.#ownsStore, park)) h._finish();
    this.#expiry.clear();
    this.#local = 0;
    this.#attached = 0;
    if (this.#ownsStore) await this.store.close();
  }

  // ── Internals shared with SessionHandle and the memory store ─────────────

  /** @internal Moves a handle's deadline (either direction) in the wheel. */
  _refile(h: SessionHandle, deadline: number): void {
    this.#expiry.wheel.rescheduleEntry(h, deadline);
  }

  /** @internal A store write of a wall-clock expiry: converted to the monotonic deadline and re-filed. */
  _setWallExpiry(h: SessionHandle, wall: number): void {
    // The epsilon absorbs the rounding of (deadline + base) - base, so an unchanged expiry stays unchanged.
    const deadline = Math.ceil(wall - this._wallBase - 1e-6);
    if (deadline === h.deadline) return;
    if (h._mode === ENDED) h.deadline = deadline;
    else this.#expiry.wheel.rescheduleEntry(h, deadline);
  }

  /** @internal Queues a handle for the write-behind flush. */
  _markDirty(h: SessionHandle, kind: number): void {
    this.#storage.markDirty(h, kind);
  }

  /** @internal The memory store removed one of our sessions (public delete, clear, eviction). */
  _storeRemoved(entry: OwnedEntry): void {
    const h = entry as unknown as SessionHandle;
    if (h._reg !== this || h._mode === ENDED) return;
    this.#endLocalOnly(h, 'store');
  }

  /** @internal Expire now, in one go, every local session that is due (before the memory store counts). */
  _storeSettle(_now: number): void {
    this.#expiry.settle();
  }

  // ── Private ───────────────────────────────────────────────────────────────

  /** Monotonic now, relative to {@link SessionRegistry.epoch}. */
  #rel(): number {
    return this.clock.now() - this.epoch;
  }

  #open(): void {
    if (this.#closed) throw new NetloopError(ErrorCode.REGISTRY_CLOSED, 'the session registry is closed');
  }

  #notFound(id: string): NetloopError {
    return new NetloopError(ErrorCode.SESSION_NOT_FOUND, 'no live session with this id', { details: { id } });
  }

  #expiredError(id: string): NetloopError {
    return new NetloopError(ErrorCode.SESSION_EXPIRED, 'the session has expired', { details: { id } });
  }

  #badToken(): NetloopError {
    return new NetloopError(ErrorCode.BAD_TOKEN, 'the session token was refused');
  }

  #checkConnectionFree(connectionId: string): void {
    const h = this.#storage.getByConnection(connectionId);
    if (h !== undefined && h._mode === ATTACHED) {
      throw new NetloopError(ErrorCode.ALREADY_BOUND, 'this connection is already bound to a session', { details: { connectionId } });
    }
  }

  /** Counts a new local handle and files it in the wheel. */
  #track(h: SessionHandle): void {
    this.#local++;
    if (h._mode === ATTACHED) this.#attached++;
    this.#expiry.wheel.scheduleEntry(h);
  }

  /** Moves a live handle between ATTACHED and DETACHED, keeping the count of attached ones. */
  #setMode(h: SessionHandle, mode: number): void {
    if (h._mode === ENDED || h._mode === mode) return;
    if (h._mode === ATTACHED) this.#attached--;
    if (mode === ATTACHED) this.#attached++;
    h._mode = mode;
  }

  /** A local handle that is live now; one past its deadline is left for the audit (which reports it). */
  #liveHandle(id: string): SessionHandle | undefined {
    const h = this.#storage.get(id);
    if (h === undefined || h._mode === ENDED || this.#rel() >= h.deadline) return undefined;
    return h;
  }

  /** The current record of a live session (local or stored), or NOT_FOUND / EXPIRED. */
  async #current(id: string): Promise<SessionRecord> {
    const h = this.#storage.get(id);
    if (h !== undefined && h._mode !== ENDED) {
      if (this.#rel() >= h.deadline) throw this.#expiredError(id);
      return h._toRecord();
    }
    const rec = await this.store.get(id);
    if (rec === null) throw this.#notFound(id);
    return rec;
  }

  /**
   * The live record a token resolves to, or null: the token names its session
   * id, the record is looked up by that id (no index of token hashes), and the
   * token is accepted only if it hashes to the record's token hash.
   */
  async #recordByToken(token: string): Promise<SessionRecord | null> {
    const id = tokenSessionId(token);
    if (id === null) return null;
    const rec = await this.store.get(id);
    if (rec === null || !tokenMatches(token, rec.tokenHash)) return null;
    return rec;
  }

  /** Whether a session's connection is known dead (detached, or reported dead by the hook). */
  #connectionDead(rec: SessionRecord): boolean {
    if (rec.connectionId === null) return true;
    const local = this.#storage.getByConnection(rec.connectionId);
    if (local !== undefined && local.id !== rec.id) return true;
    const hook = this.#isConnectionAlive;
    if (hook !== undefined && hook(rec.connectionId) === false) return true;
    return false;
  }

  /**
   * Removes a handle from every local structure, and (through the storage)
   * from the store in place; synchronous, idempotent. Returns the store
   * write still pending for an expiry (`expiring`) written behind, or null.
   */
  #dropLocal(h: SessionHandle, expiring = false): Promise<unknown> | null {
    if (h._mode === ENDED) return null;
    // Before the handle is marked ended: the storage finds it under the connection it still names.
    const pending = expiring ? this.#storage.retire(h) : (this.#storage.release(h), null);
    this.#expiry.wheel.removeEntry(h);
    if (h._mode === ATTACHED) this.#attached--;
    this.#local--;
    h._finish();
    return pending;
  }

  /** The event payload of a session that is ending (built only when someone listens). */
  #endPayload(name: SessionEventName, h: SessionHandle): SessionInfo | null {
    if (!this._listens(name)) return null;
    const session = h.snapshot();
    session.state = 'CLOSED';
    session.connectionId = null;
    return session;
  }

  /** Ends a local session that the store already lost; emits `expired` with `reason`. */
  #endLocalOnly(h: SessionHandle, reason: string): void {
    const connectionId = h._mode === ATTACHED ? h.connectionId : null;
    const session = this.#endPayload('expired', h);
    this.#dropLocal(h);
    this.#counters.expired++;
    if (session !== null) this._queue('expired', { session, connectionId, reason });
  }

  /**
   * Expires a due local handle; returns the store write still pending
   * (written behind), or null. In place, the handle is retired rather than
   * released: it is over at once for every read, and its removal from the
   * store's Maps (the bulk of an expiry's cost at scale) is swept later.
   */
  #expireLocal(h: SessionHandle, reason: string): Promise<unknown> | null {
    const connectionId = h._mode === ATTACHED ? h.connectionId : null;
    const session = this.#endPayload('expired', h);
    const pending = this.#dropLocal(h, true);
    this.#counters.expired++;
    if (session !== null) this._queue('expired', { session, connectionId, reason });
    return pending;
  }

  /**
   * The one path that ends a session (local or store-only) other than expiry:
   * drops it locally, deletes it from the store, counts it and emits exactly
   * one event; with a shared store, publishes the end (tombstone and feed)
   * so that the process holding its connection, if another, closes it.
   * Resolves the final session, or null if it was already gone.
   */
  async #end(
    id: string,
    kind: 'closed' | 'deleted' | 'replaced' | 'kicked',
    reason: string,
    known?: SessionRecord,
    by?: string,
    connectionOverride?: string,
    onBehalf = false,
  ): Promise<SessionInfo | null> {
    const h = this.#storage.get(id);
    let base: SessionRecord | undefined;
    let connectionId: string | null = null;
    if (h !== undefined && h._mode !== ENDED) {
      base = h._toRecord();
      connectionId = h._mode === ATTACHED ? h.connectionId : null;
      if (onBehalf && connectionId !== connectionOverride) {
        // Held here, but not by the connection this end is asked for (already moved on locally).
        this.#counters.superseded++;
        return null;
      }
      this.#dropLocal(h);
    }
    if (base === undefined && known === undefined) {
      known = (await this.store.get(id)) ?? undefined;
      if (known === undefined) return null;
    }
    let removed: boolean;
    try {
      // On behalf of a connection: only while the stored session is still bound to it (see `detach`).
      const deleting = this.#storage.deleteEnded(id, base !== undefined, onBehalf ? { ifConnection: connectionOverride ?? null } : undefined);
      removed = typeof deleting === 'boolean' ? deleting : await deleting;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      this.#counters.superseded++;
      return null;
    }
    if (base === undefined) {
      if (!removed) return null;
      base = known;
      connectionId = known?.connectionId ?? null;
    }
    if (base === undefined) return null;
    if (connectionOverride !== undefined) connectionId = connectionOverride;
    const session = sessionInfo(base);
    session.state = 'CLOSED';
    session.connectionId = null;
    this.#counters[kind]++;
    if (kind === 'replaced') this._queue('replaced', { session, connectionId, reason, by: by ?? '' });
    else this._queue(kind, { session, connectionId, reason });
    if (this.#feed !== null) {
      // The connection, when it is another process's, is closed there; the tombstone tells a
      // process that missed this change why the session ended.
      const end = { id, connectionId: base.connectionId, userId: base.userId, reason: kind, detail: reason };
      await this.#feed.publish(by === undefined ? end : { ...end, by });
    }
    return session;
  }

  /**
   * Ends a local session that another process ended (its change, or a
   * reconciliation): only this process's handle goes, the store is left as
   * the other process made it. A session bound here gets the event of its
   * kind (the binding notifies its client and closes it); one without a
   * connection here is let go of silently.
   */
  #endRemote(h: SessionHandle, end: RemoteEnd): void {
    if (h._mode === ENDED) return;
    if (h._mode !== ATTACHED) {
      this.#dropLocal(h);
      return;
    }
    const kind = end.reason;
    const connectionId = h.connectionId;
    const session = this.#endPayload(kind, h);
    this.#dropLocal(h);
    this.#counters[kind]++;
    this.#counters.endedRemotely++;
    if (session === null) return;
    if (kind === 'replaced') this._queue('replaced', { session, connectionId, reason: end.detail, by: end.by ?? '', remote: true });
    else this._queue(kind, { session, connectionId, reason: end.detail, remote: true });
  }

  /**
   * A write behind found the session gone from the store: ended here with
   * the reason of its tombstone when a shared store has one (another process
   * replaced, kicked or deleted it), else as expired (`'store'`). The
   * tombstone is written just after the other process's delete, so one not
   * there yet is waited for, briefly (`SessionFeed.endOfLost`).
   */
  #lost(h: SessionHandle): void {
    const feed = this.#feed;
    if (feed === null || h._mode !== ATTACHED) {
      this.#endLocalOnly(h, 'store');
      return;
    }
    feed.endOfLost(h).then(
      (end) => {
        if (h._mode === ENDED) return;
        if (end.reason === 'expired') this.#endLocalOnly(h, 'store');
        else this.#endRemote(h, end);
      },
      () => {
        if (h._mode !== ENDED) this.#endLocalOnly(h, 'store');
      },
    );
  }
}
