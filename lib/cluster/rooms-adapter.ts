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
 * @module
 */

import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { TypedEmitter } from '../core/emitter.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkObject } from '../core/validate.js';
import { Client } from '../reactor/client.js';
import { Server } from '../reactor/server.js';
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
import type { ConnectionName, DropReason, PubSubClientLike } from './pubsub-link.js';

export type { PubSubClientLike, DropReason, ConnectionName } from './pubsub-link.js';

/**
 * Where the adapter finds a user's connections besides those given to
 * {@link RoomsAdapter.setUser}: a `SessionBinding` fits (its
 * `clientsOfUser`), so users follow their sessions with no extra call.
 */
export interface UserDirectory {
  clientsOfUser(userId: string): Iterable<Client>;
}

/** Options of {@link RoomsAdapter}. Every limit is finite and validated. */
export interface RoomsAdapterOptions {
  /** The server, or servers, whose clients join rooms; a closed client leaves every room at once. */
  server: AnyServer | readonly AnyServer[];
  /**
   * A node-redis client (`createClient()`, connected, with an `'error'`
   * listener) or cluster (`createCluster()`), or a `redis://` URL. The
   * adapter publishes with it and subscribes with a `duplicate()` of it,
   * which it connects and closes; a client given is never closed by the
   * adapter. From a URL it makes its own client (the optional peer
   * dependency `redis`), reconnecting with a backoff of 50 ms to 2 s.
   */
  redis: string | PubSubClientLike;
  /** The channels' prefix: adapters with the same prefix (and Redis) share their broadcasts. Default `'netloop:rooms:'`. */
  prefix?: string;
  /** This process's id in the envelopes (1 to 64 of `A-Za-z0-9._:-`); default 16 random hex digits. */
  processId?: string;
  /**
   * How many channels broadcasts are spread over, by a hash of their first
   * room or user (every process subscribes to all of them). More than one
   * spreads the load over a cluster's nodes; order then holds per channel
   * only. Default 1, or 16 on a cluster. 1 to 1024.
   */
  channels?: number;
  /** Sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7): default true on a cluster, false on a single node. */
  sharded?: boolean;
  /** Deliver only what comes back from Redis, this process's own broadcasts included (one order everywhere); default false. */
  loopback?: boolean;
  /** The registry typed messages are serialized with; default the first framed server's. */
  registry?: MessageRegistry | null;
  /** Where a user's connections are found besides {@link RoomsAdapter.setUser} (a `SessionBinding`); default none. */
  users?: UserDirectory | null;
  /** The clock of the queue's ages and the outages' lengths; default the system clock. */
  clock?: Clock;
  /** Broadcasts held while the publisher is down or busy; more are dropped (`queue-full`). Default 10,000. */
  maxQueuedMessages?: number;
  /** Bytes held in that queue; default 16 MiB. */
  maxQueuedBytes?: number;
  /** A queued broadcast older than this is dropped (`expired`) instead of sent late, in ms; default 10,000. */
  maxQueueAgeMs?: number;
  /** PUBLISH commands awaiting their reply (a batch is one); more wait in the queue. Default 10,000. */
  maxInFlight?: number;
  /**
   * The broadcasts one process makes in one synchronous run (a callback and
   * its microtasks) on one channel travel as one Redis message of at most
   * this many bytes of envelopes, which costs Redis, the publisher and
   * every subscriber one message instead of one per broadcast; a larger
   * broadcast goes alone. 0 sends every broadcast alone (as adapters of
   * versions that read no batches expect). Default 64 KiB; at most 64 MiB.
   */
  maxBatchBytes?: number;
  /** The largest message (payload) a broadcast takes, in bytes; default 1 MiB. */
  maxMessageBytes?: number;
  /** Rooms one client may be in; default 1,024. */
  maxRoomsPerClient?: number;
  /** The longest room name or user id, in UTF-8 bytes; default 256. */
  maxNameBytes?: number;
  /** Rooms and users one broadcast may name; default 256. */
  maxTargets?: number;
  /** Publishers whose sequence this process remembers (to count what it missed); default 4,096. */
  maxOrigins?: number;
}

/** Defaults of {@link RoomsAdapterOptions}. */
export const ROOMS_DEFAULTS = Object.freeze({
  prefix: 'netloop:rooms:',
  channels: 1,
  clusterChannels: 16,
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxQueueAgeMs: 10_000,
  maxInFlight: 10_000,
  maxBatchBytes: 64 * 1024,
  maxMessageBytes: 1024 * 1024,
  maxRoomsPerClient: 1024,
  maxNameBytes: 256,
  maxTargets: 256,
  maxOrigins: 4096,
});

/** What a broadcast sends: raw bytes (a string is UTF-8), written as they are, or a typed message for framed servers. */
export type RoomsMessage = Uint8Array | string | TypedMessage;

