/**
 * Unused capacity (issue 11, item 8): the units the server would have
 * accepted between the first and the last request that went unused, counted
 * on the server's own windows. Unlike makespan / ideal it does not depend on
 * how full the last window happens to be, so every rate scenario can report it.
 *
 * Input: the times of every request the server's limiter COUNTED (accepted,
 * and refused ones too for limiters that count those), on the server's clock,
 * and the window's rules (the same kinds as the fake server and ideal.ts):
 *
 * - `fixed`: every server window `[phaseMs + k·W, phaseMs + (k+1)·W)` from the
 *   one holding the first request up to, not including, the one holding the
 *   last request adds `limit − used` (the last window is where the work ran
 *   out: its rest is not lost).
 * - `first-hit`: the same per window, windows replayed from the hits (a window
 *   opens at the first hit after the previous one ended); plus the time
 *   between one window's end and the next window's first hit, at
 *   `limit / W` units per ms (a first-hit window that opens late shifts every
 *   later one).
 * - `sliding`: each unit is a slot busy for W after a hit; the unused units
 *   are the idle slot-time between the first and the last hit, divided by W.
 *
 * The limit is taken as constant over the run.
 */
import type { WindowKind } from '../../src/testing/index.js';

export interface UnusedInput {
  kind: WindowKind;
  windowMs: number;
  /** Fixed windows start at `phaseMs + k·windowMs`. Ignored for the other kinds. */
  phaseMs?: number;
  limit: number;
  /** Times the limiter counted a request (epoch ms, any order). */
  counted: readonly number[];
}

/** Unused units between the first and the last counted request (0 with fewer than two). */
export function unusedCapacity(input: UnusedInput): number {
  const { windowMs: W, limit } = input;
  if (!(W > 0)) throw new RangeError(`windowMs must be > 0, got ${W}`);
  const hits = [...input.counted].sort((a, b) => a - b);
  if (hits.length < 2) return 0;
  switch (input.kind) {
    case 'fixed':
      return unusedFixed(hits, W, input.phaseMs ?? 0, limit);
    case 'first-hit':
      return unusedFirstHit(hits, W, limit);
    case 'sliding':
      return unusedSliding(hits, W, limit);
  }
}

function unusedFixed(hits: readonly number[], W: number, phase: number, limit: number): number {
  const index = (t: number): number => Math.floor((t - phase) / W);
  const first = index(hits[0] as number);
  const last = index(hits[hits.length - 1] as number);
  const used = new Map<number, number>();
  for (const t of hits) used.set(index(t), (used.get(index(t)) ?? 0) + 1);
  let unused = 0;
  for (let k = first; k < last; k++) unused += Math.max(0, limit - (used.get(k) ?? 0));
  return unused;
}

function unusedFirstHit(hits: readonly number[], W: number, limit: number): number {
  let unused = 0;
  let open = hits[0] as number;
  let count = 0;
  for (const t of hits) {
    if (t < open + W) {
      count++;
      continue;
    }
    // The window [open, open + W) ended before this hit opened the next one.
    unused += Math.max(0, limit - count) + ((t - (open + W)) * limit) / W;
    open = t;
    count = 1;
  }
  // The window holding the last hit is where the work ran out: not counted.
  return unused;
}

function unusedSliding(hits: readonly number[], W: number, limit: number): number {
  const first = hits[0] as number;
  const last = hits[hits.length - 1] as number;
  let busy = 0;
  for (const t of hits) busy += Math.max(0, Math.min(t + W, last) - t);
  return Math.max(0, (limit * (last - first) - busy) / W);
}

/** Unused units per 1,000 requests. */
export function unusedPer1000(unused: number, requests: number): number {
  return requests > 0 ? (1000 * unused) / requests : 0;
}
