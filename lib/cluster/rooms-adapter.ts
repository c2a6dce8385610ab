/**
 * Rooms and broadcast across processes, over Redis pub/sub: socket.io's
 * Redis adapter, for netloop's servers. Each process keeps its own clients'
 * rooms; a broadcast is published once, every process reads it and delivers
 * it to its own members, through each client's output buffer and limits
 * (`server.broadcast`, `client.write`), never around them.
 *
 * ```ts
 * const rooms = await createRoomsAdapter({ server, redis: client });  // a node-redis client or cluster, or a URL
 * rooms.join(client, 'lobby');
 * rooms.setUser(client, 'alice');
 * rooms.broadcast({ type: 'Chat', payload }, { rooms: 'lobby', except: client });
 * rooms.broadcast(bytes, { users: 'alice' });                         // every connection of alice, anywhere
 * ```
 *
 * ```
 *   process A                                   Redis                    process B
 *   broadcast(msg, { rooms, users, except })
 *     ├─ local members (not with loopback) ─▶ client.write
 *     └─ envelope (once) ─▶ PUBLISH <prefix><channel> ──▶ SUBSCRIBE ──▶ decode (once)
 *                                                                        ├─ all:   server.broadcast(bytes, filter)
 *                                                                        └─ rooms/users: client.write(bytes)
 *   typed messages: serialized once at A; B writes one frame per server (its layout), by reference to each member
 *   the envelopes of one synchronous run at A (per channel) travel as one batch: one PUBLISH, one message at B
 * ```
 *
 * Delivery is at most once and best effort, as pub/sub is: what Redis does
 * not carry is lost, never replayed. It is never lost silently: the
 * publisher counts what it drops (its queue full while Redis is down,
 * entries older than `maxQueueAgeMs`, a PUBLISH that failed, the queue at
 * close), and every receiver counts the messages of each publisher it did
 * not receive (sequence numbers per publisher and channel: a gap is
 * counted, and reported by `'missed'`, when the next message arrives).
 *
 * Order: one publisher's messages on one channel arrive in order. By
 * default a process delivers its own broadcasts to its members at once and
 * skips them when they come back (socket.io's way: fast, and local
 * delivery goes on while Redis is down), so two processes' messages may
 * reach their members in different orders. With `loopback: true` every
 * process, the publisher included, delivers only what comes back from
 * Redis, so all members everywhere see one order (Redis's), at the cost of
 * a round trip and of local delivery while Redis is down.
 *
 * Around this class, each in its file: the options, events and counters
 * with the options' checks (`rooms-options.ts`), the envelope and batch
 * formats (`envelope.ts`), the rooms and users of this process's clients
 * (`membership.ts`), the Redis connections and the bounded publish queue
 * (`pubsub-link.ts`), and a broadcast's bytes per server (`rooms-frames.ts`).
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { TypedEmitter } from '../core/emitter.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkObject } from '../core/validate.js';
import { Client } from '../reactor/client.js';
import type { AnyServer } from '../reactor/server.js';
import type { TypedMessage } from '../reactor/loop-member.js';
import type { CloseReason } from '../reactor/close-reason.js';
import { LtvEncoder } from '../codec/ltv-encoder.js';
import type { MessageRegistry } from '../codec/message-registry.js';
import { FramedServer } from '../framing/framed-server.js';
import type { AnyFramedServer } from '../framing/framed-server.js';
import {
  BATCH_ENTRY_OVERHEAD,
  BATCH_VERSION,
  ENVELOPE_VERSION,
  MAX_BATCH_ENVELOPES,
  TARGET_ROOM,
  TARGET_USER,
  batchHeaderSize,
  decodeEnvelope,
  encodeBatch,
  encodeEnvelope,
  envelopeCount,
  envelopeSize,
  splitBatch,
} from './envelope.js';
import type { ClientRef, Target } from './envelope.js';
import { Membership } from './membership.js';
import { PubSubLink } from './pubsub-link.js';
import { Frames } from './rooms-frames.js';
import type { DropReason, PubSubClientLike } from './pubsub-link.js';

export type { PubSubClientLike, DropReason, ConnectionName } from './pubsub-link.js';
export { ROOMS_DEFAULTS } from './rooms-options.js';
export type { UserDirectory, RoomsAdapterOptions, RoomsMessage, RoomsBroadcastOptions } from './rooms-options.js';
export type { RoomsBroadcastResult, RoomsDropInfo, RoomsAdapterEvents, RoomsAdapterStats } from './rooms-options.js';
import { NONE, PROCESS_ID, checkName, list, resolveRoomsOptions } from './rooms-options.js';
import type { RoomsAdapterEvents, RoomsAdapterOptions, RoomsAdapterStats, RoomsBroadcastOptions } from './rooms-options.js';
import type { RoomsBroadcastResult, RoomsMessage, UserDirectory } from './rooms-options.js';

const MALFORMED_REPORT_MS = 10_000;
/** Own clients reconnect with a backoff doubling from this, ... */
const RECONNECT_BASE_MS = 50;
/** ... up to this. */
const RECONNECT_MAX_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;
const NO_OPTIONS: RoomsBroadcastOptions = Object.freeze({});


