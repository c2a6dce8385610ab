/**
 * netloop's Prometheus metrics, registered in a prom-client `Registry`.
 *
 * Every value is read at scrape time from counters netloop keeps anyway
 * (see `sources.ts`): a metric here is a small object whose `get()` reads
 * one shared {@link OpsSnapshot} and returns prom-client's metric data; the
 * registry renders it. Nothing is observed, incremented or pushed per
 * connection, per message or per write, so a process that is never scraped
 * pays nothing, and one that is pays one pass over its clients per scrape.
 *
 * ```
 *   GET /metrics ─▶ registry.metrics() ─▶ every metric's get()  (in parallel)
 *                                           └─▶ sampler.sample()  one shared reading
 *                                                 └─▶ the sources' counters, the live clients
 * ```
 *
 * The metric objects follow prom-client's metric contract (`name`, `help`,
 * `type`, `aggregator`, `get()`, `reset()`), the same one its own Counter,
 * Gauge and Histogram implement, so `registry.metrics()`,
 * `getMetricsAsJSON()`, OpenMetrics output and cluster aggregation work as
 * with prom-client's classes. No module of prom-client is loaded here:
 * netloop loads without it.
 *
 * Label cardinality is bounded: server and store names come from the
 * configuration, close reasons and limit names from fixed lists (anything
 * else is `other`), message types are the `maxFrameTypes` most frequent
 * (the rest `other`).
 *
 * @module
 */

import { CLOSE_REASONS } from '../reactor/close-reason.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { OpsSampler } from './snapshot.js';
import type { OpsSamplerOptions, OpsSnapshot } from './snapshot.js';
import type { DurationSample, OpsSources, RpcSample } from './sources.js';

/** The slice of prom-client's `Registry` this module uses. */
export interface MetricsRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
}

/** A value of prom-client's metric data. */
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/** Reads one metric's values from a snapshot; an empty list means "no data" (the family is printed without samples). */
type Reader = (s: OpsSnapshot, name: string) => MetricValue[];

/**
 * A metric read at scrape time, in prom-client's metric contract. `name` is
 * mutable because prom-client's OpenMetrics output renames counters.
 */
class ReadMetric {
  name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly aggregator = 'sum';
  readonly #sampler: OpsSampler;
  readonly #read: Reader;

  constructor(name: string, help: string, type: MetricType, sampler: OpsSampler, read: Reader) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#sampler = sampler;
    this.#read = read;
  }

  async get(): Promise<{ name: string; help: string; type: MetricType; values: MetricValue[]; aggregator: string }> {
    const snapshot = await this.#sampler.sample();
    return { name: this.name, help: this.help, type: this.type, values: this.#read(snapshot, this.name), aggregator: this.aggregator };
  }

  /** Values are netloop's own counters: there is nothing to reset here. */
  reset(): void {}
}

/** Options of {@link registerNetloopMetrics}. */
export interface NetloopMetricsOptions extends OpsSamplerOptions {
  /** The prefix of every metric name; default `'netloop_'`. Letters, digits and `_`, starting with a letter. */
  prefix?: string;
}

/** What {@link registerNetloopMetrics} returns. */
export interface NetloopMetrics {
  /** The names registered. */
  readonly names: readonly string[];
  /** The reader shared by the metrics (and by a status page given it). */
  readonly sampler: OpsSampler;
  /** Removes the metrics from the registry; idempotent. */
  unregister(): void;
}

const KNOWN_REASONS: ReadonlySet<string> = new Set(CLOSE_REASONS);
const KNOWN_LIMITS: ReadonlySet<string> = new Set([
  'max-connections',
  'output-limit',
  'output-soft-limit',
  'idle-timeout',
  'frame-timeout',
  'handshake-timeout',
  'ping-timeout',
  'frame-length',
  'inbound',
]);

