import { mx, type MxArray } from '../mlx.ts';
// Probabilities and log-normalizer of each row from one softmax pass. On the CPU backend MLX's
// fused softmax kernel costs ~5.5 ms for [16, 49152] where logsumexp (max, subtract, exp and sum
// as separate passes) costs ~8.5 ms, so the normalizer is read off the softmax instead:
// the top token's probability is exp(max - lse), hence lse = max - log(max probability).

export interface SoftmaxMass {
  /** [n, V] */
  probs: MxArray;
  /** [n, 1] logsumexp of each row. */
  logNormalizer: MxArray;
}

export function softmaxMass(x: MxArray): SoftmaxMass {
  const probs = mx.softmax(x, -1);
  const logNormalizer = mx.subtract(mx.max(x, -1, true), mx.log(mx.max(probs, -1, true)));
  return { probs, logNormalizer };
}
