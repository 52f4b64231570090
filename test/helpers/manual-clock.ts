import type { Clock, TimerHandle } from '../../src/internal/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that moves only when told. `advance` runs due timers in time order
 * and lets promise callbacks settle between them, so async code driven by the
 * clock behaves as it would in real time, without any real waiting.
 */
export class ManualClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #nextId = 1;

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Lets queued microtasks and promise chains run. */
  async flush(rounds = 20): Promise<void> {
    for (let i = 0; i < rounds; i++) await Promise.resolve();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Moves time forward by `ms`, firing timers as their time comes. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await this.flush();
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await this.flush();
    }
    this.#now = end;
    await this.flush();
  }

  /** Advances in steps until `test` holds or `maxMs` passes. */
  async runUntil(test: () => boolean, maxMs: number, stepMs = 10): Promise<void> {
    let waited = 0;
    while (!test() && waited < maxMs) {
      await this.advance(stepMs);
      waited += stepMs;
    }
  }
}
