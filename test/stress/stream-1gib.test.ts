/**
 * The stream transfer test of test/integration/stream-transfer.test.ts with
 * a 1 GiB file (sparse, with markers) and a 3 s slow phase, in plain TCP
 * and through TLS, on loopback: the file arrives whole, the sending
 * process's RSS grows by less than 32 MiB, write-complete fires once, at
 * the end, and the file's descriptor is released. NETLOOP_STREAM_BYTES
 * changes the size.
 *
 * @module
 */

process.env['NETLOOP_STREAM_BYTES'] ??= String(1024 * 1024 * 1024);
process.env['NETLOOP_STREAM_SLOW_MS'] ??= '3000';
await import('../integration/stream-transfer.test.js');
