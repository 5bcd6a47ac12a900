// The vocabulary as XGrammar's TokenizerInfo takes it: each token id's string as the tokenizer
// spells it, and how that spelling maps to bytes. The server builds it from its tokenizer and
// sends it to the engine once (the engine holds no tokenizer); the grammar worker builds its
// TokenizerInfo from it.

export interface GrammarVocabulary {
  /** Token string by id as the vocabulary spells it; '' for control tokens (never text). */
  encodedVocab: string[];
  /** XGrammar's name for the spelling: GPT-2 byte-level BPE, SentencePiece with `<0xNN>` tokens, or raw text. */
  vocabType: 'byte_level' | 'byte_fallback' | 'raw';
  /** SentencePiece adds a space before the text. */
  addPrefixSpace: boolean;
  /** Rows of the model's logits (may exceed encodedVocab.length; the extra ids are never allowed). */
  vocabSize: number;
  /** Ids that end generation where the grammar allows the output to end. */
  stopTokenIds: number[];
  /**
   * Tokens whose bytes include a control character (U+0000–U+001F), and those of them with one
   * other than a line feed. JSON never holds raw control characters in a string, yet XGrammar's
   * grammar for a string with maxLength lets them through; the worker masks these tokens out of
   * JSON formats itself, and out of tool calls all but line feeds (their markup has line breaks).
   */
  controlTokenIds: number[];
  controlTokenIdsButNewline: number[];
}
