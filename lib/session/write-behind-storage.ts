/**
 * The write-behind storage strategy: sessions live in any store reached
 * through the `SessionStore` interface (file, Redis, a store of your own);
 * the registry keeps a local copy of each of its sessions, its handle.
 *
 * ```
 *   handles  Map<id, handle>          every local session
 *   byConn   Map<connection, handle>  the bound ones
 *   dirty    handle[]                 handles whose heartbeat or counters changed
 *
 *   handle.heartbeat() ──▶ dirty (DIRTY_TOUCH) ──audit──▶ store.touch(id, expiresAt, lastActiveAt)
 *   handle.recordIn()  ──▶ dirty (DIRTY_FULL)  ──audit──▶ store.touch + store.update({ stats: { set } })
 *   state, metadata, binding, deletion ───────── at once ──▶ store.set / store.delete
 * ```
 *
 * A heartbeat marks the handle dirty; every audit tick writes the dirty
 * handles to the store, in batches of {@link WRITE_BATCH} and slices of at
 * most the audit budget. The store's copy therefore lags by at most one
 * audit interval (`granularityMs`) plus the time of the write, which is why
 * `granularityMs` may be at most a quarter of `ttlMs`. A write that finds
 * the session gone (its TTL ran out there, or another process deleted it)
 * ends it here too.
 *
 * @module
 */

import type { CreateOptions, SessionRecord } from '../store/contract.js';
import { ATTACHED, CLEAN, DIRTY_FULL, ENDED, SessionHandle } from './handle.js';
import type { SessionStorage, StorageHost } from './storage.js';
import { sessionInfo } from './storage.js';
import type { SessionInfo } from './types.js';

/** Store writes in flight at once during a flush or a close. */
export const WRITE_BATCH = 256;

const noop = (): void => undefined;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** See the module documentation. */
export class WriteBehindStorage implements SessionStorage {
  /** @inheritDoc */
  readonly writeBehind = true;
  readonly #host: StorageHost;
  readonly #handles = new Map<string, SessionHandle>();
  readonly #byConn = new Map<string, SessionHandle>();
  #dirty: SessionHandle[] = [];

  constructor(host: StorageHost) {
    this.#host = host;
  }

  /** @inheritDoc */
  get cleanupPending(): number {
    return 0;
  }

  /** @inheritDoc */
  get dirtyCount(): number {
    return this.#dirty.length;
  }

  /** @inheritDoc */
  get(id: string): SessionHandle | undefined {
    return this.#handles.get(id);
  }

  /** @inheritDoc */
  getByConnection(connectionId: string): SessionHandle | undefined {
    return this.#byConn.get(connectionId);
  }

