/**
 * netloop's public face: everything a user imports comes from here, grouped
 * by layer (the reactor at the bottom, sessions and stores on top).
 *
 * @module
 */

// Errors and clocks.
export { ErrorCode, NetloopError, isNetloopError } from './errors.js';
export type { ErrorCodeValue, NetloopErrorOptions } from './errors.js';
export { systemClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';

// The reactor: loop, servers, clients, connectors, timers, TLS.
export { EventLoop, DEFAULT_FLUSH_TIMEOUT_MS, DEFAULT_FLUSH_SLICE_MS } from './event-loop.js';
export type { EventLoopOptions, CloseOptions, LoopStats, TimerId } from './event-loop.js';
export { Client, linkBackpressure } from './client.js';
export type { WriteCompleteCallback, HighWaterMarkCallback, CloseCallback, ClientProtocol, ReadPauseMarks } from './client.js';
export { Server, CLIENT_DEFAULTS, DEFAULT_IDLE_TIMEOUT_MS } from './server.js';
export type { ServerOptions, ClientLimitOptions, SoftOutputLimit, DropInfo, BroadcastMessage, BroadcastOptions } from './server.js';
export { Connector } from './connector.js';
export type { ConnectorOptions, ReconnectOptions, ConnectErrorInfo } from './connector.js';
export { CLOSE_REASONS, isCloseReason, isGracefulReason } from './close-reason.js';
export type { CloseReason } from './close-reason.js';
export { TimerQueue, nodeTimerDriver } from './timer-queue.js';
export type { TimerDriver, TimerEntry } from './timer-queue.js';
export { OutputBuffer } from './output-buffer.js';
export { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from './tls-transport.js';
export type { TlsServerOptions, TlsConnectOptions } from './tls-transport.js';

// Graceful shutdown and observability.
export type { CloseNotice } from './graceful-close.js';
export { closeOnSignals } from './close-on-signals.js';
export type { CloseOnSignalsOptions, GracefullyClosable } from './close-on-signals.js';
export { flushOnSignals } from './flush-on-signals.js';
export type { Flushable, FlushOnSignalsOptions } from './flush-on-signals.js';
export { channels, CHANNEL_NAMES, publishLimit, observeSessions } from './diagnostics.js';
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
} from './diagnostics.js';

// LTV framing: layouts, decoder, encoder, message registry, cellnet compatibility, the server/connector glue.
export { LTV_PRESETS, DEFAULT_MAX_FRAME_LENGTH, ltvLayout } from './ltv-layout.js';
export type { LtvLayout, LtvLayoutOptions, LtvPresetName, ByteOrder, FieldOrder } from './ltv-layout.js';
export { LtvDecoder, decodeFrames } from './ltv-decoder.js';
export type { FrameHandler, RawFrameHandler, LtvFrame, LtvDecoderOptions } from './ltv-decoder.js';
export { LtvEncoder } from './ltv-encoder.js';
export type { FrameSink, LtvEncoderOptions } from './ltv-encoder.js';
export { MessageRegistry } from './message-registry.js';
export type { MessageType, DecodedMessage, MessageRegistryOptions, MessageTypeRef } from './message-registry.js';
export { rawSerializer, utf8Serializer, jsonSerializer, SERIALIZERS, isSerializer } from './serializers.js';
export type { Serializer, SerializerName } from './serializers.js';
export { cellnetStringHash } from './cellnet-hash.js';
export {
  CellnetBinaryWriter,
  CellnetBinaryReader,
  CELLNET_CHAT_NAMES,
  cellnetChatREQ,
  cellnetChatACK,
} from './cellnet-binary.js';
export type { CellnetChatREQ, CellnetChatACK } from './cellnet-binary.js';
export { FramedProtocol, FramedConnection, FRAMING_DEFAULTS, framedStats } from './framed-protocol.js';
export type { FramedMessage, MessageHandler, ClientRawFrameHandler, FramingOptions, FramedStats } from './framed-protocol.js';

// Sessions: the registry, its binding to a server, tokens, ids, the timing wheel.
export { SessionRegistry, SessionHandle, SESSION_TRANSITIONS, canTransition } from './session-registry.js';
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
  RegistryErrorEvent,
  RegistryCounters,
  RegistryStats,
} from './session-registry.js';
export {
  bindSessions,
  SessionBinding,
  connectionProbe,
  jsonLineNotice,
  httpUnauthorizedNotice,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_NOTICE_TIMEOUT_MS,
} from './session-binding.js';
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
} from './session-binding.js';
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
} from './session-token.js';
export type { TokenPair } from './session-token.js';
export { uuidv7, uuidv7Timestamp, UUID_V7_PATTERN } from './uuid-v7.js';
export { TimingWheel, WheelEntry } from './timing-wheel.js';
export type { TimingWheelOptions } from './timing-wheel.js';

// Session stores: the contract, memory, file (with its journal and file-system seam), Redis.
export { SESSION_STATES, copySessionRecord } from './session-store.js';
export type {
  SessionState,
  SessionStats,
  SessionRecord,
  SessionFilter,
  Page,
  SessionPage,
  CreateOptions,
  SessionStore,
} from './session-store.js';
export { MemoryStore } from './memory-store.js';
export type { MemoryStoreOptions } from './memory-store.js';
export { FileStore, openFileStore, systemScheduler, validateSessionRecord, SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from './file-store.js';
export type {
  FileStoreOptions,
  FileStoreDurability,
  FileStoreStatus,
  FileStoreStats,
  FileStoreLoadReport,
  FileStoreSaveInfo,
  StoreScheduler,
  StoreTimer,
} from './file-store.js';
export { JournalDecoder, parseJournal, encodeJournalRecord, crc32, JOURNAL_HEADER_BYTES } from './journal.js';
export type { JournalRecord, JournalTail, JournalEnd, JournalTailReason } from './journal.js';
export { realFs, countingFs } from './fs-facade.js';
export type { FsFacade, FsFileHandle, FsCounts, CountingFs } from './fs-facade.js';
export { RedisStore } from './redis-store.js';
export type { RedisStoreOptions, RedisClientLike } from './redis-store.js';
