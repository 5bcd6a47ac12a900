// The engine's request lifecycle, one step at a time, synchronously: requests (token ids) are
// checked and queued here, their sampled tokens are emitted here, and they end here: on a stop
// token, at max_tokens or the context's end, or when cancelled. What runs the model and holds its
// keys and values is the backend (engine-backend.ts): MLX or the native CPU kernels. It runs inside
// the engine process (engine-process.ts); text is the server's (src/text).
import { randomInt } from 'node:crypto';
import type { BackendHost, EngineBackend } from './engine-backend.ts';
import { type EngineOptions, servedContextLength } from './engine-options.ts';
import type { ConstraintProvider, TokenConstraint } from './grammar/grammar-matchers.ts';
import { layerModulePaths } from './lora/lora-adapter.ts';
import { LoraRegistry, LoraRegistryError } from './lora/lora-registry.ts';
import type { ModelConfig } from './model/config.ts';
import type { AdapterInfo, EngineEvent, EngineModelInfo, EngineRequest, EngineStats, ErrorCode, FinishReason } from './request.ts';
import type { SampledToken } from './sampler/sampler.ts';
import { defaultSamplingParams, InvalidArgumentError, validateEngineSamplingParams } from './sampling-params.ts';
import { Sequence } from './sequence.ts';
import { validateStructuredOutput } from './structured-output.ts';

export type { EngineOptions } from './engine-options.ts';
export { DEFAULT_ENGINE_OPTIONS } from './engine-options.ts';

export type EventSink = (event: EngineEvent) => void;

/** What the engine core runs: a model's configuration and a backend that computes it. */
export interface EngineModel {
  id: string;
  config: ModelConfig;
  createBackend(opts: EngineOptions): EngineBackend;
}

export class EngineCore {
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly byId = new Map<string, Sequence>();
  /** Structured-output requests whose grammar is compiling; they queue once it is ready. */
  private readonly compiling = new Set<Sequence>();
  private readonly started = new Set<string>();
  private readonly backend: EngineBackend;
  private readonly host: BackendHost;
  private readonly config: ModelConfig;
  /** The context one request may fill: the model's, or less (--max-model-len). */
  private readonly contextLength: number;
  private readonly modelId: string;
  private preemptions = 0;
  private readonly loras: LoraRegistry;
  /** Compiles and runs the grammars of structured-output requests; without it they are refused. */
  constraints: ConstraintProvider | undefined;
  /**
   * Called when something happened between steps (a request's grammar compiled or failed): the
   * step loop may be idle and events may be waiting to be sent.
   */
  wake: () => void = () => {};

  constructor(
    model: EngineModel,
    private readonly opts: EngineOptions,
    private emit: EventSink,
  ) {
    this.config = model.config;
    this.contextLength = servedContextLength(model.config.contextLength, opts.maxModelLen);
    this.modelId = model.id;
    this.backend = model.createBackend(opts);
    this.loras = new LoraRegistry(
      { config: this.config, modules: layerModulePaths(this.config) },
      { maxLoras: opts.maxLoras, maxRank: opts.maxLoraRank },
      this.backend,
    );
    for (const { name, path } of opts.loras) this.loras.load(name, path);
    this.host = {
      opts,
      waiting: this.waiting,
      running: this.running,
      markStarted: (s, cachedTokens) => {
        if (this.started.has(s.id)) return;
        s.cachedTokens = cachedTokens;
        this.started.add(s.id);
        this.emit({ type: 'started', requestId: s.id, promptTokens: s.promptTokenIds.length, cachedTokens });
      },
      appendToken: (s, sampled) => this.appendToken(s, sampled),
      finish: (s, reason) => this.finish(s, reason),
      requeue: (s) => {
        this.preemptions++;
        this.leaveLoraSlot(s);
        s.status = 'waiting';
        this.waiting.unshift(s);
      },
      admitLora: (s) => {
        if (!s.adapter || s.loraSlot >= 0) return true;
        const slot = this.loras.admit(s.adapter);
        if (slot === undefined) return false;
        s.loraSlot = slot;
        return true;
      },
    };
  }

  info(): EngineModelInfo {
    const c = this.config;
    return {
      id: this.modelId,
      architecture: c.architecture,
      vocabSize: c.vocabSize,
      contextLength: this.contextLength,
      hiddenSize: c.hiddenSize,
      numLayers: c.numLayers,
      kvBytesPerToken: this.backend.kvBytesPerToken,
      adapters: this.loras.list(),
    };
  }

  /** Serves the LoRA adapter in `path` as `name`; throws LoraRegistryError or LoraAdapterError. */
  loadAdapter(name: string, path: string): AdapterInfo {
    return this.loras.load(name, path);
  }

  /** Stops serving an adapter; `drained` is called once the requests using it have ended. */
  unloadAdapter(name: string, drained: () => void): void {
    this.loras.unload(name, drained);
  }

