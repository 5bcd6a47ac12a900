// Turns a GGUF's `tokenizer.ggml.*` metadata into a TokenizerDefinition: an HF tokenizer.json
// object equivalent to what llama.cpp does with the same file, so @huggingface/tokenizers can encode.
// Follows llama.cpp's llama-vocab.cpp for defaults and special tokens, and transformers' GGUF loader
// (integrations/gguf) for the tokenizer.json shapes.
import { endOfGenerationIds, END_OF_GENERATION_TEXTS } from './end-of-generation.ts';
import { bytePairPreTokenizer, type BytePairPreTokenizer } from './pre-tokenizer-regex.ts';
import { isByteLevelSpelling, toByteLevelSpelling } from './byte-level.ts';
import { mergesFromScores } from './sentencepiece-merges.ts';
import { bosEosPostProcessor } from './bos-eos-post-processor.ts';
import type { AddedTokenInfo, TokenizerDefinition, TokenizerJson } from './tokenizer-definition.ts';

/** llama.cpp's token types (`tokenizer.ggml.token_type`). */
export const GgufTokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

class GgufTokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufTokenizerError';
  }
}

function stringArray(metadata: Record<string, unknown>, key: string, required: true): string[];
function stringArray(metadata: Record<string, unknown>, key: string, required: false): string[] | undefined;
function stringArray(metadata: Record<string, unknown>, key: string, required: boolean): string[] | undefined {
  const value = metadata[key];
  if (value === undefined) {
    if (required) throw new GgufTokenizerError(`GGUF metadata key "${key}" is missing`);
    return undefined;
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new GgufTokenizerError(`GGUF metadata key "${key}" must be an array of strings`);
  }
  return value as string[];
}

function numberArray(metadata: Record<string, unknown>, key: string, length: number): number[] | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length !== length || value.some((v) => typeof v !== 'number')) {
    throw new GgufTokenizerError(`GGUF metadata key "${key}" must be an array of ${length} numbers`);
  }
  return value as number[];
}

function optionalBoolean(metadata: Record<string, unknown>, key: string): boolean | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new GgufTokenizerError(`GGUF metadata key "${key}" must be a boolean`);
  return value;
}

function optionalTokenId(metadata: Record<string, unknown>, key: string, vocabSize: number): number | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new GgufTokenizerError(`GGUF metadata key "${key}" must be an integer token id`);
  }
  // llama.cpp ignores out-of-range special ids (with a warning); -1 / UINT32_MAX mean "none".
  return value >= 0 && value < vocabSize ? value : undefined;
}

/** `"a b"` → `["a", "b"]`, splitting at the first space after position 0 as llama.cpp does. */
function splitMerge(merge: string, index: number): [string, string] {
  const at = merge.indexOf(' ', 1);
  if (at < 0) throw new GgufTokenizerError(`tokenizer.ggml.merges[${index}] "${merge}" is not two tokens separated by a space`);
  return [merge.slice(0, at), merge.slice(at + 1)];
}

function chatTemplatesFrom(metadata: Record<string, unknown>): Record<string, string> {
  const templates: Record<string, string> = {};
  const prefix = 'tokenizer.chat_template.';
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') continue;
    if (key === 'tokenizer.chat_template') templates.default = value;
    else if (key.startsWith(prefix)) templates[key.slice(prefix.length)] = value;
  }
  return templates;
}

interface SpecialIds {
  bos?: number;
  eos?: number;
  unk?: number;
  pad?: number;
  eot?: number;
  eom?: number;
}

/** The special token ids, with llama.cpp's defaults for SentencePiece vocabularies (<unk>=0, <s>=1, </s>=2). */
function specialIdsOf(metadata: Record<string, unknown>, n: number, isSentencePiece: boolean): SpecialIds {
  const id = (name: string) => optionalTokenId(metadata, `tokenizer.ggml.${name}`, n);
  return {
    bos: id('bos_token_id') ?? (isSentencePiece ? 1 : undefined),
    eos: id('eos_token_id') ?? (isSentencePiece ? 2 : undefined),
    unk: id('unknown_token_id') ?? (isSentencePiece ? 0 : undefined),
    pad: id('padding_token_id'),
    eot: id('eot_token_id'),
    eom: id('eom_token_id'),
  };
}

