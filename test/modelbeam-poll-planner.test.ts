import { describe, expect, it } from 'vitest';
import { PollGate } from '../src/modelbeam/poll-gate.js';
import {
  DurationEstimator,
  firstPollDelay,
  nextPollDelay,
  predictRemaining,
  predictTotal,
  type PlannerConfig,
  type ProgressSample,
} from '../src/modelbeam/poll-planner.js';

const cfg: PlannerConfig = { minIntervalMs: 100, maxIntervalMs: 60_000, overdueFactor: 3 };

describe('predictRemaining', () => {
  it.each<[string, ProgressSample[], number, number | undefined]>([
    ['no samples', [], 1000, undefined],
    ['pending (0 %)', [{ at: 1000, progress: 0 }], 1000, undefined],
    ['done (100 %)', [{ at: 1000, progress: 100 }], 1000, undefined],
    ['one sample: average rate since submission', [{ at: 2000, progress: 50 }], 2000, 2000],
    ['one sample, read later', [{ at: 2000, progress: 50 }], 2500, 1500],
    ['two samples: their rate', [{ at: 1000, progress: 20 }, { at: 2000, progress: 60 }], 2000, 1000],
    ['two samples, first at 0 %: average since submission', [{ at: 500, progress: 0 }, { at: 2000, progress: 50 }], 2000, 2000],
    ['overdue: never negative', [{ at: 1000, progress: 20 }, { at: 2000, progress: 60 }], 9000, 0],
  ])('%s', (_name, samples, now, expected) => {
    expect(predictRemaining(samples, now, 0)).toBe(expected);
  });

  it('predictTotal adds the elapsed time', () => {
    expect(predictTotal([{ at: 2000, progress: 50 }], 2000, 0)).toBe(4000);
    expect(predictTotal([], 2000, 0)).toBeUndefined();
  });
});

describe('firstPollDelay and nextPollDelay', () => {
  it.each([
    ['at the expected finish', 4000, 'poll', 4000],
    ['a long estimate: capped at maxInterval (a job is never left unpolled longer)', 120_000, 'poll', 60_000],
    ['an absurd estimate: capped all the same', 1_435_417, 'poll', 60_000],
    ['never sooner than minInterval', 10, 'poll', 100],
    ['with webhooks: only when overdue', 4000, 'safety', 12_000],
    ['with webhooks: capped at overdueFactor × maxInterval', 1_435_417, 'safety', 180_000],
  ] as const)('first poll, %s', (_name, expected, mode, delay) => {
    expect(firstPollDelay(expected, mode, cfg)).toBe(delay);
  });

  it.each<[string, number, number, ProgressSample[], 'poll' | 'safety', number]>([
    ['pending, before the expected finish: wait for it', 1000, 3000, [{ at: 1000, progress: 0 }], 'poll', 2000],
    ['pending, past it: back off to 1.5 × elapsed', 4000, 3000, [{ at: 4000, progress: 0 }], 'poll', 2000],
    ['progress 50 % at 2 s: predicted finish + 15 %', 2000, 1000, [{ at: 2000, progress: 50 }], 'poll', 2300],
    ['two readings: their rate', 2000, 1000, [{ at: 1000, progress: 20 }, { at: 2000, progress: 60 }], 'poll', 1150],
    ['almost done: minInterval', 2000, 1000, [{ at: 1000, progress: 98 }, { at: 2000, progress: 99.9 }], 'poll', 100],
    ['long wait: capped at maxInterval', 100_000, 1000, [{ at: 100_000, progress: 1 }], 'poll', 60_000],
    ['safety net: overdueFactor slower', 2000, 1000, [{ at: 2000, progress: 50 }], 'safety', 6900],
  ])('follow-up, %s', (_name, now, expectedMs, samples, mode, delay) => {
    expect(nextPollDelay({ now, submittedAt: 0, expectedMs, samples, mode }, cfg)).toBeCloseTo(delay, 6);
  });
});

