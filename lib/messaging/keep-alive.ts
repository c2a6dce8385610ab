/**
 * Application keep-alive for framed servers and connectors, as engine.io
 * does it: a peer silent for `pingIntervalMs` is sent a ping on a reserved
 * frame type, and a peer still silent `pingTimeoutMs` after it is closed with
 * `'ping-timeout'` (`NETLOOP_PING_TIMEOUT`). Any byte from the peer shows it
 * is alive, not only the pong, so a busy peer is never pinged. Both ends
 * answer pings by themselves; a connector can also send a heartbeat message
 * of the application's on an interval.
 *
 * TCP keep-alive (the `tcpKeepAliveMs` option of servers and connectors)
 * finds a vanished host; only an answer from the peer's process finds a hung
 * one, whose kernel keeps acknowledging: that is what this module is for.
 *
 * ```
 *   keepAlive(owner, options)
 *     reserveType(pingType) ──▶ ping [0x01] ─▶ pong [0x02] back; pong counted
 *     liveness: a server's read tap (each chunk)       peers.set(client, tick)
 *               a connector's socket.bytesRead         compared at each sweep
 *     'connection' / 'connected' ──▶ peers.set(client, tick)    'close' ──▶ peers.delete(client)
 *     one sweep entry in the loop's timer queue, every sweepMs, while a peer is watched:
 *        state >= 0 (seen at tick state)  silent >= pingIntervalMs ──▶ ping; state = -(tick + 1)
 *        state <  0 (pinged at -state-1)  silent >  pingTimeoutMs after it ──▶ destroy('ping-timeout')
 *     connector heartbeat: one repeating entry, while connected ──▶ client.write(frame)
 * ```
 *
 * The state of a peer is ONE small integer in a Map keyed by its client (no
 * object and no timer per connection): the tick of the last sweep before it
 * was last heard from, or, once pinged, minus one minus the tick of the
 * ping. The read tap writes the current tick (one `Map.set` per chunk read);
 * a byte after a ping writes a tick again, which is how the ping is known to
 * be answered.
 *
 * ```
 *   peers: Map<FramedClient, number>
 *       client#1 ─▶ 1041          heard from at tick 1041, no ping outstanding
 *       client#2 ─▶ -1037         pinged at tick 1036, silent since
 *   tick = floor((now - origin) / sweepMs), set by each sweep
 * ```
 *
 * Timing, with `g` the sweep period (a tenth of the shorter duration, at
 * most 1 s): a peer is pinged after at least `pingIntervalMs - g` of silence
 * (the tick it was heard at is that of the sweep before), gets at least
 * `pingTimeoutMs` after the ping (the close waits one tick more than the
 * timeout spans), and a silent peer is closed at most
 * `pingIntervalMs + pingTimeoutMs + 3g` after its last byte (plus however
 * late the loop runs the sweep). A sweep visits every watched peer and acts
 * only on the few that are due; it does not run while nobody is watched.
 *
 * The peer cannot be judged while its answer cannot reach us: while its
 * reading is paused (backpressure of ours) or our own output to it is not
 * drained (the ping waits behind it). A timeout found then restarts the
 * peer's clock instead of closing it; the output limits bound a peer that
 * never reads.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import type { TimerEntry } from '../reactor/timer-queue.js';
import type { CloseReason } from '../reactor/close-reason.js';
import type { EventLoop } from '../reactor/event-loop.js';
import { FramedServer } from '../framing/framed-server.js';
import type { AnyFramedServer } from '../framing/framed-server.js';
import { FramedConnector } from '../framing/framed-connector.js';
import type { AnyFramedConnector } from '../framing/framed-connector.js';
import type { FramedClient } from '../framing/framed-client.js';
import { PING, PONG, keepAliveConfig } from './keep-alive-options.js';
import type { HeartbeatOptions, KeepAliveConfig, KeepAliveOptions } from './keep-alive-options.js';

export { KEEP_ALIVE_DEFAULTS } from './keep-alive-options.js';
export type { HeartbeatOptions, KeepAliveOptions } from './keep-alive-options.js';

/** Counters of one keep-alive, from {@link KeepAlive.stats}. */
export interface KeepAliveStats {
  /** Connections watched now (a server's clients, a connector's connection); 0 when this side never pings. */
  peers: number;
  /** Pings sent to silent peers. */
  pingsSent: number;
  /** Pongs received. */
  pongsReceived: number;
  /** Pings received from the peers and answered. */
  pingsAnswered: number;
  /** Connections closed with `'ping-timeout'`. */
  timeouts: number;
  /** Heartbeat messages sent (a connector's). */
  heartbeatsSent: number;
}

