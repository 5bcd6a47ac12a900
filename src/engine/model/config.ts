// Hyperparameters of a decoder-only transformer, normalized from a Hugging Face config.json or a
// GGUF header. The forward pass reads only this; where a checkpoint came from stops mattering here.

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
  /** The family whose forward pass we run; Mistral and SmolLM2 are 'llama'. */
  architecture: 'llama' | 'qwen2';
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

export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
}

const HF_ARCHITECTURES: Record<string, ModelConfig['architecture']> = {
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'qwen2',
};

function num(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const value = raw[key];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (fallback !== undefined) return fallback;
  throw new UnsupportedModelError(`config.json is missing the number "${key}"`);
}

function parseRopeScaling(raw: unknown): RopeScaling | undefined {
  if (raw === null || raw === undefined) return undefined;
  const r = raw as Record<string, unknown>;
  const type = String(r.rope_type ?? r.type ?? '');
  if (type === 'default' || type === '') return undefined;
  if (type === 'linear') return { type: 'linear', factor: num(r, 'factor') };
  if (type === 'llama3') {
    return {
      type: 'llama3',
      factor: num(r, 'factor'),
      lowFreqFactor: num(r, 'low_freq_factor'),
      highFreqFactor: num(r, 'high_freq_factor'),
      originalMaxPositionEmbeddings: num(r, 'original_max_position_embeddings'),
    };
  }
  throw new UnsupportedModelError(`rope_scaling type "${type}" is not supported (supported: linear, llama3)`);
}

/** Reads a Hugging Face (or MLX community) config.json. */
export function configFromHf(raw: Record<string, unknown>): ModelConfig {
  const modelType = String(raw.model_type ?? '');
  const architecture = HF_ARCHITECTURES[modelType];
  if (!architecture) {
    const names = Array.isArray(raw.architectures) ? ` (${raw.architectures.join(', ')})` : '';
    throw new UnsupportedModelError(
      `unsupported architecture "${modelType}"${names}; supported: ${Object.keys(HF_ARCHITECTURES).join(', ')}`,
    );
  }
  const hiddenSize = num(raw, 'hidden_size');
  const numHeads = num(raw, 'num_attention_heads');
  let contextLength = num(raw, 'max_position_embeddings', 4096);
  const slidingWindow = raw.sliding_window;
  // Serving no more than the window keeps sliding-window models exact without a windowed kernel.
  if (typeof slidingWindow === 'number' && slidingWindow > 0 && raw.use_sliding_window !== false) {
    contextLength = Math.min(contextLength, slidingWindow);
  }
  return {
    architecture,
    vocabSize: num(raw, 'vocab_size'),
    hiddenSize,
    numLayers: num(raw, 'num_hidden_layers'),
    numHeads,
    numKvHeads: num(raw, 'num_key_value_heads', numHeads),
    headDim: num(raw, 'head_dim', hiddenSize / numHeads),
    intermediateSize: num(raw, 'intermediate_size'),
    rmsNormEps: num(raw, 'rms_norm_eps', 1e-6),
    ropeTheta: num(raw, 'rope_theta', 10000),
    ropeScaling: parseRopeScaling(raw.rope_scaling),
    contextLength,
    tieWordEmbeddings: raw.tie_word_embeddings === undefined ? architecture !== 'llama' : Boolean(raw.tie_word_embeddings),
    attentionBias: architecture === 'qwen2' || raw.attention_bias === true,
  };
}

const GGUF_ARCHITECTURES: Record<string, ModelConfig['architecture']> = { llama: 'llama', qwen2: 'qwen2' };

/** Reads the hyperparameters from a GGUF header (`<arch>.*` keys). */
export function configFromGguf(meta: Record<string, unknown>, vocabSize: number, hasOutputWeight: boolean): ModelConfig {
  const arch = String(meta['general.architecture'] ?? '');
  const architecture = GGUF_ARCHITECTURES[arch];
  if (!architecture) {
    throw new UnsupportedModelError(
      `unsupported GGUF architecture "${arch}"; supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')}`,
    );
  }
  const key = (k: string, fallback?: number): number => {
    const v = meta[`${arch}.${k}`];
    if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
    if (fallback !== undefined) return fallback;
    throw new UnsupportedModelError(`GGUF header is missing "${arch}.${k}"`);
  };
  const hiddenSize = key('embedding_length');
  const numHeads = key('attention.head_count');
  const scalingType = meta[`${arch}.rope.scaling.type`];
  let ropeScaling: RopeScaling | undefined;
  if (scalingType === 'linear') ropeScaling = { type: 'linear', factor: key('rope.scaling.factor') };
  else if (scalingType !== undefined && scalingType !== 'none') {
    throw new UnsupportedModelError(`GGUF rope scaling "${String(scalingType)}" is not supported`);
  }
  return {
    architecture,
    vocabSize: key('vocab_size', vocabSize),
    hiddenSize,
    numLayers: key('block_count'),
    numHeads,
    numKvHeads: key('attention.head_count_kv', numHeads),
    headDim: key('attention.key_length', hiddenSize / numHeads),
    intermediateSize: key('feed_forward_length'),
    rmsNormEps: key('attention.layer_norm_rms_epsilon', 1e-5),
    ropeTheta: key('rope.freq_base', 10000),
    ropeScaling,
    contextLength: key('context_length', 4096),
    tieWordEmbeddings: !hasOutputWeight,
    attentionBias: architecture === 'qwen2',
  };
}

/** Bytes of K and V one token occupies across all layers (f32 on CPU). */
export function kvBytesPerToken(c: ModelConfig, bytesPerElement = 4): number {
  return c.numLayers * 2 * c.numKvHeads * c.headDim * bytesPerElement;
}

/** Structural checks that would otherwise surface as MLX shape errors (which abort the process). */
export function validateConfig(c: ModelConfig): void {
  const positive: (keyof ModelConfig)[] = [
    'vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'contextLength',
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
