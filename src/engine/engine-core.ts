// The engine's step loop: schedule → run → sample → emit, one step at a time, synchronously.
// It runs inside the engine process (engine-process.ts); everything here may call MLX.
//
// A step runs up to two forward passes: the prompt chunk of the current prefill group (one or
// several packed prompts) and one decode token for every running sequence. Prompts that complete
// sample their first token and join the decode batch; sequences that finish leave it and their
// tokens' KV goes into the prefix cache for later requests.
import { randomInt } from 'node:crypto';
import { BatchKvCache } from './kv/batch-kv-cache.ts';
import { kvBlockBytes, partsLength, sliceParts, splitKvBlock, type KvBlock } from './kv/kv-block.ts';
import { PrefillBatch } from './kv/prefill-batch.ts';
import type { ForwardPart, Transformer } from './model/transformer.ts';
import { RadixCache, type RadixNode } from './radix-cache.ts';
import type { EngineEvent, EngineStats, ErrorCode, FinishReason, GenerateRequest, ModelInfo, TokenLogprob } from './request.ts';
import { Sampler, type SampledToken, type SamplerRow } from './sampler/sampler.ts';
import { defaultSamplingParams, InvalidArgumentError, validateSamplingParams } from './sampling-params.ts';
import { admitCount, type WaitingRequest } from './scheduler.ts';
import { Sequence } from './sequence.ts';
import { SequenceOutputProcessor } from './sequence-output.ts';
import type { Tokenizer } from './tokenizer/tokenizer.ts';
import { mx, type MxArray } from './mlx.ts';

export interface EngineOptions {
  /** Most sequences decoding at once (--batch-size). */
  batchSize: number;
  /** Prompt tokens computed per step; bounds how long a step (and so every stream) can stall. */
  prefillTokens: number;
  /** Columns a packed group of prompts may span (bounds the packed attention's cost). */
  maxGroupColumns: number;
  /** Bytes the decode batch's KV may occupy. */
  kvBudgetBytes: number;
  /** Reuse KV of shared prefixes. */
  prefixCache: boolean;
  /** Bytes the prefix cache may hold (--radix-cache-size). */
  prefixCacheBytes: number;
  /** Requests allowed to wait; beyond it a request is refused with resource_exhausted. */
  maxQueue: number;
  /**
   * Milliseconds a request may wait in the queue before it starts; then it is refused with
   * resource_exhausted (the server is overloaded). 0: no limit.
   */
  queueTimeoutMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  batchSize: 32,
  prefillTokens: 256,
  maxGroupColumns: 4096,
  kvBudgetBytes: 6 * 1024 ** 3,
  prefixCache: true,
  prefixCacheBytes: 1024 ** 3,
  maxQueue: 1024,
  queueTimeoutMs: 600_000,
};

/** Columns of growth admission leaves room for before preemption would be needed. */
const GROWTH_HEADROOM = 256;

export type EventSink = (event: EngineEvent) => void;

interface PrefillGroup {
  batch: PrefillBatch;
  sequences: Sequence[];
}

export class EngineCore {
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly byId = new Map<string, Sequence>();
  private readonly outputs = new Map<string, SequenceOutputProcessor>();
  private prefill: PrefillGroup | undefined;
  private readonly batch: BatchKvCache;
  private readonly sampler: Sampler;
  private readonly cache: RadixCache<KvBlock> | undefined;
  private readonly started = new Set<string>();
  private preemptions = 0;
  /** Bytes of the vocabulary's longest token (computed on first use). */
  private longestTokenBytes: number | undefined;

  constructor(
    private readonly model: Transformer,
    private readonly tokenizer: Tokenizer,
    private readonly modelId: string,
    private readonly opts: EngineOptions,
    private emit: EventSink,
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

  info(): ModelInfo {
    const c = this.model.config;
    return {
      id: this.modelId,
      architecture: c.architecture,
      vocabSize: c.vocabSize,
      contextLength: c.contextLength,
      hiddenSize: c.hiddenSize,
      numLayers: c.numLayers,
      kvBytesPerToken: this.batch.bytesPerCell(),
      eosTokenIds: this.tokenizer.eosTokenIds,
      bosTokenId: this.tokenizer.bosTokenId,
      hasChatTemplate: this.tokenizer.hasChatTemplate,
    };
  }

  stats(): EngineStats {
    const s = this.cache?.stats;
    return {
      running: this.running.length + (this.prefill?.sequences.length ?? 0),
      waiting: this.waiting.length,
      kvBytesUsed: this.batch.bytes + (this.prefill?.batch.bytes ?? 0),
      kvBytesCapacity: this.opts.kvBudgetBytes,
      prefixCacheBytes: this.cache?.totalBytes ?? 0,
      prefixCacheLockedBytes: this.cache?.lockedBytes ?? 0,
      prefixCacheHits: s?.hitTokens ?? 0,
      prefixCacheQueries: s?.queriedTokens ?? 0,
      preemptions: this.preemptions,
      residentBytes: process.memoryUsage.rss(),
    };
  }

  hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0 || this.prefill !== undefined;
  }