const PING_VALUE = Buffer.from([PING]);
const PONG_VALUE = Buffer.from([PONG]);

/** A framed server or connector: the owners a keep-alive attaches to. */
export type KeepAliveOwner = AnyFramedServer | AnyFramedConnector;

/**
 * Starts the keep-alive of a framed server or connector (see the module
 * comment) and returns it; {@link KeepAlive.close} stops it.
 *
 * ```ts
 * const alive = keepAlive(server, { pingIntervalMs: 25_000, pingTimeoutMs: 20_000 });
 * keepAlive(connector, { heartbeat: { type: 'Heartbeat', payload: {}, intervalMs: 10_000 } });
 * ```
 *
 * Both ends must speak it: a peer that does not know the ping type drops
 * the connection (a strict registry refuses the unknown type) or hands the
 * ping to its application. For peers whose protocol has no ping (a cellnet
 * peer), do not start it: use `idleTimeoutMs` with the heartbeat messages
 * those peers send anyway, which any traffic refreshes.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option, an owner
 *   that is neither a `FramedServer` nor a `FramedConnector`, a `pingType`
 *   the layout cannot carry, a heartbeat on a server or a heartbeat the
 *   registry cannot encode; `NETLOOP_DUPLICATE_TYPE` when `pingType` is
 *   registered or reserved already (a keep-alive already runs on the owner).
 */
export function keepAlive(owner: KeepAliveOwner, options: KeepAliveOptions = {}): KeepAlive {
  return new KeepAlive(owner, options);
}

/**
 * The keep-alive of one framed server or connector (see the module
 * comment); made by {@link keepAlive}.
 */
export class KeepAlive {
  /** The server or connector watched. */
  readonly owner: KeepAliveOwner;
  /** The reserved frame type of pings and pongs. */
  readonly pingType: number;
  /** Silence after which a peer is pinged, or 0 when this side never pings. */
  readonly pingIntervalMs: number;
  /** How long a pinged peer may stay silent. */
  readonly pingTimeoutMs: number;
  /** The period of the sweep that pings and closes (a tenth of the shorter duration, at most 1 s). */
  readonly sweepMs: number;
  readonly #loop: EventLoop;
  readonly #server: AnyFramedServer | null;
  readonly #connector: AnyFramedConnector | null;
  /** Each watched peer's state (see the module comment), or null when this side never pings. */
  readonly #peers: Map<FramedClient, number> | null;
  readonly #pingTicks: number;
  readonly #timeoutTicks: number;
  readonly #sweep: TimerEntry;
  readonly #heartbeat: HeartbeatOptions | null;
  /** The heartbeat's frame, encoded once, or null when its payload is a function. */
  readonly #heartbeatFrame: Buffer | null;
  readonly #heartbeatEntry: TimerEntry | null;
  readonly #giveBack: () => void;
  #origin = 0;
  #tick = 0;
  /** The connection's `socket.bytesRead` at the last sweep (a connector's liveness). */
  #bytesSeen = 0;
  #closed = false;
  #pingsSent = 0;
  #pongsReceived = 0;
  #pingsAnswered = 0;
  #timeouts = 0;
  #heartbeatsSent = 0;

