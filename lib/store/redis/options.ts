/**
 * The options and events of the Redis store ({@link RedisStore} in
 * `redis-store.ts`), apart from the store so that its operations read on
 * their own. The store checks the options in its constructor.
 *
 * ```
 *   RedisStoreOptions ──new RedisStore──▶ RedisStore ──events──▶ RedisStoreEvents
 *     client | url, prefix, limits, indexes        error · change · feed
 * ```
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import type { NetloopError } from '../../core/errors.js';
import type { SessionChange } from '../contract.js';
import type { RedisClientLike, RedisClusterLike } from './connection.js';

/** Options of {@link RedisStore}. Give `client` or `url`, not both. */
export interface RedisStoreOptions {
  /**
   * A node-redis client (`createClient()`) or cluster (`createCluster()`)
   * made by the caller. The store neither connects nor closes it; connect
   * it yourself, and give it an `'error'` listener. Create a client with
   * `disableOfflineQueue: true` (a cluster with `defaults: {
   * disableOfflineQueue: true }`): otherwise commands cut off by a dropped
   * connection are replayed after the reconnection, after the store has
   * already reported them failed. The change feed subscribes on a duplicate
   * of a client (`client.duplicate()`), which the store closes.
   */
  client?: RedisClientLike | RedisClusterLike;
  /** A `redis://` or `rediss://` URL; the store creates, connects and closes its own client. Default `redis://127.0.0.1:6379` when no `client` is given. */
  url?: string;
  /**
   * The prefix of every key. Default `'netloop:'`. Stores with different
   * prefixes never see each other's sessions. On a cluster, a prefix with a
   * hash tag (`'{app}:'`) pins every key to one slot (one node: atomic
   * scripts and listing indexes); without one, keys spread over every master.
   */
  prefix?: string;
  /** The time source; liveness is judged by `clock.wallNow()`. Default {@link systemClock}. */
  clock?: Clock;
  /** The longest any operation takes before it rejects with `NETLOOP_STORE_UNAVAILABLE`, in ms. Default 2,000. */
  commandTimeoutMs?: number;
  /** Own client only: the longest one connection attempt may take, in ms. Default 2,000. */
  connectTimeoutMs?: number;
  /** Own client only: the longest pause between reconnection attempts, in ms (backoff doubles from 50 ms up to this). Default 2,000. */
  reconnectMaxDelayMs?: number;
  /** Own client only: the most commands queued or awaiting replies; more are refused. Default 100,000. */
  maxQueuedCommands?: number;
  /** Page size when `list` is given no `limit`. Default 100. */
  defaultPageSize?: number;
  /** The largest page `list` returns, whatever `limit` asks. Default 10,000. */
  maxPageSize?: number;
  /** How many expired sessions one pruning script removes before yielding to other clients. Default 1,000. */
  pruneBatch?: number;
  /**
   * How much longer than its logical expiry a session's keys live in Redis, in
   * ms. Default 0: `PX = expiresAt - now`. Liveness is always judged by
   * `expiresAt` against the clock, so a grace never revives a session; it only
   * keeps the keys around while processes whose clocks lag the writer's
   * (clock skew between machines) may still consider the session live.
   */
  expiryGraceMs?: number;
  /**
   * Keep the listing indexes (`i:created`, `i:state:*`, `i:expires`,
   * `i:online`): `list`, `count`, `onlineCount` and `onlineUsers` answer from
   * them in O(log n + page). Default true on one node. False (the only
   * choice on a spread cluster) saves a third of a create's writes and half
   * of a heartbeat's; those four then walk the keys with `SCAN`: O(keys).
   */
  listing?: boolean;
  /**
   * Keep the token hash index (`getByTokenHash`). Default true. The session
   * registry never uses it (its tokens name their session); without it,
   * `getByTokenHash` throws `NETLOOP_INVALID_OPTION` and a create does one
   * write less.
   */
  tokenIndex?: boolean;
  /** How long a published change's tombstone is kept, in ms. Default 300,000 (5 min); range [1,000, 86,400,000]. */
  tombstoneTtlMs?: number;
  /**
   * Own client only: called with each connection error (wrapped as
   * `NETLOOP_STORE_UNAVAILABLE`); the client keeps reconnecting. A shorthand
   * for `store.on('error', onError)`: called guarded, a throw or a rejected
   * promise of it is reported as a process warning
   * (`NETLOOP_HANDLER_ERROR`), never thrown.
   */
  onError?: (err: NetloopError) => void;
}

/** The events of a Redis store. */
export interface RedisStoreEvents {
  /**
   * A connection error of a client the store created (wrapped as
   * `NETLOOP_STORE_UNAVAILABLE`; the client keeps reconnecting, and every
   * operation meanwhile rejects on its own within `commandTimeoutMs`), or a
   * message on the change channel that is not a change
   * (`NETLOOP_STORE_CORRUPT`). Nothing is reported when nobody listens. A
   * listener that throws or rejects is reported as a process warning
   * (`NETLOOP_HANDLER_ERROR`).
   */
  error: (err: NetloopError) => void;
  /** A change published by a process sharing the store (this one included). */
  change: (change: SessionChange) => void;
  /** The change feed's subscription was established (`'up'`, again after each reconnection) or lost (`'down'`). */
  feed: (state: 'up' | 'down') => void;
}
