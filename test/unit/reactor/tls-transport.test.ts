import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as tls from 'node:tls';
import * as net from 'node:net';
import * as dc from 'node:diagnostics_channel';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Client } from '../../../lib/reactor/client.js';
import { Connector } from '../../../lib/reactor/connector.js';
import type { ConnectErrorInfo, DropInfo } from '../../../lib/reactor/callbacks.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { CHANNEL_NAMES } from '../../../lib/reactor/diagnostics.js';
import type { AcceptMessage, TlsErrorMessage } from '../../../lib/reactor/diagnostics.js';
import { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from '../../../lib/reactor/tls-transport.js';
import { makeTestPki } from '../../helpers/tls-cert.js';
import type { TestPki } from '../../helpers/tls-cert.js';
import { collectAll, destroyAll, digest, pattern, readBytes, slowRead, until, waitFor, withTimeout } from '../../helpers/net.js';
import { Server } from '../../../lib/reactor/server.js';

const TLS = suite('tls-transport');
let pki: TestPki;

TLS.before(async () => {
  pki = await makeTestPki();
});
TLS.after(async () => {
  await pki.remove();
});

/** A raw TLS peer that trusts the test CA; resolves once the handshake is done. */
function tlsPeer(port: number, ca: Buffer = pki.ca): Promise<tls.TLSSocket> {
  return withTimeout(
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
      s.once('secureConnect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    }),
    5_000,
    'a TLS handshake',
  );
}

TLS('a TLS echo exchange: the client is a TLSSocket, bytes round-trip, close reason peer-closed', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert } }).listen();
  try {
    server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
    const conn = waitFor<[Client]>(server, 'connection');
    const peer = await tlsPeer(server.port);
    const [client] = await conn;
    assert.ok(client.socket instanceof tls.TLSSocket, 'the client wraps a TLS socket');
    assert.ok(peer.authorized, 'the peer verified the server certificate against the CA');
    peer.write('hello over tls');
    assert.is((await readBytes(peer, 14)).toString(), 'hello over tls');
    const closed = waitFor<[Client, string, NetloopError | undefined]>(server, 'close');
    peer.end();
    const [c, reason, err] = await closed;
    assert.is(c, client);
    assert.is(reason, 'peer-closed');
    assert.is(err, undefined);
    assert.is(loop.stats().counters.accepted, 1);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

TLS('a large transfer to a slow TLS reader arrives byte-exact; write-complete fires once, after the last byte', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert }, softOutputLimit: null }).listen();
  try {
    // Appends of mixed sizes, 1 byte to 1 MiB, 6 MiB in all: far beyond the socket's high-water mark.
    const sizes = [1, 1024 * 1024, 7, 65_536, 3 * 1024 * 1024, 100, 16_384, 2 * 1024 * 1024 - 65_536 - 16_384 - 108];
    const total = sizes.reduce((a, b) => a + b, 0);
    const payload = pattern(total, 3);
    let completes = 0;
    let queuedAtComplete = -1;
    const complete = new Promise<void>((resolve) => {
      server.on('connection', (c: Client) => {
        c.setWriteCompleteCallback((cc) => {
          completes++;
          queuedAtComplete = cc.queuedBytes;
          resolve();
        });
        let off = 0;
        for (const n of sizes) {
          assert.ok(c.appendToOutputBuffer(payload.subarray(off, off + n)));
          off += n;
        }
        c.enableWriting();
        loop.updateClient(c);
        assert.ok(c.hasDataToWrite(), 'output stays queued in the client while the socket is full');
      });
    });
    const peer = await tlsPeer(server.port);
    const got = await slowRead(peer, total, 1, 30_000);
    assert.is(got.length, total);
    assert.is(digest(got), digest(payload), 'every byte, in order, once');
    await withTimeout(complete, 5_000, 'write-complete');
    assert.is(completes, 1);
    assert.is(queuedAtComplete, 0);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

TLS('a connector reaches a TLS server with the CA; a wrong CA is a coded connect error', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert } }).listen();
  try {
    server.on('data', (c: Client, chunk: Buffer) => c.write(Buffer.concat([Buffer.from('echo:'), chunk])));
    const good: Connector = new Connector(loop, { port: server.port, tls: { ca: pki.ca, servername: 'localhost' }, reconnect: false }).connect();
    const [client] = await waitFor<[Client]>(good, 'connected');
    assert.ok(client.socket instanceof tls.TLSSocket);
    const reply = waitFor<[Client, Buffer]>(good, 'data');
    client.write('ping');
    const [, chunk] = await reply;
    assert.is(chunk.toString(), 'echo:ping');
    assert.is(loop.stats().counters.connected, 1);

    const bad = new Connector(loop, { port: server.port, tls: { ca: pki.otherCa, servername: 'localhost' }, reconnect: false }).connect();
    const [err, info] = await waitFor<[NetloopError, ConnectErrorInfo]>(bad, 'connect-error');
    assert.is(err.code, ErrorCode.CONNECT_FAILED);
    assert.is(info.nextDelayMs, null);
    assert.ok(typeof err.details['syscallCode'] === 'string', 'the OpenSSL verification code is kept');
    await good.close();
  } finally {
    await loop.close();
  }
});

