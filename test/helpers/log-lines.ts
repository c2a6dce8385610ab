/**
 * The examples' log lines, read back as records whichever form they took:
 * pino's JSON (`--log auto` with pino installed, `--log pino`) or
 * `consoleLogger`'s plain lines (`--log plain`).
 *
 * ```
 *   {"level":30,"time":...,"event":"close","clientId":7,"reason":"peer-closed","msg":"connection closed"}
 *   2025-01-01T00:00:00.000Z INFO connection closed event=close clientId=7 reason=peer-closed
 *        └──────────────▶ { level: 'info', msg: 'connection closed', event: 'close', clientId: 7 | '7', reason: 'peer-closed' }
 * ```
 *
 * Matching compares values as strings (a plain line has no types), so
 * `{ clientId: 7 }` matches both forms.
 *
 * @module
 */

import type { ChildHandle } from '../../bench/processes.js';

/** One parsed log line. */
export type LogRecord = Record<string, unknown> & { level: string; msg: string | undefined; form: 'json' | 'plain' };

/** pino's numeric levels. */
const PINO_LEVELS: Readonly<Record<number, string>> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

const PLAIN = /^\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARN|ERROR) ?(.*)$/;
const FIELD = /(?:^| )([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|\S*)/g;

/** The record of a log line, or null for a line that is none (the programs' own lines, such as "listening on"). */
export function parseLogLine(line: string): LogRecord | null {
  if (line.startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return null;
    }
    if (typeof o !== 'object' || o === null || typeof (o as { level?: unknown }).level !== 'number') return null;
    const r = o as Record<string, unknown>;
    return { ...r, level: PINO_LEVELS[r['level'] as number] ?? String(r['level']), msg: typeof r['msg'] === 'string' ? r['msg'] : undefined, form: 'json' };
  }
  const m = PLAIN.exec(line);
  if (m === null) return null;
  const rest = m[2]!;
  const fields: Record<string, unknown> = {};
  let first = rest.length;
  for (const f of rest.matchAll(FIELD)) {
    first = Math.min(first, f.index);
    const raw = f[2]!;
    fields[f[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as unknown) : raw;
  }
  const msg = rest.slice(0, first).trim();
  return { ...fields, level: m[1]!.toLowerCase(), msg: msg === '' ? undefined : msg, form: 'plain' };
}

/** What a record must hold: each field equal as a string, or matching a pattern; `undefined` means absent. */
export type LogPattern = Record<string, string | number | boolean | RegExp | undefined>;

/** True when `record` holds every field of `want`. */
export function logMatches(record: LogRecord, want: LogPattern): boolean {
  for (const [k, v] of Object.entries(want)) {
    const got = record[k];
    if (v === undefined) {
      if (got !== undefined) return false;
    } else if (got === undefined || got === null) return false;
    else if (v instanceof RegExp) {
      if (!v.test(String(got))) return false;
    } else if (String(got) !== String(v)) return false;
  }
  return true;
}

/**
 * Resolves with the next log record of the child (after the lines already
 * consumed, see `ChildHandle.waitForLine`) that holds `want`.
 */
export async function waitForLog(handle: ChildHandle, want: LogPattern, timeoutMs: number, what?: string): Promise<LogRecord> {
  const label = what ?? `a log line with ${JSON.stringify(want, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v))}`;
  const line = await handle.waitForLine(
    (l) => {
      const r = parseLogLine(l);
      return r !== null && logMatches(r, want);
    },
    timeoutMs,
    label,
  );
  return parseLogLine(line)!;
}
