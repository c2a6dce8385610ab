/**
 * The error every store reports for a failing event listener: one code, the
 * fault kept as `cause`, the event and the store's whereabouts in the
 * details, and a message that names the store and quotes the fault.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { listenerFaultError } from '../../../lib/store/listener-fault.js';

test('a thrown Error: NETLOOP_HANDLER_ERROR with the fault as cause, the event and the store in the details', () => {
  const fault = new Error('boom');
  const err = listenerFaultError('a redis store', 'change', fault, { prefix: 'app:' });
  assert.ok(isNetloopError(err, ErrorCode.HANDLER_ERROR));
  assert.is(err.cause, fault);
  assert.equal(err.details, { event: 'change', prefix: 'app:' });
  assert.is(err.message, "a redis store 'change' listener failed: boom");
});

test('a rejection with something other than an Error is quoted as text', () => {
  const err = listenerFaultError('a file store', 'saved', 42, { file: 'sessions.json' });
  assert.ok(isNetloopError(err, ErrorCode.HANDLER_ERROR));
  assert.is(err.cause, 42);
  assert.equal(err.details, { event: 'saved', file: 'sessions.json' });
  assert.is(err.message, "a file store 'saved' listener failed: 42");
});

test.run();
