// Sampling for rows with min_p / top_k / top_p. A tier names how much of the row to look at: the
// `blocks` blocks with the largest maxima, and within them the `tokens` largest values, sorted.
// Whatever lies outside is at most `boundary`, so a threshold above the boundary is exact
// (certified); rows that are not certified are retried with a larger tier, ending with the
// exhaustive one (a sort of the whole row, ~5 ms a row at V = 49152, where a tier-1 pass costs
// a fraction of a millisecond).
import { divideByTemperature, selectRows } from './batch-rows.ts';
import { sampleFromBlocks } from './block-gumbel.ts';
import { filterThresholds } from './candidate-filter.ts';
import type { RowPlan } from './row-plan.ts';
import { gatherBlocks, toBlocks, topBlocks, type BlockLayout } from './vocab-blocks.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface CandidateTier {
  /** Blocks kept (those with the largest maxima). */
  blocks: number;
  /** Largest values kept from those blocks and sorted; top_k above this cannot be certified. */
  tokens: number;
}

export interface FilteredSamplingInput {
  /** Adjusted logits of the whole batch [B, V]. */
  logits: MxArray;
  plans: readonly RowPlan[];
  /** [n, numBlocks + blockSize] Gumbel noise of these rows. */
  noise: MxArray;
  /** [n, 1] logsumexp of each row's scaled logits, for rows that need it (RowPlan.needsFullMass). */
  fullLogMass: MxArray | null;
  layout: BlockLayout;
  /** null: the whole row (always certified). */
  tier: CandidateTier | null;
}

export interface FilteredSampling {
  /** int32 [n]. Only meaningful where certified. */
  tokens: MxArray;
  /** [n, 1] scaled logits (adjusted / temperature) >= threshold are the allowed tokens. */
  threshold: MxArray;
  /** bool [n]: every allowed token was among the candidates, so token and threshold are exact. */
  certified: MxArray;
}

export function sampleFiltered(input: FilteredSamplingInput): FilteredSampling {
  const { plans, layout, tier } = input;
  const n = plans.length;
  const temperatures = plans.map((p) => p.temperature);
  const blocks = toBlocks(
    selectRows(
      input.logits,
      plans.map((p) => p.batchRow),
    ),
    layout,
  );
  let candidates = blocks;
  let blockIds: MxArray | null = null;
  let boundary = mx.full([n, 1], -Infinity, mx.float32);
  if (tier && tier.blocks < layout.numBlocks) {
    // Block maxima of the unscaled logits order the blocks as the scaled ones would (temperature > 0).
    const top = topBlocks(mx.max(blocks, -1), tier.blocks);
    blockIds = top.blockIds;
    boundary = divideByTemperature(top.boundary, temperatures);
    candidates = gatherBlocks(blocks, blockIds);
  }
  const scaled = divideByTemperature(candidates, temperatures);
  const width = scaled.shape[1] * scaled.shape[2];
  const flat = scaled.reshape([n, width]);
  let sortedDesc: MxArray;
  if (tier && tier.tokens < width) {
    // The tokens+1 largest, sorted: the last one bounds everything left out. (mx.negative also
    // makes topk's strided view contiguous; mx.sort on a column slice crashes in MLX 0.0.7.)
    sortedDesc = mx.negative(mx.sort(mx.negative(mx.topk(flat, tier.tokens + 1, -1)), -1));
    boundary = mx.maximum(boundary, sortedDesc.index(mx.Slice(), mx.Slice(tier.tokens, tier.tokens + 1)));
  } else {
    sortedDesc = mx.negative(mx.sort(mx.negative(flat), -1));
  }
  const { threshold, certified } = filterThresholds({
    sortedDesc,
    boundary,
    fullLogMass: input.fullLogMass,
    exhaustive: tier === null,
    rows: plans.map((p) => ({ topK: p.topK, topP: p.topP, logMinP: p.logMinP, hasFullMass: p.needsFullMass })),
  });
  const allowed = mx.where(mx.greaterEqual(scaled, mx.expandDims(threshold, 2)), scaled, -Infinity);
  const tokens = sampleFromBlocks({ blocks: allowed, blockIds, noise: input.noise, numBlocks: layout.numBlocks });
  return { tokens, threshold, certified };
}
