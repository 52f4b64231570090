import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NumberDeque } from '../src/testing/deque.js';
import { AccountLimiter } from '../src/testing/limiter.js';
import { ManualClock } from '../src/testing/manual-clock.js';
import { maxInAnyWindow, RateWindow, retryAfterSeconds, type WindowKind } from '../src/testing/windows.js';

type Step =
  | { at: number; hit: true }
  | { at: number; expect: { used?: number; remaining?: number; retryAfterMs?: number; resetAt?: number | undefined } }
  | { at: number; setLimit: number };

interface Case {
  name: string;
  kind: WindowKind;
  limit: number;
  windowMs: number;
  phaseMs?: number;
  steps: Step[];
}

const cases: Case[] = [
  {
    name: 'fixed, phase 250: windows are [250,1250), [1250,2250)',
    kind: 'fixed',
    limit: 3,
    windowMs: 1000,
    phaseMs: 250,
    steps: [
      { at: 240, hit: true }, // window [-750, 250)
      { at: 249, expect: { used: 1, remaining: 2, retryAfterMs: 0, resetAt: 250 } },
      { at: 300, expect: { used: 0, remaining: 3 } },
      { at: 300, hit: true },
      { at: 400, hit: true },
      { at: 500, hit: true },
      { at: 600, expect: { used: 3, remaining: 0, retryAfterMs: 650, resetAt: 1250 } },
      { at: 1249, expect: { remaining: 0, retryAfterMs: 1 } },
      { at: 1250, expect: { used: 0, remaining: 3, retryAfterMs: 0, resetAt: 2250 } },
    ],
  },
  {
    name: 'fixed, negative phase behaves like phase mod window',
    kind: 'fixed',
    limit: 1,
    windowMs: 1000,
    phaseMs: -750,
    steps: [
      { at: 300, hit: true },
      { at: 300, expect: { retryAfterMs: 950, resetAt: 1250 } },
    ],
  },
  {
    name: 'first-hit: the window opens at the first hit after the previous one expired',
    kind: 'first-hit',
    limit: 2,
    windowMs: 1000,
    steps: [
      { at: 50, expect: { used: 0, remaining: 2, retryAfterMs: 0, resetAt: undefined } },
      { at: 100, hit: true },
      { at: 900, hit: true },
      { at: 950, expect: { used: 2, remaining: 0, retryAfterMs: 150, resetAt: 1100 } },
      { at: 1099, expect: { retryAfterMs: 1 } },
      { at: 1100, expect: { used: 0, remaining: 2, retryAfterMs: 0 } },
      { at: 1500, hit: true },
      { at: 1600, hit: true },
      { at: 1700, expect: { retryAfterMs: 800, resetAt: 2500 } },
    ],
  },
  {
    name: 'sliding: a hit occupies a slot for windowMs',
    kind: 'sliding',
    limit: 3,
    windowMs: 1000,
    steps: [
      { at: 0, hit: true },
      { at: 100, hit: true },
      { at: 200, hit: true },
      { at: 500, expect: { used: 3, remaining: 0, retryAfterMs: 500, resetAt: 1000 } },
      { at: 999, expect: { retryAfterMs: 1 } },
      { at: 1000, expect: { used: 2, remaining: 1, retryAfterMs: 0, resetAt: 1100 } },
      { at: 1000, hit: true },
      { at: 1050, expect: { used: 3, retryAfterMs: 50 } },
    ],
  },
  {
    name: 'fixed: lowering the limit takes effect at once, raising it too',
    kind: 'fixed',
    limit: 5,
    windowMs: 1000,
    steps: [
      { at: 0, hit: true },
      { at: 1, hit: true },
      { at: 2, hit: true },
      { at: 3, setLimit: 2 },
      { at: 3, expect: { used: 3, remaining: 0, retryAfterMs: 997 } },
      { at: 4, setLimit: 10 },
      { at: 4, expect: { remaining: 7, retryAfterMs: 0 } },
    ],
  },
  {
    name: 'sliding: lowering the limit below the log waits for enough entries to expire',
    kind: 'sliding',
    limit: 5,
    windowMs: 1000,
    steps: [
      { at: 0, hit: true },
      { at: 100, hit: true },
      { at: 200, hit: true },
      { at: 300, hit: true },
      { at: 400, hit: true },
      { at: 500, setLimit: 2 },
      { at: 500, expect: { used: 5, remaining: 0, retryAfterMs: 800 } },
      { at: 1299, expect: { used: 2, retryAfterMs: 1 } },
      { at: 1300, expect: { used: 1, remaining: 1, retryAfterMs: 0 } },
    ],
  },
  {
    name: 'limit 0 refuses everything (fixed: until the window end)',
    kind: 'fixed',
    limit: 0,
    windowMs: 1000,
    steps: [{ at: 100, expect: { remaining: 0, retryAfterMs: 900 } }],
  },
  {
    name: 'limit 0 refuses everything (first-hit: a whole window)',
    kind: 'first-hit',
    limit: 0,
    windowMs: 1000,
    steps: [{ at: 100, expect: { remaining: 0, retryAfterMs: 1000 } }],
  },
  {
    name: 'limit 0 refuses everything (sliding: a whole window)',
    kind: 'sliding',
    limit: 0,
    windowMs: 1000,
    steps: [{ at: 100, expect: { remaining: 0, retryAfterMs: 1000 } }],
  },
];

