/**
 * `netloop/testing`: the test kit for applications and store adapters built
 * on netloop.
 *
 * ```
 *   time          ManualClock        virtual monotonic and wall time (advance, jumpWall)
 *                 ManualScheduler    virtual-time timers for the file store (a StoreScheduler)
 *   file system   FaultyFs           real files, with injected faults, torn writes and gates
 *                 countingFs         counts every call of a file-system facade
 *   stores        storeConformance   the behavioural suite every SessionStore must pass,
 *                                    runner-agnostic (give it your runner's `test`)
 *                 makeRecord, fakeTokenHash, CONFORMANCE_TTL_MS   records for your own tests
 *   store authors validateSessionRecord, copySessionRecord, applySessionPatch,
 *                 checkWriteCondition, validateSessionChange, copySessionChange, isSharedStore
 *                                    the checks and copies netloop's own stores use, so a
 *                                    store of yours refuses and copies exactly as they do
 * ```
 *
 * @module
 */

export { ManualClock } from './core/clock.js';
export { ManualScheduler } from './testing/manual-scheduler.js';
export { FaultyFs, errnoError } from './testing/faulty-fs.js';
export type { FsOp } from './testing/faulty-fs.js';
export { countingFs } from './store/file/fs-facade.js';
export type { CountingFs, FsCounts } from './store/file/fs-facade.js';
export { storeConformance, makeRecord, fakeTokenHash, CONFORMANCE_TTL_MS } from './testing/store-conformance.js';
export type { ConformanceTest, StoreConformanceOptions } from './testing/store-conformance.js';
export { isSharedStore } from './store/contract.js';
export { validateSessionRecord, copySessionRecord, applySessionPatch, checkWriteCondition, validateSessionChange, copySessionChange } from './store/record.js';
