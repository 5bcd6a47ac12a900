import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { readGguf } from '../src/engine/gguf.ts';
import { InvalidArgumentError } from '../src/engine/sampling-params.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { text } from './fixtures/tokenizer/text-arbitrary.ts';
import { gpt2ByteChars, tinyByteLevelMetadata, tinyByteTokenId } from './fixtures/tokenizer/tiny-vocabularies.ts';

const tiny = tinyByteLevelMetadata({
  'tokenizer.ggml.merges': [...(tinyByteLevelMetadata()['tokenizer.ggml.merges'] as string[]), '1 2'],
  'tokenizer.ggml.tokens': [...(tinyByteLevelMetadata()['tokenizer.ggml.tokens'] as string[]), '12'],
  'tokenizer.ggml.token_type': [...(tinyByteLevelMetadata()['tokenizer.ggml.token_type'] as number[]), 1],
});
const tinyTokens = tiny['tokenizer.ggml.tokens'] as string[];
const idOf = (token: string) => {
  const id = tinyTokens.indexOf(token);
  assert.notEqual(id, -1, `token ${token} is in the tiny vocabulary`);
  return id;
};

describe('Tokenizer.fromGguf, byte-level BPE (tiny vocabulary)', () => {
  const tok = Tokenizer.fromGguf(tiny);

  test('encodes with the merges and the chosen pre-tokenizer', () => {
    assert.deepEqual(tok.encode('hello world'), [idOf('he'), idOf('ll'), idOf('o'), idOf('Ġworld')]);
    assert.deepEqual(tok.encode(' the'), [idOf('Ġthe')]);
    // "smollm" splits every digit on its own, so the "1 2" merge never applies...
    assert.deepEqual(tok.encode('12'), [tinyByteTokenId(0x31), tinyByteTokenId(0x32)]);
    // ...while GPT-2's pre-tokenizer keeps digit runs together.
    const gpt2 = Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.pre': 'gpt-2' });
    assert.deepEqual(gpt2.encode('12'), [idOf('12')]);
  });

  test('special tokens in the text are matched whole; BOS/EOS follow the GGUF flags', () => {
    assert.deepEqual(tok.encode('<|im_start|>hi<|im_end|>'), [1, tinyByteTokenId(0x68), tinyByteTokenId(0x69), 2]);
    assert.deepEqual(tok.encode('hi', { addSpecialTokens: true }), [tinyByteTokenId(0x68), tinyByteTokenId(0x69)]);
    const withBos = Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.add_bos_token': true, 'tokenizer.ggml.add_eos_token': true });
    assert.deepEqual(withBos.encode('hi'), [1, tinyByteTokenId(0x68), tinyByteTokenId(0x69), 2]);
    assert.deepEqual(withBos.encode('hi', { addSpecialTokens: false }), [tinyByteTokenId(0x68), tinyByteTokenId(0x69)]);
    assert.deepEqual(withBos.encode(''), [1, 2]);
  });

  test('special ids, end-of-generation ids and vocabulary size', () => {
    assert.equal(tok.vocabSize, tinyTokens.length);
    assert.equal(tok.bosTokenId, 1);
    assert.deepEqual(tok.eosTokenIds, [0, 2]); // eos <|im_end|> plus <|endoftext|>
    assert.deepEqual(
      [0, 1, 2, 3, 4, 300].map((id) => tok.isSpecial(id)),
      [true, true, true, true, false, false],
    );
  });

  test('an end-of-turn token typed normal is still treated as control, as llama.cpp does', () => {
    const types = [...(tiny['tokenizer.ggml.token_type'] as number[])];
    types[2] = 1;
    const t = Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.token_type': types, 'tokenizer.ggml.eos_token_id': 0 });
    assert.ok(t.isSpecial(2));
    assert.deepEqual(t.eosTokenIds, [0, 2]);
    assert.match(t.warnings.join('\n'), /token 2 "<\|im_end\|>" looks like a control token/);
  });

  test('user-defined tokens are matched whole but are not special', () => {
    const types = [...(tiny['tokenizer.ggml.token_type'] as number[])];
    types[3] = 4;
    const t = Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.token_type': types });
    assert.deepEqual(t.encode('a<|extra|>'), [tinyByteTokenId(0x61), 3]);
    assert.equal(t.isSpecial(3), false);
    assert.equal(t.decode([3], { skipSpecialTokens: true }), '<|extra|>');
  });

  test('decode, skipping special tokens or not', () => {
    const ids = [1, ...tok.encode('hello world'), 2];
    assert.equal(tok.decode(ids), '<|im_start|>hello world<|im_end|>');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'hello world');
    assert.equal(tok.decode([]), '');
  });

  test('token bytes and readable token text, including half an emoji', () => {
    const ids = tok.encode('🎉');
    assert.deepEqual(ids, [idOf('ðŁ'), tinyByteTokenId(0x8e), tinyByteTokenId(0x89)]);
    assert.deepEqual([...tok.tokenBytes(ids[0])], [0xf0, 0x9f]);
    assert.equal(tok.tokenText(ids[0]), 'bytes:\\xf0\\x9f');
    assert.equal(tok.tokenText(idOf('Ġworld')), ' world');
    assert.equal(tok.tokenText(1), '<|im_start|>');
    assert.deepEqual([...tok.tokenBytes(1)], [...Buffer.from('<|im_start|>')]);
    assert.equal(tok.decode(ids), '🎉');
    assert.equal(tok.decode(ids.slice(0, 2)), '\uFFFD');
  });

  test('round trip: decode(encode(s)) === s for any text', () => {
    fc.assert(
      fc.property(text(40), (s) => {
        const ids = tok.encode(s, { addSpecialTokens: false });
        assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
        assert.equal(tok.decode(ids), s);
      }),
      { numRuns: 300 },
    );
  });

  test('ids outside the vocabulary are refused', () => {
    assert.throws(() => tok.tokenBytes(tok.vocabSize), RangeError);
    assert.throws(() => tok.decode([-1]), /token id -1 is outside the vocabulary/);
    assert.throws(() => tok.tokenText(1.5), RangeError);
  });

  test('bad tokenizer metadata is an error naming the key', () => {
    assert.throws(() => Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.model': 'bert' }), /"tokenizer.ggml.model" is "bert"/);
    const { 'tokenizer.ggml.merges': _m, ...noMerges } = tiny;
    assert.throws(() => Tokenizer.fromGguf(noMerges), /"tokenizer.ggml.merges" is missing/);
    const { 'tokenizer.ggml.tokens': _t, ...noTokens } = tiny;
    assert.throws(() => Tokenizer.fromGguf(noTokens), /"tokenizer.ggml.tokens" is missing/);
    assert.throws(
      () => Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.pre': 'no-such-pre' }),
      /tokenizer.ggml.pre "no-such-pre" is not supported/,
    );
    assert.throws(
      () => Tokenizer.fromGguf({ ...tiny, 'tokenizer.ggml.token_type': [1, 2] }),
      /"tokenizer.ggml.token_type" must be an array of \d+ numbers/,
    );
  });

  test('a model without a chat template refuses chat messages', () => {
    assert.equal(tok.hasChatTemplate, false);
    assert.throws(
      () => tok.applyChatTemplate([{ role: 'user', content: 'hi' }]),
      (e: Error) => e instanceof InvalidArgumentError && e.field === 'messages' && /no chat template/.test(e.message),
    );
  });
});