/** Who a broadcast reaches. Without rooms and users: every client of every process. */
export interface RoomsBroadcastOptions {
  /** The members of these rooms, in every process. */
  rooms?: string | readonly string[];
  /** The connections of these users, in every process. A client in several is reached once. */
  users?: string | readonly string[];
  /** Left out: clients of this process, or any process's by {@link RoomsAdapter.clientKey}. */
  except?: Client | string | Iterable<Client | string> | null;
  /** Left out: the members of these rooms. */
  exceptRooms?: string | readonly string[];
  /** This process's members only: nothing is published. */
  local?: boolean;
}

/** What {@link RoomsAdapter.broadcast} did beyond this process: published, queued (Redis down or busy), dropped (counted), or local only. */
export type RoomsBroadcastResult = 'published' | 'queued' | 'dropped' | 'local';

/** What `'dropped'` reports. */
export interface RoomsDropInfo {
  reason: DropReason;
  messages: number;
  bytes: number;
}

/** The events of a {@link RoomsAdapter}. */
export interface RoomsAdapterEvents {
  /**
   * A Redis connection went down (`NETLOOP_PUBSUB_UNAVAILABLE`, once per
   * outage, `details.connection`), a cluster node failed, a malformed
   * message came on the channel (`NETLOOP_BAD_PAYLOAD`, at most once per
   * 10 s), or a delivery failed. Without a listener, reported as a warning.
   */
  error: (error: NetloopError) => void;
  /** A connection is back after an outage of `downMs`; the publisher's queue is being sent. */
  reconnected: (info: { connection: ConnectionName; downMs: number }) => void;
  /** Broadcasts of this process that will never be delivered by Redis. */
  dropped: (info: RoomsDropInfo) => void;
  /** Broadcasts of another process (or this one, with loopback) that this process did not receive. */
  missed: (info: { origin: string; messages: number }) => void;
}

/** A snapshot of a {@link RoomsAdapter}'s state and counters. */
export interface RoomsAdapterStats {
  processId: string;
  publisherUp: boolean;
  subscriberUp: boolean;
  /** Broadcasts made (published, queued or dropped; not the local-only ones). */
  broadcasts: number;
  /** Broadcasts whose PUBLISH was answered. */
  published: number;
  /** PUBLISH commands awaiting their reply (a batch of broadcasts is one). */
  inFlight: number;
  /** Broadcasts waiting in the queue, and their bytes. */
  queued: number;
  queuedBytes: number;
  /** Broadcasts dropped, by reason. */
  dropped: Record<DropReason, number>;
  /** Envelopes read from the channels (this process's own included). */
  received: number;
  /** Broadcasts of publishers this process did not receive (gaps in their sequences). */
  missed: number;
  /** Messages on the channels that were not envelopes. */
  malformed: number;
  /** Messages queued to clients (one per client per broadcast). */
  deliveries: number;
  /** Connection outages seen. */
  outages: number;
  rooms: number;
  members: number;
  memberships: number;
  users: number;
}

const PROCESS_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const MALFORMED_REPORT_MS = 10_000;
/** Own clients reconnect with a backoff doubling from this, ... */
const RECONNECT_BASE_MS = 50;
/** ... up to this. */
const RECONNECT_MAX_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;
const NO_OPTIONS: RoomsBroadcastOptions = Object.freeze({});

/** Shared by every broadcast that names no rooms, users or exceptions (never written to). */
const NONE: readonly never[] = Object.freeze([]);

