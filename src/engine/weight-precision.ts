// How the weights are held in memory on the device that computes them: the dtype of float weights
// and activations (--dtype) and whether quantized blocks stay quantized (--quantization).
// Dependency-free, so the CLI refuses an impossible --dtype before anything is fetched or loaded.
import type { Dtype, QuantizationMode } from './engine-options.ts';

/** What computes the model: the native CPU kernels, MLX's CPU backend, or MLX on Metal. */
export type ComputeDevice = 'native' | 'mlx-cpu' | 'mlx-metal';

export interface WeightPrecision {
  /** Dtype of float weights and activations; `checkpoint`: the checkpoint's float16/bfloat16 (Metal, --dtype auto). */
  dtype: 'float32' | 'float16' | 'bfloat16' | 'checkpoint';
  /** Quantized tensors stay in their blocks (else they become `dtype` at load). */
  keepQuantized: boolean;
  /** Why the choice is slow here, for a startup warning. */
  warning?: string;
}

/**
 * Why --dtype cannot apply on this device, or undefined when it can. Both CPU paths compute in
 * float32 only: MLX's CPU matmul supports nothing else (0.0.7) and the native kernels multiply in f32.
 */
export function dtypeRefusal(dtype: Dtype, device: ComputeDevice | 'cpu'): string | undefined {
  if (dtype === 'auto' || dtype === 'float32' || device === 'mlx-metal') return undefined;
  return (
    `--dtype ${dtype} cannot run on a CPU: MLX's CPU matmul computes only float32 and the native kernels compute in f32; ` +
    'use --dtype auto or float32 (float16 and bfloat16 apply on Metal, macOS on Apple silicon)'
  );
}

/** Whether this machine can have MLX on Metal at all (for refusing --dtype before the engine starts). */
export function metalPossible(platform: NodeJS.Platform = process.platform, arch: string = process.arch): boolean {
  return platform === 'darwin' && arch === 'arm64';
}

/** The precision the weights get on `device`; throws when --dtype cannot apply there. */
export function resolveWeightPrecision(device: ComputeDevice, dtype: Dtype, quantization: QuantizationMode): WeightPrecision {
  const refusal = dtypeRefusal(dtype, device);
  if (refusal) throw new Error(refusal);
  const resolvedDtype = dtype === 'auto' ? (device === 'mlx-metal' ? 'checkpoint' : 'float32') : dtype;
  // Kept where quantized products are at least as fast as f32 ones (bench/results/quantization.md).
  const fastQuantized = device !== 'mlx-cpu';
  const keepQuantized = quantization === 'auto' ? fastQuantized : quantization === 'keep';
  const warning =
    keepQuantized && !fastQuantized
      ? "--quantization keep on MLX's CPU backend: its quantized matmul is scalar and single-threaded on x86, several times slower than the f32 path (bench/results/quantization.md); it saves memory only"
      : undefined;
  return { dtype: resolvedDtype, keepQuantized, warning };
}

/** A one-line account of the choice for the startup log. */
export function describePrecision(p: WeightPrecision, quantization: QuantizationMode): string {
  const how = p.keepQuantized ? 'kept quantized' : 'dequantized at load';
  return `${how}${quantization === 'auto' ? ' (--quantization auto)' : ''}; float weights and activations ${p.dtype === 'checkpoint' ? "in the checkpoint's dtype" : p.dtype}`;
}
