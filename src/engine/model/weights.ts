// Loads checkpoint tensors (safetensors from a Hugging Face / MLX directory, or a GGUF file) into the
// layout the forward pass wants: fused q|k|v and gate|up projections, dense [in, out] matrices in the
// compute dtype (f32 on CPU), or quantized blocks kept as they are (--quantization).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from './config.ts';
import { UnsupportedModelError } from './config.ts';
import { applyLinear, contiguous, denseFromOutIn, linearArrays, type Linear } from './linear.ts';
import { mx, type MxArray } from '../mlx.ts';

export type MxDtype = typeof mx.float32;

export interface LayerWeights {
  attnNorm: MxArray;
  /** Per-head RMSNorm weights [headDim] of q and k, applied before RoPE (ModelConfig.qkNorm). */
  qNorm?: MxArray;
  kNorm?: MxArray;
  /** q, k and v projections fused along the output axis: one matmul instead of three. */
  qkv: Linear;
  o: Linear;
  /** The MLP's input norm (Gemma's pre_feedforward_layernorm). */
  mlpNorm: MxArray;
  /** Norms of the attention and MLP outputs before each residual add (ModelConfig.postNorms). */
  postAttnNorm?: MxArray;
  postMlpNorm?: MxArray;
  /** gate and up projections fused along the output axis. */
  gateUp: Linear;
  down: Linear;
}

/** The token embedding: a dense [vocab, hidden] table, or quantized rows dequantized as they are looked up. */
export type Embedding =
  | { kind: 'dense'; table: MxArray }
  | { kind: 'quantized'; weight: MxArray; scales: MxArray; biases: MxArray; groupSize: number; bits: number };

/** The embedding rows of `ids` (int32 [N]) → [N, hidden]. */
export function embedTokens(e: Embedding, ids: MxArray): MxArray {
  if (e.kind === 'dense') return mx.take(e.table, ids, 0);
  const rows = (a: MxArray) => mx.take(a, ids, 0);
  return mx.dequantize(rows(e.weight), rows(e.scales), rows(e.biases), e.groupSize, e.bits);
}

function embeddingArrays(e: Embedding): MxArray[] {
  return e.kind === 'dense' ? [e.table] : [e.weight, e.scales, e.biases];
}

export interface ModelWeights {
  embed: Embedding;
  layers: LayerWeights[];
  finalNorm: MxArray;
  lmHead: Linear;
}

export interface LoadOptions {
  /** Keep quantized checkpoints quantized (fast on Metal; --quantization); else they are dequantized to `dtype`. */
  keepQuantized: boolean;
  /** Dtype of float weights, of dequantized ones and of quantized weights' scales (default float32: MLX's CPU matmul computes nothing else). */
  dtype?: MxDtype;
  onProgress?: (done: number, total: number) => void;
}

/** Tensor source keyed by Hugging Face parameter names (without the .weight/.scales/... suffix handling). */
type TensorMap = Record<string, MxArray>;

const GGUF_LAYER_NAMES: Record<string, string> = {
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm',
  attn_k_norm: 'self_attn.k_norm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
  attn_norm: 'input_layernorm',
  ffn_norm: 'post_attention_layernorm',
};
const GGUF_GLOBAL_NAMES: Record<string, string> = {
  token_embd: 'model.embed_tokens',
  output_norm: 'model.norm',
  output: 'lm_head',
};

/**
 * Renames GGUF tensors (blk.3.attn_q.weight) to Hugging Face names (model.layers.3.self_attn.q_proj.weight).
 * `layerNames` overrides the mapping of some layer tensors for one architecture (Architecture.ggufLayerNames).
 */
export function renameGgufTensors<T>(tensors: Record<string, T>, layerNames: Readonly<Record<string, string>> = {}): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, value] of Object.entries(tensors)) {
    const layer = /^blk\.(\d+)\.([a-z_]+)\.(\w+)$/.exec(name);
    if (layer) {
      const mapped = layerNames[layer[2]] ?? GGUF_LAYER_NAMES[layer[2]];
      if (mapped) out[`model.layers.${layer[1]}.${mapped}.${layer[3]}`] = value;
      continue;
    }
    const global = /^([a-z_]+)\.(\w+)$/.exec(name);
    if (global && GGUF_GLOBAL_NAMES[global[1]]) out[`${GGUF_GLOBAL_NAMES[global[1]]}.${global[2]}`] = value;
  }
  return out;
}

