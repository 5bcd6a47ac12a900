// Gemma 3 text models: Gemma 2's layout (gemma2.ts) with an RMSNorm over each head of q and of k
// (as Qwen3's, in Gemma's x·(1 + w) form), no soft-capping by default, and five local
// (sliding-window) layers to each global one. Local layers rotate with rope_local_base_freq,
// global ones with rope_theta and the optional (linear) rope_scaling. Reads model_type
// "gemma3_text" configs, and "gemma3" ones (the multimodal checkpoints) through their text_config,
// whose unset fields take Gemma3TextConfig's defaults; the vision tower's tensors are skipped.
import { UnsupportedModelError } from '../unsupported-model-error.ts';
import type { Architecture } from './architecture.ts';
import { GEMMA_GGUF_LAYER_NAMES, gemmaConfigFromGguf, gemmaConfigFromHf } from './gemma2.ts';

/** transformers' Gemma3TextConfig defaults (hub configs of the multimodal models omit many fields). */
const TEXT_DEFAULTS: Record<string, unknown> = {
  vocab_size: 262208,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-6,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  sliding_window_pattern: 6,
};

function textConfig(raw: Record<string, unknown>): Record<string, unknown> {
  if (raw.model_type !== 'gemma3') return { ...TEXT_DEFAULTS, ...raw };
  // Without a text_config the fields are read where they are.
  const text = typeof raw.text_config === 'object' && raw.text_config !== null ? (raw.text_config as Record<string, unknown>) : raw;
  return { ...TEXT_DEFAULTS, torch_dtype: raw.torch_dtype ?? raw.dtype, ...text };
}

/** The global layers' rope_theta and scaling, and the local layers' base, from either config format. */
function ropeFields(r: Record<string, unknown>): { global: Record<string, unknown>; localTheta: number } {
  const params = r.rope_parameters as Record<string, Record<string, unknown> | undefined> | undefined;
  if (params && (params.full_attention || params.sliding_attention)) {
    // transformers 5: one set of parameters per layer type.
    const full = params.full_attention ?? {};
    const sliding = params.sliding_attention ?? {};
    if ((sliding.rope_type ?? 'default') !== 'default') {
      throw new UnsupportedModelError(`gemma3 local layers with rope_type "${String(sliding.rope_type)}" are not supported`);
    }
    return {
      global: { rope_theta: full.rope_theta ?? 1e6, rope_scaling: full, rope_parameters: undefined },
      localTheta: Number(sliding.rope_theta ?? 1e4),
    };
  }
  return {
    global: { rope_theta: r.rope_theta ?? 1e6, rope_scaling: r.rope_scaling ?? null, rope_parameters: undefined },
    localTheta: Number(r.rope_local_base_freq ?? 1e4),
  };
}

/** Multimodal checkpoints nest the text model (language_model.model.*, or model.language_model.*). */
const TEXT_PREFIXES: [string, string][] = [
  ['language_model.model.', 'model.'],
  ['model.language_model.', 'model.'],
  ['language_model.lm_head.', 'lm_head.'],
];

export const gemma3: Architecture = {
  name: 'gemma3',
  hfModelTypes: ['gemma3_text', 'gemma3'],
  ggufArchitectures: ['gemma3'],
  hfClassName: 'Gemma3ForCausalLM',
  // llama.cpp runs Gemma with NeoX-style RoPE (rotating halves, as Hugging Face does): rows stay put.
  ggufPermutesQk: false,
  ggufLayerNames: GEMMA_GGUF_LAYER_NAMES,
  hfTensorName: (name) => {
    for (const [from, to] of TEXT_PREFIXES) if (name.startsWith(from)) return to + name.slice(from.length);
    return /^(model\.)?(vision_tower|multi_modal_projector)\./.test(name) ? undefined : name;
  },
  configFromHf: (raw) => {
    const text = textConfig(raw);
    const rope = ropeFields(text);
    const pattern = Number(text.sliding_window_pattern ?? 6);
    return {
      ...gemmaConfigFromHf({ ...text, ...rope.global }, 'gemma3', pattern),
      qkNorm: true,
      localRopeTheta: rope.localTheta,
    };
  },
  configFromGguf: (meta, vocabSize, hasOutputWeight) => {
    const base = gemmaConfigFromGguf(meta, 'gemma3', vocabSize, hasOutputWeight, { pattern: 6, layers27b: 62, softcaps: {} });
    const swaBase = meta['gemma3.rope.freq_base_swa'];
    return { ...base, qkNorm: true, localRopeTheta: typeof swaBase === 'number' ? swaBase : 10000 };
  },
};
