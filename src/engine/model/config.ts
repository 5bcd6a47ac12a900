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
    }
  | {
      /**
       * Each rotated pair's inverse frequency divided by its factor: Llama 3 scaling as llama.cpp's
       * converter stores it in GGUF files (the rope_freqs tensor, no scaling keys).
       */
      type: 'freqFactors';
      factors: number[];
    }
  | {
      /**
       * Phi-3's LongRoPE (transformers' "longrope"): each rotated pair's inverse frequency divided by
       * its short factor, or by its long factor for a request that may grow past
       * originalMaxPositionEmbeddings (decided per request: see usesLongRope); cos and
       * sin multiplied by attentionFactor.
       */
      type: 'longrope';
      shortFactor: number[];
      longFactor: number[];
      attentionFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  /** The name of the architecture module that read it (architectures/); SmolLM2 and Mistral GGUFs are 'llama'. */
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
  /** Leading dimensions of each head that RoPE rotates, the rest passing through (Phi-4-mini); absent: all headDim. */
  rotaryDim?: number;
  /** The longest sequence (prompt + output) served; for sliding-window models capped at the window. */
  contextLength: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2). */
  attentionBias: boolean;
  /** Each head of q and of k goes through its own RMSNorm (weights of headDim) before RoPE (Qwen3, Gemma 3). */
  qkNorm?: boolean;
  // Gemma 2/3. Absent fields mean Llama's behaviour.
  /**
   * Added to every RMSNorm weight at load: Gemma's checkpoints store w of x·(1 + w) (1), llama.cpp's
   * converter adds the 1 to its GGUF files already (0 or absent).
   */
  normWeightOffset?: number;
  /** Multiplier of the input embeddings (Gemma: sqrt(hidden_size), rounded to the checkpoint's dtype). */
  embedScale?: number;
  /** The MLP's gate activation: silu (SwiGLU, the default) or gelu in its tanh approximation (GeGLU). */
  hiddenAct?: 'silu' | 'gelu_tanh';
  /**
   * The attention and MLP outputs go through their own RMSNorm before each residual add (Gemma's
   * post_attention_layernorm and post_feedforward_layernorm; its pre_feedforward_layernorm is then
   * the MLP's input norm).
   */
  postNorms?: boolean;
  /** Multiplier of q·k; default 1/sqrt(headDim) (Gemma: query_pre_attn_scalar^-0.5). */
  attentionScale?: number;
  /** Attention scores become tanh(s / cap)·cap before the mask and softmax (Gemma 2). */
  attnLogitSoftcap?: number;
  /** Logits become tanh(l / cap)·cap (Gemma 2). */
  finalLogitSoftcap?: number;
  /** Tokens a layer listed in slidingLayers attends to: the last slidingWindow positions, its own included. */
  slidingWindow?: number;
  /** Per layer: whether it is a sliding-window (local) layer. */
  slidingLayers?: boolean[];
  /** RoPE base of the sliding-window layers, which rotate without ropeScaling (Gemma 3's rope_local_base_freq). */
  localRopeTheta?: number;
}

/** The multiplier of q·k. */
export function attentionScale(c: ModelConfig): number {
  return c.attentionScale ?? 1 / Math.sqrt(c.headDim);
}

/** Leading dimensions of each head RoPE rotates. */
export function rotaryDim(c: ModelConfig): number {
  return c.rotaryDim ?? c.headDim;
}

/**
 * Whether a request that may grow to `maxLength` tokens (prompt + max_tokens, or the context)
 * rotates with LongRoPE's long factors. transformers picks the factors by the current sequence
 * length at every forward call (longer than originalMaxPositionEmbeddings: long), so a sequence
 * that crosses that length during generation has its earlier keys rotated with the short factors
 * and later ones with the long. Our KV caches keep keys rotated, so a request uses one set
 * throughout, chosen at admission by the longest it may get (vLLM also decides per request):
 * within the original length the short factors, exactly as transformers; a prompt already past it
 * the long factors, as transformers' forward of the whole sequence; only a request that starts
 * within the original length and may grow past it differs (long factors from its first token).
 */
export function usesLongRope(c: ModelConfig, maxLength: number): boolean {
  return c.ropeScaling?.type === 'longrope' && maxLength > c.ropeScaling.originalMaxPositionEmbeddings;
}

/** Whether layer `layer` attends within a sliding window. */
export function isSlidingLayer(c: ModelConfig, layer: number): boolean {
  return c.slidingWindow !== undefined && c.slidingLayers?.[layer] === true;
}

export { UnsupportedModelError };

/** Reads a Hugging Face (or MLX community) config.json with the module of its `model_type`. */
export function configFromHf(raw: Record<string, unknown>): ModelConfig {
  return architectureForHf(raw).configFromHf(raw);
}

/** Reads the hyperparameters from a GGUF header (`<arch>.*` keys) with the module of its architecture. */
export function configFromGguf(
  meta: Record<string, unknown>,
  vocabSize: number,
  hasOutputWeight: boolean,
  tensor?: (name: string) => Float32Array | undefined,
): ModelConfig {
  return architectureForGguf(meta).configFromGguf(meta, vocabSize, hasOutputWeight, tensor);
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
  const rotary = rotaryDim(c);
  if (!Number.isInteger(rotary) || rotary <= 0 || rotary % 2 !== 0 || rotary > c.headDim) {
    throw new UnsupportedModelError(`model config: ${rotary} rotary dimensions must be even and at most head_dim ${c.headDim}`);
  }
  if (c.ropeScaling?.type === 'longrope') {
    for (const [name, f] of [
      ['short_factor', c.ropeScaling.shortFactor],
      ['long_factor', c.ropeScaling.longFactor],
    ] as const) {
      if (f.length !== rotary / 2) {
        throw new UnsupportedModelError(
          `model config: LongRoPE ${name} has ${f.length} values, expected ${rotary / 2} (rotary dimensions / 2)`,
        );
      }
    }
  }
  if (c.ropeScaling?.type === 'freqFactors' && c.ropeScaling.factors.length !== rotary / 2) {
    throw new UnsupportedModelError(
      `model config: rope_freqs has ${c.ropeScaling.factors.length} values, expected ${rotary / 2} (rotary dimensions / 2)`,
    );
  }
  if (c.slidingLayers && c.slidingLayers.length !== c.numLayers) {
    throw new UnsupportedModelError(`model config: ${c.slidingLayers.length} layer types for ${c.numLayers} layers`);
  }
  if (c.slidingLayers?.some((s) => s) && !(Number.isInteger(c.slidingWindow) && (c.slidingWindow as number) > 0)) {
    throw new UnsupportedModelError(`model config: sliding_window must be a positive integer, got ${String(c.slidingWindow)}`);
  }
}