/**
 * Reads every *.safetensors file of a directory; `rename` maps each tensor name to the one the
 * loader expects, or to undefined to skip it (Architecture.hfTensorName).
 */
export function loadSafetensorsDirectory(dir: string, rename?: (name: string) => string | undefined): TensorMap {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  if (files.length === 0) throw new UnsupportedModelError(`no .safetensors files in ${dir}`);
  const tensors: TensorMap = {};
  for (const f of files) {
    for (const [name, t] of Object.entries(mx.load(join(dir, f)) as unknown as TensorMap)) {
      const mapped = rename ? rename(name) : name;
      if (mapped !== undefined) tensors[mapped] = t;
    }
  }
  return tensors;
}

/**
 * llama.cpp's converter permutes q/k rows so its interleaved RoPE matches Hugging Face's half-split
 * one; undo it so one RoPE convention serves every checkpoint. Rows are the first axis of every
 * part (weight, scales, biases), so the same reshape works for quantized tensors.
 */
function unpermuteRows(a: MxArray, heads: number): MxArray {
  const [rows, ...rest] = a.shape;
  return contiguous(mx.swapaxes(mx.reshape(a, [heads, rows / heads / 2, 2, ...rest]), 1, 2)).reshape(a.shape);
}

interface RawMatrix {
  weight: MxArray;
  scales?: MxArray;
  biases?: MxArray;
  bias?: MxArray;
}

class TensorReader {
  constructor(
    private readonly tensors: TensorMap,
    private readonly keepQuantized: boolean,
    readonly dtype: MxDtype,
  ) {}

  has(name: string): boolean {
    return `${name}.weight` in this.tensors;
  }

  vector(name: string): MxArray {
    const t = this.tensors[`${name}.weight`];
    if (!t) throw new UnsupportedModelError(`checkpoint is missing tensor ${name}.weight`);
    return t.astype(this.dtype);
  }

  raw(name: string): RawMatrix {
    const weight = this.tensors[`${name}.weight`];
    if (!weight) throw new UnsupportedModelError(`checkpoint is missing tensor ${name}.weight`);
    return {
      weight,
      scales: this.tensors[`${name}.scales`],
      biases: this.tensors[`${name}.biases`],
      bias: this.tensors[`${name}.bias`],
    };
  }

  /** A [out, in] matrix in the compute dtype, dequantizing if the checkpoint is quantized. */
  dense(m: RawMatrix, inFeatures: number): MxArray {
    if (!m.scales) return m.weight.astype(this.dtype);
    const { groupSize, bits } = quantParams(m, inFeatures);
    // Dequantize in f32: scales and biases are often f16, and an f16 result would round every weight.
    const scales = m.scales.astype(mx.float32);
    const biases = m.biases ? m.biases.astype(mx.float32) : mx.zerosLike(scales);
    return mx.dequantize(m.weight, scales, biases, groupSize, bits).astype(this.dtype);
  }

  /** Quantized parts kept as they are, scales and biases in the compute dtype (the product's dtype follows them). */
  quantized(parts: RawMatrix[], inFeatures: number) {
    const q = parts.map((p) => quantParams(p, inFeatures));
    if (!q.every((x) => x.bits === q[0].bits && x.groupSize === q[0].groupSize)) return undefined;
    const cat = (sel: (p: RawMatrix) => MxArray) => (parts.length === 1 ? sel(parts[0]) : mx.concatenate(parts.map(sel), 0));
    return {
      weight: cat((p) => p.weight),
      scales: cat((p) => p.scales as MxArray).astype(this.dtype),
      biases: cat((p) => p.biases ?? mx.zerosLike(p.scales as MxArray)).astype(this.dtype),
      groupSize: q[0].groupSize,
      bits: q[0].bits,
    };
  }

  /** The token embedding: quantized rows kept when quantized weights are kept. */
  embedding(m: RawMatrix, hidden: number): Embedding {
    const q = this.keepQuantized && m.scales ? this.quantized([m], hidden) : undefined;
    return q ? { kind: 'quantized', ...q } : { kind: 'dense', table: this.dense(m, hidden) };
  }

