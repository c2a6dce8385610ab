import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { TypedEmitter, reportFault, setFaultReporter } from '../../../lib/core/emitter.js';

interface Events {
  tick: (n: number) => void;
  pair: (a: string, b: number) => void;
  error: (err: unknown) => void;
}

class Ticker extends TypedEmitter<Events> {
  faults: Array<{ fault: unknown; name: string }> = [];
  routeFaults = false;
  fire<K extends keyof Events & string>(name: K, ...args: Parameters<Events[K]>): boolean {
    return this.emit(name, ...args);
  }
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    if (this.routeFaults) this.faults.push({ fault, name });
    else super._listenerFault(fault, name, args);
  }
}

function captureReports(): { reports: Array<{ fault: unknown; source: string }>; restore: () => void } {
  const reports: Array<{ fault: unknown; source: string }> = [];
  setFaultReporter((fault, source) => reports.push({ fault, source }));
  return { reports, restore: () => setFaultReporter(null) };
}

test('listeners run in registration order with the arguments given; emit says whether anyone listened', () => {
  const t = new Ticker();
  const seen: string[] = [];
  assert.is(t.fire('tick', 1), false);
  t.on('tick', (n) => seen.push(`a${n}`)).on('tick', (n) => seen.push(`b${n}`));
  t.on('pair', (a, b) => seen.push(`${a}${b}`));
  assert.is(t.fire('tick', 1), true);
  t.fire('pair', 'x', 2);
  assert.equal(seen, ['a1', 'b1', 'x2']);
  assert.is(t.listenerCount('tick'), 2);
  assert.is(t.listenerCount('error'), 0);
});

test('once runs a listener for one event; off removes a once listener by its original function', () => {
  const t = new Ticker();
  const seen: number[] = [];
  const fn = (n: number): void => {
    seen.push(n);
  };
  t.once('tick', fn);
  t.fire('tick', 1);
  t.fire('tick', 2);
  assert.equal(seen, [1]);
  t.once('tick', fn);
  t.off('tick', fn);
  t.fire('tick', 3);
  assert.equal(seen, [1]);
  assert.is(t.listenerCount('tick'), 0);
});

test('a listener added or removed during an emit does not change who that emit calls', () => {
  const t = new Ticker();
  const seen: string[] = [];
  const late = (): void => {
    seen.push('late');
  };
  const second = (): void => {
    seen.push('second');
  };
  t.on('tick', () => {
    seen.push('first');
    t.on('tick', late);
    t.off('tick', second);
  });
  t.on('tick', second);
  t.fire('tick', 0);
  assert.equal(seen, ['first', 'second']);
  seen.length = 0;
  t.fire('tick', 0);
  assert.equal(seen, ['first', 'late']);
});

test('a throwing listener goes to the fault handler; the listeners after it still run', () => {
  const t = new Ticker();
  t.routeFaults = true;
  const seen: number[] = [];
  const boom = new Error('boom');
  t.on('tick', () => {
    throw boom;
  });
  t.on('tick', (n) => seen.push(n));
  assert.not.throws(() => t.fire('tick', 7));
  assert.equal(seen, [7]);
  assert.equal(t.faults, [{ fault: boom, name: 'tick' }]);
});

test('a listener whose promise rejects goes to the fault handler, never an unhandled rejection', async () => {
  const t = new Ticker();
  t.routeFaults = true;
  const boom = new Error('async boom');
  t.on('tick', async () => {
    await Promise.resolve();
    throw boom;
  });
  t.fire('tick', 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(t.faults, [{ fault: boom, name: 'tick' }]);
});

test('by default a fault goes to the error listeners, and is reported when there are none', async () => {
  const { reports, restore } = captureReports();
  try {
    const t = new Ticker();
    const boom = new Error('boom');
    t.on('tick', () => {
      throw boom;
    });
    t.fire('tick', 1);
    assert.is(reports.length, 1);
    assert.is(reports[0]!.fault, boom);
    assert.match(reports[0]!.source, /Ticker 'tick' listener/);
    const errors: unknown[] = [];
    t.on('error', (err) => errors.push(err));
    t.fire('tick', 2);
    assert.equal(errors, [boom]);
    assert.is(reports.length, 1);
  } finally {
    restore();
  }
});

test('an error listener that throws is reported, not rethrown', () => {
  const { reports, restore } = captureReports();
  try {
    const t = new Ticker();
    const first = new Error('first');
    const second = new Error('second');
    t.on('tick', () => {
      throw first;
    });
    t.on('error', () => {
      throw second;
    });
    assert.not.throws(() => t.fire('tick', 1));
    assert.equal(
      reports.map((r) => r.fault),
      [second],
    );
  } finally {
    restore();
  }
});

test('the default reporter emits a process warning carrying the fault code; a throwing reporter is ignored', async () => {
  const warned = new Promise<Error & { code?: string }>((resolve) => process.once('warning', resolve));
  reportFault(Object.assign(new Error('x'), { code: 'NETLOOP_HANDLER_ERROR' }), 'test');
  const w = await warned;
  assert.is(w.name, 'NetloopWarning');
  assert.is(w.code, 'NETLOOP_HANDLER_ERROR');
  setFaultReporter(() => {
    throw new Error('reporter broke');
  });
  try {
    assert.not.throws(() => reportFault(new Error('y'), 'test'));
  } finally {
    setFaultReporter(null);
  }
});

test('a listener that is not a function is refused at once', () => {
  const t = new Ticker();
  assert.throws(() => t.on('tick', 42 as unknown as (n: number) => void), /must be a function/);
});

test('the default reporter says the same source and code once per interval; another code still gets through', async () => {
  const warnings: Array<Error & { code?: string }> = [];
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.name === 'NetloopWarning' && w.message.startsWith('rate-limit test')) warnings.push(w);
  };
  process.on('warning', onWarning);
  try {
    for (let i = 0; i < 3; i++) reportFault(Object.assign(new Error(`store down ${i}`), { code: 'NETLOOP_STORE_UNAVAILABLE' }), 'rate-limit test');
    reportFault(Object.assign(new Error('other'), { code: 'NETLOOP_STORE_IO' }), 'rate-limit test');
    // process.emitWarning delivers on the next tick.
    await new Promise((r) => setImmediate(r));
    assert.equal(
      warnings.map((w) => w.code),
      ['NETLOOP_STORE_UNAVAILABLE', 'NETLOOP_STORE_IO'],
    );
    assert.match(warnings[0]!.message, /store down 0/);
  } finally {
    process.off('warning', onWarning);
  }
});

test.run();
