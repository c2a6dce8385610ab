/**
 * The examples' command lines. One table of options per program gives its
 * parser, its `--help` text and its errors, so every example answers alike:
 *
 * ```
 *   --help, -h        the usage, each option with its default; exit status 0
 *   a bad argument    one line on stderr with its code; exit status 2
 *                     chat-server: NETLOOP_INVALID_OPTION: --port must be an integer in [0, 65535], got 70000 (see --help)
 *   a later failure   one line on stderr with its code; exit status 1
 * ```
 *
 * Options are read with Node's `util.parseArgs` (tokens only, so every
 * error is worded here, on one line): `--name value` and `--name=value`;
 * flags take no value. A table is declared once with
 * {@link defineCommand}, and {@link parseCommandLine} returns its values
 * typed: an option with a default is always set, one without may be
 * `undefined`.
 *
 * @module
 */

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ErrorCode, NetloopError, isNetloopError } from 'netloop';

/** An integer option, checked against `[min, max]`. */
export interface IntegerOption {
  readonly type: 'integer';
  readonly default?: number;
  /** The option must be given (it then has no default). */
  readonly required?: boolean;
  readonly min: number;
  readonly max: number;
  /** The value's placeholder in the help; default `N`. */
  readonly arg?: string;
  readonly help: string;
}

/** A string option; `check` returns why a value is refused, or null. */
export interface StringOption {
  readonly type: 'string';
  readonly default?: string;
  /** The option must be given (it then has no default). */
  readonly required?: boolean;
  /** The accepted values, when they are a fixed set. */
  readonly choices?: readonly string[];
  readonly check?: (value: string) => string | null;
  /** The value's placeholder in the help; default `S`. */
  readonly arg?: string;
  readonly help: string;
}

/** A flag: present or not, never with a value. */
export interface FlagOption {
  readonly type: 'flag';
  readonly help: string;
}

/** One option of a command line. */
export type OptionSpec = IntegerOption | StringOption | FlagOption;

/** The options of a program, by name (`port` is `--port`). */
export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<O> = O extends IntegerOption ? number : string;

/** What {@link parseCommandLine} returns for a table: flags are booleans; an option without a default may be undefined. */
export type OptionValues<T extends OptionTable> = {
  -readonly [K in keyof T]: T[K] extends FlagOption
    ? boolean
    : T[K] extends { readonly default: number | string } | { readonly required: true }
      ? ValueOf<T[K]>
      : ValueOf<T[K]> | undefined;
};

/** A program's command line: its name (the prefix of its error lines), usage line, summary and options. */
export interface Command<T extends OptionTable> {
  /** Short program name, e.g. `chat-server`. */
  readonly name: string;
  /** How it is started, e.g. `npm start -- [options]`. */
  readonly usage: string;
  /** What it does, in a sentence or two. */
  readonly summary: string;
  readonly options: T;
  /** Lines printed after the options (examples of use). */
  readonly notes?: readonly string[];
}

/** Declares a command (an identity function that keeps the table's literal types). */
export function defineCommand<const T extends OptionTable>(command: Command<T>): Command<T> {
  return command;
}

/** A coded usage error: `NETLOOP_INVALID_OPTION`, naming the option. */
export function usageError(message: string, option: string, value?: string): NetloopError {
  return new NetloopError(ErrorCode.INVALID_OPTION, message, { details: value === undefined ? { option } : { option, value } });
}

/**
 * Checks that `value` is an integer in `[min, max]`: the examples' options
 * given in code are held to the same rule as on the command line.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION`.
 */
