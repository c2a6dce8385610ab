import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ManualClock, systemClock } from '../../../lib/core/clock.js';
import { TimerQueue } from '../../../lib/reactor/timer-queue.js';
import type { TimerDriver } from '../../../lib/reactor/timer-queue.js';

/** A driver that records the Node timer the queue would arm, without arming it. */
function manualDriver(): TimerDriver & { armed: Map<number, { cb: () => void; ms: number }>; sets: number } {
  const armed = new Map<number, { cb: () => void; ms: number }>();
  let next = 1;
  const d = {
    armed,
    sets: 0,
    set(cb: () => void, ms: number): unknown {
      d.sets++;
      const h = next++;
      armed.set(h, { cb, ms });
      return h;
    },
    clear(h: unknown): void {
      armed.delete(h as number);
    },
  };
  return d;
}

test('entries fire in deadline order, equal deadlines first in, first out', () => {
  const clock = new ManualClock();
  const q = new TimerQueue(clock, manualDriver());
  const log: string[] = [];
  q.schedule(30, (s: string) => log.push(s), 'c');
  q.schedule(10, (s: string) => log.push(s), 'a1');
  q.schedule(10, (s: string) => log.push(s), 'a2');
  q.schedule(20, (s: string) => log.push(s), 'b');
  clock.advance(9);
  assert.is(q.expire(), 0);
  clock.advance(21);
  assert.is(q.expire(), 4);
  assert.equal(log, ['a1', 'a2', 'b', 'c']);
  assert.is(q.size, 0);
});

test('ONE Node timer is armed, for the earliest deadline, and released when the queue empties', () => {
  const clock = new ManualClock();
  const d = manualDriver();
  const q = new TimerQueue(clock, d);
  const e1 = q.schedule(1000, () => undefined);
  q.schedule(2000, () => undefined);
  const e3 = q.schedule(500, () => undefined);
  assert.is(d.armed.size, 1);
  assert.is([...d.armed.values()][0]!.ms, 500);
  q.remove(e3);
  q.remove(e1);
  assert.is(d.armed.size, 1, 'still armed for the remaining entry');
  for (let i = 0; i < 1000; i++) q.schedule(5000 + i, () => undefined);
  assert.is(d.armed.size, 1, 'a thousand deadlines, still one Node timer');
  q.clear();
  assert.is(d.armed.size, 0);
  assert.is(q.nextDeadline, Infinity);
});

test('the Node timer firing early finds nothing due and re-arms', () => {
  const clock = new ManualClock();
  const d = manualDriver();
  const q = new TimerQueue(clock, d);
  let fired = 0;
  q.schedule(100, () => fired++);
  const [h, t] = [...d.armed.entries()][0]!;
  d.armed.delete(h);
  clock.advance(40);
  t.cb();
  assert.is(fired, 0);
  assert.is(d.armed.size, 1);
  assert.is([...d.armed.values()][0]!.ms, 60);
  clock.advance(60);
  [...d.armed.values()][0]!.cb();
  assert.is(fired, 1);
});

test('a wall-clock jump changes nothing: deadlines are monotonic', () => {
  const clock = new ManualClock();
  const q = new TimerQueue(clock, manualDriver());
  let fired = 0;
  q.schedule(clock.now() + 1000, () => fired++);
  clock.jumpWall(24 * 3600 * 1000);
  assert.is(q.expire(), 0);
  clock.jumpWall(-48 * 3600 * 1000);
  assert.is(q.expire(), 0);
  clock.advance(999);
  assert.is(q.expire(), 0);
  clock.advance(1);
  assert.is(q.expire(), 1);
  assert.is(fired, 1);
});

test('a callback can cancel another entry due in the same pass (muduo #668)', () => {
  const clock = new ManualClock();
  const q = new TimerQueue(clock, manualDriver());
  const log: string[] = [];
  const victims = [q.schedule(10, () => log.push('victim1')), q.schedule(10, () => log.push('victim2'))];
  // Scheduled after the victims, same deadline: runs after them unless it cancels them first.
  const killer = q.schedule(5, () => {
    log.push('killer');
    for (const v of victims) assert.ok(q.remove(v));
  });
  q.schedule(10, () => log.push('other'));
  clock.advance(10);
  q.expire();
  assert.equal(log, ['killer', 'other']);
  assert.not.ok(q.remove(killer), 'already ran');
  assert.not.ok(q.remove(victims[0]!), 'cancelling twice is a no-op');
});

