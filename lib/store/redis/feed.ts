/**
 * The Redis store's change feed: one channel per key prefix, a subscriber
 * connection of its own (pub/sub needs one), and the events it gives the
 * store.
 *
 * ```
 *   single node   PUBLISH P changes <json>         a duplicate of the client, SUBSCRIBE
 *   cluster       SPUBLISH P changes <json>        the cluster's sharded pub/sub client of the
 *                 (the channel's slot's master)    channel's shard (SSUBSCRIBE)
 *   subscribed ──▶ 'feed' 'up'   (again after every reconnection: node-redis subscribes
 *                                 again before it reports the connection ready)
 *   connection lost ──▶ 'feed' 'down'            message ──JSON, checked──▶ 'change'
 * ```
 *
 * Delivery is at most once per subscriber connection: what is published
 * while it is down is lost, which `'up'` tells the registry (it then
 * reconciles with the store).
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { SessionChange } from '../contract.js';
import { copySessionChange, validateSessionChange } from '../record.js';
import type { RedisClientLike, RedisConnection } from './connection.js';
import { closeClient } from './connection.js';

/** What the feed tells the store. */
export interface FeedSink {
  change(change: SessionChange): void;
  state(state: 'up' | 'down'): void;
  /** A message on the channel that is not a change, or a subscription that failed. */
  error(err: NetloopError): void;
}

/** See the module documentation. */
export class RedisFeed {
  readonly #conn: RedisConnection;
  readonly #channel: string;
  readonly #sink: FeedSink;
  readonly #timeoutMs: number;
  #starting: Promise<void> | null = null;
  #stopped = false;
  #up = false;
  #sub: RedisClientLike | null = null;
  /** The cluster's pub/sub client of the channel's shard, watched for reconnections. */
  #watched: RedisClientLike | null = null;
  /** Settles when stop() is called: a connection attempt against an unreachable server waits for nothing else. */
  #halt!: () => void;
  readonly #halted = new Promise<void>((resolve) => (this.#halt = resolve));

  constructor(conn: RedisConnection, channel: string, sink: FeedSink, timeoutMs: number) {
    this.#conn = conn;
    this.#channel = channel;
    this.#sink = sink;
    this.#timeoutMs = timeoutMs;
  }

  /** Subscribes (once; again after a failed attempt). A failure goes to the sink's `error`. */
  start(): void {
    if (this.#starting !== null || this.#stopped) return;
    this.#starting = this.#subscribe().catch((err: unknown) => {
      this.#starting = null;
      if (this.#stopped) return;
      this.#sink.error(this.#conn.wrap('subscribe', err));
      // Try again later: the store's feed is what other processes' changes arrive by.
      const timer = setTimeout(() => this.start(), 1_000);
      timer.unref();
    });
  }

  /** Unsubscribes and closes the subscriber connection; idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#halt();
    this.#unwatch();
    // The subscriber connection is closed before the subscription attempt is awaited: against an
    // unreachable server that attempt retries until its connection is closed.
    const sub = this.#sub;
    this.#sub = null;
    if (sub !== null && sub.isOpen) await closeClient(sub, this.#timeoutMs);
    await this.#starting?.catch(() => undefined);
    const cluster = this.#conn.cluster;
    if (cluster !== null) {
      await cluster.sUnsubscribe(this.#channel, this.#onMessage).catch(() => undefined);
    }
  }

  async #subscribe(): Promise<void> {
    const cluster = this.#conn.cluster;
    if (cluster !== null) {
      await cluster.sSubscribe(this.#channel, this.#onMessage);
      if (this.#stopped) return;
      // The shard's pub/sub client reconnects and subscribes again by itself: its 'ready' says so.
      const client = this.#shardClient();
      if (client !== null) this.#watch(client);
      this.#setUp(true);
      return;
    }
    const sub = await this.#conn.subscriberClient();
    this.#sub = sub;
    if (this.#stopped) return;
    // node-redis's connect() retries until the server answers or the client is closed.
    await Promise.race([sub.connect(), this.#halted]);
    if (this.#stopped) return;
    if (typeof sub.subscribe !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'the redis client cannot subscribe', { details: { option: 'client' } });
    }
    await sub.subscribe(this.#channel, this.#onMessage);
    if (this.#stopped) return;
    this.#watch(sub);
    this.#setUp(true);
  }

  /** The cluster's sharded pub/sub client of the channel's master, when node-redis shows it. */
  #shardClient(): RedisClientLike | null {
    const cluster = this.#conn.cluster;
    if (cluster === null) return null;
    const address = this.#conn.nodeOf(this.#channel);
    const master = cluster.masters.find((m) => m.address === address);
    return master?.pubSub?.client ?? null;
  }

  #watch(client: RedisClientLike): void {
    this.#watched = client;
    client.on('ready', this.#onReady);
    client.on('end', this.#onDown);
    client.on('reconnecting', this.#onDown);
  }

  #unwatch(): void {
    const client = this.#watched;
    this.#watched = null;
    if (client === null) return;
    client.off('ready', this.#onReady);
    client.off('end', this.#onDown);
    client.off('reconnecting', this.#onDown);
  }

  #setUp(up: boolean): void {
    if (this.#stopped || up === this.#up) return;
    this.#up = up;
    this.#sink.state(up ? 'up' : 'down');
  }

  readonly #onReady = (): void => this.#setUp(true);
  readonly #onDown = (): void => this.#setUp(false);

  readonly #onMessage = (message: string): void => {
    let change: unknown;
    try {
      change = JSON.parse(message);
    } catch {
      change = undefined;
    }
    const bad = validateSessionChange(change);
    if (bad !== null) {
      this.#sink.error(
        new NetloopError(ErrorCode.STORE_CORRUPT, `redis store: a message on ${this.#channel} is not a session change (${bad})`, {
          details: { channel: this.#channel, reason: bad },
        }),
      );
      return;
    }
    this.#sink.change(copySessionChange(change as SessionChange));
  };
}
