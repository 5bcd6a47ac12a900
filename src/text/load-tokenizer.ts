// The tokenizer of a model on disk: from a GGUF file's metadata or a Hugging Face directory's
// tokenizer files. The server loads it (generation, Tokenize, Detokenize); the engine never does.
import type { ModelLocation } from '../engine/engine-protocol.ts';
import { readGguf } from '../engine/gguf.ts';
import { Tokenizer } from './tokenizer.ts';

export async function loadTokenizer(loc: ModelLocation): Promise<Tokenizer> {
  if (loc.format === 'gguf') return Tokenizer.fromGguf((await readGguf(loc.path)).metadata);
  return Tokenizer.fromHfDirectory(loc.path);
}
