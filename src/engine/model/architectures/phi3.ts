// Phi-3: the Llama layout with q|k|v and gate|up stored fused (self_attn.qkv_proj, mlp.gate_up_proj;
// in GGUF files attn_qkv and a double-height ffn_up). The loaders take fused projections as they
// come. A sliding window (Phi-3-mini-4k: 2047) caps the context.
//
// Phi-4-mini rotates only the first partial_rotary_factor of each head's dimensions, and it and the
// 128k variants use LongRoPE: per-pair frequency factors, short ones for sequences within
// original_max_position_embeddings and long ones beyond, with cos/sin scaled by an attention factor.
// transformers picks the factors by the current sequence length; our caches keep keys rotated, so
// each request uses one set, chosen at admission by the longest it may grow (usesLongRope in
// config.ts). The MLX path serves LongRoPE models within original_max_position_embeddings only
// (transformer.ts caps its context there). llama.cpp's converter writes LongRoPE into GGUF files as
// rope.scaling.attn_factor and rope.scaling.original_context_length, and the factors as the F32
// tensors rope_factors_short/long.weight (llama.cpp itself picks one set by its context size).
import type { ModelConfig, RopeScaling } from '../config.ts';
import { UnsupportedModelError } from '../unsupported-model-error.ts';
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

function numbers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0)) {
    throw new UnsupportedModelError(`phi3 LongRoPE ${what} must be a list of positive numbers`);
  }
  return value as number[];
}

/** transformers' _compute_longrope_parameters (5.x). */
function longRope(raw: Record<string, unknown>, scaling: Record<string, unknown>): RopeScaling {
  // Phi3Config's own original_max_position_embeddings (default 4096) wins over the scaling's, as in transformers.
  const original = Number(raw.original_max_position_embeddings ?? 4096);
  const maxPositions = Number(raw.max_position_embeddings ?? 4096);
  if (!(Number.isInteger(original) && original > 1)) {
    throw new UnsupportedModelError(`phi3 LongRoPE original_max_position_embeddings ${String(original)} must be an integer above 1`);
  }
  const factor = typeof scaling.factor === 'number' ? scaling.factor : maxPositions / original;
  const attentionFactor =
    typeof scaling.attention_factor === 'number'
      ? scaling.attention_factor
      : factor <= 1
        ? 1
        : Math.sqrt(1 + Math.log(factor) / Math.log(original));
  return {
    type: 'longrope',
    shortFactor: numbers(scaling.short_factor, 'short_factor'),
    longFactor: numbers(scaling.long_factor, 'long_factor'),
    attentionFactor,
    originalMaxPositionEmbeddings: original,
  };
}

/** LongRoPE from a GGUF file, as llama.cpp's converter writes it (the attention factor only then). */
function ggufLongRope(
  meta: Record<string, unknown>,
  tensor: ((name: string) => Float32Array | undefined) | undefined,
): { ropeScaling: RopeScaling } | undefined {
  const attentionFactor = meta['phi3.rope.scaling.attn_factor'];
  if (attentionFactor === undefined) return undefined;
  const short = tensor?.('rope_factors_short.weight');
  const long = tensor?.('rope_factors_long.weight');
  const original = Number(meta['phi3.rope.scaling.original_context_length']);
  if (!short || !long || !(Number.isInteger(original) && original > 1)) {
    throw new UnsupportedModelError(
      'phi3 GGUF file with LongRoPE scaling lacks rope_factors_short/long.weight or phi3.rope.scaling.original_context_length',
    );
  }
  return {
    ropeScaling: {
      type: 'longrope',
      shortFactor: numbers(Array.from(short), 'rope_factors_short'),
      longFactor: numbers(Array.from(long), 'rope_factors_long'),
      attentionFactor: Number(attentionFactor),
      originalMaxPositionEmbeddings: original,
    },
  };
}

function configFromHf(raw: Record<string, unknown>): ModelConfig {
  // transformers 5 writes rope_theta, the scaling and partial_rotary_factor together as rope_parameters.
  const parameters = (raw.rope_parameters ?? {}) as Record<string, unknown>;
  const scaling = (raw.rope_scaling ?? raw.rope_parameters ?? {}) as Record<string, unknown>;
  const type = String(scaling.rope_type ?? scaling.type ?? 'default');
  // "su" is the 128k models' older name of LongRoPE (transformers renames it).
  const isLongRope = type === 'longrope' || type === 'su';
  const base = isLongRope
    ? llamaLikeConfigFromHf(
        {
          ...raw,
          rope_scaling: null,
          rope_parameters: parameters.rope_theta === undefined ? undefined : { rope_theta: parameters.rope_theta },
        },
        'phi3',
      )
    : llamaLikeConfigFromHf(raw, 'phi3');
  const partial = Number(parameters.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1);
  if (!(partial > 0 && partial <= 1)) throw new UnsupportedModelError(`phi3 partial_rotary_factor ${String(partial)} must be in (0, 1]`);
  // int(head_dim * partial_rotary_factor), as transformers computes it.
  const rotary = Math.trunc(base.headDim * partial);
  const c: ModelConfig = rotary === base.headDim ? base : { ...base, rotaryDim: rotary };
  return isLongRope ? { ...c, ropeScaling: longRope(raw, scaling) } : c;
}

export const phi3: Architecture = {
  name: 'phi3',
  hfModelTypes: ['phi3'],
  ggufArchitectures: ['phi3'],
  hfClassName: 'Phi3ForCausalLM',
  // llama.cpp runs Phi-3 with NeoX-style RoPE (rotating halves, as Hugging Face does): rows stay put.
  ggufPermutesQk: false,
  ggufLayerNames: { attn_qkv: 'self_attn.qkv_proj', ffn_up: 'mlp.gate_up_proj' },
  configFromHf,
  configFromGguf: (meta, vocabSize, hasOutputWeight, tensor) => {
    const c = llamaLikeConfigFromGguf(meta, 'phi3', vocabSize, hasOutputWeight);
    // Phi-4-mini rotates part of each head: rope.dimension_count of head_dim.
    const rotary = Number(meta['phi3.rope.dimension_count'] ?? c.headDim);
    // 0 means none (Phi-4); serving no more than the window keeps attention exact.
    const window = Number(meta['phi3.attention.sliding_window'] ?? 0);
    return {
      ...c,
      ...(rotary !== c.headDim ? { rotaryDim: rotary } : {}),
      ...(window > 0 ? { contextLength: Math.min(c.contextLength, window) } : {}),
      ...ggufLongRope(meta, tensor),
    };
  },
};
