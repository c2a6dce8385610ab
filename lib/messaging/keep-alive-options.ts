/**
 * The options of netloop's application keep-alive ({@link KeepAliveOptions}),
 * their defaults and their validation, and the wire format of its pings.
 *
 * ```
 *   KeepAliveOptions ──keepAliveConfig(options, side)──▶ KeepAliveConfig
 *     pingIntervalMs (0: never ping)                       pingIntervalMs, pingTimeoutMs, sweepMs,
 *     pingTimeoutMs, pingType, heartbeat (connector)       pingType, heartbeat | null
 *
 *   a ping or a pong: one LTV frame of the reserved type (default 0xfff1)
 *     value [0x01]  ping   answer with a pong at once
 *     value [0x02]  pong
 *     any other value: ignored (kept for later use); as any frame, it shows the peer is alive
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkObject } from '../core/validate.js';
import type { MessageTypeRef } from '../codec/message-registry.js';

/**
 * An application message a connector sends on its own, on an interval, while
 * it is connected (the heartbeat a server's session layer may count, which
 * applications otherwise send from a timer of their own).
 */
export interface HeartbeatOptions {
  /** The message type: a registered name or id, or a numeric type without a registry. */
  type: MessageTypeRef;
  /**
   * The payload: a value, encoded once when the keep-alive starts (so a bad
   * one is refused then), or a function called for each heartbeat (a throw,
   * or a payload the type refuses, closes that connection with
   * `'handler-error'`). Without a registry, bytes.
   */
  payload: unknown;
  /** Time between two heartbeats, from the connection's start; 10 to 2^31 - 1 ms. */
  intervalMs: number;
}

/**
 * Options of {@link keepAlive}. Every duration has a finite default; pings
 * are sent only to a peer that has been silent for `pingIntervalMs`.
 */
export interface KeepAliveOptions {
  /**
   * Silence (ms: no byte from the peer) after which the peer is pinged; 0
   * never pings (pings from the peer are still answered). Default 25,000
   * (engine.io's `pingInterval`); otherwise 10 to 2^31 - 1.
   */
  pingIntervalMs?: number;
  /**
   * How long after a ping the peer may stay silent before the connection is
   * closed with `'ping-timeout'` (`NETLOOP_PING_TIMEOUT`). Any byte from the
   * peer counts, not only the pong. Default 20,000 (engine.io's
   * `pingTimeout`); 10 to 2^31 - 1.
   */
  pingTimeoutMs?: number;
  /**
   * The frame type reserved for pings and pongs; default `0xfff1`. It must be
   * free (not registered, not reserved by another protocol) and fit the
   * layout's type field: with a 1-byte type field (types up to 0xff) it must
   * be given. At least 1: type 0 is every frame of a layout without a type
   * field, which cannot carry pings.
   */
  pingType?: number;
  /** A connector's own heartbeat message (see {@link HeartbeatOptions}); default none. Refused on a server, which pings instead. */
  heartbeat?: HeartbeatOptions | null;
}

/** Defaults of {@link KeepAliveOptions}. */
export const KEEP_ALIVE_DEFAULTS = {
  pingIntervalMs: 25_000,
  pingTimeoutMs: 20_000,
  pingType: 0xfff1,
} as const;

/** The first value byte of a ping frame. */
export const PING = 0x01;
/** The first value byte of a pong frame. */
export const PONG = 0x02;

const MIN_MS = 10;
const MAX_MS = 2 ** 31 - 1;
/** The longest sweep period: detection is never more than a few of these late. */
const MAX_SWEEP_MS = 1_000;

/** @internal The validated options of one keep-alive. */
export interface KeepAliveConfig {
  /** 0 when this side never pings. */
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
  /** The period of the shared sweep: a tenth of the shorter duration, between 1 ms and 1 s. */
  readonly sweepMs: number;
  readonly pingType: number;
  readonly heartbeat: HeartbeatOptions | null;
}

/**
 * @internal Validates `options` for a keep-alive on a server or a connector.
 * Whether `pingType` fits the layout and is free is checked when it is
 * reserved.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
 */
export function keepAliveConfig(options: KeepAliveOptions, side: 'server' | 'connector'): KeepAliveConfig {
  checkObject('options', options);
  const interval = options.pingIntervalMs ?? KEEP_ALIVE_DEFAULTS.pingIntervalMs;
  const pingIntervalMs = interval === 0 ? 0 : checkInteger('pingIntervalMs', interval, MIN_MS, MAX_MS);
  const pingTimeoutMs = checkInteger('pingTimeoutMs', options.pingTimeoutMs ?? KEEP_ALIVE_DEFAULTS.pingTimeoutMs, MIN_MS, MAX_MS);
  const pingType = checkInteger('pingType', options.pingType ?? KEEP_ALIVE_DEFAULTS.pingType, 1, 0xffff_ffff);
  const shorter = pingIntervalMs === 0 ? pingTimeoutMs : Math.min(pingIntervalMs, pingTimeoutMs);
  const sweepMs = Math.max(1, Math.min(MAX_SWEEP_MS, Math.floor(shorter / 10)));
  let heartbeat: HeartbeatOptions | null = null;
  const hb = options.heartbeat;
  if (hb !== undefined && hb !== null) {
    if (side === 'server') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'heartbeat is an option of a connector; a server pings its clients instead', {
        details: { option: 'heartbeat' },
      });
    }
    checkObject('heartbeat', hb);
    if (typeof hb.type !== 'string' && typeof hb.type !== 'number') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'heartbeat.type must be a message name or a type id', {
        details: { option: 'heartbeat.type' },
      });
    }
    heartbeat = { type: hb.type, payload: hb.payload, intervalMs: checkInteger('heartbeat.intervalMs', hb.intervalMs, MIN_MS, MAX_MS) };
  }
  return { pingIntervalMs, pingTimeoutMs, sweepMs, pingType, heartbeat };
}
