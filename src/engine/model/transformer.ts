// The decoder-only transformer every architecture in architectures/ runs: embeddings, N blocks of
// (RMSNorm → attention → residual, RMSNorm → SwiGLU MLP → residual), final norm, LM head; q/k
// biases (Qwen2) live in the projection, per-head q/k norms (Qwen3) come before RoPE. Gemma adds
// scaled embeddings, norms of the attention and MLP outputs before each residual add, GeGLU,
// soft-capped logits, and local layers with their own RoPE tables (Gemma 3); its attention
// scaling, soft-capping and sliding windows are the AttentionContext's.
// Where the keys and values live, and which of them a query may see, is the AttentionContext's
// business; the model only produces q, k, v and consumes the attention output.
import type { LoraTarget, LoraUpdate } from '../lora/lora-updates.ts';
import { type ModelConfig, rotaryDim } from './config.ts';
import { applyLinear, contiguous, linearArrays, linearFromArrays } from './linear.ts';
import { Rope, rotateHalf, type RopeTables } from './rope.ts';
import { embedTokens, type ModelWeights } from './weights.ts';
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
  /** The LoRA slot of each token (row b*T + t), -1 for the base model; absent: none has an adapter. */
  lora?: Int32Array;
}

/** A LoRA update of one fused projection, ready to multiply: x·aT·bT ([in, R] and [R, out], scale in bT). */
interface LoraArrays {
  aT: MxArray;
  bT: MxArray;
}

/** The LoRA updates of one layer for a step's rows: the sum over the adapters present, each on its own rows. */
type LayerLora = (target: LoraTarget, x: MxArray) => MxArray | undefined;

/**
 * The MLX path rotates a decode batch's rows with one set of tables and re-rotates joining
 * sequences with its frequencies, so it runs LongRoPE with the short factors only: its context
 * stops at the original length, within which transformers uses them too (the native path also
 * serves longer requests, with the long factors: see usesLongRope in config.ts).
 */
function withinShortRope(c: ModelConfig): ModelConfig {
  const s = c.ropeScaling;
  return s?.type === 'longrope' && c.contextLength > s.originalMaxPositionEmbeddings
    ? { ...c, contextLength: s.originalMaxPositionEmbeddings }
    : c;
}

export class Transformer {
  readonly config: ModelConfig;
  readonly rope: Rope;
  private readonly qSize: number;
  private readonly kvSize: number;
  /**
   * rmsNorm → q|k|v projection → split → (per-head q/k norms) → RoPE on q and k; compiled once and
   * shared by every layer.
   */
  private readonly projectQkv: (...inputs: MxArray[]) => MxArray[];
  /**
   * o projection → (rmsNorm) → residual → rmsNorm → SwiGLU/GeGLU MLP → (rmsNorm) → residual;
   * compiled, shared by every layer.
   */
  private readonly finishLayer: (...inputs: MxArray[]) => MxArray;
  private readonly embedScale?: MxArray;
  /**
   * The activations' dtype: the weights' (--dtype; float16/bfloat16 only on Metal). Attention runs
   * in f32 (the RoPE tables and KV buffers are f32); its output is cast back before the o projection.
   */
  private readonly dtype: MxArray['dtype'];
  /** Uncompiled projectQkv and finishLayer taking a step's LoRA updates first (rows with adapters are rare enough not to trace per mix). */
  private readonly projectQkvLora: (lora: LayerLora, ...inputs: MxArray[]) => MxArray[];
  private readonly finishLayerLora: (lora: LayerLora, ...inputs: MxArray[]) => MxArray;
  /** Resident LoRA adapters by slot: their updates by `${layer}:${target}`. */
  private readonly loraSlots: (Map<string, LoraArrays> | undefined)[] = [];

