/**
 * netloop's public face: everything a user imports comes from here.
 *
 * @module
 */

export { ErrorCode, NetloopError, isNetloopError } from './errors.js';
export type { ErrorCodeValue, NetloopErrorOptions } from './errors.js';
export { systemClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';
export { SESSION_STATES } from './session-store.js';
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
export { realFs, countingFs } from './fs-facade.js';
export type { FsFacade, FsFileHandle, FsCounts, CountingFs } from './fs-facade.js';
export { JournalDecoder, parseJournal, encodeJournalRecord, crc32, JOURNAL_HEADER_BYTES } from './journal.js';
export type { JournalRecord, JournalTail, JournalEnd, JournalTailReason } from './journal.js';
export { flushOnSignals } from './flush-on-signals.js';
export type { Flushable, FlushOnSignalsOptions } from './flush-on-signals.js';
export { RedisStore } from './redis-store.js';
export type { RedisStoreOptions, RedisClientLike } from './redis-store.js';
export { uuidv7, uuidv7Timestamp, UUID_V7_PATTERN } from './uuid-v7.js';
export { createToken, hashToken, tokenMatches, isWellFormedToken, TOKEN_BYTES, TOKEN_LENGTH } from './session-token.js';
export type { TokenPair } from './session-token.js';
export { TimingWheel, WheelEntry } from './timing-wheel.js';
export type { TimingWheelOptions } from './timing-wheel.js';
export { MemoryStore } from './memory-store.js';
export type { MemoryStoreOptions } from './memory-store.js';
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
  RegistryCounters,
  RegistryStats,
} from './session-registry.js';
