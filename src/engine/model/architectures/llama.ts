// Llama and the models that share its layout and its name: Llama 2/3, SmolLM2, TinyLlama, and the
// GGUF files of Mistral (which say "llama"; Mistral's config.json is read by mistral.ts). Llama 3.1+
// GGUF files carry their RoPE scaling as a rope_freqs tensor of per-pair divisors.
import type { Architecture } from './architecture.ts';
import { llamaLikeConfigFromGguf, llamaLikeConfigFromHf } from './llama-like.ts';

export const llama: Architecture = {
  name: 'llama',
  hfModelTypes: ['llama'],
  ggufArchitectures: ['llama'],
  hfClassName: 'LlamaForCausalLM',
  // llama.cpp rotates adjacent pairs for this architecture, so its converter reorders q/k rows.
  ggufPermutesQk: true,
  configFromHf: (raw) => llamaLikeConfigFromHf(raw, 'llama'),
  configFromGguf: (meta, vocabSize, hasOutputWeight, tensor) => {
    const c = llamaLikeConfigFromGguf(meta, 'llama', vocabSize, hasOutputWeight);
    // Llama 3.1+: llama.cpp's converter writes the llama3 scaling as per-pair frequency divisors.
    const factors = tensor?.('rope_freqs.weight');
    return factors ? { ...c, ropeScaling: { type: 'freqFactors', factors: [...factors] } } : c;
  },
};
