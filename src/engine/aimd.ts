/**
 * Pacing for servers that send no rate-limit headers at all. Off until the
 * first 429 (like the AWS SDK's adaptive mode). Every quantity is in units of
 * the window (`windowMs`), never of the wall-clock second, so it behaves the
 * same with a 1 s window as with a 60 s one.
 *
 * - The ceiling: on a 429, the requests the server accepted from those sent in
 *   the window before the refused one (a limit it just reached).
 * - The rate: requests per window, kept as a sliding log of what was sent: a
 *   request may go while fewer than `rate` were sent (or, once answered, were
 *   answered) in the last window (and a hair). No fixed, sliding or first-hit window of a limit above the rate
 *   refuses that, and the queue's last window is spent at once, not spread. A
 *   429 cuts the rate to `min(beta × ceiling, ceiling - 1)`; it then climbs
 *   back, closing half the gap to `ceiling - 1` per window while it is what
 *   holds the queue back, and above that creeps up by `probe` per window, so
 *   that a raised limit is found.
 * - The gate: with no `Retry-After`, {@link gateMs} says how long to wait
 *   before one request reads whether the window has turned (a share of a
 *   window that doubles per refused read). A read accepted before anything
 *   counted could have left a window shows a window that turned on a grid:
 *   what was sent before no longer counts ({@link restart}).
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

/** A request leaves the log this share of a window after a window has passed (arrival jitter). */
const SLACK = 1 / 100;

/** Most accepted send times kept while off (a limit of more per window is measured as this). */
const MAX_ACCEPTED = 65_536;

const defaultProbe = (ceiling: number): number => Math.max(1 / 8, ceiling / 200);

