// Rotary position embeddings. MLX's fast.rope rotates consecutive positions starting at one scalar
// offset; that is all the forward pass needs, because each batch shares one position counter (see
// kv/batch-kv-cache.ts). llama3-style frequency scaling is not expressible with fast.rope's base, so
// those models rotate with a precomputed cos/sin table instead.
import mlx from '@frost-beta/mlx';
import type { ModelConfig } from './config.ts';

const { core: mx } = mlx;
type MxArray = InstanceType<typeof mx.array>;

/** Inverse frequencies per rotated pair, with llama3 scaling applied (as transformers computes them). */
export function ropeInverseFrequencies(c: ModelConfig): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(c.ropeTheta, (2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = inv[i] / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

export class Rope {
  private readonly inv: Float64Array;
  private readonly useFast: boolean;
  private readonly scale: number;

  constructor(private readonly c: ModelConfig) {
    this.inv = ropeInverseFrequencies(c);
    this.useFast = c.ropeScaling === undefined || c.ropeScaling.type === 'linear';
    this.scale = c.ropeScaling?.type === 'linear' ? 1 / c.ropeScaling.factor : 1;
  }

  /** Rotates x [..., T, headDim] as positions offset, offset+1, ... along axis -2. */
  apply(x: MxArray, offset: number): MxArray {
    if (this.useFast) return mx.fast.rope(x, this.c.headDim, false, this.c.ropeTheta, this.scale, offset);
    const T = x.shape[x.ndim - 2];
    const angles: number[][] = [];
    for (let t = 0; t < T; t++) angles.push(Array.from(this.inv, (f) => (offset + t) * f));
    return this.rotate(x, mx.array(angles, mx.float32));
  }

  /**
   * Rotates every position of x [..., T, headDim] by the same `delta` positions: moves keys that were
   * rotated for one position base to another (RoPE rotations compose: R(a)·R(b) = R(a+b)).
   */
  shift(x: MxArray, delta: number): MxArray {
    if (delta === 0) return x;
    const shape = x.shape;
    const D = this.c.headDim;
    if (this.useFast) {
      // One position per row: fast.rope then rotates each row by exactly `delta`.
      const rows = mx.reshape(x, [-1, 1, D]);
      return mx.reshape(mx.fast.rope(rows, D, false, this.c.ropeTheta, this.scale, delta), shape);
    }
    return this.rotate(x, mx.array([Array.from(this.inv, (f) => delta * f)], mx.float32));
  }

  /** Half-split rotation (Hugging Face's rotate_half convention) with angles [T or 1, headDim/2]. */
  private rotate(x: MxArray, angles: MxArray): MxArray {
    const half = this.c.headDim / 2;
    const cos = mx.cos(angles);
    const sin = mx.sin(angles);
    const x1 = x.index('...', mx.Slice(0, half));
    const x2 = x.index('...', mx.Slice(half, null));
    return mx.concatenate(
      [mx.subtract(mx.multiply(x1, cos), mx.multiply(x2, sin)), mx.add(mx.multiply(x2, cos), mx.multiply(x1, sin))],
      -1,
    );
  }
}
