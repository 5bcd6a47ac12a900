import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError } from '../src/engine/sampling-params.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatTemplate, chatTemplateArgument } from '../src/text/chat-template.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { tinyByteLevelMetadata, tinySentencePieceMetadata } from './fixtures/tokenizer/tiny-vocabularies.ts';

// Mistral-Instruct's template (v0.1): alternation enforced with raise_exception, bos/eos tokens used.
const MISTRAL =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

// Llama 3's template: system handling, trim filter, a header per message, generation prompt.
const LLAMA3 =
  '{% set loop_messages = messages %}{% for message in loop_messages %}' +
  "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
  '{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}' +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const isMessagesError = (pattern: RegExp) => (e: Error) =>
  e instanceof InvalidArgumentError && e.field === 'messages' && pattern.test(e.message);

describe('ChatTemplate', () => {
  const mistral = new ChatTemplate(MISTRAL, { bos_token: '<s>', eos_token: '</s>' });

  test('renders with bos/eos tokens', () => {
    assert.equal(
      mistral.render(
        [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: 'Bye' },
        ],
        { addGenerationPrompt: true },
      ),
      '<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]',
    );
  });

  test("a template's raise_exception becomes an invalid messages argument with its message", () => {
    assert.throws(
      () =>
        mistral.render(
          [
            { role: 'user', content: 'a' },
            { role: 'user', content: 'b' },
          ],
          { addGenerationPrompt: true },
        ),
      isMessagesError(/Conversation roles must alternate/),
    );
    assert.throws(
      () =>
        mistral.render(
          [
            { role: 'user', content: 'a' },
            { role: 'system', content: 'x' },
          ],
          { addGenerationPrompt: true },
        ),
      isMessagesError(/Only user and assistant/),
    );
  });

  test('add_generation_prompt, trim and loop variables (Llama 3 template)', () => {
    const llama3 = new ChatTemplate(LLAMA3, { bos_token: '<|begin_of_text|>' });
    const messages = [
      { role: 'system', content: '  Be brief.  ' },
      { role: 'user', content: 'Hi' },
    ];
    const head =
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>';
    assert.equal(llama3.render(messages, { addGenerationPrompt: false }), head);
    assert.equal(llama3.render(messages, { addGenerationPrompt: true }), `${head}<|start_header_id|>assistant<|end_header_id|>\n\n`);
  });

  test('bad messages are refused before rendering, naming the message', () => {
    assert.throws(() => mistral.render([], { addGenerationPrompt: true }), isMessagesError(/non-empty list/));
    assert.throws(() => mistral.render('hi' as never, { addGenerationPrompt: true }), isMessagesError(/non-empty list/));
    assert.throws(() => mistral.render([null as never], { addGenerationPrompt: true }), isMessagesError(/messages\[0\] must be an object/));
    assert.throws(
      () =>
        mistral.render(
          [
            { role: 'user', content: 'a' },
            { role: 'wizard', content: 'b' },
          ],
          { addGenerationPrompt: true },
        ),
      isMessagesError(/messages\[1\]\.role must be one of .* got "wizard"/),
    );
    assert.throws(
      () => mistral.render([{ role: 'user', content: 7 as never }], { addGenerationPrompt: true }),
      isMessagesError(/messages\[0\]\.content must be a string/),
    );
  });

  test('a template error at render time is an invalid messages argument', () => {
    const t = new ChatTemplate("{{ messages[0]['content'].no_such_method() }}", {});
    assert.throws(
      () => t.render([{ role: 'user', content: 'x' }], { addGenerationPrompt: true }),
      isMessagesError(/chat template rejected/),
    );
  });

  test('a template that does not parse throws when constructed', () => {
    assert.throws(() => new ChatTemplate('{% if %}', {}));
  });
});

describe('Tokenizer.applyChatTemplate with a GGUF template', () => {
  test('uses tokenizer.chat_template, not the named variants, with the GGUF bos/eos strings', () => {
    const tok = Tokenizer.fromGguf(
      tinySentencePieceMetadata({
        'tokenizer.chat_template': MISTRAL,
        'tokenizer.chat_template.tool_use': 'tool template',
      }),
    );
    assert.ok(tok.hasChatTemplate);
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }]), '<s>[INST] Hi [/INST]');
  });

  test('addGenerationPrompt defaults to true', () => {
    const tok = Tokenizer.fromGguf(
      tinyByteLevelMetadata({
        'tokenizer.chat_template': '{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% endif %}',
      }),
    );
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'a' }]), 'a>');
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'a' }], { addGenerationPrompt: false }), 'a');
  });
});

describe("--chat-template: a file or the template itself (vLLM's load_chat_template)", () => {
  test('a readable file is read as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chat-template-'));
    try {
      const file = join(dir, 'template.jinja');
      writeFileSync(file, "{% for m in messages %}{{ m['content'] }}\\n{% endfor %}\n");
      assert.deepEqual(chatTemplateArgument(file), { source: "{% for m in messages %}{{ m['content'] }}\\n{% endfor %}\n", file });
      writeFileSync(file, '{% for m in messages %}');
      assert.throws(() => chatTemplateArgument(file), new RegExp(`the chat template in ${file} does not parse`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('otherwise the value is the template, its backslash escapes decoded', () => {
    const { source, file } = chatTemplateArgument("{% for m in messages %}{{ m['content'] }}\\n{% endfor %}\\t\\u00e9");
    assert.equal(file, undefined);
    assert.equal(source, "{% for m in messages %}{{ m['content'] }}\n{% endfor %}\té");
    assert.equal(new ChatTemplate(source, {}).render([{ role: 'user', content: 'a' }], { addGenerationPrompt: true }), 'a\n\té');
  });

  test('a template that does not parse, or a path that cannot be read, is refused with the reason', () => {
    assert.throws(() => chatTemplateArgument('{% if %}'), /^Error: the chat template does not parse: /);
    assert.throws(() => chatTemplateArgument('{{ messages'), /the chat template does not parse/);
    assert.throws(
      () => chatTemplateArgument('/no/such/template.jinja'),
      /"\/no\/such\/template\.jinja" looks like a file path, but it cannot be read \(ENOENT\)/,
    );
  });
});
