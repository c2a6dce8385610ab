/**
 * netloop's public face: everything a user imports comes from here, grouped
 * by layer (the reactor at the bottom, sessions and stores on top).
 *
 * @module
 */

// Errors and clocks.
export { ErrorCode, NetloopError, isNetloopError } from './core/errors.js';
export type { ErrorCodeValue, NetloopErrorOptions } from './core/errors.js';
export { systemClock } from './core/clock.js';
export type { Clock } from './core/clock.js';

// The reactor: loop, servers, clients, connectors, timers, TLS.
export { EventLoop } from './reactor/event-loop.js';
export type { EventLoopOptions, LoopStats, TimerId } from './reactor/event-loop.js';

export type { LoopClient, LoopClientOwner, LoopService, ServiceCloseOptions, TypedMessage } from './reactor/loop-member.js';
export type { EventMap, EventName } from './core/emitter.js';
export type { DurationSample } from './core/histogram.js';
export type { StoreOperationSample } from './store/operation-stats.js';
export { linkBackpressure } from './reactor/client.js';
export type { Client } from './reactor/client.js';
export type {
  WriteCompleteCallback,
  HighWaterMarkCallback,
  CloseCallback,
  ReadTap,
  DropInfo,
  ConnectErrorInfo,
  ServerBaseEvents,
  ServerEvents,
  ConnectorBaseEvents,
  ConnectorEvents,
} from './reactor/callbacks.js';

export type { ClientLimitOptions, SoftOutputLimit, ReadPauseMarks } from './reactor/client-limits.js';
export { Server } from './reactor/server.js';
export type { ServerOptions, AnyServer } from './reactor/server.js';
export type { BroadcastMessage, BroadcastOptions } from './reactor/broadcast.js';
export { Connector } from './reactor/connector.js';
export type { ConnectorOptions, ReconnectOptions } from './reactor/connector.js';
export { CLOSE_REASONS } from './reactor/close-reason.js';
export type { CloseReason } from './reactor/close-reason.js';

export type { TimerDriver, TimerEntry } from './reactor/timer-queue.js';

export type { TlsServerOptions, TlsConnectOptions } from './reactor/tls-transport.js';

// Graceful shutdown and observability.

export type { CloseNotice, CloseOptions } from './reactor/graceful-close.js';
export { closeOnSignals } from './reactor/close-on-signals.js';
export type { CloseOnSignalsOptions, GracefullyClosable } from './reactor/close-on-signals.js';

// Many processes behind one port: SO_REUSEPORT, a node:cluster worker pool with rolling restarts.
export { reusePortSupported } from './reactor/reuse-port.js';
export { WorkerPool } from './cluster/worker-pool.js';
export type { WorkerPoolOptions, WorkerPoolEvents, PoolWorker, PoolWorkerExit } from './cluster/worker-pool.js';
export { joinWorkerPool } from './cluster/join-worker-pool.js';
export type { JoinWorkerPoolOptions, WorkerChannel } from './cluster/join-worker-pool.js';
export { workerIdentity } from './cluster/worker-messages.js';
export type { WorkerIdentity } from './cluster/worker-messages.js';
export { flushOnSignals } from './core/flush-on-signals.js';
export type { Flushable, FlushOnSignalsOptions } from './core/flush-on-signals.js';
export { channels } from './reactor/diagnostics.js';

export type { ExpiringSessions, ExpiredSessionEvent } from './binding/observe-sessions.js';
export type {
  AcceptMessage,
  DropMessage,
  CloseMessage,
  LimitMessage,
  LimitName,
  TlsErrorMessage,
  SessionExpireMessage,
  HandlerErrorMessage,
  LoopCounters,
} from './reactor/diagnostics.js';

