// The native CPU backend: the model runs in our own kernels (native/cpu-kernels); every token's
// keys and values live in a slot of one pool, and a sequence is the list of its slots. A cached
// prefix is used where it lies (its slots are shared, locked in the prefix cache) and a finished
// sequence hands its slots to the cache instead of copying them, so reusing a prefix costs
// nothing but its lookup. Each step decodes one token for every running sequence and spends what
// the step budget (step-budget.ts) leaves on prompt chunks, oldest request first. A LongRoPE
// model's requests that may grow past its original context rotate with the long factors
// (usesLongRope): their keys differ from everyone else's, so they neither use nor fill the prefix cache.
import type { BackendHost, BackendStats, EngineBackend } from '../engine-backend.ts';
import { type EngineOptions, servedContextLength } from '../engine-options.ts';
import type { LoraUpdate } from '../lora/lora-updates.ts';
import { usesLongRope } from '../model/config.ts';
import { RadixCache, type RadixNode } from '../radix-cache.ts';
import type { SampledToken, SamplerRow } from '../sampler/sampler.ts';
import type { Sequence } from '../sequence.ts';
import type { NativeTransformer } from './native-transformer.ts';
import { SlotAllocator, SlotList } from './slot-allocator.ts';
import { StepBudget } from './step-budget.ts';

/** Samples one token per row of a logits buffer (rows × vocab, row-major). */
export interface LogitsSampler {
  sample(logits: Float32Array, rows: readonly SamplerRow[]): SampledToken[];
}

/** Slots the prefix cache holds for an edge's tokens, in order. */
type SlotRun = Int32Array;

/** Tokens of growth admission leaves room for per sequence before preemption would be needed. */
const GROWTH_HEADROOM = 256;

interface SequenceKv {
  seq: Sequence;
  /** Slot of each position that has (or is getting, this step) keys and values. */
  slots: SlotList;
  /** Leading slots that belong to the prefix cache (locked there); the rest are this sequence's. */
  shared: number;
  /** Positions whose keys and values are computed. */
  computed: number;
  /** While prefilling: the tokens to compute (prompt, and output so far after a preemption). */
  target?: number[];
  /** Tokens this step computes. */
  stepTokens: number;
  /** Rotates with LongRoPE's long factors (decided at admission; keeps it off the prefix cache). */
  longRope: boolean;
}

export class NativeBackend implements EngineBackend {
  private readonly slots: SlotAllocator;
  private readonly cache: RadixCache<SlotRun> | undefined;
  private readonly kv = new Map<Sequence, SequenceKv>();
  private readonly prefillQueue: SequenceKv[] = [];
  private readonly budget: StepBudget;
  private readonly budgetSlots: number;
  private logits = new Float32Array(0);

  constructor(
    private readonly model: NativeTransformer,
    private readonly sampler: LogitsSampler,
    opts: EngineOptions,
  ) {
    const perToken = model.kvBytesPerToken;
    // More than batchSize full contexts is never used; less than one would leave a long request
    // unable ever to run (alone, it is always admitted).
    const contextLength = servedContextLength(model.config.contextLength, opts.maxModelLen);
    this.budgetSlots = Math.max(contextLength, Math.min(Math.floor(opts.kvBudgetBytes / perToken), opts.batchSize * contextLength));
    const cacheSlots = opts.prefixCache ? Math.floor(opts.prefixCacheBytes / perToken) : 0;
    const capacity = Math.min(2 ** 31 - 1, this.budgetSlots + cacheSlots);
    model.reserveKv(capacity);
    this.slots = new SlotAllocator(capacity);
    if (opts.prefixCache) {
      this.cache = new RadixCache<SlotRun>({
        payload: { bytes: (run) => run.length * perToken, split: (run, at) => [run.slice(0, at), run.slice(at)] },
        capacityBytes: opts.prefixCacheBytes,
        onEvict: (edge) => {
          for (const run of edge.payloads) this.slots.release(run);
        },
      });
    }
    this.budget = new StepBudget(opts.prefillTokens, opts.prefillStallRatio);
  }

