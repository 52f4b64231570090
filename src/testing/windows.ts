/**
 * Rate-limit window accounting for the fake server. Pure: no timers, no
 * globals; every method takes `now` (server clock, ms).
 *
 * Three kinds:
 * - `fixed`: periodic windows `[phaseMs + k*windowMs, phaseMs + (k+1)*windowMs)`.
 * - `first-hit`: Laravel's stock limiter. A window opens at the first counted
 *   hit after the previous one expired and lasts `windowMs`.
 * - `sliding`: a sliding log. A counted hit at `t` occupies a slot until
 *   `t + windowMs`, so any half-open interval of `windowMs` holds at most
 *   `limit` hits.
 *
 * A limit of 0 refuses everything. Retry-After is then the time to the end
 * of the current fixed window, or `windowMs` for the other kinds.
 */
import { NumberDeque } from './deque.js';

export type WindowKind = 'fixed' | 'sliding' | 'first-hit';

/** One window of the fake server's limiter. */
export interface WindowOptions {
  /** The most requests the window admits. A non-negative integer. */
  limit: number;
  /**
   * The window length in ms.
   * @default 60_000 for `minute`, 86_400_000 for `daily`
   */
  windowMs?: number;
  /**
   * The accounting algorithm.
   * @default 'fixed'
   */
  kind?: WindowKind;
  /**
   * Fixed windows start at `phaseMs + k * windowMs` on the server clock. Ignored by the other kinds.
   * @default 0 (so daily windows start at midnight UTC)
   */
  phaseMs?: number;
}

export interface ResolvedWindowOptions {
  limit: number;
  windowMs: number;
  kind: WindowKind;
  phaseMs: number;
}

export class RateWindow {
  readonly windowMs: number;
  readonly kind: WindowKind;
  readonly phaseMs: number;
  #limit: number;
  // fixed: index of the current window; first-hit: start of the current window.
  #fixedIndex = Number.NaN;
  #firstHitStart = Number.NaN;
  #count = 0;
  readonly #log: NumberDeque | undefined;

  constructor(options: ResolvedWindowOptions) {
    this.windowMs = options.windowMs;
    this.kind = options.kind;
    this.phaseMs = options.phaseMs;
    this.#limit = options.limit;
    this.#log = options.kind === 'sliding' ? new NumberDeque(Math.min(Math.max(options.limit, 16), 1 << 16)) : undefined;
  }

  get limit(): number {
    return this.#limit;
  }

  /** Changes the limit; the hits already counted stay counted. */
  setLimit(limit: number): void {
    this.#limit = limit;
  }

  /** Requests counted in the window that contains `now`. */
  used(now: number): number {
    switch (this.kind) {
      case 'fixed':
        return this.#fixedIndexOf(now) === this.#fixedIndex ? this.#count : 0;
      case 'first-hit':
        return this.#firstHitActive(now) ? this.#count : 0;
      case 'sliding':
        this.#expire(now);
        return this.#log?.size ?? 0;
    }
  }

