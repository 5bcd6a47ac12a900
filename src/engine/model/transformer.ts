// The decoder-only transformer shared by the Llama family and Qwen2: embeddings, N blocks of
// (RMSNorm → attention → residual, RMSNorm → SwiGLU MLP → residual), final norm, LM head.
// Where the keys and values live, and which of them a query may see, is the AttentionContext's
// business; the model only produces q, k, v and consumes the attention output.
import mlx from '@frost-beta/mlx';
import type { ModelConfig } from './config.ts';
import { applyLinear } from './linear.ts';
import { Rope } from './rope.ts';
import type { ModelWeights } from './weights.ts';

const { core: mx } = mlx;
type MxArray = InstanceType<typeof mx.array>;

export interface AttentionContext {
  /** RoPE position of the first new token of every row (rows share one position counter). */
  readonly ropeOffset: number;
  /**
   * Stores this layer's new keys/values and returns the attention output.
   * q: [B, heads, T, headDim]; k, v: [B, kvHeads, T, headDim], already rotated. Returns [B, heads, T, headDim].
   */
  attend(layer: number, q: MxArray, k: MxArray, v: MxArray): MxArray;
}

export class Transformer {
  readonly rope: Rope;
  private readonly qSize: number;
  private readonly kvSize: number;

  constructor(
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    this.rope = new Rope(config);
    this.qSize = config.numHeads * config.headDim;
    this.kvSize = config.numKvHeads * config.headDim;
  }

  /** tokens: int32 [B, T] → final-norm hidden states [B, T, hidden]. Lazy: nothing is evaluated. */
  forward(tokens: MxArray, ctx: AttentionContext): MxArray {
    const c = this.config;
    const [B, T] = tokens.shape;
    let x = mx.take(this.weights.embed, tokens, 0);
    for (let i = 0; i < c.numLayers; i++) {
      const w = this.weights.layers[i];
      const h = mx.fast.rmsNorm(x, w.attnNorm, c.rmsNormEps);
      const qkv = applyLinear(h, w.qkv);
      const [qf, kf, vf] = mx.split(qkv, [this.qSize, this.qSize + this.kvSize], -1);
      const q = this.rope.apply(mx.reshape(qf, [B, T, c.numHeads, c.headDim]).transpose(0, 2, 1, 3), ctx.ropeOffset);
      const k = this.rope.apply(mx.reshape(kf, [B, T, c.numKvHeads, c.headDim]).transpose(0, 2, 1, 3), ctx.ropeOffset);
      const v = mx.reshape(vf, [B, T, c.numKvHeads, c.headDim]).transpose(0, 2, 1, 3);
      const o = ctx.attend(i, q, k, v);
      x = mx.add(x, applyLinear(mx.reshape(o.transpose(0, 2, 1, 3), [B, T, this.qSize]), w.o));
      const h2 = mx.fast.rmsNorm(x, w.mlpNorm, c.rmsNormEps);
      const [gate, up] = mx.split(applyLinear(h2, w.gateUp), 2, -1);
      x = mx.add(x, applyLinear(mx.multiply(mx.multiply(gate, mx.sigmoid(gate)), up), w.down));
    }
    return mx.fast.rmsNorm(x, this.weights.finalNorm, c.rmsNormEps);
  }

  /** hidden [N, hidden] → logits [N, vocab] (f32). */
  logits(hidden: MxArray): MxArray {
    return applyLinear(hidden, this.weights.lmHead);
  }
}

/**
 * Grouped-query attention without repeating K/V: queries of the heads sharing a KV head are stacked
 * on the row axis, so each (batch, kv head) is one small matmul. `mask` is additive and broadcasts
 * to [B, 1, T, L] (0 where visible, -inf where not).
 * q: [B, heads, T, D]; keys/values: [B, kvHeads, L, D] → [B, heads, T, D].
 */
export function groupedAttention(q: MxArray, keys: MxArray, values: MxArray, mask: MxArray, scale: number): MxArray {
  const [B, H, T, D] = q.shape;
  const KVH = keys.shape[1];
  const G = H / KVH;
  const qg = mx.reshape(mx.multiply(q, scale), [B, KVH, G * T, D]);
  let scores = mx.matmul(qg, mx.swapaxes(keys, -1, -2)); // [B, KVH, G*T, L]
  if (G > 1 && T > 1) {
    // The mask is per query position; the G heads of a group share it.
    scores = mx.reshape(mx.add(mx.reshape(scores, [B, KVH, G, T, -1]), mx.expandDims(mask, 2)), [B, KVH, G * T, -1]);
  } else {
    scores = mx.add(scores, mask);
  }
  const out = mx.matmul(mx.softmax(scores, -1, true), values); // [B, KVH, G*T, D]
  return mx.reshape(out, [B, H, T, D]);
}
