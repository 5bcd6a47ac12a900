// The merged-weights reference: what a LoRA adapter does to one projection, written out as plain
// loops. The batched engine, which never merges, is held to W + scale · B · A computed here.
import type { LoraModuleWeights } from './lora-adapter.ts';

/** W + scale · B · A for W [out, in] row-major; a new array, W untouched. Sums in f64, stores f32. */
export function mergedWeight(w: Float32Array, part: LoraModuleWeights): Float32Array {
  const { a, b, rank, inFeatures, outFeatures, scale } = part;
  if (w.length !== outFeatures * inFeatures) {
    throw new RangeError(`weight has ${w.length} values, expected [${outFeatures}, ${inFeatures}] = ${outFeatures * inFeatures}`);
  }
  const out = new Float32Array(w.length);
  for (let o = 0; o < outFeatures; o++) {
    for (let i = 0; i < inFeatures; i++) {
      let delta = 0;
      for (let k = 0; k < rank; k++) delta += b[o * rank + k] * a[k * inFeatures + i];
      out[o * inFeatures + i] = w[o * inFeatures + i] + scale * delta;
    }
  }
  return out;
}
