// Mistral: Llama's layout under its own model_type. Older configs set sliding_window; the shared
// reader caps the served context at the window, which keeps attention exact without a windowed
// kernel. Mistral GGUF files say general.architecture "llama" and are read by llama.ts.
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

export const mistral: Architecture = {
  name: 'mistral',
  hfModelTypes: ['mistral'],
  ggufArchitectures: [],
  hfClassName: 'MistralForCausalLM',
  // As for llama: llama.cpp's converter reorders q/k rows of this family.
  ggufPermutesQk: true,
  configFromHf: (raw) => llamaLikeConfigFromHf(raw, 'mistral'),
  configFromGguf: (meta, vocabSize, hasOutputWeight) => llamaLikeConfigFromGguf(meta, 'mistral', vocabSize, hasOutputWeight),
};
