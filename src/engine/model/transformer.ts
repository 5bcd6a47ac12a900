// The decoder-only transformer every architecture in architectures/ runs: embeddings, N blocks of
// (RMSNorm → attention → residual, RMSNorm → SwiGLU MLP → residual), final norm, LM head.
// Where the keys and values live, and which of them a query may see, is the AttentionContext's
// business; the model only produces q, k, v and consumes the attention output.
import type { ModelConfig } from './config.ts';
import { applyLinear, linearArrays, linearFromArrays } from './linear.ts';
import { Rope, rotateHalf, type RopeTables } from './rope.ts';
import type { ModelWeights } from './weights.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface AttentionContext {
  /** RoPE position of the first new token of every row (rows share one position counter). */
  readonly ropeOffset: number;
  /**
   * Stores this layer's new keys/values and returns the attention output.
   * q: [B, heads, T, headDim]; k, v: [B, kvHeads, T, headDim], already rotated. Returns [B, heads, T, headDim].
   */
  attend(layer: number, q: MxArray, k: MxArray, v: MxArray): MxArray;
}

/** One batch of a forward pass: its tokens [B, T] and where its keys and values live. */
export interface ForwardPart {
  tokens: MxArray;
  ctx: AttentionContext;
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
   */
  forward(tokens: MxArray, ctx: AttentionContext): MxArray {
    return this.forwardParts([{ tokens, ctx }]);
  }

  /**
   * Several batches in one pass, e.g. the decode batch and a prompt chunk: every projection runs
   * once over all their rows (the weights are read once per step, not once per batch); each part's
   * rows attend within their own context. Returns the final-norm hidden states of all rows, part
   * after part ([sum of B*T, hidden]).
   *
   * Activations stay 2-D so every projection is one GEMM over all rows (MLX runs a 3-D
   * [B, T, H]·W product as B separate products, reading the weights B times), and the rows are
   * padded to a multiple of 16: OpenBLAS's SGEMM kernels work in blocks of 16 rows, and 16 rows
   * cost less than 8 here. Attention sees the real rows only.
   */
  forwardParts(parts: ForwardPart[]): MxArray {
    const c = this.config;
    const shapes = parts.map((p) => ({ B: p.tokens.shape[0], T: p.tokens.shape[1] }));
    const starts: number[] = [];
    let rows = 0;
    for (const { B, T } of shapes) {
      starts.push(rows);
      rows += B * T;
    }
    const padded = paddedRows(rows);
    const pad = (a: MxArray) => (padded === rows ? a : mx.concatenate([a, mx.zeros([padded - rows, a.shape[1]], a.dtype)], 0));
    const real = (a: MxArray) => (padded === rows ? a : a.index(mx.Slice(0, rows)));
    const rope = this.ropeTables(parts, padded);
    const flat =
      parts.length === 1
        ? mx.reshape(parts[0].tokens, [rows])
        : mx.concatenate(
            parts.map((p) => mx.reshape(p.tokens, [-1])),
            0,
          );
    let x = pad(mx.take(this.weights.embed, flat, 0));
    for (let i = 0; i < c.numLayers; i++) {
      const w = this.weights.layers[i];
      const qkv = this.projectQkv(x, w.attnNorm, rope.cos, rope.sin, ...linearArrays(w.qkv));
      const outputs = parts.map((part, j) => {
        const { B, T } = shapes[j];
        // [rows, heads, D] → this part's [B, heads, T, D]
        const heads = (a: MxArray) =>
          mx
            .reshape(parts.length === 1 && padded === rows ? a : a.index(mx.Slice(starts[j], starts[j] + B * T)), [
              B,
              T,
              a.shape[1],
              c.headDim,
            ])
            .transpose(0, 2, 1, 3);
        const o = part.ctx.attend(i, heads(qkv[0]), heads(qkv[1]), heads(qkv[2]));
        return mx.reshape(o.transpose(0, 2, 1, 3), [B * T, this.qSize]);
      });
      const attn = pad(outputs.length === 1 ? outputs[0] : mx.concatenate(outputs, 0));
      x = this.finishLayer(x, attn, w.mlpNorm, ...linearArrays(w.o), ...linearArrays(w.gateUp), ...linearArrays(w.down));
    }
    return mx.fast.rmsNorm(real(x), this.weights.finalNorm, c.rmsNormEps);
  }

  /** cos/sin tables for every (padded) row: part rows b*T + t sit at position ctx.ropeOffset + t. */
  private ropeTables(parts: ForwardPart[], padded: number): RopeTables {
    if (parts.length === 1) {
      const [B, T] = parts[0].tokens.shape;
      const offset = parts[0].ctx.ropeOffset;
      if (T === 1) return this.rope.tables(offset, 1); // every row at the same position: broadcast
      if (B === 1) return this.rope.tables(offset, padded); // padding rows get positions too, harmlessly
    }
    const cos: MxArray[] = [];
    const sin: MxArray[] = [];
    let rows = 0;
    for (const p of parts) {
      const [B, T] = p.tokens.shape;
      const t = this.rope.tables(p.ctx.ropeOffset, T);
      const perRow = (a: MxArray) => (B === 1 ? a : mx.reshape(mx.broadcastTo(mx.expandDims(a, 0), [B, ...a.shape]), [B * T, 1, -1]));
      cos.push(perRow(t.cos));
      sin.push(perRow(t.sin));
      rows += B * T;
    }
    if (padded > rows) {
      const filler = mx.zeros([padded - rows, 1, this.config.headDim / 2]);
      cos.push(filler);
      sin.push(filler);
    }
    return { cos: mx.concatenate(cos, 0), sin: mx.concatenate(sin, 0) };
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

/**
 * Row count for the projections: 1 stays 1 (a GEMV) and 2 stays 2; anything else rounds up to a
 * multiple of 16. Measured on 2 cores (OpenBLAS, all layers' projections of the default model):
 * M=1 47 ms, M=2 59, M=3 74, M=4 87, M=8 83, M=16 75, M=32 116.
 */
export function paddedRows(rows: number): number {
  return rows <= 2 ? rows : Math.ceil(rows / 16) * 16;
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