  constructor(
    config: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    this.config = withinShortRope(config);
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
    const qkNorm = config.qkNorm === true;
    // Inputs: x, norm, cos, sin, then (with qkNorm) the q and k norms, then the q|k|v arrays.
    const withLora = (lora: LayerLora | undefined, target: LoraTarget, x: MxArray, y: MxArray) => {
      const delta = lora?.(target, x);
      return delta ? mx.add(y, delta) : y;
    };
    const projectQkv = (lora: LayerLora | undefined, x: MxArray, norm: MxArray, cos: MxArray, sin: MxArray, ...rest: MxArray[]) => {
      const h = mx.fast.rmsNorm(x, norm, eps);
      const qkv = qkNorm ? rest.slice(2) : rest;
      const [q, k, v] = mx.split(withLora(lora, 'qkv', h, applyLinear(h, linearFromArrays(first.qkv, qkv))), split, -1);
      const rows = x.shape[0];
      let qh = mx.reshape(q, [rows, numHeads, headDim]);
      let kh = mx.reshape(k, [rows, numKvHeads, headDim]);
      if (qkNorm) {
        qh = mx.fast.rmsNorm(qh, rest[0], eps);
        kh = mx.fast.rmsNorm(kh, rest[1], eps);
      }
      return [rotateHalf(qh, cos, sin), rotateHalf(kh, cos, sin), mx.reshape(v, [rows, numKvHeads, headDim])];
    };
    const postNorms = config.postNorms === true;
    const gelu = config.hiddenAct === 'gelu_tanh';
    // gelu's tanh approximation, as torch's approximate="tanh".
    const activate = (g: MxArray) =>
      gelu
        ? mx.multiply(
            mx.multiply(g, 0.5),
            mx.add(mx.tanh(mx.multiply(mx.add(g, mx.multiply(mx.multiply(mx.multiply(g, g), g), 0.044715)), Math.sqrt(2 / Math.PI))), 1),
          )
        : mx.multiply(g, mx.sigmoid(g));
    // Inputs: x, attn, the MLP's input norm, then (with postNorms) the attention and MLP output norms, then the projections.
    const finishLayer = (lora: LayerLora | undefined, x: MxArray, attn: MxArray, norm: MxArray, ...inputs: MxArray[]) => {
      const rest = postNorms ? inputs.slice(2) : inputs;
      const o = linearFromArrays(first.o, rest.slice(0, oCount));
      const gateUp = linearFromArrays(first.gateUp, rest.slice(oCount, oCount + gateUpCount));
      const down = linearFromArrays(first.down, rest.slice(oCount + gateUpCount));
      const attnOut = withLora(lora, 'o', attn, applyLinear(attn, o));
      const x1 = mx.add(x, postNorms ? mx.fast.rmsNorm(attnOut, inputs[0], eps) : attnOut);
      const h = mx.fast.rmsNorm(x1, norm, eps);
      const [gate, up] = mx.split(withLora(lora, 'gateUp', h, applyLinear(h, gateUp)), 2, -1);
      const act = mx.multiply(activate(gate), up);
      const mlpOut = withLora(lora, 'down', act, applyLinear(act, down));
      return mx.add(x1, postNorms ? mx.fast.rmsNorm(mlpOut, inputs[1], eps) : mlpOut);
    };
    this.dtype = weights.finalNorm.dtype;
    if (config.embedScale !== undefined && config.embedScale !== 1) this.embedScale = mx.array(config.embedScale, this.dtype);
    const compile = process.env.MLX_BATCH_SERVER_COMPILE !== '0';
    const plainQkv = (...a: MxArray[]) => (projectQkv as (l: undefined, ...a: MxArray[]) => MxArray[])(undefined, ...a);
    const plainFinish = (...a: MxArray[]) => (finishLayer as (l: undefined, ...a: MxArray[]) => MxArray)(undefined, ...a);
    this.projectQkv = compile ? mx.compile(plainQkv) : plainQkv;
    this.finishLayer = compile ? mx.compile(plainFinish) : plainFinish;
    this.projectQkvLora = projectQkv as (lora: LayerLora, ...inputs: MxArray[]) => MxArray[];
    this.finishLayerLora = finishLayer as (lora: LayerLora, ...inputs: MxArray[]) => MxArray;
  }

  /**
   * tokens: int32 [B, T] → final-norm hidden states [B*T, hidden] (row b*T + t). Lazy: nothing is
   * evaluated.
   */
  forward(tokens: MxArray, ctx: AttentionContext): MxArray {
    return this.forwardParts([{ tokens, ctx }]);
  }

