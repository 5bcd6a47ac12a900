// RadixCache checked against a naive model: the set of cached token prefixes, each with the counter
// value of its last use. Random command sequences over a three-token alphabet (so prefixes are
// shared and edges split often) and capacities of a few dozen bytes (so eviction runs often).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RadixCache, type EvictedEdge, type PayloadOps, type RadixNode } from '../src/engine/radix-cache.ts';
import { InvalidArgumentError } from '../src/engine/sampling-params.ts';

/** A payload that records which token positions it was made for, so splits can be checked. */
interface Span {
  start: number;
  tokens: number[];
}

/** Token t weighs t + 1 bytes: sizes differ per token, so misattributed bytes show up. */
const tokenBytes = (t: number) => t + 1;
const bytesOf = (tokens: readonly number[]) => tokens.reduce((sum, t) => sum + tokenBytes(t), 0);

const spanOps: PayloadOps<Span> = {
  bytes: (p) => bytesOf(p.tokens),
  split: (p, at) => {
    assert.ok(at > 0 && at < p.tokens.length, `split at ${at} of a ${p.tokens.length}-token payload`);
    return [
      { start: p.start, tokens: p.tokens.slice(0, at) },
      { start: p.start + at, tokens: p.tokens.slice(at) },
    ];
  },
};

const spanFor =
  (seq: readonly number[]) =>
  (start: number, end: number): Span => ({
    start,
    tokens: seq.slice(start, end),
  });

/** The payloads cover positions [from, to) of `seq` in order, with exactly its tokens. */
function assertCovers(payloads: readonly Span[], seq: readonly number[], from: number, to: number) {
  let at = from;
  for (const p of payloads) {
    assert.equal(p.start, at, 'payloads are contiguous');
    assert.ok(p.tokens.length > 0, 'no empty payload');
    assert.deepEqual(p.tokens, seq.slice(at, at + p.tokens.length), 'payload tokens match positions');
    at += p.tokens.length;
  }
  assert.equal(at, to, 'payloads end where expected');
}

const key = (seq: readonly number[]) => seq.join(',');
const ALPHABET = [0, 1, 2];

interface ModelHandle {
  seq: number[];
  node: RadixNode<Span>;
  locks: number;
  dead: boolean;
}

type EvictionGoal = (totalBytes: number, freed: number) => boolean;

class Model {
  /** Every cached prefix (length >= 1) by key: its last token and when it was last used. */
  cached = new Map<string, { token: number; used: number }>();
  clock = 0;
  handles: ModelHandle[] = [];
  stats = { queries: 0, queriedTokens: 0, hitTokens: 0 };
  /** While a command may evict: whether more eviction is still called for. */
  goal: EvictionGoal | undefined;
  freed = 0;
  seenEvictions: EvictedEdge<Span>[] = [];

  constructor(readonly capacity: number) {}

  tick() {
    return ++this.clock;
  }

  bytes() {
    let sum = 0;
    for (const { token } of this.cached.values()) sum += tokenBytes(token);
    return sum;
  }

  longestCachedPrefix(seq: readonly number[]) {
    let n = 0;
    while (n < seq.length && this.cached.has(key(seq.slice(0, n + 1)))) n++;
    return n;
  }

  use(seq: readonly number[], length: number) {
    const used = this.tick();
    for (let i = 1; i <= length; i++) this.cached.set(key(seq.slice(0, i)), { token: seq[i - 1], used });
  }

  extensions(k: string) {
    return ALPHABET.map((t) => (k === '' ? `${t}` : `${k},${t}`)).filter((e) => this.cached.has(e));
  }

  /** Prefixes some locked handle goes through: these must never be evicted. */
  protectedKeys() {
    const keys = new Set<string>();
    for (const h of this.handles) {
      if (h.locks === 0) continue;
      for (let i = 1; i <= h.seq.length; i++) keys.add(key(h.seq.slice(0, i)));
    }
    return keys;
  }

  unprotectedLeaves() {
    const protectedKeys = this.protectedKeys();
    return [...this.cached.keys()].filter((k) => this.extensions(k).length === 0 && !protectedKeys.has(k));
  }

  expectEvictions(goal: EvictionGoal) {
    this.goal = goal;
    this.freed = 0;
    this.seenEvictions = [];
  }

