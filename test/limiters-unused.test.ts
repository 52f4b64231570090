/**
 * Unused capacity (bench/lib/unused.ts), the figure every rate scenario can
 * report: units the server would have accepted between the first and the last
 * request that went unused, on the server's own windows.
 */
import { describe, expect, it } from 'vitest';
import { idealSchedule } from '../bench/lib/ideal.js';
import { unusedCapacity, unusedPer1000, type UnusedInput } from '../bench/lib/unused.js';

describe('unusedCapacity', () => {
  it.each<[string, UnusedInput, number]>([
    ['fixed: a full window, then one with 1 of 3; the last window is not counted', {
      kind: 'fixed', windowMs: 1000, phaseMs: 0, limit: 3, counted: [0, 1, 2, 1500, 2100],
    }, 2],
    ['fixed: the phase places the windows ([-600, 400) full, [400, 1400) empty, the last holds 1500 and 2100)', {
      kind: 'fixed', windowMs: 1000, phaseMs: 400, limit: 3, counted: [0, 1, 2, 1500, 2100],
    }, 3],
    ['fixed: an empty window in the middle counts whole', {
      kind: 'fixed', windowMs: 1000, phaseMs: 0, limit: 3, counted: [0, 1, 2, 2000, 2001, 2002, 3000],
    }, 3],
    ['fixed: more hits than the limit (refused ones counted) never go below 0', {
      kind: 'fixed', windowMs: 1000, phaseMs: 0, limit: 3, counted: [0, 1, 2, 3, 4, 1000],
    }, 0],
    ['first-hit: a late next hit leaves a gap at limit/W units per ms', {
      kind: 'first-hit', windowMs: 1000, limit: 3, counted: [0, 10, 20, 1500, 1600, 3000],
    }, 0 + 1.5 + 1 + 1.5],
    ['first-hit: back-to-back full windows', {
      kind: 'first-hit', windowMs: 1000, limit: 2, counted: [0, 0, 1000, 1000, 2000],
    }, 0],
    ['sliding: every slot reused at once', {
      kind: 'sliding', windowMs: 1000, limit: 2, counted: [0, 0, 1000, 1000, 2000],
    }, 0],
    ['sliding: one slot idle for half a window', {
      kind: 'sliding', windowMs: 1000, limit: 2, counted: [0, 0, 1500, 2000],
    }, 1.5],
    ['any order', { kind: 'fixed', windowMs: 1000, phaseMs: 0, limit: 3, counted: [2100, 1500, 2, 1, 0] }, 2],
    ['one request: nothing between first and last', { kind: 'fixed', windowMs: 1000, limit: 3, counted: [5] }, 0],
    ['no requests', { kind: 'sliding', windowMs: 1000, limit: 3, counted: [] }, 0],
  ])('%s', (_why, input, expected) => {
    expect(unusedCapacity(input)).toBeCloseTo(expected, 9);
  });

  it.each<['fixed' | 'first-hit' | 'sliding', number]>([
    ['fixed', 370],
    ['first-hit', 0],
    ['sliding', 0],
  ])('the ideal schedule leaves nothing unused (%s)', (kind, phaseMs) => {
    const window = { kind, windowMs: 1000, phaseMs, limit: 7 };
    const { times } = idealSchedule({ start: 0, requests: 100, minute: window });
    expect(unusedCapacity({ ...window, counted: times })).toBeCloseTo(0, 9);
    // One request held back by a window's length costs the units of that wait.
    const late = [...times.slice(0, 50), ...times.slice(50).map((t) => t + 1000)];
    expect(unusedCapacity({ ...window, counted: late })).toBeGreaterThan(0);
  });

  it('rejects a window that is not positive, naming it', () => {
    expect(() => unusedCapacity({ kind: 'fixed', windowMs: 0, limit: 1, counted: [0, 1] })).toThrow(/windowMs/);
  });

  it('per 1,000 requests', () => {
    expect(unusedPer1000(3, 600)).toBe(5);
    expect(unusedPer1000(3, 0)).toBe(0);
  });
});
