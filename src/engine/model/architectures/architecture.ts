// What one model family contributes: which checkpoints it claims, how it reads their
// hyperparameters into the ModelConfig the forward passes run on, and the few layout quirks the
// loaders must undo. One module per family (llama.ts, mistral.ts, phi3.ts, qwen2.ts, qwen3.ts, gemma2.ts,
// gemma3.ts), listed in registry.ts.
import type { ModelConfig } from '../config.ts';

export interface Architecture {
  /** What ModelConfig.architecture says for models read by this module. */
  readonly name: string;
  /** config.json `model_type` values this module reads. */
  readonly hfModelTypes: readonly string[];
  /**
   * GGUF `general.architecture` values this module reads (they prefix its metadata keys); empty
   * for a family whose GGUF files name another module (Mistral's say "llama").
   */
  readonly ggufArchitectures: readonly string[];
  /** The transformers class of this family, written into config.json when a model is exported. */
  readonly hfClassName: string;
  /**
   * Whether llama.cpp's converter permuted the q/k projection rows of this family's GGUF files
   * (it does so where its RoPE kernel rotates adjacent pairs instead of the two halves); the
   * loaders undo it so one RoPE convention serves every checkpoint.
   */
  readonly ggufPermutesQk: boolean;
  /**
   * GGUF layer tensor names that mean something else in this family than in Llama's (Phi-3's
   * `ffn_up` is gate|up fused), mapped to Hugging Face names.
   */
  readonly ggufLayerNames?: Readonly<Record<string, string>>;
  /**
   * Maps a safetensors tensor name to the Hugging Face name of the text model the loaders expect,
   * or undefined to skip the tensor (Gemma 3's multimodal checkpoints nest the text model beside a
   * vision tower). Absent: names are used as they are.
   */
  hfTensorName?(name: string): string | undefined;
  /** Reads a Hugging Face (or MLX community) config.json. */
  configFromHf(raw: Record<string, unknown>): ModelConfig;
  /**
   * Reads a GGUF header. `vocabSize` is the tokenizer's (headers often omit `<arch>.vocab_size`);
   * `hasOutputWeight`: the file has its own LM head rather than reusing the embeddings; `tensor`
   * reads a small F32 tensor that holds hyperparameters (Phi-3's LongRoPE factors), undefined if absent.
   */
  configFromGguf(
    meta: Record<string, unknown>,
    vocabSize: number,
    hasOutputWeight: boolean,
    tensor?: (name: string) => Float32Array | undefined,
  ): ModelConfig;
}