TLS('maxConnections over TLS: the handshake completes, then the extra connection is dropped; the first is untouched', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert }, maxConnections: 1 }).listen();
  try {
    server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
    const first = await tlsPeer(server.port);
    await until(() => server.clientCount === 1, 'the first client');
    const dropped = waitFor<[DropInfo]>(server, 'drop');
    const second = await tlsPeer(server.port);
    const ended = collectAll(second);
    const [info] = await dropped;
    assert.is(info.reason, 'max-connections');
    await ended;
    first.write('still here');
    assert.is((await readBytes(first, 10)).toString(), 'still here');
    assert.is(loop.stats().counters.dropped, 1);
    await destroyAll(first, second);
  } finally {
    await loop.close();
  }
});

TLS('a plain-text peer on a TLS port fails its handshake: counted, published, no client, the server lives', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert } }).listen();
  const seen: TlsErrorMessage[] = [];
  const onTls = (m: unknown): void => {
    seen.push(m as TlsErrorMessage);
  };
  dc.subscribe(CHANNEL_NAMES.tlsError, onTls);
  try {
    let connections = 0;
    server.on('connection', () => connections++);
    const raw = net.connect({ host: '127.0.0.1', port: server.port });
    raw.on('error', () => undefined);
    raw.write('GET / HTTP/1.0\r\n\r\n');
    await collectAll(raw);
    await until(() => loop.stats().counters.tlsErrors === 1, 'the TLS error to be counted');
    assert.is(connections, 0);
    assert.is(seen.length, 1);
    assert.is(typeof seen[0]!.code, 'string');
    const ok = await tlsPeer(server.port);
    await until(() => server.clientCount === 1, 'a good client after the bad one');
    await destroyAll(ok, raw);
  } finally {
    dc.unsubscribe(CHANNEL_NAMES.tlsError, onTls);
    await loop.close();
  }
});

TLS('the output hard limit over TLS closes only that client with NETLOOP_OUTPUT_LIMIT; accept messages say tls', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert }, maxOutputBytes: 256 * 1024, softOutputLimit: null }).listen();
  const accepts: AcceptMessage[] = [];
  const onAccept = (m: unknown): void => {
    accepts.push(m as AcceptMessage);
  };
  dc.subscribe(CHANNEL_NAMES.accept, onAccept);
  try {
    server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
    const conn = waitFor<[Client]>(server, 'connection');
    const reader = await tlsPeer(server.port);
    const [victim] = await conn;
    const other = await tlsPeer(server.port);
    // The reader never reads; the server keeps appending until the hard limit bites.
    // Loopback socket buffers autotune to several MiB on both ends, so the bound is
    // generous (64 MiB); the loop ends at the first refusal, long before that.
    reader.pause();
    const closed = waitFor<[Client, string, NetloopError | undefined]>(server, 'close');
    const block = pattern(64 * 1024);
    let refused = false;
    for (let i = 0; i < 1024 && !refused; i++) {
      if (!victim.write(block)) refused = true;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    assert.ok(refused, 'an append past the hard limit is refused');
    const [c, reason, err] = await closed;
    assert.is(c, victim);
    assert.is(reason, 'output-limit');
    assert.ok(isNetloopError(err, ErrorCode.OUTPUT_LIMIT));
    other.write('alive');
    assert.is((await readBytes(other, 5)).toString(), 'alive');
    assert.is(accepts.length, 2);
    assert.ok(accepts.every((m) => m.tls === true));
    await destroyAll(reader, other);
  } finally {
    dc.unsubscribe(CHANNEL_NAMES.accept, onAccept);
    await loop.close();
  }
});

TLS('bad TLS options are refused at construction with NETLOOP_INVALID_OPTION; the handshake deadline has a finite default', async () => {
  const loop = new EventLoop();
  try {
    for (const tlsOpt of [42, 'cert', [1]] as unknown[]) {
      let code: unknown;
      try {
        await new Server(loop, { tls: tlsOpt as tls.TlsOptions }).listen();
      } catch (err) {
        code = (err as NetloopError).code;
      }
      assert.is(code, ErrorCode.INVALID_OPTION);
    }
    let code: unknown;
    try {
      await new Server(loop, { tls: { key: pki.key, cert: pki.cert, handshakeTimeout: 0 } }).listen();
    } catch (err) {
      code = (err as NetloopError).code;
    }
    assert.is(code, ErrorCode.INVALID_OPTION);
    assert.ok(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS > 0 && DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS <= 30_000);
    let ccode: unknown;
    try {
      new Connector(loop, { port: 1, tls: 7 as unknown as tls.ConnectionOptions, reconnect: false }).connect();
    } catch (err) {
      ccode = (err as NetloopError).code;
    }
    assert.is(ccode, ErrorCode.INVALID_OPTION);
  } finally {
    await loop.close();
  }
});

TLS('a TLS peer that never finishes its handshake is cut at the handshake deadline', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { tls: { key: pki.key, cert: pki.cert, handshakeTimeout: 200 } }).listen();
  try {
    const raw = net.connect({ host: '127.0.0.1', port: server.port });
    raw.on('error', () => undefined);
    await waitFor(raw, 'connect');
    const t0 = Date.now();
    await collectAll(raw, 5_000);
    assert.ok(Date.now() - t0 < 4_000, 'closed by the deadline, not by chance');
    await until(() => loop.stats().counters.tlsErrors === 1, 'the handshake timeout to be counted');
    assert.is(server.clientCount, 0);
    await destroyAll(raw);
  } finally {
    await loop.close();
  }
});

TLS.run();
