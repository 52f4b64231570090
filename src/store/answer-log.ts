/** A growable ring of (sentAt, recvAt) pairs for answered requests, in answer order. */
export class AnswerLog {
  static from(entries: readonly (readonly [number, number])[]): AnswerLog {
    const log = new AnswerLog();
    for (const [sentAt, recvAt] of entries) log.push(sentAt, recvAt);
    return log;
  }

  #sent = new Float64Array(64);
  #recv = new Float64Array(64);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(sentAt: number, recvAt: number): void {
    if (this.#size === this.#sent.length) this.#grow();
    const i = (this.#head + this.#size) % this.#sent.length;
    this.#sent[i] = sentAt;
    this.#recv[i] = recvAt;
    this.#size++;
  }

  /** recvAt of the oldest entry; Infinity when empty. */
  peekRecv(): number {
    return this.#size === 0 ? Infinity : (this.#recv[this.#head] as number);
  }

  shift(): void {
    this.#head = (this.#head + 1) % this.#sent.length;
    this.#size--;
  }

  /** Keeps, of the newest `n` entries, those sent after `sentAfter` (in their order); drops the rest. */
  keepNewest(n: number, sentAfter: number): void {
    while (this.#size > Math.max(0, n)) this.shift();
    const kept = this.toJSON().filter(([sentAt]) => sentAt > sentAfter);
    if (kept.length === this.#size) return;
    this.clear();
    for (const [sentAt, recvAt] of kept) this.push(sentAt, recvAt);
  }

  clear(): void {
    this.#head = 0;
    this.#size = 0;
  }

  /** Entries sent after `sentAfter` and answered before `recvBefore`. */
  count(sentAfter: number, recvBefore: number): number {
    let n = 0;
    const cap = this.#sent.length;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      if ((this.#sent[i] as number) > sentAfter && (this.#recv[i] as number) < recvBefore) n++;
    }
    return n;
  }

  /** The entries, oldest first, as [sentAt, recvAt] pairs. */
  toJSON(): [number, number][] {
    const out: [number, number][] = [];
    const cap = this.#sent.length;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      out.push([this.#sent[i] as number, this.#recv[i] as number]);
    }
    return out;
  }

  #grow(): void {
    const cap = this.#sent.length;
    const sent = new Float64Array(cap * 2);
    const recv = new Float64Array(cap * 2);
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#head + k) % cap;
      sent[k] = this.#sent[i] as number;
      recv[k] = this.#recv[i] as number;
    }
    this.#sent = sent;
    this.#recv = recv;
    this.#head = 0;
  }
}
