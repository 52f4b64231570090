/**
 * The ideal schedule: when each of `requests` requests would be accepted if
 * every one were sent at the earliest moment the server's own limiter
 * accepts it, all of them ready at `start`.
 *
 * It follows the fake server's window rules exactly (src/testing/windows.ts):
 * - `fixed`: windows `[phase + k·W, phase + (k+1)·W)`; a request at `t` is
 *   accepted while the count of the window holding `t` is below the limit;
 * - `sliding`: a request accepted at `e` occupies a slot while `t < e + W`;
 * - `first-hit`: a window opens at the first hit after the previous one ended.
 * The minute and the daily window must both accept (the server counts a
 * request in both). A limit change applies from its time on, and the hits
 * already counted stay counted (remaining = max(0, limit − used)), as with
 * `server.setLimits`.
 *
 * Greedy earliest acceptance is optimal for these rules: accepting a request
 * earlier never reduces what can be accepted later in the same or a later
 * window, so the k-th greedy acceptance is the earliest possible k-th one.
 */
import type { ResolvedWindowOptions, WindowKind } from '../../src/testing/index.js';
import { RateWindow } from '../../src/testing/index.js';

export interface IdealWindow {
  kind: WindowKind;
  windowMs: number;
  /** Fixed windows start at `phaseMs + k·windowMs` (server clock, epoch ms). */
  phaseMs: number;
  limit: number;
}

export interface IdealLimitChange {
  /** Server-clock time the change took effect. */
  at: number;
  minute?: number;
  daily?: number;
}

export interface IdealInput {
  /** When the work becomes available (server clock). */
  start: number;
  requests: number;
  minute?: IdealWindow | undefined;
  daily?: IdealWindow | undefined;
  changes?: readonly IdealLimitChange[];
}

export interface IdealResult {
  /** Acceptance time of each request, non-decreasing. */
  times: number[];
  /** Acceptance time of the last request. */
  end: number;
  /** `end - start`. */
  makespanMs: number;
}

/** The used count of one window, over non-decreasing time (also the job-level ideal's, `job-ideal.ts`). */
export class WindowSim {
  readonly #w: IdealWindow;
  #fixedIndex = Number.NaN;
  #start = Number.NaN;
  #count = 0;
  readonly #log: number[] = [];
  #head = 0;

