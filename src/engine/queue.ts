/** A FIFO on a growable ring buffer. */
class Deque<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Slots allocated. */
  get capacity(): number {
    return this.#items.length;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }

  /** Inserts `item` just before the first item (from the head) for which `before` holds, else at the back. */
  insertBefore(item: T, before: (existing: T) => boolean): void {
    if (this.#size === this.#items.length) this.#grow();
    const mask = this.#items.length - 1;
    let k = 0;
    while (k < this.#size && !before(this.#items[(this.#head + k) & mask] as T)) k++;
    // Move the k items ahead of it one slot towards the front, then put it in the gap.
    this.#head = (this.#head - 1) & mask;
    for (let j = 0; j < k; j++) this.#items[(this.#head + j) & mask] = this.#items[(this.#head + j + 1) & mask];
    this.#items[(this.#head + k) & mask] = item;
    this.#size++;
  }

  /** The first item, left in place. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    return item;
  }

  *drain(): Generator<T> {
    while (this.#size > 0) yield this.shift() as T;
  }

  #grow(): void {
    const old = this.#items;
    const items: (T | undefined)[] = new Array(old.length * 2);
    for (let k = 0; k < this.#size; k++) items[k] = old[(this.#head + k) & (old.length - 1)];
    this.#items = items;
    this.#head = 0;
  }
}

export interface Queueable {
  /** Order of arrival: lower came first. */
  readonly id: number;
  priority: number;
  /** Set when the item was removed in place (aborted); the queue skips it. */
  cancelled: boolean;
}

/** An emptied bucket is kept only up to this many slots (a drained big queue gives its memory back). */
const KEEP_MAX_CAPACITY = 1024;

/**
 * Buckets of FIFOs by numeric priority, highest first. Removal is lazy: a
 * cancelled item stays in its bucket until it reaches the front, but stops
 * counting in `size` at once.
 */
export class PriorityQueue<T extends Queueable> {
  #buckets = new Map<number, Deque<T>>();
  /** Priorities with a bucket, highest first. */
  #order: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#bucket(item.priority).push(item);
    this.#size++;
  }

  /**
   * Puts an item back at the front of its priority (a 429'd task keeps its
   * place): ahead of everything that came after it, so that several sent back
   * at once keep their order.
   */
  unshift(item: T): void {
    this.#bucket(item.priority).insertBefore(item, (existing) => existing.id > item.id);
    this.#size++;
  }

  /** Marks a queued item as removed. */
  cancel(item: T): void {
    if (item.cancelled) return;
    item.cancelled = true;
    this.#size--;
  }

  shift(): T | undefined {
    while (this.#order.length > 0) {
      const priority = this.#order[0] as number;
      const bucket = this.#buckets.get(priority) as Deque<T>;
      const item = bucket.shift();
      if (bucket.size === 0) {
        if (this.#order.length === 1 && bucket.capacity <= KEEP_MAX_CAPACITY) {
          // The only bucket stays, empty, for the next push: a queue that keeps running empty (each
          // caller awaiting its task before scheduling the next) would otherwise build and drop a
          // bucket, its map entry and its place in the order for every task.
          if (item === undefined) return undefined;
        } else {
          this.#buckets.delete(priority);
          this.#order.shift();
        }
      }
      if (item === undefined) continue;
      if (item.cancelled) continue;
      this.#size--;
      return item;
    }
    return undefined;
  }

  /** The item `shift` would return, left in place (cancelled items at the front are dropped on the way). */
  peek(): T | undefined {
    for (const priority of this.#order) {
      const bucket = this.#buckets.get(priority) as Deque<T>;
      for (let item = bucket.peek(); item !== undefined; item = bucket.peek()) {
        if (!item.cancelled) return item;
        bucket.shift();
      }
    }
    return undefined;
  }

  /** Removes and returns every live item, marking each as cancelled. */
  *drain(): Generator<T> {
    for (const priority of this.#order) {
      for (const item of (this.#buckets.get(priority) as Deque<T>).drain()) {
        if (item.cancelled) continue;
        item.cancelled = true;
        yield item;
      }
    }
    this.#buckets.clear();
    this.#order = [];
    this.#size = 0;
  }

  #bucket(priority: number): Deque<T> {
    let bucket = this.#buckets.get(priority);
    if (bucket) return bucket;
    bucket = new Deque<T>();
    this.#buckets.set(priority, bucket);
    let i = 0;
    while (i < this.#order.length && (this.#order[i] as number) > priority) i++;
    this.#order.splice(i, 0, priority);
    return bucket;
  }
}

/** Which windows a queued item counts against: both, or the minute window only. */
export type Lane = 'daily' | 'minute';

/**
 * Two priority queues, one per lane: items that count against the daily
 * window, and items that count against the minute window only (a daily park
 * does not hold those). Across lanes, the higher priority goes first, then
 * the earlier arrival, as in one queue.
 */
export class LanedQueue<T extends Queueable & { lane: Lane }> {
  readonly #lanes: Record<Lane, PriorityQueue<T>> = { daily: new PriorityQueue<T>(), minute: new PriorityQueue<T>() };

  get size(): number {
    return this.#lanes.daily.size + this.#lanes.minute.size;
  }

  sizeOf(lane: Lane): number {
    return this.#lanes[lane].size;
  }

  push(item: T): void {
    this.#lanes[item.lane].push(item);
  }

  unshift(item: T): void {
    this.#lanes[item.lane].unshift(item);
  }

  cancel(item: T): void {
    this.#lanes[item.lane].cancel(item);
  }

  /** The lane whose first item goes next; with `dailyHeld`, only the minute lane is served. */
  next(dailyHeld: boolean): Lane | undefined {
    const minute = this.#lanes.minute.peek();
    if (dailyHeld) return minute ? 'minute' : undefined;
    const daily = this.#lanes.daily.peek();
    if (!daily || !minute) return daily ? 'daily' : minute ? 'minute' : undefined;
    if (daily.priority !== minute.priority) return daily.priority > minute.priority ? 'daily' : 'minute';
    return daily.id < minute.id ? 'daily' : 'minute';
  }

  shift(lane: Lane): T | undefined {
    return this.#lanes[lane].shift();
  }

  /** The first item of `lane`, left in place. */
  peek(lane: Lane): T | undefined {
    return this.#lanes[lane].peek();
  }

  /** Removes and returns every live item of `lane` (of both when omitted), marking each as cancelled. */
  *drain(lane?: Lane): Generator<T> {
    if (lane !== 'minute') yield* this.#lanes.daily.drain();
    if (lane !== 'daily') yield* this.#lanes.minute.drain();
  }
}