  get kvBytesPerToken(): number {
    return this.model.kvBytesPerToken;
  }

  get prefilling(): readonly Sequence[] {
    return this.prefillQueue.map((k) => k.seq);
  }

  stats(): BackendStats {
    const s = this.cache?.stats;
    const perToken = this.model.kvBytesPerToken;
    const cached = this.cache ? this.cache.totalBytes / perToken : 0;
    return {
      // The requests' own slots (beyond the cache's), plus the cached prefixes they use: a
      // request's slots for a shared prefix are the cache's, locked while it runs.
      kvBytesUsed: Math.max(0, this.slots.used - cached) * perToken + (this.cache?.lockedBytes ?? 0),
      kvBytesAllocated: this.slots.used * perToken,
      prefixCacheBytes: this.cache?.totalBytes ?? 0,
      prefixCacheLockedBytes: this.cache?.lockedBytes ?? 0,
      prefixCacheHits: s?.hitTokens ?? 0,
      prefixCacheQueries: s?.queriedTokens ?? 0,
    };
  }

  setLoraSlot(slot: number, updates: readonly LoraUpdate[] | undefined): void {
    this.model.setLoraSlot(slot, updates);
  }

  clearCache(): void {
    if (!this.cache) return;
    // Evicting hands every entry's slots back (reset alone would drop them with the entries).
    this.cache.evict(this.cache.totalBytes);
    this.cache.reset();
  }

  reset(): void {
    for (const k of [...this.kv.values()]) this.release(k.seq, false);
  }

  release(s: Sequence, keepInCache: boolean): void {
    const k = this.kv.get(s);
    if (k) {
      this.kv.delete(s);
      const at = this.prefillQueue.indexOf(k);
      if (at >= 0) this.prefillQueue.splice(at, 1);
      this.releaseSlots(k, keepInCache);
    }
    if (s.cacheLock) {
      this.cache?.unlock(s.cacheLock as RadixNode<SlotRun>);
      s.cacheLock = undefined;
    }
  }

  /**
   * Gives a sequence's computed slots to the prefix cache (the tokens it does not hold yet) and
   * frees the rest of the sequence's own slots: duplicates of what the cache had, and slots
   * reserved beyond the computed tokens.
   */
  private releaseSlots(k: SequenceKv, keepInCache: boolean): void {
    const owned = k.slots.view();
    // Slots [cachedFrom, computed) go to the cache.
    let cachedFrom = k.computed;
    if (this.cache && keepInCache && k.computed > 0 && !k.longRope) {
      this.cache.insert(k.seq.cacheKey(k.computed), (start, end) => {
        // The sequence's shared prefix is locked in the cache, so the cache holds at least that much.
        if (start < k.shared) throw new Error(`the prefix cache lost ${k.shared - start} locked tokens`);
        cachedFrom = start;
        return k.slots.slice(start, end);
      });
    }
    this.slots.release(owned, k.shared, cachedFrom);
    this.slots.release(owned, k.computed, owned.length);
  }

  step(host: BackendHost): void {
    for (const k of [...this.prefillQueue]) if (k.seq.cancelled) host.finish(k.seq, 'cancelled');
    const started = performance.now();
    const decoding = this.reserveDecodeSlots(host);
    let room = this.budget.promptTokens(decoding.length);
    const prefills: SequenceKv[] = [];
    for (const k of this.prefillQueue) {
      if (room <= 0) break;
      const n = this.assignChunk(k, room);
      if (n === 0) break;
      room -= n;
      prefills.push(k);
    }
    while (room > 0 && host.waiting.length > 0) {
      const k = this.admit(host);
      if (!k) break;
      const n = this.assignChunk(k, room);
      if (n === 0) break;
      room -= n;
      prefills.push(k);
    }
    const promptTokens = prefills.reduce((n, k) => n + k.stepTokens, 0);
    if (decoding.length === 0 && promptTokens === 0) return;

    const completing = prefills.filter((k) => k.computed + k.stepTokens === (k.target as number[]).length);
    this.forward(decoding, prefills, completing);
    const rows = [...decoding, ...completing].map((k) => k.seq.samplerRow());
    const V = this.model.config.vocabSize;
    const sampled = rows.length > 0 ? this.sampler.sample(this.logits.subarray(0, rows.length * V), rows) : [];
    this.budget.observe(decoding.length, promptTokens, performance.now() - started);

    decoding.forEach((k, i) => {
      k.computed += 1;
      host.appendToken(k.seq, sampled[i]);
    });
    for (const k of prefills) {
      k.computed += k.stepTokens;
      k.stepTokens = 0;
    }
    completing.forEach((k, i) => {
      this.prefillQueue.splice(this.prefillQueue.indexOf(k), 1);
      k.target = undefined;
      const s = k.seq;
      if (s.cancelled) {
        host.finish(s, 'cancelled');
        return;
      }
      this.cachePrompt(k);
      s.status = 'running';
      host.running.push(s);
      host.appendToken(s, sampled[decoding.length + i]);
    });
  }

