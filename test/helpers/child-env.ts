/**
 * The environment for a child process whose coverage nobody reads.
 *
 * `npm run test:coverage` measures the coverage of the library (`dist/lib`) with c8,
 * which sets `NODE_V8_COVERAGE`; every Node process started under it inherits
 * the variable, runs with V8's block counters on, and writes at exit a JSON
 * report of every script it loaded, Node's own included. Two kinds of child
 * pay that price for nothing:
 *
 * - a child that runs only tools (TypeScript, dependency-cruiser, the build
 *   script, the error catalogue's generator): none of its scripts is under
 *   `dist/lib`, so c8 filters its report out; instrumented TypeScript runs
 *   about twice as slowly, and its report is several megabytes;
 * - a child that is always ended with SIGKILL: it never writes its report.
 *
 * Such children get {@link uncoveredEnv}. A child that runs library code and
 * exits by itself keeps the variable: its counts belong in the report.
 *
 * ```
 *   c8 ──NODE_V8_COVERAGE──▶ test file ──env──────────▶ example, fixture   (counted)
 *                                       └─uncoveredEnv()─▶ tsc, depcruise, killed writer  (not instrumented)
 * ```
 *
 * @module
 */

/**
 * `env` (default: this process's) plus `extra`, with `NODE_V8_COVERAGE` set
 * to the empty string. Deleting the variable is not enough: when the parent
 * has it, Node's `child_process` copies it into any `env` that lacks it (so
 * that coverage follows programs that pass a reduced environment); an empty
 * value is kept, and Node starts coverage only for a non-empty one.
 */
export function uncoveredEnv(extra: NodeJS.ProcessEnv = {}, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, ...extra, NODE_V8_COVERAGE: '' };
}
