// Rotary position embeddings (Hugging Face's half-split "rotate_half" convention).
//
// The forward pass rotates q and k inside its compiled projection block, from cos/sin tables that
// are inputs (so one compiled trace serves every position): `tables(offset, T)` gives the angles of
// positions offset … offset+T-1, computed in float64 and rounded once. `shift` moves keys that were
// rotated for one position base to another, for the KV caches (RoPE rotations compose).
import type { ModelConfig } from './config.ts';
import { mx, type MxArray } from '../mlx.ts';

/** Inverse frequencies per rotated pair, with llama3 / linear scaling applied (as transformers computes them). */
export function ropeInverseFrequencies(c: ModelConfig): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s?.type === 'linear') for (let i = 0; i < half; i++) inv[i] /= s.factor;
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

/** cos and sin of the rotation angles, each [T, 1, headDim/2] (broadcasting over heads). */
export interface RopeTables {
  cos: MxArray;
  sin: MxArray;
}

/** Rotates x [..., headDim] by the angles whose cos/sin broadcast against [..., headDim/2]. */
export function rotateHalf(x: MxArray, cos: MxArray, sin: MxArray): MxArray {
  const half = x.shape[x.ndim - 1] / 2;
  const x1 = x.index('...', mx.Slice(0, half));
  const x2 = x.index('...', mx.Slice(half, null));
  return mx.concatenate([mx.subtract(mx.multiply(x1, cos), mx.multiply(x2, sin)), mx.add(mx.multiply(x2, cos), mx.multiply(x1, sin))], -1);
}

export class Rope {
  private readonly inv: Float64Array;

  constructor(c: ModelConfig) {
    this.inv = ropeInverseFrequencies(c);
  }

  /** Tables for positions offset, offset+1, …, offset+count-1. */
  tables(offset: number, count: number): RopeTables {
    const cos: number[][][] = [];
    const sin: number[][][] = [];
    for (let t = 0; t < count; t++) {
      const angles = Array.from(this.inv, (f) => (offset + t) * f);
      cos.push([angles.map(Math.cos)]);
      sin.push([angles.map(Math.sin)]);
    }
    return { cos: mx.array(cos, mx.float32), sin: mx.array(sin, mx.float32) };
  }

  /**
   * Rotates every position of x [..., T, headDim] by the same `delta` positions: moves keys that
   * were rotated for one position base to another (R(a)·R(b) = R(a+b)).
   */
  shift(x: MxArray, delta: number): MxArray {
    if (delta === 0) return x;
    const { cos, sin } = this.tables(delta, 1);
    return rotateHalf(x, mx.reshape(cos, [-1]), mx.reshape(sin, [-1]));
  }
}
