// The decoder-only transformer shared by the Llama family and Qwen2: embeddings, N blocks of
// (RMSNorm → attention → residual, RMSNorm → SwiGLU MLP → residual), final norm, LM head.
// Where the keys and values live, and which of them a query may see, is the AttentionContext's
// business; the model only produces q, k, v and consumes the attention output.
import mlx from '@frost-beta/mlx';
import type { ModelConfig } from './config.ts';
import { applyLinear, linearArrays, linearFromArrays } from './linear.ts';
import { Rope, rotateHalf, type RopeTables } from './rope.ts';
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
  /** rmsNorm → q|k|v projection → split → RoPE on q and k; compiled once and shared by every layer. */
  private readonly projectQkv: (...inputs: MxArray[]) => MxArray[];
  /** o projection → residual → rmsNorm → SwiGLU MLP → residual; compiled, shared by every layer. */
  private readonly finishLayer: (...inputs: MxArray[]) => MxArray;

  constructor(
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    this.rope = new Rope(config);
    this.qSize = config.numHeads * config.headDim;
    this.kvSize = config.numKvHeads * config.headDim;
    // Every layer has the same structure, so one compiled function (traced per input shape) serves
    // all of them; the layer's weights are inputs. Compiling fuses the elementwise ops and saves
    // building ~20 graph nodes per layer from JS at every step.
    const first = weights.layers[0];
    const oCount = linearArrays(first.o).length;
    const gateUpCount = linearArrays(first.gateUp).length;
    const eps = config.rmsNormEps;
    const split = [this.qSize, this.qSize + this.kvSize];
    const { numHeads, numKvHeads, headDim } = config;
    const projectQkv = (x: MxArray, norm: MxArray, cos: MxArray, sin: MxArray, ...qkv: MxArray[]) => {
      const h = mx.fast.rmsNorm(x, norm, eps);
      const [q, k, v] = mx.split(applyLinear(h, linearFromArrays(first.qkv, qkv)), split, -1);
      const rows = x.shape[0];
      return [
        rotateHalf(mx.reshape(q, [rows, numHeads, headDim]), cos, sin),
        rotateHalf(mx.reshape(k, [rows, numKvHeads, headDim]), cos, sin),
        mx.reshape(v, [rows, numKvHeads, headDim]),
      ];
    };
    const finishLayer = (x: MxArray, attn: MxArray, norm: MxArray, ...rest: MxArray[]) => {
      const o = linearFromArrays(first.o, rest.slice(0, oCount));
      const gateUp = linearFromArrays(first.gateUp, rest.slice(oCount, oCount + gateUpCount));
      const down = linearFromArrays(first.down, rest.slice(oCount + gateUpCount));
      const x1 = mx.add(x, applyLinear(attn, o));
      const h = mx.fast.rmsNorm(x1, norm, eps);
      const [gate, up] = mx.split(applyLinear(h, gateUp), 2, -1);
      return mx.add(x1, applyLinear(mx.multiply(mx.multiply(gate, mx.sigmoid(gate)), up), down));
    };
    const compile = process.env.MLX_BATCH_SERVER_COMPILE !== '0';
    this.projectQkv = compile ? mx.compile(projectQkv as (...a: MxArray[]) => MxArray[]) : (projectQkv as (...a: MxArray[]) => MxArray[]);
    this.finishLayer = compile ? mx.compile(finishLayer as (...a: MxArray[]) => MxArray) : (finishLayer as (...a: MxArray[]) => MxArray);
  }

  /**
   * tokens: int32 [B, T] → final-norm hidden states [B*T, hidden] (row b*T + t). Lazy: nothing is
   * evaluated.
   *
   * Activations stay 2-D so every projection is one GEMM over all B*T rows (MLX runs a 3-D
   * [B, T, H]·W product as B separate products, reading the weights B times), and the rows are
   * padded to a multiple of 16: OpenBLAS's SGEMM kernels work in blocks of 16 rows, and 16 rows
   * cost less than 8 here. Attention sees the real rows only.
   */
  forward(tokens: MxArray, ctx: AttentionContext): MxArray {
    const c = this.config;
    const [B, T] = tokens.shape;
    const rows = B * T;
    const padded = paddedRows(rows);
    const pad = (a: MxArray) => (padded === rows ? a : mx.concatenate([a, mx.zeros([padded - rows, a.shape[1]], a.dtype)], 0));
    const real = (a: MxArray) => (padded === rows ? a : a.index(mx.Slice(0, rows)));
    const rope = this.ropeTables(B, T, padded, ctx.ropeOffset);
    // [rows, heads, D] → [B, heads, T, D]
    const toHeads = (a: MxArray) => mx.reshape(real(a), [B, T, a.shape[1], c.headDim]).transpose(0, 2, 1, 3);
    let x = pad(mx.take(this.weights.embed, mx.reshape(tokens, [rows]), 0));
    for (let i = 0; i < c.numLayers; i++) {
      const w = this.weights.layers[i];
      const [q, k, v] = this.projectQkv(x, w.attnNorm, rope.cos, rope.sin, ...linearArrays(w.qkv)).map(toHeads);
      const o = ctx.attend(i, q, k, v);
      const attn = pad(mx.reshape(o.transpose(0, 2, 1, 3), [rows, this.qSize]));
      x = this.finishLayer(x, attn, w.mlpNorm, ...linearArrays(w.o), ...linearArrays(w.gateUp), ...linearArrays(w.down));
    }
    return mx.fast.rmsNorm(real(x), this.weights.finalNorm, c.rmsNormEps);
  }

  /** cos/sin tables for the (padded) rows b*T + t, at positions offset + t. */
  private ropeTables(B: number, T: number, padded: number, offset: number): RopeTables {
    if (T === 1) return this.rope.tables(offset, 1); // every row at the same position: broadcast
    if (B === 1) return this.rope.tables(offset, padded); // padding rows get positions too, harmlessly
    const t = this.rope.tables(offset, T);
    const tile = (a: MxArray) => {
      const tiled = mx.reshape(mx.broadcastTo(mx.expandDims(a, 0), [B, ...a.shape]), [B * T, 1, -1]);
      return padded === B * T ? tiled : mx.concatenate([tiled, mx.zeros([padded - B * T, 1, tiled.shape[2]])], 0);
    };
    return { cos: tile(t.cos), sin: tile(t.sin) };
  }

  /** hidden [N, hidden] → logits [N, vocab] (f32). Rows are padded like the layers' (see forward). */
  logits(hidden: MxArray): MxArray {
    const rows = hidden.shape[0];
    const padded = paddedRows(rows);
    if (padded === rows) return applyLinear(hidden, this.weights.lmHead);
    const input = mx.concatenate([hidden, mx.zeros([padded - rows, hidden.shape[1]], hidden.dtype)], 0);
    return applyLinear(input, this.weights.lmHead).index(mx.Slice(0, rows));
  }
}

