// Gemma 2: the Llama layout with Gemma's changes, which Gemma 3 (gemma3.ts) keeps: RMSNorm weights
// stored as w of x·(1 + w) (llama.cpp's converter adds the 1 to its GGUF files), embeddings scaled
// by sqrt(hidden_size), a GeGLU MLP (gelu, tanh approximation), norms of the attention and MLP
// outputs before each residual add (pre_feedforward_layernorm is the MLP's input norm), attention
// scaled by query_pre_attn_scalar^-0.5, tied embeddings, and sliding-window attention on some
// layers (even ones here: local, attending to the last sliding_window positions). Gemma 2 also
// soft-caps attention scores and logits, tanh(x / cap)·cap.
import type { ModelConfig } from '../config.ts';
import { UnsupportedModelError } from '../unsupported-model-error.ts';
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

/** GGUF layer tensors whose meaning differs from Llama's (llama.cpp's gemma2/gemma3 names). */
export const GEMMA_GGUF_LAYER_NAMES: Readonly<Record<string, string>> = {
  ffn_norm: 'pre_feedforward_layernorm',
  post_attention_norm: 'post_attention_layernorm',
  post_ffw_norm: 'post_feedforward_layernorm',
};

/** x rounded to a checkpoint dtype (transformers casts Gemma's embedding scale to the weights' dtype). */
export function roundToDtype(x: number, dtype: unknown): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer);
  if (dtype === 'bfloat16') bits[0] = (bits[0] + 0x7fff + ((bits[0] >>> 16) & 1)) & 0xffff0000;
  else if (dtype === 'float16') {
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(x))) - 10);
    return Math.round(x / ulp) * ulp;
  }
  return f[0];
}

function optionalNumber(raw: Record<string, unknown>, key: string): number | undefined {
  const v = raw[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Per layer: local (sliding-window) or not, from layer_types or else every `pattern`-th layer global. */
export function gemmaSlidingLayers(raw: Record<string, unknown>, numLayers: number, pattern: number): boolean[] {
  if (Array.isArray(raw.layer_types)) {
    return raw.layer_types.map((t) => {
      if (t !== 'sliding_attention' && t !== 'full_attention')
        throw new UnsupportedModelError(`layer type "${String(t)}" is not supported`);
      return t === 'sliding_attention';
    });
  }
  return Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
}

/**
 * A Gemma config.json (or Gemma 3's text_config with its defaults filled in) read into a
 * ModelConfig: `raw` must already hold the rope_theta / rope_scaling of the global layers.
 */
export function gemmaConfigFromHf(raw: Record<string, unknown>, name: string, slidingPattern: number): ModelConfig {
  const act = raw.hidden_activation ?? raw.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_new') {
    throw new UnsupportedModelError(`${name} with hidden_activation "${String(act)}" is not supported (only gelu_pytorch_tanh)`);
  }
  if (raw.use_bidirectional_attention === true) throw new UnsupportedModelError(`${name} with bidirectional attention is not supported`);
  // The shared reader caps the context at a sliding window; Gemma's window is run, not capped.
  const base = llamaLikeConfigFromHf({ ...raw, sliding_window: null }, name);
  const window = optionalNumber(raw, 'sliding_window');
  const layers = gemmaSlidingLayers(raw, base.numLayers, slidingPattern);
  const softcap = (key: string) => {
    const v = optionalNumber(raw, key);
    return v !== undefined && v > 0 ? v : undefined;
  };
  return {
    ...base,
    contextLength: optionalNumber(raw, 'max_position_embeddings') ?? 8192,
    tieWordEmbeddings: raw.tie_word_embeddings !== false,
    normWeightOffset: 1,
    embedScale: roundToDtype(Math.sqrt(base.hiddenSize), raw.torch_dtype ?? raw.dtype),
    hiddenAct: 'gelu_tanh',
    postNorms: true,
    attentionScale: (optionalNumber(raw, 'query_pre_attn_scalar') ?? base.headDim) ** -0.5,
    attnLogitSoftcap: softcap('attn_logit_softcapping'),
    finalLogitSoftcap: softcap('final_logit_softcapping'),
    ...(window !== undefined && window > 0 && layers.some((s) => s) ? { slidingWindow: window, slidingLayers: layers } : {}),
  };
}

/**
 * A Gemma GGUF header read as llama.cpp reads it: the norms' 1 is in the weights already, the
 * window pattern is fixed (every `pattern`-th layer global), and the attention scale follows the
 * model size (the 27B models scale by hidden/heads, the others by head_dim). llama.cpp's generic
 * `attention.scale` and `attention.sliding_window_pattern` keys (a flag per layer, or a period),
 * which its Gemma converters do not write, override those when present.
 */
export function gemmaConfigFromGguf(
  meta: Record<string, unknown>,
  name: string,
  vocabSize: number,
  hasOutputWeight: boolean,
  opts: { pattern: number; layers27b: number; softcaps: { attn?: number; final?: number } },
): ModelConfig {
  const base = llamaLikeConfigFromGguf(meta, name, vocabSize, hasOutputWeight);
  const arch = String(meta['general.architecture']);
  const num = (key: string, fallback?: number) => {
    const v = meta[`${arch}.${key}`];
    return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : fallback;
  };
  const window = num('attention.sliding_window', 4096) as number;
  const scalar = base.numLayers === opts.layers27b ? base.hiddenSize / base.numHeads : base.headDim;
  const patternKey = meta[`${arch}.attention.sliding_window_pattern`];
  const slidingLayers = Array.isArray(patternKey)
    ? patternKey.map((v) => Boolean(v))
    : Array.from({ length: base.numLayers }, (_, i) => (i + 1) % (num('attention.sliding_window_pattern') ?? opts.pattern) !== 0);
  const positive = (v: number | undefined) => (v !== undefined && v > 0 ? v : undefined);
  return {
    ...base,
    tieWordEmbeddings: !hasOutputWeight,
    embedScale: Math.fround(Math.sqrt(base.hiddenSize)),
    hiddenAct: 'gelu_tanh',
    postNorms: true,
    attentionScale: num('attention.scale') ?? scalar ** -0.5,
    attnLogitSoftcap: positive(num('attn_logit_softcapping', opts.softcaps.attn)),
    finalLogitSoftcap: positive(num('final_logit_softcapping', opts.softcaps.final)),
    slidingWindow: window,
    slidingLayers,
  };
}

export const gemma2: Architecture = {
  name: 'gemma2',
  hfModelTypes: ['gemma2'],
  ggufArchitectures: ['gemma2'],
  hfClassName: 'Gemma2ForCausalLM',
  // llama.cpp runs Gemma with NeoX-style RoPE (rotating halves, as Hugging Face does): rows stay put.
  ggufPermutesQk: false,
  ggufLayerNames: GEMMA_GGUF_LAYER_NAMES,
  // Gemma2Config's defaults for the soft caps (hub configs state them).
  configFromHf: (raw) =>
    gemmaConfigFromHf({ attn_logit_softcapping: 50, final_logit_softcapping: 30, query_pre_attn_scalar: 256, ...raw }, 'gemma2', 2),
  configFromGguf: (meta, vocabSize, hasOutputWeight) =>
    gemmaConfigFromGguf(meta, 'gemma2', vocabSize, hasOutputWeight, { pattern: 2, layers27b: 46, softcaps: { attn: 50, final: 30 } }),
};
