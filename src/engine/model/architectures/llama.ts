// Llama and the models that share its layout under another name: Mistral (its sliding window is
// handled by capping the context), SmolLM2 (model_type "llama").
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

export const llama: Architecture = {
  name: 'llama',
  hfModelTypes: ['llama', 'mistral'],
  ggufArchitectures: ['llama'],
  hfClassName: 'LlamaForCausalLM',
  // llama.cpp rotates adjacent pairs for this architecture, so its converter reorders q/k rows.
  ggufPermutesQk: true,
  configFromHf: (raw) => llamaLikeConfigFromHf(raw, 'llama'),
  configFromGguf: (meta, vocabSize, hasOutputWeight) => llamaLikeConfigFromGguf(meta, 'llama', vocabSize, hasOutputWeight),
};
