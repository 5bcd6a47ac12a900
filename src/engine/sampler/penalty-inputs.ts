// What a request's logit_bias and penalties take as input, checked, in plain JS (no MLX) so the
// MLX and CPU samplers refuse the same things with the same messages.
import { InvalidArgumentError, type EngineSamplingParams } from '../sampling-params.ts';

export function hasLogitAdjustments(p: EngineSamplingParams): boolean {
  return p.repetitionPenalty !== 1 || p.frequencyPenalty !== 0 || p.presencePenalty !== 0 || Object.keys(p.logitBias).length > 0;
}

/** Throws InvalidArgumentError naming `field` when `id` is not a token of the vocabulary. */
export function checkTokenId(field: string, id: number, vocabSize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new InvalidArgumentError(field, `${field} contains token id ${String(id)} outside the vocabulary [0, ${vocabSize})`);
  }
}

/** logit_bias as checked (token id, value) pairs. */
export function logitBiasEntries(params: EngineSamplingParams, vocabSize: number): (readonly [number, number])[] {
  const bias = Object.entries(params.logitBias).map(([key, value]) => [Number(key), value] as const);
  for (const [id, value] of bias) {
    checkTokenId('logit_bias', id, vocabSize);
    if (!Number.isFinite(value)) throw new InvalidArgumentError('logit_bias', `logit_bias values must be finite, got ${value}`);
  }
  return bias;
}
