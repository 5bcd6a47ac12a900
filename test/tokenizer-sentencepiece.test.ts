import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { text } from './fixtures/tokenizer/text-arbitrary.ts';
import { tinySentencePieceMetadata } from './fixtures/tokenizer/tiny-vocabularies.ts';

const metadata = tinySentencePieceMetadata();
const tokens = metadata['tokenizer.ggml.tokens'] as string[];
const scores = metadata['tokenizer.ggml.scores'] as number[];
const idOf = (token: string) => {
  const id = tokens.indexOf(token);
  assert.notEqual(id, -1, `token ${token} is in the tiny vocabulary`);
  return id;
};
const byteId = (b: number) => idOf(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);

/**
 * SentencePiece BPE as llama.cpp's llm_tokenizer_spm runs it: start from characters, repeatedly
 * merge the adjacent pair whose concatenation is the best-scored vocabulary entry (leftmost on
 * ties), then spell leftover symbols as byte tokens.
 */
function sentencePieceReference(input: string, addSpacePrefix: boolean): number[] {
  if (input === '') return [];
  const normalized = ((addSpacePrefix ? ' ' : '') + input).replaceAll(' ', '▁');
  const scoreOf = new Map<string, number>();
  tokens.forEach((t, i) => scoreOf.has(t) || scoreOf.set(t, scores[i]));
  const symbols = Array.from(normalized);
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const score = scoreOf.get(symbols[i] + symbols[i + 1]);
      if (score !== undefined && score > bestScore) {
        best = i;
        bestScore = score;
      }
    }
    if (best < 0) break;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
  return symbols.flatMap((s) => (tokens.includes(s) ? [idOf(s)] : [...Buffer.from(s, 'utf8')].map(byteId)));
}

/** Text over the tiny vocabulary's letters, so that merges happen often. */
const vocabularyText = fc
  .array(fc.constantFrom('h', 'e', 'l', 'o', 'w', 'r', 'd', 'a', 't', 'n', 'i', 's', 'c', ' ', ' ', '你', '好', 'é', 'x', '\n'), {
    maxLength: 30,
  })
  .map((chars) => chars.join(''));

describe('Tokenizer.fromGguf, SentencePiece BPE with byte fallback (tiny vocabulary)', () => {
  const tok = Tokenizer.fromGguf(metadata);

  test('encodes words to pieces with the prefix space, and adds BOS by default', () => {
    assert.deepEqual(tok.encode('hello world', { addSpecialTokens: false }), [idOf('▁hello'), idOf('▁world')]);
    assert.deepEqual(tok.encode('hello world'), [1, idOf('▁hello'), idOf('▁world')]);
    assert.deepEqual(tok.encode('the cat', { addSpecialTokens: false }), [idOf('▁the'), idOf('▁'), idOf('c'), idOf('at')]);
    assert.deepEqual(tok.encode('', { addSpecialTokens: true }), [1]);
    assert.deepEqual(tok.encode('', { addSpecialTokens: false }), []);
  });

  test('characters outside the vocabulary fall back to byte tokens', () => {
    assert.deepEqual(tok.encode('é你', { addSpecialTokens: false }), [idOf('▁'), byteId(0xc3), byteId(0xa9), idOf('你')]);
    assert.deepEqual(tok.encode('\n', { addSpecialTokens: false }), [idOf('▁'), byteId(0x0a)]);
  });

  test('control tokens written in the text are matched whole', () => {
    assert.deepEqual(tok.encode('<s>hello</s>', { addSpecialTokens: false }), [1, idOf('▁hello'), 2]);
  });

  test('matches SentencePiece merging (llama.cpp algorithm) on random text', () => {
    fc.assert(
      fc.property(vocabularyText, (s) => {
        assert.deepEqual(tok.encode(s, { addSpecialTokens: false }), sentencePieceReference(s, true));
      }),
      { numRuns: 400 },
    );
    const noPrefix = Tokenizer.fromGguf({ ...metadata, 'tokenizer.ggml.add_space_prefix': false });
    fc.assert(
      fc.property(vocabularyText, (s) => {
        assert.deepEqual(noPrefix.encode(s, { addSpecialTokens: false }), sentencePieceReference(s, false));
      }),
      { numRuns: 200 },
    );
  });

  test('decode drops the prefix space; special tokens kept or skipped as HF does', () => {
    const ids = tok.encode('hello world');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'hello world');
    assert.equal(tok.decode(ids), '<s> hello world');
    assert.equal(tok.decode([idOf('▁▁'), idOf('▁hello')]), '  hello');
    const noPrefix = Tokenizer.fromGguf({ ...metadata, 'tokenizer.ggml.add_space_prefix': false });
    assert.equal(noPrefix.decode([idOf('▁hello')]), ' hello');
  });

  test('round trip: decode(encode(s)) === s', () => {
    fc.assert(
      fc.property(fc.oneof(vocabularyText, text(30)), (s) => {
        assert.equal(tok.decode(tok.encode(s, { addSpecialTokens: false })), s);
        assert.equal(tok.decode(tok.encode(s), { skipSpecialTokens: true }), s);
      }),
      { numRuns: 300 },
    );
  });

  test('token bytes: ▁ is a space, <0xNN> is one byte', () => {
    assert.deepEqual([...tok.tokenBytes(idOf('▁hello'))], [...Buffer.from(' hello')]);
    assert.deepEqual([...tok.tokenBytes(byteId(0xc3))], [0xc3]);
    assert.deepEqual([...tok.tokenBytes(1)], [...Buffer.from('<s>')]);
    assert.equal(tok.tokenText(byteId(0xc3)), 'bytes:\\xc3');
    assert.equal(tok.tokenText(byteId(0x41)), 'A');
    assert.equal(tok.tokenText(idOf('你')), '你');
  });

  test('special and end-of-generation ids use llama.cpp defaults', () => {
    const { 'tokenizer.ggml.bos_token_id': _b, 'tokenizer.ggml.eos_token_id': _e, ...noIds } = metadata;
    const t = Tokenizer.fromGguf(noIds);
    assert.equal(t.bosTokenId, 1);
    assert.deepEqual(t.eosTokenIds, [2]);
    assert.ok(t.isSpecial(0) && t.isSpecial(1) && t.isSpecial(2));
    assert.equal(t.isSpecial(byteId(0x41)), false);
  });

  test('without merges the scores are required', () => {
    const { 'tokenizer.ggml.scores': _s, ...noScores } = metadata;
    assert.throws(() => Tokenizer.fromGguf(noScores), /"tokenizer.ggml.scores" is missing/);
  });
});
