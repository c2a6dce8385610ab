/**
 * The in-place storage strategy: sessions live in a {@link MemoryStore} as
 * the registry's own handles, adopted by the store without a copy.
 *
 * ```
 *   MemoryStore                                  SessionRegistry
 *   records  Map<id, entry> ───────┐             wheel  TimingWheel (intrusive:
 *   byUser   Map<user, entry|Set> ─┼──► SessionHandle ◄─── slots   the handle
 *   byConn   Map<conn, entry> ─────┘    (record fields + deadline + wheel place)
 * ```
 *
 * One object and the store's indexes (id, connection, user) are all a
 * session costs; the registry keeps no map of its own. The store reads
 * `expiresAt` and `lastActiveAt` through accessors derived from the handle's
 * monotonic deadline, so a heartbeat is visible to the store at once and
 * nothing is written behind.
 *
 * **Deferred cleanup.** Ending an expired session is cheap (its mode and
 * state, the wheel, the counters, the event); taking it out of the store's
 * string-keyed Maps is not: at a million sessions each of those Map
 * removals is a few cache misses, about ten times the rest. So an expiry
 * retires the session ({@link MemoryStore.retire}) instead: it is over at
 * once for every read, every count and every new claim of its connection,
 * and the Map removals run afterwards in loop slices of at most the audit
 * budget. A mass expiry thus notifies its clients about ten times sooner,
 * and no slice holds the loop longer than the budget. `flush()`, `close()`
 * and the store's counts and lists complete the cleanup at once.
 *
 * @module
 */

import type { CreateOptions, SessionRecord, WriteCondition } from '../store/contract.js';
import type { MemoryStore, OwnedEntry } from '../store/memory-store.js';
import { ATTACHED, SessionHandle } from './handle.js';
import type { SessionStorage, StorageHost } from './storage.js';
import { sessionInfo } from './storage.js';
import type { SessionInfo } from './types.js';

/** A handle as the memory store holds it. */
const entry = (h: SessionHandle): OwnedEntry => h as unknown as OwnedEntry;

/** See the module documentation. */
export class InPlaceStorage implements SessionStorage {
  /** @inheritDoc */
  readonly writeBehind = false;
  readonly #host: StorageHost;
  readonly #mem: MemoryStore;
  /** A sweep slice of the store's retired entries is queued. */
  #sweepQueued = false;

  constructor(host: StorageHost, mem: MemoryStore) {
    this.#host = host;
    this.#mem = mem;
  }

  /** @inheritDoc */
  get cleanupPending(): number {
    return this.#mem.retiredCount;
  }

  /** @inheritDoc */
  get dirtyCount(): number {
    return 0;
  }

  /** @inheritDoc */
  get(id: string): SessionHandle | undefined {
    // Every handle of this registry is the store's record; another owner's entry has another (or no) `_reg`.
    const e = this.#mem.ownedById(id) as unknown as SessionHandle | undefined;
    return e !== undefined && e._reg === this.#host.owner ? e : undefined;
  }

  /** @inheritDoc */
  getByConnection(connectionId: string): SessionHandle | undefined {
    const e = this.#mem.ownedByConnection(connectionId) as unknown as SessionHandle | undefined;
    return e !== undefined && e._owner === this.#host.owner ? e : undefined;
  }

  /** {@inheritDoc SessionStorage.insert} In place the handle is the record: no copy, no promise. */
  insert(record: SessionRecord, deadline: number, lastActive: number, options: CreateOptions): SessionHandle | null {
    const h = new SessionHandle(this.#host.owner, record, deadline, lastActive, true, record.connectionId === null);
    return this.#mem.adopt(entry(h), options) ? h : null;
  }

  /** @inheritDoc */
  async abandon(h: SessionHandle): Promise<void> {
    this.#mem.release(entry(h));
  }

  /** @inheritDoc */
  adopt(record: SessionRecord, deadline: number, lastActive: number): SessionHandle {
    const h = new SessionHandle(this.#host.owner, record, deadline, lastActive, true);
    this.#mem.adopt(entry(h), { replace: true });
    return h;
  }

  /** Nothing to do in place: the store's connection index follows the store's own write. */
  unbind(): void {}

  /** Nothing to do in place: the store's write already rewrote the handle (it is the record). */
  stored(): void {}

  /** Nothing to do in place: the store's write already rewrote the handle and its connection index. */
  rebound(): void {}

  /** Nothing to do in place: the store's update already rewrote the handle (it is the record). */
  patched(): void {}

  /** @inheritDoc */
  bound(): SessionHandle[] {
    return (this.#mem.ownedEntries(this.#host.owner) as unknown as SessionHandle[]).filter((h) => h._mode === ATTACHED);
  }

  /** @inheritDoc */
  release(h: SessionHandle): void {
    this.#mem.release(entry(h));
  }

  /** @inheritDoc */
  retire(h: SessionHandle): null {
    this.#mem.retire(entry(h));
    return null;
  }

  /** @inheritDoc */
  deleteEnded(id: string, released: boolean, condition?: WriteCondition): boolean | Promise<boolean> {
    // Releasing the handle already removed it from the store.
    return released ? true : this.#host.store.delete(id, condition);
  }

  /** {@inheritDoc SessionStorage.info} In place, the store's copy is the handle's own fields. */
  info(r: SessionRecord): SessionInfo {
    return sessionInfo(r);
  }

  /** Never called in place: a handle that is the store's record is never queued (its flag says IN_PLACE). */
  markDirty(): void {}

  /** @inheritDoc */
  async flush(): Promise<void> {
    this.#mem.sweepRetired();
  }

  /** @inheritDoc */
  afterAudit(): null {
    this.#scheduleSweep();
    return null;
  }

  /** @inheritDoc */
  async close(keepStore: boolean, park: (h: SessionHandle) => SessionRecord | null): Promise<SessionHandle[]> {
    const mem = this.#mem;
    const owner = this.#host.owner;
    mem.sweepRetired();
    const mine = mem.ownedEntries(owner) as unknown as SessionHandle[];
    if (keepStore) {
      // The store takes the records back as its own (copies it then expires itself).
      for (const h of mine) {
        if (h._mode === ATTACHED) {
          const parked = park(h);
          if (parked === null) mem.release(entry(h));
          else mem.setSync(parked);
        }
        mem.disown(entry(h));
      }
    }
    mem.forgetOwner(owner);
    return mine;
  }

  /** Queues a sweep slice when expired sessions wait for their removal from the store's Maps. */
  #scheduleSweep(): void {
    if (this.#sweepQueued || this.#host.isClosed() || this.#mem.retiredCount === 0) return;
    this.#sweepQueued = true;
    setImmediate(this.#sweepSlice);
  }

  /** One slice of at most the budget; an audit in progress takes precedence and queues the next slice when it ends. */
  readonly #sweepSlice = (): void => {
    this.#sweepQueued = false;
    if (this.#host.isClosed() || this.#host.isAuditing()) return;
    if (this.#mem.sweepRetired(performance.now() + this.#host.budgetMs) > 0) this.#scheduleSweep();
  };
}
