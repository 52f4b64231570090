/**
 * Per-account limiter: the minute and daily windows of one account, plus the
 * log of every counted request (for `acceptedLog` / `maxInAnyWindow`).
 */
import { RateWindow, type ResolvedWindowOptions } from './windows.js';

export type LimitType = 'minute' | 'daily';

export type LimitDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly type: LimitType; readonly retryAfterMs: number };

export interface WindowReading {
  limit: number;
  remaining: number;
}

export interface LimiterConfig {
  minute: ResolvedWindowOptions | false;
  daily: ResolvedWindowOptions | false;
}

export const DEFAULT_MINUTE_MS = 60_000;
export const DEFAULT_DAILY_MS = 86_400_000;

const ALLOWED: LimitDecision = { allowed: true };

export class AccountLimiter {
  minute: RateWindow | undefined;
  daily: RateWindow | undefined;
  /** Server-clock timestamps of every counted request, in arrival order. */
  readonly accepted: number[] = [];

  constructor(config: LimiterConfig) {
    this.minute = config.minute === false ? undefined : new RateWindow(config.minute);
    this.daily = config.daily === false ? undefined : new RateWindow(config.daily);
  }

  /**
   * Whether a request at `now` is admitted. Daily wins when both windows are exhausted.
   * `countsDaily: false`: the daily window neither refuses nor counts it.
   */
  check(now: number, countsDaily = true): LimitDecision {
    const daily = countsDaily ? (this.daily?.retryAfterMs(now) ?? 0) : 0;
    if (daily > 0) return { allowed: false, type: 'daily', retryAfterMs: daily };
    const minute = this.minute?.retryAfterMs(now) ?? 0;
    if (minute > 0) return { allowed: false, type: 'minute', retryAfterMs: minute };
    return ALLOWED;
  }

  /** Counts one admitted request in both windows (the minute one only, with `countsDaily: false`) and in the log. */
  count(now: number, countsDaily = true): void {
    this.minute?.hit(now);
    if (countsDaily) this.daily?.hit(now);
    this.accepted.push(now);
  }

  read(now: number): { minute: WindowReading | undefined; daily: WindowReading | undefined } {
    return {
      minute: this.minute ? { limit: this.minute.limit, remaining: this.minute.remaining(now) } : undefined,
      daily: this.daily ? { limit: this.daily.limit, remaining: this.daily.remaining(now) } : undefined,
    };
  }

  /**
   * Changes limits; takes effect immediately (remaining = max(0, limit - used)).
   * `false` removes a window; a number on a removed window creates a fresh
   * fixed window of the default length.
   */
  setLimits(limits: { minute?: number | false; daily?: number | false }): void {
    if (limits.minute !== undefined) this.minute = apply(this.minute, limits.minute, DEFAULT_MINUTE_MS);
    if (limits.daily !== undefined) this.daily = apply(this.daily, limits.daily, DEFAULT_DAILY_MS);
  }
}

function apply(window: RateWindow | undefined, limit: number | false, windowMs: number): RateWindow | undefined {
  if (limit === false) return undefined;
  if (window) {
    window.setLimit(limit);
    return window;
  }
  return new RateWindow({ limit, windowMs, kind: 'fixed', phaseMs: 0 });
}
