// logit_bias and the repetition, frequency and presence penalties applied in place to one row of
// a JS-owned Float32Array (the CPU sampler's logits). As penalty-state.ts does for the device, a
// request's bookkeeping is kept across decode steps, so each step only takes in the tokens
// generated since the last one and touches only the entries the adjustments name.
import type { EngineSamplingParams } from '../sampling-params.ts';
import { checkTokenId, logitBiasEntries } from './penalty-inputs.ts';

/** Entries of a logits array overwritten in place, with their previous values, to put them back. */
export class OverwrittenLogits {
  private readonly indices: number[] = [];
  private readonly previous: number[] = [];

  set(logits: Float32Array, index: number, value: number): void {
    this.indices.push(index);
    this.previous.push(logits[index]);
    logits[index] = value;
  }

  /** Puts every overwritten entry back (latest first, so an entry written twice gets its first value). */
  restore(logits: Float32Array): void {
    for (let i = this.indices.length - 1; i >= 0; i--) logits[this.indices[i]] = this.previous[i];
    this.indices.length = 0;
    this.previous.length = 0;
  }
}

export class HostPenaltyState {
  readonly bias: readonly (readonly [number, number])[];
  /** Prompt and output tokens, each once: the repetition penalty's set. Only kept when that penalty is on. */
  private readonly repeatedIds: number[] = [];
  private readonly repeated = new Set<number>();
  /** How often each output token occurred, for the frequency and presence penalties. Only kept when one is on. */
  private readonly outputCounts = new Map<number, number>();
  private consumed = 0;
  private lastConsumed = -1;

  constructor(
    readonly params: EngineSamplingParams,
    readonly promptTokenIds: readonly number[],
    readonly vocabSize: number,
  ) {
    this.bias = logitBiasEntries(params, vocabSize);
    if (params.repetitionPenalty !== 1) {
      for (const id of promptTokenIds) {
        checkTokenId('prompt token ids', id, vocabSize);
        this.markRepeated(id);
      }
    }
  }

  private markRepeated(id: number): void {
    if (this.repeated.has(id)) return;
    this.repeated.add(id);
    this.repeatedIds.push(id);
  }

  /** True when `outputTokenIds` continues what this state has consumed (the engine appends to one array). */
  continues(outputTokenIds: readonly number[]): boolean {
    if (outputTokenIds.length < this.consumed) return false;
    return this.consumed === 0 || outputTokenIds[this.consumed - 1] === this.lastConsumed;
  }

  /** Takes in the output tokens generated since the last call. */
  consume(outputTokenIds: readonly number[]): void {
    const { repetitionPenalty, frequencyPenalty, presencePenalty } = this.params;
    const counts = frequencyPenalty !== 0 || presencePenalty !== 0;
    for (let i = this.consumed; i < outputTokenIds.length; i++) {
      const id = outputTokenIds[i];
      checkTokenId('output token ids', id, this.vocabSize);
      if (repetitionPenalty !== 1) this.markRepeated(id);
      if (counts) this.outputCounts.set(id, (this.outputCounts.get(id) ?? 0) + 1);
    }
    this.consumed = outputTokenIds.length;
    if (this.consumed > 0) this.lastConsumed = outputTokenIds[this.consumed - 1];
  }

  /**
   * Adjusts logits[offset, offset + vocabSize) in vLLM's order: bias, then the repetition penalty
   * (on the biased logit), then frequency and presence. Every write goes through `overwritten`.
   */
  apply(logits: Float32Array, offset: number, overwritten: OverwrittenLogits): void {
    const { repetitionPenalty, frequencyPenalty, presencePenalty } = this.params;
    for (const [id, bias] of this.bias) overwritten.set(logits, offset + id, logits[offset + id] + bias);
    if (repetitionPenalty !== 1) {
      for (const id of this.repeatedIds) {
        const x = logits[offset + id];
        overwritten.set(logits, offset + id, x > 0 ? x / repetitionPenalty : x * repetitionPenalty);
      }
    }
    for (const [id, count] of this.outputCounts) {
      overwritten.set(logits, offset + id, logits[offset + id] - (frequencyPenalty * count + presencePenalty));
    }
  }
}

/**
 * Finds each request's HostPenaltyState by the identity of its outputTokenIds array, which the
 * engine keeps and appends to for the life of a request. A different prompt, params object or
 * history starts a fresh state, so a miss costs time, never correctness. Entries die with their arrays.
 */
export class HostPenaltyStateCache {
  private readonly states = new WeakMap<readonly number[], HostPenaltyState>();

  constructor(private readonly vocabSize: number) {}

  get(params: EngineSamplingParams, promptTokenIds: readonly number[], outputTokenIds: readonly number[]): HostPenaltyState {
    let state = this.states.get(outputTokenIds);
    if (!state || state.params !== params || state.promptTokenIds !== promptTokenIds || !state.continues(outputTokenIds)) {
      state = new HostPenaltyState(params, promptTokenIds, this.vocabSize);
      this.states.set(outputTokenIds, state);
    }
    state.consume(outputTokenIds);
    return state;
  }
}
