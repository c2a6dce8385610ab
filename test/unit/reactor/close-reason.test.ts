import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { CLOSE_REASONS, closeReasonOfSocketError, isCloseReason, isGracefulReason, outputLimitError } from '../../../lib/reactor/close-reason.js';
import { ErrorCode, NetloopError } from '../../../lib/core/errors.js';

test('the reasons are the documented set', () => {
  assert.is(new Set(CLOSE_REASONS).size, CLOSE_REASONS.length);
  for (const r of ['peer-closed', 'reset', 'error', 'output-limit', 'output-soft-limit', 'shutdown', 'force-close', 'removed', 'server-close']) {
    assert.ok(isCloseReason(r), r);
  }
  assert.not.ok(isCloseReason('nope'));
  assert.not.ok(isCloseReason(3));
});

test('graceful reasons are those that flush first', () => {
  assert.equal(
    CLOSE_REASONS.filter((r) => isGracefulReason(r)),
    ['peer-closed', 'shutdown', 'server-close'],
  );
});

test('ECONNRESET becomes reset, other system errors become error, both coded', () => {
  const reset = closeReasonOfSocketError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  assert.is(reset.reason, 'reset');
  assert.is(reset.error.code, ErrorCode.SOCKET_ERROR);
  assert.is(reset.error.details['syscallCode'], 'ECONNRESET');
  const pipe = closeReasonOfSocketError(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  assert.is(pipe.reason, 'error');
  assert.is(pipe.error.details['syscallCode'], 'EPIPE');
  const odd = closeReasonOfSocketError('weird');
  assert.is(odd.reason, 'error');
  assert.ok(odd.error instanceof NetloopError);
});

test('the output-limit error carries the sizes', () => {
  const err = outputLimitError(10, 5, 12);
  assert.is(err.code, ErrorCode.OUTPUT_LIMIT);
  assert.equal({ ...err.details }, { queuedBytes: 10, appendBytes: 5, limit: 12 });
});

test.run();
