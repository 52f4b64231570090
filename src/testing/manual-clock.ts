/**
 * A hand-driven `Clock` for deterministic tests: time moves only through
 * `set`/`advance`, and timers fire synchronously, in due order, while it moves.
 */
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
    this.#push(timer);
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
      this.#pop();
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

  #less(a: Timer, b: Timer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  #push(timer: Timer): void {
    const h = this.#heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as Timer;
      if (!this.#less(timer, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = timer;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = last;
      let at = -1;
      const lt = h[l];
      const rt = h[r];
      if (lt && this.#less(lt, smallest)) {
        smallest = lt;
        at = l;
      }
      if (rt && this.#less(rt, smallest)) {
        smallest = rt;
        at = r;
      }
      if (at < 0) break;
      h[i] = smallest;
      i = at;
    }
    h[i] = last;
  }
}