/** Times in order, with a moving head: the oldest drop off the front. */
class TimeLog {
  #items: number[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(t: number): void {
    this.#items.push(t);
  }

  /** The `i`-th oldest. */
  at(i: number): number {
    return this.#items[this.#head + i] as number;
  }

  /** Removes one occurrence of `t` (an exact time pushed before); false when it is not there (dropped already). */
  remove(t: number): boolean {
    const items = this.#items;
    let lo = this.#head;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((items[mid] as number) < t) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= items.length || items[lo] !== t) return false;
    items.splice(lo, 1);
    return true;
  }

  /** Adds a time out of order (rare: an answer that came back late). */
  insert(t: number): void {
    const items = this.#items;
    let i = items.length;
    while (i > this.#head && (items[i - 1] as number) > t) i--;
    items.splice(i, 0, t);
  }

  /** Drops every time at or before `t`. */
  dropThrough(t: number): void {
    const items = this.#items;
    while (this.#head < items.length && (items[this.#head] as number) <= t) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  *values(): Generator<number> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as number;
  }
}

export class Aimd {
  /** Requests per window; Infinity while off. */
  #rate = Infinity;
  /** Accepted per window when the server last refused. */
  #ceiling = Infinity;
  /** When the oldest request counted in the last measure has left a window. */
  #ageOutAt = 0;
  /** The last cut counted the accepted requests sent in (`#cutFrom`, `#cutUntil`]. */
  #cutFrom = Infinity;
  #cutUntil = -Infinity;
  #last = 0;
  /** The rate held the queue back at the last look: it may climb. */
  #binding = false;
  /** A read after a gate was accepted since the first 429: the log now tells when the server's count drops. */
  #learned = false;
  /** Send times of the last window (and a hair). */
  readonly #sent = new TimeLog();
  /** Send times of requests the server accepted, kept for two windows (about in order: answers come back out of order). */
  #accepted: number[] = [];
  #acceptedHead = 0;
  readonly #windowMs: number;
  readonly #beta: number;
  readonly #minRate: number;
  readonly #probe: (ceiling: number) => number;

  constructor({ windowMs, beta = 0.95, minRate = 1, probe = defaultProbe }: AimdOptions) {
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
    this.#cutFrom = Infinity;
    this.#cutUntil = -Infinity;
    this.#binding = false;
    this.#learned = false;
    this.#sent.clear();
    this.#accepted = [];
    this.#acceptedHead = 0;
  }

  /** How many of `want` may go now. Report what really went with {@link sent}. */
  take(want: number, now: number): number {
    if (!this.active) return want;
    this.#advance(now);
    const room = Math.max(0, Math.floor(this.#rate + 1e-9) - this.#sent.size);
    this.#binding = room < want;
    return Math.min(want, room);
  }

  /**
   * Whether the read after a gate may go now. While the first ceiling is
   * learnt, at once (the window may turn on a grid before the log says);
   * after that, once the log has room: by then whatever the server counted of
   * ours has left its window, so the read is not refused for nothing.
   */
  mayRead(now: number): boolean {
    return !this.#learned || this.take(1, now) === 1;
  }

  /** Requests actually sent at `now` (kept while on; the first 429 starts the log from the accepted ones). */
  sent(n: number, now: number): void {
    if (!this.active) return;
    for (let i = 0; i < n; i++) this.#sent.push(now);
    this.#sent.dropThrough(now - this.#windowMs * (1 + SLACK));
  }

  /**
   * A request sent at `sentAt` was answered at `now` (any answer): it leaves
   * the log a window after `now`, not after its sending. The server counted it
   * when it arrived, somewhere between the two: a window it opened (first hit)
   * or counted it in ends no earlier than a window after its arrival, and on a
   * busy machine the arrival may trail the sending by more than the slack.
   * Counted from the answer, the next request past the rate cannot reach the
   * server before that window has ended.
   */
  answered(sentAt: number, now: number): void {
    if (!this.active || now <= sentAt) return;
    if (this.#sent.remove(sentAt)) this.#sent.insert(now);
  }

  /** When the next request may go. */
  nextAt(now: number): number {
    if (!this.active) return now;
    this.#advance(now);
    const over = this.#sent.size - Math.floor(this.#rate + 1e-9);
    if (over < 0) return now;
    // The oldest `over + 1` must leave; or the rate climbs to one more first.
    return this.#sent.at(over) + this.#windowMs * (1 + SLACK);
  }

  /**
   * The server accepted a request sent at `sentAt` (any answer but a 429).
   * Recorded on or off: the first 429 measures the ceiling from them.
   */
  accepted(sentAt: number, now: number): void {
    const log = this.#accepted;
    log.push(sentAt);
    if (this.active && sentAt > this.#cutFrom && sentAt <= this.#cutUntil) this.#countedLate(sentAt, now);
    const horizon = now - 2 * this.#windowMs;
    while (this.#acceptedHead < log.length && (log[this.#acceptedHead] as number) < horizon) this.#acceptedHead++;
    // A header-less server that never refuses, at a high rate: keep a bounded sample, the newest.
    if (log.length - this.#acceptedHead > MAX_ACCEPTED) this.#acceptedHead = log.length - MAX_ACCEPTED;
    if (this.#acceptedHead > 1024 && this.#acceptedHead * 2 > log.length) {
      this.#accepted = log.slice(this.#acceptedHead);
      this.#acceptedHead = 0;
    }
  }

  /**
   * A 429 with no numbers, to a request sent at `sentAt`, answered at `now`:
   * measure the ceiling (the accepted requests sent from a window before it
   * until now: requests do not reach the server in the order they were sent)
   * and cut the rate.
   */
  onThrottle(sentAt: number, now: number): void {
    let measured = 0;
    let oldest = sentAt;
    const log = this.#accepted;
    const from = sentAt - this.#windowMs;
    for (let i = this.#acceptedHead; i < log.length; i++) {
      const t = log[i] as number;
      if (t > from && t <= now) {
        measured++;
        if (t < oldest) oldest = t;
      }
    }
    this.#ageOutAt = oldest + this.#windowMs * (1 + SLACK);
    this.#cutFrom = from;
    this.#cutUntil = now;
    if (!this.active) {
      // The log starts with what the server counted of the last window.
      const since = now - this.#windowMs * (1 + SLACK);
      const counted = log.slice(this.#acceptedHead).filter((t) => t > since);
      for (const t of counted.sort((a, b) => a - b)) this.#sent.push(t);
    }
    const base = Math.max(this.#minRate, this.active ? Math.min(this.#rate, measured) : measured);
    this.#ceiling = base;
    this.#rate = Math.max(this.#minRate, Math.min(base * this.#beta, base - 1));
    this.#binding = false;
    this.#last = now;
  }

  /**
   * The request that read after a gate was accepted, at `now`. Before the
   * oldest counted request could have left a window, the window turned on a
   * grid: what was sent before it no longer counts. The gate's wait is no
   * evidence to climb on.
   */
  restart(readSentAt: number, now: number): void {
    if (readSentAt < this.#ageOutAt) {
      const log = [...this.#sent.values()].filter((t) => t >= readSentAt);
      this.#sent.clear();
      for (const t of log) this.#sent.push(t);
    }
    this.#binding = false;
    this.#learned = true;
    this.#last = now;
  }

  /**
   * How long the gate stays closed after the `n`-th 429 in a row with no
   * `Retry-After`, at `now`: a `1/ceiling` share of the window, doubled per
   * refused read, at most half a window, times `0.5 + random / 2`; and no
   * later than the moment the oldest request the last cut counted has left a
   * window (by then any kind of window has turned, unless it is shared).
   */
  gateMs(n: number, random: number, now: number): number {
    const w = this.#windowMs;
    const step = w / Math.max(1, Number.isFinite(this.#ceiling) ? this.#ceiling : 1);
    const backoff = Math.min(w / 2, step * 2 ** Math.min(30, Math.max(0, n - 1))) * (0.5 + random / 2);
    const ageOut = this.#ageOutAt - now;
    return ageOut > 0 ? Math.min(backoff, ageOut) : backoff;
  }

  /**
   * An accepted answer to a request sent before the 429 came back, arriving
   * after it (answers overtake each other): the server counted it in the
   * window the cut measured, so the ceiling was one higher, and it stays in
   * the log.
   */
  #countedLate(sentAt: number, now: number): void {
    this.#ceiling++;
    this.#rate = Math.max(this.#rate, Math.min(this.#ceiling * this.#beta, this.#ceiling - 1));
    if (sentAt > now - this.#windowMs * (1 + SLACK)) this.#sent.insert(sentAt);
  }

  /** Drops what left the window, and climbs for the time since the last look if the rate was holding the queue back. */
  #advance(now: number): void {
    this.#sent.dropThrough(now - this.#windowMs * (1 + SLACK));
    const u = Math.max(0, now - this.#last) / this.#windowMs;
    this.#last = now;
    if (!this.#binding || u === 0) return;
    const target = Math.max(this.#minRate, this.#ceiling - 1);
    const closing = this.#rate < target ? target - (target - this.#rate) * 2 ** -u : 0;
    this.#rate = Math.max(closing, this.#rate + this.#probe(this.#ceiling) * u);
  }
}
