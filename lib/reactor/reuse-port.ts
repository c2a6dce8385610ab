/**
 * Whether the running Node can bind several listening sockets to one port
 * (SO_REUSEPORT, `net.Server.listen({ reusePort: true })`), so that several
 * processes each accept on their own socket and the kernel spreads incoming
 * connections among them.
 *
 * ```
 *   Node >= 23.1, or 22.12 <= Node < 23     the listen option exists
 *   and a platform whose kernel has it      linux, freebsd, sunos (Solaris 11.4), aix
 *   ──▶ reusePortSupported() === true
 * ```
 *
 * The check is needed because an older Node ignores the option without a
 * word: the second process then fails with EADDRINUSE, or, in a cluster
 * worker, silently shares the primary's single socket instead.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/** The platforms (as `process.platform` names them) whose kernels give SO_REUSEPORT load balancing that libuv uses. */
export const REUSE_PORT_PLATFORMS: readonly string[] = Object.freeze(['linux', 'freebsd', 'sunos', 'aix']);

/**
 * True when `net.Server.listen()` of this Node accepts `reusePort` on this
 * platform: Node 22.12 and later 22.x, or 23.1 and later, on a platform of
 * {@link REUSE_PORT_PLATFORMS}. The arguments are seams for tests; by
 * default the running process's.
 */
export function reusePortSupported(nodeVersion: string = process.versions.node, platform: string = process.platform): boolean {
  if (!REUSE_PORT_PLATFORMS.includes(platform)) return false;
  const m = /^v?(\d+)\.(\d+)\./.exec(`${nodeVersion}.`);
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 22) return minor >= 12;
  if (major === 23) return minor >= 1;
  return major > 23;
}

/**
 * @internal Throws `NETLOOP_UNSUPPORTED` when `reusePort` is asked for and
 * the running Node cannot honour it (see {@link reusePortSupported}).
 */
export function checkReusePort(wanted: boolean): void {
  if (wanted && !reusePortSupported()) {
    throw new NetloopError(
      ErrorCode.UNSUPPORTED,
      `reusePort needs Node 22.12 or later on ${REUSE_PORT_PLATFORMS.join(', ')} (this is Node ${process.versions.node} on ${process.platform})`,
      { details: { option: 'reusePort', node: process.versions.node, platform: process.platform } },
    );
  }
}
