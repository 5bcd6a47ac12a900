import { mx, type MxArray } from '../mlx.ts';
// min_p, top_k and top_p as one threshold per row, computed from a sorted prefix of the row (the
// candidate blocks) instead of a sort of the whole vocabulary. A row is "certified" when the
// prefix provably contains every token the filters allow; otherwise the caller redoes it exhaustively.

const cumsum = mx.cumsum as unknown as (a: MxArray, axis: number, reverse: boolean, inclusive: boolean) => MxArray;

export interface FilterRow {
  /** 0 when off. Rows with more than the candidates can only be certified by an exhaustive pass. */
  topK: number;
  /** 1 when off. */
  topP: number;
  /** -inf when off. */
  logMinP: number;
  /** Whether `fullLogMass` holds this row's log-normalizer over the whole vocabulary. */
  hasFullMass: boolean;
}

export interface FilterInput {
  /** [n, M] candidate scaled logits sorted in descending order (-inf padding last). */
  sortedDesc: MxArray;
  /** [n, 1] scaled value that every token outside the candidates is at most (-inf: none outside). */
  boundary: MxArray;
  /** [n, 1] logsumexp of the whole row's scaled logits, for rows with hasFullMass (others ignored). */
  fullLogMass: MxArray | null;
  rows: readonly FilterRow[];
  /** The candidates are the whole row: results are exact and always certified. */
  exhaustive: boolean;
}

export interface FilterResult {
  /** [n, 1] scaled logits >= threshold are allowed. */
  threshold: MxArray;
  /** bool [n]: the threshold is exact. */
  certified: MxArray;
}

/**
 * vLLM v1 order: min_p (relative to the top token), then top_k, then top_p on what is left,
 * renormalized. Thresholds are values, so tokens tied at a cut are all kept.
 */
export function filterThresholds(input: FilterInput): FilterResult {
  const { sortedDesc, boundary, rows, exhaustive } = input;
  const n = rows.length;
  const M = sortedDesc.shape[1];
  const column = (values: number[]) => mx.array(values, mx.float32).reshape([n, 1]);
  const kIndex = mx
    .array(
      rows.map((r) => (r.topK > 0 ? Math.min(r.topK, M) - 1 : 0)),
      mx.int32,
    )
    .reshape([n, 1]);
  const kOn = mx.array(rows.map((r) => r.topK > 0)).reshape([n, 1]);
  const pOn = mx.array(rows.map((r) => r.topP < 1)).reshape([n, 1]);
  const topP = column(rows.map((r) => r.topP));
  const logMinP = column(rows.map((r) => r.logMinP));

  const top = sortedDesc.index(mx.Slice(), mx.Slice(0, 1));
  const kthValue = mx.takeAlongAxis(sortedDesc, kIndex, 1);
  const minPCut = mx.add(top, logMinP);
  const cut = mx.maximum(mx.where(kOn, kthValue, -Infinity), minPCut);
  const kept = mx.greaterEqual(sortedDesc, cut);
  const weights = mx.where(kept, mx.exp(mx.subtract(sortedDesc, top)), 0);
  const keptMass = mx.sum(weights, -1, true);
  // The min_p/top_k survivors are all candidates when the cut lies above everything outside.
  const cutInPrefix = mx.greater(cut, boundary);
  let total = keptMass;
  if (!exhaustive && input.fullLogMass) {
    total = mx.where(cutInPrefix, keptMass, mx.exp(mx.subtract(input.fullLogMass, top)));
  }
  const before = cumsum(weights, 1, false, false);
  const inTopP = mx.logicalAnd(mx.less(before, mx.multiply(topP, total)), kept);
  // The first token is always in (nothing precedes it) unless the logits hold NaN; the floor keeps
  // the index valid even then (an out-of-range gather is undefined behaviour, not an error).
  const lastIndex = mx.maximum(mx.subtract(mx.sum(inTopP, -1, true), mx.array(1, mx.int32)), mx.array(0, mx.int32));
  const topPCut = mx.where(pOn, mx.takeAlongAxis(sortedDesc, lastIndex, 1), -Infinity);
  const threshold = mx.maximum(cut, topPCut);
  if (exhaustive) return { threshold, certified: mx.array(rows.map(() => true)) };

  // top_p alone: exact when the candidates' certain prefix already holds top_p of the whole mass.
  const hasFullMass = mx.array(rows.map((r) => r.hasFullMass)).reshape([n, 1]);
  const prefixMass = mx.sum(mx.where(mx.greater(sortedDesc, boundary), weights, 0), -1, true);
  const topPInPrefix = mx.logicalAnd(
    mx.logicalAnd(pOn, hasFullMass),
    mx.logicalAnd(mx.equal(cut, -Infinity), mx.greaterEqual(prefixMass, mx.multiply(topP, total))),
  );
  const kFits = mx.array(rows.map((r) => r.topK <= M)).reshape([n, 1]);
  return { threshold, certified: mx.logicalAnd(mx.logicalOr(cutInPrefix, topPInPrefix), kFits).reshape([n]) };
}