export function checkIntegerOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw usageError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`, name);
  }
  return value;
}

/** The `--help` text: usage, summary, every option with its default, notes. */
export function helpText(command: Command<OptionTable>): string {
  const rows: Array<[string, string]> = [];
  for (const [name, spec] of Object.entries(command.options)) {
    const left = spec.type === 'flag' ? `--${name}` : `--${name} ${spec.arg ?? (spec.type === 'integer' ? 'N' : 'S')}`;
    const notes: string[] = [];
    if (spec.type === 'string' && spec.choices !== undefined) notes.push(`one of: ${spec.choices.join(', ')}`);
    if (spec.type !== 'flag') {
      if (spec.required === true) notes.push('required');
      else notes.push(`default: ${spec.default === undefined || spec.default === '' ? 'none' : String(spec.default)}`);
    }
    rows.push([left, notes.length === 0 ? spec.help : `${spec.help} (${notes.join('; ')})`]);
  }
  rows.push(['-h, --help', 'print this help and exit']);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = [`usage: ${command.usage}`, '', command.summary, '', 'options:'];
  for (const [l, r] of rows) lines.push(`  ${l.padEnd(width)}${r}`);
  if (command.notes !== undefined && command.notes.length > 0) lines.push('', ...command.notes);
  return `${lines.join('\n')}\n`;
}

/** True when `argv` asks for the help (`--help` or `-h` anywhere). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/**
 * Parses `argv` against the command's table: defaults filled in, integers
 * checked, choices and checks applied.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (`details.option`) for an
 *   unknown option, a missing or refused value, a value given to a flag, or
 *   an argument that is no option. The message is one line.
 */
export function parseCommandLine<T extends OptionTable>(command: Command<T>, argv: readonly string[]): OptionValues<T> {
  const config: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, spec] of Object.entries(command.options)) config[name] = { type: spec.type === 'flag' ? 'boolean' : 'string' };
  // Not strict: every error is found from the tokens and worded here.
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | number | boolean | undefined> = {};
  for (const [name, spec] of Object.entries(command.options)) values[name] = spec.type === 'flag' ? false : spec.default;
  for (const token of tokens) {
    if (token.kind === 'positional') throw usageError(`unexpected argument ${JSON.stringify(token.value)}`, token.value);
    if (token.kind !== 'option') continue; // '--' ends the options; nothing follows it here but positionals
    const spec = Object.hasOwn(command.options, token.name) ? command.options[token.name] : undefined;
    if (spec === undefined) throw usageError(`unknown option ${token.rawName}`, token.rawName);
    const flag = `--${token.name}`;
    if (spec.type === 'flag') {
      if (token.value !== undefined) throw usageError(`${flag} takes no value`, flag, token.value);
      values[token.name] = true;
      continue;
    }
    const raw = token.value;
    // `--port --host x` would read '--host' as the port: an option's value
    // starting with '--' must be written `--port=--host`.
    if (raw === undefined || (!token.inlineValue && raw.startsWith('--'))) throw usageError(`${flag} needs a value`, flag);
    if (spec.type === 'integer') {
      const n = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isInteger(n) || n < spec.min || n > spec.max) {
        throw usageError(`${flag} must be an integer in [${spec.min}, ${spec.max}], got ${JSON.stringify(raw)}`, flag, raw);
      }
      values[token.name] = n;
    } else {
      if (spec.choices !== undefined && !spec.choices.includes(raw)) {
        throw usageError(`${flag} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(raw)}`, flag, raw);
      }
      const why = spec.check?.(raw) ?? null;
      if (why !== null) throw usageError(`${flag} ${why}, got ${JSON.stringify(raw)}`, flag, raw);
      values[token.name] = raw;
    }
  }
  for (const [name, spec] of Object.entries(command.options)) {
    if (spec.type !== 'flag' && spec.required === true && values[name] === undefined) throw usageError(`--${name} is required`, `--${name}`);
  }
  return values as OptionValues<T>;
}

/** The one line a program prints for an error: its name, the code when there is one, the message's first line. */
export function errorLine(program: string, err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n', 1)[0];
  return `${program}: ${isNetloopError(err) ? `${err.code}: ` : ''}${message}`;
}

/**
 * Runs a program: prints the help and exits 0 when asked; parses the
 * command line (`toArgs` may check more and throw a usage error too); on a
 * usage error prints one coded line and exits 2; then runs `main`, and on
 * its failure prints one coded line and exits 1.
 */
export function runCommand<T extends OptionTable, A = OptionValues<T>>(
  command: Command<T>,
  argv: readonly string[],
  main: (args: A) => void | Promise<void>,
  toArgs: (values: OptionValues<T>) => A = (values) => values as unknown as A,
): void {
  if (wantsHelp(argv)) {
    process.stdout.write(helpText(command));
    process.exitCode = 0;
    return;
  }
  let args: A;
  try {
    args = toArgs(parseCommandLine(command, argv));
  } catch (err) {
    process.stderr.write(`${errorLine(command.name, err)} (see --help)\n`);
    process.exit(isNetloopError(err, ErrorCode.INVALID_OPTION) ? 2 : 1);
  }
  const failed = (err: unknown): void => {
    process.stderr.write(`${errorLine(command.name, err)}\n`);
    process.exit(1);
  };
  try {
    const done = main(args);
    if (done !== undefined) done.catch(failed);
  } catch (err) {
    failed(err);
  }
}

/** True when the module at `moduleUrl` (pass `import.meta.url`) is the program Node was started with. */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(path.resolve(entry)).href === moduleUrl;
}