describe('DurationEstimator', () => {
  it('starts from the initial estimate, sends one scout, holds the rest back', () => {
    const est = new DurationEstimator({ initialMs: 3000 });
    expect(est.learned('txt2img', 'm')).toBe(false);
    expect(est.expected('txt2img', 'm')).toBe(3000);
    expect(est.choose('txt2img', 'm')).toEqual({ delayMs: 3000, probe: false, scout: true });
    expect(est.choose('txt2img', 'm')).toEqual({ delayMs: 6000, probe: false, scout: false });
    est.releaseScout('txt2img', 'm');
    expect(est.choose('txt2img', 'm').scout).toBe(true);
  });

  it('a miss with progress sets the estimate from the prediction, and evidence keeps it there', () => {
    const est = new DurationEstimator({ initialMs: 3000 });
    est.observe('txt2img', 'm', { kind: 'first-poll', done: false, elapsedMs: 3000, plannedMs: 3000, probe: false, predictedMs: 5000 });
    expect(est.learned('txt2img', 'm')).toBe(true);
    expect(est.expected('txt2img', 'm')).toBeCloseTo(5250, 0);
    // Hits shrink the tracked quantile, but not below the recent hard evidence (+5 %).
    for (let i = 0; i < 30; i++) est.observe('txt2img', 'm', { kind: 'first-poll', done: true, elapsedMs: 5250, plannedMs: 5250, probe: false });
    expect(est.expected('txt2img', 'm')).toBeCloseTo(5250, 0);
  });

  it('learns per endpoint + model, and falls back to the endpoint as a whole', () => {
    const est = new DurationEstimator({ initialMs: 3000 });
    est.observe('txt2img', 'fast', { kind: 'exact', durationMs: 1000 });
    expect(est.expected('txt2img', 'fast')).toBeCloseTo(1100, 0);
    expect(est.expected('txt2img', 'other')).toBeCloseTo(1100, 0); // endpoint-level knowledge
    expect(est.expected('txt2video', 'x')).toBe(3000);
    expect(Object.keys(est.snapshot()).sort()).toEqual(['txt2img', 'txt2img fast']);
  });

  it('ignores hits that came much later than planned (the queue delayed the poll)', () => {
    const est = new DurationEstimator({ initialMs: 3000 });
    est.observe('e', undefined, { kind: 'first-poll', done: true, elapsedMs: 90_000, plannedMs: 3000, probe: false });
    expect(est.learned('e')).toBe(false);
    est.observe('e', undefined, { kind: 'first-poll', done: true, elapsedMs: 3000, plannedMs: 3000, probe: false });
    expect(est.expected('e')).toBe(3000);
  });

  it('exact durations above the estimate raise it at once', () => {
    const est = new DurationEstimator({ initialMs: 3000 });
    est.observe('e', undefined, { kind: 'exact', durationMs: 1000 });
    est.observe('e', undefined, { kind: 'exact', durationMs: 4000 });
    expect(est.expected('e')).toBeGreaterThanOrEqual(4200);
  });

  it('probes early while the estimate sits well above any evidence, and comes down', () => {
    const est = new DurationEstimator({ initialMs: 10_000 });
    est.observe('e', undefined, { kind: 'first-poll', done: true, elapsedMs: 10_000, plannedMs: 10_000, probe: false });
    const choices = Array.from({ length: 8 }, () => est.choose('e'));
    expect(choices.filter((c) => c.probe)).toHaveLength(2);
    const probe = choices.find((c) => c.probe);
    expect(probe?.delayMs).toBe(5000);
    est.observe('e', undefined, { kind: 'first-poll', done: true, elapsedMs: 5000, plannedMs: 5000, probe: true });
    expect(est.expected('e')).toBe(7000);
  });

  it('misses of jobs planned on the same estimate do not compound (the resumed-batch explosion)', () => {
    // 20 first polls sent together at 1.8 s, all finding their job still pending: the old update multiplied
    // the target once per miss (×526 over 20 misses: 2.7 s became 1,435,417 ms).
    const est = new DurationEstimator({ initialMs: 833 });
    for (let i = 0; i < 20; i++) est.observe('txt2img', 'm', { kind: 'first-poll', done: false, elapsedMs: 1819, plannedMs: 833, probe: false });
    expect(est.expected('txt2img', 'm')).toBeGreaterThan(1819);
    expect(est.expected('txt2img', 'm')).toBeLessThanOrEqual(1819 * Math.exp(0.95) + 1);
    // With progress, the prediction (bounded at 4 × elapsed) is the ceiling too.
    const est2 = new DurationEstimator({ initialMs: 1000 });
    for (let i = 0; i < 50; i++) {
      est2.observe('e', undefined, { kind: 'first-poll', done: false, elapsedMs: 1000, plannedMs: 1000, probe: false, predictedMs: 2000 });
    }
    expect(est2.expected('e')).toBeLessThanOrEqual(2000 * 1.05 * Math.exp(0.95) + 1);
  });

  it('a later miss still raises the estimate from its own evidence', () => {
    const est = new DurationEstimator({ initialMs: 1000 });
    est.observe('e', undefined, { kind: 'exact', durationMs: 1000 });
    const before = est.expected('e');
    est.observe('e', undefined, { kind: 'first-poll', done: false, elapsedMs: 5000, plannedMs: 1100, probe: false });
    expect(est.expected('e')).toBeGreaterThan(5000);
    expect(before).toBeLessThan(2000);
  });

  it('honours maxMs: no estimate beyond it', () => {
    const est = new DurationEstimator({ initialMs: 1000, maxMs: 30_000 });
    est.observe('e', undefined, { kind: 'exact', durationMs: 500_000 });
    expect(est.expected('e')).toBe(30_000);
  });

  /** Polls per job for jobs run one after another, planned only by the pure functions. */
  function simulate(durations: number[], initialMs: number, pendingMs = 200): number {
    const est = new DurationEstimator({ initialMs });
    const config: PlannerConfig = { minIntervalMs: 20, maxIntervalMs: 60_000, overdueFactor: 3 };
    let polls = 0;
    for (const d of durations) {
      const progressAt = (t: number): number => (t <= pendingMs ? 0 : Math.min(99.9, ((t - pendingMs) / (d - pendingMs)) * 100));
      const choice = est.choose('e', 'm');
      const planned = firstPollDelay(choice.delayMs, 'poll', config);
      let t = planned;
      polls++;
      const samples: ProgressSample[] = [];
      if (d <= t) {
        est.observe('e', 'm', { kind: 'first-poll', done: true, elapsedMs: t, plannedMs: planned, probe: choice.probe });
        continue;
      }
      samples.push({ at: t, progress: progressAt(t) });
      const predictedMs = predictTotal(samples, t, 0);
      est.observe('e', 'm', { kind: 'first-poll', done: false, elapsedMs: t, plannedMs: planned, probe: choice.probe, ...(predictedMs ? { predictedMs } : {}) });
      for (;;) {
        t += nextPollDelay({ now: t, submittedAt: 0, expectedMs: est.expected('e', 'm'), samples, mode: 'poll' }, config);
        polls++;
        if (d <= t) break;
        samples.push({ at: t, progress: progressAt(t) });
      }
    }
    return polls / durations.length;
  }

  it.each([
    ['fixed 1 s, initial guess 5 s', 1000, 5000],
    ['fixed 1 s, initial guess 300 ms', 1000, 300],
    ['fixed 20 s, initial guess 5 s', 20_000, 5000],
  ])('fixed durations: about one poll per job (%s)', (_name, d, initial) => {
    const perJob = simulate(Array(300).fill(d), initial);
    expect(perJob).toBeLessThanOrEqual(1.06);
  });

  it('durations spread ±20 %: still close to one poll per job', () => {
    let seed = 7;
    const next = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const durations = Array.from({ length: 400 }, () => 1000 * (0.8 + 0.4 * next()));
    expect(simulate(durations, 3000)).toBeLessThanOrEqual(1.1);
  });
});

