/**
 * The rooms adapter's way through Redis: a publishing connection with a
 * bounded queue, and a subscribing connection on the adapter's channels.
 *
 * ```
 *   publish(channel, bytes)
 *     queue empty, publisher up, room (see hasRoom) ──▶ staged on its channel   ('published')
 *     else ──▶ evict expired heads ──▶ room in the queue? ──▶ queued            ('queued')
 *                                                   └─ no ──▶ dropped: queue-full ('dropped')
 *   staged[channel]: envelopes of this synchronous run, up to the batch's bytes and count
 *     ──▶ at the end of the run (a microtask), or when full, one PUBLISH / SPUBLISH:
 *         one envelope alone, or several combined into a batch (one inFlight each)
 *   reply ─▶ inFlight-- ─▶ drain          error reply / connection lost ─▶ dropped: failed (all it carried)
 *   publisher 'ready' (back) ─▶ drain: older than maxQueueAgeMs ─▶ dropped: expired; else staged and sent
 *
 *   queue: [ { channel, bytes, at } ... ]   head index; compacted when half is consumed
 *          bounded by maxQueuedMessages and maxQueuedBytes; FIFO, so order is kept
 *
 *   subscriber: one (S)SUBSCRIBE per channel, each with its own listener (a
 *   sharded subscription must stay within one hash slot); node-redis
 *   resubscribes by itself after a reconnection, before 'ready'.
 * ```
 *
 * Connection states are tracked from node-redis's `'ready'`,
 * `'reconnecting'`, `'error'` and `'end'` events (a single-node client's
 * `isReady`); a cluster client has no single state, so it counts as up
 * while open, and what fails on one of its nodes is counted as `failed`.
 * Staging costs no latency: node-redis writes its commands on the next
 * turn of the loop (setImmediate), after the microtask that sends the
 * staged batches. A staged batch is a PUBLISH to come, so it counts
 * against maxInFlight beside those awaiting their reply. Nothing is ever
 * retried after it reached Redis: a PUBLISH that fails may or may not have
 * been delivered, so resending could deliver twice; the receivers'
 * sequence numbers count what they missed instead.
 *
 * @module
 */

import type { Clock } from '../core/clock.js';
import { ErrorCode, NetloopError } from '../core/errors.js';

/**
 * The part of a node-redis v5 client (`createClient()`) or cluster
 * (`createCluster()`) the rooms adapter uses. The adapter publishes with
 * the client it is given (a store may share it) and subscribes with a
 * `duplicate()` of it, which it connects and closes itself.
 */
