/**
 * A file server on netloop: a client asks for a file of the server's folder
 * by name (`Get`), the server answers with its size and SHA-256
 * (`FileInfo`), then sends it as a framed stream paced by that client's
 * output buffer. However large the file and however slow the client, the
 * server holds at most one window (1 MiB by default) of it per transfer.
 *
 * ```sh
 * node dist/examples/file-transfer/server.js --root ./files            # 127.0.0.1:7010
 * node dist/examples/file-transfer/server.js --root ./files --port 0   # any free port
 * node dist/examples/file-transfer/client.js --port 7010 --name big.iso --out /tmp/big.iso
 * ```
 *
 * Prints where it listens, and one line per transfer when it ends; stops
 * cleanly on SIGINT or SIGTERM (open transfers end with
 * `NETLOOP_STREAM_INTERRUPTED` on both sides).
 *
 * @module
 */

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ErrorCode, EventLoop, FramedServer, FramedStreams, NetloopError, closeOnSignals, isNetloopError } from 'netloop';
import type { AnyFramedServer, FramedClient } from 'netloop';
import { DEFAULT_FILE_PORT, fileRegistry, isPlainName } from './protocol.js';
import type { Failed, FileInfo, Get } from './protocol.js';

/** Options of {@link startFileServer}. */
export interface FileServerOptions {
  /** The folder whose files are served (required). */
  root: string;
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default {@link DEFAULT_FILE_PORT}; 0 for an ephemeral port. */
  port?: number;
  /** Called once per transfer that ended, sent whole or not. */
  onTransfer?: (line: string) => void;
}

/** A running file server. */
export interface FileServer {
  loop: EventLoop;
  server: AnyFramedServer;
  streams: FramedStreams;
}

/** The SHA-256 (hex) and size of the file at `file`, read once as a stream. */
async function describe(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Starts the file server on its own loop. */
export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const root = path.resolve(options.root);
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--root must be a folder, got ${options.root}`, { details: { option: 'root', value: options.root } });
  }
  const loop = new EventLoop();
  const server = await new FramedServer(loop, {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? DEFAULT_FILE_PORT,
    registry: fileRegistry(),
  }).listen();
  const streams = new FramedStreams(server);
  const report = options.onTransfer ?? (() => {});

  const serve = async (client: FramedClient, name: unknown): Promise<void> => {
    const fail = (code: string, message: string): void => {
      client.send('Failed', { name: String(name), code, message } satisfies Failed);
    };
    if (!isPlainName(name)) {
      fail(ErrorCode.INVALID_VALUE, 'a file is asked for by its plain name');
      return;
    }
    const file = path.join(root, name);
    let info: { size: number; sha256: string };
    try {
      info = await describe(file);
    } catch (err) {
      fail(String((err as NodeJS.ErrnoException).code ?? ErrorCode.STREAM_SOURCE_FAILED), `cannot read ${name}`);
      return;
    }
    if (!client.writable) return;
    client.send('FileInfo', { name, ...info } satisfies FileInfo);
    const started = Date.now();
    try {
      const { bytes } = await streams.sendFile(client, file, { meta: name });
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      report(`sent ${name} to client ${client.id}: ${bytes} bytes in ${seconds.toFixed(2)} s`);
    } catch (err) {
      report(`${name} to client ${client.id} cut short: ${isNetloopError(err) ? err.code : String(err)}`);
    }
  };

  server.on('message', (client, message) => {
    if (message.name === 'Get') void serve(client, (message.payload as Get).name);
  });
  return { loop, server, streams };
}

/** Parses `--root DIR [--port N] [--host H]`. */
export function parseFileServerArgs(argv: readonly string[]): FileServerOptions {
  let values: { root?: string | undefined; port?: string | undefined; host?: string | undefined };
  try {
    values = parseArgs({
      args: [...argv],
      options: { root: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${(err as Error).message} (usage: --root DIR [--port N] [--host H])`, { details: { option: 'argv' } });
  }
  if (values.root === undefined) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, '--root DIR is required', { details: { option: 'root' } });
  }
  const options: FileServerOptions = { root: values.root };
  if (values.host !== undefined) options.host = values.host;
  if (values.port !== undefined) options.port = parsePort(values.port);
  return options;
}

/** `value` as a port, or `NETLOOP_INVALID_OPTION`. */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--port must be an integer in [0, 65535], got ${value}`, { details: { option: 'port', value } });
  }
  return port;
}

async function main(): Promise<void> {
  const options = parseFileServerArgs(process.argv.slice(2));
  const { loop, server } = await startFileServer({ ...options, onTransfer: (line) => process.stdout.write(`${line}\n`) });
  const { address, port } = server.address();
  process.stdout.write(`netloop file server listening on ${address}:${port}, serving ${path.resolve(options.root)}\n`);
  closeOnSignals(loop, {
    flushTimeoutMs: 2_000,
    exit: false,
    onDone: (signal) => {
      process.stdout.write(`${signal}: closed every connection\n`);
      process.exit(0);
    },
  });
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`file-server: ${isNetloopError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(isNetloopError(err, ErrorCode.INVALID_OPTION) ? 2 : 1);
  });
}
