// The tokenizer of a model on disk: from a GGUF file's metadata or a Hugging Face directory's
// tokenizer files. The server loads it (generation, Tokenize, Detokenize); the engine never does.
import type { ModelLocation } from '../engine/engine-protocol.ts';
import { readGguf } from '../engine/gguf.ts';
import { tokenizerDefinitionFromGguf } from './gguf-vocabulary.ts';
import { tokenizerDefinitionFromHfDirectory } from './hf-directory.ts';
import { Tokenizer } from './tokenizer.ts';

export interface TokenizerOptions {
  /**
   * A chat template in place of the model's (--chat-template), checked to parse by the caller
   * (chatTemplateArgument). The tool-call format is read from it as from the model's.
   */
  chatTemplate?: string;
}

export async function loadTokenizer(loc: ModelLocation, opts: TokenizerOptions = {}): Promise<Tokenizer> {
  const definition =
    loc.format === 'gguf'
      ? tokenizerDefinitionFromGguf((await readGguf(loc.path)).metadata)
      : await tokenizerDefinitionFromHfDirectory(loc.path);
  if (opts.chatTemplate !== undefined) definition.chatTemplates = { ...definition.chatTemplates, default: opts.chatTemplate };
  return new Tokenizer(definition);
}
