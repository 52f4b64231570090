/**
 * Pacing for servers that send no rate-limit headers at all. Off until the
 * first 429 (like the AWS SDK's adaptive mode). Every quantity is in units of
 * the window (`windowMs`), never of the wall-clock second, so it behaves the
 * same with a 1 s window as with a 60 s one.
 *
 * - The ceiling: on a 429, the requests the server accepted from those sent in
 *   the window before the refused one (a limit it just reached).
 * - The rate: requests per window, sent evenly (one every `windowMs / rate`,
 *   never a burst), which no fixed, sliding or first-hit window of a limit
 *   above the rate refuses. A 429 cuts it to `min(beta × ceiling,
 *   ceiling - 1)`; it then climbs back, closing half the gap to `ceiling - 1`
 *   per window, and above that creeps up by `probe` per window, so that a
 *   raised limit is found.
 * - The gate: with no `Retry-After`, {@link gateMs} says how long to wait
 *   before one request reads whether the window has turned (a share of a
 *   window that doubles per refused read).
 *
 * Pure: time and randomness are passed in.
 */
export interface AimdOptions {
  /** The window the rate is counted in, in ms. */
  windowMs: number;
  /** Share of the ceiling a 429 cuts the rate to (at least one request below it). @default 0.9 */
  beta?: number;
  /** Lowest rate, in requests per window. @default 1 */
  minRate?: number;
  /** Climb above `ceiling - 1`, per window: `max(1/8, ceiling / 200)` requests. */
  probe?: (ceiling: number) => number;
}

/**
 * Most tokens kept: never two requests at once, but a send made late (a timer,
 * a busy loop) keeps what it was owed, and the next may follow half an
 * interval after it.
 */
const MAX_TOKENS = 1.5;

/** Past a window after the oldest counted request, this share of a window more before the gate reopens. */
const AGE_OUT_SLACK = 1 / 1000;

const defaultProbe = (ceiling: number): number => Math.max(1 / 8, ceiling / 200);

export class Aimd {
  /** Requests per window; Infinity while off. */
  #rate = Infinity;
  /** Accepted per window when the server last refused. */
  #ceiling = Infinity;
  /** When the oldest request counted in the last measure leaves a window (sliding, first-hit) or at the latest does (fixed). */
  #ageOutAt = 0;
  #tokens = 0;
  #last = 0;
  /** Send times of requests the server accepted, oldest first (about; kept for two windows). */
  #accepted: number[] = [];
  #head = 0;
  readonly #windowMs: number;
  readonly #beta: number;
  readonly #minRate: number;
  readonly #probe: (ceiling: number) => number;

  constructor({ windowMs, beta = 0.9, minRate = 1, probe = defaultProbe }: AimdOptions) {
    this.#windowMs = windowMs;
    this.#beta = beta;
    this.#minRate = minRate;
    this.#probe = probe;
  }

  get active(): boolean {
    return Number.isFinite(this.#rate);
  }

  /** Requests per window (Infinity while off). */
  get rate(): number {
    return this.#rate;
  }

  /** Accepted per window at the last 429 (Infinity before the first). */
  get ceiling(): number {
    return this.#ceiling;
  }

  /** Back to off: the server's own numbers took over. */
  reset(): void {
    this.#rate = Infinity;
    this.#ceiling = Infinity;
    this.#tokens = 0;
    this.#accepted = [];
    this.#head = 0;
  }

  /** How many of `want` may go now. */
  take(want: number, now: number): number {
    if (!this.active) return want;
    this.#refill(now);
    // (A hair of slack: a token short by a rounding error must not wait a rounding error, which a
    // clock in epoch ms cannot even represent.)
    const n = Math.min(want, Math.floor(this.#tokens + 1e-9));
    this.#tokens -= n;
    return n;
  }

  /** Tokens taken but not used (the budget granted fewer): they may go later (up to the cap). */
  giveBack(n: number): void {
    if (this.active && n > 0) this.#tokens = Math.min(MAX_TOKENS, this.#tokens + n);
  }

  /** When the next request may go. */
  nextAt(now: number): number {
    if (!this.active) return now;
    this.#refill(now);
    return now + Math.max(0, ((1 - 1e-9 - this.#tokens) / this.#rate) * this.#windowMs);
  }

  /**
   * The server accepted a request sent at `sentAt` (any answer but a 429).
   * Recorded on or off: the first 429 measures the ceiling from them.
   */
  accepted(sentAt: number, now: number): void {
    const log = this.#accepted;
    log.push(sentAt);
    const horizon = now - 2 * this.#windowMs;
    while (this.#head < log.length && (log[this.#head] as number) < horizon) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > log.length) {
      this.#accepted = log.slice(this.#head);
      this.#head = 0;
    }
  }

  /** A 429 with no numbers, to a request sent at `sentAt`: measure the ceiling and cut the rate. */
  onThrottle(sentAt: number, now: number): void {
    let measured = 0;
    let oldest = sentAt;
    const log = this.#accepted;
    for (let i = this.#head; i < log.length; i++) {
      const t = log[i] as number;
      if (t > sentAt - this.#windowMs && t <= sentAt) {
        measured++;
        if (t < oldest) oldest = t;
      }
    }
    this.#ageOutAt = oldest + this.#windowMs * (1 + AGE_OUT_SLACK);
    const base = Math.max(this.#minRate, this.active ? Math.min(this.#rate, measured) : measured);
    this.#ceiling = base;
    this.#rate = Math.max(this.#minRate, Math.min(base * this.#beta, base - 1));
    this.#tokens = 0;
    this.#last = now;
  }

  /**
   * The request that read after a gate was accepted: pacing starts over from
   * now, at the rate in force (the gate's wait is no evidence to climb on).
   */
  restart(now: number): void {
    this.#tokens = 0;
    this.#last = now;
  }

  /**
   * How long the gate stays closed after the `n`-th 429 in a row with no
   * `Retry-After`, at `now`: a `1/ceiling` share of the window, doubled per
   * refused read, at most half a window, times `0.5 + random / 2`; and never
   * before the oldest request the last cut counted has left a window (after
   * the first burst, that is about when any kind of window turns).
   */
  gateMs(n: number, random: number, now: number): number {
    const w = this.#windowMs;
    const step = w / Math.max(1, Number.isFinite(this.#ceiling) ? this.#ceiling : 1);
    const backoff = Math.min(w / 2, step * 2 ** Math.min(30, Math.max(0, n - 1))) * (0.5 + random / 2);
    return Math.max(backoff, this.#ageOutAt - now);
  }

  #refill(now: number): void {
    const u = Math.max(0, now - this.#last) / this.#windowMs;
    this.#last = now;
    // Climb only while spending: a full bucket means the rate was not used.
    if (this.#tokens < 1) {
      const target = Math.max(this.#minRate, this.#ceiling - 1);
      const closing = this.#rate < target ? target - (target - this.#rate) * 2 ** -u : 0;
      this.#rate = Math.max(closing, this.#rate + this.#probe(this.#ceiling) * u);
    }
    this.#tokens = Math.min(MAX_TOKENS, this.#tokens + this.#rate * u);
  }
}
