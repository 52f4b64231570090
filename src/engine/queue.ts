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

/**
 * Which windows a queued item counts against, and what it leaves: both
 * windows, leaving daily units for others (`kept`); both (`daily`); the
 * minute window only (`minute`).
 */
export type Lane = 'kept' | 'daily' | 'minute';

/** The lanes from the most held to the least: a day that holds one holds those before it too. */
export const LANES: readonly Lane[] = ['kept', 'daily', 'minute'];

/**
 * One priority queue per lane. The daily window may hold a lane while the
 * later ones go on: what it keeps units for (`kept` waits, the rest may use
 * them), what it does not count (`minute` goes on while the day is spent).
 * Across lanes, the higher priority goes first, then the earlier arrival, as
 * in one queue.
 */
export class LanedQueue<T extends Queueable & { lane: Lane }> {
  readonly #lanes: Record<Lane, PriorityQueue<T>> = {
    kept: new PriorityQueue<T>(),
    daily: new PriorityQueue<T>(),
    minute: new PriorityQueue<T>(),
  };

  get size(): number {
    return this.#lanes.kept.size + this.#lanes.daily.size + this.#lanes.minute.size;
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

  /** The lane whose first item goes next, among `LANES[from]` and those after it (the ones before are held). */
  next(from = 0): Lane | undefined {
    let lane: Lane | undefined;
    let head: T | undefined;
    for (let i = from; i < LANES.length; i++) {
      const l = LANES[i] as Lane;
      const first = this.#lanes[l].peek();
      if (first && (!head || first.priority > head.priority || (first.priority === head.priority && first.id < head.id))) {
        lane = l;
        head = first;
      }
    }
    return lane;
  }

  /** Whether a lane after `lane` has items. */
  hasAfter(lane: Lane): boolean {
    for (let i = LANES.indexOf(lane) + 1; i < LANES.length; i++) if (this.#lanes[LANES[i] as Lane].size > 0) return true;
    return false;
  }

  /** The first live item of `lane`, left in place. */
  peek(lane: Lane): T | undefined {
    return this.#lanes[lane].peek();
  }

  shift(lane: Lane): T | undefined {
    return this.#lanes[lane].shift();
  }

  /** Removes and returns every live item (of the lanes the daily window counts with `daily`), marking each as cancelled. */
  *drain(which?: 'daily'): Generator<T> {
    yield* this.#lanes.kept.drain();
    yield* this.#lanes.daily.drain();
    if (which !== 'daily') yield* this.#lanes.minute.drain();
  }
}

/**
 * One `LanedQueue` per budget scope. Scopes are served in turn (`inTurn`
 * starts one further on each call), so that one scope's backlog does not
 * keep another's tasks from the slots; within a scope, priority and arrival
 * order hold as in one queue. An item is in the scope it asked for
 * (`item.scope`) unless `rescope` moved it (kept here, off the item: the
 * common item carries no field for it).
 */
export class ScopedQueue<T extends Queueable & { lane: Lane; readonly scope: string }> {
  readonly #scopes = new Map<string, LanedQueue<T>>();
  /** Items `rescope` moved, and where. */
  readonly #moved = new WeakMap<T, string>();
  /** Every `rescope` mapping so far: items that come back to the queue (`requeue`) move as queued ones did. */
  readonly #mappings: ((item: T, scope: string) => string | undefined)[] = [];
  /** The scopes, in the order they were first used. */
  readonly #order: string[] = [];
  #turn = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The queue of `scope`, created on first use. */
  of(scope: string): LanedQueue<T> {
    let queue = this.#scopes.get(scope);
    if (!queue) {
      queue = new LanedQueue<T>();
      this.#scopes.set(scope, queue);
      this.#order.push(scope);
    }
    return queue;
  }

  /** The scope `item` draws from now. */
  scopeOf(item: T): string {
    return this.#moved.get(item) ?? item.scope;
  }

  push(item: T): void {
    this.of(this.scopeOf(item)).push(item);
    this.#size++;
  }

  unshift(item: T): void {
    this.of(this.scopeOf(item)).unshift(item);
    this.#size++;
  }

  /** Puts back an item that left the queue (a 429, a retry), in the scope the `rescope` mappings so far give it. */
  requeue(item: T, front: boolean): void {
    if (this.#mappings.length > 0) {
      let scope = this.scopeOf(item);
      for (const to of this.#mappings) scope = to(item, scope) ?? scope;
      this.#move(item, scope);
    }
    if (front) this.unshift(item);
    else this.push(item);
  }

  cancel(item: T): void {
    if (item.cancelled) return;
    this.of(this.scopeOf(item)).cancel(item);
    this.#size--;
  }

  shift(scope: string, lane: Lane): T | undefined {
    const item = this.of(scope).shift(lane);
    if (item !== undefined) this.#size--;
    return item;
  }

  /** Every scope used so far, in the order of first use. */
  scopes(): readonly string[] {
    return this.#order;
  }

  /** Every scope used so far, starting one further than the previous call. */
  inTurn(): string[] {
    const n = this.#order.length;
    if (n <= 1) return this.#order;
    const start = this.#turn++ % n;
    return [...this.#order.slice(start), ...this.#order.slice(0, start)];
  }

  /**
   * Moves queued items to other scopes: `to` returns an item's new scope
   * (undefined: it stays); items put back later with `requeue` go through
   * `to` too. Each scope's items keep their order (priority, then arrival).
   * Returns how many queued items moved.
   */
  rescope(to: (item: T, scope: string) => string | undefined): number {
    this.#mappings.push(to);
    const items = [...this.drain()].sort((a, b) => a.id - b.id);
    let moved = 0;
    for (const item of items) {
      item.cancelled = false;
      const from = this.scopeOf(item);
      const scope = to(item, from);
      if (scope !== undefined && scope !== from) {
        this.#move(item, scope);
        moved++;
      }
      this.push(item);
    }
    return moved;
  }

  #move(item: T, scope: string): void {
    if (scope === item.scope) this.#moved.delete(item);
    else this.#moved.set(item, scope);
  }

  /** Removes and returns every live item (of `scope` and `lane` when given), marking each as cancelled. */
  *drain(which?: 'daily', scope?: string): Generator<T> {
    for (const name of scope === undefined ? [...this.#order] : [scope]) {
      for (const item of this.of(name).drain(which)) {
        this.#size--;
        yield item;
      }
    }
  }
}
