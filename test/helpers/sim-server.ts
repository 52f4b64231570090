import type { Clock } from '../../src/internal/clock.js';

export interface SimWindow {
  limit: number;
  windowMs: number;
  kind: 'fixed' | 'sliding' | 'first-hit';
  phaseMs?: number;
}

export interface SimResponse {
  status: number;
  headers: Record<string, string>;
}

/**
 * An in-process model of a rate-limited server for engine tests: the same
 * window rules as the fake HTTP server, answered through the injected clock
 * after `latencyMs`, so everything runs on fake time.
 */
export class SimServer {
  readonly accepted: number[] = [];
  rejected = 0;
  /** Server times of every 429. */
  readonly rejectedAt: number[] = [];
  requests = 0;
  #windowStart = 0;
  #count = 0;
  #log: number[] = [];
  #clock: Clock;
  window: SimWindow;
  latencyMs: number;
  headers = true;
  dropHeadersEvery = 0;
  /** Drops every rate-limit header of a response (a 429 keeps `retry-after-ms`) when it returns true. */
  omitHeaders: (() => boolean) | undefined = undefined;
  /** What a 429 carries: everything (default), only `retry-after-ms`, or nothing at all. */
  headersOn429: 'all' | 'retry-after' | 'none' = 'all';
  daily: { limit: number; used: number; resetAt: number; dayMs: number } | undefined;
  /** Statuses to answer with next, in order, instead of the normal answer. */
  script: number[] = [];
  /**
   * Successful answers state the window's reset as `x-ratelimit-reset`, in
   * whole seconds rounded up (as express-rate-limit, @fastify/rate-limit and
   * Laravel do); `'ms'` states it to the millisecond; `'epoch-seconds'` as the
   * epoch second it happens in, rounded up (express-rate-limit's
   * `legacyHeaders`: the clock must be past 2024 for it to read as an epoch).
   */
  statesReset: 'seconds' | 'ms' | 'epoch-seconds' | undefined = undefined;

  constructor(clock: Clock, window: SimWindow, latencyMs = 5) {
    this.#clock = clock;
    this.window = window;
    this.latencyMs = latencyMs;
    this.#windowStart = -Infinity;
  }

  #used(now: number): number {
    const w = this.window;
    if (w.kind === 'sliding') {
      while (this.#log.length > 0 && (this.#log[0] as number) <= now - w.windowMs) this.#log.shift();
      return this.#log.length;
    }
    if (w.kind === 'fixed') {
      const phase = w.phaseMs ?? 0;
      const start = Math.floor((now - phase) / w.windowMs) * w.windowMs + phase;
      if (start !== this.#windowStart) {
        this.#windowStart = start;
        this.#count = 0;
      }
      return this.#count;
    }
    if (now >= this.#windowStart + w.windowMs) {
      this.#count = 0;
      this.#windowStart = -Infinity;
    }
    return this.#count;
  }

  #msUntilFree(now: number): number {
    const w = this.window;
    if (w.kind === 'sliding') return (this.#log[0] as number) + w.windowMs - now;
    return this.#windowStart + w.windowMs - now;
  }

  /** Processes one request at the current clock time; `countsDaily: false`: the daily window neither counts nor refuses it. */
  handle(countsDaily = true): SimResponse {
    const now = this.#clock.now();
    this.requests++;
    const scripted = this.script.shift();
    const used = this.#used(now);
    const w = this.window;
    const headers: Record<string, string> = {};
    const dailyLeft = this.daily ? this.#dailyLeft(now) : undefined;
    if (scripted !== undefined && scripted !== 429) return { status: scripted, headers };
    if (used >= w.limit || scripted === 429 || (dailyLeft === 0 && countsDaily)) {
      this.rejected++;
      this.rejectedAt.push(now);
      const daily = dailyLeft === 0 && countsDaily;
      const wait = daily && this.daily ? this.daily.resetAt - now : this.#msUntilFree(now);
      if (this.headersOn429 !== 'none') headers['retry-after-ms'] = String(Math.max(0, Math.ceil(wait)));
      if (this.headersOn429 !== 'all' || this.omitHeaders?.()) return { status: 429, headers };
      headers['x-ratelimit-type'] = daily ? 'daily' : 'minute';
      headers['x-ratelimit-limit'] = String(w.limit);
      headers['x-ratelimit-remaining'] = String(Math.max(0, w.limit - used));
      if (this.daily) {
        headers['x-ratelimit-daily-limit'] = String(this.daily.limit);
        headers['x-ratelimit-daily-remaining'] = String(dailyLeft);
      }
      return { status: 429, headers };
    }
    if (w.kind === 'sliding') this.#log.push(now);
    else {
      if (w.kind === 'first-hit' && this.#count === 0) this.#windowStart = now;
      this.#count++;
    }
    if (this.daily && countsDaily) this.daily.used++;
    this.accepted.push(now);
    const omit = (this.dropHeadersEvery > 0 && this.requests % this.dropHeadersEvery === 0) || this.omitHeaders?.() === true;
    if (this.headers && !omit) {
      headers['x-ratelimit-limit'] = String(w.limit);
      headers['x-ratelimit-remaining'] = String(w.limit - used - 1);
      if (this.daily) {
        headers['x-ratelimit-daily-limit'] = String(this.daily.limit);
        headers['x-ratelimit-daily-remaining'] = String(this.daily.limit - this.daily.used);
      }
      if (this.statesReset && w.kind !== 'sliding') {
        const ms = this.#msUntilFree(now);
        headers['x-ratelimit-reset'] =
          this.statesReset === 'seconds'
            ? String(Math.ceil(ms / 1000))
            : this.statesReset === 'epoch-seconds'
              ? String(Math.ceil((now + ms) / 1000))
              : String(ms / 1000);
      }
    }
    return { status: 200, headers };
  }

  #dailyLeft(now: number): number {
    const d = this.daily!;
    while (now >= d.resetAt) {
      d.resetAt += d.dayMs;
      d.used = 0;
    }
    return d.limit - d.used;
  }

  /** A task for the scheduler: the request reaches the server halfway through the latency. */
  task = (): Promise<SimResponse> => this.#request(true);

  /** A task whose request the daily window does not count (a status poll on an API that counts submissions only). */
  minuteOnlyTask = (): Promise<SimResponse> => this.#request(false);

  #request(countsDaily: boolean): Promise<SimResponse> {
    return new Promise((resolve) => {
      this.#clock.setTimeout(() => {
        const response = this.handle(countsDaily);
        this.#clock.setTimeout(() => resolve(response), this.latencyMs / 2);
      }, this.latencyMs / 2);
    });
  }

  /** The most accepted requests in any window of the server's kind. */
  maxInWindow(): number {
    const w = this.window;
    let best = 0;
    if (w.kind === 'fixed') {
      const counts = new Map<number, number>();
      for (const t of this.accepted) {
        const k = Math.floor((t - (w.phaseMs ?? 0)) / w.windowMs);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      for (const c of counts.values()) best = Math.max(best, c);
      return best;
    }
    if (w.kind === 'first-hit') {
      // Replay: a window opens at the first accepted hit after the previous one expired.
      let start = -Infinity;
      let count = 0;
      for (const t of this.accepted) {
        if (t >= start + w.windowMs) {
          start = t;
          count = 0;
        }
        best = Math.max(best, ++count);
      }
      return best;
    }
    let j = 0;
    for (let i = 0; i < this.accepted.length; i++) {
      while ((this.accepted[i] as number) - (this.accepted[j] as number) >= w.windowMs) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  }
}
