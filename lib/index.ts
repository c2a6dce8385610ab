/**
 * netloop's public face: everything a user imports comes from here, grouped
 * by layer (the reactor at the bottom, sessions and stores on top).
 *
 * @module
 */

// Errors and clocks.
export { ErrorCode, NetloopError, isNetloopError } from './core/errors.js';
export type { ErrorCodeValue, NetloopErrorOptions } from './core/errors.js';
export { systemClock, ManualClock } from './core/clock.js';
export type { Clock } from './core/clock.js';

// The reactor: loop, servers, clients, connectors, timers, TLS.
export { EventLoop, DEFAULT_FLUSH_TIMEOUT_MS, DEFAULT_FLUSH_SLICE_MS } from './reactor/event-loop.js';
export type { EventLoopOptions, CloseOptions, LoopStats, TimerId } from './reactor/event-loop.js';
export { Client, linkBackpressure } from './reactor/client.js';
export type { WriteCompleteCallback, HighWaterMarkCallback, CloseCallback, ClientProtocol, ReadPauseMarks } from './reactor/client.js';
export { Server, CLIENT_DEFAULTS, DEFAULT_IDLE_TIMEOUT_MS } from './reactor/server.js';
export type { ServerOptions, ClientLimitOptions, SoftOutputLimit, DropInfo, BroadcastMessage, BroadcastOptions } from './reactor/server.js';
export { Connector } from './reactor/connector.js';
export type { ConnectorOptions, ReconnectOptions, ConnectErrorInfo } from './reactor/connector.js';
export { CLOSE_REASONS, isCloseReason, isGracefulReason } from './reactor/close-reason.js';
export type { CloseReason } from './reactor/close-reason.js';
export { TimerQueue, nodeTimerDriver } from './reactor/timer-queue.js';
export type { TimerDriver, TimerEntry } from './reactor/timer-queue.js';
export { OutputBuffer } from './reactor/output-buffer.js';
export { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from './reactor/tls-transport.js';
export type { TlsServerOptions, TlsConnectOptions } from './reactor/tls-transport.js';

// Graceful shutdown and observability.
export type { CloseNotice } from './reactor/graceful-close.js';
export { closeOnSignals } from './reactor/close-on-signals.js';
export type { CloseOnSignalsOptions, GracefullyClosable } from './reactor/close-on-signals.js';
export { flushOnSignals } from './core/flush-on-signals.js';
export type { Flushable, FlushOnSignalsOptions } from './core/flush-on-signals.js';
export { channels, CHANNEL_NAMES, publishLimit, observeSessions } from './reactor/diagnostics.js';
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
  ExpiringSessions,
} from './reactor/diagnostics.js';

// LTV framing: layouts, decoder, encoder, message registry, cellnet compatibility, the server/connector glue.
export { LTV_PRESETS, DEFAULT_MAX_FRAME_LENGTH, ltvLayout } from './codec/ltv-layout.js';
export type { LtvLayout, LtvLayoutOptions, LtvPresetName, ByteOrder, FieldOrder } from './codec/ltv-layout.js';
export { LtvDecoder, decodeFrames } from './codec/ltv-decoder.js';
export type { FrameHandler, RawFrameHandler, LtvFrame, LtvDecoderOptions } from './codec/ltv-decoder.js';
export { LtvEncoder } from './codec/ltv-encoder.js';
export type { FrameSink, LtvEncoderOptions } from './codec/ltv-encoder.js';
export { MessageRegistry } from './codec/message-registry.js';
export type { MessageType, DecodedMessage, MessageRegistryOptions, MessageTypeRef } from './codec/message-registry.js';
export { rawSerializer, utf8Serializer, jsonSerializer, SERIALIZERS, isSerializer } from './codec/serializers.js';
export type { Serializer, SerializerName } from './codec/serializers.js';
export { cellnetStringHash } from './codec/cellnet/hash.js';
export {
  CellnetBinaryWriter,
  CellnetBinaryReader,
  CELLNET_CHAT_NAMES,
  cellnetChatREQ,
  cellnetChatACK,
} from './codec/cellnet/binary.js';
export type { CellnetChatREQ, CellnetChatACK } from './codec/cellnet/binary.js';
export { FramedProtocol, FramedConnection, FRAMING_DEFAULTS, framedStats } from './framing/framed-protocol.js';
export type { FramedMessage, MessageHandler, ClientRawFrameHandler, FramingOptions, FramedStats } from './framing/framed-protocol.js';

// Sessions: the registry, its binding to a server, tokens, ids, the timing wheel.
export { SessionRegistry, SessionHandle, SESSION_TRANSITIONS, canTransition } from './session/session-registry.js';
export type {
  LoginPolicy,
  SessionInfo,
  SessionRegistryOptions,
  CreateSessionInput,
  CreatedSession,
  ResumedSession,
  SessionEndEvent,
  SessionEvents,
  SessionEventName,
  SessionRegistryEvents,
  RegistryErrorEvent,
  RegistryCounters,
  RegistryStats,
} from './session/session-registry.js';
export {
  bindSessions,
  SessionBinding,
  connectionProbe,
  jsonLineNotice,
  httpUnauthorizedNotice,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_NOTICE_TIMEOUT_MS,
} from './binding/session-binding.js';
export type {
  SessionBindingOptions,
  SessionBindingEvents,
  SessionBindingEventName,
  SessionBindingStats,
  OutgoingFrame,
  OutboundMessage,
  SessionEndKind,
  NoticeContext,
  NoticeBuilder,
  FrameEncoder,
  LoginInput,
  WithClient,
  HttpNoticeOptions,
} from './binding/session-binding.js';
export {
  createToken,
  hashToken,
  tokenMatches,
  tokenSessionId,
  isWellFormedToken,
  TOKEN_BYTES,
  TOKEN_LENGTH,
  TOKEN_SECRET_LENGTH,
  TOKEN_HASH_BYTES,
  TOKEN_HASH_LENGTH,
} from './session/token.js';
export type { TokenPair } from './session/token.js';
export { uuidv7, uuidv7Timestamp, UUID_V7_PATTERN } from './session/uuid-v7.js';
export { TimingWheel, WheelEntry } from './session/timing-wheel.js';
export type { TimingWheelOptions } from './session/timing-wheel.js';

// Session stores: the contract, memory, file (with its journal and file-system seam), Redis.
export { SESSION_STATES } from './store/contract.js';
export { copySessionRecord, validateSessionRecord } from './store/record.js';
export type {
  SessionState,
  SessionStats,
  SessionRecord,
  SessionFilter,
  Page,
  SessionPage,
  CreateOptions,
  SessionStore,
} from './store/contract.js';
export { MemoryStore } from './store/memory-store.js';
export type { MemoryStoreOptions } from './store/memory-store.js';
export { FileStore, openFileStore, systemScheduler, SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from './store/file/file-store.js';
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
export { JournalDecoder, parseJournal, encodeJournalRecord, crc32, JOURNAL_HEADER_BYTES } from './store/file/journal.js';
export type { JournalRecord, JournalTail, JournalEnd, JournalTailReason } from './store/file/journal.js';
export { realFs, countingFs } from './store/file/fs-facade.js';
export type { FsFacade, FsFileHandle, FsCounts, CountingFs } from './store/file/fs-facade.js';
export { RedisStore } from './store/redis/redis-store.js';
export type { RedisStoreOptions, RedisStoreEvents, RedisClientLike } from './store/redis/redis-store.js';