  /** Checks one eviction reported by the cache is legal, then applies it. */
  evicted(edge: EvictedEdge<Span>) {
    assert.ok(this.goal, 'eviction only happens in insert, unlock and evict');
    assert.ok(this.goal(this.bytes(), this.freed), 'evicted although the goal was already met');
    const { sequence: seq, start } = edge;
    assert.ok(start >= 0 && start < seq.length, 'evicted edge is not empty');
    const leafKey = key(seq);
    for (let i = start + 1; i <= seq.length; i++) {
      const k = key(seq.slice(0, i));
      assert.ok(this.cached.has(k), `evicted position ${k} was cached`);
      const next = this.extensions(k);
      const expected = i < seq.length ? [key(seq.slice(0, i + 1))] : [];
      assert.deepEqual(next, expected, 'an evicted edge is a leaf chain without branches');
    }
    assert.ok(!this.protectedKeys().has(key(seq.slice(0, start + 1))), 'a locked prefix was evicted');
    const stamp = this.cached.get(leafKey)!.used;
    for (const other of this.unprotectedLeaves()) {
      if (other !== leafKey) {
        assert.ok(this.cached.get(other)!.used > stamp, `evicted ${leafKey} before older leaf ${other}`);
      }
    }
    assert.equal(edge.bytes, bytesOf(seq.slice(start)), 'evicted bytes');
    assertCovers(edge.payloads, seq, start, seq.length);

    for (let i = start + 1; i <= seq.length; i++) this.cached.delete(key(seq.slice(0, i)));
    for (const h of this.handles) {
      const endsInEdge = h.seq.length > start && h.seq.length <= seq.length;
      if (endsInEdge && key(h.seq) === key(seq.slice(0, h.seq.length))) h.dead = true;
    }
    this.freed += edge.bytes;
    this.seenEvictions.push(edge);
  }

  /** After a command that may evict: it stopped only when done or out of unlocked leaves. */
  evictionsDone() {
    const goal = this.goal!;
    assert.ok(!goal(this.bytes(), this.freed) || this.unprotectedLeaves().length === 0, 'eviction stopped early');
    this.goal = undefined;
    return this.seenEvictions;
  }

  addHandle(seq: number[], node: RadixNode<Span>) {
    const alive = seq.length === 0 || this.cached.has(key(seq));
    assert.equal(node.evicted, !alive, 'returned node is evicted exactly when its sequence is gone');
    this.handles.push({ seq, node, locks: 0, dead: !alive });
  }
}

interface Real {
  cache: RadixCache<Span>;
}

type Cmd = fc.Command<Model, Real>;

function match(m: Model, r: Real, seq: number[]) {
  const expected = m.longestCachedPrefix(seq);
  m.use(seq, expected);
  const result = r.cache.matchPrefix(seq);
  assert.equal(result.length, expected, 'match length is the longest cached prefix');
  assertCovers(result.payloads, seq, 0, expected);
  m.stats.queries += 1;
  m.stats.queriedTokens += seq.length;
  m.stats.hitTokens += expected;
  m.addHandle(seq.slice(0, expected), result.node);
  return result;
}

function insert(m: Model, r: Real, seq: number[]) {
  const cachedBefore = m.longestCachedPrefix(seq);
  m.use(seq, seq.length);
  m.expectEvictions((total) => total > m.capacity);
  const asked: [number, number][] = [];
  const node = r.cache.insert(seq, (start, end) => {
    asked.push([start, end]);
    return spanFor(seq)(start, end);
  });
  m.evictionsDone();
  const expectedAsk = cachedBefore < seq.length ? [[cachedBefore, seq.length]] : [];
  assert.deepEqual(asked, expectedAsk, 'payloads are asked for only the uncached part');
  m.addHandle(seq, node);
}

class InsertCmd implements Cmd {
  constructor(readonly seq: number[]) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    insert(m, r, this.seq);
    checkInvariants(m, r.cache);
  }
  toString() {
    return `insert(${key(this.seq)})`;
  }
}

class MatchCmd implements Cmd {
  constructor(readonly seq: number[]) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    match(m, r, this.seq);
    checkInvariants(m, r.cache);
  }
  toString() {
    return `match(${key(this.seq)})`;
  }
}

