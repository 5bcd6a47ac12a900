// Exact sampling without touching every token with random noise: Gumbel-max in two levels. A
// block is chosen with probability proportional to its mass (logsumexp of its allowed scaled
// logits plus one Gumbel per block), then a token inside it (its logit plus one Gumbel per lane).
// P(token) = P(block) * P(token | block) = exp(s_token) / Z, as with one Gumbel per token.
//
// The noise is a fixed vector per (seed, step): numBlocks block draws then blockSize lane draws,
// applied by block id and lane, so a filtered row gets the same token from whichever candidate
// tier certifies it (the block sums are the same float operations on the same values).
import { gatherBlocks } from './vocab-blocks.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface BlockSample {
  /** [n, R, b] scaled logits of the blocks that may hold allowed tokens; -inf marks disallowed tokens. */
  blocks: MxArray;
  /** int32 [n, R] which blocks `blocks` holds, or null when it holds all blocks in order. */
  blockIds: MxArray | null;
  /** [n, R] logsumexp of each block when already computed. */
  blockLogMass?: MxArray;
  /** [n, numBlocks + blockSize] Gumbel noise (random-stream.ts). */
  noise: MxArray;
  numBlocks: number;
}

/** int32 [n] sampled token ids. */
export function sampleFromBlocks(s: BlockSample): MxArray {
  const [n, , blockSize] = s.blocks.shape;
  const blockNoise = s.noise.index(mx.Slice(), mx.Slice(0, s.numBlocks));
  const laneNoise = s.noise.index(mx.Slice(), mx.Slice(s.numBlocks, s.numBlocks + blockSize));
  const logMass = s.blockLogMass ?? mx.logsumexp(s.blocks, -1);
  const score = mx.add(logMass, s.blockIds ? mx.takeAlongAxis(blockNoise, s.blockIds, 1) : blockNoise);
  const slot = mx.argmax(score, -1, true).astype(mx.int32); // [n, 1]
  const blockId = s.blockIds ? mx.takeAlongAxis(s.blockIds, slot, 1) : slot;
  const lanes = gatherBlocks(s.blocks, slot).reshape([n, blockSize]);
  const lane = mx.argmax(mx.add(lanes, laneNoise), -1, true).astype(mx.int32);
  return mx.add(mx.multiply(blockId, mx.array(blockSize, mx.int32)), lane).reshape([n]);
}