interface Fixture {
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  addedTokenIds: number[];
  encodings: Array<{ text: string; ids: number[]; idsWithSpecialTokens: number[]; decoded: string; decodedSkipSpecial: string }>;
  chats: Array<{ messages: Array<{ role: string; content: string }>; addGenerationPrompt: boolean; text: string; ids: number[] }>;
  tokenBytes: Record<string, string>;
}

const realGguf = process.env.SMOLLM2_GGUF;
describe('Tokenizer.fromGguf on SmolLM2-135M-Instruct against transformers (test/fixtures/tokenizer/smollm2.json)', {
  skip: realGguf ? false : 'SMOLLM2_GGUF (path to SmolLM2-135M-Instruct.Q4_1.gguf) is not set',
}, async () => {
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/tokenizer/smollm2.json', import.meta.url), 'utf8')) as Fixture;
  const tok = Tokenizer.fromGguf((await readGguf(realGguf!)).metadata);

  test('vocabulary, special and end-of-generation ids', () => {
    assert.equal(tok.vocabSize, fixture.vocabSize);
    assert.equal(tok.bosTokenId, fixture.bosTokenId);
    assert.ok(tok.eosTokenIds.includes(fixture.eosTokenId));
    assert.deepEqual(tok.eosTokenIds, [0, 2]); // <|endoftext|>, <|im_end|>
    for (const id of fixture.addedTokenIds) assert.ok(tok.isSpecial(id), `token ${id} is special`);
    assert.equal(tok.warnings.length, 0);
  });

  test('token ids equal the reference for every string', () => {
    for (const e of fixture.encodings) {
      assert.deepEqual(tok.encode(e.text, { addSpecialTokens: false }), e.ids, JSON.stringify(e.text));
      assert.deepEqual(tok.encode(e.text, { addSpecialTokens: true }), e.idsWithSpecialTokens, JSON.stringify(e.text));
    }
  });

  test('decoding equals the reference, with and without special tokens', () => {
    for (const e of fixture.encodings) {
      assert.equal(tok.decode(e.ids), e.decoded);
      assert.equal(tok.decode(e.ids, { skipSpecialTokens: true }), e.decodedSkipSpecial);
    }
  });

  test('token bytes equal the reference', () => {
    for (const [id, hex] of Object.entries(fixture.tokenBytes)) {
      assert.equal(Buffer.from(tok.tokenBytes(Number(id))).toString('hex'), hex, `token ${id}`);
    }
  });

  test('chat template renders equal the reference exactly, and encode to the same ids', () => {
    assert.ok(tok.hasChatTemplate);
    for (const c of fixture.chats) {
      const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.addGenerationPrompt });
      assert.equal(text, c.text);
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), c.ids);
    }
  });

  test('round trip on any text whose bytes the vocabulary has', async () => {
    // SmolLM2's vocabulary lacks a few bytes (0xC0, 0xF1, some controls); like transformers and
    // llama.cpp the tokenizer drops those, so they are left out here.
    const vocabulary = new Set((await readGguf(realGguf!)).metadata['tokenizer.ggml.tokens'] as string[]);
    const byteChars = gpt2ByteChars();
    const representable = (s: string) => [...Buffer.from(s)].every((b) => vocabulary.has(byteChars[b]));
    fc.assert(
      fc.property(text(60).filter(representable), (s) => {
        assert.equal(tok.decode(tok.encode(s, { addSpecialTokens: false })), s);
      }),
      { numRuns: 200 },
    );
  });
});