/** The engine's flow: match, ask whether the rest would be kept, insert. canFit must be exact. */
class MatchThenInsertCmd implements Cmd {
  constructor(readonly seq: number[]) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    const { length, node } = match(m, r, this.seq);
    const fits = r.cache.canFit(bytesOf(this.seq.slice(length)), node);
    insert(m, r, this.seq);
    const kept = this.seq.every((_, i) => m.cached.has(key(this.seq.slice(0, i + 1))));
    // Nothing new and a fully locked path is kept whatever canFit says about the locked total.
    if (length < this.seq.length || node.lockCount === 0) assert.equal(kept, fits, 'canFit predicts the insert');
    checkInvariants(m, r.cache);
  }
  toString() {
    return `matchThenInsert(${key(this.seq)})`;
  }
}

class LockCmd implements Cmd {
  constructor(readonly pick: number) {}
  check(m: Readonly<Model>) {
    return m.handles.length > 0;
  }
  run(m: Model, r: Real) {
    const h = m.handles[this.pick % m.handles.length];
    if (h.dead) {
      assert.throws(() => r.cache.lock(h.node), InvalidArgumentError);
    } else {
      r.cache.lock(h.node);
      h.locks += 1;
    }
    checkInvariants(m, r.cache);
  }
  toString() {
    return `lock(#${this.pick})`;
  }
}

class UnlockCmd implements Cmd {
  constructor(readonly pick: number) {}
  check(m: Readonly<Model>) {
    return m.handles.length > 0;
  }
  run(m: Model, r: Real) {
    const h = m.handles[this.pick % m.handles.length];
    // Locks belong to the node: several handles may name the same one.
    const holder = m.handles.find((x) => !x.dead && x.node === h.node && x.locks > 0);
    if (!holder) {
      assert.throws(() => r.cache.unlock(h.node), InvalidArgumentError);
    } else {
      holder.locks -= 1;
      m.expectEvictions((total) => total > m.capacity);
      r.cache.unlock(h.node);
      m.evictionsDone();
    }
    checkInvariants(m, r.cache);
  }
  toString() {
    return `unlock(#${this.pick})`;
  }
}

class EvictCmd implements Cmd {
  constructor(readonly target: number) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    m.expectEvictions((total, freed) => total > m.capacity || freed < this.target);
    const returned = r.cache.evict(this.target);
    assert.deepEqual(returned, m.evictionsDone(), 'evict returns what it evicted');
    checkInvariants(m, r.cache);
  }
  toString() {
    return `evict(${this.target})`;
  }
}

class ResetCmd implements Cmd {
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    r.cache.reset();
    m.cached.clear();
    for (const h of m.handles) Object.assign(h, { dead: true, locks: 0 });
    checkInvariants(m, r.cache);
  }
  toString() {
    return 'reset()';
  }
}

function* walk(root: RadixNode<Span>): Generator<{ node: RadixNode<Span>; seq: number[] }> {
  const stack = [{ node: root, seq: [] as number[] }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    yield item;
    for (const child of item.node.children.values()) {
      stack.push({ node: child, seq: [...item.seq, ...child.edge] });
    }
  }
}

/** All tokens from the root to the end of the node's edge. */
function sequenceOf(node: RadixNode<Span>): number[] {
  const edges: (readonly number[])[] = [];
  for (let n: RadixNode<Span> | undefined = node; n; n = n.parent) edges.push(n.edge);
  return edges.reverse().flat();
}

