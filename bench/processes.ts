/**
 * Runs benchmark servers and load generators in separate child processes, so
 * the process being measured never shares its event loop (or its garbage
 * collector) with the process doing the measuring.
 *
 * Both sides of a tiny line protocol over the child's stdio live here:
 *
 * ```
 *   parent (scenario)                         child (compiled dist script)
 *   ─────────────────                         ────────────────────────────
 *   spawnChild(script, args) ───── argv ────▶ parseFlags(process.argv)
 *                            ◀─── stdout ──── "listening 40123"         (announceListening)
 *   handle.send("mem 2000")  ───── stdin ───▶ onControl(line => ...)
 *                            ◀─── stdout ──── {"rss":...}               (emitJson)
 *   stdin closed / kill()    ───── EOF ─────▶ the child exits
 * ```
 *
 * Every child is bounded in time: it is killed (SIGTERM, then SIGKILL) when
 * its `timeoutMs` passes, and it exits by itself when its stdin closes, so a
 * crashed parent never leaves servers behind. Servers bind 127.0.0.1 only.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as path from 'node:path';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** How to start one child process. */
export interface SpawnOptions {
  /** Absolute path of a compiled script (see {@link siblingScript}). */
  script: string;
  /** Arguments after the script path. */
  args?: readonly string[];
  /** Node flags before the script path, e.g. `['--expose-gc']`. */
  execArgv?: readonly string[];
  /** Hard bound on the child's life in ms; it is killed when it passes. */
  timeoutMs: number;
  /** A short name for messages, e.g. `server:netloop`. */
  name?: string;
}

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the child was killed because its `timeoutMs` passed. */
  timedOut: boolean;
}

/** The last lines of stderr kept for error messages. */
const STDERR_TAIL_BYTES = 4_096;
/** Grace between SIGTERM and SIGKILL when stopping a child. */
const KILL_GRACE_MS = 2_000;

/**
 * The path of a compiled script next to the calling module, e.g.
 * `siblingScript(import.meta.url, 'framed-echo-server.js')`.
 */
export function siblingScript(moduleUrl: string, fileName: string): string {
  return path.join(path.dirname(fileURLToPath(moduleUrl)), fileName);
}

/**
 * One running child: its stdout read as lines, awaited in order.
 *
 * ```
 *   lines: [ "listening 40123", "{...}", "{...}" ]
 *                                  ▲ cursor: waitForLine() scans from here and moves past its match
 * ```
 */
export class ChildHandle {
  /** The name used in messages. */
  readonly name: string;
  /** The underlying child process. */
  readonly child: ChildProcess;
  /** Settles once, when the child has exited. */
  readonly exited: Promise<ChildExit>;

  private readonly lines: string[] = [];
  private cursor = 0;
  private partial = '';
  private stderrTail = '';
  private exit: ChildExit | undefined;
  private timedOut = false;
  private readonly hardTimer: NodeJS.Timeout;
  private readonly waiters = new Set<() => void>();