  /** `max(0, limit - used)`. */
  remaining(now: number): number {
    return Math.max(0, this.#limit - this.used(now));
  }

  /** 0 when a request at `now` would be admitted, else the ms until a slot frees. */
  retryAfterMs(now: number): number {
    const used = this.used(now);
    if (used < this.#limit) return 0;
    switch (this.kind) {
      case 'fixed':
        return this.#fixedWindowStart(now) + this.windowMs - now;
      case 'first-hit':
        return this.#firstHitActive(now) ? this.#firstHitStart + this.windowMs - now : this.windowMs;
      case 'sliding': {
        if (this.#limit <= 0) return this.windowMs;
        // After the (used - limit + 1) oldest entries expire, one slot is free.
        const entry = this.#log?.at(used - this.#limit) ?? now;
        return Math.max(1, entry + this.windowMs - now);
      }
    }
  }

  /**
   * When the current window ends (fixed, first-hit), or when the oldest
   * counted hit expires (sliding); undefined when nothing is counted.
   */
  resetAt(now: number): number | undefined {
    switch (this.kind) {
      case 'fixed':
        return this.#fixedWindowStart(now) + this.windowMs;
      case 'first-hit':
        return this.#firstHitActive(now) ? this.#firstHitStart + this.windowMs : undefined;
      case 'sliding': {
        this.#expire(now);
        const oldest = this.#log?.at(0);
        return oldest === undefined ? undefined : oldest + this.windowMs;
      }
    }
  }

  /** Counts one request at `now`. Does not check the limit: call `retryAfterMs` first. */
  hit(now: number): void {
    switch (this.kind) {
      case 'fixed': {
        const index = this.#fixedIndexOf(now);
        if (index !== this.#fixedIndex) {
          this.#fixedIndex = index;
          this.#count = 0;
        }
        this.#count++;
        return;
      }
      case 'first-hit':
        if (!this.#firstHitActive(now)) {
          this.#firstHitStart = now;
          this.#count = 0;
        }
        this.#count++;
        return;
      case 'sliding':
        this.#expire(now);
        this.#log?.push(now);
        return;
    }
  }

  #fixedIndexOf(now: number): number {
    return Math.floor((now - this.phaseMs) / this.windowMs);
  }

  #fixedWindowStart(now: number): number {
    return this.phaseMs + this.#fixedIndexOf(now) * this.windowMs;
  }

  #firstHitActive(now: number): boolean {
    return now >= this.#firstHitStart && now < this.#firstHitStart + this.windowMs;
  }

  #expire(now: number): void {
    const log = this.#log;
    if (!log) return;
    const cutoff = now - this.windowMs;
    while (log.size > 0 && (log.at(0) ?? Infinity) <= cutoff) log.shift();
  }
}

/** Ceil of ms to whole seconds, at least 1 for any positive wait. */
export function retryAfterSeconds(ms: number): number {
  return ms <= 0 ? 0 : Math.max(1, Math.ceil(ms / 1000));
}

export interface MaxInWindowOptions {
  windowMs: number;
  kind: WindowKind;
  /** Only for `fixed`. @default 0 */
  phaseMs?: number;
}

/**
 * The most timestamps that fall in one window:
 * - `fixed`: any phase-aligned window `[phase + k*W, phase + (k+1)*W)`;
 * - `first-hit`: the windows a first-hit limiter would have opened over this log;
 * - `sliding`: any half-open interval `[t, t + W)`.
 * O(n) for sorted input (O(n log n) otherwise). Does not modify `timestamps`.
 */
export function maxInAnyWindow(timestamps: readonly number[], options: MaxInWindowOptions): number {
  const ts = isSorted(timestamps) ? timestamps : [...timestamps].sort((a, b) => a - b);
  const w = options.windowMs;
  let best = 0;
  switch (options.kind) {
    case 'fixed': {
      const phase = options.phaseMs ?? 0;
      let index = Number.NaN;
      let count = 0;
      for (const t of ts) {
        const i = Math.floor((t - phase) / w);
        if (i !== index) {
          index = i;
          count = 0;
        }
        count++;
        if (count > best) best = count;
      }
      return best;
    }
    case 'first-hit': {
      let start = Number.NEGATIVE_INFINITY;
      let count = 0;
      for (const t of ts) {
        if (t >= start + w) {
          start = t;
          count = 0;
        }
        count++;
        if (count > best) best = count;
      }
      return best;
    }
    case 'sliding': {
      let j = 0;
      for (let i = 0; i < ts.length; i++) {
        const end = (ts[i] ?? 0) + w;
        if (j < i) j = i;
        while (j < ts.length && (ts[j] ?? Infinity) < end) j++;
        if (j - i > best) best = j - i;
      }
      return best;
    }
  }
}

function isSorted(values: readonly number[]): boolean {
  for (let i = 1; i < values.length; i++) if ((values[i] ?? 0) < (values[i - 1] ?? 0)) return false;
  return true;
}
