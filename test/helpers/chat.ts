/**
 * Helpers for the chat example's end-to-end tests: the compiled example
 * scripts, started as child processes, and raw peers that speak cellnet's
 * bytes (`tcp.ltv` frames) over a plain socket.
 *
 * ```
 *   startChatChild(args)  ── node dist/examples/chat/server.js --port 0 ... ──▶ "listening on H:P"
 *   RawChatPeer           net.Socket ─▶ LtvDecoder (cellnet) ─▶ frames[] (every frame, in order)
 *   ChatRig               the servers, terminal clients and raw peers of one test file,
 *                         all stopped after each test
 * ```
 *
 * @module
 */

import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnChild } from '../../bench/processes.js';
import type { ChildHandle } from '../../bench/processes.js';
import { LtvDecoder } from '../../lib/codec/ltv-decoder.js';
import { createChatProtocol } from '../../examples/chat/protocol.js';
import type { ChatProtocol } from '../../examples/chat/protocol.js';
import { connectRaw, until } from './net.js';
import { waitForLog } from './log-lines.js';

/** The compiled script of an example, next to the compiled tests. */
export function exampleScript(...parts: string[]): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', ...parts);
}

/** A server child that announced its port. */
export interface ChatChild {
  handle: ChildHandle;
  port: number;
  /** The line that said it was ready (`... listening on HOST:PORT ...`). */
  ready: string;
}

/**
 * Starts a compiled server script and waits for the line that says it is
 * ready (`ready`, default: a line with `listening on HOST:PORT`), and reads the port from it.
 */
export async function startChatChild(script: string, args: readonly string[], ready = /listening on \S+:\d+/, timeoutMs = 60_000): Promise<ChatChild> {
  const handle = spawnChild({ script, args, timeoutMs, name: path.basename(path.dirname(script)) });
  try {
    // Generous: the cluster example forks its workers and connects them to Redis
    // before it says it listens, and the suite runs several files at once under
    // coverage; a hung start still fails here, well before the child's own limit.
    const line = await handle.waitForLine(ready, 30_000, `a line matching ${String(ready)}`);
    const port = Number(/listening on \S+:(\d+)/.exec(line)![1]);
    return { handle, port, ready: line };
  } catch (err) {
    await handle.kill();
    throw err;
  }
}

/** One decoded frame a raw peer received. */
export interface ReceivedFrame {
  type: number;
  value: Buffer;
}

/** A raw socket speaking cellnet's `tcp.ltv`, recording every frame and every byte. */
export class RawChatPeer {
  readonly socket: net.Socket;
  readonly protocol: ChatProtocol = createChatProtocol();
  readonly frames: ReceivedFrame[] = [];
  /** Every byte received, for byte-exact assertions (kept only when asked). */
  readonly bytes: Buffer[] = [];
  ended = false;
  closed = false;
  readonly #decoder: LtvDecoder;

  private constructor(socket: net.Socket, keepBytes: boolean) {
    this.socket = socket;
    this.#decoder = new LtvDecoder({
      layout: this.protocol.layout,
      copy: true,
      onFrame: (type, value) => this.frames.push({ type, value }),
    });
    socket.on('data', (chunk: Buffer) => {
      if (keepBytes) this.bytes.push(chunk);
      this.#decoder.feed(chunk);
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number, keepBytes = false): Promise<RawChatPeer> {
    return new RawChatPeer(await connectRaw(port, { allowHalfOpen: false }), keepBytes);
  }

  /** Sends a ChatREQ. */
  say(content: string): void {
    this.socket.write(this.protocol.frame(this.protocol.ChatREQ, { content }));
  }

  /** The ChatACKs received so far, decoded. */
  acks(): Array<{ content: string; id: bigint }> {
    const p = this.protocol;
    return this.frames.filter((f) => f.type === p.ChatACK.id).map((f) => p.registry.decode(f.type, f.value).payload as { content: string; id: bigint });
  }

  /** Waits until `n` ChatACKs arrived. */
  async waitAcks(n: number, ms = 15_000): Promise<Array<{ content: string; id: bigint }>> {
    await until(() => this.frames.filter((f) => f.type === this.protocol.ChatACK.id).length >= n, `${n} ChatACKs (have ${this.acks().length})`, ms);
    return this.acks();
  }

  /** Destroys the socket. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** The compiled chat server program. */
export const CHAT_SERVER = exampleScript('chat', 'server.js');
/** The compiled chat terminal client. */
export const CHAT_CLIENT = exampleScript('chat', 'client.js');

/**
 * What the chat tests start: server children, terminal-client children and
 * raw peers, each remembered so {@link ChatRig.cleanup} (run after each
 * test) stops them all.
 */
export class ChatRig {
  readonly children: ChildHandle[] = [];
  readonly peers: RawChatPeer[] = [];

  /** A chat server on a free port, with `args` after `--port 0`. */
  async server(args: readonly string[] = []): Promise<ChatChild> {
    const child = await startChatChild(CHAT_SERVER, ['--port', '0', ...args]);
    this.children.push(child.handle);
    return child;
  }

  /** A chat server, with the start-up line that says whether its store answered (printed before it listens). */
  async serverWithStoreLine(args: readonly string[]): Promise<ChatChild & { storeLine: string }> {
    const handle = spawnChild({ script: CHAT_SERVER, args: ['--port', '0', ...args], timeoutMs: 60_000, name: 'chat' });
    this.children.push(handle);
    const storeLine = await handle.waitForLine(/^store /, 15_000, 'the store line');
    const listening = await handle.waitForLine(/listening on \S+:\d+/, 15_000, 'the listening line');
    return { handle, port: Number(/listening on \S+:(\d+)/.exec(listening)![1]), ready: listening, storeLine };
  }

  /** A raw cellnet peer connected to `port`. */
  async peer(port: number, keepBytes = false): Promise<RawChatPeer> {
    const p = await RawChatPeer.connect(port, keepBytes);
    this.peers.push(p);
    return p;
  }

  /** The terminal client as a child (stdin a pipe: plain lines, no prompt), named `name`. */
  client(port: number, name: string): ChildHandle {
    const handle = spawnChild({ script: CHAT_CLIENT, args: ['--port', String(port), '--name', name], timeoutMs: 60_000, name: `client:${name}` });
    this.children.push(handle);
    return handle;
  }

  /** Destroys the peers, stops the children. */
  async cleanup(): Promise<void> {
    for (const p of this.peers.splice(0)) p.destroy();
    await Promise.all(this.children.splice(0).map((c) => c.kill()));
  }
}

/** The server's connection id of a raw peer, from the server's `accept` log line (its remote port is the peer's local port). */
export async function acceptedId(server: ChildHandle, peer: RawChatPeer, timeoutMs = 5_000): Promise<number> {
  const r = await waitForLog(server, { event: 'accept', remotePort: peer.socket.localPort! }, timeoutMs, `the accept line of port ${peer.socket.localPort!}`);
  return Number(r['clientId']);
}
