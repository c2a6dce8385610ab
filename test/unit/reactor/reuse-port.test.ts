/**
 * `reusePort` (SO_REUSEPORT): which Node and platform offer it; a server
 * asking for it where the running Node cannot honour it is refused with
 * `NETLOOP_UNSUPPORTED` (an older Node ignores the option without a word);
 * where it can, two servers bind one port and the kernel hands connections
 * to both, while a server without the option still meets EADDRINUSE.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import { REUSE_PORT_PLATFORMS, reusePortSupported } from '../../../lib/reactor/reuse-port.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { until } from '../../helpers/net.js';

test('reusePortSupported: Node 22.12+ (and 23.1+) on Linux, FreeBSD, Solaris, AIX', () => {
  for (const [version, platform, yes] of [
    ['20.19.0', 'linux', false],
    ['22.11.0', 'linux', false],
    ['22.12.0', 'linux', true],
    ['v22.20.1', 'linux', true],
    ['23.0.0', 'linux', false],
    ['23.1.0', 'linux', true],
    ['24.0.0', 'freebsd', true],
    ['25.2.1', 'sunos', true],
    ['24.0.0', 'darwin', false],
    ['24.0.0', 'win32', false],
    ['nonsense', 'linux', false],
  ] as const) {
    assert.is(reusePortSupported(version, platform), yes, `${version} on ${platform}`);
  }
  assert.ok(REUSE_PORT_PLATFORMS.includes('linux'));
});

test('reusePort must be a boolean', () => {
  const loop = new EventLoop();
  try {
    new Server(loop, { reusePort: 'yes' as unknown as boolean });
    assert.unreachable();
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
    assert.is((err as { details?: { option?: string } }).details?.option, 'reusePort');
  }
});

if (!reusePortSupported()) {
  test(`reusePort on Node ${process.versions.node} (${process.platform}): refused with NETLOOP_UNSUPPORTED, not silently ignored`, () => {
    const loop = new EventLoop();
    try {
      new Server(loop, { reusePort: true });
      assert.unreachable();
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.UNSUPPORTED));
      assert.equal(err.details, { option: 'reusePort', node: process.versions.node, platform: process.platform });
    }
    // Without it, nothing changes.
    assert.ok(new Server(loop, { reusePort: false }));
  });
} else {
  test('reusePort: two servers bind one port, the kernel hands connections to both; a server without it meets EADDRINUSE', async () => {
    const loop = new EventLoop();
    const sockets: net.Socket[] = [];
    try {
      const a = await new Server(loop, { reusePort: true }).listen();
      const b = await new Server(loop, { port: a.port, reusePort: true }).listen();
      assert.is(b.port, a.port);
      let accepted = 0;
      a.on('connection', () => accepted++);
      b.on('connection', () => accepted++);
      // The kernel picks a socket by a hash of each connection's addresses: new source ports reach both soon.
      for (let i = 0; i < 64 && (a.clientCount === 0 || b.clientCount === 0); i++) {
        sockets.push(net.connect({ host: '127.0.0.1', port: a.port }).on('error', () => undefined));
        await until(() => accepted === sockets.length, 'the connection accepted');
      }
      assert.ok(a.clientCount > 0 && b.clientCount > 0, `both accepted (${a.clientCount}, ${b.clientCount})`);
      try {
        await new Server(loop, { port: a.port }).listen();
        assert.unreachable();
      } catch (err) {
        assert.ok(isNetloopError(err, ErrorCode.SOCKET_ERROR));
        assert.is((err.details as { syscallCode?: string }).syscallCode, 'EADDRINUSE');
      }
    } finally {
      for (const s of sockets) s.destroy();
      await loop.close();
    }
  });
}

test.run();