  /** The adapters served, in load order. */
  adapters(): AdapterInfo[] {
    return this.loras.list();
  }

  stats(): EngineStats {
    const b = this.backend.stats(this.running);
    return {
      running: this.running.length + this.backend.prefilling.length,
      waiting: this.waiting.length + this.compiling.size,
      kvBytesUsed: b.kvBytesUsed,
      kvBytesAllocated: b.kvBytesAllocated,
      kvBytesCapacity: this.opts.kvBudgetBytes,
      prefixCacheBytes: b.prefixCacheBytes,
      prefixCacheLockedBytes: b.prefixCacheLockedBytes,
      prefixCacheHits: b.prefixCacheHits,
      prefixCacheQueries: b.prefixCacheQueries,
      preemptions: this.preemptions,
      residentBytes: process.memoryUsage.rss(),
      lora: { ...this.loras.usage(), maxLoras: this.opts.maxLoras },
    };
  }

  hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0 || this.backend.prefilling.length > 0;
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
            promptTokenIds: Array.from({ length: 20 }, (_, t) => t % this.config.vocabSize),
            sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: 3 },
          });
        }
        while (this.hasWork()) this.step();
      }
    } finally {
      this.emit = sink;
      this.backend.clearCache();
    }
  }

  /**
   * Checks and queues a request. Problems are reported as an 'error' event, never thrown. The
   * server checked the request already; these checks guard the engine (a bad token id inside MLX
   * aborts the process) and answer clients of the engine alone.
   */
  submit(req: EngineRequest): void {
    try {
      this.admit(req);
    } catch (e) {
      this.emit(refusal(String(req?.id ?? ''), e));
    }
  }

  private admit(req: EngineRequest): void {
    if (typeof req.id !== 'string' || req.id.length === 0)
      throw new InvalidArgumentError('request_id', 'request_id must be a non-empty string');
    if (this.byId.has(req.id)) throw new EngineRequestError('already_exists', `request id "${req.id}" is already in use`);
    const c = this.config;
    validateEngineSamplingParams(req.sampling, c.vocabSize);
    const spec = req.sampling.structuredOutput;
    if (spec !== undefined) {
      validateStructuredOutput(spec);
      if (!this.constraints)
        throw new InvalidArgumentError(
          'structured_output',
          'structured output is not available: the engine has no vocabulary for grammars',
        );
    }
    if (this.waiting.length + this.compiling.size >= this.opts.maxQueue + this.freeSlots()) {
      throw new EngineRequestError('resource_exhausted', `the queue is full (${this.opts.maxQueue} requests waiting); retry later`);
    }
    const prompt = req.promptTokenIds;
    if (!Array.isArray(prompt) || prompt.length === 0) throw new InvalidArgumentError('prompt_token_ids', 'the prompt is empty');
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new InvalidArgumentError('prompt_token_ids', `token id ${String(id)} is outside the vocabulary [0, ${c.vocabSize})`);
      }
    }
    const context = this.contextLength;
    if (prompt.length >= context) {
      throw new InvalidArgumentError(
        'prompt',
        `this model's maximum context length is ${context} tokens, but the prompt has ${prompt.length} tokens (at least one token must be left for the output)`,
      );
    }
    const maxTokens = req.sampling.maxTokens;
    if (maxTokens !== undefined && prompt.length + maxTokens > context) {
      throw new InvalidArgumentError(
        'max_tokens',
        `this model's maximum context length is ${context} tokens; the prompt has ${prompt.length} tokens and max_tokens is ${maxTokens}`,
      );
    }
    const maxLength = maxTokens === undefined ? context : prompt.length + maxTokens;
    if (req.adapter !== undefined && typeof req.adapter !== 'string') throw new InvalidArgumentError('adapter', 'adapter must be a string');
    const seed = req.sampling.seed ?? randomInt(0, 2 ** 31);
    const seq = new Sequence(req, [...prompt], maxLength, seed);
    // Last: from here on the request counts as a user of its adapter until it ends.
    if (req.adapter !== undefined) {
      seq.adapter = this.loras.use(req.adapter);
      seq.cacheKeyOffset = seq.adapter.generation * c.vocabSize;
    }
    this.byId.set(seq.id, seq);
    if (spec === undefined || !this.constraints) {
      this.waiting.push(seq);
      return;
    }
    this.compiling.add(seq);
    this.constraints.open(spec, req.sampling.stopTokenIds).then(
      (c) => this.constraintReady(seq, c),
      (err: Error) => this.constraintFailed(seq, err),
    );
  }

  private constraintReady(s: Sequence, c: TokenConstraint): void {
    if (!this.compiling.delete(s)) return void c.close();
    s.constraint = c;
    if (s.cancelled) this.finish(s, 'cancelled');
    else this.waiting.push(s);
    this.wake();
  }

  private constraintFailed(s: Sequence, err: Error): void {
    if (!this.compiling.delete(s)) return;
    this.forget(s);
    s.status = 'finished';
    this.emit(refusal(s.id, err));
    this.wake();
  }

  /** Batch rows no request holds: queued requests up to this many are about to start, not waiting. */
  private freeSlots(): number {
    return Math.max(0, this.opts.batchSize - this.running.length - this.backend.prefilling.length);
  }

  /** Cancels a request; it ends with finish reason 'cancelled' at the next step. Unknown ids are ignored. */
  cancel(id: string): void {
    const seq = this.byId.get(id);
    if (seq) seq.cancelled = true;
  }

  /**
   * One scheduling step: requests cancelled or expired in the queue end, then the backend computes
   * prompt chunks and one token for every running sequence, and the results are emitted.
   */
  step(): void {
    this.reapCancelled();
    this.expireQueued();
    this.backend.step(this.host);
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
      this.forget(s);
      this.emit({
        type: 'error',
        requestId: s.id,
        code: 'resource_exhausted',
        message: `the request waited ${(limit / 1000).toFixed(1)} s in the queue without starting (queue timeout); the server is overloaded, retry later`,
      });
    }
  }

  /**
   * Adds a sampled token, emits it, and finishes the sequence if it should stop: on a stop token
   * (whose id ends the generation; the server puts end-of-sequence tokens among them), or at
   * max_tokens or the context's end. Returns whether it finished.
   */
  private appendToken(s: Sequence, sampled: SampledToken): boolean {
    if (s.constraint?.ended) {
      // The grammar ended the output without a stop token (or allows nothing more): the token
      // sampled from a row with nothing allowed is not part of it.
      if (s.constraint.failed) this.finish(s, 'error', undefined, 'the grammar could not follow the output');
      else this.finish(s, 'stop');
      return true;
    }
    s.outputTokenIds.push(sampled.tokenId);
    s.constraint?.accept(sampled.tokenId);
    s.firstTokenTime ??= performance.now();
    const logprobs =
      sampled.logprob === undefined ? undefined : [{ tokenId: sampled.tokenId, logprob: sampled.logprob, top: sampled.topLogprobs ?? [] }];
    this.emit({ type: 'tokens', requestId: s.id, tokenIds: [sampled.tokenId], logprobs });
    if (s.stopTokenIds.has(sampled.tokenId)) {
      this.finish(s, 'stop', sampled.tokenId);
      return true;
    }
    if (s.length >= s.maxLength) {
      this.finish(s, 'length');
      return true;
    }
    return false;
  }

  /** Ends a sequence: the backend frees its KV (caching it unless it failed), then 'finished' is emitted. */
  private finish(s: Sequence, reason: FinishReason, stopTokenId?: number, error?: string): void {
    if (s.status === 'finished') return;
    const idx = this.running.indexOf(s);
    if (idx >= 0) this.running.splice(idx, 1);
    this.backend.release(s, reason !== 'error');
    s.constraint?.close();
    s.constraint = undefined;
    s.status = 'finished';
    this.leaveLoraSlot(s);
    this.forget(s);
    this.started.delete(s.id);
    this.emit({
      type: 'finished',
      requestId: s.id,
      finishReason: reason,
      stopTokenId,
      usage: { promptTokens: s.promptTokenIds.length, completionTokens: s.outputTokenIds.length, cachedTokens: s.cachedTokens },
      error,
    });
  }

  /** A sequence leaves the batch: its adapter's slot may go to another adapter. */
  private leaveLoraSlot(s: Sequence): void {
    if (s.adapter && s.loraSlot >= 0) this.loras.leave(s.adapter);
    s.loraSlot = -1;
  }

  /** A request has ended: its id is free again and it no longer holds its adapter. */
  private forget(s: Sequence): void {
    this.byId.delete(s.id);
    if (s.adapter) this.loras.end(s.adapter);
    s.adapter = undefined;
  }

  /**
   * Fails the requests being computed (after an unexpected error inside a step) and resets the
   * backend; waiting requests stay queued.
   */
  failAll(message: string): void {
    const inFlight = [...this.running, ...this.backend.prefilling];
    for (const s of inFlight) this.finish(s, 'error', undefined, message);
    this.backend.reset();
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

/** The 'error' event refusing a request for what was thrown while admitting it. */
function refusal(requestId: string, e: unknown): Extract<EngineEvent, { type: 'error' }> {
  const invalid = e instanceof InvalidArgumentError ? e : undefined;
  const code: ErrorCode =
    e instanceof EngineRequestError || e instanceof LoraRegistryError ? e.code : invalid ? 'invalid_argument' : 'internal';
  return { type: 'error', requestId, code, message: (e as Error).message, field: invalid?.field, reason: invalid?.reason };
}
