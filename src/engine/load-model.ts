// Turns a resolved model (a GGUF file or a Hugging Face / MLX directory) into what the engine runs:
// the transformer and its tokenizer.
import { join } from 'node:path';
import { readGguf } from './gguf.ts';
import { loadGgufTransformer, loadHfTransformer } from './model/load-weights.ts';
import type { Transformer } from './model/transformer.ts';
import { Tokenizer } from './tokenizer/tokenizer.ts';
import { UnsupportedModelError } from './model/config.ts';

export interface ModelLocation {
  /** Name clients use for the model. */
  id: string;
  format: 'gguf' | 'hf';
  /** The GGUF file, or the directory. */
  path: string;
}

export interface LoadedModel {
  id: string;
  transformer: Transformer;
  tokenizer: Tokenizer;
}

export interface ModelLoadOptions {
  /** Where converted weights are kept between starts. */
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
}

export async function loadModel(loc: ModelLocation, opts: ModelLoadOptions): Promise<LoadedModel> {
  if (loc.format === 'gguf') {
    const gguf = await readGguf(loc.path);
    const tokenizer = Tokenizer.fromGguf(gguf.metadata);
    const transformer = loadGgufTransformer(gguf, tokenizer.vocabSize, join(opts.cacheDir, 'converted'), {
      onProgress: opts.onProgress,
    });
    checkVocab(transformer, tokenizer);
    return { id: loc.id, transformer, tokenizer };
  }
  const tokenizer = await Tokenizer.fromHfDirectory(loc.path);
  const transformer = loadHfTransformer(loc.path, { onProgress: opts.onProgress });
  checkVocab(transformer, tokenizer);
  return { id: loc.id, transformer, tokenizer };
}

/** The embedding may be padded beyond the tokenizer (common), never smaller than it. */
function checkVocab(t: Transformer, tok: Tokenizer) {
  if (t.config.vocabSize < tok.vocabSize) {
    throw new UnsupportedModelError(
      `the tokenizer has ${tok.vocabSize} tokens but the model's embedding only ${t.config.vocabSize}`,
    );
  }
}
