/**
 * The chat client's terminal: a prompt, and every line printed above the
 * line being typed, which is then redrawn as it was (its text and the
 * cursor's place in it), so a message that arrives never overwrites what
 * the user is typing.
 *
 * ```
 *   before a message        after it
 *   ann> half a li▌         sid2 say: bob: hi
 *                           ann> half a li▌       (prompt and partial line redrawn)
 * ```
 *
 * On a terminal this is node:readline in terminal mode, and `print` draws
 * by readline's own measures (`getCursorPos()`, which counts wide
 * characters and wrapped rows):
 *
 * ```
 *   1. up to the first row of the prompt (the cursor's row offset), column 0; clear down
 *   2. write the line, a newline, then the prompt and the line being typed
 *   3. from the end of that (its offset, measured with the cursor at the end), move
 *      back to where the cursor was: same row offset, same column
 * ```
 *
 * The cursor ends on the same row offset of the prompt as before, so
 * readline's own later redraws (which count rows from the cursor) stay right.
 *
 * When input or output is not a terminal (a pipe, a file: scripts and
 * tests), there is no prompt and lines are written as they come.
 *
 * The streams are options, so a test can drive a client with its own: a
 * stream with `isTTY` set and a `columns` count is treated as a terminal.
 *
 * @module
 */

import * as readline from 'node:readline';

/** Options of {@link ChatTerminal}. */
export interface ChatTerminalOptions {
  /** Where lines are typed; `process.stdin` for the program. */
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where lines are shown; `process.stdout` for the program. */
  output: NodeJS.WritableStream & { isTTY?: boolean };
  /** Prompt and redraw; default: when both streams are terminals. */
  terminal?: boolean;
  /** The prompt; default `'> '`. */
  prompt?: string;
  /** Each line typed (Enter). */
  onLine: (line: string) => void;
  /** The end of input (Ctrl-D on an empty line, or the end of a pipe), or Ctrl-C on a terminal. */
  onEnd: (why: 'end of input' | 'SIGINT') => void;
}

/** See the module comment. */
export class ChatTerminal {
  /** True when lines are typed at a prompt and redrawn. */
  readonly terminal: boolean;
  readonly #rl: readline.Interface;
  readonly #output: NodeJS.WritableStream;
  #closed = false;

  constructor(options: ChatTerminalOptions) {
    this.terminal = options.terminal ?? (options.input.isTTY === true && options.output.isTTY === true);
    this.#output = options.output;
    this.#rl = readline.createInterface({
      input: options.input,
      // Without a terminal, readline must not echo or prompt: output is ours alone.
      ...(this.terminal ? { output: options.output, prompt: options.prompt ?? '> ' } : {}),
      terminal: this.terminal,
    });
    this.#rl.on('line', (line) => {
      options.onLine(line);
      if (this.terminal && !this.#closed) this.#rl.prompt();
    });
    this.#rl.on('close', () => {
      const ours = this.#closed;
      this.#closed = true;
      // The cursor is still on the prompt's line: what is printed from now on starts below it.
      if (this.terminal) this.#output.write('\n');
      if (!ours) options.onEnd('end of input');
    });
    // In terminal mode readline reads Ctrl-C itself (raw mode): without this listener it would only pause.
    this.#rl.on('SIGINT', () => options.onEnd('SIGINT'));
    if (this.terminal) this.#rl.prompt();
  }

  /** The line being typed (empty when none). */
  get line(): string {
    return this.#rl.line;
  }

  /** Shows one line; on a terminal, above the prompt and the line being typed (see the module comment). */
  print(line: string): void {
    if (!this.terminal || this.#closed) {
      this.#output.write(`${line}\n`);
      return;
    }
    const rl = this.#rl;
    const out = this.#output;
    const at = rl.getCursorPos();
    const end = this.#endOfLine();
    readline.moveCursor(out, 0, -at.rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    out.write(`${line}\n${rl.getPrompt()}${rl.line}`);
    // A line that fills its last row exactly leaves the terminal's cursor on that row's last
    // column (the wrap is pending): one more character moves it to the next row, as readline does.
    if (end.cols === 0 && end.rows > 0) out.write(' ');
    readline.moveCursor(out, 0, at.rows - end.rows);
    readline.cursorTo(out, at.cols);
  }

  /**
   * Where the cursor would be at the end of the line being typed: readline
   * measures from its `cursor` (the documented index into `line`), which is
   * moved to the end for the measure and put back.
   */
  #endOfLine(): readline.CursorPos {
    const rl = this.#rl as readline.Interface & { cursor: number };
    const cursor = rl.cursor;
    rl.cursor = rl.line.length;
    try {
      return rl.getCursorPos();
    } finally {
      rl.cursor = cursor;
    }
  }

  /** Stops reading (without calling `onEnd`); idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rl.close();
  }
}
