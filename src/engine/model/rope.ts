// Rotary position embeddings (Hugging Face's half-split "rotate_half" convention).
//
// The forward pass rotates q and k inside its compiled projection block, from cos/sin tables that
// are inputs (so one compiled trace serves every position): `tables(offset, T)` gives the angles of
// positions offset … offset+T-1, computed in float64 and rounded once. `shift` moves keys that were
// rotated for one position base to another, for the KV caches (RoPE rotations compose). Models
// whose sliding-window layers rotate with their own base (Gemma 3) have a second set of
// frequencies; those layers take the `local` tables, and shifts go per layer.
import { isSlidingLayer, type ModelConfig } from './config.ts';
import { mx, type MxArray } from '../mlx.ts';

/**
 * Inverse frequencies per rotated pair, with llama3 / linear scaling applied (as transformers
 * computes them); `local`: those of the sliding-window layers (localRopeTheta, unscaled).
 */
export function ropeInverseFrequencies(c: ModelConfig, local = false): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  const theta = local && c.localRopeTheta !== undefined ? c.localRopeTheta : c.ropeTheta;
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / c.headDim);
  if (local && c.localRopeTheta !== undefined) return inv;
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
  /** The sliding-window layers' frequencies, when they differ (Gemma 3). */
  private readonly localInv?: Float64Array;
  /** Per layer: rotates with localInv. */
  private readonly localLayers: boolean[];

  constructor(c: ModelConfig) {
    this.inv = ropeInverseFrequencies(c);
    this.localLayers = Array.from({ length: c.numLayers }, (_, l) => c.localRopeTheta !== undefined && isSlidingLayer(c, l));
    if (this.localLayers.some((l) => l)) this.localInv = ropeInverseFrequencies(c, true);
  }

  /** Whether some layers rotate with frequencies of their own (then tables come in two sets). */
  get hasLocal(): boolean {
    return this.localInv !== undefined;
  }

  /** Whether `layer` takes the local tables. */
  isLocal(layer: number): boolean {
    return this.localLayers[layer];
  }

  /** Tables for positions offset, offset+1, …, offset+count-1 (of the local layers with `local`). */
  tables(offset: number, count: number, local = false): RopeTables {
    const inv = local && this.localInv ? this.localInv : this.inv;
    const cos: number[][][] = [];
    const sin: number[][][] = [];
    for (let t = 0; t < count; t++) {
      const angles = Array.from(inv, (f) => (offset + t) * f);
      cos.push([angles.map(Math.cos)]);
      sin.push([angles.map(Math.sin)]);
    }
    return { cos: mx.array(cos, mx.float32), sin: mx.array(sin, mx.float32) };
  }

  /**
   * Rotates every position of x [layers, ..., T, headDim] (every layer's keys) by the same `delta`
   * positions: moves keys that were rotated for one position base to another (R(a)·R(b) = R(a+b)).
   */
  shift(x: MxArray, delta: number): MxArray {
    if (delta === 0) return x;
    if (!this.localInv) return this.shiftLayer(x, delta, 0);
    // Each layer by its own frequencies: tables [layers, 1, …, 1, headDim/2].
    const perLayer = (local: boolean) => this.tables(delta, 1, local);
    const global = perLayer(false);
    const local = perLayer(true);
    const pick = (k: 'cos' | 'sin') =>
      mx.reshape(
        mx.concatenate(
          this.localLayers.map((l) => mx.reshape((l ? local : global)[k], [1, -1])),
          0,
        ),
        [this.localLayers.length, ...new Array(x.ndim - 2).fill(1), -1],
      );
    return rotateHalf(x, pick('cos'), pick('sin'));
  }

  /** Rotates every position of one layer's keys x [..., T, headDim] by `delta` positions. */
  shiftLayer(x: MxArray, delta: number, layer: number): MxArray {
    if (delta === 0) return x;
    const { cos, sin } = this.tables(delta, 1, this.localLayers[layer] ?? false);
    return rotateHalf(x, mx.reshape(cos, [-1]), mx.reshape(sin, [-1]));
  }
}
