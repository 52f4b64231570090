/**
 * Clock timers the fake server owns, so `close()` can clear every one.
 */
import type { Clock, TimerHandle } from '../internal/clock.js';

export class TimerSet {
  readonly #clock: Clock;
  readonly #live = new Set<{ handle: TimerHandle }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#live.size;
  }

  /** Runs `fn` after `ms` on the clock; the returned token cancels it. */
  set(fn: () => void, ms: number): object {
    const token: { handle: TimerHandle } = { handle: undefined };
    token.handle = this.#clock.setTimeout(() => {
      this.#live.delete(token);
      fn();
    }, Math.max(0, ms));
    this.#live.add(token);
    return token;
  }

  clear(token: object | undefined): void {
    if (!token) return;
    const t = token as { handle: TimerHandle };
    if (this.#live.delete(t)) this.#clock.clearTimeout(t.handle);
  }

  clearAll(): void {
    for (const t of this.#live) this.#clock.clearTimeout(t.handle);
    this.#live.clear();
  }
}