/** FNV-1a of a target, for its channel. */
function hashTarget(t: Target): number {
  let h = 0x811c9dc5 ^ t.kind;
  const s = t.name;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * See the module comment. Make one with {@link createRoomsAdapter} (which
 * waits until it is subscribed), or `new RoomsAdapter(options)` and
 * `await adapter.ready()`.
 */
export class RoomsAdapter extends TypedEmitter<RoomsAdapterEvents> {
  /** This process's id in the envelopes (see {@link RoomsAdapter.clientKey}). */
  readonly processId: string;
  /** The channels' prefix. */
  readonly prefix: string;
  /** True when own broadcasts are delivered only as they come back from Redis. */
  readonly loopback: boolean;
  readonly #servers: readonly AnyServer[];
  readonly #serverSet: ReadonlySet<object>;
  readonly #membership: Membership;
  readonly #link: PubSubLink;
  readonly #registry: MessageRegistry | null;
  readonly #typedEncoder: LtvEncoder | null;
  readonly #users: UserDirectory | null;
  readonly #clock: Clock;
  readonly #channels: number;
  readonly #seq: Uint32Array;
  /** The envelope's origin field as this process writes it: its length byte, then its id. */
  readonly #originBytes: Buffer;
  readonly #origins = new Map<string, Float64Array>();
  readonly #maxOrigins: number;
  readonly #maxMessageBytes: number;
  readonly #maxNameBytes: number;
  readonly #maxTargets: number;
  /** Per owner (server): the encoder of its frames, or null for a server of raw clients. */
  readonly #encoders = new WeakMap<object, LtvEncoder | null>();
  readonly #ready: Promise<void>;
  #closing: Promise<void> | null = null;
  #broadcasts = 0;
  #received = 0;
  #missed = 0;
  #malformed = 0;
  #lastMalformedReport = -Infinity;
  #deliveries = 0;
  readonly #dropped: Record<DropReason, number> = { 'queue-full': 0, expired: 0, failed: 0, closed: 0 };

  /**
   * Validates the options, listens for the servers' closes, and starts
   * connecting and subscribing (see {@link RoomsAdapter.ready}). Broadcasts
   * made before Redis answers wait in the bounded queue.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(options: RoomsAdapterOptions) {
    super();
    const o = resolveRoomsOptions(options);
    const { servers, redis, prefix, processId, channels, maxBatchBytes, clock, users } = o;
    this.#maxMessageBytes = o.maxMessageBytes;
    this.#maxNameBytes = o.maxNameBytes;
    this.#maxTargets = o.maxTargets;
    this.#maxOrigins = o.maxOrigins;
    this.loopback = o.loopback;
    const framed = servers.find((s): s is AnyServer & AnyFramedServer => s instanceof FramedServer);
    this.#registry = options.registry ?? framed?.registry ?? null;
    this.#typedEncoder = framed !== undefined ? new LtvEncoder({ layout: framed.layout }) : null;
    this.processId = processId;
    this.prefix = prefix;
    this.#servers = servers;
    this.#serverSet = new Set(servers);
    this.#users = users;
    this.#clock = clock;
    this.#channels = channels;
    this.#seq = new Uint32Array(channels);
    const originBytes = Buffer.concat([Buffer.from([processId.length]), Buffer.from(processId, 'latin1')]);
    this.#originBytes = originBytes;
    this.#membership = new Membership(o.maxRoomsPerClient);
    this.#link = new PubSubLink(
      {
        channelNames: Array.from({ length: channels }, (_, i) => `${prefix}${i}`),
        batching:
          maxBatchBytes === 0
            ? null
            : {
                maxBytes: maxBatchBytes,
                maxEnvelopes: MAX_BATCH_ENVELOPES,
                combine: (parts, bytes) => encodeBatch(originBytes, parts, batchHeaderSize(originBytes.length) + bytes + BATCH_ENTRY_OVERHEAD * parts.length),
              },
        sharded: o.sharded,
        clock,
        maxQueuedMessages: o.maxQueuedMessages,
        maxQueuedBytes: o.maxQueuedBytes,
        maxQueueAgeMs: o.maxQueueAgeMs,
        maxInFlight: o.maxInFlight,
      },
      {
        message: (message, channel) => this.#onMessage(message, channel),
        dropped: (reason, messages, bytes) => {
          this.#dropped[reason] += messages;
          this.emit('dropped', { reason, messages, bytes });
        },
        down: (_connection, error) => this._reportError(error, 'pubsub'),
        up: (connection, downMs, first) => {
          if (!first) this.emit('reconnected', { connection, downMs });
        },
        error: (error) => this._reportError(error, 'pubsub'),
      },
    );
    for (const s of servers) s.on('close', this.#onClientClose);
    this.#ready = this.#start(redis);
    // ready() may never be awaited: its failure is reported there, and must not be an unhandled rejection here.
    this.#ready.catch(() => undefined);
  }

  /**
   * Resolves once the adapter is subscribed to its channels (broadcasts of
   * other processes reach this one from then on). Waits for Redis as long as
   * the client's reconnect strategy does; rejects with that failure, or
   * with `NETLOOP_ADAPTER_CLOSED` when the adapter is closed first.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  // ── Membership ────────────────────────────────────────────────────────────

  /**
   * Puts `client` in `rooms` (one or several). A closed client is ignored
   * (it has left everything already).
   *
   * @throws NetloopError `NETLOOP_INVALID_VALUE` for a client of another
   *   server or a bad name; `NETLOOP_ROOM_LIMIT` past `maxRoomsPerClient`
   *   (the rooms before it are joined).
   */
  join(client: Client, rooms: string | readonly string[]): void {
    if (!this.#own(client)) return;
    for (const room of list('room', rooms, this.#maxNameBytes)) this.#membership.join(client, room);
  }

  /** Takes `client` out of `rooms` (one or several); a room it is not in is ignored. */
  leave(client: Client, rooms: string | readonly string[]): void {
    for (const room of list('room', rooms, this.#maxNameBytes)) this.#membership.leave(client, room);
  }

  /** Takes `client` out of every room; returns how many it left. */
  leaveAll(client: Client): number {
    return this.#membership.leaveAll(client);
  }

  /**
   * Says whose connection `client` is (null: nobody's), for broadcasts to
   * users; replaces what was said before. Forgotten when the client closes.
   *
   * @throws NetloopError `NETLOOP_INVALID_VALUE` for a client of another server or a bad id.
   */
  setUser(client: Client, userId: string | null): void {
    if (userId !== null) checkName('userId', userId, this.#maxNameBytes);
    if (!this.#own(client)) return;
    this.#membership.setUser(client, userId);
  }

  /** The user `client` was said to be ({@link RoomsAdapter.setUser}), or null. */
  userOf(client: Client): string | null {
    return this.#membership.userOf(client);
  }

  /** The rooms `client` is in. */
  roomsOf(client: Client): string[] {
    return this.#membership.roomsOf(client);
  }

  /** True when `client` is in `room`. */
  isIn(client: Client, room: string): boolean {
    return this.#membership.isIn(client, room);
  }

  /** This process's members of `room` (other processes keep their own). */
  localMembers(room: string): Client[] {
    const set = this.#membership.room(room);
    return set === undefined ? [] : [...set];
  }

  /** The rooms with a member in this process. */
  localRooms(): string[] {
    return [...this.#membership.roomNames()];
  }

  /** A name for `client` that every process understands, for `except` (`<processId>/<client id>`). */
  clientKey(client: Client): string {
    return `${this.processId}/${client.id}`;
  }

  // ── Broadcast ─────────────────────────────────────────────────────────────

  /**
   * Sends `message` to every client the options name, in every process
   * sharing the prefix: the members of `rooms`, the connections of `users`,
   * or, naming neither, every client; each client once, except those in
   * `except` and the members of `exceptRooms`. Raw bytes are written as they
   * are; a typed message (`{ type, payload }`) is serialized once here and
   * framed once per server in each process. Delivery goes through each
   * client's output buffer and limits (a client past its hard limit is
   * closed, `output-limit`; the others are never slowed).
   *
   * Returns what happened beyond this process: `'published'`, `'queued'`
   * (Redis down or busy: sent when it is back, unless the message ages
   * past `maxQueueAgeMs`), `'dropped'` (the queue is full: counted and
   * reported by `'dropped'`), or `'local'` (`local: true`). It never throws
   * because Redis is down.
   *
   * @throws NetloopError `NETLOOP_ADAPTER_CLOSED` after close;
   *   `NETLOOP_INVALID_VALUE` for a message of no known kind, too large
   *   (`maxMessageBytes`), a bad name, or what the registry refuses;
   *   `NETLOOP_UNKNOWN_TYPE`; `NETLOOP_INVALID_OPTION` for bad options.
   */
  broadcast(message: RoomsMessage, options: RoomsBroadcastOptions = NO_OPTIONS): RoomsBroadcastResult {
    if (this.#closing !== null) throw new NetloopError(ErrorCode.ADAPTER_CLOSED, 'the rooms adapter is closed');
    checkObject('options', options);
    let type = -1;
    let payload: Buffer;
    if (typeof message === 'string') payload = Buffer.from(message, 'utf8');
    else if (message instanceof Uint8Array) payload = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    else if (typeof message === 'object' && message !== null && (typeof message.type === 'number' || typeof message.type === 'string')) {
      const encoded = this.#encodeTyped(message);
      type = encoded.id;
      payload = encoded.value;
    } else {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'broadcast takes bytes, a string or { type, payload }', {
        details: { got: message === null ? 'null' : typeof message },
      });
    }
    if (payload.length > this.#maxMessageBytes) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `a broadcast of ${payload.length} bytes exceeds maxMessageBytes ${this.#maxMessageBytes}`, {
        details: { bytes: payload.length, max: this.#maxMessageBytes },
      });
    }
    const targets = this.#targets(options);
    const except = this.#exceptRefs(options.except ?? null);
    const exceptRooms = list('exceptRooms', options.exceptRooms, this.#maxNameBytes);
    const local = options.local === undefined ? false : checkBoolean('local', options.local);
    if (!this.loopback || local) {
      let ids: Set<number> | null = null;
      for (const e of except) if (e.origin === this.processId) (ids ??= new Set()).add(e.id);
      this.#deliver(targets, ids, exceptRooms.length === 0 ? null : exceptRooms, type, payload);
    }
    if (local) return 'local';
    this.#broadcasts++;
    const channel = targets.length === 0 || this.#channels === 1 ? 0 : hashTarget(targets[0]!) % this.#channels;
    const seq = this.#seq[channel]!;
    this.#seq[channel] = seq + 1;
    const envelope = { origin: this.processId, seq, targets, except, exceptRooms, type, payload };
    const bytes = encodeEnvelope(envelope, envelopeSize(envelope, payload.length));
    return this.#link.publish(channel, bytes);
  }

  // ── Stats and close ───────────────────────────────────────────────────────

  /** A snapshot of the adapter's state and counters. */
  stats(): RoomsAdapterStats {
    const l = this.#link.counts();
    const m = this.#membership.counts();
    return {
      processId: this.processId,
      publisherUp: l.publisherUp,
      subscriberUp: l.subscriberUp,
      broadcasts: this.#broadcasts,
      published: l.published,
      inFlight: l.inFlight,
      queued: l.queued,
      queuedBytes: l.queuedBytes,
      dropped: { ...this.#dropped },
      received: this.#received,
      missed: this.#missed,
      malformed: this.#malformed,
      deliveries: this.#deliveries,
      outages: l.outages,
      ...m,
    };
  }

  /** True once {@link RoomsAdapter.close} was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * Stops: no more broadcasts (`NETLOOP_ADAPTER_CLOSED`), the queue is
   * dropped (counted as `closed`), the subscription and the adapter's own
   * clients are closed; a client given is left open. Memberships are
   * forgotten. Resolves once; the servers are not closed.
   */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      for (const s of this.#servers) s.off('close', this.#onClientClose);
      await this.#link.close();
      await this.#ready.catch(() => undefined);
    })());
  }

  // ── Internals ─────────────────────────────────────────────────────────────

  async #start(redis: string | PubSubClientLike): Promise<void> {
    let client: PubSubClientLike;
    const owned = typeof redis === 'string';
    if (owned) {
      let mod: typeof import('redis');
      try {
        mod = await import('redis');
      } catch (err) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, 'the rooms adapter needs the optional peer dependency "redis" (npm install redis) unless a client is given', {
          cause: err,
          details: { option: 'redis' },
        });
      }
      client = mod.createClient({
        url: redis,
        disableOfflineQueue: true,
        socket: {
          connectTimeout: CONNECT_TIMEOUT_MS,
          // Bounded exponential backoff with jitter, forever: the adapter keeps trying while the process lives.
          reconnectStrategy: (retries: number) => {
            const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(retries, 20));
            return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
          },
        },
      }) as unknown as PubSubClientLike;
    } else client = redis;
    if (this.#closing !== null) throw new NetloopError(ErrorCode.ADAPTER_CLOSED, 'the rooms adapter is closed');
    await this.#link.start(client, owned);
  }

  /** True when `client` may join: one of the servers' and not closed; throws for another server's. */
  #own(client: Client): boolean {
    if (!(client instanceof Client) || !this.#serverSet.has(client._owner)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'the client is not one of the rooms adapter servers\' clients', {
        details: { clientId: client instanceof Client ? client.id : null },
      });
    }
    if (this.#closing !== null) throw new NetloopError(ErrorCode.ADAPTER_CLOSED, 'the rooms adapter is closed');
    return !client.closed;
  }

  #encodeTyped(message: TypedMessage): { id: number; value: Buffer } {
    let id: number;
    let value: Uint8Array;
    if (this.#registry !== null) ({ id, value } = this.#registry.encode(message.type, message.payload));
    else if (typeof message.type === 'number' && message.payload instanceof Uint8Array) {
      id = message.type;
      value = message.payload;
    } else {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a typed broadcast without a registry takes a numeric type and bytes', {
        details: { type: String(message.type) },
      });
    }
    // Checked against this process's framing (type range, frame size) before anything is sent.
    this.#typedEncoder?.check(id, value);
    return { id, value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
  }

  #targets(options: RoomsBroadcastOptions): readonly Target[] {
    const rooms = list('rooms', options.rooms, this.#maxNameBytes);
    const users = list('users', options.users, this.#maxNameBytes);
    const n = rooms.length + users.length;
    if (n === 0) return NONE;
    if (n > this.#maxTargets) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `a broadcast names at most ${this.#maxTargets} rooms and users, got ${n}`, {
        details: { option: 'rooms', max: this.#maxTargets },
      });
    }
    const targets: Target[] = [];
    for (const name of rooms) targets.push({ kind: TARGET_ROOM, name });
    for (const name of users) targets.push({ kind: TARGET_USER, name });
    return targets;
  }

  #exceptRefs(except: RoomsBroadcastOptions['except']): readonly ClientRef[] {
    if (except === null || except === undefined) return NONE;
    const items: Iterable<Client | string> = except instanceof Client || typeof except === 'string' ? [except] : except;
    if (typeof (items as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'except must be a client, a client key, or several', { details: { option: 'except' } });
    }
    const refs: ClientRef[] = [];
    for (const item of items) {
      if (item instanceof Client) refs.push({ origin: this.processId, id: item.id });
      else {
        const slash = typeof item === 'string' ? item.lastIndexOf('/') : -1;
        const origin = slash > 0 ? (item as string).slice(0, slash) : '';
        const id = slash > 0 ? Number((item as string).slice(slash + 1)) : Number.NaN;
        if (!PROCESS_ID.test(origin) || !Number.isSafeInteger(id) || id < 0) {
          throw new NetloopError(ErrorCode.INVALID_OPTION, 'except takes clients or keys made by clientKey()', { details: { option: 'except' } });
        }
        refs.push({ origin, id });
      }
      if (refs.length > this.#maxTargets) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `a broadcast excepts at most ${this.#maxTargets} clients`, { details: { option: 'except', max: this.#maxTargets } });
      }
    }
    return refs;
  }

  /** Reads one message of channel `channel` (an envelope or a batch of them); never throws into the Redis client. */
  #onMessage(message: Buffer, channel: number): void {
    if (this.#closing !== null) return;
    // This process's own broadcasts come back too: skipped before they are decoded, unless delivered from here.
    if (!this.loopback && isFrom(message, this.#originBytes)) {
      this.#received += Math.max(1, envelopeCount(message));
      return;
    }
    if (message.length === 0 || message[0] !== BATCH_VERSION) {
      this.#receive(message, channel);
      return;
    }
    let parts: Buffer[];
    try {
      parts = splitBatch(message);
    } catch (err) {
      this.#received++;
      this.#refused(err);
      return;
    }
    // Each envelope of a batch on its own: one that is refused, or whose delivery fails, costs only itself.
    for (const part of parts) this.#receive(part, channel);
  }

  /** Reads and delivers one envelope. */
  #receive(message: Buffer, channel: number): void {
    this.#received++;
    try {
      const env = decodeEnvelope(message, this.processId);
      this.#track(env.origin, channel, env.seq);
      this.#deliver(env.targets, env.exceptIds, env.exceptRooms, env.type, env.payload);
    } catch (err) {
      this.#refused(err);
    }
  }

  /** Counts and reports what could not be read or delivered (malformed messages at most once per 10 s). */
  #refused(err: unknown): void {
    if (err instanceof NetloopError && err.code === ErrorCode.BAD_PAYLOAD) {
      this.#malformed++;
      const now = this.#clock.now();
      if (now - this.#lastMalformedReport < MALFORMED_REPORT_MS) return;
      this.#lastMalformedReport = now;
    }
    this._reportError(err, 'delivery');
  }

  /** Counts the messages of `origin` on `channel` that never arrived (a gap before `seq`). */
  #track(origin: string, channel: number, seq: number): void {
    let last = this.#origins.get(origin);
    if (last === undefined) {
      if (this.#origins.size >= this.#maxOrigins) this.#origins.delete(this.#origins.keys().next().value!);
      last = new Float64Array(this.#channels).fill(-1);
      this.#origins.set(origin, last);
    }
    const prev = last[channel]!;
    last[channel] = seq;
    if (prev < 0) return;
    // Modulo 2^32: a sequence that wraps is still a step of one. A step
    // backwards (a publisher that restarted with the same id) counts nothing.
    const gap = ((seq - prev) >>> 0) - 1;
    if (gap <= 0 || gap >= 2 ** 31) return;
    this.#missed += gap;
    this.emit('missed', { origin, messages: gap });
  }

  /**
   * Queues the message to this process's addressees: each once, through
   * its output buffer. Returns how many queued it.
   */
  #deliver(targets: readonly Target[], exceptIds: ReadonlySet<number> | null, exceptRooms: readonly string[] | null, type: number, payload: Buffer): number {
    const frames = new Frames(this.#encoderOf, type, payload);
    const m = this.#membership;
    const excluded = exceptIds === null && exceptRooms === null
      ? null
      : (c: Client): boolean => (exceptIds !== null && exceptIds.has(c.id)) || (exceptRooms !== null && m.inAny(c, exceptRooms));
    let n = 0;
    if (targets.length === 0) {
      const filter = excluded === null ? undefined : { filter: (c: Client) => !excluded(c) };
      for (const s of this.#servers) {
        const bytes = frames.of(s);
        if (bytes !== null) n += s.broadcast(bytes, filter);
      }
    } else {
      // A client named twice (two rooms, a room and its user) is reached once.
      const seen = targets.length > 1 || this.#users !== null ? new Set<Client>() : null;
      for (const t of targets) {
        if (t.kind === TARGET_ROOM) n += this.#sendAll(m.room(t.name), seen, excluded, frames);
        else {
          n += this.#sendAll(m.user(t.name), seen, excluded, frames);
          if (this.#users !== null) n += this.#sendAll(this.#users.clientsOfUser(t.name), seen, excluded, frames);
        }
      }
    }
    this.#deliveries += n;
    return n;
  }

  #sendAll(clients: Iterable<Client> | undefined, seen: Set<Client> | null, excluded: ((c: Client) => boolean) | null, frames: Frames): number {
    if (clients === undefined) return 0;
    let n = 0;
    for (const c of clients) {
      if (seen !== null) {
        if (seen.has(c)) continue;
        seen.add(c);
      }
      if (!c.writable || (excluded !== null && excluded(c))) continue;
      const bytes = frames.of(c._owner);
      if (bytes !== null && c.write(bytes)) n++;
    }
    return n;
  }

  /** The frame encoder of `owner` (a framed server's layout), or null for a server of raw clients. */
  readonly #encoderOf = (owner: object): LtvEncoder | null => {
    let e = this.#encoders.get(owner);
    if (e === undefined) {
      e = owner instanceof FramedServer ? new LtvEncoder({ layout: owner.layout }) : null;
      this.#encoders.set(owner, e);
    }
    return e;
  };

  readonly #onClientClose = (client: Client, _reason: CloseReason): void => {
    this.#membership.forget(client);
  };
}

/** True when `message` is an envelope or a batch whose origin field (from byte 2, in both) is `origin`. */
function isFrom(message: Buffer, origin: Buffer): boolean {
  return (
    message.length >= 2 + origin.length &&
    (message[0] === ENVELOPE_VERSION || message[0] === BATCH_VERSION) &&
    message.compare(origin, 0, origin.length, 2, 2 + origin.length) === 0
  );
}

/**
 * Makes a {@link RoomsAdapter} and resolves once it is subscribed (see
 * {@link RoomsAdapter.ready}); closes it and rejects when that fails.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
 */
export async function createRoomsAdapter(options: RoomsAdapterOptions): Promise<RoomsAdapter> {
  const adapter = new RoomsAdapter(options);
  try {
    await adapter.ready();
  } catch (err) {
    await adapter.close();
    throw err;
  }
  return adapter;
}
