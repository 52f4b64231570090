/**
 * A growable ring buffer of numbers (timestamps). O(1) amortized push and
 * shift, O(1) random access from the front. Backs the sliding-log window.
 */
export class NumberDeque {
  #buf: Float64Array;
  #head = 0;
  #size = 0;

  constructor(capacity = 16) {
    this.#buf = new Float64Array(Math.max(2, capacity));
  }

  get size(): number {
    return this.#size;
  }

  push(value: number): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) % this.#buf.length] = value;
    this.#size++;
  }

  /** Removes and returns the front value; undefined when empty. */
  shift(): number | undefined {
    if (this.#size === 0) return undefined;
    const value = this.#buf[this.#head];
    this.#head = (this.#head + 1) % this.#buf.length;
    this.#size--;
    return value;
  }

  /** The i-th value from the front (0 = oldest); undefined when out of range. */
  at(i: number): number | undefined {
    if (i < 0 || i >= this.#size) return undefined;
    return this.#buf[(this.#head + i) % this.#buf.length];
  }

  clear(): void {
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const next = new Float64Array(this.#buf.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = this.#buf[(this.#head + i) % this.#buf.length] ?? 0;
    this.#buf = next;
    this.#head = 0;
  }
}
