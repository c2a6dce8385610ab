/**
 * One reading of every source, shared by the Prometheus metrics and the
 * status page: what a scrape (or one tick of the page) sees.
 *
 * ```
 *   OpsSources ──sample()──▶ OpsSnapshot (plain data, JSON-safe)
 *                               ├─▶ metrics.ts: each metric's get() reads its part
 *                               └─▶ ops-server.ts: sent to the page once a second
 *   a reading in progress is shared: a scrape asks every metric at once and
 *   reads once (a finished reading is reused only within `cacheMs`, default 0)
 * ```
 *
 * Per-client work happens here and only here, once per reading: one pass
 * over the live clients for the queued-output total, the histogram of
 * per-client queues, and the few clients with the most queued output.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import type { CloseRecord, FrameTypeCount, OpsSources, ReactorCounters, RpcSample, SessionSample, StoreSample } from './sources.js';

/** A client with queued output, as the status page lists it. */
export interface QueuedClient {
  id: number;
  server: string;
  /** `address:port`, or `''`. */
  peer: string;
  queuedBytes: number;
  /** Seconds since its accept, when seen. */
  ageSeconds: number | undefined;
}

/** A histogram read at one moment: `counts[i]` values at or below `bounds[i]` (not cumulative), the last above every bound. */
export interface SampledHistogram {
  bounds: readonly number[];
  counts: number[];
  sum: number;
  count: number;
}

/** Frames by type after the cardinality bound: at most `maxFrameTypes` names, the rest summed as `other`. */
export interface BoundedFrameCounts {
  received: Array<{ type: string; frames: number }>;
  sent: Array<{ type: string; frames: number }>;
}

/** Everything read at one moment. */
export interface OpsSnapshot {
  /** Wall time of the reading, ms since the epoch. */
  at: number;
  /** Seconds since the sampler was created. */
  uptimeSeconds: number;
  reactor:
    | {
        counters: ReactorCounters;
        servers: Array<{ name: string; open: number }>;
        /** Live clients, all servers and connectors. */
        clients: number;
        queuedBytes: number;
        queues: SampledHistogram;
        topQueued: QueuedClient[];
        recentCloses: CloseRecord[];
      }
    | undefined;
  frames: BoundedFrameCounts | undefined;
  sessions: SessionSample | undefined;
  /** The reading of the sessions failed (its store is down): the stable code. */
  sessionsError: string | undefined;
  stores: StoreSample[];
  /** One reading per RPC endpoint given. */
  rpc: RpcSample[];
}

/** Default buckets of the per-client queued-output histogram, in bytes: 0, 1 KiB, 16 KiB, 64 KiB, 256 KiB, 1 MiB, 4 MiB, 16 MiB, 64 MiB. */
export const DEFAULT_QUEUE_BUCKETS: readonly number[] = Object.freeze([0, 1024, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864]);

/** Options of {@link OpsSampler}. */
export interface OpsSamplerOptions {
  /** How many clients with the most queued output a snapshot lists; default 10, at most 1,000. */
  topClients?: number;
  /** Upper bounds of the queued-output histogram, in bytes, ascending; default {@link DEFAULT_QUEUE_BUCKETS}; at most 32. */
  queueBuckets?: readonly number[];
  /** Message types reported by name (the most frequent); the rest are summed as `other`. Default 20, at most 200. */
  maxFrameTypes?: number;
  /**
   * How long a finished reading is reused, in ms; default 0: a reading in
   * progress is shared (every metric of one scrape asks at once), a finished
   * one is not, so two scrapes never see the same numbers.
   */
  cacheMs?: number;
}

/** Checks histogram bounds: finite, ascending, at most `max` of them. */
export function checkBuckets(name: string, bounds: readonly number[], max: number): readonly number[] {
  if (!Array.isArray(bounds) || bounds.length === 0 || bounds.length > max) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be 1 to ${max} ascending numbers`, { details: { option: name } });
  }
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i];
    if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be 1 to ${max} ascending finite numbers`, { details: { option: name, index: i } });
    }
  }
  return Object.freeze([...bounds]);
}

/** Keeps the `max` largest of `counts` by name and sums the rest as `other`. */
export function boundTypes(counts: ReadonlyArray<{ name: string; frames: number }>, max: number): Array<{ type: string; frames: number }> {
  const sorted = counts.filter((c) => c.frames > 0).sort((a, b) => b.frames - a.frames || (a.name < b.name ? -1 : 1));
  const out = sorted.slice(0, max).map((c) => ({ type: c.name, frames: c.frames }));
  let other = 0;
  for (let i = max; i < sorted.length; i++) other += sorted[i]!.frames;
  if (other > 0) out.push({ type: 'other', frames: other });
  return out;
}

