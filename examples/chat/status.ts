/**
 * The chat server's `--status-port`: netloop's operations endpoint on
 * loopback, fed by the chat's loop, server, registry and store.
 *
 * ```
 *   reactorSource(loop, { servers: { chat } })   ─┐                     GET /          the live status page
 *   sessionSource(registry)                       ├─▶ startOpsServer ─▶ GET /events    its Server-Sent Events
 *   storeSource(registry.store)                  ─┘                     GET /snapshot  one reading as JSON
 *                                                                       GET /metrics   when prom-client is installed
 * ```
 *
 * @module
 */

import { ErrorCode, isNetloopError } from 'netloop';
import type { EventLoop, FramedServer, SessionRegistry } from 'netloop';
import { reactorSource, sessionSource, startOpsServer, storeSource } from 'netloop/ops';
import type { Logger, OpsServer, OpsServerOptions } from 'netloop/ops';

/** What the page reads: the chat's loop, server and session registry (a `ChatServer` is one). */
export interface StatusTarget {
  readonly loop: EventLoop;
  readonly server: FramedServer;
  readonly registry: SessionRegistry;
}

/**
 * Starts the operations endpoint of `--status-port` on loopback: the live
 * status page (`/`, `/events`, `/snapshot`) and, when prom-client is
 * installed, `/metrics`. Resolves with the server and the reactor source
 * to close at the end.
 */
export async function startStatusPage(chat: StatusTarget, port: number, logger: Logger): Promise<{ ops: OpsServer; stop(): Promise<void> }> {
  // Created before anything else can run: the source follows every connection from now on.
  const reactor = reactorSource(chat.loop, { servers: { chat: chat.server } });
  const options: OpsServerOptions = {
    sources: {
      reactor,
      sessions: sessionSource(chat.registry),
      stores: [storeSource(chat.registry.store, { name: 'sessions' })],
    },
    port,
    title: 'netloop chat',
    logger,
  };
  let ops: OpsServer;
  try {
    ops = await startOpsServer(options);
  } catch (err) {
    // prom-client (an optional peer dependency) is missing: the page alone, without /metrics.
    if (!(isNetloopError(err, ErrorCode.INVALID_OPTION) && err.details['option'] === 'registry')) {
      reactor.close();
      throw err;
    }
    ops = await startOpsServer({ ...options, registry: null });
  }
  return {
    ops,
    async stop() {
      await ops.close();
      reactor.close();
    },
  };
}

