// What a request's logit_bias and penalties need to know about its tokens, kept across decode
// steps so each step only adds the tokens generated since the last one.
import type { EngineSamplingParams } from '../sampling-params.ts';
import { DeviceTokenList } from './device-token-list.ts';
import { checkTokenId, logitBiasEntries } from './penalty-inputs.ts';
import { mx, type MxArray } from '../mlx.ts';

export class PenaltyState {
  /** Prompt and output tokens, each once: the repetition penalty's set. Only kept when that penalty is on. */
  readonly repeatedIds = new DeviceTokenList();
  /** Every output token, repeats included: scatter-adding -frequency per entry gives -frequency*count. */
  readonly outputIds = new DeviceTokenList();
  /** Each output token once: the presence penalty's set. */
  readonly outputDistinctIds = new DeviceTokenList();
  /** logit_bias as (id, value) pairs, and on the device for steps without a repetition penalty. */
  readonly bias: readonly (readonly [number, number])[];
  readonly biasIds: MxArray | null;
  readonly biasValues: MxArray | null;

  /** Position of each id in repeatedIds. */
  private readonly seen = new Map<number, number>();
  private readonly seenInOutput = new Set<number>();
  private consumed = 0;
  private lastConsumed = -1;

  constructor(
    readonly params: EngineSamplingParams,
    readonly promptTokenIds: readonly number[],
    readonly vocabSize: number,
  ) {
    const bias = logitBiasEntries(params, vocabSize);
    this.bias = bias;
    this.biasIds = bias.length
      ? mx.array(
          bias.map(([id]) => id),
          mx.int32,
        )
      : null;
    this.biasValues = bias.length
      ? mx.array(
          bias.map(([, value]) => value),
          mx.float32,
        )
      : null;
    if (params.repetitionPenalty !== 1) {
      for (const id of promptTokenIds) {
        checkTokenId('prompt token ids', id, vocabSize);
        this.markRepeated(id);
      }
    }
  }

  /** Where `id` sits in repeatedIds, or -1 when it has not been seen. */
  repeatedIndex(id: number): number {
    return this.seen.get(id) ?? -1;
  }

  private markRepeated(id: number): void {
    if (this.seen.has(id)) return;
    this.seen.set(id, this.repeatedIds.length);
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
    for (let i = this.consumed; i < outputTokenIds.length; i++) {
      const id = outputTokenIds[i];
      checkTokenId('output token ids', id, this.vocabSize);
      if (repetitionPenalty !== 1) this.markRepeated(id);
      if (frequencyPenalty !== 0) this.outputIds.push(id);
      if (presencePenalty !== 0 && !this.seenInOutput.has(id)) {
        this.seenInOutput.add(id);
        this.outputDistinctIds.push(id);
      }
    }
    this.consumed = outputTokenIds.length;
    if (this.consumed > 0) this.lastConsumed = outputTokenIds[this.consumed - 1];
  }
}

/**
 * Finds each request's PenaltyState by the identity of its outputTokenIds array, which the engine
 * keeps and appends to for the life of a request. A different prompt, params object or history
 * starts a fresh state, so a miss costs time, never correctness. Entries die with their arrays.
 */
export class PenaltyStateCache {
  private readonly states = new WeakMap<readonly number[], PenaltyState>();

  constructor(private readonly vocabSize: number) {}

  get(params: EngineSamplingParams, promptTokenIds: readonly number[], outputTokenIds: readonly number[]): PenaltyState {
    let state = this.states.get(outputTokenIds);
    if (!state || state.params !== params || state.promptTokenIds !== promptTokenIds || !state.continues(outputTokenIds)) {
      state = new PenaltyState(params, promptTokenIds, this.vocabSize);
      this.states.set(outputTokenIds, state);
    }
    state.consume(outputTokenIds);
    return state;
  }
}
