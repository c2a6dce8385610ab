/**
 * The public face: what a user imports from 'netloop' is there, and the
 * package's exports map points at it.
 */

import { readFile } from 'node:fs/promises';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as netloop from '../../lib/index.js';
import * as testing from '../../lib/testing.js';

/**
 * The runtime names of the package's main entry point, exactly: a name added
 * or dropped fails here, so the public face changes only on purpose (the API
 * report, docs/api-report/, records the types beside them). Types, helpers
 * for store authors and test kits (netloop/testing) and operations
 * (netloop/ops) are not counted.
 */
const FACE = [
  // errors and the clock
  'ErrorCode', 'NetloopError', 'isNetloopError', 'systemClock',
  // the reactor, shutdown and observability
  'EventLoop', 'Server', 'Connector', 'linkBackpressure', 'CLOSE_REASONS', 'closeOnSignals', 'flushOnSignals', 'channels',
  // many processes behind one port
  'WorkerPool', 'joinWorkerPool', 'workerIdentity', 'reusePortSupported',
  // the codec and framing
  'ltvLayout', 'LTV_PRESETS', 'LtvDecoder', 'LtvEncoder', 'decodeFrames', 'MessageRegistry', 'json', 'utf8', 'raw',
  'CellnetBinaryReader', 'CellnetBinaryWriter', 'cellnetStringHash', 'FramedServer', 'FramedConnector',
  // messaging: keep-alive, calls, streams
  'keepAlive', 'enableRpc', 'defineCalls', 'RpcError', 'FramedStreams', 'sendFile', 'sendStream', 'createClientReadable', 'createClientWritable',
  // sessions
  'SessionRegistry', 'bindSessions', 'connectionProbe', 'jsonLineNotice', 'httpUnauthorizedNotice', 'SESSION_STATES', 'SESSION_END_REASONS',
  // stores
  'MemoryStore', 'FileStore', 'RedisStore', 'EtcdStore',
  // across processes
  'RoomsAdapter', 'createRoomsAdapter', 'connectRedis',
].sort();

test('the entry point exports exactly the public runtime names, at most 60', () => {
  const names = Object.keys(netloop).sort();
  assert.equal(names, FACE);
  assert.ok(names.length <= 60, `${names.length} runtime names`);
  assert.ok(new netloop.NetloopError(netloop.ErrorCode.INVALID_OPTION, 'x') instanceof Error);
});

test('netloop/testing holds the test kit and the store authors\' checks, nothing of the main entry', () => {
  const names = Object.keys(testing).sort();
  assert.equal(names, [
    'CONFORMANCE_TTL_MS', 'FaultyFs', 'ManualClock', 'ManualScheduler', 'applySessionPatch', 'checkWriteCondition', 'copySessionChange', 'copySessionRecord',
    'countingFs', 'errnoError', 'fakeTokenHash', 'isSharedStore', 'makeRecord', 'storeConformance', 'validateSessionChange', 'validateSessionRecord',
  ].sort());
  for (const n of names) assert.not.ok(FACE.includes(n), `${n} is not in both`);
});

test('package.json maps both entry points, for import and for require, to the built library', async () => {
  type Entry = { require: { types: string; default: string }; types: string; default: string };
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    type: string;
    exports: { '.': Entry; './testing': Entry };
    engines: { node: string };
  };
  assert.is(pkg.type, 'module');
  assert.is(pkg.exports['.'].default, './dist/lib/index.js');
  assert.is(pkg.exports['.'].types, './dist/lib/index.d.ts');
  assert.is(pkg.exports['.'].require.default, './cjs/index.cjs');
  assert.is(pkg.exports['./testing'].default, './dist/lib/testing.js');
  assert.is(pkg.exports['./testing'].require.default, './cjs/testing.cjs');
  // The lines .ci/run tests on, each from the release where require(esm) needs no flag.
  assert.is(pkg.engines.node, '^20.19.0 || ^22.12.0 || >=24.0.0');
});

test.run();