function list(name: string, value: string | readonly string[] | undefined, maxBytes: number): readonly string[] {
  if (value === undefined) return NONE;
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a string or an array of strings`, { details: { option: name } });
  }
  for (const item of items) checkName(name, item, maxBytes);
  return items;
}

function checkName(what: string, name: unknown, maxBytes: number): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name, 'utf8') > maxBytes) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `${what}: a name must be a non-empty string of at most ${maxBytes} UTF-8 bytes`, {
      details: { option: what, maxBytes },
    });
  }
  return name;
}

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
    checkObject('options', options);
    const servers = Array.isArray(options.server) ? [...(options.server as readonly AnyServer[])] : [options.server as AnyServer];
    if (servers.length === 0 || servers.some((s) => !(s instanceof Server))) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'server must be a Server (or FramedServer), or a non-empty array of them', {
        details: { option: 'server' },
      });
    }
    const redis = options.redis;
    const isUrl = typeof redis === 'string';
    if (isUrl ? !/^rediss?:\/\//.test(redis) : typeof redis !== 'object' || redis === null || typeof redis.duplicate !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'redis must be a redis:// URL or a node-redis client or cluster', { details: { option: 'redis' } });
    }
    const prefix = options.prefix ?? ROOMS_DEFAULTS.prefix;
    if (typeof prefix !== 'string' || Buffer.byteLength(prefix, 'utf8') > 256) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'prefix must be a string of at most 256 bytes', { details: { option: 'prefix' } });
    }
    const processId = options.processId ?? randomBytes(8).toString('hex');
    if (typeof processId !== 'string' || !PROCESS_ID.test(processId)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'processId must be 1 to 64 of A-Za-z0-9._:-', { details: { option: 'processId' } });
    }
    const isCluster = !isUrl && (redis as PubSubClientLike).isReady === undefined;
    const sharded = checkBoolean('sharded', options.sharded ?? isCluster);
    const channels = checkInteger('channels', options.channels ?? (isCluster ? ROOMS_DEFAULTS.clusterChannels : ROOMS_DEFAULTS.channels), 1, 1024);
    const d = ROOMS_DEFAULTS;
    const maxQueuedMessages = checkInteger('maxQueuedMessages', options.maxQueuedMessages ?? d.maxQueuedMessages, 0, 2 ** 31 - 1);
    const maxQueuedBytes = checkInteger('maxQueuedBytes', options.maxQueuedBytes ?? d.maxQueuedBytes, 0, 2 ** 40);
    const maxQueueAgeMs = checkInteger('maxQueueAgeMs', options.maxQueueAgeMs ?? d.maxQueueAgeMs, 0, 2 ** 31 - 1);
    const maxInFlight = checkInteger('maxInFlight', options.maxInFlight ?? d.maxInFlight, 1, 2 ** 31 - 1);
    const maxBatchBytes = checkInteger('maxBatchBytes', options.maxBatchBytes ?? d.maxBatchBytes, 0, 64 * 1024 * 1024);
    this.#maxMessageBytes = checkInteger('maxMessageBytes', options.maxMessageBytes ?? d.maxMessageBytes, 0, 512 * 1024 * 1024);
    this.#maxNameBytes = checkInteger('maxNameBytes', options.maxNameBytes ?? d.maxNameBytes, 1, 65_535);
    this.#maxTargets = checkInteger('maxTargets', options.maxTargets ?? d.maxTargets, 1, 65_535);
    this.#maxOrigins = checkInteger('maxOrigins', options.maxOrigins ?? d.maxOrigins, 1, 2 ** 20);
    const maxRooms = checkInteger('maxRoomsPerClient', options.maxRoomsPerClient ?? d.maxRoomsPerClient, 1, 2 ** 20);
    this.loopback = checkBoolean('loopback', options.loopback ?? false);
    const users = options.users ?? null;
    if (users !== null && typeof users.clientsOfUser !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'users must have clientsOfUser(userId)', { details: { option: 'users' } });
    }
    const clock = options.clock ?? systemClock;
    if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'clock must be a Clock', { details: { option: 'clock' } });
    }
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
    this.#membership = new Membership(maxRooms);
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
        sharded,
        clock,
        maxQueuedMessages,
        maxQueuedBytes,
        maxQueueAgeMs,
        maxInFlight,
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
    const frames = new Frames(this, type, payload);
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

  /** @internal The frame encoder of `owner` (a framed server's layout), or null for a server of raw clients. */
  _encoderOf(owner: object): LtvEncoder | null {
    let e = this.#encoders.get(owner);
    if (e === undefined) {
      e = owner instanceof FramedServer ? new LtvEncoder({ layout: owner.layout }) : null;
      this.#encoders.set(owner, e);
    }
    return e;
  }

  readonly #onClientClose = (client: Client, _reason: CloseReason): void => {
    this.#membership.forget(client);
  };
}

/**
 * The bytes of one broadcast for each owner: the payload itself when raw;
 * for a typed message, one frame per owner (server), made on first need.
 *
 * ```
 *   last owner ─▶ last frame      (the common case: one server)
 *   more owners ─▶ Map<owner, frame | null>
 * ```
 */
class Frames {
  readonly #adapter: RoomsAdapter;
  readonly #type: number;
  readonly #payload: Buffer;
  #lastOwner: object | null = null;
  #lastFrame: Buffer | null = null;
  #more: Map<object, Buffer | null> | null = null;

  constructor(adapter: RoomsAdapter, type: number, payload: Buffer) {
    this.#adapter = adapter;
    this.#type = type;
    this.#payload = payload;
  }

  of(owner: object): Buffer | null {
    if (this.#type < 0) return this.#payload;
    if (owner === this.#lastOwner) return this.#lastFrame;
    let frame = this.#more?.get(owner);
    if (frame === undefined) {
      const encoder = this.#adapter._encoderOf(owner);
      // A server whose layout cannot carry this frame (type range, size) is skipped, as a raw server is.
      frame = encoder === null ? null : safeEncode(encoder, this.#type, this.#payload);
      if (this.#lastOwner !== null) (this.#more ??= new Map([[this.#lastOwner, this.#lastFrame]])).set(owner, frame);
    }
    this.#lastOwner = owner;
    this.#lastFrame = frame;
    return frame;
  }
}

/** True when `message` is an envelope or a batch whose origin field (from byte 2, in both) is `origin`. */
function isFrom(message: Buffer, origin: Buffer): boolean {
  return (
    message.length >= 2 + origin.length &&
    (message[0] === ENVELOPE_VERSION || message[0] === BATCH_VERSION) &&
    message.compare(origin, 0, origin.length, 2, 2 + origin.length) === 0
  );
}

function safeEncode(encoder: LtvEncoder, type: number, value: Buffer): Buffer | null {
  try {
    return encoder.encode(type, value);
  } catch {
    return null;
  }
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