function checkInvariants(m: Model, cache: RadixCache<Span>) {
  const root = cache.rootNode;
  const liveHandles = m.handles.filter((h) => !h.dead);
  const positions = new Set<string>();
  let total = 0;
  let locked = 0;
  let count = 0;
  let unlockedLeaves = 0;
  for (const { node, seq } of walk(root)) {
    assert.equal(node.evicted, false, 'nodes in the tree are not evicted');
    const expectedLocks = liveHandles
      .filter((h) => h.seq.length >= seq.length && key(h.seq.slice(0, seq.length)) === key(seq))
      .reduce((sum, h) => sum + h.locks, 0);
    assert.equal(node.lockCount, expectedLocks, `lock count of ${key(seq)}`);
    for (const [first, child] of node.children) {
      assert.equal(child.parent, node, 'child points to its parent');
      assert.equal(child.edge[0], first, "children are keyed by their edge's first token");
    }
    if (node === root) continue;
    count += 1;
    total += node.bytes;
    if (node.lockCount > 0) locked += node.bytes;
    if (node.children.size === 0 && node.lockCount === 0) unlockedLeaves += 1;
    assert.ok(node.edge.length > 0, 'only the root has an empty edge');
    assert.equal(node.bytes, bytesOf(node.edge), 'node bytes are its payload bytes');
    assertCovers(node.payloads, seq, seq.length - node.edge.length, seq.length);
    for (let i = seq.length - node.edge.length + 1; i <= seq.length; i++) positions.add(key(seq.slice(0, i)));
    // Documented exception: a node a handle names stays a boundary even with one child; any other
    // node with one child would have been merged.
    if (node.children.size === 1) assert.ok(node.isHandle, `${key(seq)} has one child but no handle`);
    if (node.isHandle)
      assert.ok(
        liveHandles.some((h) => h.node === node),
        `${key(seq)} is marked as a handle`,
      );
  }
  assert.deepEqual([...positions].sort(), [...m.cached.keys()].sort(), 'cached prefixes match the model');
  assert.equal(cache.totalBytes, total, 'totalBytes is the sum over nodes');
  assert.equal(total, m.bytes(), 'totalBytes matches the model');
  assert.equal(cache.lockedBytes, locked, 'lockedBytes');
  assert.equal(cache.nodeCount, count, 'nodeCount');
  if (cache.totalBytes > cache.capacityBytes) assert.equal(unlockedLeaves, 0, 'over capacity only when all is locked');
  // Stronger than "within capacity when nothing is locked": these sizes add up exactly under
  // splits, and what does not fit beside the locked entries is dropped at insert.
  assert.ok(total <= cache.capacityBytes, 'within capacity');
  for (const h of m.handles) {
    assert.equal(h.node.evicted, h.dead, `handle ${key(h.seq)} is evicted exactly when the model says`);
    if (h.locks > 0) assert.ok(!h.dead, 'a locked handle is never evicted');
    if (!h.dead) assert.deepEqual(sequenceOf(h.node), h.seq, 'a handle keeps naming its sequence');
  }
  const { queries, queriedTokens, hitTokens } = cache.stats;
  assert.deepEqual({ queries, queriedTokens, hitTokens }, m.stats, 'hit statistics');
}

const seqArb = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 7 });
const commandArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: seqArb.map((s) => new InsertCmd(s)) },
  { weight: 4, arbitrary: seqArb.map((s) => new MatchCmd(s)) },
  { weight: 3, arbitrary: seqArb.map((s) => new MatchThenInsertCmd(s)) },
  { weight: 3, arbitrary: fc.nat().map((i) => new LockCmd(i)) },
  { weight: 3, arbitrary: fc.nat().map((i) => new UnlockCmd(i)) },
  { weight: 2, arbitrary: fc.nat({ max: 12 }).map((t) => new EvictCmd(t)) },
  { weight: 1, arbitrary: fc.constant(new ResetCmd()) },
);

describe('RadixCache against a naive model', () => {
  it('keeps every invariant over random command sequences', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.commands([commandArb], { maxCommands: 60, size: 'max' }), (capacity, cmds) => {
        const model = new Model(capacity);
        const cache = new RadixCache<Span>({
          payload: spanOps,
          capacityBytes: capacity,
          onEvict: (edge) => model.evicted(edge),
        });
        fc.modelRun(() => ({ model, real: { cache } }), cmds);
        // Releasing every lock returns all counts to zero and the cache to its capacity.
        for (const h of model.handles.filter((x) => !x.dead)) {
          while (h.locks > 0) {
            h.locks -= 1;
            model.expectEvictions((total) => total > capacity);
            cache.unlock(h.node);
            model.evictionsDone();
          }
        }
        checkInvariants(model, cache);
        for (const { node } of walk(cache.rootNode)) assert.equal(node.lockCount, 0);
        assert.equal(cache.lockedBytes, 0);
      }),
      { numRuns: 300 },
    );
  });
});

function newCache(capacityBytes = 1000, evicted: EvictedEdge<Span>[] = []) {
  return new RadixCache<Span>({ payload: spanOps, capacityBytes, onEvict: (e) => evicted.push(e) });
}

const insertSeq = (cache: RadixCache<Span>, seq: number[]) => cache.insert(seq, spanFor(seq));

