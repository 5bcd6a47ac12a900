// An HF TemplateProcessing post-processor that puts BOS before and/or EOS after the text when
// special tokens are requested (llama.cpp's add_bos/add_eos, transformers' add_bos_token/add_eos_token).

export function bosEosPostProcessor(bos: string | undefined, eos: string | undefined): unknown {
  if (bos === undefined && eos === undefined) return null;
  const single: unknown[] = [];
  if (bos !== undefined) single.push({ SpecialToken: { id: bos, type_id: 0 } });
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (eos !== undefined) single.push({ SpecialToken: { id: eos, type_id: 0 } });
  return { type: 'TemplateProcessing', single, pair: single, special_tokens: {} };
}
