// Hyperparameters of a decoder-only transformer, normalized from a Hugging Face config.json or a
// GGUF header by the checkpoint's architecture module (architectures/). The forward pass reads only
// this; where a checkpoint came from stops mattering here.
import { architectureForGguf, architectureForHf } from './architectures/registry.ts';
import { UnsupportedModelError } from './unsupported-model-error.ts';

export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  /** The name of the architecture module that read it (architectures/); Mistral and SmolLM2 are 'llama'. */
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  /** The longest sequence (prompt + output) served; for sliding-window models capped at the window. */
  contextLength: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2). */
  attentionBias: boolean;
}

export { UnsupportedModelError };

/** Reads a Hugging Face (or MLX community) config.json with the module of its `model_type`. */
export function configFromHf(raw: Record<string, unknown>): ModelConfig {
  return architectureForHf(raw).configFromHf(raw);
}

/** Reads the hyperparameters from a GGUF header (`<arch>.*` keys) with the module of its architecture. */
export function configFromGguf(meta: Record<string, unknown>, vocabSize: number, hasOutputWeight: boolean): ModelConfig {
  return architectureForGguf(meta).configFromGguf(meta, vocabSize, hasOutputWeight);
}

/** Bytes of K and V one token occupies across all layers (f32 on CPU). */
export function kvBytesPerToken(c: ModelConfig, bytesPerElement = 4): number {
  return c.numLayers * 2 * c.numKvHeads * c.headDim * bytesPerElement;
}

/** Structural checks that would otherwise surface as MLX shape errors (which abort the process). */
export function validateConfig(c: ModelConfig): void {
  const positive: (keyof ModelConfig)[] = [
    'vocabSize',
    'hiddenSize',
    'numLayers',
    'numHeads',
    'numKvHeads',
    'headDim',
    'intermediateSize',
    'contextLength',
  ];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new UnsupportedModelError(`model config: ${k} must be a positive integer, got ${String(v)}`);
    }
  }
  if (c.numHeads % c.numKvHeads !== 0) {
    throw new UnsupportedModelError(`model config: ${c.numHeads} attention heads are not a multiple of ${c.numKvHeads} KV heads`);
  }
  if (c.headDim % 2 !== 0) throw new UnsupportedModelError(`model config: head_dim ${c.headDim} must be even for RoPE`);
}