  /**
   * Use {@link keepAlive}.
   *
   * @throws NetloopError see {@link keepAlive}.
   */
  constructor(owner: KeepAliveOwner, options: KeepAliveOptions = {}) {
    const server = owner instanceof FramedServer ? owner : null;
    const connector = owner instanceof FramedConnector ? owner : null;
    if (server === null && connector === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'keepAlive needs a FramedServer or a FramedConnector', { details: { option: 'owner' } });
    }
    const cfg: KeepAliveConfig = keepAliveConfig(options, server !== null ? 'server' : 'connector');
    this.owner = owner;
    this.#loop = owner.loop;
    this.#server = server;
    this.#connector = connector;
    this.pingType = cfg.pingType;
    this.pingIntervalMs = cfg.pingIntervalMs;
    this.pingTimeoutMs = cfg.pingTimeoutMs;
    this.sweepMs = cfg.sweepMs;
    this.#pingTicks = Math.ceil(cfg.pingIntervalMs / cfg.sweepMs);
    this.#timeoutTicks = Math.ceil(cfg.pingTimeoutMs / cfg.sweepMs);
    this.#heartbeat = cfg.heartbeat;
    this.#heartbeatFrame = cfg.heartbeat === null ? null : encodeHeartbeat(owner, cfg.heartbeat);
    // Reserved last: a refused option above leaves the owner untouched.
    this.#giveBack = reservePingType(owner, cfg.pingType, this.#onFrame);
    this.#peers = cfg.pingIntervalMs > 0 ? new Map() : null;
    this.#sweep = { deadline: 0, seq: 0, index: -1, interval: cfg.sweepMs, fn: runSweep, arg: this };
    this.#heartbeatEntry =
      cfg.heartbeat === null ? null : { deadline: 0, seq: 0, index: -1, interval: cfg.heartbeat.intervalMs, fn: runHeartbeat, arg: this };
    if (server !== null) {
      if (this.#peers !== null) {
        server.addReadTap(this.#onRead);
        server.on('connection', this.#onOpen);
        server.on('close', this.#onClose);
        for (const c of server.clients()) this.#onOpen(c);
      }
    } else {
      connector!.on('connected', this.#onOpen);
      connector!.on('close', this.#onClose);
      const c = connector!.client;
      if (c !== null) this.#onOpen(c);
    }
  }

  /** Counters since the start (see {@link KeepAliveStats}). */
  stats(): KeepAliveStats {
    return {
      peers: this.#peers === null ? 0 : this.#peers.size,
      pingsSent: this.#pingsSent,
      pongsReceived: this.#pongsReceived,
      pingsAnswered: this.#pingsAnswered,
      timeouts: this.#timeouts,
      heartbeatsSent: this.#heartbeatsSent,
    };
  }

  /** True once {@link KeepAlive.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops: no more pings, timeouts or heartbeats; the ping type is given
   * back (its frames then reach the message path again). Connections stay
   * open. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#giveBack();
    const timers = this.#loop._timers;
    timers.remove(this.#sweep);
    if (this.#heartbeatEntry !== null) timers.remove(this.#heartbeatEntry);
    if (this.#server !== null) {
      this.#server.removeReadTap(this.#onRead);
      this.#server.off('connection', this.#onOpen);
      this.#server.off('close', this.#onClose);
    } else {
      this.#connector!.off('connected', this.#onOpen);
      this.#connector!.off('close', this.#onClose);
    }
    this.#peers?.clear();
  }

  /** A frame of the ping type: a ping is answered at once, a pong counted, anything else ignored. */
  readonly #onFrame = (client: FramedClient, source: Buffer, start: number, end: number): void => {
    if (end <= start) return;
    const kind = source[start];
    if (kind === PING) {
      if (client.sendRaw(this.pingType, PONG_VALUE)) this.#pingsAnswered++;
    } else if (kind === PONG) {
      this.#pongsReceived++;
    }
  };

  /** A server's read tap: the peer was heard from in the current tick (one Map.set per chunk). */
  readonly #onRead = (client: FramedClient): void => {
    this.#peers!.set(client, this.#tick);
  };

  /** A connection opened (or was open when the keep-alive started): watch it, start its heartbeat. */
  readonly #onOpen = (client: FramedClient): void => {
    const peers = this.#peers;
    if (peers !== null && !client.closed) {
      if (peers.size === 0) this.#startSweep();
      peers.set(client, this.#tick);
      if (this.#connector !== null) this.#bytesSeen = client.socket.bytesRead;
    }
    const hb = this.#heartbeatEntry;
    if (hb !== null) {
      hb.deadline = this.#loop.now() + hb.interval;
      this.#loop._timers.reschedule(hb, hb.deadline);
    }
  };

  /** A connection closed, whatever the reason: forget it; the sweep stops with the last one. */
  readonly #onClose = (client: FramedClient, _reason: CloseReason): void => {
    const peers = this.#peers;
    if (peers !== null && peers.delete(client) && peers.size === 0) this.#loop._timers.remove(this.#sweep);
    if (this.#heartbeatEntry !== null && this.#connector !== null) this.#loop._timers.remove(this.#heartbeatEntry);
  };

  /** The sweep restarts its ticks from now: no peer holds a tick of an earlier run. */
  #startSweep(): void {
    const now = this.#loop.now();
    this.#origin = now;
    this.#tick = 0;
    this.#sweep.deadline = now + this.sweepMs;
    this.#loop._timers.insert(this.#sweep);
  }

  /** @internal One sweep (see the module comment): ping the peers silent too long, close those silent after a ping. */
  _sweep(): void {
    const peers = this.#peers;
    if (peers === null || this.#closed) return;
    const previous = this.#tick;
    const tick = Math.floor((this.#loop.now() - this.#origin) / this.sweepMs);
    this.#tick = tick;
    const connector = this.#connector;
    if (connector !== null) {
      // A connector has no read tap: what its one connection read since the
      // last sweep arrived after that sweep's tick.
      const c = connector.client;
      if (c !== null && peers.has(c)) {
        const read = c.socket.bytesRead;
        if (read !== this.#bytesSeen) {
          this.#bytesSeen = read;
          peers.set(c, previous);
        }
      }
    }
    peers.forEach(this.#visit);
    if (peers.size === 0) this.#loop._timers.remove(this.#sweep);
  }

  /** One peer at a sweep (Map.forEach: no entry array per peer; setting or deleting the visited key is allowed). */
  readonly #visit = (state: number, client: FramedClient, peers: Map<FramedClient, number>): void => {
    if (client.closed) {
      peers.delete(client);
      return;
    }
    // A close under way has its own deadline.
    if (!client.writable) return;
    const tick = this.#tick;
    if (state >= 0) {
      if (tick - state >= this.#pingTicks) {
        peers.set(client, -(tick + 1));
        if (client.sendRaw(this.pingType, PING_VALUE)) this.#pingsSent++;
      }
      return;
    }
    if (tick - (-state - 1) <= this.#timeoutTicks) return;
    if (!client.isReading() || client.queuedBytes > 0) {
      // Its answer could not have reached us: its clock restarts.
      peers.set(client, tick);
      return;
    }
    this.#timeouts++;
    client.destroy(
      'ping-timeout',
      new NetloopError(ErrorCode.PING_TIMEOUT, `no byte arrived within ${this.pingTimeoutMs} ms of a keep-alive ping`, {
        details: { clientId: client.id, pingIntervalMs: this.pingIntervalMs, pingTimeoutMs: this.pingTimeoutMs },
      }),
    );
  };

  /** @internal The heartbeat is due: send it on the connector's connection. */
  _sendHeartbeat(): void {
    const client = this.#connector?.client ?? null;
    const hb = this.#heartbeat;
    if (client === null || hb === null || !client.writable) return;
    let sent: boolean;
    try {
      sent = this.#heartbeatFrame !== null ? client.write(this.#heartbeatFrame) : client.send(hb.type, (hb.payload as () => unknown)());
    } catch (err) {
      client._handlerFault(err, 'heartbeat payload');
      return;
    }
    if (sent) this.#heartbeatsSent++;
  }
}

function runSweep(k: KeepAlive): void {
  k._sweep();
}

function runHeartbeat(k: KeepAlive): void {
  k._sendHeartbeat();
}

/** Encodes a heartbeat with a fixed payload once (a refusal is an option error); null for a payload function. */
function encodeHeartbeat(owner: KeepAliveOwner, hb: HeartbeatOptions): Buffer | null {
  if (typeof hb.payload === 'function') return null;
  try {
    return owner.encodeMessage(hb.type, hb.payload);
  } catch (err) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `the heartbeat cannot be encoded: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      details: { option: 'heartbeat', code: (err as { code?: unknown }).code },
    });
  }
}

/** Reserves the ping type, naming the option when the layout cannot carry it. */
function reservePingType(owner: KeepAliveOwner, type: number, handler: (client: FramedClient, source: Buffer, start: number, end: number) => void): () => void {
  try {
    return owner.reserveType(type, handler);
  } catch (err) {
    if (err instanceof NetloopError && err.code === ErrorCode.INVALID_OPTION) {
      const max = err.details['max'];
      throw new NetloopError(
        ErrorCode.INVALID_OPTION,
        `pingType ${type} does not fit this layout's type field (types up to ${String(max)}): give a free pingType that does`,
        { cause: err, details: { option: 'pingType', value: type, max } },
      );
    }
    throw err;
  }
}
