/**
 * The public shapes of the rooms adapter ({@link RoomsAdapter} in
 * `rooms-adapter.ts`): its options and their defaults, what a broadcast
 * takes and returns, its events and its counters; and the one function that
 * checks the options, so the adapter's constructor only wires what they say.
 *
 * ```
 *   RoomsAdapterOptions ──resolveRoomsOptions──▶ ResolvedRoomsOptions ──▶ new RoomsAdapter
 *   broadcast(RoomsMessage, RoomsBroadcastOptions) ──▶ RoomsBroadcastResult
 *   events: RoomsAdapterEvents (RoomsDropInfo, ...)      stats(): RoomsAdapterStats
 * ```
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkObject } from '../core/validate.js';
import type { Client } from '../reactor/client.js';
import { Server } from '../reactor/server.js';
import type { AnyServer } from '../reactor/server.js';
import type { TypedMessage } from '../reactor/loop-member.js';
import type { MessageRegistry } from '../codec/message-registry.js';
import type { ConnectionName, DropReason, PubSubClientLike } from './pubsub-link.js';

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

/** Shared by every broadcast that names no rooms, users or exceptions (never written to). */
export const NONE: readonly never[] = Object.freeze([]);

/** The names of a broadcast's `rooms` or `users` option, each checked (none: {@link NONE}). */
export function list(name: string, value: string | readonly string[] | undefined, maxBytes: number): readonly string[] {
  if (value === undefined) return NONE;
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a string or an array of strings`, { details: { option: name } });
  }
  for (const item of items) checkName(name, item, maxBytes);
  return items;
}

/** A room or user name: a non-empty string of at most `maxBytes` UTF-8 bytes, or `NETLOOP_INVALID_VALUE`. */
export function checkName(what: string, name: unknown, maxBytes: number): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name, 'utf8') > maxBytes) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `${what}: a name must be a non-empty string of at most ${maxBytes} UTF-8 bytes`, {
      details: { option: what, maxBytes },
    });
  }
  return name;
}

/** A process id as the envelopes carry it. */
export const PROCESS_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** {@link RoomsAdapterOptions} checked, with their defaults filled in. */
export interface ResolvedRoomsOptions {
  readonly servers: readonly AnyServer[];
  readonly redis: string | PubSubClientLike;
  readonly prefix: string;
  readonly processId: string;
  readonly sharded: boolean;
  readonly channels: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly maxQueueAgeMs: number;
  readonly maxInFlight: number;
  readonly maxBatchBytes: number;
  readonly maxMessageBytes: number;
  readonly maxNameBytes: number;
  readonly maxTargets: number;
  readonly maxOrigins: number;
  readonly maxRoomsPerClient: number;
  readonly loopback: boolean;
  readonly users: UserDirectory | null;
  readonly clock: Clock;
}

/**
 * Checks the options of a {@link RoomsAdapter} and fills in the defaults;
 * a cluster client (no `isReady`) defaults to sharded pub/sub and more
 * channels.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` naming the option.
 */
export function resolveRoomsOptions(options: RoomsAdapterOptions): ResolvedRoomsOptions {
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
  const maxMessageBytes = checkInteger('maxMessageBytes', options.maxMessageBytes ?? d.maxMessageBytes, 0, 512 * 1024 * 1024);
  const maxNameBytes = checkInteger('maxNameBytes', options.maxNameBytes ?? d.maxNameBytes, 1, 65_535);
  const maxTargets = checkInteger('maxTargets', options.maxTargets ?? d.maxTargets, 1, 65_535);
  const maxOrigins = checkInteger('maxOrigins', options.maxOrigins ?? d.maxOrigins, 1, 2 ** 20);
  const maxRoomsPerClient = checkInteger('maxRoomsPerClient', options.maxRoomsPerClient ?? d.maxRoomsPerClient, 1, 2 ** 20);
  const loopback = checkBoolean('loopback', options.loopback ?? false);
  const users = options.users ?? null;
  if (users !== null && typeof users.clientsOfUser !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'users must have clientsOfUser(userId)', { details: { option: 'users' } });
  }
  const clock = options.clock ?? systemClock;
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'clock must be a Clock', { details: { option: 'clock' } });
  }
  return {
    servers,
    redis,
    prefix,
    processId,
    sharded,
    channels,
    maxQueuedMessages,
    maxQueuedBytes,
    maxQueueAgeMs,
    maxInFlight,
    maxBatchBytes,
    maxMessageBytes,
    maxNameBytes,
    maxTargets,
    maxOrigins,
    maxRoomsPerClient,
    loopback,
    users,
    clock,
  };
}
