// The prefix cache: a radix tree over token ids whose edges own the KV computed for their tokens,
// after SGLang's RadixCache (mem_cache/radix_cache.py). Four verbs: matchPrefix finds the longest
// cached prefix, insert adds a sequence, lock/unlock keep a prefix in use from being evicted, and
// evict drops least-recently-used unlocked leaves. The payload (the engine's per-layer KV for an
// edge) is opaque here: the cache only measures and splits it through the injected PayloadOps.

import TinyQueue from 'tinyqueue';
import { InvalidArgumentError } from './sampling-params.ts';

/** What the cache needs to know about a payload covering some run of consecutive tokens. */
export interface PayloadOps<P> {
  /** Memory the payload holds, counted against the cache's capacity. */
  bytes(payload: P): number;
  /** The payload's first `at` tokens and the rest, for a payload of n tokens and 0 < at < n. */
  split(payload: P, at: number): [P, P];
}

export interface RadixCacheOptions<P> {
  payload: PayloadOps<P>;
  /** Payload bytes kept once nothing is locked (the engine's --prefix-cache-size). */
  capacityBytes: number;
  /** Told of every evicted edge, whichever call evicted it (insert, unlock or evict). */
  onEvict?: (edge: EvictedEdge<P>) => void;
}

/**
 * A node of the tree, read-only outside this file. Handles returned by matchPrefix and insert are
 * nodes; a handle keeps naming the same token sequence until its node is evicted (splits keep the
 * lower half as the same object, and merges keep the child).
 */
export interface RadixNode<P> {
  readonly parent: RadixNode<P> | undefined;
  /** Tokens on the edge from the parent to this node; empty only for the root. */
  readonly edge: readonly number[];
  /** The edge's payloads in token order. Usually one; more after merges (see mergeIntoChild). */
  readonly payloads: readonly P[];
  readonly bytes: number;
  /** Children keyed by the first token of their edge. */
  readonly children: ReadonlyMap<number, RadixNode<P>>;
  /** Locks held on this node or any node below it. */
  readonly lockCount: number;
  /** Value of the cache's use counter when a match or insert last went through this node. */
  readonly lastUsed: number;
  /** A handle to this node was handed out, so it stays a node boundary until evicted. */
  readonly isHandle: boolean;
  readonly evicted: boolean;
}

export interface PrefixMatch<P> {
  /** Tokens of the query found in the cache, from the start. */
  length: number;
  /** Payloads covering tokens [0, length) in order. */
  payloads: P[];
  /** The node where the match ends (the root when length is 0): lock it while using the payloads. */
  node: RadixNode<P>;
}

/** A removed leaf edge: its tokens are sequence.slice(start). */
export interface EvictedEdge<P> {
  sequence: number[];
  start: number;
  payloads: P[];
  bytes: number;
}

export interface RadixCacheStats {
  queries: number;
  queriedTokens: number;
  hitTokens: number;
  evictedEdges: number;
  evictedTokens: number;
  evictedBytes: number;
}

/** A run of an edge's tokens with its payload; sizes are kept so a split needs no extra calls. */
interface Segment<P> {
  payload: P;
  tokens: number;
  bytes: number;
}

class Node<P> implements RadixNode<P> {
  children = new Map<number, Node<P>>();
  lockCount = 0;
  /** Locks taken on this very node: unlock must match one, or counts above would drift. */
  ownLocks = 0;
  isHandle = false;
  evicted = false;

  constructor(
    public parent: Node<P> | undefined,
    public edge: number[],
    public segments: Segment<P>[],
    public lastUsed: number,
  ) {}

  get payloads(): P[] {
    return this.segments.map((s) => s.payload);
  }

  get bytes(): number {
    return sumBytes(this.segments);
  }
}

export class RadixCache<P> {
  readonly capacityBytes: number;
  private readonly ops: PayloadOps<P>;
  private readonly onEvict: ((edge: EvictedEdge<P>) => void) | undefined;
  private root!: Node<P>;
  private clock = 0;
  private total = 0;
  private locked = 0;
  private nodes = 0;
  private counters: RadixCacheStats = {
    queries: 0,
    queriedTokens: 0,
    hitTokens: 0,
    evictedEdges: 0,
    evictedTokens: 0,
    evictedBytes: 0,
  };