/** Sums `record` into a fixed set of label values, anything else as `other`. */
function bounded(record: Readonly<Record<string, number>>, known: ReadonlySet<string>, label: string): MetricValue[] {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(record)) {
    const key = known.has(k) ? k : 'other';
    out.set(key, (out.get(key) ?? 0) + v);
  }
  return [...out].map(([k, value]) => ({ value, labels: { [label]: k } }));
}

function one(value: number | undefined): MetricValue[] {
  return value === undefined ? [] : [{ value, labels: {} }];
}

/** prom-client's histogram values (cumulative `_bucket`s with `le`, `_sum`, `_count`) from non-cumulative counts. */
function histogram(name: string, h: DurationSample, labels: Record<string, string> = {}): MetricValue[] {
  const out: MetricValue[] = [];
  let acc = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    acc += h.counts[i] ?? 0;
    out.push({ value: acc, labels: { ...labels, le: h.bounds[i]! }, metricName: `${name}_bucket` });
  }
  out.push({ value: h.count, labels: { ...labels, le: '+Inf' }, metricName: `${name}_bucket` });
  out.push({ value: h.sum, labels, metricName: `${name}_sum` });
  out.push({ value: h.count, labels, metricName: `${name}_count` });
  return out;
}

interface Definition {
  suffix: string;
  type: MetricType;
  help: string;
  read: Reader;
}

const SESSION_COUNTERS = ['created', 'resumed', 'detached', 'expired', 'replaced', 'closed', 'deleted', 'refused'] as const;