describe('PollGate', () => {
  it('caps polls at maxShare of the limit while submissions wait, and at the limit otherwise', () => {
    const gate = new PollGate({ windowMs: 1000, maxShare: 0.5, fallbackLimit: 60 });
    expect(gate.cap(100, true)).toBe(50);
    expect(gate.cap(100, false)).toBe(100);
    expect(gate.cap(undefined, true)).toBe(30);
    expect(gate.cap(1, true)).toBe(1);
  });

  it('counts sent polls over a rolling window, and released ones not yet sent', () => {
    const gate = new PollGate({ windowMs: 1000, maxShare: 0.5, fallbackLimit: 60 });
    for (let i = 0; i < 4; i++) gate.onSent(100 * i);
    gate.onRelease();
    expect(gate.allowance(350, 10, true)).toBe(0); // cap 5 = 4 sent + 1 outstanding
    expect(gate.allowance(350, 10, false)).toBe(5);
    expect(gate.nextSlotAt(350)).toBe(1000);
    gate.onLeave();
    expect(gate.allowance(1050, 10, true)).toBe(2); // t=0 has left the window
    expect(gate.inWindow(1050)).toBe(3);
    expect(gate.inWindow(5000)).toBe(0);
    expect(gate.nextSlotAt(5000)).toBeUndefined();
  });
});
