/**
 * The per-client limits' socket options, seen from the kernel: TCP
 * keep-alive (`tcpKeepAliveMs`) on the sockets of servers (plain and TLS)
 * and connectors. Node cannot read a socket option back (no `getsockopt`),
 * so the test reads Linux's own table of TCP sockets, `/proc/net/tcp`: an
 * established socket with `SO_KEEPALIVE` has its keep-alive timer pending
 * (the `tr` field is 2) and the field after it is the time left until the
 * first probe, in clock ticks (USER_HZ, 100 a second); without keep-alive
 * an idle established socket has no timer (`tr` 0).
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import { Connector } from '../../../lib/reactor/connector.js';
import type { Client } from '../../../lib/reactor/client.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { MAX_TCP_KEEPALIVE_MS, clientConfig } from '../../../lib/reactor/client-limits.js';
import { connectRaw, destroyAll, until, waitFor } from '../../helpers/net.js';
import { throwsCode } from '../../helpers/ltv.js';
import { makeTestPki } from '../../helpers/tls-cert.js';

/** Linux's USER_HZ, the unit of the timer field (100 on every Linux architecture netloop runs on). */
const USER_HZ = 100;

/** The timer of the IPv4 TCP socket bound to `localPort` and connected to `remotePort`, as the kernel reports it. */
function kernelTimer(localPort: number, remotePort: number): { active: number; seconds: number } {
  const hex = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    // sl local rem st tx:rx tr:when ...
    if (f[1]!.endsWith(`:${hex(localPort)}`) && f[2]!.endsWith(`:${hex(remotePort)}`)) {
      const [tr, when] = f[5]!.split(':');
      return { active: parseInt(tr!, 16), seconds: parseInt(when!, 16) / USER_HZ };
    }
  }
  throw new Error(`no socket ${localPort} -> ${remotePort} in /proc/net/tcp`);
}

const linux = process.platform === 'linux' && fs.existsSync('/proc/net/tcp');

test('tcpKeepAliveMs: an accepted socket has the kernel keep-alive timer armed for the delay asked; without it, no timer', async () => {
  if (!linux) return;
  const loop = new EventLoop();
  const peers: net.Socket[] = [];
  try {
    const withKa = await new Server(loop, { port: 0, tcpKeepAliveMs: 7_000 }).listen();
    const without = await new Server(loop, { port: 0 }).listen();
    for (const server of [withKa, without]) {
      const accepted = waitFor<[Client]>(server, 'connection');
      const peer = await connectRaw(server.port);
      peers.push(peer);
      const [client] = await accepted;
      const t = kernelTimer(server.port, peer.localPort!);
      if (server === withKa) {
        assert.is(t.active, 2, 'the keep-alive timer is pending');
        assert.ok(t.seconds > 5 && t.seconds <= 7, `first probe in ${t.seconds} s`);
      } else {
        assert.is(t.active, 0, 'no timer without tcpKeepAliveMs');
      }
      // The peer's own socket is the control: nobody set keep-alive on it.
      assert.is(kernelTimer(peer.localPort!, server.port).active, 0);
      assert.ok(client.writable);
    }
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

test("tcpKeepAliveMs: a connector's socket has it once connected", async () => {
  if (!linux) return;
  const loop = new EventLoop();
  const sockets: net.Socket[] = [];
  const raw = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const port = (raw.address() as net.AddressInfo).port;
  try {
    const connector = new Connector(loop, { port, tcpKeepAliveMs: 9_000, reconnect: false });
    connector.connect();
    const [client] = await waitFor<[Client]>(connector, 'connected');
    const t = kernelTimer(client.socket.localPort!, port);
    assert.is(t.active, 2);
    assert.ok(t.seconds > 7 && t.seconds <= 9, `first probe in ${t.seconds} s`);
    await until(() => sockets.length === 1, 'the accept');
    assert.is(kernelTimer(port, client.socket.localPort!).active, 0, 'the plain server side has none');
  } finally {
    await loop.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  }
});

test('tcpKeepAliveMs: a TLS server sets it on the TCP socket under the TLS one', async () => {
  if (!linux) return;
  const pki = await makeTestPki();
  const loop = new EventLoop();
  let peer: tls.TLSSocket | undefined;
  try {
    const server = await new Server(loop, { port: 0, tcpKeepAliveMs: 5_000, tls: { key: pki.key, cert: pki.cert } }).listen();
    const accepted = waitFor<[Client]>(server, 'connection');
    peer = tls.connect({ host: '127.0.0.1', port: server.port, ca: pki.ca, servername: 'localhost' });
    peer.on('error', () => undefined);
    await accepted;
    const t = kernelTimer(server.port, peer.localPort!);
    assert.is(t.active, 2);
    assert.ok(t.seconds > 3 && t.seconds <= 5, `first probe in ${t.seconds} s`);
  } finally {
    peer?.destroy();
    await loop.close();
    await pki.remove();
  }
});

test('tcpKeepAliveMs is validated: 0 (off) or whole ms in [1000, 32,767,000], NETLOOP_INVALID_OPTION otherwise', () => {
  assert.is(clientConfig({}, 0).tcpKeepAliveMs, 0, 'off by default');
  assert.is(clientConfig({ tcpKeepAliveMs: 0 }, 0).tcpKeepAliveMs, 0);
  assert.is(clientConfig({ tcpKeepAliveMs: 1_000 }, 0).tcpKeepAliveMs, 1_000);
  assert.is(clientConfig({ tcpKeepAliveMs: MAX_TCP_KEEPALIVE_MS }, 0).tcpKeepAliveMs, 32_767_000);
  const loop = new EventLoop();
  for (const bad of [-1, 1, 999, 1_500.5, MAX_TCP_KEEPALIVE_MS + 1, Number.NaN, Number.POSITIVE_INFINITY, '60000', true]) {
    for (const make of [() => new Server(loop, { tcpKeepAliveMs: bad as number }), () => new Connector(loop, { port: 1, tcpKeepAliveMs: bad as number })]) {
      const e = throwsCode(make, ErrorCode.INVALID_OPTION);
      assert.is(e.details['option'], 'tcpKeepAliveMs', String(bad));
    }
  }
});

test.run();
