/**
 * netloop's side of the benchmark servers, loaded by `echo-server.ts` and
 * `idle-server.ts` only when `--impl netloop…` is asked for, so the bare
 * `node:net` baselines never load the library.
 *
 * Each server is written the way a user of netloop would write it: an
 * {@link EventLoop}, `new Server(loop).listen()`, and the server's events.
 *
 * @module
 */

import { EventLoop } from '../lib/reactor/event-loop.js';
import type { Client } from '../lib/reactor/client.js';
import type { FramedClient, FramedMessage } from '../lib/framing/framed-client.js';
import type { FramingOptions } from '../lib/framing/framing.js';
import { ConnectionCounter } from './connection-counter.js';
import type { IdleServer } from './connection-counter.js';
import { Server } from '../lib/reactor/server.js';
import { FramedServer } from '../lib/framing/framed-server.js';

/** The two ways an application receives frames: a message object per frame, or the raw range. */
export type EchoApi = 'raw' | 'message';

/**
 * The echo framing: netloop's `muduo` preset (a 4-byte big-endian length,
 * then the value, no type field) through a `FramedServer`'s options. This
 * is the one place where the framing codec is hooked up: each client gets a
 * decoder on its first chunk (an idle client holds none), the handler is
 * called directly (no event emission), and every reply is encoded into the
 * client's output buffer, so the replies of one read leave in one write.
 * `raw` (what an echo or a relay would use): `onRawFrame` hands out the
 * value's range in the received chunk and `sendRaw` copies that range behind
 * its header, with no Buffer and no message object per frame. `message`: a
 * message object whose value is a view of the chunk, echoed with `send`.
 */
function echoFraming(api: EchoApi): FramingOptions {
  if (api === 'raw') {
    return {
      layout: 'muduo',
      onRawFrame(client: FramedClient, type: number, source: Buffer, start: number, end: number): void {
        client.sendRaw(type, source, start, end);
      },
    };
  }
  return {
    layout: 'muduo',
    onMessage(client: FramedClient, message: FramedMessage): void {
      client.send(0, message.value);
    },
  };
}

/** Starts netloop's echo server on 127.0.0.1 and resolves with its port. */
export async function startNetloopEcho(port: number, api: EchoApi = 'raw'): Promise<number> {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { host: '127.0.0.1', port, backlog: 4096, maxConnections: 100_000, ...echoFraming(api) }).listen();
  return server.port;
}

/**
 * True when netloop's session registry can be loaded, so the with-sessions
 * idle server can run; false while it cannot (the idle scenario then
 * measures the without-sessions pair only).
 */
export async function supportsSessions(): Promise<boolean> {
  try {
    await import('../lib/session/session-registry.js');
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts netloop's server holding idle connections, with default options
 * (read-idle timeout included) except `maxConnections`. With sessions, every
 * connection gets a session of netloop's registry (in-memory store, default
 * options), bound to the connection's id, as an application would create one
 * at login; a connection counts as open once its session exists.
 */
export async function startNetloopIdle(withSessions: boolean, maxConnections: number, withAddress = false): Promise<IdleServer> {
  const loop = new EventLoop();
  const server = await new Server(loop, { host: '127.0.0.1', port: 0, backlog: 4096, maxConnections }).listen();
  const counter = new ConnectionCounter();
  if (!withSessions) {
    server.on('connection', () => counter.opened());
    server.on('close', () => counter.closed());
    return { port: server.port, counter };
  }
  const { SessionRegistry } = await import('../lib/session/session-registry.js');
  const registry = new SessionRegistry({ clock: loop.clock, maxSessions: Math.max(maxConnections, 1) });
  server.on('connection', (client: Client) => {
    registry
      .create({ connectionId: String(client.id), remoteAddress: withAddress ? (client.remoteAddress ?? null) : null })
      .then(
        () => {
          // Marks the connection as counted, so its close is counted once too.
          client.context = true;
          counter.opened();
        },
        (err: unknown) => {
          process.stderr.write(`session create failed: ${err instanceof Error ? err.message : String(err)}\n`);
          client.destroy();
        },
      );
  });
  server.on('close', (client: Client) => {
    if (client.context === true) counter.closed();
    registry.detach(String(client.id)).catch(() => undefined);
  });
  return { port: server.port, counter };
}
