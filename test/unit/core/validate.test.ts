import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { checkBoolean, checkInteger, checkNumber, checkObject, checkOptionalFunction, checkString } from '../../../lib/core/validate.js';

function refused(fn: () => unknown, option: string): void {
  assert.throws(fn, (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION) && e.details['option'] === option, option);
}

test('checkInteger takes integers within the bounds and refuses anything else, naming the option', () => {
  assert.is(checkInteger('n', 0, 0, 10), 0);
  assert.is(checkInteger('n', 10, 0, 10), 10);
  for (const bad of [-1, 11, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3' as unknown as number]) refused(() => checkInteger('n', bad, 0, 10), 'n');
});

test('checkNumber takes finite numbers within the bounds', () => {
  assert.is(checkNumber('ms', 0.5, 0, 1), 0.5);
  for (const bad of [-0.1, 1.1, Number.NaN, Number.POSITIVE_INFINITY, null as unknown as number]) refused(() => checkNumber('ms', bad, 0, 1), 'ms');
});

test('checkBoolean, checkString, checkObject and checkOptionalFunction', () => {
  assert.is(checkBoolean('b', false), false);
  refused(() => checkBoolean('b', 1), 'b');
  assert.is(checkString('s', ''), '');
  refused(() => checkString('s', 1), 's');
  checkObject('o', {});
  for (const bad of [null, [], 'x', 1]) refused(() => checkObject('o', bad), 'o');
  const f = (): void => undefined;
  assert.is(checkOptionalFunction('f', f), f);
  assert.is(checkOptionalFunction('f', undefined), null);
  assert.is(checkOptionalFunction('f', null), null);
  refused(() => checkOptionalFunction('f', 'x' as unknown as () => void), 'f');
});

test.run();
