// Which tokens end generation. Model files name one eos id, but chat models finish turns with
// another token (`<|im_end|>`, `<|eot_id|>`, ...). llama.cpp recognises these by their text
// (llama-vocab.cpp, "special_eog_ids"); we use the same list so a GGUF and its HF directory stop
// at the same tokens.

export const END_OF_GENERATION_TEXTS: ReadonlySet<string> = new Set([
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<|return|>',
  '<|call|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|eom_id|>',
  '<EOT>',
  '_<EOT>',
  '[EOT]',
  '[EOS]',
  '<|end_of_text|>',
  '<end_of_utterance>',
  '<｜end▁of▁sentence｜>',
]);

/**
 * The end-of-generation ids: the given ids (eos and the like) plus every token whose text is in
 * END_OF_GENERATION_TEXTS and that the vocabulary treats as special. Sorted, without duplicates.
 */
export function endOfGenerationIds(
  declaredIds: Iterable<number | undefined>,
  specialTokens: Iterable<[id: number, text: string]>,
): number[] {
  const ids = new Set<number>();
  for (const id of declaredIds) if (id !== undefined) ids.add(id);
  for (const [id, text] of specialTokens) if (END_OF_GENERATION_TEXTS.has(text)) ids.add(id);
  return [...ids].sort((a, b) => a - b);
}
