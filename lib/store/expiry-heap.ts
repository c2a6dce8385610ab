/**
 * An indexed binary min-heap of records by expiry key: each node knows its
 * slot, so removing any node, or re-filing it under an earlier key, costs
 * O(log n) without a search.
 *
 * ```
 *             nodes[0] = soonest key
 *            /                  \
 *       nodes[1]              nodes[2]       node.heapIndex = its slot (-1 once out)
 *       /      \              /      \       node.heapKey   = what it is filed under
 *   nodes[3] nodes[4]    nodes[5] nodes[6]
 * ```
 *
 * The memory store files each of its own records under a key that is never
 * after its real expiry: an extension is re-filed lazily when the record
 * reaches the top ({@link ExpiryHeap.topRaised}), a move to an earlier
 * expiry at once ({@link ExpiryHeap.keyLowered}).
 *
 * @module
 */

/** A node of an {@link ExpiryHeap}: its key and its slot, kept by the heap. */
export interface HeapNode {
  /** The key the node is filed under. */
  heapKey: number;
  /** The node's slot in the heap, or -1 when it is not in it. */
  heapIndex: number;
}

/** See the module documentation. */
export class ExpiryHeap<T extends HeapNode> {
  readonly #nodes: T[] = [];

  /** Nodes filed. */
  get size(): number {
    return this.#nodes.length;
  }

  /** The node with the smallest key, or undefined when empty. */
  peek(): T | undefined {
    return this.#nodes[0];
  }

  /** Files `node` under its `heapKey`. */
  push(node: T): void {
    node.heapIndex = this.#nodes.length;
    this.#nodes.push(node);
    this.#siftUp(node.heapIndex);
  }

  /** Takes `node` out (a no-op when it is not in the heap). */
  remove(node: T): void {
    const nodes = this.#nodes;
    const i = node.heapIndex;
    if (i < 0) return;
    node.heapIndex = -1;
    const last = nodes.pop()!;
    if (i === nodes.length) return;
    nodes[i] = last;
    last.heapIndex = i;
    this.#siftUp(i);
    this.#siftDown(last.heapIndex);
  }

  /** `node`'s `heapKey` was lowered: moves it up to its place. */
  keyLowered(node: T): void {
    if (node.heapIndex >= 0) this.#siftUp(node.heapIndex);
  }

  /** The top node's `heapKey` was raised: moves it down to its place. */
  topRaised(): void {
    if (this.#nodes.length > 0) this.#siftDown(0);
  }

  /** Removes every node (their `heapIndex` is left as it was: the nodes are dropped with the heap). */
  clear(): void {
    this.#nodes.length = 0;
  }

  #siftUp(i: number): void {
    const nodes = this.#nodes;
    const r = nodes[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = nodes[p]!;
      if (parent.heapKey <= r.heapKey) break;
      nodes[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    nodes[i] = r;
    r.heapIndex = i;
  }

  #siftDown(i: number): void {
    const nodes = this.#nodes;
    const n = nodes.length;
    const r = nodes[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const rr = l + 1;
      const c = rr < n && nodes[rr]!.heapKey < nodes[l]!.heapKey ? rr : l;
      const child = nodes[c]!;
      if (child.heapKey >= r.heapKey) break;
      nodes[i] = child;
      child.heapIndex = i;
      i = c;
    }
    nodes[i] = r;
    r.heapIndex = i;
  }
}
