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
