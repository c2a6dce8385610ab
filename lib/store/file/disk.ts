/**
 * The disk steps of the file store, over its file-system seam: a complete
 * write, an atomic replacement (temporary file, fsync, rename, folder
 * fsync), a folder fsync, and the coded error of a failed call.
 *
 * ```
 *   atomicWrite(target, data):
 *     open target.tmp ──write all──fsync──close──rename over target──fsync folder
 *          └──────────── any failure: close, unlink target.tmp, rethrow
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { FsFacade, FsFileHandle } from './fs-facade.js';

const noop = (): void => undefined;

/** The errno code of a failed call (`ENOSPC`, `EIO`, ...), or `UNKNOWN`. */
export function syscallCode(err: unknown): string {
  const c = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof c === 'string' ? c : 'UNKNOWN';
}

/** A failure as `NETLOOP_STORE_IO` (with `details.syscallCode`); a NetloopError unchanged. */
export function ioError(message: string, err: unknown, details: Record<string, unknown>): NetloopError {
  if (err instanceof NetloopError) return err;
  return new NetloopError(ErrorCode.STORE_IO, `${message}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    details: { ...details, syscallCode: syscallCode(err) },
  });
}

/** Writes all of `data` at `position`, looping over short writes; a write that makes no progress is an EIO. */
export async function writeAll(h: FsFileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await h.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) {
      throw Object.assign(new Error('write returned no progress'), { code: 'EIO' });
    }
    done += bytesWritten;
  }
}

/** Replaces `target` with `data` atomically: temporary file `tmp` in the same folder, fsync, rename, fsync of `dir`. */
export async function atomicWrite(fs: FsFacade, target: string, tmp: string, dir: string, data: Buffer): Promise<void> {
  let h: FsFileHandle | null = null;
  try {
    h = await fs.open(tmp, 'w');
    await writeAll(h, data, 0);
    await h.sync();
    const closing = h;
    h = null;
    await closing.close();
    await fs.rename(tmp, target);
  } catch (err) {
    if (h !== null) await h.close().catch(noop);
    await fs.unlink(tmp).catch(noop);
    throw err;
  }
  await syncDir(fs, dir);
}

/** fsync of a folder, so a rename or a new file survives a power loss. */
export async function syncDir(fs: FsFacade, dir: string): Promise<void> {
  let h: FsFileHandle;
  try {
    h = await fs.open(dir, 'r');
  } catch (err) {
    // Platforms that cannot open a folder (Windows) have no folder fsync to do.
    if (syscallCode(err) === 'EISDIR' || syscallCode(err) === 'EPERM') return;
    throw err;
  }
  try {
    await h.sync();
  } catch (err) {
    const code = syscallCode(err);
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await h.close().catch(noop);
  }
}
