import { mx, type MxArray } from '../mlx.ts';
// Per-row randomness that depends only on (request seed, tokens generated so far): the same seed
// gives the same tokens whatever else is in the batch and at whatever row index. The keys come
// from step-key.ts (plain JS, shared with the CPU sampler); this file turns them into MLX noise.

/** Gumbel draws from u = 0 are -inf; a finite floor keeps "noise + logit" finite for allowed tokens. */
const GUMBEL_FLOOR = -1e30;

const gumbelByKey = new Map<number, (keys: MxArray) => MxArray>();

/**
 * Standard Gumbel noise [rows, length], row r drawn from its own key (stepKey). MLX 0.0.7's random
 * ops take one key, but vmap over a stack of keys batches them: each row equals the one-key draw
 * whatever the other rows are, at a fraction of the cost of one op per row.
 */
export function gumbelRows(stepKeys: readonly number[][], length: number): MxArray {
  let draw = gumbelByKey.get(length);
  if (!draw) {
    draw = mx.vmap((key: MxArray) => mx.random.gumbel([length], mx.float32, key)) as (keys: MxArray) => MxArray;
    gumbelByKey.set(length, draw);
  }
  const parts = mx.array(stepKeys as number[][], mx.uint32);
  const sixteen = mx.array(16, mx.uint32);
  const half = (i: number) => mx.bitwiseOr(mx.leftShift(parts.index(mx.Slice(), i), sixteen), parts.index(mx.Slice(), i + 1));
  const keys = mx.stack([half(0), half(2)], 1);
  return mx.maximum(draw(keys), GUMBEL_FLOOR);
}