  constructor(options: RadixCacheOptions<P>) {
    const capacity = options.capacityBytes;
    checkByteCount('capacityBytes', capacity);
    if (typeof options.payload?.bytes !== 'function' || typeof options.payload?.split !== 'function') {
      throw new InvalidArgumentError('payload', 'payload must have bytes(p) and split(p, at) functions');
    }
    this.capacityBytes = capacity;
    this.ops = options.payload;
    this.onEvict = options.onEvict;
    this.reset();
  }

  get totalBytes(): number {
    return this.total;
  }
  get lockedBytes(): number {
    return this.locked;
  }
  /** Nodes other than the root. */
  get nodeCount(): number {
    return this.nodes;
  }
  get stats(): RadixCacheStats {
    return { ...this.counters };
  }
  get rootNode(): RadixNode<P> {
    return this.root;
  }

  /** Drops every entry, locked or not; handles from before (the root too) count as evicted. Stats are kept. */
  reset(): void {
    if (this.root) [this.root, ...descendants(this.root)].forEach(detach);
    this.root = new Node<P>(undefined, [], [], 0);
    this.total = 0;
    this.locked = 0;
    this.nodes = 0;
  }

  /**
   * The longest cached prefix of `tokens`. When it ends inside an edge, that edge is split so the
   * match ends on a node, which can then be locked. Marks the path as used.
   */
  matchPrefix(tokens: readonly number[]): PrefixMatch<P> {
    checkTokens(tokens);
    const { node, length, payloads } = this.descend(tokens, this.tick());
    if (node !== this.root) node.isHandle = true;
    this.counters.queries += 1;
    this.counters.queriedTokens += tokens.length;
    this.counters.hitTokens += length;
    return { length, payloads, node };
  }

  /**
   * Caches `tokens`, asking `payloadFor` only for the part not cached yet, tokens [start, end).
   * Marks the path as used, then evicts back to capacity. Older leaves go first; what was just
   * inserted goes too if it cannot fit beside the locked entries (canFit tells beforehand), so
   * check `evicted` on the returned node before locking it.
   */
  insert(tokens: readonly number[], payloadFor: (start: number, end: number) => P): RadixNode<P> {
    checkTokens(tokens);
    if (typeof payloadFor !== 'function') {
      throw new InvalidArgumentError('payloadFor', 'payloadFor must be a function (start, end) => payload');
    }
    const stamp = this.tick();
    let { node, length } = this.descend(tokens, stamp);
    if (length < tokens.length) {
      const segment = this.segmentOf(payloadFor(length, tokens.length), tokens.length - length);
      const leaf = new Node<P>(node, tokens.slice(length), [segment], stamp);
      node.children.set(tokens[length], leaf);
      this.total += segment.bytes;
      this.nodes += 1;
      node = leaf;
    }
    if (node !== this.root) node.isHandle = true;
    this.evictWhile(() => this.total > this.capacityBytes);
    return node;
  }

  /** Protects the node and its ancestors from eviction until the matching unlock. */
  lock(handle: RadixNode<P>): void {
    const node = this.own(handle, 'node');
    node.isHandle = true; // a locked node must never be merged away under its holder
    node.ownLocks += 1;
    // The root is counted too (it holds no bytes): its count is the number of locks outstanding.
    for (let n: Node<P> | undefined = node; n; n = n.parent) {
      if (n.lockCount === 0) this.locked += n.bytes;
      n.lockCount += 1;
    }
  }

  /** Releases one lock; if that leaves the cache over capacity, evicts back down to it. */
  unlock(handle: RadixNode<P>): void {
    const node = this.own(handle, 'node');
    if (node.ownLocks === 0) {
      throw new InvalidArgumentError('node', 'unlock without a matching lock on this node');
    }
    node.ownLocks -= 1;
    for (let n: Node<P> | undefined = node; n; n = n.parent) {
      n.lockCount -= 1;
      if (n.lockCount === 0) this.locked -= n.bytes;
    }
    this.evictWhile(() => this.total > this.capacityBytes);
  }

  /**
   * Evicts least-recently-used unlocked leaves (a parent left childless becomes a leaf in turn)
   * until at least `targetBytes` are freed and the total is within capacity, or nothing unlocked
   * is left. Returns the evicted edges in eviction order.
   */
  evict(targetBytes = 0): EvictedEdge<P>[] {
    checkByteCount('targetBytes', targetBytes);
    let freed = 0;
    return this.evictWhile(
      () => this.total > this.capacityBytes || freed < targetBytes,
      (edge) => {
        freed += edge.bytes;
      },
    );
  }

