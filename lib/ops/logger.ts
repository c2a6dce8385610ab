/**
 * Structured logging: the {@link Logger} interface netloop writes through,
 * a quiet default, a plain-line logger, and pino when it is installed.
 *
 * The interface is the common subset of pino, bunyan and most structured
 * loggers: four levels that take an object of fields and a message, and
 * `child(bindings)` for fields every line of a component carries. A pino
 * logger is a {@link Logger} as it is, with no adapter.
 *
 * ```
 *   netloop (diagnostics channels, stores, registry)
 *        │  logger.warn({ event: 'close', clientId: 7, reason: 'output-limit', code: 'NETLOOP_OUTPUT_LIMIT' }, 'client closed')
 *        ▼
 *   quietLogger      nothing (the default: a library does not print unless asked)
 *   consoleLogger()  one plain line per event: time, level, message, key=value ...
 *   await tryPino()  pino's JSON lines, when the application has pino installed
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/** The levels of a {@link Logger}, quietest last. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One level's method: structured fields first, then a short constant message. */
export type LogMethod = (fields: object, message?: string) => void;

/**
 * What netloop logs through. pino's loggers fit it as they are.
 *
 * The fields of every line netloop writes are ids, reasons, stable codes,
 * sizes and addresses; never a payload byte, a session token, a token hash
 * or an error message (which may quote anything).
 */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  /** A logger whose every line also carries `bindings`. */
  child(bindings: Record<string, unknown>): Logger;
}

function nothing(): void {}

/** The default logger: it writes nothing. */
export const quietLogger: Logger = Object.freeze({
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
  child(): Logger {
    return quietLogger;
  },
});

/** Where a {@link consoleLogger} writes its lines. */
export interface LineSink {
  write(line: string): unknown;
}

/** Options of {@link consoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Lines below this level are dropped; default `'info'`. */
  level?: LogLevel;
  /** Where lines go; default `process.stderr`. */
  sink?: LineSink;
  /** Fields on every line. */
  bindings?: Record<string, unknown>;
  /** The time of a line; default the current wall time as ISO 8601. */
  time?: () => string;
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 20, info: 30, warn: 40, error: 50, silent: 100 };

function checkLevel(level: unknown): LogLevel {
  if (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `level must be one of ${LOG_LEVELS.join(', ')}`, {
      details: { option: 'level', value: String(level) },
    });
  }
  return level as LogLevel;
}

/** A value as it appears after `key=` in a plain line: bare when it is a simple token, else JSON-quoted. */
function plainValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'string') return /^[\w.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return '"[unserializable]"';
  }
}

/**
 * A logger that writes one plain, greppable line per call:
 * `2025-01-01T00:00:00.000Z WARN client closed event=close clientId=7 reason=output-limit`.
 * For examples and small deployments without pino.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for an unknown level or a sink without `write`.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const level = checkLevel(options.level ?? 'info');
  const sink = options.sink ?? process.stderr;
  if (typeof (sink as Partial<LineSink>).write !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'sink must have a write(line) method', { details: { option: 'sink' } });
  }
  const time = options.time ?? ((): string => new Date().toISOString());
  return makeConsoleLogger(LEVEL_RANK[level], sink, time, { ...(options.bindings ?? {}) });
}

function makeConsoleLogger(min: number, sink: LineSink, time: () => string, bindings: Record<string, unknown>): Logger {
  const method = (name: Exclude<LogLevel, 'silent'>): LogMethod => {
    if (LEVEL_RANK[name] < min) return nothing;
    const tag = name.toUpperCase();
    return (fields: object, message?: string): void => {
      let line = `${time()} ${tag}${message === undefined ? '' : ` ${message}`}`;
      for (const [k, v] of Object.entries(bindings)) line += ` ${k}=${plainValue(v)}`;
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${plainValue(v)}`;
      sink.write(`${line}\n`);
    };
  };
  return {
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    child(more: Record<string, unknown>): Logger {
      return makeConsoleLogger(min, sink, time, { ...bindings, ...more });
    },
  };
}

/**
 * pino, when the application has it installed (it is not a dependency of
 * netloop): `pino(options)`, else null. The examples use it as
 * `(await tryPino()) ?? consoleLogger()`.
 *
 * @param options passed to `pino()` as they are (e.g. `{ level: 'debug', name: 'chat' }`).
 */
export async function tryPino(options: Record<string, unknown> = {}): Promise<Logger | null> {
  let mod: unknown;
  try {
    // A specifier in a variable: TypeScript does not resolve it, so netloop compiles without pino.
    const name = 'pino';
    mod = await import(name);
  } catch {
    return null;
  }
  const m = mod as { default?: unknown; pino?: unknown };
  const factory = typeof m.default === 'function' ? m.default : m.pino;
  if (typeof factory !== 'function') return null;
  return (factory as (o: Record<string, unknown>) => Logger)(options);
}