  /**
   * Hands a just-computed prompt's slots to the prefix cache, so requests arriving while this one
   * decodes reuse them (a shared system prompt is computed once). The sequence keeps reading the
   * same slots, now locked in the cache. Skipped when the cache could not keep them beside its
   * locked entries (an evicted entry's slots are freed, and this sequence still reads them).
   */
  private cachePrompt(k: SequenceKv): void {
    const cache = this.cache;
    const s = k.seq;
    const held = s.cacheLock as RadixNode<SlotRun> | undefined;
    if (k.longRope || !cache?.canFit((k.computed - k.shared) * this.model.kvBytesPerToken, held)) return;
    let cachedFrom = k.computed;
    const node = cache.insert(s.cacheKey(k.computed), (start, end) => {
      if (start < k.shared) throw new Error(`the prefix cache lost ${k.shared - start} locked tokens`);
      cachedFrom = start;
      return k.slots.slice(start, end);
    });
    if (node.evicted) throw new Error('the prefix cache evicted an entry it had room for');
    if (cachedFrom > k.shared) {
      // Another sequence cached tokens [shared, cachedFrom) meanwhile: read its slots, free ours.
      const theirs = pathSlots(node);
      const ours = k.slots.view();
      this.slots.release(ours, k.shared, cachedFrom);
      ours.set(theirs.subarray(k.shared, cachedFrom), k.shared);
    }
    cache.lock(node);
    if (held) cache.unlock(held);
    s.cacheLock = node;
    k.shared = k.computed;
  }

  /**
   * A slot for every running sequence's next token. When the pool is full, unlocked cache entries
   * go first, then the newest sequences are preempted (their KV goes to the cache; vLLM's
   * recompute preemption). Returns the sequences that decode this step.
   */
  private reserveDecodeSlots(host: BackendHost): SequenceKv[] {
    const { running } = host;
    while (running.length > 0 && !this.makeRoom(running.length)) {
      if (running.length === 1) throw new Error('the KV pool cannot hold a single sequence');
      const victim = running.pop() as Sequence;
      this.release(victim, true);
      host.requeue(victim);
    }
    // A row whose grammar mask waits on a compile sits this step out (no stall for the others).
    return running
      .filter((s) => !s.constraint?.blocked)
      .map((s) => {
        const k = this.kv.get(s) as SequenceKv;
        k.slots.push(this.slots.take());
        return k;
      });
  }

  /** Whether `n` slots are free, evicting unlocked prefix-cache entries if needed. */
  private makeRoom(n: number): boolean {
    if (this.slots.free >= n) return true;
    // Least recently used entries go until the missing slots are free.
    this.cache?.evict((n - this.slots.free) * this.model.kvBytesPerToken);
    return this.slots.free >= n;
  }

  /** Slots for up to `room` tokens of a prefilling sequence's next chunk; returns the chunk size. */
  private assignChunk(k: SequenceKv, room: number): number {
    const remaining = (k.target as number[]).length - k.computed;
    const n = Math.min(remaining, room);
    if (n <= 0 || !this.makeRoom(n)) return 0;
    for (let i = 0; i < n; i++) k.slots.push(this.slots.take());
    k.stepTokens = n;
    return n;
  }

