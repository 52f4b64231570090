/**
 * The results of a run as an async iterator: results are buffered only while
 * someone iterates, and the run reads the buffer's length to hold back when
 * the consumer falls behind.
 */
import type { BatchResult } from './types.js';

export class ResultStream {
  #iterating = false;
  readonly #buffer: BatchResult[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;
  readonly #onConsumed: () => void;
  readonly #onReturn: () => Promise<unknown>;

  /**
   * @param onConsumed called when a result is taken or the buffer is dropped (the run may go on)
   * @param onReturn called when the consumer stops iterating before the end (the run stops)
   */
  constructor(onConsumed: () => void, onReturn: () => Promise<unknown>) {
    this.#onConsumed = onConsumed;
    this.#onReturn = onReturn;
  }

  /** Results waiting for the consumer. */
  get backlog(): number {
    return this.#iterating ? this.#buffer.length : 0;
  }

  push(result: BatchResult): void {
    if (!this.#iterating) return;
    this.#buffer.push(result);
    this.#wakeConsumer();
  }

  /** The run ended (with `error` when it could not start): the iterator finishes once the buffer is drained. */
  end(error?: unknown): void {
    this.#ended = true;
    if (error !== undefined) this.#error = error;
    this.#wakeConsumer();
  }

  iterator(): AsyncIterator<BatchResult> {
    if (this.#iterating) throw new TypeError('A batch can be iterated only once');
    this.#iterating = true;
    return {
      next: async (): Promise<IteratorResult<BatchResult>> => {
        for (;;) {
          const result = this.#buffer.shift();
          if (result !== undefined) {
            this.#onConsumed();
            return { value: result, done: false };
          }
          if (this.#error !== undefined) throw this.#error;
          if (this.#ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        }
      },
      return: async (): Promise<IteratorResult<BatchResult>> => {
        this.#iterating = false;
        this.#buffer.length = 0;
        this.#onConsumed();
        if (!this.#ended) await this.#onReturn();
        return { value: undefined, done: true };
      },
    };
  }

  #wakeConsumer(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
