// Rotary position embeddings (Hugging Face's half-split "rotate_half" convention).
//
// The forward pass rotates q and k inside its compiled projection block, from cos/sin tables that
// are inputs (so one compiled trace serves every position): `tables(offset, T)` gives the angles of
// positions offset … offset+T-1, computed in float64 and rounded once. `shift` moves keys that were
// rotated for one position base to another, for the KV caches (RoPE rotations compose). Models
// whose sliding-window layers rotate with their own base (Gemma 3) have a second set of
// frequencies; those layers take the `local` tables, and shifts go per layer. A partial rotary
// embedding (Phi-4-mini) rotates the first rotaryDim dimensions of each head only; LongRoPE scales
// the tables (not the shifts) by its attention factor.
import { isSlidingLayer, type ModelConfig, rotaryDim } from './config.ts';
import { mx, type MxArray } from '../mlx.ts';

/**
 * Inverse frequencies per rotated pair (rotaryDim / 2 of them), with llama3 / linear / LongRoPE /
 * per-pair factor (GGUF rope_freqs) scaling applied (as transformers and llama.cpp compute them);
 * `local`: those of the sliding-window layers (localRopeTheta, unscaled); `long`: with LongRoPE's
 * long factors (config.ts usesLongRope).
 */
export function ropeInverseFrequencies(c: ModelConfig, local = false, long = false): Float64Array {
  const dim = rotaryDim(c);
  const half = dim / 2;
  const inv = new Float64Array(half);
  const theta = local && c.localRopeTheta !== undefined ? c.localRopeTheta : c.ropeTheta;
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / dim);
  if (local && c.localRopeTheta !== undefined) return inv;
  const s = c.ropeScaling;
  if (s?.type === 'linear') for (let i = 0; i < half; i++) inv[i] /= s.factor;
  if (s?.type === 'longrope') for (let i = 0; i < half; i++) inv[i] /= (long ? s.longFactor : s.shortFactor)[i];
  if (s?.type === 'freqFactors') for (let i = 0; i < half; i++) inv[i] /= s.factors[i];
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

/** What cos and sin are multiplied by: LongRoPE's attention factor, else 1. */
export function ropeTableScale(c: ModelConfig): number {
  return c.ropeScaling?.type === 'longrope' ? c.ropeScaling.attentionFactor : 1;
}

/** cos and sin of the rotation angles, each [T, 1, rotaryDim/2] (broadcasting over heads). */
export interface RopeTables {
  cos: MxArray;
  sin: MxArray;
}

/**
 * Rotates x [..., headDim] by the angles whose cos/sin broadcast against [..., rotaryDim/2]: its first
 * rotaryDim dimensions (two halves of rotaryDim/2), the rest passing through.
 */
export function rotateHalf(x: MxArray, cos: MxArray, sin: MxArray): MxArray {
  const dim = x.shape[x.ndim - 1];
  const half = cos.shape[cos.ndim - 1];
  const x1 = x.index('...', mx.Slice(0, half));
  const x2 = x.index('...', mx.Slice(half, 2 * half));
  const rotated = [mx.subtract(mx.multiply(x1, cos), mx.multiply(x2, sin)), mx.add(mx.multiply(x2, cos), mx.multiply(x1, sin))];
  return mx.concatenate(2 * half === dim ? rotated : [...rotated, x.index('...', mx.Slice(2 * half, null))], -1);
}

export class Rope {
  private readonly inv: Float64Array;
  /** The sliding-window layers' frequencies, when they differ (Gemma 3). */
  private readonly localInv?: Float64Array;
  /** Per layer: rotates with localInv. */
  private readonly localLayers: boolean[];
  /** cos/sin multiplier of the forward tables (LongRoPE's attention factor); shifts are pure rotations. */
  private readonly scale: number;

  constructor(c: ModelConfig) {
    this.inv = ropeInverseFrequencies(c);
    this.scale = ropeTableScale(c);
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
    return this.rotations(offset, count, local, this.scale);
  }

  /** cos/sin of the angles times `scale`; 1 gives the pure rotations the shifts compose. */
  private rotations(offset: number, count: number, local: boolean, scale: number): RopeTables {
    const inv = local && this.localInv ? this.localInv : this.inv;
    const cos: number[][][] = [];
    const sin: number[][][] = [];
    for (let t = 0; t < count; t++) {
      const angles = Array.from(inv, (f) => (offset + t) * f);
      cos.push([angles.map((a) => Math.cos(a) * scale)]);
      sin.push([angles.map((a) => Math.sin(a) * scale)]);
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
    const perLayer = (local: boolean) => this.rotations(delta, 1, local, 1);
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
    const { cos, sin } = this.rotations(delta, 1, this.localLayers[layer] ?? false, 1);
    return rotateHalf(x, mx.reshape(cos, [-1]), mx.reshape(sin, [-1]));
  }
}
