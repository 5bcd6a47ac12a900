// Hands a checkpoint's tensors (raw bytes, Hugging Face names) to the native model: q|k|v and
// gate|up fused by rows, quantized tensors repacked into the kernels' blocks (MLX affine
// quantization, which is also what GGUF files are converted to, maps onto them exactly), float
// tensors as f32, and llama.cpp's q/k row permutation undone where the GGUF file's architecture
// has it (Architecture.ggufPermutesQk).
import type { ModelConfig } from '../model/config.ts';
import { attentionScale, isSlidingLayer, UnsupportedModelError } from '../model/config.ts';
import { ropeInverseFrequencies, ropeTableScale } from '../model/rope.ts';
import type { RawTensor } from '../model/safetensors-reader.ts';
import type { CpuKernelsAddon, NativeModelHandle, NativeModelInfo, NativeWeightType } from './cpu-kernels.ts';

/** A projection [rows = outputs, cols = inputs] in a native layout. */
interface NativeMatrix {
  type: NativeWeightType;
  rows: number;
  cols: number;
  data: Uint8Array;
  bias?: Float32Array;
}

export interface NativeBuildOptions {
  threads: number;
  /** Undo llama.cpp's q/k row permutation (GGUF files of an architecture with ggufPermutesQk). */
  ggufPermuted: boolean;
  /** Turn quantized tensors into f32 at load (--quantization dequantize) instead of keeping their blocks. */
  dequantize?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export function rowBytes(type: NativeWeightType, cols: number): number {
  return type === 'F32' ? cols * 4 : type === 'Q4' ? (cols / 32) * 20 : (cols / 32) * 36;
}

class NativeTensorReader {
  constructor(
    private readonly addon: CpuKernelsAddon,
    private readonly tensors: Map<string, RawTensor>,
    private readonly dequantize: boolean,
  ) {}

  has(name: string): boolean {
    return this.tensors.has(`${name}.weight`);
  }

  private get(name: string): RawTensor {
    const t = this.tensors.get(name);
    if (!t) throw new UnsupportedModelError(`checkpoint is missing tensor ${name}`);
    return t;
  }

  vector(name: string, size: number): Float32Array {
    const v = this.floats(this.get(`${name}.weight`), name);
    if (v.length !== size) throw new UnsupportedModelError(`tensor ${name} has ${v.length} values, expected ${size}`);
    return v;
  }

  private floats(t: RawTensor, name: string): Float32Array {
    if (!['F32', 'F16', 'BF16'].includes(t.dtype))
      throw new UnsupportedModelError(`tensor ${name} has dtype ${t.dtype}, expected a float type`);
    return this.addon.toF32(t.data, t.dtype);
  }

