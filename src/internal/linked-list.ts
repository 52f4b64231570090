/** One item's place in a `LinkedList`. */
export class ListNode<V> {
  prev: ListNode<V> | undefined = undefined;
  next: ListNode<V> | undefined = undefined;

  constructor(readonly value: V) {}
}

/**
 * A doubly linked list: O(1) add and remove through the node `push` returns,
 * insertion order kept.
 *
 * Why not a `Set` for items that come and go all the time (one per request):
 * V8 rebuilds a Set's hash table every few dozen deletions, and the table it
 * drops keeps pointing to its successor and to the items it held. Once the
 * dropped table sits in the old generation, those items (and all they reach:
 * a request's promise, its response, its headers) survive young collections
 * until the next full GC, so most of every request's garbage gets copied and
 * promoted (see bench/RESULTS.md, "HTTP ceiling"). A removed node's links are
 * cleared for the same reason: a dead node must not keep live ones reachable.
 */
export class LinkedList<V> {
  #head: ListNode<V> | undefined = undefined;
  #tail: ListNode<V> | undefined = undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(value: V): ListNode<V> {
    return this.pushNode(new ListNode(value));
  }

  /** Appends a node made by the caller (a subclass carrying more fields). */
  pushNode<N extends ListNode<V>>(node: N): N {
    node.prev = this.#tail;
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.#size++;
    return node;
  }

  /** Removes `node`, which must be in this list (once). */
  remove(node: ListNode<V>): void {
    const { prev, next } = node;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next === undefined) this.#tail = prev;
    else next.prev = prev;
    node.prev = undefined;
    node.next = undefined;
    this.#size--;
  }

  /** The values in insertion order, as an array (the list may change while the caller goes through it). */
  values(): V[] {
    const out: V[] = [];
    for (let node = this.#head; node !== undefined; node = node.next) out.push(node.value);
    return out;
  }
}
