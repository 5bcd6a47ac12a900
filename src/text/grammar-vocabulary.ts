// The tokenizer's vocabulary in the form the engine's grammar compiler (XGrammar) takes. Control
// tokens are given as empty strings: XGrammar then never allows them inside structured text (their
// spelling, e.g. `<|im_end|>`, would otherwise count as ordinary characters of a JSON string).
import type { GrammarVocabulary } from '../engine/grammar/grammar-vocabulary.ts';
import type { Tokenizer } from './tokenizer.ts';

/** `vocabSize`: the model's logits rows (at least the tokenizer's vocabulary). */
export function grammarVocabulary(tokenizer: Tokenizer, vocabSize: number): GrammarVocabulary {
  const d = tokenizer.definition;
  const encodedVocab = d.tokens.map((t, id) => (t === undefined || tokenizer.isSpecial(id) ? '' : t));
  const sentencepiece = d.spelling === 'sentencepiece';
  const controlTokenIds: number[] = [];
  const controlTokenIdsButNewline: number[] = [];
  encodedVocab.forEach((token, id) => {
    if (token === '') return;
    const bytes = tokenizer.tokenBytes(id);
    if (bytes.some((b) => b < 0x20)) controlTokenIds.push(id);
    if (bytes.some((b) => b < 0x20 && b !== 0x0a)) controlTokenIdsButNewline.push(id);
  });
  return {
    encodedVocab,
    vocabType: !sentencepiece ? 'byte_level' : d.byteFallback ? 'byte_fallback' : 'raw',
    addPrefixSpace: sentencepiece && d.stripLeadingSpace,
    vocabSize: Math.max(vocabSize, encodedVocab.length),
    stopTokenIds: [...tokenizer.eosTokenIds],
    controlTokenIds,
    controlTokenIdsButNewline,
  };
}
