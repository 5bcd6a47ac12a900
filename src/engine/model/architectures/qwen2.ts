// Qwen2: the Llama layout plus a bias on the q, k and v projections, with tied embeddings unless
// config.json says otherwise.
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

export const qwen2: Architecture = {
  name: 'qwen2',
  hfModelTypes: ['qwen2'],
  ggufArchitectures: ['qwen2'],
  hfClassName: 'Qwen2ForCausalLM',
  // llama.cpp runs Qwen2 with NeoX-style RoPE (rotating halves, as Hugging Face does): rows stay put.
  ggufPermutesQk: false,
  configFromHf: (raw) => ({
    ...llamaLikeConfigFromHf(raw, 'qwen2'),
    tieWordEmbeddings: raw.tie_word_embeddings === undefined ? true : Boolean(raw.tie_word_embeddings),
    attentionBias: true,
  }),
  configFromGguf: (meta, vocabSize, hasOutputWeight) => ({
    ...llamaLikeConfigFromGguf(meta, 'qwen2', vocabSize, hasOutputWeight),
    attentionBias: true,
  }),
};
