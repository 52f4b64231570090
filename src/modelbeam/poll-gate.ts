/**
 * The poll share cap: while submissions wait, polls may take at most
 * `maxShare` of the minute budget, counted locally over a rolling window.
 * With no submission waiting, polls may use what the budget allows (they
 * run at a lower priority, so a submission that arrives still goes first).
 */
export interface PollGateOptions {
  windowMs: number;
  maxShare: number;
  /** Limit assumed while the server has not told one. */
  fallbackLimit: number;
}

export class PollGate {
  readonly #windowMs: number;
  readonly #maxShare: number;
  readonly #fallbackLimit: number;
  /** Dispatch times of the polls inside the window, oldest first. */
  readonly #sent: number[] = [];
  #head = 0;
  /** Released to the scheduler, not dispatched yet. */
  outstanding = 0;

  constructor(options: PollGateOptions) {
    this.#windowMs = options.windowMs;
    this.#maxShare = options.maxShare;
    this.#fallbackLimit = options.fallbackLimit;
  }

  /** The most polls per window right now. */
  cap(limit: number | undefined, submissionsWaiting: boolean): number {
    const l = limit !== undefined && limit > 0 ? limit : this.#fallbackLimit;
    return submissionsWaiting ? Math.max(1, Math.floor(l * this.#maxShare)) : Math.max(1, l);
  }

  /** How many more polls may be released now. */
  allowance(now: number, limit: number | undefined, submissionsWaiting: boolean): number {
    this.#expire(now);
    return this.cap(limit, submissionsWaiting) - this.inWindow(now) - this.outstanding;
  }

  /** Polls dispatched inside the window ending at `now`. */
  inWindow(now: number): number {
    this.#expire(now);
    return this.#sent.length - this.#head;
  }

  /** When the oldest counted poll leaves the window (a slot frees), if any is counted. */
  nextSlotAt(now: number): number | undefined {
    this.#expire(now);
    const oldest = this.#sent[this.#head];
    return oldest === undefined ? undefined : oldest + this.#windowMs;
  }

  onRelease(): void {
    this.outstanding++;
  }

  /** A released poll was dispatched (first attempt) or withdrawn before it was. */
  onLeave(): void {
    if (this.outstanding > 0) this.outstanding--;
  }

  /** A poll request left (every attempt counts, 429s included). */
  onSent(now: number): void {
    this.#sent.push(now);
  }

  #expire(now: number): void {
    const from = now - this.#windowMs;
    while (this.#head < this.#sent.length && (this.#sent[this.#head] as number) <= from) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#sent.length) {
      this.#sent.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