  /**
   * Whether `newBytes` more would be kept once everything evictable is gone, when attached below
   * `under` (the node a match for the sequence ended on; the root if omitted). Locked entries stay,
   * and so do the unlocked nodes on the path from `under` up, which the new leaf keeps alive.
   */
  canFit(newBytes: number, under?: RadixNode<P>): boolean {
    checkByteCount('newBytes', newBytes);
    let kept = this.locked + newBytes;
    const start = under === undefined ? this.root : this.own(under, 'under');
    for (let n: Node<P> | undefined = start; n; n = n.parent) {
      if (n.lockCount === 0) kept += n.bytes;
    }
    return kept <= this.capacityBytes;
  }

  /** All tokens from the root to the end of the node's edge. */
  private sequenceOf(node: Node<P>): number[] {
    const edges: (readonly number[])[] = [];
    for (let n: Node<P> | undefined = node; n; n = n.parent) edges.push(n.edge);
    return edges.reverse().flat();
  }

  private tick(): number {
    this.clock += 1;
    return this.clock;
  }

  /** Walks down along `tokens`, splitting the edge where the walk stops inside one, and stamps the path. */
  private descend(tokens: readonly number[], stamp: number): { node: Node<P>; length: number; payloads: P[] } {
    let node = this.root;
    let length = 0;
    const payloads: P[] = [];
    node.lastUsed = stamp;
    while (length < tokens.length) {
      const child = node.children.get(tokens[length]);
      if (!child) break;
      const common = commonPrefixLength(child.edge, tokens, length);
      node = common < child.edge.length ? this.splitNode(child, common) : child;
      node.lastUsed = stamp;
      for (const s of node.segments) payloads.push(s.payload);
      length += common;
      if (node !== child) break; // the walk stopped inside the old edge
    }
    return { node, length, payloads };
  }

  /** Cuts the node's edge after `at` tokens; returns the new upper node. The lower half stays `node`. */
  private splitNode(node: Node<P>, at: number): Node<P> {
    const parent = node.parent!;
    const [upperSegments, lowerSegments] = this.splitSegments(node.segments, at);
    const before = node.bytes;
    const upper = new Node<P>(parent, node.edge.slice(0, at), upperSegments, node.lastUsed);
    upper.lockCount = node.lockCount; // every lock below passes through the upper half too
    upper.children.set(node.edge[at], node);
    parent.children.set(node.edge[0], upper);
    node.parent = upper;
    node.edge = node.edge.slice(at);
    node.segments = lowerSegments;
    // Sizes may not add up exactly after a split (e.g. per-payload overheads): keep totals true.
    const delta = upper.bytes + node.bytes - before;
    this.total += delta;
    if (node.lockCount > 0) this.locked += delta;
    this.nodes += 1;
    return upper;
  }