  /** Fuses several [out_i, in] matrices into one Linear with outputs concatenated in order. */
  linear(parts: RawMatrix[], inFeatures: number): Linear {
    const biases = parts.map((p) => p.bias);
    const bias = biases.every((b) => b) ? mx.concatenate(biases as MxArray[], 0).astype(this.dtype) : undefined;
    if (biases.some((b) => b) && !bias) throw new UnsupportedModelError('only some of the fused projections have a bias');
    if (this.keepQuantized && parts.every((p) => p.scales)) {
      const q = this.quantized(parts, inFeatures);
      if (q) return { kind: 'quantized', ...q, bias };
    }
    const dense = parts.map((p) => this.dense(p, inFeatures));
    return denseFromOutIn(dense.length === 1 ? dense[0] : mx.concatenate(dense, 0), bias, this.dtype);
  }
}

function quantParams(m: RawMatrix, inFeatures: number): { groupSize: number; bits: number } {
  const packedCols = m.weight.shape[1];
  const bits = (packedCols * 32) / inFeatures;
  const groupSize = inFeatures / (m.scales as MxArray).shape[1];
  if (![2, 3, 4, 6, 8].includes(bits) || !Number.isInteger(groupSize)) {
    throw new UnsupportedModelError(`cannot infer quantization of a [${m.weight.shape}] tensor with ${inFeatures} inputs`);
  }
  return { groupSize, bits };
}

function permuteRaw(m: RawMatrix, heads: number): RawMatrix {
  return {
    weight: unpermuteRows(m.weight, heads),
    scales: m.scales && unpermuteRows(m.scales, heads),
    biases: m.biases && unpermuteRows(m.biases, heads),
    bias: m.bias && unpermuteRows(m.bias, heads),
  };
}

function checkShape(name: string, a: MxArray, expected: number[]) {
  if (a.shape.length !== expected.length || a.shape.some((d, i) => d !== expected[i])) {
    throw new UnsupportedModelError(`tensor ${name} has shape [${a.shape}], expected [${expected}]`);
  }
}

/**
 * Builds ModelWeights from Hugging Face-named tensors. `ggufPermuted` undoes llama.cpp's q/k row
 * permutation (GGUF files of an architecture with ggufPermutesQk). Each layer is evaluated as it is
 * built so peak memory stays near one copy of the model.
 */
export function buildWeights(tensors: TensorMap, c: ModelConfig, opts: LoadOptions & { ggufPermuted: boolean }): ModelWeights {
  const r = new TensorReader(tensors, opts.keepQuantized, opts.dtype ?? mx.float32);
  const H = c.hiddenSize;
  const qOut = c.numHeads * c.headDim;
  const kvOut = c.numKvHeads * c.headDim;

  // Gemma stores w of x·(1 + w).
  const norm = (name: string) => (c.normWeightOffset ? mx.add(r.vector(name), c.normWeightOffset) : r.vector(name));
  const embedRaw = r.raw('model.embed_tokens');
  const embed = r.embedding(embedRaw, H);
  checkShape('model.embed_tokens', embed.kind === 'dense' ? embed.table : embed.scales, [
    c.vocabSize,
    embed.kind === 'dense' ? H : H / embed.groupSize,
  ]);
  mx.eval(...embeddingArrays(embed));

  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const layer: LayerWeights = {
      attnNorm: norm(`${p}.input_layernorm`),
      qkv: r.linear(qkvParts(r, p, c, opts.ggufPermuted), H),
      o: r.linear([r.raw(`${p}.self_attn.o_proj`)], qOut),
      mlpNorm: norm(c.postNorms ? `${p}.pre_feedforward_layernorm` : `${p}.post_attention_layernorm`),
      // Phi-3 stores gate|up fused already.
      gateUp: r.linear(
        r.has(`${p}.mlp.gate_up_proj`) ? [r.raw(`${p}.mlp.gate_up_proj`)] : [r.raw(`${p}.mlp.gate_proj`), r.raw(`${p}.mlp.up_proj`)],
        H,
      ),
      down: r.linear([r.raw(`${p}.mlp.down_proj`)], c.intermediateSize),
      ...(c.qkNorm ? { qNorm: norm(`${p}.self_attn.q_norm`), kNorm: norm(`${p}.self_attn.k_norm`) } : {}),
      ...(c.postNorms ? { postAttnNorm: norm(`${p}.post_attention_layernorm`), postMlpNorm: norm(`${p}.post_feedforward_layernorm`) } : {}),
    };
    checkLayer(p, layer, c, qOut + 2 * kvOut);
    evalLayer(layer);
    layers.push(layer);
    opts.onProgress?.(i + 1, c.numLayers + 1);
  }

  const finalNorm = norm('model.norm');
  const lmHead =
    !c.tieWordEmbeddings && r.has('lm_head')
      ? r.linear([r.raw('lm_head')], H)
      : embed.kind === 'quantized'
        ? { ...embed, kind: 'quantized' as const } // tied: the same arrays serve both
        : denseFromOutIn(embed.table, undefined, r.dtype);
  mx.eval(finalNorm, ...linearArrays(lmHead));
  opts.onProgress?.(c.numLayers + 1, c.numLayers + 1);
  return { embed, layers, finalNorm, lmHead };
}