export interface PubSubClientLike {
  /** True between `connect()` and `close()`, also while reconnecting. */
  readonly isOpen: boolean;
  /** A single-node client: true while connected and ready. A cluster has none. */
  readonly isReady?: boolean;
  publish(channel: string, message: Buffer): Promise<unknown>;
  sPublish(channel: string, message: Buffer): Promise<unknown>;
  /**
   * A single-node client's raw command: when present (node-redis has it),
   * the adapter publishes through it, which skips the command wrapper's
   * work per call. A cluster's (whose arguments differ) is not used.
   */
  sendCommand?(args: ReadonlyArray<string | Buffer>): Promise<unknown>;
  subscribe(channels: string, listener: (message: Buffer, channel: Buffer) => unknown, bufferMode: true): Promise<unknown>;
  sSubscribe(channels: string, listener: (message: Buffer, channel: Buffer) => unknown, bufferMode: true): Promise<unknown>;
  duplicate(): PubSubClientLike;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Why broadcasts were dropped (never published, or published without an answer). */
export type DropReason = 'queue-full' | 'expired' | 'failed' | 'closed';

/** One of the adapter's two Redis connections. */
export type ConnectionName = 'publisher' | 'subscriber';

/** What the link reports to its owner. */
export interface LinkHooks {
  message(message: Buffer, channel: number): void;
  dropped(reason: DropReason, messages: number, bytes: number): void;
  down(connection: ConnectionName, error: NetloopError): void;
  /** A connection is up: for the first time (`first`), or back after an outage of `downMs`. */
  up(connection: ConnectionName, downMs: number, first: boolean): void;
  /** A connection error that changes no state (a cluster node's), coded. */
  error(error: NetloopError): void;
}

/** How envelopes of one synchronous run are combined into one Redis message. */
export interface LinkBatching {
  /** The most bytes of envelopes one batch carries (an envelope this large or larger goes alone). */
  readonly maxBytes: number;
  /** The most envelopes one batch carries. */
  readonly maxEnvelopes: number;
  /** Makes one message of `parts` (at least two), whose lengths add up to `bytes`. */
  combine(parts: readonly Buffer[], bytes: number): Buffer;
}

/** The link's validated settings. */
export interface LinkSettings {
  readonly channelNames: readonly string[];
  /** Null: every envelope is published alone. */
  readonly batching: LinkBatching | null;
  readonly sharded: boolean;
  readonly clock: Clock;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly maxQueueAgeMs: number;
  readonly maxInFlight: number;
}

/** What {@link PubSubLink.publish} did with a message. */
export type PublishResult = 'published' | 'queued' | 'dropped';

interface Queued {
  channel: number;
  bytes: Buffer;
  at: number;
}

/** The envelopes of one channel waiting for the end of the synchronous run, in order. */
interface Staged {
  parts: Buffer[];
  bytes: number;
}

/** The link's counters. */
export interface LinkCounts {
  publisherUp: boolean;
  subscriberUp: boolean;
  published: number;
  inFlight: number;
  queued: number;
  queuedBytes: number;
  outages: number;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** See the module comment. */
export class PubSubLink {
  readonly #s: LinkSettings;
  readonly #hooks: LinkHooks;
  /** Null until {@link PubSubLink.start} is given it: publishes queue meanwhile. */
  #pub: PubSubClientLike | null = null;
  /** True when the link made the publisher (from a URL) and must close it. */
  #ownsPub = false;
  #sub: PubSubClientLike | null = null;
  #isCluster = false;
  /** `'PUBLISH'` or `'SPUBLISH'` when the publisher is a single node with `sendCommand`, else null (its publish methods are used). */
  #rawCommand: string | null = null;
  #pubUp = false;
  #subUp = false;
  #pubDownAt = 0;
  #subDownAt = 0;
  #subscribed = false;
  #pubEverUp = false;
  #subEverUp = false;
  #closed = false;
  #queue: Queued[] = [];
  #head = 0;
  #queuedBytes = 0;
  #inFlight = 0;
  #published = 0;
  #outages = 0;
  readonly #listeners: Array<(message: Buffer) => void>;
  /** Per channel: what is staged, or null. */
  readonly #staged: Array<Staged | null>;
  /** The channels staged on since the last flush (a channel flushed early may be listed twice: its entry is then null). */
  #stagedChannels: number[] = [];
  /** Channels with something staged: each is one PUBLISH to come, counted against maxInFlight. */
  #stagedCount = 0;
  #flushScheduled = false;

  constructor(settings: LinkSettings, hooks: LinkHooks) {
    this.#s = settings;
    this.#hooks = hooks;
    this.#staged = settings.channelNames.map(() => null);
    this.#pubDownAt = settings.clock.now();
    this.#listeners = settings.channelNames.map((_, i) => (message: Buffer) => this.#hooks.message(message, i));
  }