  matrix(name: string, cols: number): NativeMatrix {
    const w = this.get(`${name}.weight`);
    const scales = this.tensors.get(`${name}.scales`);
    const biasT = this.tensors.get(`${name}.bias`);
    const bias = biasT ? this.floats(biasT, `${name}.bias`) : undefined;
    if (!scales) {
      if (w.shape.length !== 2 || w.shape[1] !== cols)
        throw new UnsupportedModelError(`tensor ${name} has shape [${w.shape}], expected [*, ${cols}]`);
      const f = this.floats(w, name);
      return { type: 'F32', rows: w.shape[0], cols, data: new Uint8Array(f.buffer, f.byteOffset, f.byteLength), bias };
    }
    const rows = w.shape[0];
    const bits = (w.shape[1] * 32) / cols;
    const groupSize = cols / scales.shape[1];
    if (w.dtype !== 'U32' || ![4, 8].includes(bits) || !Number.isInteger(groupSize)) {
      throw new UnsupportedModelError(
        `tensor ${name}: ${bits}-bit quantization (groups of ${groupSize}) is not supported by the native kernels`,
      );
    }
    const biases = this.tensors.get(`${name}.biases`);
    const packed = this.addon.packAffine(w.data, scales.data, biases?.data ?? null, scales.dtype, rows, cols, bits, groupSize);
    const m: NativeMatrix = { type: packed.type, rows, cols, data: packed.data, bias };
    return this.dequantize ? toF32Matrix(this.addon, m) : m;
  }
}

/** Reorders rows: out row i = in row order[i]. */
function reorderRows(m: NativeMatrix, order: number[]): NativeMatrix {
  const rb = rowBytes(m.type, m.cols);
  const data = new Uint8Array(m.data.byteLength);
  order.forEach((from, to) => data.set(m.data.subarray(from * rb, (from + 1) * rb), to * rb));
  const bias = m.bias && Float32Array.from(order, (from) => (m.bias as Float32Array)[from]);
  return { ...m, data, bias };
}

/**
 * llama.cpp stores q/k rows of head h as (pair b, half a) where Hugging Face has (half a, pair b):
 * HF row h·D + a·D/2 + b is GGUF row h·D + 2b + a.
 */
function unpermuteOrder(rows: number, heads: number): number[] {
  const D = rows / heads;
  const order: number[] = [];
  for (let h = 0; h < heads; h++) for (let a = 0; a < 2; a++) for (let b = 0; b < D / 2; b++) order.push(h * D + 2 * b + a);
  return order;
}

/** Stacks matrices by rows; parts in different layouts all become F32. */
function concatRows(addon: CpuKernelsAddon, parts: NativeMatrix[]): NativeMatrix {
  if (parts.length === 1) return parts[0];
  const sameType = parts.every((p) => p.type === parts[0].type);
  const unified = sameType ? parts : parts.map((p) => toF32Matrix(addon, p));
  const rows = unified.reduce((n, p) => n + p.rows, 0);
  const data = new Uint8Array(unified.reduce((n, p) => n + p.data.byteLength, 0));
  let at = 0;
  for (const p of unified) {
    data.set(p.data, at);
    at += p.data.byteLength;
  }
  const withBias = unified.filter((p) => p.bias).length;
  if (withBias !== 0 && withBias !== unified.length) throw new UnsupportedModelError('only some of the fused projections have a bias');
  const bias = withBias ? Float32Array.from(unified.flatMap((p) => Array.from(p.bias as Float32Array))) : undefined;
  return { type: unified[0].type, rows, cols: unified[0].cols, data, bias };
}

/** A quantized matrix as f32, for fusing with parts of another layout (rare: mixed checkpoints). */
function toF32Matrix(addon: CpuKernelsAddon, m: NativeMatrix): NativeMatrix {
  if (m.type === 'F32') return m;
  const f = addon.dequantBlocks(m.type, m.rows, m.cols, m.data);
  return { ...m, type: 'F32', data: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) };
}

