/**
 * Additive-increase / multiplicative-decrease pacing for servers that send no
 * rate-limit headers. Off until the first 429 (like the AWS SDK's adaptive
 * mode): then the rate drops to a fraction of what was being sent, and climbs
 * back by a share of itself per second of 429-free traffic. Pure: time is
 * passed in.
 */
export class Aimd {
  /** Requests per second; Infinity while off. */
  #rate = Infinity;
  #tokens = 0;
  #last = 0;
  /** Dispatches in the current and the previous one-second bucket, to measure the rate in force. */
  #bucketStart = 0;
  #bucketCount = 0;
  #previousCount = 0;
  readonly #minRate: number;
  readonly #beta: number;
  readonly #growth: number;

  constructor({ minRate = 0.5, beta = 0.5, growth = 0.1 } = {}) {
    this.#minRate = minRate;
    this.#beta = beta;
    this.#growth = growth;
  }

  get active(): boolean {
    return Number.isFinite(this.#rate);
  }

  get rate(): number {
    return this.#rate;
  }

  /** Back to off: the server's own numbers took over. */
  reset(): void {
    this.#rate = Infinity;
    this.#tokens = 0;
  }

  /** How many of `want` may go now. Report what was really sent with {@link sent}. */
  take(want: number, now: number): number {
    if (!this.active) return want;
    this.#refill(now);
    const n = Math.min(want, Math.floor(this.#tokens));
    this.#tokens -= n;
    return n;
  }

  /** Tokens taken but not used (the budget granted fewer): they may go later. */
  giveBack(n: number): void {
    if (this.active && n > 0) this.#tokens += n;
  }

  /**
   * Records requests actually sent, on or off: the rate in force when the
   * first 429 comes is what the cut starts from.
   */
  sent(n: number, now: number): void {
    if (n > 0) this.#note(now, n);
  }

  /** When the next token is due. */
  nextAt(now: number): number {
    if (!this.active) return now;
    this.#refill(now);
    return now + Math.max(0, ((1 - this.#tokens) / this.#rate) * 1000);
  }

  /** A 429 with no headers: cut the rate. */
  onThrottle(now: number): void {
    const measured = this.#measured(now);
    const base = this.active ? Math.min(this.#rate, Math.max(measured, this.#minRate)) : Math.max(measured, this.#minRate * 2);
    this.#rate = Math.max(this.#minRate, base * this.#beta);
    this.#tokens = 0;
    this.#last = now;
  }

  #refill(now: number): void {
    const dt = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    // Grow the rate by a share of itself per second without throttling.
    this.#rate += this.#rate * this.#growth * dt;
    this.#tokens = Math.min(Math.max(1, this.#rate * 0.1), this.#tokens + this.#rate * dt);
  }

  #note(now: number, n: number): void {
    if (now - this.#bucketStart >= 1000) {
      this.#previousCount = now - this.#bucketStart < 2000 ? this.#bucketCount : 0;
      this.#bucketStart = now;
      this.#bucketCount = 0;
    }
    this.#bucketCount += n;
  }

  #measured(now: number): number {
    const elapsed = Math.max(1, now - this.#bucketStart);
    if (elapsed >= 2000) return 0;
    return Math.max(this.#previousCount, (this.#bucketCount * 1000) / Math.max(elapsed, 250));
  }
}