/** The metric definitions for the parts of `sources` that are present. */
function definitions(sources: OpsSources): Definition[] {
  const defs: Definition[] = [];
  const add = (suffix: string, type: MetricType, help: string, read: Reader): void => {
    defs.push({ suffix, type, help, read });
  };
  if (sources.reactor !== undefined) {
    const r = (s: OpsSnapshot): NonNullable<OpsSnapshot['reactor']> => s.reactor!;
    add('connections_open', 'gauge', 'Open connections, by server.', (s) => r(s).servers.map((v) => ({ value: v.open, labels: { server: v.name } })));
    add('connections_accepted_total', 'counter', 'Connections accepted by the servers.', (s) => one(r(s).counters.accepted));
    add('connections_connected_total', 'counter', 'Connections established by the connectors.', (s) => one(r(s).counters.connected));
    add('connections_dropped_total', 'counter', 'Connections refused at accept, by reason (max-connections).', (s) => [
      { value: r(s).counters.dropped, labels: { reason: 'max-connections' } },
    ]);
    add('connections_closed_total', 'counter', 'Connections closed, by close reason.', (s) => bounded(r(s).counters.closed, KNOWN_REASONS, 'reason'));
    add('tls_handshake_errors_total', 'counter', 'TLS handshakes that failed before a connection was established.', (s) => one(r(s).counters.tlsErrors));
    add('received_bytes_total', 'counter', 'Bytes read from connections.', (s) => one(r(s).counters.bytesIn));
    add('sent_bytes_total', 'counter', 'Bytes handed to connections for sending.', (s) => one(r(s).counters.bytesOut));
    add('received_frames_total', 'counter', 'Frames decoded by the framing layer.', (s) => one(r(s).counters.framesIn));
    add('sent_frames_total', 'counter', 'Frames encoded by the framing layer.', (s) => one(r(s).counters.framesOut));
    add('output_queued_bytes', 'gauge', 'Bytes queued for output, all connections (own buffers and socket buffers).', (s) => one(r(s).queuedBytes));
    add('connection_output_queue_bytes', 'histogram', 'Queued output per connection, sampled at scrape time.', (s, name) =>
      histogram(name, r(s).queues),
    );
    add('output_limit_closes_total', 'counter', 'Connections closed by an output limit: hard (maxOutputBytes) or soft (softOutputLimit).', (s) => [
      { value: r(s).counters.closed['output-limit'] ?? 0, labels: { limit: 'hard' } },
      { value: r(s).counters.closed['output-soft-limit'] ?? 0, labels: { limit: 'soft' } },
    ]);
    add('limit_hits_total', 'counter', 'Limits hit, by limit name.', (s) => bounded(r(s).counters.limits, KNOWN_LIMITS, 'limit'));
    add('inbound_pauses_total', 'counter', 'Times reading was paused because unhandled input reached the inbound limit.', (s) => one(r(s).counters.inboundPauses));
    add('handler_errors_total', 'counter', 'Application handlers called from the network that threw or rejected.', (s) => one(r(s).counters.handlerErrors));
  }
  if (sources.framing !== undefined && sources.framing.length > 0) {
    add('received_frames_by_type_total', 'counter', 'Frames received, by message type (the most frequent types; the rest as other).', (s) =>
      (s.frames?.received ?? []).map((f) => ({ value: f.frames, labels: { type: f.type } })),
    );
    add('sent_frames_by_type_total', 'counter', 'Frames sent, by message type (the most frequent types; the rest as other).', (s) =>
      (s.frames?.sent ?? []).map((f) => ({ value: f.frames, labels: { type: f.type } })),
    );
  }
  if (sources.sessions !== undefined) {
    add('sessions', 'gauge', 'Live sessions in the store, by state.', (s) =>
      s.sessions === undefined ? [] : Object.entries(s.sessions.byState).map(([state, value]) => ({ value, labels: { state } })),
    );
    add('sessions_local', 'gauge', 'Sessions held by this process.', (s) => one(s.sessions?.local));
    add('sessions_attached', 'gauge', 'Sessions of this process bound to a connection.', (s) => one(s.sessions?.attached));
    for (const c of SESSION_COUNTERS) {
      add(`sessions_${c}_total`, 'counter', `Sessions ${c} since the registry was created.`, (s) => one(s.sessions?.counters[c]));
    }
    add('session_audit_duration_seconds', 'histogram', 'Duration of the session registry audit ticks.', (s, name) =>
      s.sessions?.audit === undefined ? [] : histogram(name, s.sessions.audit),
    );
  }
  if (sources.stores !== undefined && sources.stores.length > 0) {
    add('store_up', 'gauge', '1 when the session store answered its health check, else 0.', (s) =>
      s.stores.map((st) => ({ value: st.up ? 1 : 0, labels: { store: st.name, kind: st.kind } })),
    );
    add('store_ping_duration_seconds', 'gauge', 'Duration of the store health check at the last scrape.', (s) =>
      s.stores.filter((st) => st.pingSeconds !== undefined).map((st) => ({ value: st.pingSeconds!, labels: { store: st.name } })),
    );
    add('store_operation_duration_seconds', 'histogram', 'Duration of session store operations, by store and operation.', (s, name) =>
      s.stores.flatMap((st) => (st.operations ?? []).flatMap((op) => histogram(name, op.duration, { store: st.name, operation: op.operation }))),
    );
    add('store_operation_errors_total', 'counter', 'Failed session store operations, by store, operation and code.', (s) =>
      s.stores.flatMap((st) =>
        (st.operations ?? []).flatMap((op) =>
          Object.entries(op.errors).map(([code, value]) => ({ value, labels: { store: st.name, operation: op.operation, code } })),
        ),
      ),
    );
  }
  if (sources.rpc !== undefined && sources.rpc.length > 0) {
    const kinds = (read: (r: RpcSample) => Readonly<Record<string, number>>) => (s: OpsSnapshot): MetricValue[] =>
      s.rpc.flatMap((r) => Object.entries(read(r)).map(([kind, value]) => ({ value, labels: { rpc: r.name, kind } })));
    add('rpc_calls_total', 'counter', 'Calls made, by endpoint.', (s) => s.rpc.map((r) => ({ value: r.calls, labels: { rpc: r.name } })));
    add('rpc_calls_in_flight', 'gauge', 'Calls waiting for their reply, by endpoint.', (s) => s.rpc.map((r) => ({ value: r.inFlight, labels: { rpc: r.name } })));
    add('rpc_call_failures_total', 'counter', 'Calls that ended without a reply, by endpoint and kind (remote-error, timeout, abort, closed, limited).', kinds((r) => r.callFailures));
    add('rpc_late_replies_total', 'counter', 'Replies that arrived after their call had ended, dropped.', (s) => s.rpc.map((r) => ({ value: r.lateReplies, labels: { rpc: r.name } })));
    add('rpc_call_duration_seconds', 'histogram', 'Round trips of the calls that got a reply (a remote error included), by endpoint.', (s, name) => s.rpc.flatMap((r) => histogram(name, r.latency, { rpc: r.name })));
    add('rpc_requests_total', 'counter', 'Requests received from the peer, by endpoint.', (s) => s.rpc.map((r) => ({ value: r.requests, labels: { rpc: r.name } })));
    add('rpc_request_failures_total', 'counter', 'Requests received that got no answer, by endpoint and kind (failed, unknown, busy, bad-request, cancelled).', kinds((r) => r.requestFailures));
  }
  return defs;
}