  /** Starts the first waiting request if rows and KV budget allow; its cached prefix is shared. */
  private admit(host: BackendHost): SequenceKv | undefined {
    const { waiting, running, opts } = host;
    if (running.length + this.prefillQueue.length >= opts.batchSize) return undefined;
    const s = waiting[0];
    const tokens = s.allTokenIds();
    const longRope = usesLongRope(this.model.config, s.maxLength);
    // At least one token is computed: its logits give the next token.
    const match = longRope ? undefined : this.cache?.matchPrefix(s.cacheKey(tokens.length - 1));
    const cached = match?.length ?? 0;
    let owned = 0;
    for (const k of this.kv.values()) owned += (k.target?.length ?? k.slots.length) - k.shared + GROWTH_HEADROOM;
    const alone = this.kv.size === 0;
    if (!alone && owned + tokens.length - cached + GROWTH_HEADROOM > this.budgetSlots) return undefined;
    if (!host.admitLora(s)) return undefined;
    waiting.shift();
    s.status = 'prefilling';
    if (match && cached > 0) {
      this.cache?.lock(match.node);
      s.cacheLock = match.node;
    }
    const shared = new SlotList([], Math.max(64, tokens.length + 16));
    for (const run of match?.payloads ?? []) for (const slot of run) shared.push(slot);
    const k: SequenceKv = { seq: s, slots: shared, shared: cached, computed: cached, target: tokens, stepTokens: 0, longRope };
    this.kv.set(s, k);
    this.prefillQueue.push(k);
    host.markStarted(s, cached);
    return k;
  }

  private forward(decoding: SequenceKv[], prefills: SequenceKv[], completing: SequenceKv[]): void {
    const parts = [...decoding, ...prefills];
    let n = 0;
    let ctxLength = 0;
    for (const k of decoding) {
      n += 1;
      ctxLength += k.slots.length;
    }
    for (const k of prefills) {
      n += k.stepTokens;
      ctxLength += k.slots.length;
    }
    const tokens = new Int32Array(n);
    const positions = new Int32Array(n);
    const ctxOffset = new Int32Array(n);
    const ctxSlots = new Int32Array(ctxLength);
    const ropeLong = parts.some((k) => k.longRope) ? new Uint8Array(n) : undefined;
    const lora = parts.some((k) => k.seq.loraSlot >= 0) ? new Int32Array(n) : undefined;
    const lastIndex = new Map<SequenceKv, number>();
    let t = 0;
    let c = 0;
    for (const k of parts) {
      ctxSlots.set(k.slots.view(), c);
      const first = t;
      if (k.target) {
        for (let i = 0; i < k.stepTokens; i++) {
          tokens[t] = k.target[k.computed + i];
          positions[t] = k.computed + i;
          ctxOffset[t++] = c;
        }
      } else {
        tokens[t] = k.seq.outputTokenIds[k.seq.outputTokenIds.length - 1];
        positions[t] = k.computed;
        ctxOffset[t++] = c;
      }
      if (ropeLong && k.longRope) ropeLong.fill(1, first, t);
      lora?.fill(k.seq.loraSlot, first, t);
      lastIndex.set(k, t - 1);
      c += k.slots.length;
    }
    const logitRows = Int32Array.from([...decoding, ...completing], (k) => lastIndex.get(k) as number);
    const V = this.model.config.vocabSize;
    if (this.logits.length < logitRows.length * V) this.logits = new Float32Array(logitRows.length * V);
    this.model.forward({ tokens, positions, ctxOffset, ctxSlots, logitRows, ropeLong, lora }, this.logits);
  }
}

/** The slots of every token from the root of the prefix cache down to `node`, in order. */
function pathSlots(node: RadixNode<SlotRun>): Int32Array {
  const runs: SlotRun[] = [];
  for (let n: RadixNode<SlotRun> | undefined = node; n; n = n.parent) runs.unshift(...n.payloads);
  const out = new Int32Array(runs.reduce((len, r) => len + r.length, 0));
  let at = 0;
  for (const r of runs) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}
