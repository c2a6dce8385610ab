/**
 * Every example program answers alike on its command line (see
 * examples/shared/cli.ts): `--help` prints the usage and each option with
 * its default, and exits 0; a bad argument prints one coded line on stderr
 * and exits 2; a failure once started prints one coded line and exits 1.
 * The compiled programs run as child processes, side by side; the parser
 * of every table is also tried in process on each kind of mistake.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { CHAT_SERVER_COMMAND } from '../../../examples/chat/args.js';
import { CHAT_CLIENT_COMMAND } from '../../../examples/chat/client.js';
import { ECHO_COMMAND } from '../../../examples/echo/server.js';
import { PINGPONG_COMMAND } from '../../../examples/pingpong/client.js';
import { SESSION_EXPIRY_COMMAND } from '../../../examples/session-expiry/server.js';
import { FRAMED_ECHO_COMMAND } from '../../../examples/framed-echo/server.js';
import { FRAMED_ECHO_CLIENT_COMMAND } from '../../../examples/framed-echo/client.js';
import { WORKERS_COMMAND } from '../../../examples/workers/server.js';
import { parseCommandLine } from '../../../examples/shared/cli.js';
import type { Command, OptionTable } from '../../../examples/shared/cli.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { exampleScript } from '../../helpers/chat.js';

/** Each program: its compiled script and its command table. */
const PROGRAMS: Array<{ script: string; command: Command<OptionTable> }> = [
  { script: exampleScript('chat', 'server.js'), command: CHAT_SERVER_COMMAND },
  { script: exampleScript('chat', 'client.js'), command: CHAT_CLIENT_COMMAND },
  { script: exampleScript('echo', 'server.js'), command: ECHO_COMMAND },
  { script: exampleScript('pingpong', 'client.js'), command: PINGPONG_COMMAND },
  { script: exampleScript('session-expiry', 'server.js'), command: SESSION_EXPIRY_COMMAND },
  { script: exampleScript('framed-echo', 'server.js'), command: FRAMED_ECHO_COMMAND },
  { script: exampleScript('framed-echo', 'client.js'), command: FRAMED_ECHO_CLIENT_COMMAND },
  { script: exampleScript('workers', 'server.js'), command: WORKERS_COMMAND },
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script to its end (stdin closed at once), within 20 s. */
function run(script: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not end within 20 s`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

test('--help: the usage, every option with its default (or "required"), exit 0', async () => {
  const results = await Promise.all(PROGRAMS.map(({ script }) => run(script, ['--help'])));
  for (const [i, { command }] of PROGRAMS.entries()) {
    const r = results[i]!;
    const what = `${command.name} --help`;
    assert.is(r.code, 0, `${what}: ${r.stderr}`);
    assert.is(r.stderr, '', what);
    assert.ok(r.stdout.startsWith(`usage: ${command.usage}\n`), `${what}:\n${r.stdout}`);
    for (const [name, spec] of Object.entries(command.options)) {
      if (spec.type === 'flag') {
        assert.match(r.stdout, new RegExp(`^  --${escape(name)} +\\S`, 'm'), `${what}: --${name}`);
        continue;
      }
      const note =
        spec.required === true ? 'required' : `default: ${spec.default === undefined || spec.default === '' ? 'none' : escape(String(spec.default))}`;
      assert.match(r.stdout, new RegExp(`^  --${escape(name)} \\S+ +.*\\((one of: [^;]+; )?${note}\\)$`, 'm'), `${what}: --${name} with its ${note}`);
    }
    assert.match(r.stdout, /^ {2}-h, --help +print this help and exit$/m, what);
  }
  // -h is the same as --help, wherever it stands.
  const short = await run(PROGRAMS[0]!.script, ['--port', '1', '-h']);
  assert.is(short.code, 0);
  assert.is(short.stdout, results[0]!.stdout);
});

test('a bad argument: one coded line on stderr, nothing on stdout, exit 2', async () => {
  // One kind of mistake per program (each kind of each program is parsed in process below).
  const kinds: Array<[string[], (c: Command<OptionTable>) => string]> = [
    [['--bogus'], () => 'unknown option --bogus'],
    [['--port', '70000'], (c) => `--port must be an integer in [${String((c.options['port'] as { min: number }).min)}, 65535], got "70000"`],
    [['--port'], () => '--port needs a value'],
    [['stray'], () => 'unexpected argument "stray"'],
  ];
  const cases = PROGRAMS.map(({ script, command }, i) => {
    const [args, line] = kinds[i % kinds.length]!;
    return { script, command, args, line: line(command) };
  });
  const results = await Promise.all(cases.map(({ script, args }) => run(script, args)));
  for (const [i, c] of cases.entries()) {
    const r = results[i]!;
    const what = `${c.command.name} ${c.args.join(' ')}`;
    assert.is(r.code, 2, `${what}: exit ${String(r.code)} ${r.stderr}`);
    assert.is(r.stdout, '', what);
    assert.is(r.stderr, `${c.command.name}: NETLOOP_INVALID_OPTION: ${c.line} (see --help)\n`, what);
  }
});

test('every program parses its table alike: each mistake is NETLOOP_INVALID_OPTION naming the option, on one line', () => {
  for (const { command } of PROGRAMS) {
    const flags = Object.entries(command.options).filter(([, s]) => s.type === 'flag');
    const values = Object.entries(command.options).filter(([, s]) => s.type !== 'flag');
    const mistakes: Array<[string[], string]> = [
      [['--bogus', '1'], '--bogus'],
      [['-x'], '-x'],
      [['stray'], 'stray'],
      ...values.map(([name]): [string[], string] => [[`--${name}`], `--${name}`]),
      ...values.map(([name]): [string[], string] => [[`--${name}`, '--port'], `--${name}`]),
      ...values.filter(([, s]) => s.type === 'integer').flatMap(([name]): Array<[string[], string]> => [
        [[`--${name}`, 'x'], `--${name}`],
        [[`--${name}`, '1.5'], `--${name}`],
        [[`--${name}=`], `--${name}`],
        [[`--${name}`, '99999999999999999'], `--${name}`],
      ]),
      ...flags.map(([name]): [string[], string] => [[`--${name}=yes`], `--${name}`]),
    ];
    for (const [argv, option] of mistakes) {
      const what = `${command.name} ${argv.join(' ')}`;
      try {
        parseCommandLine(command, argv);
        assert.unreachable(what);
      } catch (err) {
        assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), `${what}: ${String(err)}`);
        assert.is(err.details['option'], option, what);
        assert.not.match(err.message, /\n/, `${what}: one line`);
      }
    }
  }
  // Both spellings of a value, and a value starting with '--' written with '='.
  assert.equal(parseCommandLine(FRAMED_ECHO_COMMAND, ['--port=9', '--host', '::1']), { port: 9, host: '::1' });
  assert.equal(parseCommandLine(FRAMED_ECHO_COMMAND, ['--host=--odd']), { port: 7000, host: '--odd' });
});

test('a failure once started (the port is taken): one coded line on stderr, exit 1', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const r = await run(exampleScript('echo', 'server.js'), ['--port', String(port)]);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /^echo-server: NETLOOP_SOCKET_ERROR: [^\n]+\n$/);
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
});

test.run();
