/**
 * The chat client at a real terminal: it runs in a tmux pane (a real
 * pseudo-terminal, whose screen tmux renders), a raw peer chats to it, and
 * the test reads the screen. A message that arrives while a line is being
 * typed is printed above it, and the prompt and the partial line are
 * redrawn below with the cursor where it was: mid-line, and for a line
 * wrapped over two rows.
 *
 * The screen is read by polling `tmux capture-pane` (a terminal offers no
 * event for "the screen changed"). Without tmux on the PATH the test is
 * skipped with a notice, except under CI (`CI=true`), where that fails.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CHAT_CLIENT, ChatRig } from '../../helpers/chat.js';
import { until } from '../../helpers/net.js';

const run = promisify(execFile);
const COLUMNS = 100;
const hasTmux = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;
if (!hasTmux && process.env['CI'] === 'true') throw new Error('tmux is not installed: the terminal test of the chat client needs it under CI');
if (!hasTmux) process.stderr.write('\n*** tmux not found: the chat client terminal test is SKIPPED (install tmux to run it) ***\n\n');

const rig = new ChatRig();
test.after.each(() => rig.cleanup());

/** A tmux server of the test's own (its own socket, no configuration file), with one pane running `command`. */
async function tmuxPane(command: readonly string[]): Promise<{
  tmux(...args: string[]): Promise<string>;
  screen(): Promise<string[]>;
  cursor(): Promise<{ x: number; y: number }>;
  close(): Promise<void>;
}> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'netloop-tmux-'));
  const socket = path.join(dir, 'tmux.sock');
  const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-S', socket, '-f', '/dev/null', ...args])).stdout;
  await tmux('new-session', '-d', '-s', 'chat', '-x', String(COLUMNS), '-y', '20', ...command);
  return {
    tmux,
    async screen() {
      return (await tmux('capture-pane', '-p', '-t', 'chat')).split('\n').map((l) => l.trimEnd());
    },
    async cursor() {
      const [x, y] = (await tmux('display-message', '-p', '-t', 'chat', '#{cursor_x} #{cursor_y}')).trim().split(' ').map(Number);
      return { x: x!, y: y! };
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** The screen's lines up to its last non-empty one. */
function shown(lines: string[]): string[] {
  let end = lines.length;
  while (end > 0 && lines[end - 1] === '') end--;
  return lines.slice(0, end);
}

(hasTmux ? test : test.skip)('a message that arrives while a line is typed is printed above it; the prompt and the partial line are redrawn, cursor kept', async () => {
  const { port } = await rig.server();
  const pane = await tmuxPane([process.execPath, CHAT_CLIENT, '--port', String(port), '--name', 'ann']);
  try {
    let screen: string[] = [];
    /** Polls the screen until `pred` holds on its lines. */
    const waitScreen = async (pred: (lines: string[]) => boolean, what: string): Promise<string[]> => {
      await until(() => pred(screen), what, 10_000).catch(async () => {
        throw new Error(`the screen never showed ${what}:\n${shown(screen).join('\n')}`);
      });
      return shown(screen);
    };
    const poller = setInterval(() => {
      void pane.screen().then(
        (s) => (screen = s),
        () => undefined,
      );
    }, 25);
    try {
      // The welcome, then the prompt on the last line.
      let s = await waitScreen((l) => l.some((x) => /^\* session \S+ new as sid\d+/.test(x)) && shown(l).at(-1) === 'ann>', 'the welcome and the prompt');
      const bob = await rig.peer(port);

      // A partial line, then a message: the message above it, the partial line below, the cursor at its end.
      await pane.tmux('send-keys', '-t', 'chat', '-l', 'half a line');
      await waitScreen((l) => shown(l).at(-1) === 'ann> half a line', 'the partial line');
      bob.say('hello from bob');
      s = await waitScreen((l) => l.includes('sid2 say: hello from bob'), "bob's message");
      assert.equal(s.slice(-2), ['sid2 say: hello from bob', 'ann> half a line'], s.join('\n'));
      assert.equal(await pane.cursor(), { x: 'ann> half a line'.length, y: s.length - 1 });

      // The cursor moved into the line: kept there across the next message.
      await pane.tmux('send-keys', '-t', 'chat', 'Left', 'Left', 'Left', 'Left');
      let x = -1;
      const cursorAt = (want: number) => async () => {
        for (let i = 0; i < 400 && x !== want; i++) {
          x = (await pane.cursor()).x;
          if (x !== want) await new Promise((r) => setTimeout(r, 25));
        }
        assert.is(x, want, 'the cursor moved');
      };
      await cursorAt('ann> half a '.length)();
      bob.say('second');
      s = await waitScreen((l) => l.includes('sid2 say: second'), "bob's second message");
      assert.equal(s.slice(-3), ['sid2 say: hello from bob', 'sid2 say: second', 'ann> half a line'], s.join('\n'));
      assert.equal(await pane.cursor(), { x: 'ann> half a '.length, y: s.length - 1 });

      // Typing goes on where the cursor is, and Enter sends the whole line. One key at a time, as
      // typed: readline appends text that arrives in one read (a paste) at the end of the line.
      for (const key of 'long ') {
        await pane.tmux('send-keys', '-t', 'chat', '-l', key);
        await cursorAt(x + 1)();
      }
      await pane.tmux('send-keys', '-t', 'chat', 'End');
      await pane.tmux('send-keys', '-t', 'chat', '-l', ' and more');
      await pane.tmux('send-keys', '-t', 'chat', 'Enter');
      const acks = await bob.waitAcks(3);
      assert.is(acks[2]!.content, 'ann: half a long line and more');
      await waitScreen((l) => shown(l).at(-1) === 'ann>' && l.some((x) => /^sid1 say: ann: half a long line and more$/.test(x)), 'its own line back, and a fresh prompt');

      // A line longer than the terminal is wide, wrapped over two rows: the message goes above both.
      const long = 'x'.repeat(COLUMNS + 30);
      await pane.tmux('send-keys', '-t', 'chat', '-l', long);
      const wrapped = ['ann> ' + long.slice(0, COLUMNS - 5), long.slice(COLUMNS - 5)];
      await waitScreen((l) => shown(l).slice(-2).join('\n') === wrapped.join('\n'), 'the wrapped line');
      bob.say('third');
      s = await waitScreen((l) => l.includes('sid2 say: third'), "bob's third message");
      assert.equal(s.slice(-4), ['sid1 say: ann: half a long line and more', 'sid2 say: third', ...wrapped], s.join('\n'));
      assert.equal(await pane.cursor(), { x: wrapped[1]!.length, y: s.length - 1 });
    } finally {
      clearInterval(poller);
    }
  } finally {
    await pane.close();
  }
});

test.run();
