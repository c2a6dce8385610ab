/**
 * What the registry checks before anything is stored: its options (each
 * limit finite, validated, `NETLOOP_INVALID_OPTION`) and every input of a
 * call (ids, metadata, counters: `NETLOOP_INVALID_VALUE`), so that a refused
 * call changes nothing.
 *
 * @module
 */

import { randomUUID } from 'node:crypto';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import type { SessionStats } from '../store/contract.js';
import type { SessionRegistryOptions } from './types.js';

/** The registry's options with every default applied. */
export type ResolvedRegistryOptions = Readonly<Required<Omit<SessionRegistryOptions, 'store' | 'clock' | 'isConnectionAlive'>>>;

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Validates `options` and applies the defaults (see `SessionRegistryOptions`). */
export function resolveRegistryOptions(options: SessionRegistryOptions): ResolvedRegistryOptions {
  const ttlMs = checkInteger('ttlMs', options.ttlMs ?? 300_000, 1, 2 ** 31 - 1);
  const resumeWindowMs = checkInteger('resumeWindowMs', options.resumeWindowMs ?? 30_000, 0, 2 ** 31 - 1);
  const granularityMs = checkInteger(
    'granularityMs',
    options.granularityMs ?? Math.min(1_000, Math.max(1, Math.floor(ttlMs / 4))),
    1,
    Math.max(1, Math.floor(ttlMs / 4)),
  );
  const horizon = Math.ceil(Math.max(ttlMs, resumeWindowMs) / granularityMs) + 2;
  const wheelSlots = checkInteger('wheelSlots', options.wheelSlots ?? Math.min(65_536, Math.max(64, nextPow2(horizon))), 2, 1 << 20);
  const policy = options.policy ?? 'multiple';
  if (policy !== 'multiple' && policy !== 'replace' && policy !== 'refuse') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `policy must be 'multiple', 'replace' or 'refuse'`, {
      details: { option: 'policy', value: String(policy) },
    });
  }
  if (options.isConnectionAlive !== undefined && typeof options.isConnectionAlive !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'isConnectionAlive must be a function', {
      details: { option: 'isConnectionAlive' },
    });
  }
  const processId = options.processId ?? randomUUID();
  if (typeof processId !== 'string' || processId.length === 0 || processId.length > 256) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'processId must be a non-empty string of at most 256 characters', {
      details: { option: 'processId' },
    });
  }
  return Object.freeze({
    processId,
    reconcileIntervalMs: checkInteger('reconcileIntervalMs', options.reconcileIntervalMs ?? 30_000, 0, 2 ** 31 - 1),
    ttlMs,
    resumeWindowMs,
    granularityMs,
    wheelSlots,
    autoAudit: options.autoAudit ?? true,
    auditBudgetMs: checkInteger('auditBudgetMs', options.auditBudgetMs ?? 4, 1, 1_000),
    maxSessions: checkInteger('maxSessions', options.maxSessions ?? 1_000_000, 1, 100_000_000),
    maxPerUser: checkInteger('maxPerUser', options.maxPerUser ?? 16, 1, 1_000_000),
    maxPendingLoginsPerUser: checkInteger('maxPendingLoginsPerUser', options.maxPendingLoginsPerUser ?? 64, 1, 1_000_000),
    policy,
    maxMetadataKeys: checkInteger('maxMetadataKeys', options.maxMetadataKeys ?? 32, 0, 10_000),
    maxMetadataKeyLength: checkInteger('maxMetadataKeyLength', options.maxMetadataKeyLength ?? 64, 1, 65_536),
    maxMetadataValueLength: checkInteger('maxMetadataValueLength', options.maxMetadataValueLength ?? 1_024, 0, 16 * 1024 * 1024),
    maxIdLength: checkInteger('maxIdLength', options.maxIdLength ?? 256, 1, 65_536),
  });
}

/** A user id, connection id or remote address: null, or a non-empty string of at most `maxIdLength` characters. */
export function checkId(name: string, value: string | null, maxIdLength: number): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > maxIdLength) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `${name} must be a non-empty string of at most ${maxIdLength} characters`, {
      details: { field: name, maxLength: maxIdLength },
    });
  }
  return value;
}

/**
 * `base` with `patch` merged in (a string sets a key, null removes it), as a
 * new object. The limits are checked on the result, before anything is
 * stored.
 */
export function mergeMetadata(base: Record<string, string>, patch: Record<string, string | null>, o: ResolvedRegistryOptions): Record<string, string> {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'metadata must be an object of strings');
  }
  const out: Record<string, string> = { ...base };
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (key.length === 0 || key.length > o.maxMetadataKeyLength || key === '__proto__') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `metadata keys must be 1 to ${o.maxMetadataKeyLength} characters (and not __proto__)`, {
        details: { limit: 'maxMetadataKeyLength', max: o.maxMetadataKeyLength, keyLength: key.length },
      });
    }
    if (value === null) {
      delete out[key];
      continue;
    }
    if (typeof value !== 'string' || value.length > o.maxMetadataValueLength) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `metadata values must be strings of at most ${o.maxMetadataValueLength} characters`, {
        details: { limit: 'maxMetadataValueLength', max: o.maxMetadataValueLength, key },
      });
    }
    out[key] = value;
  }
  if (Object.keys(out).length > o.maxMetadataKeys) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `a session holds at most ${o.maxMetadataKeys} metadata keys`, {
      details: { limit: 'maxMetadataKeys', max: o.maxMetadataKeys },
    });
  }
  return out;
}

const STAT_FIELDS = ['bytesIn', 'bytesOut', 'messagesIn', 'messagesOut', 'heartbeats'] as const;

/** A remote port: null, or an integer 0 to 65535 (`NETLOOP_INVALID_VALUE` otherwise). */
export function checkPort(value: number | null): number | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'remotePort must be an integer 0 to 65535, or null', { details: { field: 'remotePort' } });
  }
  return value;
}

/** Refuses a counters delta with an unknown field (`NETLOOP_INVALID_VALUE`) or a value that is not an integer >= 0. */
export function checkStatsDelta(delta: Partial<SessionStats>): void {
  for (const k of Object.keys(delta)) {
    if (!(STAT_FIELDS as readonly string[]).includes(k)) throw new NetloopError(ErrorCode.INVALID_VALUE, `unknown stats field ${k}`);
  }
  for (const k of STAT_FIELDS) {
    const v = delta[k];
    if (v !== undefined) checkInteger(`stats.${k}`, v, 0, Number.MAX_SAFE_INTEGER);
  }
}

/** `stats` with a checked `delta` added, as a new object. */
export function addStats(stats: SessionStats, delta: Partial<SessionStats>): SessionStats {
  const out = { ...stats };
  for (const k of STAT_FIELDS) out[k] += delta[k] ?? 0;
  return out;
}
