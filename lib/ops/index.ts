/**
 * `netloop/ops`: what an operator of a netloop server needs, apart from the
 * main entry point so that the library's face stays small and prom-client
 * and pino stay optional (neither is loaded until asked for).
 *
 * ```
 *   sources.ts        providers: reactorSource, sessionSource, storeSource, framingSource
 *   snapshot.ts       OpsSampler: one shared reading of every source
 *   metrics.ts        registerNetloopMetrics: Prometheus metrics in a prom-client Registry
 *   ops-server.ts     startOpsServer: /metrics, the status page (/), its events (/events)
 *   logger.ts         Logger (pino fits it), quietLogger, consoleLogger, tryPino
 *   log-subscriber.ts createLogSubscriber: diagnostics channels as structured log lines
 * ```
 *
 * @module
 */

export { reactorSource, sessionSource, storeSource, framingSource, rpcSource } from './sources.js';
export type {
  ClientView,
  ReactorCounters,
  CloseRecord,
  ReactorSource,
  ReactorSourceHandle,
  ReactorSourceOptions,
  ServerView,
  LoopView,
  DurationSample,
  SessionSample,
  SessionSource,
  RegistryView,
  StoreOperationSample,
  StoreSample,
  StoreSource,
  StoreView,
  StoreSourceOptions,
  FrameTypeCount,
  FramingSource,
  FrameCountingView,
  OpsSources,
  RpcSample,
  RpcSource,
  RpcView,
} from './sources.js';
export { OpsSampler, DEFAULT_QUEUE_BUCKETS } from './snapshot.js';
export type { OpsSnapshot, OpsSamplerOptions, QueuedClient, SampledHistogram, BoundedFrameCounts } from './snapshot.js';
export { registerNetloopMetrics } from './metrics.js';
export type { MetricsRegistry, NetloopMetrics, NetloopMetricsOptions } from './metrics.js';
export { startOpsServer } from './ops-server.js';
export type { OpsServer, OpsServerOptions, ServableRegistry } from './ops-server.js';
export { quietLogger, consoleLogger, tryPino, LOG_LEVELS } from './logger.js';
export type { Logger, LogLevel, LogMethod, LineSink, ConsoleLoggerOptions } from './logger.js';
export { createLogSubscriber } from './log-subscriber.js';
export type { LogEvents, LogSubscriberOptions, LogSubscription, WatchedStore, WatchedRegistry } from './log-subscriber.js';