/** Row count for the projections: 1 stays 1 (a GEMV), anything else rounds up to a multiple of 16. */
export function paddedRows(rows: number): number {
  return rows <= 1 ? rows : Math.ceil(rows / 16) * 16;
}

/**
 * Grouped-query attention without repeating K/V: queries of the heads sharing a KV head are stacked
 * on the row axis, so each (batch, kv head) is one small matmul. `mask` is additive and broadcasts
 * to [B, 1, T, L] (0 where visible, -inf where not). Keys come transposed, [B, kvHeads, D, L]:
 * caches store them that way so that no view of a cache buffer is ever created (see
 * kv/batch-kv-cache.ts for why that matters).
 * q: [B, heads, T, D]; keysT: [B, kvHeads, D, L]; values: [B, kvHeads, L, D]; scale: a scalar
 * array (1/√D) → [B, heads, T, D].
 */
export function groupedAttention(q: MxArray, keysT: MxArray, values: MxArray, mask: MxArray, scale: MxArray): MxArray {
  return compiledAttention(q, keysT, values, mask, scale);
}

function attentionCore(q: MxArray, keysT: MxArray, values: MxArray, mask: MxArray, scale: MxArray): MxArray {
  const [B, H, T, D] = q.shape;
  const KVH = keysT.shape[1];
  const G = H / KVH;
  const qg = mx.reshape(mx.multiply(q, scale), [B, KVH, G * T, D]);
  let scores = mx.matmul(qg, keysT); // [B, KVH, G*T, L]
  if (G > 1 && T > 1) {
    // The mask is per query position; the G heads of a group share it.
    scores = mx.reshape(mx.add(mx.reshape(scores, [B, KVH, G, T, -1]), mx.expandDims(mask, 2)), [B, KVH, G * T, -1]);
  } else {
    scores = mx.add(scores, mask);
  }
  const out = mx.matmul(mx.softmax(scores, -1, true), values); // [B, KVH, G*T, D]
  return mx.reshape(out, [B, H, T, D]);
}

// Traced once per shape combination; fuses the scale, mask and softmax bookkeeping.
const compiledAttention =
  process.env.MLX_BATCH_SERVER_COMPILE !== '0'
    ? (mx.compile(attentionCore as (...a: MxArray[]) => MxArray) as typeof attentionCore)
    : attentionCore;
