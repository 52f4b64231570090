/**
 * The slow start: how many requests may be in flight while nothing is known
 * (no rate-limit header seen, no seed, no 429 yet). It ends at the first 429
 * (AIMD paces from then on) or at the first header (the budget governs).
 *
 * Every request in flight when a header-less server first refuses is refused
 * too, so what is in flight at that moment is the first window's overshoot.
 * Two caps, the lower one holds:
 *
 * - by round trips: one request first, then one more per accepted answer
 *   (doubling per round trip) up to {@link DOUBLING}, then a quarter more per
 *   answer (x1.25 per round trip);
 * - by time: no more than it takes to send twice what was accepted so far (the
 *   limit is at least that) within {@link SHARE} of a window, at the shortest
 *   round trip seen (Little's law: in flight = rate x round trip). Sending
 *   faster than that gains nothing the window would not give back anyway, and
 *   only adds to the overshoot: with round trips short against the window (a
 *   local server, a 1 s window) a handful in flight already spend a window's
 *   limit in a sliver of it. The overshoot is then at most about
 *   `2 x rtt / (SHARE x W)` of the limit; the cap still grows e-fold every
 *   `SHARE / 2` of a window. The shortest round trip, not the average: requests
 *   in flight queue at the server, so the average grows with what is in flight
 *   and would let the cap feed itself.
 *
 * In window units throughout (round trip over window), so a 1 s and a 60 s
 * window with round trips in proportion behave the same. Pure: times are
 * passed in.
 */

/** Doubling per round trip up to this many in flight ... */
export const DOUBLING = 16;
/** ... then a quarter more per answer. */
export const GENTLE = 0.25;
/** The time cap: twice the accepted count may be sent within this share of a window. */
export const SHARE = 1 / 20;

export class SlowStart {
  /** The round-trip cap (fractional: it grows by a quarter per answer past {@link DOUBLING}). */
  #byAnswers = 1;
  #accepted = 0;
  /** The shortest round trip of an accepted answer (Infinity before the first). */
  #rttMs = Infinity;
  readonly #windowMs: number;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** The most requests in flight now (at least one). */
  get limit(): number {
    const byAnswers = Math.floor(this.#byAnswers);
    if (this.#rttMs === Infinity) return byAnswers;
    const byTime = Math.ceil((2 * this.#accepted * this.#rttMs) / (SHARE * this.#windowMs));
    return Math.max(1, Math.min(byAnswers, byTime));
  }

  /** An answer the server accepted (status below 400), `rttMs` after its request was sent. */
  accepted(rttMs: number): void {
    this.#accepted++;
    this.#byAnswers += this.#byAnswers < DOUBLING ? 1 : GENTLE;
    this.#rttMs = Math.min(this.#rttMs, Math.max(0, rttMs));
  }
}