  private splitSegments(segments: Segment<P>[], at: number): [Segment<P>[], Segment<P>[]] {
    let offset = 0;
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      if (offset + s.tokens <= at) {
        offset += s.tokens;
        if (offset === at) return [segments.slice(0, i + 1), segments.slice(i + 1)];
        continue;
      }
      const k = at - offset;
      const parts = this.ops.split(s.payload, k);
      if (!Array.isArray(parts) || parts.length !== 2) {
        throw new InvalidArgumentError('payload.split', 'payload.split must return [first, rest]');
      }
      const first = this.segmentOf(parts[0], k);
      const rest = this.segmentOf(parts[1], s.tokens - k);
      return [
        [...segments.slice(0, i), first],
        [rest, ...segments.slice(i + 1)],
      ];
    }
    throw new Error(`split point ${at} is past the edge's payloads`); // unreachable: at < edge length
  }

  private segmentOf(payload: P, tokens: number): Segment<P> {
    const bytes = this.ops.bytes(payload);
    if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) {
      throw new InvalidArgumentError('payload.bytes', `payload.bytes must return a finite number >= 0, got ${String(bytes)}`);
    }
    return { payload, tokens, bytes };
  }

  /** Evicts LRU unlocked leaves while `more()` holds and one is left. */
  private evictWhile(more: () => boolean, onEach?: (edge: EvictedEdge<P>) => void): EvictedEdge<P>[] {
    const evicted: EvictedEdge<P>[] = [];
    if (!more()) return evicted; // the common case: skip collecting the leaves
    // A scan per eviction round instead of a maintained leaf set: rounds are rare next to matches.
    const leaves = [...descendants(this.root)].filter((n) => n.children.size === 0 && n.lockCount === 0);
    const queue = new TinyQueue(leaves, (a, b) => a.lastUsed - b.lastUsed);
    while (queue.length > 0 && more()) {
      const leaf = queue.pop()!;
      const parent = leaf.parent!;
      const edge = this.removeLeaf(leaf);
      if (parent !== this.root) {
        if (parent.children.size === 0 && parent.lockCount === 0) queue.push(parent);
        else if (parent.children.size === 1 && !parent.isHandle) this.mergeIntoChild(parent);
      }
      evicted.push(edge);
      onEach?.(edge);
      this.onEvict?.(edge); // last, so the tree is whole even if the listener throws
    }
    return evicted;
  }

  private removeLeaf(leaf: Node<P>): EvictedEdge<P> {
    const sequence = this.sequenceOf(leaf);
    const edge: EvictedEdge<P> = {
      sequence,
      start: sequence.length - leaf.edge.length,
      payloads: leaf.payloads,
      bytes: leaf.bytes,
    };
    leaf.parent!.children.delete(leaf.edge[0]);
    this.total -= edge.bytes;
    this.nodes -= 1;
    this.counters.evictedEdges += 1;
    this.counters.evictedTokens += leaf.edge.length;
    this.counters.evictedBytes += edge.bytes;
    detach(leaf);
    return edge;
  }

  /**
   * Folds a branch point left with one child into that child, so the tree stays a radix tree and
   * later matches walk fewer nodes. Only for nodes no handle names (a handle's node must stay a
   * boundary). Payloads are concatenated as lists, never copied; that is why an edge has a list.
   * The child keeps its own lastUsed: when its deepest tokens were last used, which is what LRU
   * should weigh; the parent's newer stamp came from the sibling just evicted.
   */
  private mergeIntoChild(node: Node<P>): void {
    const [child] = node.children.values();
    const grandparent = node.parent!;
    child.edge = node.edge.concat(child.edge);
    child.segments = node.segments.concat(child.segments);
    child.parent = grandparent;
    grandparent.children.set(child.edge[0], child);
    // lockCount is equal on both (no handle names `node`, so every lock on it comes through the
    // child), so totals and locked bytes are unchanged.
    this.nodes -= 1;
    detach(node);
  }

  /** The internal node behind a handle, if it is alive and belongs to this cache. */
  private own(handle: RadixNode<P>, field: string): Node<P> {
    if (!(handle instanceof Node)) {
      throw new InvalidArgumentError(field, `${field} must be a node returned by matchPrefix or insert`);
    }
    if (handle.evicted) throw new InvalidArgumentError(field, `${field} is no longer cached (evicted or reset)`);
    let n: Node<P> = handle;
    while (n.parent) n = n.parent;
    if (n !== this.root) throw new InvalidArgumentError(field, `${field} belongs to another cache`);
    return handle;
  }
}

function* descendants<P>(root: Node<P>): Generator<Node<P>> {
  const stack = [...root.children.values()];
  while (stack.length > 0) {
    const node = stack.pop()!;
    yield node;
    stack.push(...node.children.values());
  }
}

/** Cuts a removed node loose so a stale handle cannot keep payloads or the tree alive. */
function detach<P>(node: Node<P>): void {
  node.evicted = true;
  node.parent = undefined;
  node.segments = [];
  node.children = new Map();
}

function sumBytes<P>(segments: Segment<P>[]): number {
  let bytes = 0;
  for (const s of segments) bytes += s.bytes;
  return bytes;
}

function commonPrefixLength(edge: readonly number[], tokens: readonly number[], from: number): number {
  let i = 0;
  while (i < edge.length && from + i < tokens.length && edge[i] === tokens[from + i]) i++;
  return i;
}

function checkTokens(tokens: readonly number[]): void {
  if (!Array.isArray(tokens)) throw new InvalidArgumentError('tokens', 'tokens must be an array of token ids');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isSafeInteger(t) || t < 0) {
      throw new InvalidArgumentError('tokens', `tokens[${i}] must be an integer >= 0, got ${String(t)}`);
    }
  }
}

function checkByteCount(field: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(field, `${field} must be a finite number of bytes >= 0, got ${String(value)}`);
  }
}
