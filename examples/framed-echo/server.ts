/**
 * The smallest framed server: one message type in a registry, one handler
 * that sends each message back. Frames are netloop's default layout
 * (`uint32 BE` value length · `uint16 BE` type · value); the registry turns
 * a frame's value into a payload (here a UTF-8 string) and back.
 *
 * ```sh
 * node dist/examples/framed-echo/server.js --port 7000 &
 * printf 'hello\nworld\n' | node dist/examples/framed-echo/client.js --port 7000
 * ```
 *
 * @module
 */

import { EventLoop, FramedServer, MessageRegistry, closeOnSignals, utf8 } from 'netloop';
import type { AnyFramedServer } from 'netloop';
import { defineCommand, isMain, runCommand } from '../shared/cli.js';

/** The protocol, shared by the server and the client: one message type. */
export const registry = new MessageRegistry().register(1, 'Echo', utf8());
/** Type 1, `Echo`: a UTF-8 string. */
export const Echo = registry.resolve('Echo');

/** Starts the framed echo server on a loop of its own; resolves once it listens. */
export async function startFramedEcho(port: number, host = '127.0.0.1'): Promise<{ loop: EventLoop; server: AnyFramedServer }> {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, {
    host,
    port,
    registry,
    onMessage: (client, message) => {
      client.send(Echo, message.payload as string);
    },
  }).listen();
  return { loop, server };
}

/** The server's command line. */
export const FRAMED_ECHO_COMMAND = defineCommand({
  name: 'framed-echo-server',
  usage: 'node dist/examples/framed-echo/server.js [options]',
  summary: 'The smallest framed server: every Echo message is sent back. SIGINT or SIGTERM stops it.',
  options: {
    port: { type: 'integer', default: 7000, min: 0, max: 65535, help: 'port to listen on; 0 picks a free one' },
    host: { type: 'string', default: '127.0.0.1', arg: 'H', help: 'address to bind' },
  },
});

if (isMain(import.meta.url)) {
  runCommand(FRAMED_ECHO_COMMAND, process.argv.slice(2), async ({ port, host }) => {
    const { loop, server } = await startFramedEcho(port, host);
    console.log(`netloop framed echo server listening on ${server.address().address}:${server.port}`);
    closeOnSignals(loop); // SIGINT / SIGTERM: flush, close every connection, then exit by the signal
  });
}
