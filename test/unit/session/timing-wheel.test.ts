import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { TimingWheel } from '../../../lib/session/timing-wheel.js';
import type { WheelEntry } from '../../../lib/session/timing-wheel.js';

function throwsCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err), String(err));
    assert.is((err as { code: string }).code, code);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('options are validated', () => {
  throwsCode(() => new TimingWheel({ slots: 3 }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new TimingWheel({ slots: 1 }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new TimingWheel({ tickMs: 0 }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new TimingWheel({ tickMs: Number.NaN }), ErrorCode.INVALID_OPTION);
  const w = new TimingWheel<string>();
  assert.is(w.tickMs, 1000);
  assert.is(w.slots, 512);
});

test('an entry fires at the first tick at or after its deadline, never before', () => {
  const w = new TimingWheel<string>({ tickMs: 10, slots: 8 });
  w.add('a', 25);
  w.add('b', 30);
  assert.equal(w.advance(24), []);
  assert.equal(w.advance(29), []);
  assert.equal(w.advance(30).sort(), ['a', 'b']);
  assert.is(w.size, 0);
  assert.is(w.has('a'), false);
});

test('a deadline already passed fires at the next tick', () => {
  const w = new TimingWheel<string>({ tickMs: 10, slots: 8, start: 100 });
  w.advance(155);
  w.add('late', 120);
  assert.equal(w.advance(159), [], 'not before the next tick boundary');
  assert.equal(w.advance(160), ['late']);
});

test('reschedule later is lazy (re-filed when its slot comes), earlier is immediate', () => {
  const w = new TimingWheel<string>({ tickMs: 10, slots: 16 });
  const e = w.add('k', 50);
  w.reschedule('k', 120);
  assert.is(w.deadlineOf('k'), 120);
  assert.equal(w.advance(50), [], 're-filed, not reported');
  assert.ok(w.has('k'));
  assert.equal(w.advance(119), []);
  assert.equal(w.advance(120), ['k']);
  // Earlier: must fire at the earlier deadline even though filed later.
  w.add('m', 500);
  assert.ok(w.reschedule('m', 130));
  assert.equal(w.advance(130), ['m']);
  // Direct write of a later deadline on the entry is the heartbeat path.
  const f = w.addEntry('direct', 200);
  f.deadline = 260;
  assert.equal(w.advance(250), []);
  assert.equal(w.advance(260), ['direct']);
  assert.is(e.scheduled, false);
  assert.is(w.reschedule('gone', 1), false);
});

test('remove cancels; removing twice is a no-op; re-adding works', () => {
  const w = new TimingWheel<string>({ tickMs: 1, slots: 4 });
  const e = w.add('x', 3);
  assert.ok(w.remove('x'));
  assert.not.ok(w.remove('x'));
  assert.not.ok(w.removeEntry(e));
  assert.equal(w.advance(10), []);
  w.add('x', 12);
  throwsCode(() => w.add('x', 13), ErrorCode.INVALID_VALUE);
  assert.equal(w.advance(12), ['x']);
  // An unscheduled entry can be scheduled again.
  e.deadline = 20;
  w.scheduleEntry(e);
  throwsCode(() => w.scheduleEntry(e), ErrorCode.INVALID_VALUE);
  assert.equal(w.advance(20), ['x']);
  w.rescheduleEntry(e, 25);
  assert.ok(e.scheduled);
  assert.equal(w.advance(25), ['x']);
});

test('far-future deadlines beyond one revolution wait in overflow and fire on time', () => {
  const w = new TimingWheel<number>({ tickMs: 1, slots: 8 });
  for (let i = 0; i < 50; i++) w.add(i, 5 + i * 7);
  assert.ok(w.overflowSize > 0);
  const fired = new Map<number, number>();
  for (let t = 1; t <= 400; t++) for (const k of w.advance(t)) fired.set(k, t);
  for (let i = 0; i < 50; i++) assert.is(fired.get(i), 5 + i * 7, `key ${i}`);
  assert.is(w.size, 0);
  assert.is(w.overflowSize, 0);
});

test('a jump of many revolutions reports everything due once', () => {
  const w = new TimingWheel<number>({ tickMs: 5, slots: 4 });
  for (let i = 0; i < 100; i++) w.add(i, i * 3);
  const first = w.advance(150);
  assert.equal(first.sort((a, b) => a - b), Array.from({ length: 51 }, (_, i) => i));
  const rest = w.advance(10_000);
  assert.is(rest.length, 49);
  assert.is(w.size, 0);
});

test('advanceEach lets the callback schedule new entries', () => {
  const w = new TimingWheel<string>({ tickMs: 1, slots: 8 });
  w.add('a', 1);
  const seen: string[] = [];
  const n = w.advanceEach(1, (k) => {
    seen.push(k);
    w.add(`${k}+`, 2);
  });
  assert.is(n, 1);
  assert.equal(w.advance(2), ['a+']);
  assert.equal(seen, ['a']);
});

test('without a key index the by-key methods refuse', () => {
  const w = new TimingWheel<string>({ indexByKey: false });
  throwsCode(() => w.add('a', 1), ErrorCode.INVALID_OPTION);
  const e = w.addEntry('a', 1_000);
  assert.is(w.size, 1);
  w.clear();
  assert.is(w.size, 0);
  assert.is(w.advance(5_000).length, 0);
  assert.ok(e.deadline === 1_000);
});

test('clear unschedules every entry, alone in a slot, sharing one, or in the overflow: each can be scheduled again', () => {
  const w = new TimingWheel<string>({ tickMs: 1, slots: 4, indexByKey: false });
  const alone = w.addEntry('alone', 1);
  const shared = [w.addEntry('s1', 2), w.addEntry('s2', 2)];
  const far = w.addEntry('far', 100);
  w.clear();
  for (const e of [alone, ...shared, far]) {
    assert.not.ok(e.scheduled);
    assert.not.ok(w.removeEntry(e), 'removing a cleared entry is a no-op');
  }
  assert.is(w.overflowSize, 0);
  w.scheduleEntry(shared[1]!);
  w.scheduleEntry(alone);
  assert.equal(w.advance(3).sort(), ['alone', 's2']);
  assert.is(w.size, 0);
});

test('property: exactly-once, never early, within one tick plus the step (random ops incl. far future)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.constantFrom(2, 4, 8, 16),
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('add' as const), delay: fc.integer({ min: 0, max: 2_000 }) }),
          fc.record({ op: fc.constant('move' as const), pick: fc.nat(), delay: fc.integer({ min: 0, max: 2_000 }) }),
          fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
          fc.record({ op: fc.constant('advance' as const), step: fc.integer({ min: 1, max: 40 }) }),
          fc.record({ op: fc.constant('jump' as const), step: fc.integer({ min: 1, max: 3_000 }) }),
        ),
        { maxLength: 200 },
      ),
      (tickMs, slots, ops) => {
        const w = new TimingWheel<number>({ tickMs, slots });
        const model = new Map<number, number>();
        let now = 0;
        let next = 0;
        const check = (to: number, step: number): void => {
          const due = w.advance(to);
          const seen = new Set<number>();
          for (const k of due) {
            assert.not.ok(seen.has(k), 'reported twice');
            seen.add(k);
            const d = model.get(k);
            assert.ok(d !== undefined, 'reported a key not scheduled');
            assert.ok(to >= d, `early: deadline ${d} reported at ${to}`);
            model.delete(k);
          }
          for (const [k, d] of model) {
            // Anything due a full tick plus the step ago must have been reported.
            assert.ok(d + tickMs + step > to, `late: key ${k} deadline ${d} still pending at ${to}`);
          }
          assert.is(w.size, model.size);
        };
        for (const o of ops) {
          const keys = [...model.keys()];
          if (o.op === 'add') {
            w.add(next, now + o.delay);
            model.set(next++, now + o.delay);
          } else if (o.op === 'move' && keys.length > 0) {
            const k = keys[o.pick % keys.length]!;
            w.reschedule(k, now + o.delay);
            model.set(k, now + o.delay);
          } else if (o.op === 'remove' && keys.length > 0) {
            const k = keys[o.pick % keys.length]!;
            assert.ok(w.remove(k));
            model.delete(k);
          } else if (o.op === 'advance' || o.op === 'jump') {
            now += o.step;
            check(now, o.op === 'advance' ? o.step : Number.POSITIVE_INFINITY);
          }
        }
        now += 10_000;
        check(now, Number.POSITIVE_INFINITY);
        assert.is(model.size, 0);
        assert.is(w.size, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('entries sharing a slot: removing the first, a middle and the last entry, or moving one earlier, leaves the others to fire once', () => {
  const w = new TimingWheel<number>({ tickMs: 1, slots: 8, indexByKey: false });
  // Ten entries in one slot (tick 5), and ten in the overflow (tick 5 + 3 revolutions).
  const near = Array.from({ length: 10 }, (_, i) => w.addEntry(i, 5));
  const far = Array.from({ length: 10 }, (_, i) => w.addEntry(100 + i, 5 + 24));
  assert.is(w.overflowSize, 10);
  for (const k of [0, 4, 9]) assert.ok(w.removeEntry(near[k]!));
  for (const k of [0, 5, 9]) assert.ok(w.removeEntry(far[k]!));
  assert.is(w.overflowSize, 7, 'the overflow count follows removals');
  w.rescheduleEntry(near[7]!, 2); // earlier: re-filed at once into another slot
  assert.is(w.size, 14);
  assert.equal(w.advance(2), [7]);
  assert.equal(
    w.advance(5).sort((a, b) => a - b),
    [1, 2, 3, 5, 6, 8],
  );
  assert.equal(w.advance(28), []);
  assert.equal(
    w.advance(29).sort((a, b) => a - b),
    [101, 102, 103, 104, 106, 107, 108],
  );
  assert.is(w.size, 0);
  assert.is(w.overflowSize, 0);
  // An array cannot be an entry (a slot holding several entries is an array).
  const arrayEntry = Object.assign([] as unknown[], { key: 1, deadline: 40, _tick: 0, _slot: -1, _pos: 0 });
  throwsCode(() => w.scheduleEntry(arrayEntry as unknown as WheelEntry<number>), ErrorCode.INVALID_VALUE);
  assert.is(w.size, 0);
  // A removed entry can be scheduled again, alone in its slot and then beside others.
  w.scheduleEntry(near[0]!);
  near[4]!.deadline = 31;
  w.scheduleEntry(near[4]!);
  assert.equal(w.advance(31).sort((a, b) => a - b), [0, 4]);
});

test('a tick visits only what is filed in the slots it passes (re-filing is bounded)', () => {
  // 20,000 far-apart entries: advancing one tick must not touch the others.
  const w = new TimingWheel<number>({ tickMs: 1, slots: 1024 });
  for (let i = 0; i < 20_000; i++) w.add(i, 10 + (i % 1000));
  let fired = 0;
  for (let t = 1; t <= 10; t++) fired += w.advance(t).length;
  assert.is(fired, 20, 'only the entries of tick 10 fired');
  assert.is(w.size, 19_980);
});

test.run();