  /** Puts an adapter's updates in a LoRA slot (dropping what was there), or empties it. */
  setLoraSlot(slot: number, updates: readonly LoraUpdate[] | undefined): void {
    if (!updates) {
      this.loraSlots[slot] = undefined;
      return;
    }
    const arrays = new Map<string, LoraArrays>();
    for (const u of updates) {
      // Stored transposed ([in, R] and [R, out]) so both products are row-major x·W, as the dense weights.
      const a = mx.array(Array.from(u.a), mx.float32).reshape([u.rank, u.inFeatures]);
      const b = mx.array(Array.from(u.b), mx.float32).reshape([u.outFeatures, u.rank]);
      arrays.set(`${u.layer}:${u.target}`, {
        aT: contiguous(mx.transpose(a).astype(this.dtype)),
        bT: contiguous(mx.transpose(b).astype(this.dtype)),
      });
    }
    mx.eval(...[...arrays.values()].flatMap((x) => [x.aT, x.bT]));
    this.loraSlots[slot] = arrays;
  }

  /**
   * The LoRA updates of a step whose (padded) rows have these slots: for every adapter present,
   * x·Aᵀ masked to its rows, then ·Bᵀ; undefined when no row has an adapter.
   */
  private stepLora(parts: ForwardPart[], rows: number, padded: number): ((layer: number) => LayerLora) | undefined {
    if (!parts.some((p) => p.lora?.some((s) => s >= 0))) return undefined;
    const slots = new Int32Array(padded).fill(-1);
    let at = 0;
    for (const p of parts) {
      const n = p.tokens.shape[0] * p.tokens.shape[1];
      if (p.lora) slots.set(p.lora, at);
      at += n;
    }
    if (at !== rows) throw new Error(`LoRA slots cover ${at} rows, the step has ${rows}`);
    const present = [...new Set(slots)].filter((s) => s >= 0);
    const masks = present.map((s) => {
      const arrays = this.loraSlots[s];
      if (!arrays) throw new Error(`LoRA slot ${s} holds no adapter`);
      return {
        arrays,
        mask: mx
          .array(
            Array.from(slots, (x) => (x === s ? 1 : 0)),
            this.dtype,
          )
          .reshape([padded, 1]),
      };
    });
    return (layer) => (target, x) => {
      let sum: MxArray | undefined;
      for (const { arrays, mask } of masks) {
        const u = arrays.get(`${layer}:${target}`);
        if (!u) continue;
        const d = mx.matmul(mx.multiply(mx.matmul(x, u.aT), mask), u.bT);
        sum = sum ? mx.add(sum, d) : d;
      }
      return sum;
    };
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
    const rope = this.ropeTables(parts, padded, false);
    const localRope = this.rope.hasLocal ? this.ropeTables(parts, padded, true) : rope;
    const flat =
      parts.length === 1
        ? mx.reshape(parts[0].tokens, [rows])
        : mx.concatenate(
            parts.map((p) => mx.reshape(p.tokens, [-1])),
            0,
          );
    const lora = this.stepLora(parts, rows, padded);
    const embedded = embedTokens(this.weights.embed, flat);
    let x = pad(this.embedScale ? mx.multiply(embedded, this.embedScale) : embedded);
    for (let i = 0; i < c.numLayers; i++) {
      const w = this.weights.layers[i];
      const qkNorms = w.qNorm && w.kNorm ? [w.qNorm, w.kNorm] : [];
      const tables = this.rope.isLocal(i) ? localRope : rope;
      const qkvInputs = [x, w.attnNorm, tables.cos, tables.sin, ...qkNorms, ...linearArrays(w.qkv)];
      const qkv = lora ? this.projectQkvLora(lora(i), ...qkvInputs) : this.projectQkv(...qkvInputs);
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
      const joined = outputs.length === 1 ? outputs[0] : mx.concatenate(outputs, 0);
      const attn = pad(joined.dtype === this.dtype ? joined : joined.astype(this.dtype));
      const postNorms = w.postAttnNorm && w.postMlpNorm ? [w.postAttnNorm, w.postMlpNorm] : [];
      const finishInputs = [x, attn, w.mlpNorm, ...postNorms, ...linearArrays(w.o), ...linearArrays(w.gateUp), ...linearArrays(w.down)];
      x = lora ? this.finishLayerLora(lora(i), ...finishInputs) : this.finishLayer(...finishInputs);
    }
    return mx.fast.rmsNorm(real(x), this.weights.finalNorm, c.rmsNormEps);
  }

