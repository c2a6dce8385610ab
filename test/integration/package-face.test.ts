/**
 * The public face: what a user imports from 'netloop' is there, and the
 * package's exports map points at it.
 */

import { readFile } from 'node:fs/promises';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as netloop from '../../lib/index.js';

test('every layer is reachable from the package entry point', () => {
  const names = [
    // errors and clocks
    'ErrorCode', 'NetloopError', 'isNetloopError', 'systemClock', 'ManualClock',
    // reactor
    'EventLoop', 'Client', 'Server', 'Connector', 'TimerQueue', 'OutputBuffer', 'CLOSE_REASONS',
    // shutdown and observability
    'closeOnSignals', 'flushOnSignals', 'channels', 'CHANNEL_NAMES',
    // many processes behind one port
    'WorkerPool', 'joinWorkerPool', 'workerIdentity', 'reusePortSupported',
    // framing
    'ltvLayout', 'LTV_PRESETS', 'LtvDecoder', 'LtvEncoder', 'MessageRegistry', 'cellnetStringHash', 'FramedServer', 'FramedConnector', 'FramedClient',
    // messaging
    'keepAlive', 'KeepAlive', 'KEEP_ALIVE_DEFAULTS',
    // sessions
    'SessionRegistry', 'bindSessions', 'createToken', 'hashToken', 'tokenMatches', 'tokenSessionId', 'uuidv7', 'TimingWheel',
    // stores
    'MemoryStore', 'FileStore', 'RedisStore', 'SESSION_STATES',
  ];
  const api = netloop as Record<string, unknown>;
  for (const name of names) assert.ok(api[name] !== undefined, `netloop exports ${name}`);
  assert.ok(new netloop.NetloopError(netloop.ErrorCode.INVALID_OPTION, 'x') instanceof Error);
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