  /**
   * Runs a throw-away prompt and a few decode steps so that compiled kernels are built (MLX JIT-
   * compiles fused CPU kernels on first use) before the first real request waits on them.
   */
  warmUp(): void {
    const sink = this.emit;
    this.emit = () => {};
    try {
      for (const rows of [1, 2]) {
        for (let i = 0; i < rows; i++) {
          this.submit({
            id: `warm-up-${i}`,
            input: { kind: 'tokens', tokenIds: Array.from({ length: 20 }, (_, t) => t % this.model.config.vocabSize) },
            sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: 3, ignoreEos: true },
          });
        }
        while (this.hasWork()) this.step();
      }
    } finally {
      this.emit = sink;
      this.cache?.reset();
      // Serving starts from an empty batch (a lone request then decodes in one row).
      this.batch.clear();
    }
  }

  /** Validates and queues a request. Problems are reported as an 'error' event, never thrown. */
  submit(req: GenerateRequest): void {
    try {
      this.admit(req);
    } catch (e) {
      const field = e instanceof InvalidArgumentError ? e.field : undefined;
      const code: ErrorCode = e instanceof EngineRequestError ? e.code : field ? 'invalid_argument' : 'internal';
      this.emit({ type: 'error', requestId: String(req?.id ?? ''), code, message: (e as Error).message, field });
    }
  }

  private admit(req: GenerateRequest): void {
    if (typeof req.id !== 'string' || req.id.length === 0) throw new InvalidArgumentError('request_id', 'request_id must be a non-empty string');
    if (this.byId.has(req.id)) throw new EngineRequestError('already_exists', `request id "${req.id}" is already in use`);
    const c = this.model.config;
    validateSamplingParams(req.sampling, c.vocabSize);
    // Before tokenizing: under overload a refusal must cost next to nothing.
    if (this.waiting.length >= this.opts.maxQueue + this.freeSlots()) {
      throw new EngineRequestError('resource_exhausted', `the queue is full (${this.opts.maxQueue} requests waiting); retry later`);
    }
    const prompt = this.promptTokens(req);
    if (prompt.length >= c.contextLength) {
      throw new InvalidArgumentError(
        'prompt',
        `this model's maximum context length is ${c.contextLength} tokens, but the prompt has ${prompt.length} tokens (at least one token must be left for the output)`,
      );
    }
    const maxTokens = req.sampling.maxTokens;
    if (maxTokens !== undefined && prompt.length + maxTokens > c.contextLength) {
      throw new InvalidArgumentError(
        'max_tokens',
        `this model's maximum context length is ${c.contextLength} tokens; the prompt has ${prompt.length} tokens and max_tokens is ${maxTokens}`,
      );
    }
    const maxLength = maxTokens === undefined ? c.contextLength : prompt.length + maxTokens;
    const seed = req.sampling.seed ?? randomInt(0, 2 ** 31);
    const seq = new Sequence(req, prompt, maxLength, seed);
    this.byId.set(seq.id, seq);
    this.outputs.set(seq.id, new SequenceOutputProcessor(this.tokenizer, req.sampling));
    this.waiting.push(seq);
  }

  /** Batch rows no request holds: queued requests up to this many are about to start, not waiting. */
  private freeSlots(): number {
    return Math.max(0, this.opts.batchSize - this.running.length - (this.prefill?.sequences.length ?? 0));
  }

  /**
   * Refuses, without tokenizing it, a text that cannot fit the context window: no token spells
   * more characters than the longest token has bytes, so a text over contextLength times that
   * (doubled, for normalizers) has too many tokens. Tokenizing megabytes would stall every
   * running stream for seconds.
   */
  private checkPromptChars(field: string, text: string): void {
    if (this.longestTokenBytes === undefined) {
      let longest = 1;
      for (let id = 0; id < this.tokenizer.vocabSize; id++) longest = Math.max(longest, this.tokenizer.tokenBytes(id).length);
      this.longestTokenBytes = longest;
    }
    const limit = 2 * this.model.config.contextLength * this.longestTokenBytes;
    if (text.length > limit) {
      throw new InvalidArgumentError(
        field,
        `this model's maximum context length is ${this.model.config.contextLength} tokens, but the prompt has ${text.length} characters, far more than fit (at most ${limit})`,
      );
    }
  }

  private promptTokens(req: GenerateRequest): number[] {
    const input = req.input;
    let ids: number[];
    let field: string;
    switch (input?.kind) {
      case 'text':
        field = 'prompt';
        if (typeof input.text !== 'string') throw new InvalidArgumentError(field, 'prompt must be a string');
        this.checkPromptChars(field, input.text);
        ids = this.tokenizer.encode(input.text, { addSpecialTokens: input.addSpecialTokens ?? true });
        break;
      case 'chat': {
        field = 'messages';
        const text = this.tokenizer.applyChatTemplate(input.messages, { addGenerationPrompt: input.addGenerationPrompt ?? true });
        this.checkPromptChars(field, text);
        // The template already wrote the special tokens (as vLLM and transformers do).
        ids = this.tokenizer.encode(text, { addSpecialTokens: false });
        break;
      }
      case 'tokens': {
        field = 'prompt_token_ids';
        if (!Array.isArray(input.tokenIds)) throw new InvalidArgumentError(field, 'prompt_token_ids must be a list of integers');
        const V = this.model.config.vocabSize;
        for (const id of input.tokenIds) {
          if (!Number.isInteger(id) || id < 0 || id >= V) {
            throw new InvalidArgumentError(field, `token id ${String(id)} is outside the vocabulary [0, ${V})`);
          }
        }
        ids = [...input.tokenIds];
        break;
      }
      default:
        throw new InvalidArgumentError('input', 'a request needs a prompt: text, chat messages or token ids');
    }
    if (ids.length === 0) throw new InvalidArgumentError(field, 'the prompt is empty');
    return ids;
  }

  /** Cancels a request; it ends with finish reason 'cancelled' at the next step. Unknown ids are ignored. */
  cancel(id: string): void {
    const seq = this.byId.get(id);
    if (seq) seq.cancelled = true;
  }

  /**
   * One scheduling step. The decode batch (one token per running sequence) and the current prompt
   * chunk go through the model in one forward pass, and their next tokens are sampled together.
   * Emits events for everything that happened.
   */
  step(): void {
    this.reapCancelled();
    this.expireQueued();
    if (!this.prefill) this.startPrefillGroup();
    this.makeRoomForDecode();

    const parts: ForwardPart[] = [];
    const decoding = [...this.running];
    if (decoding.length > 0) {
      const tokens = new Array<number>(this.batch.rows).fill(0);
      for (const s of decoding) tokens[s.row as number] = s.outputTokenIds[s.outputTokenIds.length - 1];
      parts.push({ tokens: mx.array(tokens.map((t) => [t]), mx.int32), ctx: this.batch });
    }
    const group = this.prefill;
    let completing: { segment: number; packedIndex: number }[] = [];
    if (group) {
      const chunk = group.batch.prepareStep(this.opts.prefillTokens);
      completing = chunk.completing;
      parts.push({ tokens: chunk.tokens, ctx: group.batch });
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
      sampled = this.sampler.sample(logits, finishing.map((s) => this.samplerRow(s)));
    } else {
      mx.eval(...toEval);
    }

    if (decoding.length > 0) {
      this.batch.advance();
      decoding.forEach((s, i) => this.appendToken(s, sampled[i]));
    }
    if (group) {
      group.batch.finishStep();
      completing.forEach((c, i) => this.completePrefill(group, c.segment, sampled[decoding.length + i]));
      if (group.batch.complete) this.prefill = undefined;
    }
  }

  private samplerRow(s: Sequence): SamplerRow {
    return { params: s.params, promptTokenIds: s.promptTokenIds, outputTokenIds: s.outputTokenIds, seed: s.seed };
  }

  /** Finishes cancelled requests: waiting ones at once, running ones leave the batch. */
  private reapCancelled(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const s = this.waiting[i];
      if (s.cancelled) {
        this.waiting.splice(i, 1);
        this.finish(s, 'cancelled');
      }
    }
    for (const s of [...this.running]) if (s.cancelled) this.finish(s, 'cancelled');
    // A chunked prompt nobody waits for any more is abandoned mid-way.
    if (this.prefill && this.prefill.sequences.every((s) => s.cancelled)) {
      for (const s of this.prefill.sequences) this.finish(s, 'cancelled');
      this.prefill = undefined;
    }
  }

  /**
   * Refuses the requests that have waited longer than queueTimeoutMs without starting: under
   * overload a client is better told to retry (or go elsewhere) than left waiting without end.
   * Preempted requests have started (their client has tokens already) and are not refused.
   */
  private expireQueued(): void {
    const limit = this.opts.queueTimeoutMs;
    if (!(limit > 0) || this.waiting.length === 0) return;
    const now = performance.now();
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const s = this.waiting[i];
      if (this.started.has(s.id) || now - s.arrivalTime < limit) continue;
      this.waiting.splice(i, 1);
      s.status = 'finished';
      this.byId.delete(s.id);
      this.outputs.delete(s.id);
      this.emit({
        type: 'error',
        requestId: s.id,
        code: 'resource_exhausted',
        message: `the request waited ${(limit / 1000).toFixed(1)} s in the queue without starting (queue timeout); the server is overloaded, retry later`,
      });
    }
  }

  private startPrefillGroup(): void {
    if (this.waiting.length === 0) return;
    const lookahead = this.waiting.slice(0, Math.max(1, this.opts.batchSize - this.running.length));
    const matches = lookahead.map((s) => {
      const tokens = s.allTokenIds();
      // At least one token is computed: its logits give the next token.
      const match = this.cache?.matchPrefix(tokens.slice(0, -1));
      return { tokens, match };
    });
    const queue: WaitingRequest[] = matches.map((m) => ({
      newTokens: m.tokens.length - (m.match?.length ?? 0),
      promptTokens: m.tokens.length,
    }));
    const n = admitCount(queue, {
      running: this.running.length,
      runningLongest: Math.max(0, ...this.running.map((s) => s.length)),
      growthHeadroom: GROWTH_HEADROOM,
      maxRunning: this.opts.batchSize,
      prefillTokens: this.opts.prefillTokens,
      maxGroupColumns: this.opts.maxGroupColumns,
      kvBudgetBytes: this.opts.kvBudgetBytes,
      kvBytes: (rows, columns) => rows * columns * this.batch.bytesPerCell(),
    });
    if (n === 0) return;
    const sequences = this.waiting.splice(0, n);
    const segments = sequences.map((s, i) => {
      const { tokens, match } = matches[i];
      const cachedLength = match?.length ?? 0;
      s.status = 'prefilling';
      if (match && cachedLength > 0) {
        this.cache?.lock(match.node);
        s.cacheLock = match.node;
      }
      if (!this.started.has(s.id)) {
        s.cachedTokens = cachedLength;
        this.started.add(s.id);
        this.emit({ type: 'started', requestId: s.id, promptTokens: s.promptTokenIds.length, cachedTokens: cachedLength });
      }
      return {
        cached: cachedLength > 0 ? match!.payloads : undefined,
        tokens: tokens.slice(cachedLength),
      };
    });
    this.prefill = { batch: new PrefillBatch(this.model.config, this.model.rope, segments), sequences };
  }

  /** A prompt finished: cache its KV, emit its first token, and move it into the decode batch. */
  private completePrefill(group: PrefillGroup, segment: number, sampled: SampledToken): void {
    const s = group.sequences[segment];
    // The prefix stays in its cache blocks: copied once into the batch row, not first into one block.
    const parts = group.batch.sequenceParts(segment);
    const length = partsLength(parts);
    if (this.cache) this.cacheTokens(s, s.allTokenIds().slice(0, length), (start, end) => sliceParts(this.model.rope, parts, start, end));
    if (s.cancelled) {
      this.finish(s, 'cancelled');
      return;
    }
    s.status = 'running';
    this.running.push(s);
    if (this.appendToken(s, sampled)) return;
    const renumber = this.batch.reserve(this.running.length, length);
    this.applyRenumber(renumber);
    const row = this.batch.freeRow() as number;
    this.batch.join(row, parts);
    s.row = row;
  }

  private applyRenumber(renumber: Map<number, number>): void {
    for (const r of this.running) if (r.row !== undefined) r.row = renumber.get(r.row) ?? r.row;
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
    this.cacheTokens(s, s.allTokenIds().slice(0, length), (start, end) => {
      if (end !== length) throw new Error(`the cache asked for tokens [${start}, ${end}) of a row of ${length}`);
      return this.batch.extract(row, start);
    });
  }

  /** Adds a sampled token, emits it, and finishes the sequence if it should stop. Returns whether it finished. */
  private appendToken(s: Sequence, sampled: SampledToken): boolean {
    s.outputTokenIds.push(sampled.tokenId);
    s.firstTokenTime ??= performance.now();
    const out = this.outputs.get(s.id) as SequenceOutputProcessor;
    const step = out.push(sampled.tokenId, s.outputTokenIds.length, s.length >= s.maxLength);
    const logprobs = sampled.logprob === undefined ? undefined : [this.tokenLogprob(sampled)];
    this.emit({ type: 'delta', requestId: s.id, text: step.text, tokenIds: [sampled.tokenId], logprobs });
    if (step.finishReason) {
      this.finish(s, step.finishReason, step.stopReason);
      return true;
    }
    return false;
  }

  private tokenLogprob(t: SampledToken): TokenLogprob {
    const describe = (tokenId: number) => ({
      tokenId,
      token: this.tokenizer.tokenText(tokenId),
      bytes: Array.from(this.tokenizer.tokenBytes(tokenId)),
    });
    return {
      ...describe(t.tokenId),
      logprob: t.logprob as number,
      top: (t.topLogprobs ?? []).map((a) => ({ ...describe(a.tokenId), logprob: a.logprob })),
    };
  }

  /** Ends a sequence: frees its row (caching its KV), releases its cache lock, emits 'finished'. */
  private finish(s: Sequence, reason: FinishReason, stopReason?: string | number, error?: string): void {
    if (s.status === 'finished') return;
    const idx = this.running.indexOf(s);
    if (idx >= 0) this.running.splice(idx, 1);
    if (s.row !== undefined) {
      if (this.cache && reason !== 'error') this.cacheRow(s, s.row);
      this.batch.leave(s.row);
      s.row = undefined;
    }
    s.status = 'finished';
    if (s.cacheLock) {
      this.cache?.unlock(s.cacheLock as RadixNode<KvBlock>);
      s.cacheLock = undefined;
    }
    const out = this.outputs.get(s.id);
    const tail = out?.flush() ?? '';
    if (tail) this.emit({ type: 'delta', requestId: s.id, text: tail, tokenIds: [] });
    this.byId.delete(s.id);
    this.outputs.delete(s.id);
    this.started.delete(s.id);
    this.emit({
      type: 'finished',
      requestId: s.id,
      finishReason: reason,
      stopReason,
      usage: { promptTokens: s.promptTokenIds.length, completionTokens: s.outputTokenIds.length, cachedTokens: s.cachedTokens },
      error,
    });
  }

  /**
   * Before a decode step: the batch needs a column to write; if growing would exceed the KV
   * budget, the newest sequences are preempted (their KV goes to the prefix cache and they wait to
   * be recomputed, as vLLM's recompute preemption).
   */
  private makeRoomForDecode(): void {
    if (this.running.length === 0) return;
    while (this.running.length > 1 && this.batch.bytesAfterReserve(this.running.length, 0) > this.opts.kvBudgetBytes) {
      this.preempt(this.running[this.running.length - 1]);
    }
    this.applyRenumber(this.batch.reserve(this.running.length));
  }

  private preempt(s: Sequence): void {
    this.preemptions++;
    this.running.splice(this.running.indexOf(s), 1);
    if (s.row !== undefined) {
      if (this.cache) this.cacheRow(s, s.row);
      this.batch.leave(s.row);
      s.row = undefined;
    }
    s.status = 'waiting';
    this.waiting.unshift(s);
  }

  /**
   * Fails the requests being computed (after an unexpected error inside a step) and resets the
   * batch; waiting requests stay queued.
   */
  failAll(message: string): void {
    const inFlight = [...this.running, ...(this.prefill?.sequences ?? [])];
    this.prefill = undefined;
    for (const s of inFlight) {
      s.row = undefined;
      this.finish(s, 'error', undefined, message);
    }
    this.running.length = 0;
    this.batch.clear();
  }
}

class EngineRequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
