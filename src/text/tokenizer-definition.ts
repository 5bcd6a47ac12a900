// What a Tokenizer is built from, whatever file it came from (a GGUF's metadata or an HF model
// directory): an HF tokenizer.json object for the encoder, plus what decoding, stopping and chat
// templates need to know about the vocabulary.

/** How the vocabulary spells a token's bytes. */
export type TokenSpelling =
  /** GPT-2 byte-level BPE (SmolLM2, Llama 3, Qwen2): one alphabet character per byte. */
  | 'byte-level'
  /** SentencePiece (Llama 2, Mistral, TinyLlama): UTF-8 text with ▁ for space, `<0xNN>` byte tokens. */
  | 'sentencepiece';

export interface AddedTokenInfo {
  /** The literal text the token stands for; matched whole in input text. */
  content: string;
  /** Control tokens (`<|im_start|>`, `<s>`): left out when decoding with skipSpecialTokens. */
  special: boolean;
}

/** The subset of HF's tokenizer.json this project builds or reads. */
export interface TokenizerJson {
  model: Record<string, unknown>;
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  added_tokens: Array<{
    id: number;
    content: string;
    special: boolean;
    normalized?: boolean;
    lstrip?: boolean;
    rstrip?: boolean;
    single_word?: boolean;
  }>;
  [key: string]: unknown;
}

export interface TokenizerDefinition {
  tokenizerJson: TokenizerJson;
  /** Extra settings @huggingface/tokenizers reads (tokenizer_config.json-like). */
  tokenizerConfig: Record<string, unknown>;
  /** Token string by id as the vocabulary spells it; undefined for ids the vocabulary skips. */
  tokens: Array<string | undefined>;
  spelling: TokenSpelling;
  /** SentencePiece byte fallback: `<0xNN>` tokens stand for single bytes. */
  byteFallback: boolean;
  addedTokens: Map<number, AddedTokenInfo>;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** Decoding drops one leading space (SentencePiece's prefix space). */
  stripLeadingSpace: boolean;
  /** Chat templates by name; the one to use is "default". */
  chatTemplates: Record<string, string>;
  /** Strings templates see as bos_token, eos_token, unk_token, pad_token. */
  templateTokens: Record<string, string>;
  /** Non-fatal oddities found while loading, for the server log. */
  warnings: string[];
}
