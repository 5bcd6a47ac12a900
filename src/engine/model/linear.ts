import { mx, type MxArray } from '../mlx.ts';
// A projection y = x·W (+ b). On CPU MLX multiplies only float32, and its quantized matmul is slower
// than dequantizing once, so CPU weights are dense f32 stored [in, out] (row-major x·W is the fastest
// BLAS layout here) unless --quantization keep says otherwise. On Metal quantized weights stay quantized.

export type Linear =
  | { kind: 'dense'; weight: MxArray /* [in, out] */; bias?: MxArray }
  | {
      kind: 'quantized';
      weight: MxArray /* [out, in * bits / 32] uint32 */;
      scales: MxArray;
      biases: MxArray;
      groupSize: number;
      bits: number;
      bias?: MxArray;
    };

export function applyLinear(x: MxArray, l: Linear): MxArray {
  const y = l.kind === 'dense' ? mx.matmul(x, l.weight) : mx.quantizedMatmul(x, l.weight, l.scales, l.biases, true, l.groupSize, l.bits);
  return l.bias ? mx.add(y, l.bias) : y;
}

/** The arrays a Linear consists of, in a fixed order (the inputs a compiled block receives). */
export function linearArrays(l: Linear): MxArray[] {
  const parts = l.kind === 'dense' ? [l.weight, l.bias] : [l.weight, l.scales, l.biases, l.bias];
  return parts.filter((p): p is MxArray => p !== undefined);
}

/**
 * Rebuilds a Linear from `linearArrays` output, given another Linear of the same structure. Lets a
 * compiled function (which only receives arrays) apply any layer's projection.
 */
export function linearFromArrays(like: Linear, arrays: MxArray[]): Linear {
  if (like.kind === 'dense') return { kind: 'dense', weight: arrays[0], bias: like.bias ? arrays[1] : undefined };
  return { ...like, weight: arrays[0], scales: arrays[1], biases: arrays[2], bias: like.bias ? arrays[3] : undefined };
}

export function linearOutputSize(l: Linear): number {
  return l.kind === 'dense' ? l.weight.shape[1] : l.weight.shape[0];
}

/** A row-major copy of `a`; MLX elementwise ops keep a transposed input's layout, reshape does not. */
export function contiguous(a: MxArray): MxArray {
  return mx.reshape(mx.reshape(a, [-1]), a.shape);
}

/** Turns a [out, in] float matrix (the checkpoint layout) into a dense Linear stored [in, out], in `dtype` (default f32). */
export function denseFromOutIn(weightOutIn: MxArray, bias?: MxArray, dtype = mx.float32): Linear {
  return { kind: 'dense', weight: contiguous(mx.transpose(weightOutIn.astype(dtype))), bias: bias?.astype(dtype) };
}

export function arrayBytes(a: MxArray): number {
  return a.size * a.itemsize;
}

export function linearBytes(l: Linear): number {
  const parts = l.kind === 'dense' ? [l.weight, l.bias] : [l.weight, l.scales, l.biases, l.bias];
  return parts.reduce((sum, p) => sum + (p ? arrayBytes(p) : 0), 0);
}
