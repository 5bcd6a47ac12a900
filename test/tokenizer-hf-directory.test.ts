import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../src/engine/sampling-params.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { text } from './fixtures/tokenizer/text-arbitrary.ts';
import { gpt2ByteChars } from './fixtures/tokenizer/tiny-vocabularies.ts';

const root = mkdtempSync(join(tmpdir(), 'hf-tokenizer-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;

/** Writes a model directory; `undefined` leaves a file out. */
function modelDir(files: Record<string, unknown>): string {
  const dir = join(root, `model${dirCount++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    if (content === undefined) continue;
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/** A byte-level BPE tokenizer.json shaped like SmolLM2's: Digits + ByteLevel, ByteLevel decoder. */
function byteLevelTokenizerJson() {
  const vocab: Record<string, number> = {};
  SPECIALS.forEach((t, i) => (vocab[t] = i));
  gpt2ByteChars().forEach((c, b) => (vocab[c] = SPECIALS.length + b));
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

const CHATML =
  "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

describe('Tokenizer.fromHfDirectory, byte-level BPE', () => {
  const json = byteLevelTokenizerJson();
  const vocab = json.model.vocab;

  test('tokenizer.json + tokenizer_config.json + generation_config.json', async () => {
    const tok = await Tokenizer.fromHfDirectory(
      modelDir({
        'tokenizer.json': json,
        'tokenizer_config.json': {
          bos_token: '<|im_start|>',
          eos_token: { content: '<|im_end|>', special: true },
          pad_token: '<|im_end|>',
          add_bos_token: true,
          chat_template: [
            { name: 'default', template: CHATML },
            { name: 'tool_use', template: 'tools!' },
          ],
        },
        'generation_config.json': { bos_token_id: 1, eos_token_id: [2, 0] },
      }),
    );
    assert.equal(tok.vocabSize, Object.keys(vocab).length);
    assert.equal(tok.bosTokenId, 1);
    assert.deepEqual(tok.eosTokenIds, [0, 2]);
    assert.deepEqual(tok.encode('hello world 12'), [1, vocab.hello, vocab.Ġworld, vocab.Ġ, vocab['1'], vocab['2']]);
    assert.deepEqual(tok.encode('hello', { addSpecialTokens: false }), [vocab.hello]);
    assert.equal(tok.decode(tok.encode('hello world')), '<|im_start|>hello world');
    assert.equal(tok.decode(tok.encode('hello world'), { skipSpecialTokens: true }), 'hello world');
    assert.ok(tok.hasChatTemplate);
    assert.equal(
      tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }),
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.deepEqual(tok.warnings, []);
  });

  test('round trip through the HF pipeline', async () => {
    const tok = await Tokenizer.fromHfDirectory(modelDir({ 'tokenizer.json': json }));
    fc.assert(
      fc.property(text(30), (s) => {
        assert.equal(tok.decode(tok.encode(s, { addSpecialTokens: false })), s);
      }),
      { numRuns: 200 },
    );
  });

  test('without tokenizer_config the tokenizer.json post-processor decides; eos comes from generation_config', async () => {
    const tok = await Tokenizer.fromHfDirectory(modelDir({ 'tokenizer.json': json, 'generation_config.json': { eos_token_id: 2 } }));
    assert.deepEqual(tok.encode('hello'), [vocab.hello]);
    assert.equal(tok.bosTokenId, undefined);
    // <|endoftext|> and <|im_end|> are end-of-generation tokens by their text, as in llama.cpp.
    assert.deepEqual(tok.eosTokenIds, [0, 2]);
    assert.equal(tok.hasChatTemplate, false);
  });

  test('chat_template.jinja takes precedence over chat_template.json and tokenizer_config', async () => {
    const withJinja = await Tokenizer.fromHfDirectory(
      modelDir({
        'tokenizer.json': json,
        'tokenizer_config.json': { chat_template: 'from config' },
        'chat_template.json': { chat_template: 'from json' },
        'chat_template.jinja': '{{ bos_token }}from jinja {{ messages[0].content }}',
      }),
    );
    assert.equal(withJinja.applyChatTemplate([{ role: 'user', content: 'x' }]), 'from jinja x');
    const withJson = await Tokenizer.fromHfDirectory(
      modelDir({
        'tokenizer.json': json,
        'tokenizer_config.json': { chat_template: 'from config', bos_token: '<|im_start|>' },
        'chat_template.json': { chat_template: '{{ bos_token }}from json' },
      }),
    );
    assert.equal(withJson.applyChatTemplate([{ role: 'user', content: 'x' }]), '<|im_start|>from json');
  });

  test('add_eos_token rebuilds the post-processor as transformers does', async () => {
    const tok = await Tokenizer.fromHfDirectory(
      modelDir({
        'tokenizer.json': json,
        'tokenizer_config.json': { eos_token: '<|endoftext|>', add_bos_token: false, add_eos_token: true },
      }),
    );
    assert.deepEqual(tok.encode('hello'), [vocab.hello, 0]);
  });

  test('clear errors for missing or malformed files', async () => {
    await assert.rejects(Tokenizer.fromHfDirectory(modelDir({})), /tokenizer\.json does not exist/);
    await assert.rejects(Tokenizer.fromHfDirectory(modelDir({ 'tokenizer.json': '{ nope' })), /tokenizer\.json is not valid JSON/);
    await assert.rejects(
      Tokenizer.fromHfDirectory(modelDir({ 'tokenizer.json': { ...json, model: { type: 'WordPiece', vocab: {} } } })),
      /model\.type "WordPiece" is not supported/,
    );
    await assert.rejects(
      Tokenizer.fromHfDirectory(modelDir({ 'tokenizer.json': json, 'generation_config.json': { eos_token_id: [2, 'x'] } })),
      /generation_config\.json: eos_token_id "x" is not a token id/,
    );
    await assert.rejects(
      Tokenizer.fromHfDirectory(modelDir({ 'tokenizer.json': json, 'tokenizer_config.json': { chat_template: 42 } })),
      /tokenizer_config\.json: chat_template must be a string or a list of named templates/,
    );
  });

  test('an unparsable chat template is reported when messages are sent', async () => {
    const tok = await Tokenizer.fromHfDirectory(
      modelDir({ 'tokenizer.json': json, 'tokenizer_config.json': { chat_template: '{% for %}' } }),
    );
    assert.equal(tok.hasChatTemplate, false);
    assert.match(tok.warnings.join('\n'), /chat template does not parse/);
    assert.throws(
      () => tok.applyChatTemplate([{ role: 'user', content: 'hi' }]),
      (e: Error) => e instanceof InvalidArgumentError && e.field === 'messages' && /does not parse/.test(e.message),
    );
  });

  test("--chat-template replaces the model's template (or gives one to a model without); the tool-call format is read from it", async () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const withTemplate = modelDir({ 'tokenizer.json': json, 'tokenizer_config.json': { chat_template: CHATML } });
    const location = (path: string) => ({ id: 'm', format: 'hf' as const, path });
    const model = await loadTokenizer(location(withTemplate));
    assert.equal(model.applyChatTemplate(messages), '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    assert.deepEqual(model.toolSupport, { format: 'hermes', templateHasTools: false });

    const mistralTools =
      "{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}{% for m in messages %}[INST]{{ m['content'] }}[/INST]{% endfor %}" +
      '{# calls: [TOOL_CALLS] #}';
    const overridden = await loadTokenizer(location(withTemplate), { chatTemplate: mistralTools });
    assert.equal(overridden.applyChatTemplate(messages), '[INST]hi[/INST]');
    assert.deepEqual(overridden.toolSupport, { format: 'mistral', templateHasTools: true });
    assert.equal(overridden.toolCallFormat, 'mistral');

    const without = modelDir({ 'tokenizer.json': json });
    assert.equal((await loadTokenizer(location(without))).hasChatTemplate, false);
    const given = await loadTokenizer(location(without), { chatTemplate: "{{ messages[0]['content'] }}!" });
    assert.equal(given.hasChatTemplate, true);
    assert.equal(given.applyChatTemplate(messages), 'hi!');
  });
});

describe('Tokenizer.fromHfDirectory, SentencePiece-style tokenizer.json (Metaspace, byte fallback)', () => {
  const pieces = [
    '<unk>',
    '<s>',
    '</s>',
    ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`),
    '▁',
    'h',
    'i',
    '▁h',
    '▁hi',
  ];
  const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
  const json = {
    added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, special: true, normalized: false })),
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: [
        ['▁', 'h'],
        ['▁h', 'i'],
      ],
    },
  };

  test('encodes with the prefix space and byte fallback; decodes without the prefix space', async () => {
    const tok = await Tokenizer.fromHfDirectory(
      modelDir({ 'tokenizer.json': json, 'tokenizer_config.json': { bos_token: '<s>', eos_token: '</s>' } }),
    );
    const ids = tok.encode('hi é');
    assert.deepEqual(ids, [1, vocab['▁hi'], vocab['▁'], vocab['<0xC3>'], vocab['<0xA9>']]);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'hi é');
    assert.equal(tok.decode(ids), '<s> hi é');
    assert.deepEqual([...tok.tokenBytes(vocab['<0xC3>'])], [0xc3]);
    assert.equal(tok.bosTokenId, 1);
    assert.deepEqual(tok.eosTokenIds, [2]); // </s> is eos; it is also on llama.cpp's list
  });
});
