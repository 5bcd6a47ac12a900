// A deliberately plain transformer forward for tests: separate q/k/v matmuls, keys and values of the
// whole sequence recomputed every call, RoPE from explicit cos/sin at true positions, K/V heads
// repeated the way transformers' repeat_kv does. No cache, no batching, no packing: the ground truth
// the engine's forward must match.
import { ropeInverseFrequencies } from '../../src/engine/model/rope.ts';
import type { ModelConfig } from '../../src/engine/model/config.ts';
import { mx, type MxArray } from '../../src/engine/mlx.ts';

function rotate(x: MxArray, c: ModelConfig): MxArray {
  // x: [heads, T, D] at positions 0..T-1
  const T = x.shape[1];
  const inv = ropeInverseFrequencies(c);
  const angles = mx.array(
    Array.from({ length: T }, (_, t) => Array.from(inv, (f) => t * f)),
    mx.float32,
  );
  const cos = mx.concatenate([mx.cos(angles), mx.cos(angles)], -1);
  const sin = mx.concatenate([mx.sin(angles), mx.sin(angles)], -1);
  const half = c.headDim / 2;
  const x1 = x.index('...', mx.Slice(0, half));
  const x2 = x.index('...', mx.Slice(half, null));
  const rotated = mx.concatenate([mx.negative(x2), x1], -1);
  return mx.add(mx.multiply(x, cos), mx.multiply(rotated, sin));
}

/** Logits [T, vocab] for every position of `tokens`, from raw Hugging Face tensors. */
export function referenceLogits(tensors: Record<string, MxArray>, c: ModelConfig, tokens: number[]): MxArray {
  const W = (name: string) => tensors[name].astype(mx.float32);
  const lin = (x: MxArray, name: string) => {
    const y = mx.matmul(x, mx.transpose(W(`${name}.weight`)));
    return tensors[`${name}.bias`] ? mx.add(y, W(`${name}.bias`)) : y;
  };
  const T = tokens.length;
  const G = c.numHeads / c.numKvHeads;
  let x = mx.take(W('model.embed_tokens.weight'), mx.array(tokens, mx.int32), 0); // [T, H]
  const causal = mx.where(mx.tril(mx.ones([T, T], mx.bool), 0), 0, -Infinity);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const h = mx.fast.rmsNorm(x, W(`${p}.input_layernorm.weight`), c.rmsNormEps);
    const heads = (y: MxArray, n: number) => mx.reshape(y, [T, n, c.headDim]).transpose(1, 0, 2);
    const q = rotate(heads(lin(h, `${p}.self_attn.q_proj`), c.numHeads), c);
    const k = mx.repeat(rotate(heads(lin(h, `${p}.self_attn.k_proj`), c.numKvHeads), c), G, 0);
    const v = mx.repeat(heads(lin(h, `${p}.self_attn.v_proj`), c.numKvHeads), G, 0);
    const scores = mx.add(mx.multiply(mx.matmul(q, mx.swapaxes(k, 1, 2)), 1 / Math.sqrt(c.headDim)), causal);
    const o = mx
      .matmul(mx.softmax(scores, -1), v)
      .transpose(1, 0, 2)
      .reshape(T, c.numHeads * c.headDim);
    x = mx.add(x, lin(o, `${p}.self_attn.o_proj`));
    const h2 = mx.fast.rmsNorm(x, W(`${p}.post_attention_layernorm.weight`), c.rmsNormEps);
    const gate = lin(h2, `${p}.mlp.gate_proj`);
    x = mx.add(x, lin(mx.multiply(mx.multiply(gate, mx.sigmoid(gate)), lin(h2, `${p}.mlp.up_proj`)), `${p}.mlp.down_proj`));
  }
  x = mx.fast.rmsNorm(x, W('model.norm.weight'), c.rmsNormEps);
  const head = tensors['lm_head.weight'] ? W('lm_head.weight') : W('model.embed_tokens.weight');
  return mx.matmul(x, mx.transpose(head));
}