describe('RateWindow', () => {
  it.each(cases)('$name', (c) => {
    const w = new RateWindow({ limit: c.limit, windowMs: c.windowMs, kind: c.kind, phaseMs: c.phaseMs ?? 0 });
    for (const step of c.steps) {
      if ('hit' in step) w.hit(step.at);
      else if ('setLimit' in step) w.setLimit(step.setLimit);
      else {
        const e = step.expect;
        const got: Record<string, unknown> = {};
        if ('used' in e) got['used'] = w.used(step.at);
        if ('remaining' in e) got['remaining'] = w.remaining(step.at);
        if ('retryAfterMs' in e) got['retryAfterMs'] = w.retryAfterMs(step.at);
        if ('resetAt' in e) got['resetAt'] = w.resetAt(step.at);
        expect({ at: step.at, ...got }).toEqual({ at: step.at, ...e });
      }
    }
  });

  it('grows the sliding log past its initial capacity', () => {
    const w = new RateWindow({ limit: 100_000, windowMs: 1000, kind: 'sliding', phaseMs: 0 });
    for (let i = 0; i < 50_000; i++) w.hit(i / 100); // 50 000 hits in 500 ms
    expect(w.used(500)).toBe(50_000);
    expect(w.used(1250)).toBe(25_000 - 1); // hits at t <= 250 expired
    expect(w.used(2000)).toBe(0);
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [0, 0],
    [-5, 0],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [59_999, 60],
    [86_400_000, 86_400],
  ])('%i ms -> %i s', (ms, s) => {
    expect(retryAfterSeconds(ms)).toBe(s);
  });
});

