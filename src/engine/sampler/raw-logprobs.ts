// Log-probabilities from the raw model logits (before bias, penalties and temperature; vLLM's
// default "raw_logprobs"): the chosen token's and the top alternatives'.
import { softmaxMass } from './softmax-mass.ts';
import { blockTokenIds, gatherBlocks, toBlocks, topBlocks, type BlockLayout } from './vocab-blocks.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface RawTopLogprobs {
  /** [n, 1] logsumexp of each raw row. */
  logNormalizer: MxArray;
  /** [n, count] logprobs of the `count` most likely tokens, unordered; null when count is 0. */
  values: MxArray | null;
  /** int32 [n, count] their token ids. */
  ids: MxArray | null;
}

/** raw [n, V]; count <= V. The top tokens lie in the `count` blocks with the largest maxima. */
export function rawTopLogprobs(raw: MxArray, layout: BlockLayout, count: number): RawTopLogprobs {
  const { logNormalizer } = softmaxMass(raw);
  if (count === 0) return { logNormalizer, values: null, ids: null };
  const n = raw.shape[0];
  const blocks = toBlocks(raw, layout);
  const { blockIds } = topBlocks(mx.max(blocks, -1), count);
  const width = blockIds.shape[1] * layout.blockSize;
  const candidates = gatherBlocks(blocks, blockIds).reshape([n, width]);
  const candidateIds = blockTokenIds(blockIds, layout.blockSize).reshape([n, width]);
  const best = mx.argpartition(candidates, width - count, -1).index(mx.Slice(), mx.Slice(width - count));
  return {
    logNormalizer,
    values: mx.subtract(mx.takeAlongAxis(candidates, best, 1), logNormalizer),
    ids: mx.takeAlongAxis(candidateIds, best, 1),
  };
}

/** [n] logprob of each row's token (int32 [n]) under the raw logits. */
export function chosenLogprob(raw: MxArray, logNormalizer: MxArray, tokens: MxArray): MxArray {
  const logit = mx.takeAlongAxis(raw, tokens.reshape([-1, 1]), 1);
  return mx.subtract(logit, logNormalizer).reshape([-1]);
}