/** Bytes the weights occupy in memory (what --quantization and --dtype change). */
export function weightBytes(w: ModelWeights): number {
  const arrays = [
    ...embeddingArrays(w.embed),
    w.finalNorm,
    ...linearArrays(w.lmHead),
    ...w.layers.flatMap((l) => [
      l.attnNorm,
      l.mlpNorm,
      ...[l.qNorm, l.kNorm, l.postAttnNorm, l.postMlpNorm].filter((a): a is MxArray => a !== undefined),
      ...linearArrays(l.qkv),
      ...linearArrays(l.o),
      ...linearArrays(l.gateUp),
      ...linearArrays(l.down),
    ]),
  ];
  // A tied LM head may share the embedding's arrays: count each array once.
  return [...new Set(arrays)].reduce((sum, a) => sum + a.size * a.itemsize, 0);
}

/** q, k and v of a layer, in order: three projections, or one fused already (Phi-3's qkv_proj). */
function qkvParts(r: TensorReader, p: string, c: ModelConfig, ggufPermuted: boolean): RawMatrix[] {
  if (r.has(`${p}.self_attn.qkv_proj`)) {
    if (ggufPermuted)
      throw new UnsupportedModelError(`${p}.self_attn.qkv_proj: a fused projection with permuted q/k rows is not supported`);
    return [r.raw(`${p}.self_attn.qkv_proj`)];
  }
  let q = r.raw(`${p}.self_attn.q_proj`);
  let k = r.raw(`${p}.self_attn.k_proj`);
  if (ggufPermuted) {
    q = permuteRaw(q, c.numHeads);
    k = permuteRaw(k, c.numKvHeads);
  }
  return [q, k, r.raw(`${p}.self_attn.v_proj`)];
}

function evalLayer(l: LayerWeights) {
  mx.eval(
    l.attnNorm,
    l.mlpNorm,
    ...(l.qNorm && l.kNorm ? [l.qNorm, l.kNorm] : []),
    ...(l.postAttnNorm && l.postMlpNorm ? [l.postAttnNorm, l.postMlpNorm] : []),
    ...linearArrays(l.qkv),
    ...linearArrays(l.o),
    ...linearArrays(l.gateUp),
    ...linearArrays(l.down),
  );
}

/** Runs each projection on a zero vector (shape errors are JS errors at graph-build time, not aborts). */
function checkLayer(prefix: string, l: LayerWeights, c: ModelConfig, qkvOut: number) {
  const probe = (name: string, lin: Linear, inF: number, outF: number) => {
    let y: MxArray;
    try {
      y = applyLinear(mx.zeros([1, inF]), lin);
    } catch (e) {
      throw new UnsupportedModelError(`${prefix}.${name}: ${(e as Error).message}`);
    }
    if (y.shape[1] !== outF) throw new UnsupportedModelError(`${prefix}.${name} produces ${y.shape[1]} outputs, expected ${outF}`);
  };
  probe('qkv', l.qkv, c.hiddenSize, qkvOut);
  probe('o_proj', l.o, c.numHeads * c.headDim, c.hiddenSize);
  probe('gate_up', l.gateUp, c.hiddenSize, 2 * c.intermediateSize);
  probe('down_proj', l.down, c.intermediateSize, c.hiddenSize);
  checkShape(`${prefix}.input_layernorm`, l.attnNorm, [c.hiddenSize]);
  checkShape(`${prefix}.post_attention_layernorm`, l.mlpNorm, [c.hiddenSize]);
  if (l.postAttnNorm) checkShape(`${prefix}.post_attention_layernorm`, l.postAttnNorm, [c.hiddenSize]);
  if (l.postMlpNorm) checkShape(`${prefix}.post_feedforward_layernorm`, l.postMlpNorm, [c.hiddenSize]);
  if (l.qNorm) checkShape(`${prefix}.self_attn.q_norm`, l.qNorm, [c.headDim]);
  if (l.kNorm) checkShape(`${prefix}.self_attn.k_norm`, l.kNorm, [c.headDim]);
}
