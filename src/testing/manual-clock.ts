/**
 * A hand-driven `Clock` for deterministic tests: time moves only through
 * `set`/`advance`, and timers fire synchronously, in due order, while it moves.
 */
import { heapPop, heapPush } from '../internal/min-heap.js';
import type { Clock, TimerHandle } from '../internal/clock.js';

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #heap: Timer[] = [];

  /** @param start the initial time, ms since the epoch. @default 0 */
  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    heapPush(this.#heap, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle && typeof handle === 'object' && 'cancelled' in handle) (handle as Timer).cancelled = true;
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (each sees `now()` = its due time). */
  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  /**
   * Sets the time. Moving forward fires the timers due up to `t`; moving
   * backward fires nothing.
   */
  set(t: number): void {
    for (;;) {
      const top = this.#heap[0];
      if (!top || top.due > t) break;
      heapPop(this.#heap);
      if (top.cancelled) continue;
      if (top.due > this.#now) this.#now = top.due;
      top.fn();
    }
    this.#now = t;
  }

  /** Fires every pending timer (and those they schedule), up to `limit` of them. */
  runAll(limit = 10_000): void {
    for (let i = 0; i < limit; i++) {
      const top = this.#heap[0];
      if (!top) return;
      this.set(Math.max(this.#now, top.due));
    }
  }
}