function boundFrames(sources: readonly { framesByType(): readonly FrameTypeCount[] | undefined }[], max: number): BoundedFrameCounts | undefined {
  const received = new Map<string, number>();
  const sent = new Map<string, number>();
  let any = false;
  for (const s of sources) {
    const counts = s.framesByType();
    if (counts === undefined) continue;
    any = true;
    for (const c of counts) {
      received.set(c.name, (received.get(c.name) ?? 0) + c.received);
      sent.set(c.name, (sent.get(c.name) ?? 0) + c.sent);
    }
  }
  if (!any) return undefined;
  const list = (m: Map<string, number>): Array<{ name: string; frames: number }> => [...m].map(([name, frames]) => ({ name, frames }));
  return { received: boundTypes(list(received), max), sent: boundTypes(list(sent), max) };
}

/**
 * Reads {@link OpsSources} into {@link OpsSnapshot}s. A reading in progress,
 * or one younger than `cacheMs`, is shared.
 */
export class OpsSampler {
  readonly sources: OpsSources;
  readonly topClients: number;
  readonly queueBuckets: readonly number[];
  readonly maxFrameTypes: number;
  readonly cacheMs: number;
  readonly #started = performance.now();
  #pending: Promise<OpsSnapshot> | null = null;
  #last: { snapshot: OpsSnapshot; at: number } | null = null;

  /** @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option. */
  constructor(sources: OpsSources, options: OpsSamplerOptions = {}) {
    if (sources === null || typeof sources !== 'object') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'sources must be an object', { details: { option: 'sources' } });
    }
    if (sources.rpc !== undefined && (!Array.isArray(sources.rpc) || sources.rpc.length > 64)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'sources.rpc must be an array of at most 64 endpoints', { details: { option: 'rpc' } });
    }
    this.sources = sources;
    this.topClients = checkInteger('topClients', options.topClients ?? 10, 0, 1_000);
    this.queueBuckets = checkBuckets('queueBuckets', options.queueBuckets ?? DEFAULT_QUEUE_BUCKETS, 32);
    this.maxFrameTypes = checkInteger('maxFrameTypes', options.maxFrameTypes ?? 20, 1, 200);
    this.cacheMs = checkNumber('cacheMs', options.cacheMs ?? 0, 0, 60_000);
  }

  /** The current reading (shared while in progress or younger than `cacheMs`). */
  sample(): Promise<OpsSnapshot> {
    if (this.#pending !== null) return this.#pending;
    const last = this.#last;
    if (last !== null && this.cacheMs > 0 && performance.now() - last.at < this.cacheMs) return Promise.resolve(last.snapshot);
    const p = this.#read().finally(() => {
      this.#pending = null;
    });
    this.#pending = p;
    return p;
  }

  async #read(): Promise<OpsSnapshot> {
    const { reactor, sessions, stores = [], framing = [], rpc = [] } = this.sources;
    const at = Date.now();
    const sessionReading = sessions?.sample().then(
      (s) => ({ s, code: undefined }),
      (err: unknown) => ({ s: undefined, code: codeOf(err) }),
    );
    const storeReadings = Promise.all(stores.map((s) => s.sample()));
    const snapshot: OpsSnapshot = {
      at,
      uptimeSeconds: (performance.now() - this.#started) / 1000,
      reactor: reactor === undefined ? undefined : this.#readReactor(reactor),
      frames: boundFrames(framing, this.maxFrameTypes),
      sessions: undefined,
      sessionsError: undefined,
      stores: [],
      rpc: rpc.map((r) => r.sample()),
    };
    if (sessionReading !== undefined) {
      const r = await sessionReading;
      snapshot.sessions = r.s;
      snapshot.sessionsError = r.code;
    }
    snapshot.stores = await storeReadings;
    this.#last = { snapshot, at: performance.now() };
    return snapshot;
  }

  #readReactor(reactor: NonNullable<OpsSources['reactor']>): NonNullable<OpsSnapshot['reactor']> {
    const bounds = this.queueBuckets;
    const counts = new Array<number>(bounds.length + 1).fill(0);
    const k = this.topClients;
    // The k largest queues, largest first (k is small: insertion into a short array).
    const top: QueuedClient[] = [];
    let sum = 0;
    let clients = 0;
    reactor.forEachClient((c, server, ageMs) => {
      const q = c.queuedBytes;
      clients++;
      sum += q;
      let i = 0;
      while (i < bounds.length && q > bounds[i]!) i++;
      counts[i]!++;
      if (q === 0 || k === 0 || (top.length === k && q <= top[k - 1]!.queuedBytes)) return;
      const a = c.remoteAddress;
      const entry: QueuedClient = {
        id: c.id,
        server,
        peer: a === undefined ? '' : a.includes(':') ? `[${a}]:${c.remotePort ?? ''}` : `${a}:${c.remotePort ?? ''}`,
        queuedBytes: q,
        ageSeconds: ageMs === undefined ? undefined : ageMs / 1000,
      };
      let j = top.length;
      while (j > 0 && top[j - 1]!.queuedBytes < q) j--;
      top.splice(j, 0, entry);
      if (top.length > k) top.pop();
    });
    return {
      counters: reactor.counters(),
      servers: [...reactor.servers()].map((s) => ({ name: s.name, open: s.open })),
      clients,
      queuedBytes: sum,
      queues: { bounds, counts, sum, count: clients },
      topQueued: top,
      recentCloses: [...reactor.recentCloses()],
    };
  }
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}
