/**
 * The examples' logs: pino when the application has it installed, plain
 * lines otherwise, nothing when asked, always on stdout (beside the lines a
 * program prints for its user, such as the one that says where it listens).
 *
 * ```
 *   --log auto    (await tryPino()) ?? consoleLogger()     the default
 *   --log pino    pino's JSON lines; an error when pino is not installed
 *   --log plain   2025-01-01T00:00:00.000Z INFO connection closed event=close clientId=7 reason=peer-closed
 *   --log none    nothing
 * ```
 *
 * Every line carries fields (`event`, ids, reasons, stable codes, sizes),
 * never a payload byte, a token or an error's message.
 *
 * pino writes synchronously here (its default destination is
 * asynchronous): the program's own lines share stdout with the logs, and
 * must appear in the order things happened ("stopped" after the last
 * close).
 *
 * @module
 */

import { ErrorCode, NetloopError } from 'netloop';
import { consoleLogger, quietLogger } from 'netloop/ops';
import type { Logger } from 'netloop/ops';

/** The values of the examples' `--log` option. */
export const LOG_MODES = ['auto', 'pino', 'plain', 'none'] as const;

/** One of {@link LOG_MODES}. */
export type LogMode = (typeof LOG_MODES)[number];

/** A logger and what it turned out to be (`auto` picks pino or plain). */
export interface ExampleLogger {
  readonly logger: Logger;
  readonly kind: 'pino' | 'plain' | 'none';
}

/**
 * The logger a `--log` mode asks for; `name` is the `name` field of pino's
 * lines (plain lines go without it).
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for `pino` when pino is not installed.
 */
export async function exampleLogger(mode: LogMode, name: string): Promise<ExampleLogger> {
  if (mode === 'none') return { logger: quietLogger, kind: 'none' };
  if (mode !== 'plain') {
    const pino = await loadPino(name);
    if (pino !== null) return { logger: pino, kind: 'pino' };
    if (mode === 'pino') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, '--log pino: pino is not installed (npm install pino)', { details: { option: '--log' } });
    }
  }
  return { logger: consoleLogger({ sink: process.stdout }), kind: 'plain' };
}

/** The part of pino's module used here. */
interface PinoModule {
  (options: { name: string }, destination: unknown): Logger;
  destination(options: { fd: number; sync: boolean }): unknown;
}

/** A pino logger named `name` writing synchronously to stdout, or null when pino is not installed. */
async function loadPino(name: string): Promise<Logger | null> {
  let mod: { default?: unknown; pino?: unknown };
  try {
    // A specifier in a variable: TypeScript does not resolve it, so the examples compile without pino.
    const specifier = 'pino';
    mod = (await import(specifier)) as { default?: unknown; pino?: unknown };
  } catch {
    return null;
  }
  const pino = (typeof mod.default === 'function' ? mod.default : mod.pino) as PinoModule | undefined;
  if (typeof pino !== 'function' || typeof pino.destination !== 'function') return null;
  return pino({ name }, pino.destination({ fd: 1, sync: true }));
}
