/**
 * The list of benchmark scenarios the suite runner runs, in order.
 *
 * Each entry names a module (relative to this file, as compiled into
 * `dist/bench/`) that exports `scenario: Scenario`. Modules are imported
 * dynamically, one at a time, so adding a scenario is one line here, and a
 * module that is missing or throws while loading is reported by the runner
 * without stopping the other scenarios.
 *
 * @module
 */

import { fileURLToPath, pathToFileURL } from 'node:url';
import * as path from 'node:path';
import type { Scenario } from './scenario.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** One scenario module of the suite. */
export interface RegistryEntry {
  /** The scenario's name, as `--only` accepts it (the module's `scenario.name` should match). */
  name: string;
  /** A module specifier relative to this file (e.g. `./latency.js`), or an absolute file URL. */
  module: string;
}

/** Every scenario of the suite, in the order the runner runs them. */
export const SCENARIO_MODULES: readonly RegistryEntry[] = [
  { name: 'pingpong', module: './pingpong.js' },
  { name: 'latency', module: './latency.js' },
  { name: 'pipelined', module: './pipelined.js' },
  { name: 'typed-path', module: './typed-path.js' },
  { name: 'decode', module: './decode.js' },
  { name: 'idle-memory', module: './idle-memory.js' },
  { name: 'sessions', module: './sessions.js' },
  { name: 'file-store', module: './file-store.js' },
  { name: 'redis-store', module: './redis-store.js' },
  { name: 'etcd-store', module: './etcd-store.js' },
  { name: 'fanout', module: './fanout.js' },
  { name: 'rooms', module: './rooms.js' },
  { name: 'ops-overhead', module: './ops-overhead.js' },
  { name: 'workers', module: './workers.js' },
  { name: 'rpc', module: './rpc.js' },
];

/** A scenario the runner can load lazily: from a module, or already in hand. */
export interface ScenarioSource {
  /** The name `--only` matches. */
  name: string;
  /** Loads the scenario; rejects with a readable error when it cannot. */
  load(): Promise<Scenario>;
}

/** True when `value` has the shape of a {@link Scenario}. */
export function isScenario(value: unknown): value is Scenario {
  const s = value as Partial<Scenario> | null | undefined;
  return typeof s === 'object' && s !== null && typeof s.name === 'string' && typeof s.run === 'function';
}

/**
 * The source of a registry entry: importing its module and checking that it
 * exports a scenario. A module that does not exist (not written or not built
 * yet) gets a message that says so.
 */
export function sourceOf(entry: RegistryEntry): ScenarioSource {
  return {
    name: entry.name,
    async load(): Promise<Scenario> {
      const url = new URL(entry.module, import.meta.url).href;
      let mod: { scenario?: unknown };
      try {
        mod = (await import(url)) as { scenario?: unknown };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // The module itself is missing (not a file it imports): Node names it first, quoted.
        if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${fileURLToPath(url)}'`)) {
          throw new NetloopError(ErrorCode.BENCH_FAILED, `module ${entry.module} not found (not written or not built yet)`, {
            cause: err,
            details: { module: entry.module },
          });
        }
        throw new NetloopError(ErrorCode.BENCH_FAILED, `module ${entry.module} failed to load: ${(err as Error).message}`, {
          cause: err,
          details: { module: entry.module },
        });
      }
      if (!isScenario(mod.scenario)) {
        throw new NetloopError(ErrorCode.BENCH_FAILED, `module ${entry.module} does not export \`scenario: Scenario\``, {
          details: { module: entry.module },
        });
      }
      return mod.scenario;
    },
  };
}

/** The source of a module given as a file path (the runner's `--module FILE`). */
export function sourceOfFile(file: string): ScenarioSource {
  const href = pathToFileURL(path.resolve(file)).href;
  return sourceOf({ name: path.basename(file).replace(/\.[cm]?js$/, ''), module: href });
}

/** The source of a scenario already in hand (a scenario module run standalone). */
export function sourceOfScenario(scenario: Scenario): ScenarioSource {
  return { name: scenario.name, load: () => Promise.resolve(scenario) };
}

/** The sources of every registered scenario. */
export function registeredSources(): ScenarioSource[] {
  return SCENARIO_MODULES.map(sourceOf);
}
