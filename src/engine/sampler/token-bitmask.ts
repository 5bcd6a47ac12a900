// A grammar's bitmask of allowed tokens (bit i of word w allows token 32·w + i, XGrammar's layout)
// applied to logits: disallowed tokens get -Infinity, so no sampling method can pick them, while
// the allowed ones keep their values (their log probabilities are read from the raw logits).

/** Sets the logits of disallowed tokens of one row (`offset`, `vocabSize` values) to -Infinity. */
export function maskLogitsRow(logits: Float32Array, offset: number, vocabSize: number, mask: Int32Array): void {
  const words = Math.ceil(vocabSize / 32);
  for (let w = 0; w < words; w++) {
    const bits = mask[w] ?? 0;
    if (bits === -1) continue;
    const base = w * 32;
    const end = Math.min(32, vocabSize - base);
    for (let b = 0; b < end; b++) if ((bits & (1 << b)) === 0) logits[offset + base + b] = Number.NEGATIVE_INFINITY;
  }
}

/** Whether the mask allows at least one of the first `vocabSize` tokens. */
export function allowsAnyToken(mask: Int32Array, vocabSize: number): boolean {
  const words = Math.ceil(vocabSize / 32);
  for (let w = 0; w < words; w++) {
    const bits = mask[w] ?? 0;
    if (bits === 0) continue;
    const end = Math.min(32, vocabSize - w * 32);
    if (end >= 32 || (bits & ((1 << end) - 1)) !== 0) return true;
  }
  return false;
}