describe('maxInAnyWindow', () => {
  it.each<[string, number[], WindowKind, number, number, number]>([
    ['fixed, phase 0', [0, 10, 990, 1000, 1001, 1999], 'fixed', 1000, 0, 3],
    ['fixed, phase 10 splits differently', [0, 10, 990, 1000, 1001, 1999], 'fixed', 1000, 10, 4],
    ['sliding finds the densest interval', [0, 10, 990, 1000, 1001, 1999], 'sliding', 1000, 0, 4],
    ['sliding is half-open [t, t+W)', [0, 1000], 'sliding', 1000, 0, 1],
    ['first-hit replays windows from the first hit', [0, 10, 990, 1000, 1001, 1999], 'first-hit', 1000, 0, 3],
    ['first-hit opens late windows', [500, 1400, 1600, 2300], 'first-hit', 1000, 0, 2],
    ['empty log', [], 'sliding', 1000, 0, 0],
    ['unsorted input is sorted first', [1999, 0, 1001, 10, 1000, 990], 'sliding', 1000, 0, 4],
  ])('%s', (_name, ts, kind, windowMs, phaseMs, expected) => {
    expect(maxInAnyWindow(ts, { kind, windowMs, phaseMs })).toBe(expected);
  });

  it('admitting only when retryAfterMs is 0 never exceeds the limit (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<WindowKind>('fixed', 'sliding', 'first-hit'),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 10, max: 500 }),
        fc.integer({ min: -1000, max: 1000 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 200 }),
        (kind, limit, windowMs, phaseMs, gaps) => {
          const w = new RateWindow({ limit, windowMs, kind, phaseMs });
          const admitted: number[] = [];
          let t = 0;
          // When refused, the announced wait is exact: refused before it ends, admitted from then on.
          let freeAt: number | undefined;
          for (const gap of gaps) {
            t += gap;
            const wait = w.retryAfterMs(t);
            if (freeAt !== undefined) expect(wait === 0).toBe(t >= freeAt);
            if (wait === 0) {
              w.hit(t);
              admitted.push(t);
              freeAt = undefined;
            } else {
              if (freeAt !== undefined) expect(t + wait).toBe(freeAt);
              freeAt = t + wait;
            }
          }
          expect(maxInAnyWindow(admitted, { kind, windowMs, phaseMs })).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('AccountLimiter', () => {
  const minute = { limit: 2, windowMs: 60_000, kind: 'fixed' as const, phaseMs: 0 };
  const daily = { limit: 3, windowMs: 86_400_000, kind: 'fixed' as const, phaseMs: 0 };

  it('refuses on minute, then daily; daily wins when both are exhausted', () => {
    const l = new AccountLimiter({ minute, daily });
    l.count(0);
    l.count(1);
    expect(l.check(2)).toEqual({ allowed: false, type: 'minute', retryAfterMs: 59_998 });
    expect(l.check(60_000)).toEqual({ allowed: true });
    l.count(60_000);
    l.count(60_001); // counted though the caller did not check: the daily is now over its limit
    expect(l.check(120_000)).toEqual({ allowed: false, type: 'daily', retryAfterMs: 86_400_000 - 120_000 });
    expect(l.check(60_002)).toMatchObject({ allowed: false, type: 'daily' });
    expect(l.read(60_002)).toEqual({ minute: { limit: 2, remaining: 0 }, daily: { limit: 3, remaining: 0 } });
    expect(l.accepted).toEqual([0, 1, 60_000, 60_001]);
  });

  it('check() does not count; setLimits adds and removes windows', () => {
    const l = new AccountLimiter({ minute, daily: false });
    for (let i = 0; i < 10; i++) l.check(i);
    expect(l.read(10).minute).toEqual({ limit: 2, remaining: 2 });
    expect(l.read(10).daily).toBeUndefined();
    l.setLimits({ daily: 1, minute: false });
    expect(l.minute).toBeUndefined();
    l.count(10);
    expect(l.check(11)).toMatchObject({ allowed: false, type: 'daily' });
  });
});

describe('NumberDeque', () => {
  it('keeps FIFO order across wrap-around and growth', () => {
    const d = new NumberDeque(2);
    const model: number[] = [];
    for (let i = 0; i < 1000; i++) {
      d.push(i);
      model.push(i);
      if (i % 3 === 0) expect(d.shift()).toBe(model.shift());
    }
    expect(d.size).toBe(model.length);
    for (let i = 0; i < model.length; i++) expect(d.at(i)).toBe(model[i]);
    expect(d.at(-1)).toBeUndefined();
    expect(d.at(model.length)).toBeUndefined();
  });
});

describe('ManualClock', () => {
  it('fires timers in due order, each seeing its due time, and honours clearTimeout', () => {
    const clock = new ManualClock(1000);
    const seen: [string, number][] = [];
    clock.setTimeout(() => seen.push(['b', clock.now()]), 200);
    clock.setTimeout(() => {
      seen.push(['a', clock.now()]);
      clock.setTimeout(() => seen.push(['c', clock.now()]), 50);
    }, 100);
    const cancelled = clock.setTimeout(() => seen.push(['x', clock.now()]), 150);
    clock.clearTimeout(cancelled);
    clock.advance(180);
    expect(seen).toEqual([
      ['a', 1100],
      ['c', 1150],
    ]);
    expect(clock.now()).toBe(1180);
    clock.runAll();
    expect(seen.at(-1)).toEqual(['b', 1200]);
    expect(clock.pendingTimers).toBe(0);
  });
});
