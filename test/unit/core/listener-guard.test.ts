/**
 * The listener guard: every way a listener can fail reaches the fault sink
 * exactly once and nothing escapes; the default report of an unheard
 * `'error'` is a coded process warning, rate-limited per emitter.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { callGuarded, listenerError, reportFault } from '../../../lib/core/listener-guard.js';
import { until } from '../../helpers/net.js';
import { watchProcessFaults } from '../../helpers/process-faults.js';

/** Calls `fn` guarded and resolves with the faults it reported, after the microtasks it started ran. */
async function faultsOf(fn: (...args: never[]) => unknown, args: unknown[] = []): Promise<Array<[unknown, boolean]>> {
  const faults: Array<[unknown, boolean]> = [];
  callGuarded(fn, undefined, args, (err, rejected) => void faults.push([err, rejected]));
  await new Promise((resolve) => setImmediate(resolve));
  return faults;
}

test('every way a listener fails reaches the sink once, as thrown or rejected; success and plain values do not', async () => {
  const watch = watchProcessFaults();
  try {
    const boom = new Error('boom');
    assert.equal(await faultsOf(() => undefined), []);
    assert.equal(await faultsOf(() => 42), []);
    assert.equal(await faultsOf(async () => 'fine'), []);
    assert.equal(await faultsOf(() => ({ then: 5 })), [], 'an object with a non-function then is a value');
    assert.equal(
      await faultsOf((a: number, b: number) => {
        if (a + b === 3) throw boom;
      }, [1, 2]),
      [[boom, false]],
      'a throw, with the arguments passed',
    );
    assert.equal(await faultsOf(async () => Promise.reject(boom)), [[boom, true]], 'a rejection');
    assert.equal(
      await faultsOf(() => ({
        then() {
          throw boom;
        },
      })),
      [[boom, false]],
      'a thenable whose then throws',
    );
    assert.equal(
      await faultsOf(() => ({
        get then(): never {
          throw boom;
        },
      })),
      [[boom, false]],
      'a then getter that throws',
    );
    watch.assertClean();
  } finally {
    watch.stop();
  }
});

test('a sink that throws is reported as a warning, never thrown to the caller or left unhandled', async () => {
  const watch = watchProcessFaults();
  try {
    const sink = (): void => {
      throw new NetloopError(ErrorCode.HANDLER_ERROR, 'the sink itself failed');
    };
    callGuarded(() => {
      throw new Error('first');
    }, undefined, [], sink);
    callGuarded(async () => {
      throw new Error('second');
    }, undefined, [], sink);
    await watch.warning(ErrorCode.HANDLER_ERROR, /the sink itself failed/);
    watch.assertClean();
  } finally {
    watch.stop();
  }
});

test('listenerError is NETLOOP_HANDLER_ERROR with the fault as cause and the details given', () => {
  const cause = new Error('x');
  const e = listenerError("a 'created' listener", cause, true, { event: 'created', clientId: 7 });
  assert.ok(isNetloopError(e, ErrorCode.HANDLER_ERROR));
  assert.is(e.cause, cause);
  assert.match(e.message, /rejected: x/);
  assert.equal({ ...e.details }, { event: 'created', clientId: 7 });
  assert.match(listenerError('a listener', 'plain', false, {}).message, /threw: plain/);
});

test('reportFault warns with the code, at most once per emitter, source and code within the interval', async () => {
  const watch = watchProcessFaults();
  try {
    const a = {};
    const b = {};
    const down = new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'store down');
    reportFault(a, 'guard test', down);
    reportFault(a, 'guard test', down);
    reportFault(a, 'guard test', down);
    reportFault(b, 'guard test', down);
    reportFault(a, 'guard test', new NetloopError(ErrorCode.STORE_IO, 'disk full'));
    reportFault(a, 'guard test', Object.assign(new Error('system'), { code: 'ECONNRESET' }));
    reportFault(a, 'guard test', 'a string');
    await until(() => watch.warnings.filter((w) => /^guard test:/.test(w.message)).length >= 5, 'the warnings');
    await new Promise((resolve) => setImmediate(resolve));
    const mine = watch.warnings.filter((w) => /^guard test:/.test(w.message));
    assert.equal(
      mine.map((w) => w.code),
      [ErrorCode.STORE_UNAVAILABLE, ErrorCode.STORE_UNAVAILABLE, ErrorCode.STORE_IO, 'ECONNRESET', ErrorCode.HANDLER_ERROR],
      'the repeats of one emitter were left out; another emitter, or another code, is reported',
    );
    assert.ok(mine.every((w) => w.name === 'NetloopWarning'));
    assert.match(mine[0]!.message, /add an 'error' listener/);
    watch.assertClean();
  } finally {
    watch.stop();
  }
});

test.run();
