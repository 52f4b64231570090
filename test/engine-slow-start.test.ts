import { describe, expect, it } from 'vitest';
import { DOUBLING, GENTLE, SHARE, SlowStart } from '../src/engine/slow-start.js';

/** The cap after `n` accepted answers, each `rttMs` after its request, in a `windowMs` window. */
function after(n: number, rttMs: number, windowMs: number): number {
  const s = new SlowStart(windowMs);
  for (let i = 0; i < n; i++) s.accepted(rttMs);
  return s.limit;
}

describe('slow start (nothing known): the most requests in flight', () => {
  it('one before any answer', () => {
    expect(new SlowStart(1000).limit).toBe(1);
  });

  it.each([
    // [what, answers, rttMs, windowMs, expected]
    ['long round trips: one more per answer (doubling per round trip)', 3, 100, 1000, 4],
    ['long round trips: doubling up to 16', 15, 100, 1000, DOUBLING],
    ['long round trips: then a quarter more per answer', 15 + 8, 100, 1000, DOUBLING + 8 * GENTLE],
    // 2 x 30 accepted x 1 ms / (1000 ms / 20) = 1.2: 2 in flight send 60 in 30 ms, a thirtieth of the window.
    ['1 ms round trips, 1 s window, 30 accepted: 2 in flight', 30, 1, 1000, 2],
    ['1 ms round trips, 1 s window, 5 accepted: 1 in flight', 5, 1, 1000, 1],
    ['1 ms round trips, 1 s window, 100 accepted: 4 in flight', 100, 1, 1000, 4],
    ['window units: 60 ms round trips in a 60 s window are the same', 30, 60, 60_000, 2],
    ['10 ms round trips, 1 s window, 10 accepted: 4 in flight (below the 11 by answers)', 10, 10, 1000, 4],
  ] as const)('%s', (_what, n, rttMs, windowMs, expected) => {
    expect(after(n, rttMs, windowMs)).toBe(expected);
  });

  it('the time cap is twice the accepted count sent within a share of the window at the measured round trip', () => {
    // 200 accepted, 2 ms: 2 x 200 x 2 / (SHARE x 1000) = 16 (with SHARE = 1/20), below the answers' cap.
    expect(after(200, 2, 1000)).toBe(Math.ceil((2 * 200 * 2) / (SHARE * 1000)));
  });

  it('the round trip is the shortest seen: round trips grown by queueing at the server do not raise the cap', () => {
    const s = new SlowStart(1000);
    s.accepted(1);
    // One answer at 1 ms: 2 x 1 x 1 / 50, rounded up: 1.
    expect(s.limit).toBe(1);
    for (let i = 0; i < 9; i++) s.accepted(20);
    // 10 accepted, the shortest at 1 ms: still 1 ...
    expect(s.limit).toBe(1);
    // ... where 10 at 20 ms allow 2 x 10 x 20 / 50 = 8 (below the 11 by answers).
    const slow = new SlowStart(1000);
    for (let i = 0; i < 10; i++) slow.accepted(20);
    expect(slow.limit).toBe(8);
  });
});
