// The engine's settings, in a module without dependencies: the CLI and the service read them
// without loading the engine (and MLX).

/** Which implementation computes the model on the CPU: our own kernels, or MLX. */
export type CpuKernels = 'native' | 'mlx';

/**
 * The dtype of unquantized weights and activations (--dtype). auto: float32 on a CPU (the only
 * dtype either CPU path computes in), the checkpoint's float16/bfloat16 on Metal.
 */
export const DTYPES = ['auto', 'float32', 'float16', 'bfloat16'] as const;
export type Dtype = (typeof DTYPES)[number];

/**
 * What happens to quantized weights at load (--quantization): kept in their blocks, or turned into
 * the compute dtype. auto: kept where the device computes them at least as fast as f32 (the native
 * kernels, Metal), dequantized on MLX's CPU backend (its quantized matmul is scalar on x86).
 */
export const QUANTIZATION_MODES = ['auto', 'keep', 'dequantize'] as const;
export type QuantizationMode = (typeof QUANTIZATION_MODES)[number];

export interface EngineOptions {
  /** Most sequences decoding at once (--batch-size). */
  batchSize: number;
  /** Most prompt tokens computed in one step (--prefill-chunk); bounds how long a step can stall streams. */
  prefillTokens: number;
  /** Columns a packed group of prompts may span (bounds the packed attention's cost; MLX path). */
  maxGroupColumns: number;
  /** Bytes the running sequences' KV may occupy. */
  kvBudgetBytes: number;
  /** Reuse KV of shared prefixes. */
  prefixCache: boolean;
  /** Bytes the prefix cache may hold (--prefix-cache-size). */
  prefixCacheBytes: number;
  /** Requests allowed to wait; beyond it a request is refused with resource_exhausted. */
  maxQueue: number;
  /**
   * Milliseconds a request may wait in the queue before it starts; then it is refused with
   * resource_exhausted (the server is overloaded). 0: no limit.
   */
  queueTimeoutMs: number;
  /** CPU implementation (--cpu-kernels); the native kernels where they run, else MLX. Metal always uses MLX. */
  cpuKernels: CpuKernels;
  /** Threads for the native kernels (--threads); 0: one per core. */
  threads: number;
  /** Dtype of unquantized weights and activations (--dtype). */
  dtype: Dtype;
  /** Keep quantized weights quantized or dequantize them at load (--quantization). */
  quantization: QuantizationMode;
  /**
   * While streams are decoding, a step that also computes prompt tokens may take at most this
   * multiple of a decode-only step (native path): prompts are spread over steps so running
   * streams keep their pace.
   */
  prefillStallRatio: number;
  /**
   * The context the engine enforces, in tokens (--max-model-len): prompt plus output of one
   * request, and the unit of KV sizing. At most the model's own; unset: the model's.
   */
  maxModelLen?: number;
  /** LoRA adapters served from the start (--lora name=path); more can be loaded at run time. */
  loras: { name: string; path: string }[];
  /**
   * LoRA adapters whose weights sit in the model at once (--max-loras): a step's batch mixes at
   * most this many; the others wait, and an idle resident one makes room (least recently used).
   */
  maxLoras: number;
  /** The largest LoRA rank served (--max-lora-rank). */
  maxLoraRank: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  batchSize: 32,
  prefillTokens: 256,
  maxGroupColumns: 4096,
  kvBudgetBytes: 6 * 1024 ** 3,
  prefixCache: true,
  prefixCacheBytes: 1024 ** 3,
  maxQueue: 1024,
  queueTimeoutMs: 600_000,
  cpuKernels: 'native',
  threads: 0,
  dtype: 'auto',
  quantization: 'auto',
  prefillStallRatio: 2,
  loras: [],
  maxLoras: 4,
  maxLoraRank: 64,
};

/** The context length the engine serves: the model's, or --max-model-len, which may not exceed it. */
export function servedContextLength(modelContextLength: number, maxModelLen: number | undefined): number {
  if (maxModelLen === undefined) return modelContextLength;
  if (maxModelLen > modelContextLength) {
    throw new Error(
      `--max-model-len ${maxModelLen} is more than the model's context length of ${modelContextLength} tokens; give at most ${modelContextLength}`,
    );
  }
  return maxModelLen;
}
