/**
 * The file server's client: asks for one file by name, writes the framed
 * stream that follows to a local file, prints its progress, and checks the
 * file's SHA-256 against the one the server announced.
 *
 * ```sh
 * node dist/examples/file-transfer/client.js --port 7010 --name big.iso --out /tmp/big.iso
 * progress 10% (104857600 of 1048576000 bytes)
 * ...
 * progress 100% (1048576000 of 1048576000 bytes)
 * big.iso: 1048576000 bytes, sha256 9d5c... verified
 * ```
 *
 * Exit status 0 when the file arrived whole and its SHA-256 matches; 1 when
 * it does not, or the transfer failed (one line on stderr with its code);
 * 2 for a bad command line.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ErrorCode, EventLoop, FramedConnector, FramedStreams, NetloopError, isNetloopError } from 'netloop';
import type { IncomingStream } from 'netloop';
import { DEFAULT_FILE_PORT, fileRegistry, isPlainName } from './protocol.js';
import type { Failed, FileInfo } from './protocol.js';
import { parsePort } from './server.js';

/** Options of {@link fetchFile}. */
export interface FetchFileOptions {
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default {@link DEFAULT_FILE_PORT}. */
  port?: number;
  /** The file's name in the server's folder (required). */
  name: string;
  /** Where to write it (required); replaced if it exists. */
  out: string;
  /** Called as the file arrives: once per tenth of it, and at its end. */
  onProgress?: (received: number, size: number) => void;
}

/** What {@link fetchFile} received. */
export interface FetchFileResult {
  name: string;
  /** Bytes written to `out`. */
  bytes: number;
  /** The SHA-256 (hex) of what arrived. */
  sha256: string;
  /** The size and SHA-256 the server announced. */
  expected: { size: number; sha256: string };
  /** Size and SHA-256 both match. */
  verified: boolean;
}

/**
 * Connects, asks for `options.name`, writes the stream to `options.out` and
 * compares it with what the server announced.
 *
 * Rejects with a NetloopError: `NETLOOP_STREAM_SOURCE_FAILED` when the
 * server cannot send the file (`details.remoteCode`, e.g. `ENOENT`),
 * `NETLOOP_STREAM_INTERRUPTED` or `NETLOOP_STREAM_ABORTED` when the
 * transfer is cut, `NETLOOP_CONNECT_FAILED` when the server cannot be
 * reached.
 */
export async function fetchFile(options: FetchFileOptions): Promise<FetchFileResult> {
  const loop = new EventLoop();
  const connector = new FramedConnector(loop, {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? DEFAULT_FILE_PORT,
    registry: fileRegistry(),
    reconnect: false,
  });
  const streams = new FramedStreams(connector);
  const report = options.onProgress ?? (() => {});
  try {
    return await new Promise<FetchFileResult>((resolve, reject) => {
      let info: FileInfo | null = null;
      let receiving = false;
      connector.on('connected', (client) => {
        client.send('Get', { name: options.name });
      });
      connector.on('connect-error', (error) => reject(error));
      connector.on('close', (_client, reason, error) => {
        if (receiving) return; // The stream's own error tells it.
        reject(error ?? new NetloopError(ErrorCode.STREAM_INTERRUPTED, `the server closed the connection (${reason}) before the file arrived`, { details: { reason } }));
      });
      connector.on('message', (_client, message) => {
        if (message.name === 'FileInfo') info = message.payload as FileInfo;
        else if (message.name === 'Failed') {
          const failed = message.payload as Failed;
          reject(new NetloopError(ErrorCode.STREAM_SOURCE_FAILED, `the server cannot send ${failed.name}: ${failed.message}`, { details: { remoteCode: failed.code } }));
        }
      });
      streams.on('stream', (_client, stream) => {
        if (info === null || stream.metaText() !== info.name) {
          stream.destroy();
          return;
        }
        receiving = true;
        receive(stream, info, options.out, report).then(resolve, reject);
      });
      connector.connect();
    });
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
}

/** Writes `stream` to `out` through a tap that hashes and reports progress, then compares. */
async function receive(stream: IncomingStream, info: FileInfo, out: string, report: (received: number, size: number) => void): Promise<FetchFileResult> {
  const hash = createHash('sha256');
  let received = 0;
  let nextTenth = 1;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, cb) {
      hash.update(chunk);
      received += chunk.length;
      while (nextTenth < 10 && received >= (info.size * nextTenth) / 10) {
        report(received, info.size);
        nextTenth++;
      }
      cb(null, chunk);
    },
  });
  await pipeline(stream, tap, fs.createWriteStream(out));
  report(received, info.size);
  const sha256 = hash.digest('hex');
  return {
    name: info.name,
    bytes: received,
    sha256,
    expected: { size: info.size, sha256: info.sha256 },
    verified: received === info.size && sha256 === info.sha256,
  };
}

/** Parses `--name NAME --out PATH [--port N] [--host H]`. */
export function parseFileClientArgs(argv: readonly string[]): FetchFileOptions {
  let values: { name?: string | undefined; out?: string | undefined; port?: string | undefined; host?: string | undefined };
  try {
    values = parseArgs({
      args: [...argv],
      options: { name: { type: 'string' }, out: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${(err as Error).message} (usage: --name NAME --out PATH [--port N] [--host H])`, {
      details: { option: 'argv' },
    });
  }
  if (!isPlainName(values.name)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, '--name must be a plain file name', { details: { option: 'name', value: values.name } });
  }
  if (values.out === undefined) throw new NetloopError(ErrorCode.INVALID_OPTION, '--out PATH is required', { details: { option: 'out' } });
  const options: FetchFileOptions = { name: values.name, out: values.out };
  if (values.host !== undefined) options.host = values.host;
  if (values.port !== undefined) options.port = parsePort(values.port);
  return options;
}

async function main(): Promise<void> {
  const options = parseFileClientArgs(process.argv.slice(2));
  const result = await fetchFile({
    ...options,
    onProgress: (received, size) => {
      const percent = size === 0 ? 100 : Math.floor((received * 100) / size);
      process.stdout.write(`progress ${percent}% (${received} of ${size} bytes)\n`);
    },
  });
  if (result.verified) {
    process.stdout.write(`${result.name}: ${result.bytes} bytes, sha256 ${result.sha256} verified\n`);
    return;
  }
  process.stderr.write(
    `file-client: ${result.name}: got ${result.bytes} bytes, sha256 ${result.sha256}; the server announced ${result.expected.size} bytes, sha256 ${result.expected.sha256}\n`,
  );
  process.exitCode = 1;
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  main().catch((err: unknown) => {
    const remote = isNetloopError(err) && typeof err.details['remoteCode'] === 'string' ? ` (${err.details['remoteCode']})` : '';
    process.stderr.write(`file-client: ${isNetloopError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}${remote}\n`);
    process.exit(isNetloopError(err, ErrorCode.INVALID_OPTION) ? 2 : 1);
  });
}
