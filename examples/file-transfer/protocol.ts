/**
 * The file-transfer example's messages, shared by its server and client.
 *
 * ```
 *   client                                   server
 *     Get { name }            ──────────▶     name checked (a plain file name in its folder)
 *                             ◀──────────     FileInfo { name, size, sha256 }   or   Failed { code, message }
 *                             ◀══════════     framed stream (meta: name): the file's bytes, then its end marker
 *   the client writes the stream to its file, prints its progress, compares the SHA-256
 * ```
 *
 * The stream travels on the framed-stream type beside these messages
 * (`FramedStreams`, type `0xfff2`), so the connection could carry other
 * messages, or other files, while a file is on its way.
 *
 * @module
 */

import { MessageRegistry } from 'netloop';

/** The port the example listens on when none is given. */
export const DEFAULT_FILE_PORT = 7010;

/** Asks for one file of the server's folder. */
export interface Get {
  name: string;
}

/** What the server is about to send: the file's size and SHA-256 (hex), for the client to check. */
export interface FileInfo {
  name: string;
  size: number;
  sha256: string;
}

/** Why the server will not send a file: a netloop error code (or a system one such as `ENOENT`) and a message. */
export interface Failed {
  name: string;
  code: string;
  message: string;
}

/** The registry both ends use. */
export function fileRegistry(): MessageRegistry {
  const registry = new MessageRegistry();
  registry.register(1, 'Get', 'json');
  registry.register(2, 'FileInfo', 'json');
  registry.register(3, 'Failed', 'json');
  return registry;
}

/** Whether `name` is a plain file name (no folder, no `..`): the server serves nothing outside its folder. */
export function isPlainName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= 255 && !/[/\\\0]/.test(name) && name !== '.' && name !== '..';
}
