/**
 * A binary min-heap of timed entries on a plain array, ordered by `due`, then
 * by `seq` (so entries due at the same time keep their insertion order).
 * Shared by the poll planner and the fake server's manual clock.
 */
export interface Timed {
  due: number;
  seq: number;
}

function less(a: Timed, b: Timed): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** Adds `entry`; `heap[0]` is always the earliest. */
export function heapPush<T extends Timed>(heap: T[], entry: T): void {
  heap.push(entry);
  let i = heap.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const parent = heap[p] as T;
    if (!less(entry, parent)) break;
    heap[i] = parent;
    i = p;
  }
  heap[i] = entry;
}

/** Removes the earliest entry (`heap[0]`). */
export function heapPop<T extends Timed>(heap: T[]): void {
  const last = heap.pop();
  if (!last || heap.length === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let best = last;
    let at = -1;
    const lv = heap[l];
    const rv = heap[r];
    if (lv && less(lv, best)) {
      best = lv;
      at = l;
    }
    if (rv && less(rv, best)) {
      best = rv;
      at = r;
    }
    if (at < 0) break;
    heap[i] = best;
    i = at;
  }
  heap[i] = last;
}
