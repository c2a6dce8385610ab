/**
 * The options of request/response checked on their own (`resolveRpcOptions`),
 * without a server: the defaults it fills in, the bounds it enforces and
 * the option each refusal names. The same checks seen through `enableRpc`,
 * with the owner's seams, are in rpc.test.ts.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { defineCalls } from '../../../lib/messaging/rpc-calls.js';
import { RPC_DEFAULTS, resolveRpcOptions } from '../../../lib/messaging/rpc-options.js';
import type { RpcOptions } from '../../../lib/messaging/rpc-options.js';
import type { RpcApi } from '../../../lib/messaging/rpc-calls.js';

const calls = defineCalls({ Echo: { id: 1, request: 'raw', reply: 'raw' } });

/** The option named by the INVALID_OPTION error that resolving `options` throws. */
function refused(options: unknown): unknown {
  try {
    resolveRpcOptions(options as RpcOptions<RpcApi>);
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), String(err));
    return err.details['option'];
  }
  assert.unreachable(`accepted ${JSON.stringify(options)}`);
  return undefined;
}

test('the defaults: netloop envelope on frame type 0xfff0, a 30 s timeout, 256 calls and 256 handlers in flight', () => {
  assert.equal(resolveRpcOptions({ calls }), {
    envelope: 'netloop',
    frameType: RPC_DEFAULTS.frameType,
    timeoutMs: 30_000,
    maxCallsInFlight: 256,
    maxHandlersInFlight: 256,
  });
  assert.is(RPC_DEFAULTS.frameType, 0xfff0);
});

test("cellnet's envelope has no frame type of its own to choose", () => {
  assert.is(resolveRpcOptions({ calls, envelope: 'cellnet', timeoutMs: 5 }).frameType, undefined);
  assert.is(refused({ calls, envelope: 'cellnet', frameType: 9 }), 'frameType');
  const wide = defineCalls({ Big: { id: 0x10000, request: 'raw', reply: 'raw' } });
  assert.is(refused({ calls: wide, envelope: 'cellnet' }), 'calls');
  assert.is(resolveRpcOptions({ calls: wide }).envelope, 'netloop');
});

test('every bound is finite and each refusal names its option', () => {
  assert.is(refused(null), 'options');
  assert.is(refused({}), 'calls');
  assert.is(refused({ calls: { Echo: {} } }), 'calls');
  assert.is(refused({ calls, envelope: 'grpc' }), 'envelope');
  assert.is(refused({ calls, timeoutMs: 0 }), 'timeoutMs');
  assert.is(refused({ calls, timeoutMs: 2 ** 31 }), 'timeoutMs');
  assert.is(refused({ calls, timeoutMs: Number.NaN }), 'timeoutMs');
  assert.is(refused({ calls, maxCallsInFlight: 0 }), 'maxCallsInFlight');
  assert.is(refused({ calls, maxCallsInFlight: 1.5 }), 'maxCallsInFlight');
  assert.is(refused({ calls, maxCallsInFlight: 2 ** 20 + 1 }), 'maxCallsInFlight');
  assert.is(refused({ calls, maxHandlersInFlight: -1 }), 'maxHandlersInFlight');
  assert.is(refused({ calls, frameType: -1 }), 'frameType');
  assert.is(refused({ calls, frameType: 2 ** 32 }), 'frameType');
  assert.is(resolveRpcOptions({ calls, timeoutMs: 2 ** 31 - 1, maxCallsInFlight: 2 ** 20, frameType: 0 }).maxCallsInFlight, 2 ** 20);
});

test.run();