  /**
   * cos/sin tables for every (padded) row: part rows b*T + t sit at position ctx.ropeOffset + t.
   * `local`: those of the layers with their own frequencies (Rope.hasLocal).
   */
  private ropeTables(parts: ForwardPart[], padded: number, local: boolean): RopeTables {
    if (parts.length === 1) {
      const [B, T] = parts[0].tokens.shape;
      const offset = parts[0].ctx.ropeOffset;
      if (T === 1) return this.rope.tables(offset, 1, local); // every row at the same position: broadcast
      if (B === 1) return this.rope.tables(offset, padded, local); // padding rows get positions too, harmlessly
    }
    const cos: MxArray[] = [];
    const sin: MxArray[] = [];
    let rows = 0;
    for (const p of parts) {
      const [B, T] = p.tokens.shape;
      const t = this.rope.tables(p.ctx.ropeOffset, T, local);
      const perRow = (a: MxArray) => (B === 1 ? a : mx.reshape(mx.broadcastTo(mx.expandDims(a, 0), [B, ...a.shape]), [B * T, 1, -1]));
      cos.push(perRow(t.cos));
      sin.push(perRow(t.sin));
      rows += B * T;
    }
    if (padded > rows) {
      const filler = mx.zeros([padded - rows, 1, rotaryDim(this.config) / 2]);
      cos.push(filler);
      sin.push(filler);
    }
    return { cos: mx.concatenate(cos, 0), sin: mx.concatenate(sin, 0) };
  }

  /** hidden [N, hidden] → logits [N, vocab] (f32), soft-capped when the model says so. Rows are padded like the layers' (see forward). */
  logits(hidden: MxArray): MxArray {
    const cap = this.config.finalLogitSoftcap;
    const capped = (l: MxArray) => (cap ? mx.multiply(mx.tanh(mx.divide(l, cap)), cap) : l);
    const rows = hidden.shape[0];
    const padded = paddedRows(rows);
    if (padded === rows) return capped(applyLinear(hidden, this.weights.lmHead));
    const input = mx.concatenate([hidden, mx.zeros([padded - rows, hidden.shape[1]], hidden.dtype)], 0);
    return capped(applyLinear(input, this.weights.lmHead).index(mx.Slice(0, rows)));
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
export function groupedAttention(q: MxArray, keysT: MxArray, values: MxArray, mask: MxArray, scale: MxArray, softcap?: MxArray): MxArray {
  return softcap ? compiledCappedAttention(q, keysT, values, mask, scale, softcap) : compiledAttention(q, keysT, values, mask, scale);
}

/** `softcap` (a scalar array): scores become tanh(s / cap)·cap before the mask (Gemma 2). */
function attentionCore(q: MxArray, keysT: MxArray, values: MxArray, mask: MxArray, scale: MxArray, softcap?: MxArray): MxArray {
  const [B, H, T, D] = q.shape;
  const KVH = keysT.shape[1];
  const G = H / KVH;
  const qg = mx.reshape(mx.multiply(q, scale), [B, KVH, G * T, D]);
  let scores = mx.matmul(qg, keysT); // [B, KVH, G*T, L]
  if (softcap) scores = mx.multiply(mx.tanh(mx.divide(scores, softcap)), softcap);
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
const compile = process.env.MLX_BATCH_SERVER_COMPILE !== '0';
const compiledAttention = compile ? (mx.compile(attentionCore as (...a: MxArray[]) => MxArray) as typeof attentionCore) : attentionCore;
// A separate trace: compile keys on the inputs' shapes, not on whether an optional one is there.
const compiledCappedAttention = compile
  ? (mx.compile(attentionCore as (...a: MxArray[]) => MxArray) as typeof attentionCore)
  : attentionCore;