test('a repeating entry can cancel itself, and skips periods it missed', () => {
  const clock = new ManualClock();
  const q = new TimerQueue(clock, manualDriver());
  let n = 0;
  const e = q.schedule(100, () => {
    n++;
    if (n === 3) q.remove(e);
  }, undefined, 100);
  clock.advance(100);
  q.expire();
  clock.advance(350); // at 450: the 200, 300 and 400 periods are due; it runs once
  q.expire();
  assert.is(n, 2);
  assert.is(e.deadline, 550);
  clock.advance(100);
  q.expire();
  assert.is(n, 3);
  assert.is(q.size, 0);
});

test('an entry scheduled by a callback for now runs in the next pass, not this one', () => {
  const clock = new ManualClock();
  const q = new TimerQueue(clock, manualDriver());
  let runs = 0;
  const again = (): void => {
    runs++;
    q.schedule(clock.now(), again);
  };
  q.schedule(0, again);
  assert.is(q.expire(), 1);
  assert.is(q.expire(), 1);
  assert.is(runs, 2);
  q.clear();
});

test('reschedule moves an entry earlier or later', () => {
  const clock = new ManualClock();
  const q = new TimerQueue(clock, manualDriver());
  const log: string[] = [];
  const a = q.schedule(100, () => log.push('a'));
  q.schedule(200, () => log.push('b'));
  q.reschedule(a, 300);
  clock.advance(250);
  q.expire();
  assert.equal(log, ['b']);
  q.reschedule(a, 260);
  clock.advance(10);
  q.expire();
  assert.equal(log, ['b', 'a']);
  q.reschedule(a, 270); // not queued any more: queued again
  assert.is(q.size, 1);
});

test('a throwing callback leaves the rest queued and armed', () => {
  const clock = new ManualClock();
  const d = manualDriver();
  const q = new TimerQueue(clock, d);
  let ran = false;
  q.schedule(1, () => {
    throw new Error('boom');
  });
  q.schedule(2, () => {
    ran = true;
  });
  clock.advance(5);
  assert.throws(() => q.expire(), /boom/);
  assert.is(q.size, 1);
  assert.is(d.armed.size, 1);
  q.expire();
  assert.ok(ran);
});

test('with the real clock and Node timers, a deadline fires no earlier than asked', async () => {
  const q = new TimerQueue(systemClock);
  const start = performance.now();
  const at = await new Promise<number>((resolve) => {
    q.schedule(start + 20, () => resolve(performance.now()));
  });
  assert.ok(at - start >= 20, `fired after ${at - start} ms`);
  assert.is(q.size, 0);
});

test('property: the queue fires what a sorted model fires, in the same order', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ add: fc.integer({ min: 0, max: 100 }) }),
          fc.record({ cancel: fc.nat() }),
          fc.record({ advance: fc.integer({ min: 0, max: 60 }) }),
        ),
        { maxLength: 80 },
      ),
      (ops) => {
        const clock = new ManualClock();
        const q = new TimerQueue(clock, manualDriver());
        const model: Array<{ deadline: number; seq: number }> = [];
        const entries: Array<ReturnType<TimerQueue['schedule']>> = [];
        const fired: number[] = [];
        let seq = 0;
        for (const op of ops) {
          if ('add' in op) {
            const id = seq++;
            entries.push(q.schedule(clock.now() + op.add, (x: number) => fired.push(x), id));
            model.push({ deadline: clock.now() + op.add, seq: id });
          } else if ('cancel' in op) {
            if (entries.length === 0) continue;
            const i = op.cancel % entries.length;
            const removed = q.remove(entries[i]!);
            const mi = model.findIndex((m) => m.seq === (entries[i]!.arg as number));
            assert.is(removed, mi !== -1);
            if (mi !== -1) model.splice(mi, 1);
          } else {
            clock.advance(op.advance);
            const before = fired.length;
            q.expire();
            const due = model.filter((m) => m.deadline <= clock.now()).sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
            assert.equal(fired.slice(before), due.map((m) => m.seq));
            for (const d of due) model.splice(model.indexOf(d), 1);
          }
          assert.is(q.size, model.length);
        }
        q.clear();
      },
    ),
  );
});

test.run();
