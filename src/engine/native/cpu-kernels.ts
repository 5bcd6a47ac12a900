// The native CPU kernels addon (native/cpu-kernels), built by setup. Loaded lazily: only the
// engine process on the native path needs it, and a machine without it falls back to MLX.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type NativeModelHandle = { readonly __nativeModel: unique symbol };

export interface NativeModelInfo {
  /** The kernel variant the CPU runs: avx512, avx2 or generic. */
  kernels: string;
  threads: number;
  weightBytes: number;
}

export interface CpuKernelsAddon {
  /** Kernel variant this CPU runs. */
  kernels: string;
  /** Every kernel variant this CPU can run (generic, avx2, avx512). */
  kernelVariants: string[];
  /** What this machine does at best with `threads` threads: memory read GB/s and f32 FMA GFLOP/s (benchmarks). */
  probeMachine(threads: number): { readGBs: number; fmaGflops: number };
  /** One variant's y = x·Wᵀ for M rows, timed over `iterations` calls (tests and benchmarks). */
  kernelMatmul(
    variant: string,
    type: NativeWeightType,
    rows: number,
    cols: number,
    data: Uint8Array,
    x: Float32Array,
    M: number,
    threads: number,
    iterations: number,
  ): { y: Float32Array; ms: number };
  /**
   * One variant's LoRA expand, y[m][n] += Σ_k t[m][k]·bt[k][n] for n in [begin[k], end[k]), over
   * all outputs with `threads` threads; y is updated in place (tests).
   */
  kernelLoraExpand(
    variant: string,
    t: Float32Array,
    M: number,
    rank: number,
    bt: Float32Array,
    out: number,
    begin: Int32Array,
    end: Int32Array,
    y: Float32Array,
    threads: number,
  ): void;
  createModel(
    config: {
      hidden: number;
      layers: number;
      heads: number;
      kvHeads: number;
      headDim: number;
      intermediate: number;
      vocab: number;
      eps: number;
      /** cos/sin multiplier (LongRoPE's attention factor; 1 otherwise). */
      ropeScale: number;
      threads: number;
    },
    /** One RoPE frequency per rotated pair (fewer than headDim / 2 with a partial rotary embedding). */
    invFreq: Float64Array,
    /** LongRoPE's long-context frequencies, as many; null: the model has none. */
    invFreqLong: Float64Array | null,
  ): NativeModelHandle;
  /**
   * Gemma's differences from Llama (model.h ModelConfig), before any weight is set: `sliding` has a
   * flag per layer (or is empty), `invFreqLocal` the RoPE frequencies of the sliding layers.
   */
  setArchitecture(
    model: NativeModelHandle,
    options: { embedScale: number; attnScale: number; attnSoftcap: number; finalSoftcap: number; gelu: number; window: number },
    sliding: Uint8Array,
    invFreqLocal: Float64Array | null,
  ): void;
  setWeight(
    model: NativeModelHandle,
    layer: number,
    name: 'qkv' | 'o' | 'gateUp' | 'down' | 'embed' | 'lmHead',
    type: NativeWeightType,
    rows: number,
    cols: number,
    data: Uint8Array,
    bias: Float32Array | null,
  ): void;
  setNorm(
    model: NativeModelHandle,
    layer: number,
    name: 'attn' | 'mlp' | 'q' | 'k' | 'postAttn' | 'postMlp' | 'final',
    values: Float32Array,
  ): void;
  finish(model: NativeModelHandle): NativeModelInfo;
  forward(
    model: NativeModelHandle,
    tokens: Int32Array,
    positions: Int32Array,
    ctxOffset: Int32Array,
    ctxSlots: Int32Array,
    logitRows: Int32Array,
    logits: Float32Array,
    /** A flag per token: rotate with the long-context frequencies; null: no token does. */
    ropeLong: Uint8Array | null,
    /** Each token's LoRA slot, or -1 for the base model; null: no token has an adapter. */
    lora: Int32Array | null,
  ): void;
  /** One fused projection's LoRA update of the adapter in `slot`: y += (x·Aᵀ)·Bᵀ, a [rank, in], b [out, rank]. */
  setLora(
    model: NativeModelHandle,
    slot: number,
    layer: number,
    target: 'qkv' | 'o' | 'gateUp' | 'down',
    rank: number,
    a: Float32Array,
    b: Float32Array,
  ): void;
  /** Empties a LoRA slot. */
  clearLora(model: NativeModelHandle, slot: number): void;
  /** A KV pool of `slots` tokens, replacing any earlier one (and its contents). */
  reserveKv(model: NativeModelHandle, slots: number): void;
  /** Returns the memory of slots [begin, end) to the system. */
  releaseSlots(model: NativeModelHandle, begin: number, end: number): void;
  packAffine(
    words: Uint8Array,
    scales: Uint8Array,
    biases: Uint8Array | null,
    scaleType: string,
    rows: number,
    cols: number,
    bits: number,
    groupSize: number,
  ): { type: NativeWeightType; data: Uint8Array };
  toF32(data: Uint8Array, dtype: string): Float32Array;
  /** Q4/Q8 blocks [rows, cols] → f32 values. */
  dequantBlocks(type: NativeWeightType, rows: number, cols: number, data: Uint8Array): Float32Array;
  maxLogsumexp(logits: Float32Array, rows: number, vocab: number, max: Float32Array, lse: Float32Array): void;
  // The sampler's per-row work (sampler.cpp; driven by src/engine/sampler/cpu-sampler.ts). A row is
  // logits[offset, offset + vocab).
  /** out[i] = first index of the largest value of row rows[i] (rows of `vocab` values); NaN never wins. */
  argmaxRows(logits: Float32Array, vocab: number, rows: Int32Array, out: Int32Array): void;
  /** log Σ exp over the row; fills topIds with the ids of its topIds.length largest values, largest first (ties by id). */
  logprobStats(logits: Float32Array, offset: number, vocab: number, topIds: Int32Array): number;
  /**
   * A token drawn by inverse CDF (token ids ascending) with the uniform u in [0, 1) from the row
   * divided by temperature (> 0) and filtered by min_p, top_k and top_p (0, 0 and 1 when off), as
   * reference.ts defines them. A row whose maximum is not finite returns its argmax.
   */
  sampleRow(
    logits: Float32Array,
    offset: number,
    vocab: number,
    temperature: number,
    topK: number,
    topP: number,
    minP: number,
    u: number,
  ): number;
}

export type NativeWeightType = 'F32' | 'Q4' | 'Q8';

const ADDON_PATH = fileURLToPath(new URL('../../../native/cpu-kernels/build/cpu-kernels.node', import.meta.url));

let addon: CpuKernelsAddon | undefined;
let loadError: string | undefined;

/** The addon, or undefined (with the reason in nativeKernelsUnavailable()) when it cannot load here. */
export function cpuKernels(): CpuKernelsAddon | undefined {
  if (addon || loadError) return addon;
  if (!existsSync(ADDON_PATH)) {
    loadError = `the native kernels are not built (${ADDON_PATH}; run scripts/setup.sh)`;
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as CpuKernelsAddon;
  } catch (e) {
    loadError = `the native kernels failed to load: ${(e as Error).message}`;
  }
  return addon;
}

export function nativeKernelsUnavailable(): string | undefined {
  cpuKernels();
  return loadError;
}