  constructor(options: SpawnOptions) {
    this.name = options.name ?? path.basename(options.script);
    this.child = spawn(process.execPath, [...(options.execArgv ?? []), options.script, ...(options.args ?? [])], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    // A child that exits early closes its stdin; writing to it then must not crash the parent.
    this.child.stdin!.on('error', () => undefined);
    this.hardTimer = setTimeout(() => {
      this.timedOut = true;
      void this.kill();
    }, options.timeoutMs);
    this.exited = new Promise<ChildExit>((resolve) => {
      this.child.on('error', (err) => {
        this.stderrTail += `\nspawn error: ${err.message}`;
      });
      this.child.on('close', (code, signal) => {
        clearTimeout(this.hardTimer);
        if (this.partial !== '') this.pushLine(this.partial);
        this.partial = '';
        this.exit = { code, signal, timedOut: this.timedOut };
        this.wake();
        resolve(this.exit);
      });
    });
  }

  /** The last few KiB the child wrote to stderr, for error messages. */
  stderr(): string {
    return this.stderrTail.trim();
  }

  /** Writes one line to the child's stdin. */
  send(line: string): void {
    if (this.exit === undefined && this.child.stdin?.writable === true) this.child.stdin.write(`${line}\n`);
  }

  /**
   * Resolves with the next stdout line (after those already consumed) that
   * satisfies `match`. Rejects with a coded error when the child exits first
   * or when `timeoutMs` passes.
   */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs: number, what = 'a line'): Promise<string> {
    const test = typeof match === 'function' ? match : (line: string) => match.test(line);
    return new Promise<string>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        while (this.cursor < this.lines.length) {
          const line = this.lines[this.cursor++]!;
          if (test(line)) {
            finish();
            resolve(line);
            return;
          }
        }
        if (this.exit !== undefined) {
          finish();
          reject(this.failure(`exited before printing ${what}`));
        }
      };
      const finish = (): void => {
        this.waiters.delete(check);
        if (timer !== undefined) clearTimeout(timer);
      };
      timer = setTimeout(() => {
        finish();
        reject(this.failure(`printed no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves with the next stdout line that parses as a JSON object. */
  async nextJson<T = Record<string, unknown>>(timeoutMs: number, what = 'a JSON result'): Promise<T> {
    const line = await this.waitForLine(isJsonLine, timeoutMs, what);
    return JSON.parse(line) as T;
  }

  /**
   * Resolves with the last JSON line the child printed, once it has exited
   * with code 0; rejects when it failed, timed out or printed none.
   */
  async result<T = Record<string, unknown>>(): Promise<T> {
    const exit = await this.exited;
    if (exit.timedOut) throw this.failure('was killed: it passed its time limit');
    if (exit.code !== 0) throw this.failure(`exited with code ${String(exit.code)} (signal ${String(exit.signal)})`);
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const line = this.lines[i]!;
      if (isJsonLine(line)) return JSON.parse(line) as T;
    }
    throw this.failure('printed no JSON result');
  }

  /** Stops the child: closes its stdin, sends SIGTERM, then SIGKILL after a grace period. Resolves once it has exited. */
  async kill(): Promise<ChildExit> {
    if (this.exit !== undefined) return this.exit;
    this.child.stdin?.end();
    this.child.kill('SIGTERM');
    const grace = setTimeout(() => this.child.kill('SIGKILL'), KILL_GRACE_MS);
    const exit = await this.exited;
    clearTimeout(grace);
    return exit;
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.pushLine(line);
    this.wake();
  }

  private pushLine(line: string): void {
    const trimmed = line.trim();
    if (trimmed !== '') this.lines.push(trimmed);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private failure(what: string): NetloopError {
    const stderr = this.stderr();
    return new NetloopError(ErrorCode.BENCH_FAILED, `${this.name} ${what}${stderr === '' ? '' : `; stderr:\n${stderr}`}`, {
      details: { child: this.name, exitCode: this.exit?.code ?? null, timedOut: this.timedOut },
    });
  }
}

function isJsonLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** Starts a child process. */
export function spawnChild(options: SpawnOptions): ChildHandle {
  return new ChildHandle(options);
}

/** A server child that has announced its port. */
export interface ServerChild {
  handle: ChildHandle;
  port: number;
}

/**
 * Starts a server child and resolves once it prints `listening <port>`.
 * The child is killed if it does not announce within `startTimeoutMs`.
 */
export async function startServer(options: SpawnOptions & { startTimeoutMs?: number }): Promise<ServerChild> {
  const handle = spawnChild(options);
  try {
    const line = await handle.waitForLine(/^listening \d+$/, options.startTimeoutMs ?? 10_000, "'listening <port>'");
    return { handle, port: Number.parseInt(line.slice('listening '.length), 10) };
  } catch (err) {
    await handle.kill();
    throw err;
  }
}

/** Runs a child to completion and resolves with its last JSON line (see {@link ChildHandle.result}). */
export async function runToResult<T = Record<string, unknown>>(options: SpawnOptions): Promise<T> {
  const handle = spawnChild(options);
  try {
    return await handle.result<T>();
  } finally {
    await handle.kill();
  }
}

// ─── the child's side of the protocol ────────────────────────────────────────

/**
 * Parses `--name value` and bare `--flag` arguments into a map.
 * A flag followed by another flag (or nothing) is `true`.
 */
export function parseFlags(argv: readonly string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      flags.set(arg.slice(2), next);
      i++;
    } else {
      flags.set(arg.slice(2), true);
    }
  }
  return flags;
}

/** Reads an integer flag, or `fallback` when absent; a malformed value is a coded error. */
export function intFlag(flags: Map<string, string | true>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < 0) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--${name} must be a non-negative integer, got ${String(raw)}`, {
      details: { option: name, value: raw },
    });
  }
  return n;
}

/** Reads a string flag, or `fallback` when absent. */
export function stringFlag(flags: Map<string, string | true>, name: string, fallback: string): string {
  const raw = flags.get(name);
  return typeof raw === 'string' ? raw : fallback;
}

/** Tells the parent the server is ready (`listening <port>`). */
export function announceListening(port: number): void {
  process.stdout.write(`listening ${port}\n`);
}

/** Prints one JSON object as a line on stdout (a result, or a reply to a control line). */
export function emitJson(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Calls `handler` with every line the parent sends on stdin, and calls
 * `onEnd` (default: exit the process) when the parent closes stdin or dies,
 * so no child outlives its parent.
 */
export function onControl(handler: (line: string) => void, onEnd: () => void = () => process.exit(0)): void {
  let partial = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line.trim() !== '') handler(line.trim());
  });
  process.stdin.on('end', onEnd);
  process.stdin.on('error', onEnd);
}

/**
 * True when the module whose `import.meta.url` is given is the script Node was
 * started with, so a file can be both a runnable script and an importable module.
 */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  const resolved = path.resolve(entry);
  return pathToFileURL(resolved).href === moduleUrl || pathToFileURL(`${resolved}.js`).href === moduleUrl;
}

/** Runs `main` and exits non-zero with the error on stderr when it throws or rejects. */
export function runChildMain(main: () => Promise<void> | void): void {
  Promise.resolve()
    .then(main)
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}
