/**
 * The transport seam of servers and connectors: plain TCP through
 * `node:net`, or TLS through `node:tls`. A `tls.TLSSocket` is a `net.Socket`,
 * so a {@link Client} drives either the same way: the same partial writes
 * against the socket's writable high-water mark, the same `'drain'`, the same
 * output limits and close reasons.
 *
 * ```
 *   listen({ tls: undefined }) ─▶ net.createServer ── 'connection' ───────▶ onSocket(socket)
 *   listen({ tls: {key,cert} }) ▶ tls.createServer ── 'secureConnection' ─▶ onSocket(tlsSocket)
 *                                        └─ 'tlsClientError' ─▶ onTlsError (no client ever existed)
 *   connect({ tls: undefined }) ▶ net.connect ─ ready on 'connect'
 *   connect({ tls: {ca,...} })  ▶ tls.connect ─ ready on 'secureConnect' (certificate verified)
 * ```
 *
 * Only a completed handshake makes a client and counts against
 * `maxConnections`; a peer that opens a socket and never finishes its
 * handshake is destroyed after `handshakeTimeout` (default
 * {@link DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS} here, not Node's 120 s).
 *
 * @module
 */

import * as net from 'node:net';
import * as tls from 'node:tls';
import { checkNumber, checkObject } from '../core/validate.js';

/**
 * TLS options of a server: everything `tls.createServer` accepts (`key`,
 * `cert`, `ca`, `requestCert`, `minVersion`, `ALPNProtocols`, ...).
 * `handshakeTimeout` defaults to {@link DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS}.
 * `allowHalfOpen` and `noDelay` are netloop's to set and are ignored here.
 */
export type TlsServerOptions = tls.TlsOptions;

/**
 * TLS options of a connector: everything `tls.connect` accepts except the
 * address and the socket (`ca`, `servername`, `rejectUnauthorized` (default
 * true), `cert`/`key` for client certificates, `minVersion`, ...).
 */
export type TlsConnectOptions = Omit<tls.ConnectionOptions, 'host' | 'port' | 'path' | 'socket' | 'allowHalfOpen'>;

/** Default TLS handshake deadline of a server: 10 s (Node's own default is 120 s, a long time for a slowloris). */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * @internal Creates the listening socket of a server: TCP, or TLS when
 * `tlsOptions` is given. `onSocket` receives each ready socket (after the
 * handshake for TLS); `onTlsError` each failed handshake.
 */
export function createListener(
  tlsOptions: TlsServerOptions | undefined | null,
  noDelay: boolean,
  onSocket: (socket: net.Socket) => void,
  onTlsError: (err: Error, socket: net.Socket) => void,
): net.Server {
  if (tlsOptions === undefined || tlsOptions === null) return net.createServer({ allowHalfOpen: true, noDelay }, onSocket);
  checkObject('tls', tlsOptions);
  const handshakeTimeout = checkNumber(
    'tls.handshakeTimeout',
    tlsOptions.handshakeTimeout ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
    1,
    2 ** 31 - 1,
  );
  // Sockets whose handshake is under way, by peer address (unique among a
  // server's live connections). net.Server.close() waits for every socket,
  // and a peer that sends FIN before finishing its handshake leaves a
  // half-open socket Node only reaps at the handshake deadline (on an unref'd
  // timer): close() destroys those at once.
  const pending = new Map<string, net.Socket>();
  const keyOf = (s: net.Socket): string => `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}`;
  // tls.Server passes allowHalfOpen and noDelay on to net.Server.
  const server = tls.createServer({ ...tlsOptions, handshakeTimeout, allowHalfOpen: true, noDelay } as tls.TlsOptions & net.ServerOpts, (socket) => {
    pending.delete(keyOf(socket));
    onSocket(socket);
  });
  server.on('connection', (raw: net.Socket) => {
    const key = keyOf(raw);
    pending.set(key, raw);
    raw.once('close', () => {
      if (pending.get(key) === raw) pending.delete(key);
    });
  });
  server.on('tlsClientError', (err: Error, socket: net.Socket) => {
    // With allowHalfOpen a failed handshake could leave the raw socket half-open,
    // holding a descriptor and keeping close() waiting: end it here, always.
    pending.delete(keyOf(socket));
    socket.destroy();
    onTlsError(err, socket);
  });
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void): tls.Server => {
    close(cb);
    for (const raw of pending.values()) raw.destroy();
    pending.clear();
    return server;
  };
  return server;
}

/**
 * @internal Opens an outbound socket: TCP, or TLS when `tlsOptions` is given.
 * `readyEvent` is the event after which the socket may carry data: `'connect'`,
 * or `'secureConnect'` once the server's certificate has been verified.
 */
export function openSocket(
  host: string,
  port: number,
  noDelay: boolean,
  tlsOptions: TlsConnectOptions | undefined | null,
): { socket: net.Socket; readyEvent: 'connect' | 'secureConnect' } {
  if (tlsOptions === undefined || tlsOptions === null) {
    return { socket: net.connect({ host, port, allowHalfOpen: true, noDelay }), readyEvent: 'connect' };
  }
  checkObject('tls', tlsOptions);
  // SNI carries a host name only; an IP address is not sent (RFC 6066).
  const servername = tlsOptions.servername ?? (net.isIP(host) === 0 ? host : undefined);
  const socket = tls.connect({ ...tlsOptions, host, port, allowHalfOpen: true, servername } as tls.ConnectionOptions);
  socket.setNoDelay(noDelay);
  return { socket, readyEvent: 'secureConnect' };
}
