// Reading the hyperparameters every Llama-style decoder shares (RMSNorm, rotary attention with
// grouped KV heads, SwiGLU MLP), from a config.json or a GGUF header. Each family's module starts
// from these and states only where it differs; the defaults here are Llama's.
import type { ModelConfig, RopeScaling } from '../config.ts';
import { UnsupportedModelError } from '../unsupported-model-error.ts';

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

/** A config.json read as Llama reads it, labelled with the architecture `name`. */
export function llamaLikeConfigFromHf(raw: Record<string, unknown>, name: string): ModelConfig {
  const hiddenSize = num(raw, 'hidden_size');
  const numHeads = num(raw, 'num_attention_heads');
  let contextLength = num(raw, 'max_position_embeddings', 4096);
  const slidingWindow = raw.sliding_window;
  // Serving no more than the window keeps sliding-window models exact without a windowed kernel.
  if (typeof slidingWindow === 'number' && slidingWindow > 0 && raw.use_sliding_window !== false) {
    contextLength = Math.min(contextLength, slidingWindow);
  }
  // transformers 5 writes rope_theta and the scaling together as rope_parameters.
  const ropeParameters = (raw.rope_parameters ?? undefined) as Record<string, unknown> | undefined;
  return {
    architecture: name,
    vocabSize: num(raw, 'vocab_size'),
    hiddenSize,
    numLayers: num(raw, 'num_hidden_layers'),
    numHeads,
    numKvHeads: num(raw, 'num_key_value_heads', numHeads),
    headDim: num(raw, 'head_dim', hiddenSize / numHeads),
    intermediateSize: num(raw, 'intermediate_size'),
    rmsNormEps: num(raw, 'rms_norm_eps', 1e-6),
    ropeTheta: num(raw, 'rope_theta', ropeParameters ? num(ropeParameters, 'rope_theta', 10000) : 10000),
    ropeScaling: parseRopeScaling(raw.rope_scaling ?? ropeParameters),
    contextLength,
    tieWordEmbeddings: Boolean(raw.tie_word_embeddings),
    attentionBias: raw.attention_bias === true,
  };
}

/** A GGUF header's `<general.architecture>.*` keys read as Llama reads them, labelled with `name`. */
export function llamaLikeConfigFromGguf(
  meta: Record<string, unknown>,
  name: string,
  vocabSize: number,
  hasOutputWeight: boolean,
): ModelConfig {
  const arch = String(meta['general.architecture'] ?? '');
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
    architecture: name,
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
    attentionBias: false,
  };
}
