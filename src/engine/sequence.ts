// One request's state inside the engine, from submission to its last event. The single record the
// scheduler, the step loop and the backends share (nano-vllm's Sequence).
import type { TokenConstraint } from './grammar/grammar-matchers.ts';
import type { ServedAdapter } from './lora/lora-registry.ts';
import type { EngineRequest } from './request.ts';
import type { SamplerRow } from './sampler/sampler.ts';
import type { EngineSamplingParams } from './sampling-params.ts';

export type SequenceStatus = 'waiting' | 'prefilling' | 'running' | 'finished';

export class Sequence {
  status: SequenceStatus = 'waiting';
  readonly outputTokenIds: number[] = [];
  /** Prompt tokens whose KV came from the prefix cache. */
  cachedTokens = 0;
  /** Row in the decode batch while running. */
  row: number | undefined;
  /** Set when the client cancelled; the step loop finishes the sequence at its next step. */
  cancelled = false;
  /** Prefix-cache node this sequence keeps locked (opaque to everything but the engine). */
  cacheLock: unknown;
  readonly arrivalTime = performance.now();
  firstTokenTime: number | undefined;
  /** Structured output: the grammar state that decides which tokens may come next. */
  constraint: TokenConstraint | undefined;
  /** The LoRA adapter it generates with (undefined: the base model). */
  adapter: ServedAdapter | undefined;
  /** The model's LoRA slot holding that adapter while the sequence is in the batch; -1: none. */
  loraSlot = -1;
  /**
   * Added to every token id of the prefix cache's keys: 0 for the base model, a multiple of the
   * vocabulary size per adapter load, so KV computed under one adapter is never found under another.
   */
  cacheKeyOffset = 0;

  /** Tokens that end generation when sampled. */
  readonly stopTokenIds: ReadonlySet<number>;

  constructor(
    readonly request: EngineRequest,
    readonly promptTokenIds: readonly number[],
    /** The longest the sequence may grow (prompt + output), from max_tokens and the context. */
    readonly maxLength: number,
    /** The sampler's seed: the client's, or a random one. */
    readonly seed: number,
  ) {
    this.stopTokenIds = new Set(request.sampling.stopTokenIds);
  }

  get id(): string {
    return this.request.id;
  }
  get params(): EngineSamplingParams {
    return this.request.sampling;
  }
  get length(): number {
    return this.promptTokenIds.length + this.outputTokenIds.length;
  }
  /** What the sampler needs of this sequence for its next token (waits for its grammar mask). */
  samplerRow(): SamplerRow {
    return {
      params: this.params,
      promptTokenIds: this.promptTokenIds,
      outputTokenIds: this.outputTokenIds,
      seed: this.seed,
      allowedTokens: this.constraint?.allowedTokens(),
    };
  }
  /** Every token so far: prompt then output. */
  allTokenIds(): number[] {
    return [...this.promptTokenIds, ...this.outputTokenIds];
  }
  /** The prefix cache's key for this sequence's first `length` tokens (see cacheKeyOffset). */
  cacheKey(length: number): number[] {
    const tokens = this.allTokenIds().slice(0, length);
    const offset = this.cacheKeyOffset;
    return offset === 0 ? tokens : tokens.map((t) => t + offset);
  }
}
