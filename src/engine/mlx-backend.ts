// The MLX backend: the model as an MLX graph (Metal on macOS, MLX's CPU backend elsewhere), keys
// and values in MLX arrays. A step runs up to two forward passes in one graph: the prompt chunk of
// the current prefill group (one or several packed prompts) and one decode token for every running
// sequence. Prompts that complete sample their first token and join the decode batch; sequences
// that leave it put their tokens' KV into the prefix cache for later requests.
import type { BackendHost, BackendStats, EngineBackend } from './engine-backend.ts';
import { BatchKvCache } from './kv/batch-kv-cache.ts';
import { kvBlockBytes, partsLength, sliceParts, splitKvBlock, type KvBlock } from './kv/kv-block.ts';
import { PrefillBatch } from './kv/prefill-batch.ts';
import type { ForwardPart, Transformer } from './model/transformer.ts';
import { RadixCache, type RadixNode } from './radix-cache.ts';
import { Sampler, type SampledToken } from './sampler/sampler.ts';
import { admitCount, type WaitingRequest } from './scheduler.ts';
import type { Sequence } from './sequence.ts';
import type { EngineOptions } from './engine-options.ts';
import type { LoraUpdate } from './lora/lora-updates.ts';
import { mx, type MxArray } from './mlx.ts';

/** Columns of growth admission leaves room for before preemption would be needed. */
const GROWTH_HEADROOM = 256;

interface PrefillGroup {
  batch: PrefillBatch;
  sequences: Sequence[];
}

export class MlxBackend implements EngineBackend {
  private prefill: PrefillGroup | undefined;
  private readonly batch: BatchKvCache;
  private readonly sampler: Sampler;
  private readonly cache: RadixCache<KvBlock> | undefined;

  constructor(
    private readonly model: Transformer,
    opts: EngineOptions,
  ) {
    this.batch = new BatchKvCache(model.config, model.rope);
    this.sampler = new Sampler(model.config.vocabSize);
    if (opts.prefixCache) {
      this.cache = new RadixCache<KvBlock>({
        payload: { bytes: kvBlockBytes, split: splitKvBlock },
        capacityBytes: opts.prefixCacheBytes,
      });
    }
  }

  get kvBytesPerToken(): number {
    return this.batch.bytesPerCell();
  }

  get prefilling(): readonly Sequence[] {
    return this.prefill?.sequences ?? [];
  }

