/**
 * The options and events of the etcd store ({@link EtcdStore} in
 * `etcd-store.ts`), apart from the store so that its operations read on
 * their own. The store checks the options in its constructor.
 *
 * ```
 *   EtcdStoreOptions ──new EtcdStore──▶ EtcdStore ──events──▶ EtcdStoreEvents
 *     hosts, credentials, prefix, limits, leases      error · change · feed
 * ```
 *
 * @module
 */

import type { Clock } from '../../core/clock.js';
import type { NetloopError } from '../../core/errors.js';
import type { SessionFeedEvents } from '../contract.js';
import type { EtcdAuth, EtcdCredentials } from './credentials.js';

/** Options of {@link EtcdStore}. */
export interface EtcdStoreOptions {
  /** The etcd endpoints, e.g. `['http://10.0.0.1:2379', 'http://10.0.0.2:2379']`. Default `'http://127.0.0.1:2379'`. */
  hosts?: string | readonly string[];
  /** TLS material (an `https://` endpoint without it uses the system's certificate authorities). */
  credentials?: EtcdCredentials;
  /** etcd user and password, when etcd's authentication is on. */
  auth?: EtcdAuth;
  /** The prefix of every key, a non-empty string. Default `'netloop/'`. Stores with different prefixes never see each other's sessions. */
  prefix?: string;
  /** The time source; liveness is judged by `clock.wallNow()`. Default {@link systemClock}. */
  clock?: Clock;
  /** The longest any operation takes before it rejects with `NETLOOP_STORE_UNAVAILABLE`, in ms. Default 2,000. */
  commandTimeoutMs?: number;
  /** The longest one connection attempt may take, in ms. Default 2,000. */
  connectTimeoutMs?: number;
  /** The longest pause between reconnection attempts (of the feed's watch, and of a failed endpoint among several), in ms. Default 2,000. */
  reconnectMaxDelayMs?: number;
  /**
   * The width of a lease bucket, in ms (whole seconds; at least 1,000): a
   * session's keys live in etcd until the end of the bucket their expiry
   * falls in, so up to this much past the expiry. Default 5,000.
   */
  leaseBucketMs?: number;
  /**
   * How much longer than its logical expiry a session's keys live in etcd,
   * in ms. Default 0. Liveness is always judged by `expiresAt` against the
   * clock, so a grace never revives a session; it keeps the keys for
   * processes whose clocks lag the writer's.
   */
  expiryGraceMs?: number;
  /** Page size when `list` is given no `limit`, and of `onlineUsers`. Default 100. */
  defaultPageSize?: number;
  /** The largest page `list` and `onlineUsers` return, whatever `limit` asks. Default 10,000. */
  maxPageSize?: number;
  /** Keys read per request when listing, counting or answering presence. Default 1,000. */
  scanBatch?: number;
  /**
   * Records this process remembers with their revisions, so that its next
   * write of one (a heartbeat) is one round trip instead of two. 0 turns it
   * off. Default 10,000.
   */
  cacheSize?: number;
  /** How long a published change stays in etcd for the feed's watchers, in ms. Default 60,000. */
  changeTtlMs?: number;
  /** How long a session's tombstone (its last published change) is kept, in ms. Default 300,000. */
  tombstoneTtlMs?: number;
  /**
   * History kept when the store compacts behind itself, in ms; 0 leaves
   * compaction to etcd (`--auto-compaction-retention`). Default 300,000.
   */
  compactionRetentionMs?: number;
  /**
   * Called with each error of the feed or of compaction (the store goes on).
   * A shorthand for `store.on('error', onError)`: called guarded, a throw or
   * a rejected promise of it is reported as a process warning
   * (`NETLOOP_HANDLER_ERROR`), never thrown.
   */
  onError?: (err: NetloopError) => void;
}

/** The events of an etcd store. */
export interface EtcdStoreEvents extends SessionFeedEvents {
  /**
   * An error of the change feed (its watch was lost or cancelled; it is
   * opened again by itself) or of compaction, as a coded error. Operations
   * report their own errors by rejecting. Nothing is reported when nobody
   * listens.
   */
  error: (err: NetloopError) => void;
}
