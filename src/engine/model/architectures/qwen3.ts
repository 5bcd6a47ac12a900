// Qwen3: the Llama layout with an RMSNorm over each head of q and of k (weights of head_dim,
// applied before RoPE), no q/k/v bias, an explicit head_dim, and tied embeddings only when
// config.json says so.
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

export const qwen3: Architecture = {
  name: 'qwen3',
  hfModelTypes: ['qwen3'],
  ggufArchitectures: ['qwen3'],
  hfClassName: 'Qwen3ForCausalLM',
  // llama.cpp runs Qwen3 with NeoX-style RoPE (rotating halves, as Hugging Face does): rows stay put.
  ggufPermutesQk: false,
  configFromHf: (raw) => ({ ...llamaLikeConfigFromHf(raw, 'qwen3'), qkNorm: true }),
  configFromGguf: (meta, vocabSize, hasOutputWeight) => ({
    ...llamaLikeConfigFromGguf(meta, 'qwen3', vocabSize, hasOutputWeight),
    qkNorm: true,
  }),
};
