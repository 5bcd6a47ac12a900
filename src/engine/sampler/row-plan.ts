// How one row of a batch will be sampled, decided in JS from its parameters alone (never from other
// rows, so a request's tokens do not depend on its neighbours). Plain JS, no MLX: the MLX and CPU
// samplers share it, so they validate and plan rows alike.
import type { EngineSamplingParams } from '../sampling-params.ts';
import { GREEDY_TEMPERATURE } from './reference.ts';
import { hasLogitAdjustments } from './penalty-inputs.ts';
import { stepKey } from './step-key.ts';

/**
 * - greedy: argmax of the adjusted logits; no randomness.
 * - unfiltered: temperature only; samples from the whole vocabulary.
 * - filtered: min_p, top_k or top_p is on (filtered-sampling.ts).
 */
export type SamplingRoute = 'greedy' | 'unfiltered' | 'filtered';

export interface RowPlan {
  /** Row of the logits batch. */
  batchRow: number;
  route: SamplingRoute;
  temperature: number;
  /** 0 when off (also when top_k >= V). */
  topK: number;
  /** 1 when off. */
  topP: number;
  /** log(min_p); -inf when off. */
  logMinP: number;
  /** top_p with no top_k or min_p: its mass is relative to the whole vocabulary's. */
  needsFullMass: boolean;
  /** Key of this step's random stream (from the request seed and the step; step-key.ts). */
  stepKey: number[];
  adjustsLogits: boolean;
  wantsLogprob: boolean;
  /** How many alternatives to report, at most the vocabulary size. */
  topLogprobs: number;
}

export interface PlanInput {
  params: EngineSamplingParams;
  outputTokenIds: readonly number[];
  seed: number;
}

/**
 * Plans one row. Its parameters were validated once, when the engine admitted the request
 * (engine-core.ts); a step does not check them again.
 */
export function planRow(batchRow: number, row: PlanInput, vocabSize: number): RowPlan {
  const p = row.params;
  const greedy = p.temperature < GREEDY_TEMPERATURE;
  const topK = p.topK > 0 && p.topK < vocabSize ? p.topK : 0;
  const topP = Math.min(p.topP, 1);
  const logMinP = p.minP > 0 ? Math.log(p.minP) : -Infinity;
  const filtered = topK > 0 || topP < 1 || logMinP > -Infinity;
  const route: SamplingRoute = greedy ? 'greedy' : filtered ? 'filtered' : 'unfiltered';
  return {
    batchRow,
    route,
    temperature: greedy ? 1 : p.temperature,
    topK,
    topP,
    logMinP,
    needsFullMass: topP < 1 && topK === 0 && logMinP === -Infinity,
    stepKey: greedy ? [] : stepKey(row.seed, row.outputTokenIds.length),
    adjustsLogits: hasLogitAdjustments(p),
    wantsLogprob: p.logprobs || p.topLogprobs > 0,
    topLogprobs: Math.min(p.topLogprobs, vocabSize),
  };
}
