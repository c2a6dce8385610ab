/**
 * The provider interfaces of the operations layer: what the metrics and the
 * status page read, at scrape time, from each layer (the adapters over
 * netloop's public APIs that implement them are in `sources.ts`).
 *
 * ```
 *   OpsSources { reactor: ReactorSource, sessions: SessionSource, stores: StoreSource[],
 *                framing: FramingSource[], rpc: RpcSource[] }
 *   ReactorSource: counters() ReactorCounters · servers() · forEachClient(ClientView) · recentCloses() CloseRecord[]
 * ```
 *
 * A counter a layer does not keep yet reads `undefined`; the metric is then
 * absent, never a made-up 0.
 *
 * @module
 */

import type { DurationSample } from '../core/histogram.js';
import type { StoreOperationSample } from '../store/operation-stats.js';

/** A live client as the ops layer reads it. A netloop `Client` is one. */
export interface ClientView {
  readonly id: number;
  /** Bytes queued for output (the client's own buffer plus the socket's). */
  readonly queuedBytes: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

/**
 * Counters of a reactor since its source was created (the loop's own
 * counters since the loop was created). `undefined`: the reactor does not
 * count it (yet).
 */
export interface ReactorCounters {
  /** Connections accepted by the loop's servers. */
  accepted: number;
  /** Connections established by the loop's connectors. */
  connected: number;
  /** Connections dropped beyond `maxConnections`. */
  dropped: number;
  /** TLS handshakes that failed. */
  tlsErrors: number;
  /** Closes by reason. */
  closed: Readonly<Record<string, number>>;
  /** Bytes read from the loop's sockets. */
  bytesIn: number | undefined;
  /** Bytes handed to the loop's sockets. */
  bytesOut: number | undefined;
  /** Frames decoded by the framing layer. */
  framesIn: number | undefined;
  /** Frames encoded by the framing layer. */
  framesOut: number | undefined;
  /** Times reading was paused because unhandled input piled up (the framing layer's inbound limit). */
  inboundPauses: number | undefined;
  /** Limits hit, by limit name (`output-limit`, `idle-timeout`, `frame-length`, `max-connections`, `inbound`, ...). */
  limits: Readonly<Record<string, number>>;
  /** Application code called from the network that threw or rejected. */
  handlerErrors: number;
}

/** One close, as the status page lists it. */
export interface CloseRecord {
  /** Wall time of the close, ms since the epoch. */
  at: number;
  clientId: number;
  /** The server's name (see {@link ReactorSourceOptions.servers}), or `''`. */
  server: string;
  /** `address:port` of the peer, or `''`. */
  peer: string;
  reason: string;
  /** The stable netloop code of the close's error, if any. */
  code: string | undefined;
  /** The system code of a socket error, if any. */
  syscallCode: string | undefined;
  /** How long the connection lived, in seconds, when its start was seen. */
  ageSeconds: number | undefined;
}

/** The reactor side: connections, their queues, their closes. */
export interface ReactorSource {
  counters(): ReactorCounters;
  /** Open connections per named server. */
  servers(): Iterable<{ readonly name: string; readonly open: number }>;
  /** Calls `visit` once for each live client, with its server's name and its age in ms (undefined when unknown). */
  forEachClient(visit: (client: ClientView, server: string, ageMs: number | undefined) => void): void;
  /** The latest closes, oldest first. */
  recentCloses(): readonly CloseRecord[];
}


/** What a session registry reports at scrape time. */
export interface SessionSample {
  /** Live sessions per state (from the store: all processes for a shared store). */
  byState: Readonly<Record<'CONNECTING' | 'ACTIVE' | 'IDLE', number>>;
  /** Sessions held by this process. */
  local: number;
  /** Local sessions bound to a connection. */
  attached: number;
  /** Lifecycle counters since the registry was created. */
  counters: Readonly<Record<'created' | 'resumed' | 'detached' | 'expired' | 'replaced' | 'closed' | 'deleted' | 'refused', number>>;
  /** Durations of the registry's audit ticks, when the registry measures them. */
  audit: DurationSample | undefined;
}

/** The session side. */
export interface SessionSource {
  sample(): Promise<SessionSample>;
}


/** A store's health at scrape time. */
export interface StoreSample {
  name: string;
  kind: string;
  /** True when the store answered its health check. */
  up: boolean;
  /** `'ok'`, or what is wrong (`'error'`, `'closed'`, `'timeout'`, ...). */
  status: string;
  /** How long the health check took, in seconds (undefined when it timed out). */
  pingSeconds: number | undefined;
  /** The stable code of the failed check, if it failed. */
  errorCode: string | undefined;
  /** Per-operation timings, when the store measures them. */
  operations: readonly StoreOperationSample[] | undefined;
}

/** The store side. */
export interface StoreSource {
  readonly name: string;
  readonly kind: string;
  sample(): Promise<StoreSample>;
}

/** Frames of one message type, both ways, since the framing layer started counting. */
export interface FrameTypeCount {
  /** The registered name (or the numeric type id as a string). */
  name: string;
  received: number;
  sent: number;
}

/** The framing side: frames by message type. */
export interface FramingSource {
  /** Per-type counts, or undefined when the framing layer does not count by type. */
  framesByType(): readonly FrameTypeCount[] | undefined;
}

/** What an RPC endpoint reports at scrape time (the caller's side and the answering side). */
export interface RpcSample {
  /** The endpoint's label (`rpc="..."`). */
  name: string;
  /** Calls made, in flight, and how those that did not get a reply ended. */
  calls: number;
  inFlight: number;
  replies: number;
  /** Calls that ended without a reply, by how: `remote-error`, `timeout`, `abort`, `closed`, `limited`. */
  callFailures: Readonly<Record<string, number>>;
  /** Replies that came after their call had ended (dropped). */
  lateReplies: number;
  /** Requests received, and how those that got no answer ended: `failed`, `unknown`, `busy`, `bad-request`, `cancelled`. */
  requests: number;
  requestFailures: Readonly<Record<string, number>>;
  /** Round trips of the calls that got a reply, in seconds. */
  latency: DurationSample;
}

/** The RPC side: one endpoint (a server's or a connector's `enableRpc`). */
export interface RpcSource {
  readonly name: string;
  sample(): RpcSample;
}


/** Everything the metrics and the status page read; every part is optional. */
export interface OpsSources {
  reactor?: ReactorSource;
  sessions?: SessionSource;
  stores?: readonly StoreSource[];
  framing?: readonly FramingSource[];
  /** RPC endpoints, each with its own `rpc` label (at most 64). */
  rpc?: readonly RpcSource[];
}
