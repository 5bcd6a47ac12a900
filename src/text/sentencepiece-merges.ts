// A SentencePiece BPE vocabulary (a GGUF with tokenizer.ggml.model = "llama") stores tokens and
// scores but no merge list. SentencePiece merges the adjacent pair whose union is the highest-scored
// vocabulary entry; an HF BPE model merges the pair with the lowest rank. Ranking every split of
// every token by that token's score makes the two agree. Same recipe as transformers'
// `generate_merges` (used by its GGUF loader and its SentencePiece converter), including its tie
// order: score descending, then longer left piece, then longer right piece, then vocabulary order.

const SURROGATE = /[\uD800-\uDFFF]/;

export function mergesFromScores(tokens: readonly string[], scores: readonly number[]): Array<[string, string]> {
  const idOf = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!idOf.has(t)) idOf.set(t, i);
  });
  const lefts: string[] = [];
  const rights: string[] = [];
  const score: number[] = [];
  const leftLength: number[] = [];
  const rightLength: number[] = [];
  const local: Array<{ left: string; right: string; leftId: number; rightId: number; leftLength: number; rightLength: number }> = [];
  tokens.forEach((token, tokenIndex) => {
    if (token.length < 2) return;
    // Cut points between code points (the same as code units unless the token has astral characters).
    const cuts: number[] = [];
    if (SURROGATE.test(token)) {
      let at = 0;
      for (const ch of token) {
        if (at > 0) cuts.push(at);
        at += ch.length;
      }
    } else {
      for (let at = 1; at < token.length; at++) cuts.push(at);
    }
    local.length = 0;
    cuts.forEach((cut, i) => {
      const left = token.slice(0, cut);
      const leftId = idOf.get(left);
      if (leftId === undefined) return;
      const right = token.slice(cut);
      const rightId = idOf.get(right);
      if (rightId === undefined) return;
      local.push({ left, right, leftId, rightId, leftLength: i + 1, rightLength: cuts.length - i });
    });
    if (local.length > 1) local.sort((a, b) => a.leftId - b.leftId || a.rightId - b.rightId);
    for (const c of local) {
      lefts.push(c.left);
      rights.push(c.right);
      score.push(scores[tokenIndex] ?? 0);
      leftLength.push(c.leftLength);
      rightLength.push(c.rightLength);
    }
  });
  const byScore = Float64Array.from(score);
  const byLeft = Uint32Array.from(leftLength);
  const byRight = Uint32Array.from(rightLength);
  const order = Uint32Array.from(lefts.keys());
  order.sort((a, b) => byScore[b] - byScore[a] || byLeft[b] - byLeft[a] || byRight[b] - byRight[a] || a - b);
  return Array.from(order, (i): [string, string] => [lefts[i], rights[i]]);
}