  /** @inheritDoc */
  async insert(record: SessionRecord, deadline: number, lastActive: number, options: CreateOptions): Promise<SessionHandle | null> {
    if (!(await this.#host.store.create(record, options))) return null;
    return this.adopt(record, deadline, lastActive, record.connectionId === null);
  }

  /** @inheritDoc */
  async abandon(h: SessionHandle): Promise<void> {
    this.release(h);
    await this.#host.store.delete(h.id).catch(noop);
  }

  /** @inheritDoc */
  adopt(record: SessionRecord, deadline: number, lastActive: number, unbound = false): SessionHandle {
    const h = new SessionHandle(this.#host.owner, record, deadline, lastActive, false, unbound);
    this.#handles.set(h.id, h);
    if (record.connectionId !== null) this.#byConn.set(record.connectionId, h);
    return h;
  }

  /** @inheritDoc */
  unbind(h: SessionHandle, connectionId: string): void {
    if (this.#byConn.get(connectionId) === h) this.#byConn.delete(connectionId);
  }

  /** @inheritDoc */
  stored(h: SessionHandle, next: SessionRecord): void {
    h._assign(next);
  }

  /** @inheritDoc */
  rebound(h: SessionHandle, next: SessionRecord, previousConnectionId: string | null): void {
    if (previousConnectionId !== null && this.#byConn.get(previousConnectionId) === h) this.#byConn.delete(previousConnectionId);
    h._assign(next);
    if (next.connectionId !== null) this.#byConn.set(next.connectionId, h);
  }

  /** @inheritDoc */
  patched(h: SessionHandle, next: SessionRecord): void {
    h._patch(next);
  }

  /** @inheritDoc */
  bound(): SessionHandle[] {
    const out: SessionHandle[] = [];
    for (const h of this.#byConn.values()) if (h._mode === ATTACHED) out.push(h);
    return out;
  }

  /** @inheritDoc */
  release(h: SessionHandle): void {
    if (this.#handles.get(h.id) === h) this.#handles.delete(h.id);
    const conn = h.connectionId;
    if (conn !== null && this.#byConn.get(conn) === h) this.#byConn.delete(conn);
  }

  /**
   * With a shared store, the stored session is deleted only while it is
   * still as this process left it (bound to the same connection, or to
   * none): another process may have resumed it meanwhile, and a change that
   * said so may have been lost.
   */
  retire(h: SessionHandle): Promise<unknown> {
    const id = h.id;
    const conn = h.connectionId;
    this.release(h);
    const store = this.#host.store;
    if (!this.#host.shared) return store.delete(id).catch(noop);
    return store
      .get(id)
      .then((rec) => (rec !== null && rec.connectionId !== conn ? false : store.delete(id)))
      .catch(noop);
  }

  /** @inheritDoc */
  deleteEnded(id: string): Promise<boolean> {
    return this.#host.store.delete(id);
  }

  /** @inheritDoc */
  info(r: SessionRecord): SessionInfo {
    const h = this.#handles.get(r.id);
    return h !== undefined && h._mode !== ENDED ? h.snapshot() : sessionInfo(r);
  }

  /** @inheritDoc */
  markDirty(h: SessionHandle, kind: number): void {
    if (h._dirty === CLEAN) this.#dirty.push(h);
    if (kind > h._dirty) h._dirty = kind;
  }

  /** @inheritDoc */
  flush(): Promise<void> {
    return this.#flush();
  }

  /** @inheritDoc */
  afterAudit(): Promise<void> | null {
    return this.#dirty.length > 0 ? this.#flush() : null;
  }

  /** @inheritDoc */
  async close(keepStore: boolean, park: (h: SessionHandle) => SessionRecord | null): Promise<SessionHandle[]> {
    if (keepStore) {
      const store = this.#host.store;
      await this.#flush().catch(noop);
      const writes: Promise<unknown>[] = [];
      for (const h of this.#byConn.values()) {
        const parked = park(h);
        writes.push(parked === null ? store.delete(h.id) : store.set(parked));
        if (writes.length >= WRITE_BATCH) await Promise.allSettled(writes.splice(0));
      }
      await Promise.allSettled(writes);
    }
    const all = [...this.#handles.values()];
    this.#handles.clear();
    this.#byConn.clear();
    this.#dirty = [];
    return all;
  }

  /** Writes every dirty handle to the store now, in batches and budgeted slices. */
  async #flush(): Promise<void> {
    if (this.#dirty.length === 0) return;
    const store = this.#host.store;
    const batch = this.#dirty;
    this.#dirty = [];
    let sliceStart = performance.now();
    for (let i = 0; i < batch.length; i += WRITE_BATCH) {
      const writes: Promise<void>[] = [];
      for (const h of batch.slice(i, i + WRITE_BATCH)) {
        const kind = h._dirty;
        h._dirty = CLEAN;
        if (h._mode === ENDED || kind === CLEAN) continue;
        const touched = store.touch(h.id, h.expiresAt, h.lastActiveAt);
        // The counters are this process's to write; state and metadata are left to their own
        // (atomic) updates, so that a change another process made to them is never overwritten.
        const write = kind === DIRTY_FULL ? Promise.all([touched, store.update(h.id, { stats: { set: h.stats } })]).then(([ok]) => ok) : touched;
        writes.push(
          write.then((ok) => {
            // The store lost the session (its TTL ran out there, or another process deleted it): end it here too.
            if (!ok && h._mode !== ENDED) this.#host.lost(h);
          }),
        );
      }
      await Promise.all(writes);
      if (performance.now() - sliceStart > this.#host.budgetMs) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  }
}
