/** The job-level bench's ideal (bench/lib/job-ideal.ts): submissions first, one poll per job when it has finished. */
import { describe, expect, it } from 'vitest';
import { idealJobs } from '../bench/lib/job-ideal.js';

const fixed = (limit: number, windowMs = 100, phaseMs = 0) => ({ kind: 'fixed' as const, windowMs, phaseMs, limit });

describe('idealJobs', () => {
  it.each([
    // [what, durations, minute limit, expected submission times, expected poll times]
    ['both fit the first window', [10, 10], 4, [0, 0], [10, 10]],
    ['submissions fill the first window, polls wait for the next', [10, 10], 2, [0, 0], [100, 100]],
    ['a submission goes before a ready poll', [10, 10, 10], 3, [0, 0, 0], [100, 100, 100]],
    ['a long job is polled when it has finished', [10, 150], 4, [0, 0], [10, 150]],
  ] as const)('%s', (_what, durations, limit, submitted, polled) => {
    const r = idealJobs({ start: 0, durations: [...durations], minute: fixed(limit) });
    expect(r.submitted).toEqual(submitted);
    expect(r.polled).toEqual(polled);
    expect(r.makespanMs).toBe(Math.max(...polled));
  });

  it('sliding window: a slot comes back a window after its own request', () => {
    const r = idealJobs({ start: 0, durations: [10, 10], minute: { kind: 'sliding', windowMs: 100, phaseMs: 0, limit: 2 } });
    expect(r.polled).toEqual([100, 100]);
  });

  it('a daily quota that counts polls keeps room for the polls of the jobs in flight', () => {
    // 4 daily units: two jobs (a submission and a poll each) fit the day; the third waits for the next day.
    const r = idealJobs({ start: 0, durations: [10, 10, 10], minute: fixed(100), daily: fixed(4, 1000), pollsDaily: true });
    expect(r.submitted).toEqual([0, 0, 1000]);
    expect(r.polled).toEqual([10, 10, 1010]);
  });

  it('a daily quota that counts submissions only spends the day on submissions', () => {
    const r = idealJobs({ start: 0, durations: [10, 10, 10], minute: fixed(100), daily: fixed(2, 1000) });
    expect(r.submitted).toEqual([0, 0, 1000]);
    expect(r.polled).toEqual([10, 10, 1010]);
  });
});
