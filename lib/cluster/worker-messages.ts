/**
 * The two messages a {@link WorkerPool} and its workers exchange over the
 * `node:cluster` IPC channel, and the environment a worker is started with.
 *
 * ```
 *   primary (WorkerPool)                      worker (joinWorkerPool)
 *     cluster.fork({ NETLOOP_WORKER_SLOT,  ─▶  reads its slot and generation (workerIdentity())
 *                    NETLOOP_WORKER_GENERATION })
 *                               ◀── { type: 'netloop:worker-ready' }    once it listens
 *     { type: 'netloop:worker-drain' } ──▶  server.close({ notice, ... }), then exit
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/** The `type` of the messages of the pool's protocol. */
export const WORKER_MESSAGES = Object.freeze({
  /** Worker to primary: it listens and serves. */
  ready: 'netloop:worker-ready',
  /** Primary to worker: stop accepting, tell the clients, close them gracefully, then exit. */
  drain: 'netloop:worker-drain',
} as const);

/** The environment variable that holds a worker's slot (0 to size - 1). */
export const WORKER_SLOT_ENV = 'NETLOOP_WORKER_SLOT';
/** The environment variable that holds a worker's generation (unique within its pool, counting every fork). */
export const WORKER_GENERATION_ENV = 'NETLOOP_WORKER_GENERATION';

/** Where a worker stands in its pool. */
export interface WorkerIdentity {
  /** Its slot, 0 to the pool's size - 1; a replacement takes the slot of the worker it replaces. */
  slot: number;
  /** Its generation: unique within the pool (every fork counts), so ids built from it never repeat across restarts. */
  generation: number;
}

/**
 * The slot and generation a {@link WorkerPool} gave this process, or null
 * when it was not forked by one. `env` is a seam for tests.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` when the variables are set but malformed.
 */
export function workerIdentity(env: NodeJS.ProcessEnv = process.env): WorkerIdentity | null {
  const slot = env[WORKER_SLOT_ENV];
  const generation = env[WORKER_GENERATION_ENV];
  if (slot === undefined || generation === undefined) return null;
  const s = Number(slot);
  const g = Number(generation);
  if (!/^\d+$/.test(slot) || !/^\d+$/.test(generation) || !Number.isSafeInteger(s) || !Number.isSafeInteger(g)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${WORKER_SLOT_ENV} and ${WORKER_GENERATION_ENV} must be non-negative integers`, {
      details: { option: WORKER_SLOT_ENV, slot, generation },
    });
  }
  return { slot: s, generation: g };
}

/** @internal True when `msg` is a message of the pool's protocol with this type. */
export function isWorkerMessage(msg: unknown, type: string): boolean {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === type;
}
