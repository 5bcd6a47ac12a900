import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readGguf } from '../src/engine/gguf.ts';
import { IncrementalDetokenizer } from '../src/text/incremental-detokenizer.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { text } from './fixtures/tokenizer/text-arbitrary.ts';
import { tinyByteLevelMetadata, tinyByteTokenId, tinySentencePieceMetadata } from './fixtures/tokenizer/tiny-vocabularies.ts';

function stream(tok: Tokenizer, ids: number[], skipSpecialTokens: boolean): string[] {
  const detok = new IncrementalDetokenizer(tok, { skipSpecialTokens });
  return [...ids.map((id) => detok.push(id)), detok.flush()];
}

/** Streaming must reproduce one-shot decoding, and never emit half a character on the way. */
function checkStreamingEqualsDecode(tok: Tokenizer, ids: number[]) {
  for (const skipSpecialTokens of [false, true]) {
    const chunks = stream(tok, ids, skipSpecialTokens);
    const whole = tok.decode(ids, { skipSpecialTokens });
    assert.equal(chunks.join(''), whole);
    for (const chunk of chunks) assert.ok(!/[\uD800-\uDFFF]/u.test(chunk), 'no chunk holds half a surrogate pair');
  }
}

const randomIds = (vocabSize: number) => fc.array(fc.integer({ min: 0, max: vocabSize - 1 }), { maxLength: 20 });

describe('IncrementalDetokenizer with a byte-level vocabulary', () => {
  const tok = Tokenizer.fromGguf(tinyByteLevelMetadata());

  test('holds back an emoji split over byte tokens until it is complete', () => {
    const ids = tok.encode('a🎉b');
    assert.equal(ids.length, 5); // a, ðŁ (F0 9F), 8E, 89, b
    assert.deepEqual(stream(tok, ids, true), ['a', '', '', '🎉', 'b', '']);
  });

  test('holds back a CJK character split over tokens', () => {
    const ids = tok.encode('你好');
    assert.deepEqual(ids.slice(0, 2), [tok.encode('你')[0], tinyByteTokenId(0xa0)]);
    assert.deepEqual(stream(tok, ids, false), ['', '你', '', '', '好', '']);
  });

  test('special tokens are emitted or skipped', () => {
    const ids = [1, ...tok.encode('hi'), 2];
    assert.deepEqual(stream(tok, ids, false), ['<|im_start|>', 'h', 'i', '<|im_end|>', '']);
    assert.deepEqual(stream(tok, ids, true), ['', 'h', 'i', '', '']);
  });

  test('an incomplete character at the end becomes U+FFFD on flush, as decode does', () => {
    const ids = tok.encode('🎉').slice(0, 2);
    assert.deepEqual(stream(tok, ids, true), ['', '', '\uFFFD']);
    assert.equal(tok.decode(ids), '\uFFFD');
  });

  test('streamed text equals decode(ids) for encoded text', () => {
    fc.assert(
      fc.property(text(40), (s) => {
        const ids = tok.encode(s, { addSpecialTokens: false });
        checkStreamingEqualsDecode(tok, ids);
        assert.equal(stream(tok, ids, true).join(''), s);
      }),
      { numRuns: 300 },
    );
  });

  test('streamed text equals decode(ids) for arbitrary ids, invalid UTF-8 included', () => {
    fc.assert(
      fc.property(randomIds(tok.vocabSize), (ids) => checkStreamingEqualsDecode(tok, ids)),
      { numRuns: 500 },
    );
    // Mostly raw byte tokens, so continuation bytes and truncated sequences are common.
    const byteIds = fc.array(fc.integer({ min: 0x80, max: 0xff }).map(tinyByteTokenId), { maxLength: 12 });
    fc.assert(
      fc.property(byteIds, (ids) => checkStreamingEqualsDecode(tok, ids)),
      { numRuns: 500 },
    );
  });

  test('push after flush is an error; flush twice yields nothing more', () => {
    const detok = new IncrementalDetokenizer(tok);
    detok.push(tinyByteTokenId(0x61));
    assert.equal(detok.flush(), '');
    assert.equal(detok.flush(), '');
    assert.throws(() => detok.push(tinyByteTokenId(0x61)), /after flush/);
  });
});

describe('IncrementalDetokenizer with a SentencePiece vocabulary', () => {
  const tok = Tokenizer.fromGguf(tinySentencePieceMetadata());

  test('drops the prefix space once, at the start of the text', () => {
    const ids = tok.encode('hello world');
    assert.deepEqual(stream(tok, ids, true), ['', 'hello', ' world', '']);
    assert.deepEqual(stream(tok, ids, false), ['<s>', ' hello', ' world', '']);
  });

  test('byte-fallback characters are held back until complete', () => {
    const ids = tok.encode('é', { addSpecialTokens: false }); // ▁ <0xC3> <0xA9>
    assert.deepEqual(stream(tok, ids, true), ['', '', 'é', '']);
  });

  test('streamed text equals decode(ids)', () => {
    fc.assert(
      fc.property(text(30), (s) => {
        const ids = tok.encode(s);
        checkStreamingEqualsDecode(tok, ids);
        assert.equal(stream(tok, ids, true).join(''), s);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(randomIds(tok.vocabSize), (ids) => checkStreamingEqualsDecode(tok, ids)),
      { numRuns: 500 },
    );
  });
});

const realGguf = process.env.SMOLLM2_GGUF;
describe('IncrementalDetokenizer with SmolLM2', {
  skip: realGguf ? false : 'SMOLLM2_GGUF (path to SmolLM2-135M-Instruct.Q4_1.gguf) is not set',
}, async () => {
  const tok = Tokenizer.fromGguf((await readGguf(realGguf!)).metadata);

  test('streamed text equals decode(ids) for text and for arbitrary ids', () => {
    checkStreamingEqualsDecode(tok, tok.encode('Emoji: 🎉👍🏽 👨‍👩‍👧‍👦 and 你好，世界'));
    fc.assert(
      fc.property(randomIds(tok.vocabSize), (ids) => checkStreamingEqualsDecode(tok, ids)),
      { numRuns: 300 },
    );
  });
});