  /**
   * Takes the publisher (`owned`: made from a URL, so connected and closed
   * here), connects the subscriber (a duplicate of it) and subscribes to
   * every channel; resolves once subscribed. Waits for Redis as long as the
   * client's reconnect strategy does; rejects when it gives up, or when the
   * link is closed first.
   */
  async start(pub: PubSubClientLike, owned: boolean): Promise<void> {
    if (this.#closed) throw new NetloopError(ErrorCode.ADAPTER_CLOSED, 'the rooms adapter is closed');
    this.#pub = pub;
    this.#ownsPub = owned;
    this.#isCluster = pub.isReady === undefined;
    this.#rawCommand = !this.#isCluster && typeof pub.sendCommand === 'function' ? (this.#s.sharded ? 'SPUBLISH' : 'PUBLISH') : null;
    pub.on('ready', this.#onPubReady);
    pub.on('error', this.#onPubError);
    pub.on('reconnecting', this.#onPubLost);
    pub.on('end', this.#onPubLost);
    if (owned) pub.connect().catch(() => undefined);
    else if (this.#isCluster ? pub.isOpen : pub.isReady === true) this.#markUp('publisher');
    const sub = pub.duplicate();
    this.#sub = sub;
    sub.on('ready', this.#onSubReady);
    sub.on('error', this.#onSubError);
    sub.on('reconnecting', this.#onSubLost);
    sub.on('end', this.#onSubLost);
    this.#subDownAt = this.#s.clock.now();
    await sub.connect();
    await this.#subscribe();
  }

  /** True once every channel is subscribed. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Publishes `bytes` on channel `channel`, or queues them (see the module comment). */
  publish(channel: number, bytes: Buffer): PublishResult {
    if (this.#head === this.#queue.length && this.#pubUp && this.#hasRoom(channel, bytes.length)) {
      this.#stage(channel, bytes);
      return 'published';
    }
    const now = this.#s.clock.now();
    this.#evictExpired(now);
    if (this.#queue.length - this.#head >= this.#s.maxQueuedMessages || this.#queuedBytes + bytes.length > this.#s.maxQueuedBytes) {
      this.#hooks.dropped('queue-full', 1, bytes.length);
      return 'dropped';
    }
    this.#queue.push({ channel, bytes, at: now });
    this.#queuedBytes += bytes.length;
    return 'queued';
  }

  /** The link's counters. */
  counts(): LinkCounts {
    return {
      publisherUp: this.#pubUp,
      subscriberUp: this.#subUp,
      published: this.#published,
      inFlight: this.#inFlight,
      queued: this.#queue.length - this.#head,
      queuedBytes: this.#queuedBytes,
      outages: this.#outages,
    };
  }

  /**
   * Drops what is queued (`closed`), stops listening, and closes the
   * subscriber (and the publisher when the link made it). Replies still
   * awaited are counted as they come.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    // What is staged was reported published: it goes out before the connections close.
    this.#flush();
    this.#closed = true;
    const n = this.#queue.length - this.#head;
    if (n > 0) this.#hooks.dropped('closed', n, this.#queuedBytes);
    this.#queue = [];
    this.#head = 0;
    this.#queuedBytes = 0;
    // A node-redis client is an object whose prototype is the real emitter:
    // removing its last listener gives the object an event table of its own,
    // which the emitter never reads. So the closing clients' 'error' sink is
    // added before the adapter's listeners are removed, never after.
    const pub = this.#pub;
    if (pub !== null) {
      if (this.#ownsPub) pub.on('error', ignore);
      pub.off('ready', this.#onPubReady);
      pub.off('error', this.#onPubError);
      pub.off('reconnecting', this.#onPubLost);
      pub.off('end', this.#onPubLost);
    }
    const sub = this.#sub;
    if (sub !== null) {
      // Errors of a closing client still come; they are nobody's business now.
      sub.on('error', ignore);
      sub.off('ready', this.#onSubReady);
      sub.off('reconnecting', this.#onSubLost);
      sub.off('end', this.#onSubLost);
      sub.off('error', this.#onSubError);
      await closeClient(sub);
    }
    if (pub !== null && this.#ownsPub) await closeClient(pub);
  }

  async #subscribe(): Promise<void> {
    const sub = this.#sub!;
    const names = this.#s.channelNames;
    // One call per channel (a sharded SSUBSCRIBE must stay in one slot). A
    // listener is registered only once its subscription is confirmed, and
    // is a set member: a retry after a failure never adds it twice.
    for (let i = 0; i < names.length; i++) {
      if (this.#closed) break;
      if (this.#s.sharded) await sub.sSubscribe(names[i]!, this.#listeners[i]!, true);
      else await sub.subscribe(names[i]!, this.#listeners[i]!, true);
    }
    if (this.#closed) throw new NetloopError(ErrorCode.ADAPTER_CLOSED, 'the rooms adapter was closed while subscribing');
    this.#subscribed = true;
    this.#markUp('subscriber');
  }

  /**
   * True when an envelope of `size` bytes may be staged on `channel` without
   * passing maxInFlight: it joins the batch staged there, or one more
   * PUBLISH (those in flight and those staged) has room.
   */
  #hasRoom(channel: number, size: number): boolean {
    const b = this.#s.batching;
    const st = this.#staged[channel];
    if (b !== null && st != null && size < b.maxBytes && st.bytes + size <= b.maxBytes && st.parts.length < b.maxEnvelopes) return true;
    return this.#inFlight + this.#stagedCount < this.#s.maxInFlight;
  }

  /**
   * Adds an envelope to its channel's batch, sent at the end of this
   * synchronous run (or at once, when batching is off, when the envelope is
   * as large as a batch, or when the batch is full): order on a channel is
   * kept, as everything staged before an envelope goes before it.
   */
  #stage(channel: number, bytes: Buffer): void {
    const b = this.#s.batching;
    if (b === null || bytes.length >= b.maxBytes) {
      if (this.#staged[channel] !== null) this.#flushChannel(channel);
      this.#send(channel, bytes, 1, bytes.length);
      return;
    }
    let st = this.#staged[channel] ?? null;
    if (st !== null && (st.bytes + bytes.length > b.maxBytes || st.parts.length >= b.maxEnvelopes)) {
      this.#flushChannel(channel);
      st = null;
    }
    if (st === null) {
      this.#staged[channel] = st = { parts: [], bytes: 0 };
      this.#stagedCount++;
      this.#stagedChannels.push(channel);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(this.#onFlush);
      }
    }
    st.parts.push(bytes);
    st.bytes += bytes.length;
  }

  readonly #onFlush = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  /** Sends every staged batch. */
  #flush(): void {
    if (this.#stagedChannels.length === 0) return;
    const channels = this.#stagedChannels;
    this.#stagedChannels = [];
    for (const c of channels) if (this.#staged[c] !== null) this.#flushChannel(c);
  }

  #flushChannel(channel: number): void {
    const st = this.#staged[channel]!;
    this.#staged[channel] = null;
    this.#stagedCount--;
    const n = st.parts.length;
    if (n === 1) this.#send(channel, st.parts[0]!, 1, st.bytes);
    else this.#send(channel, this.#s.batching!.combine(st.parts, st.bytes), n, st.bytes);
  }

  /** One PUBLISH carrying `count` envelopes of `bytes` bytes in all (what a failure drops). */
  #send(channel: number, message: Buffer, count: number, bytes: number): void {
    this.#inFlight++;
    const name = this.#s.channelNames[channel]!;
    const pub = this.#pub!;
    let reply: Promise<unknown>;
    try {
      const raw = this.#rawCommand;
      // The raw command costs node-redis about half of what publish() does per call (no argument
      // parser, no extra promise), and its reply and errors are the same.
      if (raw !== null) reply = pub.sendCommand!([raw, name, message]);
      else reply = this.#s.sharded ? pub.sPublish(name, message) : pub.publish(name, message);
    } catch (err) {
      // node-redis rejects rather than throws; a client that throws fails this PUBLISH only, as a
      // rejection would, for a batch is sent from a microtask, where a throw would end the process.
      reply = Promise.reject(err);
    }
    reply.then(count === 1 ? this.#onPublished : () => this.#onPublishedMany(count), (err: unknown) => this.#onPublishFailed(err, count, bytes));
  }

  readonly #onPublished = (): void => this.#onPublishedMany(1);

  #onPublishedMany(count: number): void {
    this.#inFlight--;
    this.#published += count;
    if (this.#head !== this.#queue.length) this.#drain();
  }

  #onPublishFailed(err: unknown, count: number, bytes: number): void {
    this.#inFlight--;
    this.#hooks.dropped('failed', count, bytes);
    if (!this.#isCluster && this.#pub?.isReady !== true) this.#markDown('publisher', err);
    else if (this.#isCluster) this.#hooks.error(unavailable('publisher', err));
  }

  /** Sends what the queue holds, oldest first, while the publisher is up and has room; expired entries are dropped. */
  #drain(): void {
    if (this.#closed) return;
    // Whatever is staged was published before anything queued: it goes first.
    this.#flush();
    this.#evictExpired(this.#s.clock.now());
    const q = this.#queue;
    while (this.#head < q.length && this.#pubUp && this.#hasRoom(q[this.#head]!.channel, q[this.#head]!.bytes.length)) {
      const e = q[this.#head]!;
      q[this.#head++] = undefined as unknown as Queued;
      this.#queuedBytes -= e.bytes.length;
      this.#stage(e.channel, e.bytes);
    }
    this.#flush();
    this.#compact();
  }

  #evictExpired(now: number): void {
    const q = this.#queue;
    let n = 0;
    let bytes = 0;
    while (this.#head < q.length && now - q[this.#head]!.at > this.#s.maxQueueAgeMs) {
      bytes += q[this.#head]!.bytes.length;
      q[this.#head++] = undefined as unknown as Queued;
      n++;
    }
    if (n === 0) return;
    this.#queuedBytes -= bytes;
    this.#compact();
    this.#hooks.dropped('expired', n, bytes);
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #markDown(connection: ConnectionName, cause: unknown): void {
    if (this.#closed) return;
    if (connection === 'publisher') {
      if (!this.#pubUp) return;
      this.#pubUp = false;
      this.#pubDownAt = this.#s.clock.now();
      this.#outages++;
    } else {
      if (!this.#subUp) return;
      this.#subUp = false;
      this.#subDownAt = this.#s.clock.now();
      this.#outages++;
    }
    this.#hooks.down(connection, unavailable(connection, cause));
  }

  #markUp(connection: ConnectionName): void {
    if (this.#closed) return;
    const now = this.#s.clock.now();
    if (connection === 'publisher') {
      if (this.#pubUp) return;
      this.#pubUp = true;
      const first = !this.#pubEverUp;
      this.#pubEverUp = true;
      this.#hooks.up('publisher', now - this.#pubDownAt, first);
      this.#drain();
    } else {
      if (this.#subUp) return;
      this.#subUp = true;
      const first = !this.#subEverUp;
      this.#subEverUp = true;
      this.#hooks.up('subscriber', now - this.#subDownAt, first);
    }
  }

  readonly #onPubReady = (): void => this.#markUp('publisher');
  readonly #onPubLost = (): void => {
    if (!this.#isCluster) this.#markDown('publisher', 'connection lost');
  };
  readonly #onPubError = (err: unknown): void => {
    if (this.#isCluster) this.#hooks.error(unavailable('publisher', err));
    else if (this.#pub?.isReady !== true) this.#markDown('publisher', err);
  };
  readonly #onSubReady = (): void => {
    // After a reconnection node-redis has resubscribed already; a first
    // subscription that failed half-way is completed here.
    if (!this.#subscribed) {
      this.#subscribe().catch(() => undefined);
      return;
    }
    this.#markUp('subscriber');
  };
  readonly #onSubLost = (): void => {
    if (this.#sub !== null && this.#sub.isReady !== undefined) this.#markDown('subscriber', 'connection lost');
  };
  readonly #onSubError = (err: unknown): void => {
    const sub = this.#sub;
    if (sub === null || sub.isReady === undefined) this.#hooks.error(unavailable('subscriber', err));
    else if (sub.isReady !== true) this.#markDown('subscriber', err);
  };
}

function unavailable(connection: ConnectionName, cause: unknown): NetloopError {
  return new NetloopError(ErrorCode.PUBSUB_UNAVAILABLE, `rooms adapter: the Redis ${connection} connection is down (${describe(cause)})`, {
    cause,
    details: { connection },
  });
}

function ignore(): void {
  // Deliberately nothing: see the callers.
}

/** Closes a client: gracefully when it is connected, at once otherwise (close() would wait for a reconnection). */
async function closeClient(client: PubSubClientLike): Promise<void> {
  if (!client.isOpen) return;
  if (client.isReady === false) {
    client.destroy();
    return;
  }
  try {
    await client.close();
  } catch {
    client.destroy();
  }
}
