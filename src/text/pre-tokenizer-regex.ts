// How a byte-level BPE vocabulary splits text into words before merging, keyed by the GGUF's
// `tokenizer.ggml.pre`. The regex lists are llama.cpp's (llama-vocab.cpp, llm_tokenizer_bpe): each
// regex in turn splits every piece of the previous split, keeping matches and the text between
// them. That is HF's Split pre-tokenizer with behavior "Isolated", so each list becomes a sequence
// of Splits. llama.cpp's rewrites of case-insensitive groups as character classes are kept: they
// mean the same and JavaScript's RegExp accepts them.

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const LLAMA3 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const UPPER_THEN_LOWER = '((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+';
const UPPER_RUN = '((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*';
const TEKKEN = `[^\\r\\n\\p{L}\\p{N}]?${UPPER_THEN_LOWER}|[^\\r\\n\\p{L}\\p{N}]?${UPPER_RUN}|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const GPT4O =
  `[^\\r\\n\\p{L}\\p{N}]?${UPPER_THEN_LOWER}${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?${UPPER_RUN}${CONTRACTIONS}?` +
  '|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

export interface BytePairPreTokenizer {
  /** Applied in order; each splits the pieces the previous one produced. */
  regexes: string[];
  /** Look a whole word up in the vocabulary before merging (Llama 3, Tekken). */
  ignoreMerges: boolean;
  /** Whether this vocabulary adds BOS when the GGUF does not say. */
  addBosByDefault: boolean;
}

const DEFAULT: BytePairPreTokenizer = {
  regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
  ignoreMerges: false,
  addBosByDefault: false,
};

function family(names: string[], spec: Partial<BytePairPreTokenizer> & { regexes: string[] }): [string, BytePairPreTokenizer][] {
  return names.map((name) => [name, { ignoreMerges: false, addBosByDefault: false, ...spec }]);
}

const BY_NAME = new Map<string, BytePairPreTokenizer>([
  ['default', DEFAULT],
  ...family(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'], {
    regexes: [LLAMA3],
    ignoreMerges: true,
    addBosByDefault: true,
  }),
  ...family(['dbrx', 'smaug-bpe', 'glm4', 'chatglm-bpe'], { regexes: [LLAMA3] }),
  ...family(['falcon'], { regexes: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'] }),
  ...family(
    [
      'gpt-2',
      'phi-2',
      'jina-es',
      'jina-de',
      'gigachat',
      'jina-v2-es',
      'jina-v2-de',
      'a.x-4.0',
      'mellum',
      'jina-v1-en',
      'jina-v2-code',
      'roberta-bpe',
      'mpt',
      'olmo',
      'jais',
      'exaone4',
      'trillion',
      'granite-docling',
    ],
    { regexes: [GPT2] },
  ),
  ...family(['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b'], {
    regexes: ['\\p{N}', GPT2],
  }),
  ...family(['qwen2', 'deepseek-r1-qwen', 'kormo', 'stablelm2', 'megrez', 'hunyuan'], { regexes: [QWEN2] }),
  ...family(['tekken'], { regexes: [TEKKEN], ignoreMerges: true, addBosByDefault: true }),
  ...family(['gpt-4o', 'llama4'], { regexes: [GPT4O] }),
]);

/**
 * The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value. A missing value means llama.cpp's
 * default. A name llama.cpp knows but this table lacks is refused rather than tokenized wrongly.
 */
export function bytePairPreTokenizer(pre: string | undefined): BytePairPreTokenizer {
  const spec = BY_NAME.get(pre ?? 'default');
  if (!spec) {
    throw new Error(`tokenizer.ggml.pre "${pre}" is not supported; supported: ${[...BY_NAME.keys()].sort().join(', ')}`);
  }
  return spec;
}