/**
 * Registers netloop's metrics in `registry` (a prom-client `Registry`; pass
 * `register`, prom-client's global one, to add them beside the default
 * metrics). Only the families whose source is given are registered.
 *
 * ```ts
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * const sources = { reactor: reactorSource(loop, { servers: { chat: server } }), sessions: sessionSource(registry) };
 * registerNetloopMetrics(registry, sources);
 * ```
 *
 * @param sources the sources, or an {@link OpsSampler} already shared with a status page.
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option or a registry
 *   without `registerMetric`; what the registry throws for a name already registered.
 */
export function registerNetloopMetrics(registry: MetricsRegistry, sources: OpsSources | OpsSampler, options: NetloopMetricsOptions = {}): NetloopMetrics {
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'registry must be a prom-client Registry', { details: { option: 'registry' } });
  }
  const prefix = options.prefix ?? 'netloop_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z][a-zA-Z0-9_]*$/.test(prefix)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'prefix must be letters, digits and _, starting with a letter', { details: { option: 'prefix' } });
  }
  const sampler = sources instanceof OpsSampler ? sources : new OpsSampler(sources, options);
  const names: string[] = [];
  try {
    for (const d of definitions(sampler.sources)) {
      const name = prefix + d.suffix;
      registry.registerMetric(new ReadMetric(name, d.help, d.type, sampler, d.read) as never);
      names.push(name);
    }
  } catch (err) {
    for (const n of names) registry.removeSingleMetric(n);
    throw err;
  }
  let registered = true;
  return {
    names,
    sampler,
    unregister(): void {
      if (!registered) return;
      registered = false;
      for (const n of names) registry.removeSingleMetric(n);
    },
  };
}

/** What prom-client's module provides that {@link loadPromClient} needs. */
export interface PromClientModule {
  Registry: new () => MetricsRegistry & { metrics(): Promise<string>; readonly contentType: string };
}

/**
 * Imports prom-client, the optional peer dependency.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` when it is not installed.
 */
export async function loadPromClient(): Promise<PromClientModule> {
  try {
    // A specifier in a variable: TypeScript does not resolve it, so netloop compiles and loads without prom-client.
    const name = 'prom-client';
    const mod = (await import(name)) as { Registry?: unknown; default?: { Registry?: unknown } };
    const Registry = mod.Registry ?? mod.default?.Registry;
    if (typeof Registry !== 'function') throw new Error('prom-client exports no Registry');
    return { Registry: Registry as PromClientModule['Registry'] };
  } catch (err) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'metrics need the optional peer dependency "prom-client" (npm install prom-client), or pass registry: null', {
      cause: err,
      details: { option: 'registry' },
    });
  }
}
