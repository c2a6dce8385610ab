import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { OperationStats } from '../../../lib/store/operation-stats.js';
import { NetloopError, ErrorCode } from '../../../lib/core/errors.js';

class Target {
  #secret = 7;
  async get(id: string): Promise<number> {
    if (id === 'down') throw new NetloopError(ErrorCode.STORE_UNAVAILABLE, 'down');
    if (id === 'odd') throw new Error('no code');
    return this.#secret;
  }
  count(): Promise<number> {
    throw new NetloopError(ErrorCode.STORE_CLOSED, 'closed');
  }
}

test('wrapped methods keep their this, arguments and results; every settle is timed; failures are counted by code', async () => {
  const t = new Target();
  const stats = new OperationStats();
  stats.wrap(t, ['get', 'count', 'missing']);
  assert.is(await t.get('a'), 7, 'the original ran with its own private fields');
  const codes: unknown[] = [];
  for (const id of ['down', 'odd']) {
    try {
      await t.get(id);
    } catch (err) {
      codes.push((err as { code?: unknown }).code ?? (err as Error).message);
    }
  }
  assert.equal(codes, [ErrorCode.STORE_UNAVAILABLE, 'no code'], 'the same errors reach the caller');
  try {
    void t.count();
    assert.unreachable('a synchronous throw is rethrown');
  } catch (err) {
    assert.is((err as NetloopError).code, ErrorCode.STORE_CLOSED);
  }
  const sample = stats.sample();
  assert.equal(sample.map((s) => s.operation), ['get', 'count'], 'a method the target lacks is skipped');
  const get = sample[0]!;
  assert.is(get.duration.count, 3);
  assert.equal(get.errors, { [ErrorCode.STORE_UNAVAILABLE]: 1, UNCODED: 1 });
  assert.equal(sample[1]!.errors, { [ErrorCode.STORE_CLOSED]: 1 });
});

test('a method that answers without a promise is timed as it returned, its value unchanged', () => {
  const target = { count: (): number => 3 };
  const stats = new OperationStats();
  stats.wrap(target, ['count']);
  assert.is(target.count(), 3);
  assert.is(stats.sample()[0]!.duration.count, 1);
});

test('an operation never called is not in the sample', () => {
  const stats = new OperationStats();
  stats.wrap(new Target());
  assert.equal(stats.sample(), []);
});

test.run();