describe('RadixCache examples', () => {
  it('splits an edge where a match ends inside it', () => {
    const cache = newCache();
    insertSeq(cache, [1, 2, 3, 4]);
    assert.equal(cache.nodeCount, 1);

    const m = cache.matchPrefix([1, 2, 9]);
    assert.equal(m.length, 2);
    assert.deepEqual(m.payloads, [{ start: 0, tokens: [1, 2] }]);
    assert.equal(cache.nodeCount, 2);
    assert.deepEqual(sequenceOf(m.node), [1, 2]);

    const full = cache.matchPrefix([1, 2, 3, 4, 5]);
    assert.equal(full.length, 4);
    assert.deepEqual(full.payloads, [
      { start: 0, tokens: [1, 2] },
      { start: 2, tokens: [3, 4] },
    ]);
    assert.equal(cache.totalBytes, bytesOf([1, 2, 3, 4]));
  });

  it('asks for payloads only for the uncached suffix; a cached sequence only gets fresher', () => {
    const cache = newCache();
    insertSeq(cache, [1, 2, 3]);
    const asked: number[][] = [];
    cache.insert([1, 2, 3, 7, 8], (start, end) => {
      asked.push([start, end]);
      return spanFor([1, 2, 3, 7, 8])(start, end);
    });
    assert.deepEqual(asked, [[3, 5]]);
    cache.insert([1, 2, 3], () => assert.fail('already cached'));
    assert.equal(cache.nodeCount, 2);
  });

  it('evicts the least recently used leaf first', () => {
    const evicted: EvictedEdge<Span>[] = [];
    const cache = newCache(1000, evicted);
    insertSeq(cache, [1, 1]); // 4 bytes
    insertSeq(cache, [2, 2]); // 6 bytes
    insertSeq(cache, [3, 3]); // 8 bytes
    cache.matchPrefix([1, 1]); // now [2, 2] is the oldest
    const first = cache.evict(1);
    assert.deepEqual(
      first.map((e) => e.sequence),
      [[2, 2]],
    );
    assert.deepEqual(
      cache.evict(1).map((e) => e.sequence),
      [[3, 3]],
    );
    assert.deepEqual(
      evicted.map((e) => e.sequence),
      [
        [2, 2],
        [3, 3],
      ],
    );
    assert.deepEqual(cache.stats.evictedBytes, 14);
    assert.equal(cache.matchPrefix([1, 1]).length, 2);
  });

  it('keeps a locked path through eviction and drops what cannot fit beside it', () => {
    const cache = newCache(10);
    const locked = insertSeq(cache, [1, 2]); // 5 bytes
    cache.lock(locked);
    const big = insertSeq(cache, [1, 2, 3, 3]); // 8 more bytes: only the new leaf can go
    assert.equal(big.evicted, true);
    assert.equal(cache.totalBytes, 5);

    const extended = insertSeq(cache, [1, 2, 0]); // 1 more byte: fits
    cache.lock(extended);
    insertSeq(cache, [4, 4, 4]); // 15 more bytes; again only the new leaf can go
    assert.equal(cache.totalBytes, 6);
    assert.equal(cache.lockedBytes, 6);
    assert.equal(cache.canFit(5, extended), false); // 6 locked + 5 > 10
    assert.equal(cache.canFit(4, extended), true);

    cache.unlock(locked); // [1, 2, 0] still holds the path
    assert.equal(cache.matchPrefix([1, 2, 0]).length, 3);
    assert.equal(cache.lockedBytes, 6);
    cache.unlock(extended);
    assert.equal(cache.lockedBytes, 0);
    assert.equal(cache.rootNode.lockCount, 0);
  });

  it('counts unlocked ancestors of the insert point in canFit', () => {
    const cache = newCache(10);
    insertSeq(cache, [0, 0, 0]); // 3 bytes, unlocked
    const m = cache.matchPrefix([0, 0, 0, 2]);
    assert.equal(cache.canFit(7, m.node), true); // 3 + 7 = 10
    assert.equal(cache.canFit(8, m.node), false);
    assert.equal(cache.canFit(8), true); // at the root, [0, 0, 0] could be evicted for it
  });

  it('may exceed capacity while locked when splits add bytes, and trims once unlocked', () => {
    // Each payload carries one byte of overhead, so splitting an edge adds a byte.
    const overheadOps: PayloadOps<Span> = { ...spanOps, bytes: (p) => p.tokens.length + 1 };
    const evicted: EvictedEdge<Span>[] = [];
    const cache = new RadixCache<Span>({ payload: overheadOps, capacityBytes: 4, onEvict: (e) => evicted.push(e) });
    const node = cache.insert([1, 2, 3], spanFor([1, 2, 3])); // 4 bytes
    cache.lock(node);
    const m = cache.matchPrefix([1]); // splits: 2 + 3 bytes
    assert.equal(cache.totalBytes, 5);
    assert.equal(cache.lockedBytes, 5);
    assert.deepEqual(cache.evict(), []); // all locked: nothing to do
    cache.unlock(node);
    assert.deepEqual(
      evicted.map((e) => e.sequence.slice(e.start)),
      [[2, 3]],
    );
    assert.equal(cache.totalBytes, 2);
    assert.equal(m.node.evicted, false);
  });

  it('merges a branch point into its only child when a sibling is evicted', () => {
    const cache = newCache();
    insertSeq(cache, [1, 2, 3]);
    insertSeq(cache, [1, 2, 4]); // [1, 2] becomes a branch point with two leaves
    assert.equal(cache.nodeCount, 3);
    insertSeq(cache, [1, 2, 3]); // [1, 2, 4] is now the older leaf
    assert.deepEqual(
      cache.evict(1).map((e) => e.sequence.slice(e.start)),
      [[4]],
    );
    assert.equal(cache.nodeCount, 1);
    const m = cache.matchPrefix([1, 2, 3]);
    assert.equal(m.length, 3);
    // Merging concatenates payload lists: nothing is copied.
    assert.deepEqual(m.payloads, [
      { start: 0, tokens: [1, 2] },
      { start: 2, tokens: [3] },
    ]);
  });

  it('keeps a handed-out node as a boundary, so its handle stays valid', () => {
    const cache = newCache();
    insertSeq(cache, [1, 2, 3]);
    const handle = cache.matchPrefix([1, 2]).node;
    insertSeq(cache, [1, 2, 4]);
    insertSeq(cache, [1, 2, 3]);
    cache.evict(1); // removes [4]; [1, 2] stays its own node
    assert.equal(handle.evicted, false);
    assert.deepEqual(sequenceOf(handle), [1, 2]);
    cache.lock(handle);
    cache.evict(1000);
    assert.equal(cache.matchPrefix([1, 2, 3]).length, 2);
    cache.unlock(handle);
  });

  it('rejects bad input with errors naming the field', () => {
    const cache = newCache();
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError, String(e));
        return e.field;
      }
      assert.fail('expected an error');
    };
    assert.equal(
      field(() => cache.matchPrefix([1, -1])),
      'tokens',
    );
    assert.equal(
      field(() => cache.matchPrefix([1.5])),
      'tokens',
    );
    assert.equal(
      field(() => cache.insert('abc' as unknown as number[], spanFor([]))),
      'tokens',
    );
    assert.equal(
      field(() => cache.insert([1], undefined as unknown as () => Span)),
      'payloadFor',
    );
    assert.equal(
      field(() => cache.evict(-1)),
      'targetBytes',
    );
    assert.equal(
      field(() => cache.canFit(Number.NaN)),
      'newBytes',
    );
    assert.equal(
      field(() => newCache(-5)),
      'capacityBytes',
    );
    assert.equal(
      field(() => new RadixCache({ payload: {} as PayloadOps<Span>, capacityBytes: 100 })),
      'payload',
    );

    const node = insertSeq(cache, [5]);
    assert.equal(
      field(() => cache.unlock(node)),
      'node',
    );
    assert.equal(
      field(() => newCache().lock(node)),
      'node',
    ); // another cache's node
    cache.lock(node);
    assert.equal(
      field(() => cache.unlock(cache.rootNode)),
      'node',
    ); // the lock is on [5], not the root
    cache.unlock(node);

    const bad = new RadixCache<Span>({ payload: { ...spanOps, bytes: () => Number.NaN }, capacityBytes: 100 });
    assert.equal(
      field(() => bad.insert([1], spanFor([1]))),
      'payload.bytes',
    );
    assert.equal(bad.nodeCount, 0);
  });

  it('reset drops everything, and old handles count as evicted', () => {
    const cache = newCache();
    const node = insertSeq(cache, [1, 2]);
    cache.lock(node);
    cache.matchPrefix([1, 2]);
    cache.reset();
    assert.equal(cache.totalBytes, 0);
    assert.equal(cache.lockedBytes, 0);
    assert.equal(cache.nodeCount, 0);
    assert.equal(node.evicted, true);
    assert.throws(() => cache.lock(node), InvalidArgumentError);
    assert.equal(cache.matchPrefix([1, 2]).length, 0);
    assert.deepEqual(cache.stats.queries, 2, 'statistics survive a reset');
  });
});