  stats(running: readonly Sequence[]): BackendStats {
    const s = this.cache?.stats;
    const cell = this.batch.bytesPerCell();
    // A decoding sequence holds the KV of every token but its newest (computed next step).
    const decoding = running.reduce((n, seq) => n + seq.length - 1, 0);
    return {
      kvBytesUsed: (decoding + (this.prefill?.batch.tokensHeld ?? 0)) * cell,
      // The batch's buffers are sized for the longest row (and grow in blocks), so they exceed
      // what is used; prefix-cache blocks are buffers of their own.
      kvBytesAllocated: this.batch.bytes + (this.prefill?.batch.bytes ?? 0) + (this.cache?.totalBytes ?? 0),
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
    this.cache?.reset();
    // Serving starts from an empty batch (a lone request then decodes in one row).
    this.batch.clear();
  }

  reset(): void {
    this.prefill = undefined;
    this.batch.clear();
  }

  step(host: BackendHost): void {
    // A chunked prompt nobody waits for any more is abandoned mid-way.
    if (this.prefill?.sequences.every((s) => s.cancelled)) {
      const abandoned = this.prefill.sequences;
      this.prefill = undefined;
      for (const s of abandoned) host.finish(s, 'cancelled');
    }
    if (!this.prefill) this.startPrefillGroup(host);
    this.makeRoomForDecode(host);

    const parts: ForwardPart[] = [];
    const decoding = [...host.running];
    if (decoding.length > 0) {
      const tokens = new Array<number>(this.batch.rows).fill(0);
      for (const s of decoding) tokens[s.row as number] = s.outputTokenIds[s.outputTokenIds.length - 1];
      const lora = new Int32Array(this.batch.rows).fill(-1);
      for (const s of decoding) lora[s.row as number] = s.loraSlot;
      parts.push({
        tokens: mx.array(
          tokens.map((t) => [t]),
          mx.int32,
        ),
        ctx: this.batch,
        lora,
      });
    }
    const group = this.prefill;
    let completing: { segment: number; packedIndex: number }[] = [];
    if (group) {
      const chunk = group.batch.prepareStep(host.opts.prefillTokens);
      completing = chunk.completing;
      const lora = Int32Array.from(group.batch.stepSegments(), (j) => group.sequences[j].loraSlot);
      parts.push({ tokens: chunk.tokens, ctx: group.batch, lora });
    }
    if (parts.length === 0) return;

    // Hidden rows: the decode batch's rows first, then the packed prompt chunk's.
    const prefillBase = decoding.length > 0 ? this.batch.rows : 0;
    const finishing = [...decoding, ...completing.map((c) => (group as PrefillGroup).sequences[c.segment])];
    const hidden = this.model.forwardParts(parts);
    const rowsWanted = [...decoding.map((s) => s.row as number), ...completing.map((c) => prefillBase + c.packedIndex)];
    const toEval: MxArray[] = [...(decoding.length > 0 ? this.batch.stepOutputs() : []), ...(group ? group.batch.stepOutputs() : [])];
    let sampled: SampledToken[] = [];
    if (rowsWanted.length > 0) {
      const logits = this.model.logits(mx.take(hidden, mx.array(rowsWanted, mx.int32), 0));
      mx.eval(logits, ...toEval);
      sampled = this.sampler.sample(
        logits,
        finishing.map((s) => s.samplerRow()),
      );
    } else {
      mx.eval(...toEval);
    }

    if (decoding.length > 0) {
      this.batch.advance();
      decoding.forEach((s, i) => host.appendToken(s, sampled[i]));
    }
    if (group) {
      group.batch.finishStep();
      completing.forEach((c, i) => this.completePrefill(host, group, c.segment, sampled[decoding.length + i]));
      if (group.batch.complete) this.prefill = undefined;
    }
  }

  private startPrefillGroup(host: BackendHost): void {
    const { waiting, running, opts } = host;
    if (waiting.length === 0) return;
    const lookahead = waiting.slice(0, Math.max(1, opts.batchSize - running.length));
    const matches = lookahead.map((s) => {
      const tokens = s.allTokenIds();
      // At least one token is computed: its logits give the next token.
      const match = this.cache?.matchPrefix(s.cacheKey(tokens.length - 1));
      return { tokens, match };
    });
    const queue: WaitingRequest[] = matches.map((m) => ({
      newTokens: m.tokens.length - (m.match?.length ?? 0),
      promptTokens: m.tokens.length,
    }));
    let n = admitCount(queue, {
      running: running.length,
      runningLongest: Math.max(0, ...running.map((s) => s.length)),
      growthHeadroom: GROWTH_HEADROOM,
      maxRunning: opts.batchSize,
      prefillTokens: opts.prefillTokens,
      maxGroupColumns: opts.maxGroupColumns,
      kvBudgetBytes: opts.kvBudgetBytes,
      kvBytes: (rows, columns) => rows * columns * this.batch.bytesPerCell(),
    });
    // Their adapters must be resident: the group stops at the first that finds every slot in use.
    for (let i = 0; i < n; i++) {
      if (!host.admitLora(waiting[i])) n = i;
    }
    if (n === 0) return;
    const sequences = waiting.splice(0, n);
    const segments = sequences.map((s, i) => {
      const { tokens, match } = matches[i];
      const cachedLength = match?.length ?? 0;
      s.status = 'prefilling';
      // A preempted sequence still holds the lock taken when its KV was cached; the match replaces it.
      const previous = s.cacheLock as RadixNode<KvBlock> | undefined;
      s.cacheLock = undefined;
      if (match && cachedLength > 0) {
        this.cache?.lock(match.node);
        s.cacheLock = match.node;
      }
      if (previous) this.cache?.unlock(previous);
      host.markStarted(s, cachedLength);
      return {
        cached: cachedLength > 0 ? match!.payloads : undefined,
        tokens: tokens.slice(cachedLength),
      };
    });
    this.prefill = { batch: new PrefillBatch(this.model.config, this.model.rope, segments), sequences };
  }

  /** A prompt finished: cache its KV, emit its first token, and move it into the decode batch. */
  private completePrefill(host: BackendHost, group: PrefillGroup, segment: number, sampled: SampledToken): void {
    const s = group.sequences[segment];
    // The prefix stays in its cache blocks: copied once into the batch row, not first into one block.
    const parts = group.batch.sequenceParts(segment);
    const length = partsLength(parts);
    if (this.cache) this.cacheTokens(s, s.cacheKey(length), (start, end) => sliceParts(this.model.rope, parts, start, end));
    if (s.cancelled) {
      host.finish(s, 'cancelled');
      return;
    }
    s.status = 'running';
    host.running.push(s);
    if (host.appendToken(s, sampled)) return;
    const renumber = this.batch.reserve(host.running.length, length);
    this.applyRenumber(host, renumber);
    const row = this.batch.freeRow() as number;
    this.batch.join(row, parts);
    s.row = row;
  }

  private applyRenumber(host: BackendHost, renumber: Map<number, number>): void {
    for (const r of host.running) if (r.row !== undefined) r.row = renumber.get(r.row) ?? r.row;
  }

  /**
   * Inserts a sequence's tokens into the prefix cache and moves the sequence's lock to the inserted
   * node. `kvOf(start, end)` gives tokens [start, end) at true positions; the cache asks only for
   * the part it does not hold yet, so a long cached prefix is never copied out again.
   */
  private cacheTokens(s: Sequence, tokens: number[], kvOf: (start: number, end: number) => KvBlock): void {
    const cache = this.cache as RadixCache<KvBlock>;
    const node = cache.insert(tokens, kvOf);
    const previous = s.cacheLock as RadixNode<KvBlock> | undefined;
    if (!node.evicted && s.status !== 'finished') {
      cache.lock(node);
      s.cacheLock = node;
    } else {
      s.cacheLock = undefined;
    }
    if (previous) cache.unlock(previous);
  }

  /** Caches the tokens of a sequence's batch row (before the row is freed). */
  private cacheRow(s: Sequence, row: number): void {
    const length = this.batch.rowLength(row);
    this.cacheTokens(s, s.cacheKey(length), (start, end) => {
      if (end !== length) throw new Error(`the cache asked for tokens [${start}, ${end}) of a row of ${length}`);
      return this.batch.extract(row, start);
    });
  }

  release(s: Sequence, keepInCache: boolean): void {
    this.leaveBatch(s, keepInCache);
    if (s.cacheLock) {
      this.cache?.unlock(s.cacheLock as RadixNode<KvBlock>);
      s.cacheLock = undefined;
    }
  }

  /** Frees a sequence's batch row, first caching its tokens when asked (it keeps its cache lock). */
  private leaveBatch(s: Sequence, keepInCache: boolean): void {
    if (s.row === undefined) return;
    if (this.cache && keepInCache) this.cacheRow(s, s.row);
    this.batch.leave(s.row);
    s.row = undefined;
  }

  /**
   * Before a decode step: the batch needs a column to write; if growing would exceed the KV
   * budget, the newest sequences are preempted (their KV goes to the prefix cache and they wait to
   * be recomputed, as vLLM's recompute preemption).
   */
  private makeRoomForDecode(host: BackendHost): void {
    const { running } = host;
    if (running.length === 0) return;
    while (running.length > 1 && this.batch.bytesAfterReserve(running.length, 0) > host.opts.kvBudgetBytes) {
      // The victim keeps its cache lock: the prefix it restarts from stays cached.
      const victim = running.pop() as Sequence;
      this.leaveBatch(victim, true);
      host.requeue(victim);
    }
    this.applyRenumber(host, this.batch.reserve(running.length));
  }
}
