// The sampler's semantics in plain JavaScript (float64, one row at a time, no MLX). It is the
// executable definition the device sampler is tested against, and the place to read what each
// parameter does. Order as in vLLM v1: logit_bias, repetition penalty, frequency and presence
// penalties, temperature, then min_p, top_k and top_p; logprobs come from the raw logits.
import type { EngineSamplingParams } from '../sampling-params.ts';

/** Temperatures below this are greedy (vLLM's _SAMPLING_EPS); dividing by them would overflow. */
export const GREEDY_TEMPERATURE = 1e-5;

export interface ReferenceRow {
  params: EngineSamplingParams;
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
}

/** logit_bias, then repetition penalty over prompt+output, then frequency/presence over output. */
export function referenceAdjustedLogits(logits: readonly number[], row: ReferenceRow): number[] {
  const x = logits.slice();
  const { logitBias, repetitionPenalty, frequencyPenalty, presencePenalty } = row.params;
  for (const [id, bias] of Object.entries(logitBias)) x[Number(id)] += bias;
  if (repetitionPenalty !== 1) {
    for (const id of new Set([...row.promptTokenIds, ...row.outputTokenIds])) {
      x[id] = x[id] > 0 ? x[id] / repetitionPenalty : x[id] * repetitionPenalty;
    }
  }
  const counts = new Map<number, number>();
  for (const id of row.outputTokenIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, count] of counts) x[id] -= frequencyPenalty * count + presencePenalty;
  return x;
}

export interface ReferenceDistribution {
  greedy: boolean;
  /** The greedy choice (first index of the maximum) when greedy; otherwise the most likely token. */
  argmax: number;
  /** Tokens that survive min_p, top_k and top_p. Thresholds are values, so ties at a cut are all kept. */
  allowed: boolean[];
  /** Sampling probability of each token (0 outside `allowed`); one-hot on argmax when greedy. */
  probs: number[];
  /** How close the nearest filter decision was to flipping, in scaled-logit units (for tests to skip knife-edge cases). */
  margin: number;
}

export function referenceDistribution(logits: readonly number[], row: ReferenceRow): ReferenceDistribution {
  const x = referenceAdjustedLogits(logits, row);
  const V = x.length;
  let argmax = 0;
  for (let i = 1; i < V; i++) if (x[i] > x[argmax]) argmax = i;
  const { temperature, topK, topP, minP } = row.params;
  if (temperature < GREEDY_TEMPERATURE) {
    const probs = x.map((_, i) => (i === argmax ? 1 : 0));
    return { greedy: true, argmax, allowed: probs.map((p) => p === 1), probs, margin: Infinity };
  }
  const s = x.map((v) => v / temperature);
  const m = s[argmax];
  const sortedDesc = s.slice().sort((a, b) => b - a);
  let threshold = -Infinity;
  let margin = Infinity;
  const distanceTo = (t: number) => Math.min(...s.map((v) => Math.abs(v - t)));
  if (minP > 0) {
    const t = m + Math.log(minP);
    threshold = Math.max(threshold, t);
    margin = Math.min(margin, distanceTo(t));
  }
  if (topK > 0 && topK < V) {
    threshold = Math.max(threshold, sortedDesc[topK - 1]);
    // The k-th and (k+1)-th values must differ for the top-k set to be well defined.
    margin = Math.min(margin, sortedDesc[topK - 1] - sortedDesc[topK]);
  }
  if (topP < 1) {
    const kept = sortedDesc.filter((v) => v >= threshold);
    const w = kept.map((v) => Math.exp(v - m));
    const total = w.reduce((a, b) => a + b, 0);
    let before = 0;
    let last = 0;
    let massMargin = Infinity;
    for (let r = 0; r < kept.length; r++) {
      massMargin = Math.min(massMargin, Math.abs(before / total - topP));
      if (before < topP * total) last = r;
      before += w[r];
    }
    threshold = Math.max(threshold, kept[last]);
    // A cumulative mass within float32 rounding of top_p can fall either way; report it as a tiny margin.
    if (massMargin < 1e-4) margin = 0;
  }
  const allowed = s.map((v) => v >= threshold);
  const w = s.map((v, i) => (allowed[i] ? Math.exp(v - m) : 0));
  const total = w.reduce((a, b) => a + b, 0);
  return { greedy: false, argmax, allowed, probs: w.map((v) => v / total), margin };
}

/** log_softmax of the raw logits, the values logprobs report. */
export function referenceLogSoftmax(logits: readonly number[]): number[] {
  const m = Math.max(...logits);
  const lse = m + Math.log(logits.reduce((a, v) => a + Math.exp(v - m), 0));
  return logits.map((v) => v - lse);
}
