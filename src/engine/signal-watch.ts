/**
 * The unsettled tasks of each caller's signal, behind one listener per signal.
 */
import { LinkedList, ListNode } from '../internal/linked-list.js';
import type { Entry } from './task.js';

/** Listener options for the caller's signal, shared: one object instead of one per task. */
const ONCE = { once: true } as const;

/** A task's place in its signal's watch. */
export class WatchNode extends ListNode<Entry> {
  constructor(
    entry: Entry,
    readonly watch: SignalWatch,
  ) {
    super(entry);
  }
}

/**
 * The unsettled tasks of one caller's signal, behind a single listener on it.
 * Tasks often share a signal (a client's close signal, a batch's stop
 * signal): a listener per task would walk Node's listener list on every add
 * and remove (linear in the tasks already listening) and keep a listener
 * record alive per task. The watch leaves the signal when its last task settles.
 */
export class SignalWatch {
  readonly #entries = new LinkedList<Entry>();
  readonly #registry: Map<AbortSignal, SignalWatch>;
  readonly #listener: () => void;
  #closed = false;

  constructor(
    readonly signal: AbortSignal,
    registry: Map<AbortSignal, SignalWatch>,
    onAbort: (entry: Entry, signal: AbortSignal) => void,
  ) {
    this.#registry = registry;
    this.#listener = () => {
      this.#close();
      // A copy: settling a task removes it from the list.
      for (const entry of this.#entries.values()) onAbort(entry, signal);
    };
    signal.addEventListener('abort', this.#listener, ONCE);
    registry.set(signal, this);
  }

  add(entry: Entry): WatchNode {
    return this.#entries.pushNode(new WatchNode(entry, this));
  }

  remove(node: WatchNode): void {
    this.#entries.remove(node);
    if (this.#entries.size === 0) this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.signal.removeEventListener('abort', this.#listener);
    if (this.#registry.get(this.signal) === this) this.#registry.delete(this.signal);
  }
}
