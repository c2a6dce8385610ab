/**
 * Who is in which room, and which connections are whose, in this process.
 * Membership is never shared: each process knows its own clients, and a
 * broadcast reaches every process, which delivers to its own members.
 *
 * ```
 *   members: Map<Client, { rooms: Set<room> | null, user: string | null }>
 *   rooms:   Map<room, Set<Client>>        a room exists while it has a member
 *   users:   Map<userId, Set<Client>>      a user exists while a client is theirs
 *
 *   join(c, r)  ─▶ members[c].rooms += r ; rooms[r] += c
 *   forget(c)   ─▶ every room of c loses c; users[c.user] loses c; members -= c
 * ```
 *
 * Both indexes change together, so a room's set and a member's rooms never
 * disagree; an empty set is deleted at once, so memory follows the live
 * memberships and nothing else.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import type { Client } from '../reactor/client.js';

interface Member {
  rooms: Set<string> | null;
  user: string | null;
}

/** Counts of what a {@link Membership} holds. */
export interface MembershipCounts {
  /** Rooms with at least one local member. */
  rooms: number;
  /** Clients in at least one room or with a user. */
  members: number;
  /** (client, room) pairs. */
  memberships: number;
  /** Users with at least one local connection. */
  users: number;
}

/** See the module comment. */
export class Membership {
  readonly #members = new Map<Client, Member>();
  readonly #rooms = new Map<string, Set<Client>>();
  readonly #users = new Map<string, Set<Client>>();
  readonly #maxRoomsPerClient: number;
  #memberships = 0;

  constructor(maxRoomsPerClient: number) {
    this.#maxRoomsPerClient = maxRoomsPerClient;
  }

  /**
   * Adds `client` to `room`; false when it was already there.
   *
   * @throws NetloopError `NETLOOP_ROOM_LIMIT` when the client is in `maxRoomsPerClient` rooms already.
   */
  join(client: Client, room: string): boolean {
    const m = this.#member(client);
    if (m.rooms !== null && m.rooms.has(room)) return false;
    if ((m.rooms?.size ?? 0) >= this.#maxRoomsPerClient) {
      if (m.rooms === null && m.user === null) this.#members.delete(client);
      throw new NetloopError(ErrorCode.ROOM_LIMIT, `a client may be in at most ${this.#maxRoomsPerClient} rooms`, {
        details: { clientId: client.id, max: this.#maxRoomsPerClient },
      });
    }
    (m.rooms ??= new Set()).add(room);
    let set = this.#rooms.get(room);
    if (set === undefined) this.#rooms.set(room, (set = new Set()));
    set.add(client);
    this.#memberships++;
    return true;
  }

  /** Takes `client` out of `room`; false when it was not there. */
  leave(client: Client, room: string): boolean {
    const m = this.#members.get(client);
    if (m === undefined || m.rooms === null || !m.rooms.delete(room)) return false;
    this.#unlink(this.#rooms, room, client);
    this.#memberships--;
    if (m.rooms.size === 0) m.rooms = null;
    if (m.rooms === null && m.user === null) this.#members.delete(client);
    return true;
  }

  /** Takes `client` out of every room (its user stays); returns how many it left. */
  leaveAll(client: Client): number {
    const m = this.#members.get(client);
    if (m === undefined || m.rooms === null) return 0;
    const n = m.rooms.size;
    for (const room of m.rooms) this.#unlink(this.#rooms, room, client);
    this.#memberships -= n;
    m.rooms = null;
    if (m.user === null) this.#members.delete(client);
    return n;
  }

  /** Says whose connection `client` is (null: nobody's); replaces what was said before. */
  setUser(client: Client, user: string | null): void {
    const m = user === null ? this.#members.get(client) : this.#member(client);
    if (m === undefined || m.user === user) return;
    if (m.user !== null) this.#unlink(this.#users, m.user, client);
    m.user = user;
    if (user !== null) {
      let set = this.#users.get(user);
      if (set === undefined) this.#users.set(user, (set = new Set()));
      set.add(client);
    } else if (m.rooms === null) this.#members.delete(client);
  }

  /** Forgets `client` entirely (it closed): every room and its user, at once. */
  forget(client: Client): void {
    const m = this.#members.get(client);
    if (m === undefined) return;
    this.leaveAll(client);
    if (m.user !== null) this.#unlink(this.#users, m.user, client);
    this.#members.delete(client);
  }

  /** The rooms `client` is in (a new array). */
  roomsOf(client: Client): string[] {
    const rooms = this.#members.get(client)?.rooms;
    return rooms == null ? [] : [...rooms];
  }

  /** The user `client` was said to be, or null. */
  userOf(client: Client): string | null {
    return this.#members.get(client)?.user ?? null;
  }

  /** True when `client` is in `room`. */
  isIn(client: Client, room: string): boolean {
    return this.#members.get(client)?.rooms?.has(room) === true;
  }

  /** True when `client` is in at least one of `rooms`. */
  inAny(client: Client, rooms: readonly string[]): boolean {
    const own = this.#members.get(client)?.rooms;
    if (own == null) return false;
    for (let i = 0; i < rooms.length; i++) if (own.has(rooms[i]!)) return true;
    return false;
  }

  /** The local members of `room` (live: do not change membership while iterating), or undefined. */
  room(room: string): ReadonlySet<Client> | undefined {
    return this.#rooms.get(room);
  }

  /** The local connections said to be `user`'s, or undefined. */
  user(user: string): ReadonlySet<Client> | undefined {
    return this.#users.get(user);
  }

  /** The names of the rooms with a local member. */
  roomNames(): IterableIterator<string> {
    return this.#rooms.keys();
  }

  /** What is held, for stats and leak checks. */
  counts(): MembershipCounts {
    return { rooms: this.#rooms.size, members: this.#members.size, memberships: this.#memberships, users: this.#users.size };
  }

  #member(client: Client): Member {
    let m = this.#members.get(client);
    if (m === undefined) this.#members.set(client, (m = { rooms: null, user: null }));
    return m;
  }

  #unlink(index: Map<string, Set<Client>>, key: string, client: Client): void {
    const set = index.get(key);
    if (set === undefined) return;
    set.delete(client);
    if (set.size === 0) index.delete(key);
  }
}