// LTV framing: layouts, decoder, encoder, message registry, cellnet compatibility, the server/connector glue.
export { LTV_PRESETS, ltvLayout } from './codec/ltv-layout.js';
export type { LtvLayout, LtvLayoutOptions, LtvPresetName, ByteOrder, FieldOrder } from './codec/ltv-layout.js';
export { LtvDecoder, decodeFrames } from './codec/ltv-decoder.js';
export type { FrameHandler, RawFrameHandler, LtvFrame, LtvDecoderOptions } from './codec/ltv-decoder.js';
export { LtvEncoder } from './codec/ltv-encoder.js';
export type { FrameSink, LtvEncoderOptions } from './codec/ltv-encoder.js';
export { MessageRegistry } from './codec/message-registry.js';
export type {
  MessageType,
  DecodedMessage,
  EncodedMessage,
  MessageRegistryOptions,
  MessageTypeRef,
  MessageMap,
  MessageName,
  PayloadOf,
  OtherRef,
} from './codec/message-registry.js';
export { json, utf8, raw } from './codec/serializers.js';
export type { Serializer, SerializerName, SerializerNamePayload, JsonSerializerOptions } from './codec/serializers.js';
export { cellnetStringHash } from './codec/cellnet/hash.js';
export { CellnetBinaryWriter, CellnetBinaryReader } from './codec/cellnet/binary.js';
export type { CellnetChatREQ, CellnetChatACK } from './codec/cellnet/binary.js';
export { FramedServer } from './framing/framed-server.js';
export type { FramedServerOptions, FramedServerEvents, AnyFramedServer } from './framing/framed-server.js';
export { FramedConnector } from './framing/framed-connector.js';
export type { FramedConnectorOptions, FramedConnectorEvents, AnyFramedConnector } from './framing/framed-connector.js';
export type { FramedClient } from './framing/framed-client.js';
export type {
  MessageHandler,
  TypedHandler,
  InboundHook,
  OutboundHook,
  ClientRawFrameHandler,
  FrameObserver,
  ReservedFrameHandler,
  FramedStats,
  AnyFramedClient,
  AnyFramedMap,
  LooseRef,
  LoosePayload,
} from './framing/framed-client.js';
export type {
  RawFrames,
  AnyMessages,
  FramedMessage,
  NamedMessage,
  UnnamedMessage,
  MessageOf,
  OutgoingMessage,
  NamedOutgoing,
  UnnamedOutgoing,
  MessageFor,
  HookResult,
} from './framing/messages.js';

export type { FrameCount } from './framing/frame-counts.js';
export type { FramingOptions } from './framing/framing.js';

// Messaging: request/response over framed connections (netloop's envelope or cellnet's rpc).
export { enableRpc } from './messaging/rpc.js';
export type { Rpc, RpcOwner, RpcOptions, RpcCallOptions, RpcHandler, RpcStats, RpcLatency, RpcEvents } from './messaging/rpc.js';
export { defineCalls } from './messaging/rpc-calls.js';
export type { RpcCalls, RpcApi, RpcApiOf, RpcApiOfSpecs, RpcCallSpec, RpcPayloadSpec, RpcPayloadOf, RpcRequestOf, RpcReplyOf } from './messaging/rpc-calls.js';
export { RpcError } from './messaging/rpc-error.js';
export type { RpcErrorOptions } from './messaging/rpc-error.js';
export type { RpcCallInfo } from './messaging/rpc-peer.js';

// Messaging: keep-alive (pings on a reserved frame type, ping-timeout, a connector's heartbeat).
export { keepAlive } from './messaging/keep-alive.js';
export type { KeepAlive } from './messaging/keep-alive.js';
export type { KeepAliveOptions, HeartbeatOptions, KeepAliveStats, KeepAliveOwner } from './messaging/keep-alive.js';

// Sessions: the registry, its binding to a server, tokens, ids, the timing wheel.
export { SessionRegistry } from './session/session-registry.js';
export type { SessionHandle } from './session/session-registry.js';
export type {
  LoginPolicy,
  SessionInfo,
  SessionRegistryOptions,
  CreateSessionInput,
  CreatedSession,
  ResumedSession,
  DeleteOptions,
  SessionEndEvent,
  SessionEvents,
  SessionEventName,
  SessionRegistryEvents,
  RegistryErrorEvent,
  RegistryCounters,
  RegistryStats,
} from './session/session-registry.js';
export { bindSessions } from './binding/session-binding.js';
export type { SessionBinding } from './binding/session-binding.js';

