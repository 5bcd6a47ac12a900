// Phi-3: the Llama layout with q|k|v and gate|up stored fused (self_attn.qkv_proj, mlp.gate_up_proj;
// in GGUF files attn_qkv and a double-height ffn_up). The loaders take fused projections as they
// come. Only full rotary embedding without LongRoPE is run: a partial one (Phi-4-mini) or the
// 128k variants' LongRoPE are refused. A sliding window (Phi-3-mini-4k: 2047) caps the context.
import { UnsupportedModelError } from '../unsupported-model-error.ts';
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

function checkFullRotary(raw: Record<string, unknown>) {
  const parameters = (raw.rope_parameters ?? {}) as Record<string, unknown>;
  const factor = raw.partial_rotary_factor ?? parameters.partial_rotary_factor ?? 1;
  if (factor !== 1) throw new UnsupportedModelError(`phi3 with partial_rotary_factor ${String(factor)} is not supported (only 1)`);
}

export const phi3: Architecture = {
  name: 'phi3',
  hfModelTypes: ['phi3'],
  ggufArchitectures: ['phi3'],
  hfClassName: 'Phi3ForCausalLM',
  // llama.cpp runs Phi-3 with NeoX-style RoPE (rotating halves, as Hugging Face does): rows stay put.
  ggufPermutesQk: false,
  ggufLayerNames: { attn_qkv: 'self_attn.qkv_proj', ffn_up: 'mlp.gate_up_proj' },
  configFromHf: (raw) => {
    checkFullRotary(raw);
    return llamaLikeConfigFromHf(raw, 'phi3');
  },
  configFromGguf: (meta, vocabSize, hasOutputWeight) => {
    const c = llamaLikeConfigFromGguf(meta, 'phi3', vocabSize, hasOutputWeight);
    const rotary = meta['phi3.rope.dimension_count'];
    if (rotary !== undefined && Number(rotary) !== c.headDim) {
      throw new UnsupportedModelError(`phi3 with ${String(rotary)} of ${c.headDim} head dimensions rotated is not supported (only all)`);
    }
    // The converter writes the attention factor only for LongRoPE checkpoints (with rope_factors_* tensors).
    if (meta['phi3.rope.scaling.attn_factor'] !== undefined) {
      throw new UnsupportedModelError('phi3 with LongRoPE scaling (the 128k-context variants) is not supported');
    }
    // 0 means none (Phi-4); serving no more than the window keeps attention exact.
    const window = Number(meta['phi3.attention.sliding_window'] ?? 0);
    return window > 0 ? { ...c, contextLength: Math.min(c.contextLength, window) } : c;
  },
};