/**
 * Tokens matched whole in the input, as llama.cpp's special-token partition does: control and
 * unknown tokens (special), user-defined ones (not special). A mislabelled end-of-generation token
 * counts as control, as llama.cpp forces; so does a declared special id that looks like a control
 * token, which transformers' GGUF loader makes special.
 */
function addedTokensOf(tokens: string[], types: number[], special: SpecialIds, warnings: string[]): Map<number, AddedTokenInfo> {
  const declared = new Set([special.bos, special.eos, special.unk, special.eot, special.eom]);
  const added = new Map<number, AddedTokenInfo>();
  tokens.forEach((text, id) => {
    const type = types[id];
    if (type === GgufTokenType.CONTROL || type === GgufTokenType.UNKNOWN) {
      added.set(id, { content: text, special: true });
    } else if (type === GgufTokenType.USER_DEFINED) {
      added.set(id, { content: text, special: false });
    } else if (type === GgufTokenType.NORMAL && (END_OF_GENERATION_TEXTS.has(text) || (declared.has(id) && /^<.*>$/s.test(text)))) {
      warnings.push(`token ${id} ${JSON.stringify(text)} looks like a control token but is typed normal; treating it as control`);
      added.set(id, { content: text, special: true });
    }
  });
  return added;
}

/**
 * The BPE model's vocabulary. Added tokens keep their raw text (they are matched before BPE); a
 * byte-level token stored as raw text by some converters is respelled in the byte alphabet so
 * merges can reach it, as transformers' GGUF loader does.
 */
function bpeVocabulary(tokens: string[], added: Map<number, AddedTokenInfo>, byteLevel: boolean): Record<string, number> {
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((token, id) => {
    const spelled = byteLevel && !added.has(id) && !isByteLevelSpelling(token) ? toByteLevelSpelling(token) : token;
    if (!(spelled in vocab)) vocab[spelled] = id;
  });
  return vocab;
}

function mergesOf(metadata: Record<string, unknown>, tokens: string[], isSentencePiece: boolean): Array<[string, string]> {
  const ggufMerges = stringArray(metadata, 'tokenizer.ggml.merges', false);
  if (ggufMerges) return ggufMerges.map(splitMerge);
  if (!isSentencePiece) throw new GgufTokenizerError('GGUF metadata key "tokenizer.ggml.merges" is missing');
  const scores = numberArray(metadata, 'tokenizer.ggml.scores', tokens.length);
  if (!scores) {
    throw new GgufTokenizerError('GGUF metadata key "tokenizer.ggml.scores" is missing (needed without "tokenizer.ggml.merges")');
  }
  return mergesFromScores(tokens, scores);
}

/** SentencePiece as HF writes it for Llama 2: ▁ for spaces, a prefix ▁, byte fallback. */
function sentencePieceJson(
  vocab: Record<string, number>,
  merges: Array<[string, string]>,
  unkToken: string | undefined,
  addSpacePrefix: boolean,
) {
  const spaces = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  return {
    model: { type: 'BPE', vocab, merges, byte_fallback: true, fuse_unk: true, unk_token: unkToken ?? null },
    normalizer: addSpacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, spaces] } : spaces,
    pre_tokenizer: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
  };
}

/** Byte-level BPE with llama.cpp's pre-tokenizer regexes as HF Split steps. */
function byteLevelJson(vocab: Record<string, number>, merges: Array<[string, string]>, pre: BytePairPreTokenizer) {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    model: { type: 'BPE', vocab, merges, byte_fallback: false, ignore_merges: pre.ignoreMerges, unk_token: null },
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...pre.regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
        byteLevel,
      ],
    },
    decoder: byteLevel,
  };
}