export function buildNativeModel(
  addon: CpuKernelsAddon,
  tensors: Map<string, RawTensor>,
  c: ModelConfig,
  opts: NativeBuildOptions,
): { handle: NativeModelHandle; info: NativeModelInfo } {
  const r = new NativeTensorReader(addon, tensors, opts.dequantize === true);
  const H = c.hiddenSize;
  const qOut = c.numHeads * c.headDim;
  const handle = addon.createModel(
    {
      hidden: H,
      layers: c.numLayers,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      headDim: c.headDim,
      intermediate: c.intermediateSize,
      vocab: c.vocabSize,
      eps: c.rmsNormEps,
      ropeScale: ropeTableScale(c),
      threads: opts.threads,
    },
    ropeInverseFrequencies(c),
    c.ropeScaling?.type === 'longrope' ? ropeInverseFrequencies(c, false, true) : null,
  );
  if (c.postNorms || c.embedScale !== undefined || c.slidingLayers || c.attnLogitSoftcap || c.finalLogitSoftcap || c.hiddenAct) {
    const sliding = Uint8Array.from({ length: c.slidingLayers ? c.numLayers : 0 }, (_, l) => (isSlidingLayer(c, l) ? 1 : 0));
    addon.setArchitecture(
      handle,
      {
        embedScale: c.embedScale ?? 1,
        attnScale: attentionScale(c),
        attnSoftcap: c.attnLogitSoftcap ?? 0,
        finalSoftcap: c.finalLogitSoftcap ?? 0,
        gelu: c.hiddenAct === 'gelu_tanh' ? 1 : 0,
        window: c.slidingWindow ?? 0,
      },
      sliding,
      c.localRopeTheta !== undefined ? ropeInverseFrequencies(c, true) : null,
    );
  }
  const set = (layer: number, name: Parameters<CpuKernelsAddon['setWeight']>[2], m: NativeMatrix) =>
    addon.setWeight(handle, layer, name, m.type, m.rows, m.cols, m.data, m.bias ?? null);

  // Gemma stores w of x·(1 + w).
  const norm = (name: string, size: number) => {
    const v = r.vector(name, size);
    return c.normWeightOffset ? v.map((x) => x + (c.normWeightOffset as number)) : v;
  };
  const embed = r.matrix('model.embed_tokens', H);
  set(-1, 'embed', embed);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    if (r.has(`${p}.self_attn.qkv_proj`)) {
      // Phi-3 stores q|k|v (and gate|up) fused already.
      if (opts.ggufPermuted) throw new UnsupportedModelError(`${p}.self_attn.qkv_proj: fused q/k rows cannot be un-permuted`);
      set(i, 'qkv', r.matrix(`${p}.self_attn.qkv_proj`, H));
    } else {
      let q = r.matrix(`${p}.self_attn.q_proj`, H);
      let k = r.matrix(`${p}.self_attn.k_proj`, H);
      if (opts.ggufPermuted) {
        q = reorderRows(q, unpermuteOrder(q.rows, c.numHeads));
        k = reorderRows(k, unpermuteOrder(k.rows, c.numKvHeads));
      }
      set(i, 'qkv', concatRows(addon, [q, k, r.matrix(`${p}.self_attn.v_proj`, H)]));
    }
    set(i, 'o', r.matrix(`${p}.self_attn.o_proj`, qOut));
    const gateUp = r.has(`${p}.mlp.gate_up_proj`)
      ? r.matrix(`${p}.mlp.gate_up_proj`, H)
      : concatRows(addon, [r.matrix(`${p}.mlp.gate_proj`, H), r.matrix(`${p}.mlp.up_proj`, H)]);
    set(i, 'gateUp', gateUp);
    set(i, 'down', r.matrix(`${p}.mlp.down_proj`, c.intermediateSize));
    addon.setNorm(handle, i, 'attn', norm(`${p}.input_layernorm`, H));
    if (c.postNorms) {
      addon.setNorm(handle, i, 'mlp', norm(`${p}.pre_feedforward_layernorm`, H));
      addon.setNorm(handle, i, 'postAttn', norm(`${p}.post_attention_layernorm`, H));
      addon.setNorm(handle, i, 'postMlp', norm(`${p}.post_feedforward_layernorm`, H));
    } else addon.setNorm(handle, i, 'mlp', norm(`${p}.post_attention_layernorm`, H));
    if (c.qkNorm) {
      addon.setNorm(handle, i, 'q', norm(`${p}.self_attn.q_norm`, c.headDim));
      addon.setNorm(handle, i, 'k', norm(`${p}.self_attn.k_norm`, c.headDim));
    }
    opts.onProgress?.(i + 1, c.numLayers + 1);
  }
  addon.setNorm(handle, -1, 'final', norm('model.norm', H));
  if (!c.tieWordEmbeddings && r.has('lm_head')) set(-1, 'lmHead', r.matrix('lm_head', H));
  const info = addon.finish(handle);
  opts.onProgress?.(c.numLayers + 1, c.numLayers + 1);
  return { handle, info };
}
