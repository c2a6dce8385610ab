/**
 * The framed echo example's client: sends each line of its input as an
 * `Echo` message, prints each answer, and stops once its input has ended
 * and every answer is back.
 *
 * ```sh
 * printf 'hello\nworld\n' | node dist/examples/framed-echo/client.js --port 7000
 * ```
 *
 * @module
 */

import * as readline from 'node:readline';
import { EventLoop, FramedConnector } from 'netloop';
import type { FramedClient } from 'netloop';
import { defineCommand, isMain, runCommand } from '../shared/cli.js';
import { Echo, registry } from './server.js';

/** The client's command line. */
export const FRAMED_ECHO_CLIENT_COMMAND = defineCommand({
  name: 'framed-echo-client',
  usage: 'node dist/examples/framed-echo/client.js [options] < lines',
  summary: 'Sends each line of its input as an Echo message and prints each answer: "echo: <line>".',
  options: {
    port: { type: 'integer', default: 7000, min: 1, max: 65535, help: "the server's port" },
    host: { type: 'string', default: '127.0.0.1', arg: 'H', help: "the server's address" },
  },
});

if (isMain(import.meta.url)) {
  runCommand(FRAMED_ECHO_CLIENT_COMMAND, process.argv.slice(2), ({ port, host }) => {
    const loop = new EventLoop();
    let waiting = 0;
    let ended = false;
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      void loop.close().then(() => process.exit(0));
    };
    const connector = new FramedConnector(loop, { host, port, registry, reconnect: false });
    connector.on('message', (_client, message) => {
      console.log(`echo: ${String(message.payload)}`);
      if (--waiting === 0 && ended) stop();
    });
    connector.on('connect-error', (error) => {
      console.error(`framed-echo-client: ${error.code}: cannot connect to ${host}:${port}`);
      process.exit(1);
    });
    connector.on('close', (_client, reason) => {
      if (stopping) return;
      console.error(`framed-echo-client: the server closed the connection (${reason})`);
      process.exit(1);
    });
    connector.on('connected', (client: FramedClient) => {
      const lines = readline.createInterface({ input: process.stdin });
      lines.on('line', (line) => {
        waiting++;
        client.send(Echo, line);
      });
      lines.on('close', () => {
        ended = true;
        if (waiting === 0) stop();
      });
    });
    connector.connect();
  });
}