export function tokenizerDefinitionFromGguf(metadata: Record<string, unknown>): TokenizerDefinition {
  const model = metadata['tokenizer.ggml.model'];
  if (model !== 'gpt2' && model !== 'llama') {
    throw new GgufTokenizerError(
      `GGUF metadata key "tokenizer.ggml.model" is ${JSON.stringify(model)}; supported: "gpt2" (byte-level BPE), "llama" (SentencePiece BPE)`,
    );
  }
  const isSentencePiece = model === 'llama';
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens', true);
  if (tokens.length === 0) throw new GgufTokenizerError('GGUF metadata key "tokenizer.ggml.tokens" is empty');
  const types = numberArray(metadata, 'tokenizer.ggml.token_type', tokens.length) ?? tokens.map(() => GgufTokenType.NORMAL);
  const preName = metadata['tokenizer.ggml.pre'];
  if (preName !== undefined && typeof preName !== 'string') {
    throw new GgufTokenizerError('GGUF metadata key "tokenizer.ggml.pre" must be a string');
  }
  const pre = isSentencePiece ? undefined : bytePairPreTokenizer(preName);
  const special = specialIdsOf(metadata, tokens.length, isSentencePiece);
  const addBos = optionalBoolean(metadata, 'tokenizer.ggml.add_bos_token') ?? pre?.addBosByDefault ?? isSentencePiece;
  const addEos = optionalBoolean(metadata, 'tokenizer.ggml.add_eos_token') ?? false;
  const addSpacePrefix = optionalBoolean(metadata, 'tokenizer.ggml.add_space_prefix') ?? isSentencePiece;
  const text = (id: number | undefined) => (id === undefined ? undefined : tokens[id]);

  const warnings: string[] = [];
  const addedTokens = addedTokensOf(tokens, types, special, warnings);
  const vocab = bpeVocabulary(tokens, addedTokens, !isSentencePiece);
  const merges = mergesOf(metadata, tokens, isSentencePiece);
  if (addBos && special.bos === undefined) warnings.push('tokenizer.ggml.add_bos_token is true but there is no BOS token; not adding one');
  if (addEos && special.eos === undefined) warnings.push('tokenizer.ggml.add_eos_token is true but there is no EOS token; not adding one');

  const tokenizerJson: TokenizerJson = {
    ...(isSentencePiece ? sentencePieceJson(vocab, merges, text(special.unk), addSpacePrefix) : byteLevelJson(vocab, merges, pre!)),
    post_processor: bosEosPostProcessor(addBos ? text(special.bos) : undefined, addEos ? text(special.eos) : undefined),
    added_tokens: [...addedTokens].map(([id, t]) => ({
      id,
      content: t.content,
      special: t.special,
      normalized: false,
      lstrip: false,
      rstrip: false,
      single_word: false,
    })),
  };

  const templateTokens: Record<string, string> = {};
  for (const [name, id] of [
    ['bos_token', special.bos],
    ['eos_token', special.eos],
    ['unk_token', special.unk],
    ['pad_token', special.pad],
  ] as const) {
    if (id !== undefined) templateTokens[name] = tokens[id];
  }
  const specialTokens = [...addedTokens].filter(([, t]) => t.special).map(([id, t]): [number, string] => [id, t.content]);
  return {
    tokenizerJson,
    tokenizerConfig: { clean_up_tokenization_spaces: false },
    tokens,
    spelling: isSentencePiece ? 'sentencepiece' : 'byte-level',
    byteFallback: isSentencePiece,
    addedTokens,
    bosTokenId: special.bos,
    eosTokenIds: endOfGenerationIds([special.eos, special.eot, special.eom], specialTokens),
    stripLeadingSpace: isSentencePiece && addSpacePrefix,
    chatTemplates: chatTemplatesFrom(metadata),
    templateTokens,
    warnings,
  };
}