  constructor(window: IdealWindow) {
    if (!(window.windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${window.windowMs}`);
    // Whole milliseconds: stepping from boundary to boundary in fractions of a ms can stall in floating point.
    this.#w = { ...window, phaseMs: Math.round(window.phaseMs) };
  }

  used(t: number): number {
    const w = this.#w;
    switch (w.kind) {
      case 'fixed':
        return Math.floor((t - w.phaseMs) / w.windowMs) === this.#fixedIndex ? this.#count : 0;
      case 'first-hit':
        return t >= this.#start && t < this.#start + w.windowMs ? this.#count : 0;
      case 'sliding':
        while (this.#head < this.#log.length && (this.#log[this.#head] as number) <= t - w.windowMs) this.#head++;
        return this.#log.length - this.#head;
    }
  }

  /** The first time after `t` at which the used count drops (Infinity when nothing is used). */
  nextRelease(t: number): number {
    const w = this.#w;
    if (this.used(t) === 0) return Infinity;
    switch (w.kind) {
      case 'fixed':
        return w.phaseMs + (Math.floor((t - w.phaseMs) / w.windowMs) + 1) * w.windowMs;
      case 'first-hit':
        return this.#start + w.windowMs;
      case 'sliding':
        return (this.#log[this.#head] as number) + w.windowMs;
    }
  }

  hit(t: number): void {
    const w = this.#w;
    switch (w.kind) {
      case 'fixed': {
        const index = Math.floor((t - w.phaseMs) / w.windowMs);
        if (index !== this.#fixedIndex) {
          this.#fixedIndex = index;
          this.#count = 0;
        }
        this.#count++;
        return;
      }
      case 'first-hit':
        if (!(t >= this.#start && t < this.#start + w.windowMs)) {
          this.#start = t;
          this.#count = 0;
        }
        this.#count++;
        return;
      case 'sliding':
        this.#log.push(t);
        return;
    }
  }
}

/** Computes the ideal acceptance times. Throws if the limits can never accept all requests. */
export function idealSchedule(input: IdealInput): IdealResult {
  const { start, requests } = input;
  if (!Number.isInteger(requests) || requests < 0) throw new RangeError(`requests must be a non-negative integer, got ${requests}`);
  const minute = input.minute ? new WindowSim(input.minute) : undefined;
  const daily = input.daily ? new WindowSim(input.daily) : undefined;
  let minuteLimit = input.minute?.limit ?? Infinity;
  let dailyLimit = input.daily?.limit ?? Infinity;
  const changes = [...(input.changes ?? [])].sort((a, b) => a.at - b.at);
  let next = 0;
  const times: number[] = [];
  let t = start;
  let guard = 0;
  const maxSteps = 10 * requests + 10 * changes.length + 1_000_000;

  while (times.length < requests) {
    while (next < changes.length && (changes[next] as IdealLimitChange).at <= t) {
      const c = changes[next++] as IdealLimitChange;
      if (c.minute !== undefined) minuteLimit = c.minute;
      if (c.daily !== undefined) dailyLimit = c.daily;
    }
    const minuteBlocked = minute !== undefined && minute.used(t) >= minuteLimit;
    const dailyBlocked = daily !== undefined && daily.used(t) >= dailyLimit;
    if (!minuteBlocked && !dailyBlocked) {
      minute?.hit(t);
      daily?.hit(t);
      times.push(t);
      continue;
    }
    let at = Infinity;
    if (minuteBlocked) at = Math.min(at, minute.nextRelease(t));
    if (dailyBlocked) at = Math.min(at, daily.nextRelease(t));
    if (next < changes.length) at = Math.min(at, (changes[next] as IdealLimitChange).at);
    if (!Number.isFinite(at)) throw new Error(`The limits never accept request ${times.length + 1} of ${requests} (stuck at t=${t})`);
    if (++guard > maxSteps) throw new Error('idealSchedule did not converge');
    t = at;
  }
  const end = times.length > 0 ? (times[times.length - 1] as number) : start;
  return { times, end, makespanMs: end - start };
}

/**
 * Replays an ideal schedule through the fake server's own `RateWindow` and
 * checks that (a) every request is accepted at its ideal time and (b) none
 * could have been accepted 1 ms earlier (for integer times). Returns a list
 * of problems (empty when the ideal is exact).
 */
export function verifyIdeal(input: IdealInput, result: IdealResult): string[] {
  const problems: string[] = [];
  const make = (w: IdealWindow | undefined): RateWindow | undefined =>
    w ? new RateWindow({ kind: w.kind, windowMs: w.windowMs, phaseMs: w.phaseMs, limit: w.limit } satisfies ResolvedWindowOptions) : undefined;
  const minute = make(input.minute);
  const daily = make(input.daily);
  const changes = [...(input.changes ?? [])].sort((a, b) => a.at - b.at);
  let next = 0;
  const applyUntil = (t: number): void => {
    while (next < changes.length && (changes[next] as IdealLimitChange).at <= t) {
      const c = changes[next++] as IdealLimitChange;
      if (c.minute !== undefined) minute?.setLimit(c.minute);
      if (c.daily !== undefined) daily?.setLimit(c.daily);
    }
  };
  const admits = (t: number): boolean => (minute?.retryAfterMs(t) ?? 0) === 0 && (daily?.retryAfterMs(t) ?? 0) === 0;
  let previous = -Infinity;
  result.times.forEach((t, i) => {
    // Earlier by 1 ms, but not before the previous acceptance (time never goes back) nor the start.
    const earlier = t - 1;
    if (Number.isInteger(t) && earlier > previous && earlier >= input.start) {
      applyUntil(earlier);
      if (admits(earlier)) problems.push(`request ${i + 1} would be accepted at ${earlier}, before its ideal time ${t}`);
    }
    applyUntil(t);
    if (!admits(t)) problems.push(`request ${i + 1} is refused at its ideal time ${t}`);
    minute?.hit(t);
    daily?.hit(t);
    previous = t;
  });
  return problems;
}
