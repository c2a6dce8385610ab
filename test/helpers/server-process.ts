/**
 * The life cycle of a server process owned by a test harness: spawn it, wait
 * until it is ready (a line in its output, or a probe that talks to it), keep
 * draining its output, stop it with a grace period, and kill it if the test
 * process exits first.
 *
 * ```
 *   launchServer(spec)
 *     ├─ spawn executable args            stdout + stderr piped, tail kept for errors
 *     ├─ ready when:  spec.readyLine appears in the output
 *     │          or:  spec.probe() resolves true; it is tried again on each
 *     │               output chunk and at least every PROBE_INTERVAL_MS
 *     ├─ rejects if the process exits first or spec.timeoutMs passes (then SIGKILL)
 *     └─ resolves with the ChildProcess, tracked in `live` until it exits
 *
 *   terminateServer(child, signal)   SIGCONT (unless SIGKILL), signal, SIGKILL after a grace
 *   process 'exit'                   SIGKILL to every tracked child still alive
 * ```
 *
 * The etcd and Redis Cluster harnesses share it; each says how its server
 * shows readiness.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';

/** How a server process is started and how its readiness shows. */
export interface LaunchSpec {
  /** A short name for error messages, e.g. `etcd`. */
  name: string;
  executable: string;
  args: readonly string[];
  /** The deadline for readiness, in ms. */
  timeoutMs: number;
  /** Ready once this text appears in stdout or stderr. */
  readyLine?: string;
  /**
   * Ready once this resolves true. A rejection or false means "not yet"; the
   * probe runs again after the next output chunk or {@link PROBE_INTERVAL_MS}.
   */
  probe?: () => Promise<boolean>;
  /** Extra environment variables. */
  env?: NodeJS.ProcessEnv;
}

/** The longest wait between two readiness probes when the server prints nothing. */
export const PROBE_INTERVAL_MS = 20;
/** How long a stopping server gets before SIGKILL. */
export const STOP_GRACE_MS = 5_000;
const LOG_TAIL_CHARS = 4_000;

/** Every server started through this module and not yet exited; killed if the process exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** Quotes one argument for a printable shell command line. */
export function quoteArg(arg: string): string {
  return /^[\w./:=,+@-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Whether `child` has exited (or was killed). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves once `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Spawns a server and resolves once it is ready; rejects with
 * `NETLOOP_STORE_UNAVAILABLE` (after killing it) if it exits first or the
 * deadline passes. The error's `details.log` holds the tail of its output.
 */
export function launchServer(spec: LaunchSpec): Promise<ChildProcess> {
  installExitHook();
  return new Promise((resolve, reject) => {
    const child = spawn(spec.executable, spec.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: spec.env === undefined ? process.env : { ...process.env, ...spec.env },
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    let log = '';
    let settled = false;
    let probing = false;
    let probeTimer: NodeJS.Timeout | undefined;

    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(probeTimer);
      if (err === null) {
        // Keep draining output so the server never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(child);
      } else {
        child.kill('SIGKILL');
        reject(err);
      }
    };

    // One probe at a time; a finished probe that said "not yet" arms the
    // interval timer, and any output chunk in between starts the next one early.
    const probeOnce = (): void => {
      if (spec.probe === undefined || settled || probing) return;
      probing = true;
      clearTimeout(probeTimer);
      spec.probe().then(
        (ready) => {
          probing = false;
          if (ready) finish(null);
          else if (!settled) probeTimer = setTimeout(probeOnce, PROBE_INTERVAL_MS);
        },
        () => {
          probing = false;
          if (!settled) probeTimer = setTimeout(probeOnce, PROBE_INTERVAL_MS);
        },
      );
    };

    const onOutput = (chunk: Buffer): void => {
      log = (log + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
      if (spec.readyLine !== undefined && log.includes(spec.readyLine)) finish(null);
      else probeOnce();
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('error', (err) =>
      finish(new NetloopError(ErrorCode.STORE_UNAVAILABLE, `${spec.name} failed to start: ${err.message}`, { cause: err })),
    );
    child.once('exit', (code, signal) =>
      finish(
        new NetloopError(ErrorCode.STORE_UNAVAILABLE, `${spec.name} exited before it was ready (code ${code}, signal ${signal})`, {
          details: { log },
        }),
      ),
    );
    const deadline = setTimeout(
      () =>
        finish(
          new NetloopError(ErrorCode.STORE_UNAVAILABLE, `${spec.name} was not ready within ${spec.timeoutMs} ms`, {
            details: { log },
          }),
        ),
      spec.timeoutMs,
    );
    probeOnce();
  });
}

/**
 * Stops `child` with `signal` and resolves once it has exited, sending
 * SIGKILL after {@link STOP_GRACE_MS}.
 */
export async function terminateServer(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!hasExited(child)) {
    // A paused server cannot act on SIGTERM until it is thawed; SIGKILL needs no thaw, and
    // must not get one: a killed paused server never answers what it was sent.
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited(child);
    clearTimeout(grace);
  }
  live.delete(child);
}

/**
 * Whether a process with this id is alive: it exists (signal 0 probes without
 * sending anything) and, where /proc shows it, is not a zombie waiting to be
 * reaped by a parent that has not yet collected it.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "<pid> (<comm>) <state> ..."; the name may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

/**
 * Freezes a child process (SIGSTOP) and returns once the kernel reports it
 * stopped (state `T` in `/proc/<pid>/stat`): a signal is delivered
 * asynchronously, and on a loaded machine a request sent right after
 * `kill()` could still be answered. Bounded: gives up after about a second
 * (then the caller's own assertion fails and says so).
 */
export function freezeProcess(child: { pid?: number | undefined; kill(signal: NodeJS.Signals): boolean }): void {
  child.kill('SIGSTOP');
  const pid = child.pid;
  if (pid === undefined) return;
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 1000; i++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return; // no procfs here, or the process is gone: nothing more to wait for
    }
    // The state follows the parenthesised command name, which may itself hold spaces or parentheses.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'T' || state === 't') return;
    Atomics.wait(tick, 0, 0, 1);
  }
}