export type {
  SessionBindingOptions,
  SessionBindingEvents,
  SessionBindingPayloads,
  SessionBindingEventName,
  SessionBindingStats,
  FrameEncoder,
  LoginInput,
  WithClient,
} from './binding/binding-types.js';
export { jsonLineNotice, httpUnauthorizedNotice } from './binding/notices.js';
export type { OutgoingFrame, OutboundMessage, SessionEndKind, NoticeContext, NoticeBuilder, HttpNoticeOptions } from './binding/notices.js';
export { connectionProbe } from './binding/connection-probe.js';

export type { TokenPair } from './session/token.js';

export type { TimingWheelOptions } from './session/timing-wheel.js';

// Session stores: the contract, memory, file (with its journal and file-system seam), Redis.
export { SESSION_STATES, SESSION_END_REASONS } from './store/contract.js';

export type { OnlineBounds } from './store/record.js';
export type {
  SessionState,
  SessionStats,
  SessionRecord,
  SessionFilter,
  Page,
  SessionPage,
  CreateOptions,
  SessionStore,
  SessionPatch,
  SessionStatsPatch,
  WriteCondition,
  OnlinePage,
  OnlineUsersPage,
  SessionEndReason,
  SessionChange,
  SessionFeedEvents,
  SharedSessionStore,
} from './store/contract.js';
export { MemoryStore } from './store/memory-store.js';
export type { MemoryStoreOptions } from './store/memory-store.js';
export { FileStore } from './store/file/file-store.js';
export type {
  FileStoreOptions,
  FileStoreDurability,
  FileStoreStatus,
  FileStoreStats,
  FileStoreLoadReport,
  FileStoreSaveInfo,
  FileStoreEvents,
  StoreScheduler,
  StoreTimer,
} from './store/file/file-store.js';

export type { JournalRecord, JournalTail, JournalEnd, JournalTailReason } from './store/file/journal.js';

export type { FsFacade, FsFileHandle, FsCounts, CountingFs } from './store/file/fs-facade.js';
export { RedisStore } from './store/redis/redis-store.js';
export type { RedisStoreOptions, RedisStoreEvents, RedisClientLike, RedisClusterLike, RedisClusterNodeLike } from './store/redis/redis-store.js';
export { EtcdStore, type EtcdStoreOptions, type EtcdStoreEvents, type EtcdCredentials, type EtcdAuth } from './store/etcd/etcd-store.js';

// Rooms and broadcast across processes (Redis pub/sub), and reaching Redis within a start-up bound.
export { RoomsAdapter, createRoomsAdapter } from './cluster/rooms-adapter.js';
export type {
  RoomsAdapterOptions,
  RoomsAdapterEvents,
  RoomsAdapterStats,
  RoomsBroadcastOptions,
  RoomsBroadcastResult,
  RoomsDropInfo,
  RoomsMessage,
  UserDirectory,
  PubSubClientLike,
  DropReason,
  ConnectionName,
} from './cluster/rooms-adapter.js';
export { connectRedis } from './cluster/redis-connect.js';
export type { ConnectRedisOptions, RedisAttemptFailure, RedisSocketStrategy, ConnectableClient } from './cluster/redis-connect.js';

// Messaging: streams and large files, raw or as framed streams beside the messages.
export { sendStream, sendFile, createClientWritable } from './messaging/stream-send.js';
export type { RawStreamOptions, StreamSource } from './messaging/stream-send.js';
export { createClientReadable } from './messaging/stream-readable.js';
export type { ClientReadable, ClientReadableOptions } from './messaging/stream-readable.js';
export type { ClientWritable } from './messaging/stream-writable.js';

export type { StreamSendOptions, StreamResult } from './messaging/stream-options.js';
export { FramedStreams } from './messaging/stream-framed.js';
export type {
  IncomingStream,
  FramedStreamsOptions,
  FramedStreamSendOptions,
  FramedStreamResult,
  FramedStreamsEvents,
  OpenStreams,
} from './messaging/stream-framed.js';
