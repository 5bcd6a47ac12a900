// Tool calling without a model: request validation, template detection, the prompt messages, the
// grammars (compiled and run by XGrammar itself over a small synthetic vocabulary) and the
// streaming parser of each format.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Template } from '@huggingface/jinja';
import type { CompiledGrammar, GrammarCompiler, TokenizerInfo } from '@mlc-ai/web-xgrammar';
import fc from 'fast-check';
import { loadXGrammar } from '../src/engine/grammar/xgrammar-module.ts';
import { InvalidArgumentError } from '../src/engine/sampling-params.ts';
import { ChatTemplate } from '../src/text/chat-template.ts';
import { renderToolCalls, spacedJson } from '../src/text/tool-calls/call-syntax.ts';
import { detectToolCallFormat } from '../src/text/tool-calls/template-format.ts';
import { defaultToolCallId, mistralToolCallId } from '../src/text/tool-calls/tool-call-id.ts';
import { ToolCallParser } from '../src/text/tool-calls/tool-call-parser.ts';
import { argumentsSchema, toolCallGrammar } from '../src/text/tool-calls/tool-grammar.ts';
import { messagesForToolTemplate, messagesWithToolPrompt } from '../src/text/tool-calls/tool-messages.ts';
import type { ParsedToolCall, ToolCallFormat, ToolChatMessage, ToolDefinition } from '../src/text/tool-calls/tool-types.ts';
import { TOOL_CALL_FORMATS } from '../src/text/tool-calls/tool-types.ts';
import { MAX_TOOLS, validateToolChoice, validateTools } from '../src/text/tool-calls/tool-validation.ts';

const WEATHER: ToolDefinition = {
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer' } },
    required: ['city'],
  },
};
const TIME: ToolDefinition = { name: 'get_time' };
const TOOLS = [WEATHER, TIME];

/** Ids 1, 2, 3… so that results compare equal. */
function counter(): () => string {
  let n = 0;
  return () => String(++n);
}

const isFieldError = (field: string, pattern: RegExp) => (e: unknown) =>
  e instanceof InvalidArgumentError && e.field === field && pattern.test(e.message);

describe('validateTools', () => {
  const fn = (f: Record<string, unknown>) => ({ type: 'function', function: f });

  test('absent tools are no tools', () => {
    assert.deepEqual(validateTools(undefined), []);
    assert.deepEqual(validateTools(null), []);
    assert.deepEqual(validateTools([]), []);
  });

  test('reads OpenAI function tools, dropping strict', () => {
    const parameters = { type: 'object', properties: { q: { type: 'string' } } };
    assert.deepEqual(validateTools([fn({ name: 'search', description: 'Web search', parameters, strict: true }), fn({ name: 'a-B_9' })]), [
      { name: 'search', description: 'Web search', parameters },
      { name: 'a-B_9' },
    ]);
    assert.deepEqual(validateTools([fn({ name: 'x', description: null, parameters: null })]), [{ name: 'x' }]);
    assert.deepEqual(validateTools([fn({ name: 'x', parameters: { properties: {} } })]), [{ name: 'x', parameters: { properties: {} } }]);
  });

  const bad: [string, unknown, RegExp][] = [
    ['a string', 'get_weather', /^tools must be a list/],
    ['an object', { type: 'function' }, /^tools must be a list/],
    ['an entry that is not an object', [1], /^tools\[0\] must be an object/],
    ['another type', [{ type: 'code_interpreter' }], /^tools\[0\]\.type must be 'function', got "code_interpreter"/],
    ['no type', [{ function: { name: 'x' } }], /^tools\[0\]\.type must be 'function', got nothing/],
    ['no function', [{ type: 'function' }], /^tools\[0\]\.function must be an object/],
    ['no name', [fn({})], /^tools\[0\]\.function\.name must be 1 to 64 letters/],
    ['an empty name', [fn({ name: '' })], /function\.name must be 1 to 64/],
    ['a name of 65 characters', [fn({ name: 'a'.repeat(65) })], /function\.name must be 1 to 64/],
    ['a name with a space', [fn({ name: 'get weather' })], /function\.name must be .*got "get weather"/],
    ['a name with a dot', [fn({ name: 'a.b' })], /function\.name must be/],
    ['a description that is not text', [fn({ name: 'x', description: 5 })], /description must be a string/],
    ['strict that is not a boolean', [fn({ name: 'x', strict: 'yes' })], /strict must be a boolean/],
    ['parameters that are a list', [fn({ name: 'x', parameters: [] })], /parameters must be a JSON Schema object/],
    ['parameters that are text', [fn({ name: 'x', parameters: '{}' })], /parameters must be a JSON Schema object/],
    ['parameters of another type', [fn({ name: 'x', parameters: { type: 'string' } })], /must describe an object .*"string"/],
    ['a repeated name', [fn({ name: 'x' }), fn({ name: 'y' }), fn({ name: 'x' })], /^tools\[2\]\.function\.name "x" is not unique/],
    ['too many tools', Array.from({ length: MAX_TOOLS + 1 }, (_, i) => fn({ name: `t${i}` })), /at most 128 tools, got 129/],
  ];
  for (const [what, tools, pattern] of bad) {
    test(`refuses ${what}`, () => assert.throws(() => validateTools(tools), isFieldError('tools', pattern)));
  }

  test('accepts 128 tools and 64-character names', () => {
    assert.equal(validateTools(Array.from({ length: MAX_TOOLS }, (_, i) => fn({ name: `t${i}` }))).length, MAX_TOOLS);
    assert.equal(validateTools([fn({ name: 'a'.repeat(64) })])[0].name.length, 64);
  });
});

describe('validateToolChoice', () => {
  test('defaults to auto with tools and none without', () => {
    assert.deepEqual(validateToolChoice(undefined, TOOLS), { mode: 'auto' });
    assert.deepEqual(validateToolChoice(null, TOOLS), { mode: 'auto' });
    assert.deepEqual(validateToolChoice(undefined, []), { mode: 'none' });
  });

  test('reads the modes and a named function', () => {
    for (const mode of ['none', 'auto', 'required'] as const) assert.deepEqual(validateToolChoice(mode, TOOLS), { mode });
    assert.deepEqual(validateToolChoice({ type: 'function', function: { name: 'get_time' } }, TOOLS), { function: 'get_time' });
  });

  test('without tools, none and auto mean no calls; a choice that asks for calls is an error', () => {
    for (const choice of ['none', 'auto']) assert.deepEqual(validateToolChoice(choice, []), { mode: 'none' });
    for (const choice of ['required', { type: 'function', function: { name: 'get_time' } }]) {
      assert.throws(
        () => validateToolChoice(choice, []),
        (e) => isFieldError('tool_choice', /^tool_choice requires tools$/)(e),
      );
    }
  });

  test('a named function must be one of the tools', () => {
    assert.throws(
      () => validateToolChoice({ type: 'function', function: { name: 'get_date' } }, TOOLS),
      isFieldError('tool_choice', /^tool_choice\.function\.name "get_date" is not one of the tools$/),
    );
  });

  test('refuses other shapes', () => {
    for (const choice of [
      'sometimes',
      1,
      true,
      {},
      { type: 'function' },
      { function: { name: 'get_time' } },
      { type: 'tool', function: { name: 'get_time' } },
    ]) {
      assert.throws(
        () => validateToolChoice(choice, TOOLS),
        isFieldError('tool_choice', /^tool_choice must be 'none', 'auto', 'required' or/),
      );
    }
  });
});

// Chat templates, cut to what the detection reads.
const SMOLLM2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// Qwen2.5-Instruct's template (the system-message default shortened).
const QWEN25 = `{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}`;

// Pieces of Llama 3.1's and Mistral v0.3's templates.
const LLAMA31 = `{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if builtin_tools is defined or tools is not none %}{{- "Environment: ipython\\n" }}{%- endif %}
{%- for message in messages %}{%- if 'tool_calls' in message %}{%- set tool_call = message.tool_calls[0].function %}
{%- if builtin_tools is defined and tool_call.name in builtin_tools %}{{- "<|python_tag|>" + tool_call.name }}
{%- else %}{{- '{"name": "' + tool_call.name + '", ' }}{{- '"parameters": ' }}{{- tool_call.arguments | tojson }}{{- "}" }}{%- endif %}
{%- elif message.role == "tool" or message.role == "ipython" %}{{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}{%- endif %}{%- endfor %}`;
const MISTRAL_V03 = `{%- for message in loop_messages %}{%- if message["role"] == "user" %}
{%- if tools is not none and (message == user_messages[-1]) %}{{- "[AVAILABLE_TOOLS] [" }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{{- "[/AVAILABLE_TOOLS]" }}{%- endif %}
{%- elif message.tool_calls is defined and message.tool_calls is not none %}{{- "[TOOL_CALLS] [" }}
{%- elif message["role"] == "tool" %}{{- '[TOOL_RESULTS] {"content": ' + message.content|string + ", " }}{%- endif %}{%- endfor %}`;

describe('detectToolCallFormat', () => {
  test('no template, or a ChatML template without tools: hermes, described in the system message', () => {
    assert.deepEqual(detectToolCallFormat(undefined), { format: 'hermes', templateHasTools: false });
    assert.deepEqual(detectToolCallFormat(SMOLLM2), { format: 'hermes', templateHasTools: false });
  });

  test('reads the format the template writes calls in', () => {
    assert.deepEqual(detectToolCallFormat(QWEN25), { format: 'hermes', templateHasTools: true });
    assert.deepEqual(detectToolCallFormat(LLAMA31), { format: 'llama3_json', templateHasTools: true });
    assert.deepEqual(detectToolCallFormat(MISTRAL_V03), { format: 'mistral', templateHasTools: true });
  });

  test('only the tools variable itself counts as tool support', () => {
    const has = (source: string) => detectToolCallFormat(source).templateHasTools;
    assert.equal(has('{{ "<tools>" }}{% for m in messages %}{{ m.content }}{% endfor %}'), false);
    assert.equal(has('{% if xml_tools %}{{ xml_tools }}{% endif %}'), false);
    assert.equal(has('{% if message.tools %}x{% endif %}'), false);
    assert.equal(has('Some tools are described here: tools'), false);
    assert.equal(has('{%- if tools is defined and tools %}x{% endif %}'), true);
    assert.equal(has('{{ tools | tojson }}'), true);
    assert.equal(has('{% for t in tools %}{{ t.name }}{% endfor %}'), true);
  });

  test('Llama markers without the tools variable', () => {
    assert.deepEqual(detectToolCallFormat('{{ "<|python_tag|>" }}'), { format: 'llama3_json', templateHasTools: false });
    assert.deepEqual(detectToolCallFormat('{% if m.role == "ipython" %}x{% endif %}'), { format: 'llama3_json', templateHasTools: false });
  });
});

const CONVERSATION: ToolChatMessage[] = [
  { role: 'user', content: 'Weather in Paris and the time?' },
  {
    role: 'assistant',
    content: '',
    toolCalls: [
      { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { id: 'call_2', name: 'get_time', arguments: '{}' },
    ],
  },
  { role: 'tool', content: '{"temp": 21}', toolCallId: 'call_1', name: 'get_weather' },
  { role: 'tool', content: '12:00', toolCallId: 'call_2', name: 'get_time' },
  { role: 'user', content: 'Thanks' },
];

describe('messagesWithToolPrompt', () => {
  test('describes the tools in a new system message, writes calls and results into plain roles', () => {
    const out = messagesWithToolPrompt(CONVERSATION, TOOLS, 'hermes');
    assert.equal(out.length, 5);
    assert.equal(out[0].role, 'system');
    assert.equal(
      out[0].content,
      'You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. ' +
        "You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. " +
        'Here are the available tools:\n<tools>\n' +
        '{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": ' +
        '{"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}\n' +
        '{"type": "function", "function": {"name": "get_time"}}\n</tools>\n' +
        'For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n' +
        'The results of the calls come back to you within <tool_response></tool_response> XML tags.',
    );
    assert.deepEqual(out.slice(1), [
      { role: 'user', content: 'Weather in Paris and the time?' },
      {
        role: 'assistant',
        content:
          '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
      },
      { role: 'user', content: '<tool_response>\n{"temp": 21}\n</tool_response>\n<tool_response>\n12:00\n</tool_response>' },
      { role: 'user', content: 'Thanks' },
    ]);
  });

  test('merges into the first system message and keeps the assistant text before its calls', () => {
    const out = messagesWithToolPrompt(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Checking.', toolCalls: [{ id: 'a', name: 'get_time', arguments: '{}' }] },
      ],
      [TIME],
      'hermes',
    );
    assert.equal(out.length, 3);
    assert.match(out[0].content, /^Be brief\.\n\nYou are a function calling AI model\./);
    assert.equal(out[2].content, 'Checking.\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>');
  });

  test('an empty system message is replaced; no tools add no system message', () => {
    const out = messagesWithToolPrompt(
      [
        { role: 'system', content: '' },
        { role: 'user', content: 'Hi' },
      ],
      [TIME],
      'hermes',
    );
    assert.match(out[0].content, /^You are a function calling AI model\./);
    assert.deepEqual(messagesWithToolPrompt([{ role: 'user', content: 'Hi' }], [], 'hermes'), [{ role: 'user', content: 'Hi' }]);
  });

  test('a user message after a tool result stays its own turn', () => {
    const out = messagesWithToolPrompt(
      [
        { role: 'tool', content: 'a' },
        { role: 'user', content: 'b' },
        { role: 'tool', content: 'c' },
      ],
      [],
      'hermes',
    );
    assert.deepEqual(out, [
      { role: 'user', content: '<tool_response>\na\n</tool_response>' },
      { role: 'user', content: 'b' },
      { role: 'user', content: '<tool_response>\nc\n</tool_response>' },
    ]);
  });

  test('teaches and writes the other formats in their own syntax', () => {
    const llama = messagesWithToolPrompt(CONVERSATION, TOOLS, 'llama3_json');
    assert.match(llama[0].content, /\{"name": <function-name>, "parameters": <args-json-object>\}/);
    assert.equal(llama[2].content, '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {}}');
    const mistral = messagesWithToolPrompt(CONVERSATION, TOOLS, 'mistral');
    assert.match(mistral[0].content, /\[TOOL_CALLS\]\[\{"name": <function-name>, "arguments": <args-json-object>\}\]/);
    assert.equal(
      mistral[2].content,
      '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]',
    );
  });

  test("renders with SmolLM2's template, which knows no tools", () => {
    const template = new ChatTemplate(SMOLLM2, {});
    const text = template.render(messagesWithToolPrompt(CONVERSATION, TOOLS, 'hermes'), { addGenerationPrompt: true });
    assert.match(text, /^<\|im_start\|>system\nYou are a function calling AI model\./);
    assert.match(
      text,
      /<\|im_start\|>user\n<tool_response>\n\{"temp": 21\}\n<\/tool_response>\n<tool_response>\n12:00\n<\/tool_response><\|im_end\|>\n/,
    );
    assert.ok(text.endsWith('<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n'));
  });
});

describe('messagesForToolTemplate', () => {
  test('gives calls and results the shape transformers gives templates', () => {
    assert.deepEqual(messagesForToolTemplate(CONVERSATION), [
      { role: 'user', content: 'Weather in Paris and the time?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } },
          { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: {} } },
        ],
      },
      { role: 'tool', content: '{"temp": 21}', tool_call_id: 'call_1', name: 'get_weather' },
      { role: 'tool', content: '12:00', tool_call_id: 'call_2', name: 'get_time' },
      { role: 'user', content: 'Thanks' },
    ]);
  });

  test('arguments that are not a JSON object stay text', () => {
    const [m] = messagesForToolTemplate([
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'a', name: 'f', arguments: 'not json' },
          { id: 'b', name: 'f', arguments: '[1]' },
        ],
      },
    ]);
    assert.deepEqual(
      m.tool_calls?.map((c) => c.function.arguments),
      ['not json', '[1]'],
    );
  });

  test("renders with Qwen2.5's template as the model saw calls in training", () => {
    const text = new Template(QWEN25).render({
      messages: messagesForToolTemplate(CONVERSATION),
      tools: TOOLS.map((t) => ({ type: 'function', function: t })),
      add_generation_prompt: true,
    });
    assert.match(text, /<tools>\n\{"type": "function", "function": \{"name": "get_weather", "description": "Current weather in a city", /);
    assert.match(
      text,
      /<\|im_start\|>assistant\n<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "Paris"\}\}\n<\/tool_call>\n<tool_call>\n\{"name": "get_time", "arguments": \{\}\}\n<\/tool_call><\|im_end\|>\n/,
    );
    assert.match(
      text,
      /<\|im_start\|>user\n<tool_response>\n\{"temp": 21\}\n<\/tool_response>\n<tool_response>\n12:00\n<\/tool_response><\|im_end\|>\n/,
    );
  });
});

describe('call syntax', () => {
  test('spacedJson spaces as json.dumps and the templates do', () => {
    assert.equal(
      spacedJson({ a: [1, 'x', null, { b: true }], 'c"': 'd, e: f', u: undefined }),
      '{"a": [1, "x", null, {"b": true}], "c\\"": "d, e: f"}',
    );
  });
});

describe('tool call ids', () => {
  test('OpenAI style by default, nine characters for Mistral', () => {
    const ids = new Set(Array.from({ length: 200 }, defaultToolCallId));
    assert.equal(ids.size, 200);
    for (const id of ids) assert.match(id, /^call_[A-Za-z0-9]{24}$/);
    for (let i = 0; i < 50; i++) assert.match(mistralToolCallId(), /^[A-Za-z0-9]{9}$/);
  });
});

// ---------------------------------------------------------------------------------------------
// Grammars, run by XGrammar over a vocabulary of single printable characters and a few longer
// tokens (as real vocabularies have: markers as one token, tokens that straddle a tag's begin,
// its content and its end).

const MULTI_CHAR_TOKENS = [
  '<tool_call>',
  '</tool_call>',
  '[TOOL_CALLS]',
  '{"',
  '": "',
  '", "',
  '"}',
  '}}',
  '}\n',
  '{"name": "',
  ' [',
  '\n\n',
];
const VOCAB = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\n', ...MULTI_CHAR_TOKENS, '<|end|>'];
const STOP = VOCAB.length - 1;

/** Token ids for `text`: one per character, or longest match first (`greedy`). */
function tokenize(text: string, greedy: boolean): number[] {
  const ids: number[] = [];
  for (let i = 0; i < text.length; ) {
    let best = -1;
    VOCAB.forEach((token, id) => {
      if (id === STOP || !text.startsWith(token, i)) return;
      if (best < 0 || (greedy ? token.length > VOCAB[best].length : token.length < VOCAB[best].length)) best = id;
    });
    assert.ok(best >= 0, `no token for ${JSON.stringify(text[i])}`);
    ids.push(best);
    i += VOCAB[best].length;
  }
  return ids;
}

describe('toolCallGrammar', () => {
  const xgrammar = loadXGrammar();
  let info: TokenizerInfo;
  let compiler: GrammarCompiler;
  const compiled = new Map<string, CompiledGrammar>();

  before(async () => {
    info = await xgrammar.TokenizerInfo.createTokenizerInfo(VOCAB, 'raw', false, VOCAB.length, [STOP]);
    compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info);
  });
  after(() => {
    for (const c of compiled.values()) c.dispose();
    compiler.dispose();
    info.dispose();
  });

  async function compile(grammar: Record<string, unknown> | undefined): Promise<CompiledGrammar> {
    assert.ok(grammar, 'a grammar');
    const key = JSON.stringify(grammar);
    let c = compiled.get(key);
    if (!c) {
      c = await compiler.compileStructuralTag(grammar);
      compiled.set(key, c);
    }
    return c;
  }

  /** Whether the grammar takes the whole text and then the stop token, tokenized both ways. */
  async function accepts(grammar: Record<string, unknown> | undefined, text: string): Promise<boolean> {
    const c = await compile(grammar);
    const verdicts: boolean[] = [];
    for (const greedy of [false, true]) {
      const matcher = await xgrammar.GrammarMatcher.createGrammarMatcher(c);
      const ok = tokenize(text, greedy).every((id) => matcher.acceptToken(id)) && matcher.acceptToken(STOP) && matcher.isTerminated();
      matcher.dispose();
      verdicts.push(ok);
    }
    assert.equal(verdicts[0], verdicts[1], `both tokenizations of ${JSON.stringify(text)} get the same verdict`);
    return verdicts[0];
  }

  async function assertAccepts(grammar: Record<string, unknown> | undefined, ...texts: string[]) {
    for (const text of texts) assert.ok(await accepts(grammar, text), `accepts ${JSON.stringify(text)}`);
  }
  async function assertRejects(grammar: Record<string, unknown> | undefined, ...texts: string[]) {
    for (const text of texts) assert.ok(!(await accepts(grammar, text)), `rejects ${JSON.stringify(text)}`);
  }

  const hermesCall = (name: string, args: string) => `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;
  const PARIS = hermesCall('get_weather', '{"city": "Paris"}');
  const NOON = hermesCall('get_time', '{}');

  test('nothing to constrain: none, no tools, auto in llama3_json', () => {
    for (const format of TOOL_CALL_FORMATS) {
      assert.equal(toolCallGrammar(TOOLS, { mode: 'none' }, true, format), undefined);
      assert.equal(toolCallGrammar([], { mode: 'required' }, true, format), undefined);
      assert.equal(toolCallGrammar([], { mode: 'auto' }, true, format), undefined);
    }
    assert.equal(toolCallGrammar(TOOLS, { mode: 'auto' }, true, 'llama3_json'), undefined);
    assert.throws(() => toolCallGrammar(TOOLS, { function: 'get_date' }, true, 'hermes'), /not among the tools/);
  });

  test('the arguments schema is always an object', () => {
    assert.deepEqual(argumentsSchema(TIME), { type: 'object' });
    assert.deepEqual(argumentsSchema({ name: 'f', parameters: { properties: { a: {} } } }), { properties: { a: {} }, type: 'object' });
    assert.equal(argumentsSchema(WEATHER), WEATHER.parameters);
  });

  test('hermes, required: exactly one call of a tool, its arguments as its schema says', async () => {
    const g = toolCallGrammar(TOOLS, { mode: 'required' }, false, 'hermes');
    await assertAccepts(
      g,
      PARIS,
      NOON,
      hermesCall('get_weather', '{"city": "Paris", "days": 3}'),
      hermesCall('get_weather', '{"city":"Paris","days":3}'),
      hermesCall('get_weather', '{\n  "city": "Paris"\n}'),
      hermesCall('get_time', '{"anything": [1, {"goes": null}]}'),
    );
    await assertRejects(
      g,
      '',
      'Sure.',
      `Sure. ${PARIS}`,
      `${PARIS} Done.`,
      `${PARIS}\n${NOON}`,
      hermesCall('get_date', '{}'),
      hermesCall('get_weather', '{}'),
      hermesCall('get_weather', '{"city": 5}'),
      hermesCall('get_weather', '{"city": "Paris", "days": 1.5}'),
      hermesCall('get_weather', '{"city": "Paris", "country": "FR"}'),
      hermesCall('get_weather', '{"days": 3, "city": "Paris"}'),
      hermesCall('get_weather', ' {"city": "Paris"}'),
      hermesCall('get_time', '[]'),
      '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>',
      '<tool_call>\n{"arguments": {}, "name": "get_time"}\n</tool_call>',
    );
  });

  test('hermes, required and parallel: one or more calls, a newline apart', async () => {
    const g = toolCallGrammar(TOOLS, { mode: 'required' }, true, 'hermes');
    await assertAccepts(g, PARIS, `${PARIS}\n${NOON}`, `${NOON}\n${NOON}\n${PARIS}`);
    await assertRejects(g, '', `${PARIS}${NOON}`, `${PARIS}\n\n${NOON}`, `${PARIS}\nand ${NOON}`, `${PARIS}\n`);
  });

  test('hermes, a named function: one call of it only', async () => {
    const g = toolCallGrammar(TOOLS, { function: 'get_time' }, true, 'hermes');
    await assertAccepts(g, NOON);
    await assertRejects(g, PARIS, `${NOON}\n${NOON}`, '');
  });

  test('hermes, auto: free text, where <tool_call> starts a constrained call', async () => {
    const single = toolCallGrammar(TOOLS, { mode: 'auto' }, false, 'hermes');
    await assertAccepts(single, '', 'It is sunny.', 'a < b, <tool', PARIS, `Let me check.\n${PARIS}`);
    await assertRejects(single, hermesCall('get_date', '{}'), hermesCall('get_weather', '{}'), `${PARIS}\n${NOON}`, `${PARIS} Done.`);
    const parallel = toolCallGrammar(TOOLS, { mode: 'auto' }, true, 'hermes');
    await assertAccepts(parallel, `${PARIS}\n${NOON}`, `First ${PARIS} then ${NOON} done.`);
    await assertRejects(parallel, `${PARIS}\n${hermesCall('get_date', '{}')}`);
  });

  test('llama3_json, required: bare JSON with "parameters", several separated by "; "', async () => {
    const call = (name: string, args: string) => `{"name": "${name}", "parameters": ${args}}`;
    const single = toolCallGrammar(TOOLS, { mode: 'required' }, false, 'llama3_json');
    await assertAccepts(single, call('get_weather', '{"city": "Paris"}'), call('get_time', '{}'));
    await assertRejects(
      single,
      '{"name": "get_time", "arguments": {}}',
      call('get_date', '{}'),
      `${call('get_time', '{}')}; ${call('get_time', '{}')}`,
      `Hi ${call('get_time', '{}')}`,
    );
    const parallel = toolCallGrammar(TOOLS, { mode: 'required' }, true, 'llama3_json');
    await assertAccepts(parallel, `${call('get_time', '{}')}; ${call('get_weather', '{"city": "Rome"}')}`);
    await assertRejects(parallel, `${call('get_time', '{}')}\n${call('get_time', '{}')}`);
  });

  test('mistral, required: [TOOL_CALLS] and a JSON list, with or without a space', async () => {
    const call = (name: string, args: string) => `{"name": "${name}", "arguments": ${args}}`;
    const single = toolCallGrammar(TOOLS, { mode: 'required' }, false, 'mistral');
    await assertAccepts(single, `[TOOL_CALLS][${call('get_weather', '{"city": "Paris"}')}]`, `[TOOL_CALLS] [${call('get_time', '{}')}]`);
    await assertRejects(
      single,
      '[TOOL_CALLS][]',
      `[TOOL_CALLS]  [${call('get_time', '{}')}]`,
      `[TOOL_CALLS][${call('get_time', '{}')}, ${call('get_time', '{}')}]`,
      `[TOOL_CALLS][${call('get_date', '{}')}]`,
      `[TOOL_CALLS][${call('get_weather', '{"town": "Paris"}')}]`,
      `Hi [TOOL_CALLS][${call('get_time', '{}')}]`,
    );
    const parallel = toolCallGrammar(TOOLS, { mode: 'required' }, true, 'mistral');
    await assertAccepts(parallel, `[TOOL_CALLS][${call('get_time', '{}')}, ${call('get_weather', '{"city": "Oslo", "days": 2}')}]`);
    await assertRejects(parallel, `[TOOL_CALLS][${call('get_time', '{}')},${call('get_time', '{}')}]`);
  });

  test('mistral, auto: free text, then at most one list of calls that ends the output', async () => {
    const call = (name: string, args: string) => `{"name": "${name}", "arguments": ${args}}`;
    const g = toolCallGrammar(TOOLS, { mode: 'auto' }, true, 'mistral');
    await assertAccepts(
      g,
      'No tools needed.',
      `[TOOL_CALLS][${call('get_time', '{}')}]`,
      `Sure. [TOOL_CALLS] [${call('get_time', '{}')}, ${call('get_time', '{}')}]`,
    );
    await assertRejects(g, `[TOOL_CALLS][${call('get_date', '{}')}]`, `[TOOL_CALLS][${call('get_time', '{}')}] and more`);
    const named = toolCallGrammar(TOOLS, { function: 'get_weather' }, false, 'mistral');
    await assertAccepts(named, `[TOOL_CALLS][${call('get_weather', '{"city": "Oslo"}')}]`);
    await assertRejects(named, `[TOOL_CALLS][${call('get_time', '{}')}]`);
  });

  test('properties a schema does not name are allowed only when it says so', async () => {
    // (XGrammar then also takes a named property with another type, as an additional one.)
    const open = { name: 'f', parameters: { type: 'object', additionalProperties: true, properties: { a: { type: 'string' } } } };
    await assertAccepts(
      toolCallGrammar([open], { mode: 'required' }, false, 'hermes'),
      hermesCall('f', '{"a": "x"}'),
      hermesCall('f', '{"a": "x", "b": 2}'),
    );
    const closed = { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } } } };
    await assertAccepts(
      toolCallGrammar([closed], { mode: 'required' }, false, 'hermes'),
      hermesCall('f', '{"a": "x"}'),
      hermesCall('f', '{}'),
    );
    await assertRejects(
      toolCallGrammar([closed], { mode: 'required' }, false, 'hermes'),
      hermesCall('f', '{"a": "x", "b": 2}'),
      hermesCall('f', '{"a": 1}'),
    );
  });

  // What the grammar allows, the parser reads back: arguments of any string and integer, written as
  // each format writes them (renderToolCalls, the spacing of the templates), pass both.
  for (const format of TOOL_CALL_FORMATS) {
    test(`${format}: calls the grammar accepts parse back to the same arguments`, async () => {
      const g = toolCallGrammar(TOOLS, { mode: 'required' }, true, format);
      const args = fc.record(
        { city: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }), days: fc.integer({ min: -1000, max: 1000 }) },
        { requiredKeys: ['city'] },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(args, { minLength: 1, maxLength: 3 }), async (argsList) => {
          const calls = argsList.map((a) => ({ name: 'get_weather', arguments: JSON.stringify(a) }));
          const text = renderToolCalls(calls, format);
          assert.ok(await accepts(g, text), text);
          const parser = new ToolCallParser(format, counter());
          const out = [parser.push(text), parser.finish()];
          assert.equal(out.map((o) => o.content).join(''), '');
          assert.deepEqual(
            out.flatMap((o) => o.calls),
            calls.map((c, i) => ({ id: String(i + 1), ...c })),
          );
        }),
        { numRuns: 40 },
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The streaming parser.

interface Parsed {
  content: string;
  calls: ParsedToolCall[];
}

/** The whole output's content and calls, fed in the given pieces. */
function parse(format: ToolCallFormat, pieces: string | string[]): Parsed {
  const parser = new ToolCallParser(format, counter());
  const results = [...(typeof pieces === 'string' ? [pieces] : pieces).map((p) => parser.push(p)), parser.finish()];
  return { content: results.map((r) => r.content).join(''), calls: results.flatMap((r) => r.calls) };
}

const call = (id: number, name: string, args: string): ParsedToolCall => ({ id: String(id), name, arguments: args });

describe('ToolCallParser, hermes', () => {
  test('text without calls is all content', () => {
    assert.deepEqual(parse('hermes', 'The weather is fine. a < b > c'), { content: 'The weather is fine. a < b > c', calls: [] });
  });

  test('a call, its arguments made compact', () => {
    assert.deepEqual(
      parse('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "n": 1.0, "e": 1e2}}\n</tool_call>'),
      {
        content: '',
        calls: [call(1, 'get_weather', '{"city":"Paris","n":1,"e":100}')],
      },
    );
  });

  test('text before calls is content; whitespace between and around calls is not', () => {
    const text =
      'Let me check.\n<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {"x": [1]}}\n</tool_call>\n';
    assert.deepEqual(parse('hermes', text), { content: 'Let me check.\n', calls: [call(1, 'a', '{}'), call(2, 'b', '{"x":[1]}')] });
    assert.deepEqual(parse('hermes', '\n\n<tool_call>{"name": "a", "arguments": {}}</tool_call>  '), {
      content: '',
      calls: [call(1, 'a', '{}')],
    });
  });

  test('text after a call is content', () => {
    assert.deepEqual(parse('hermes', '<tool_call>{"name": "a", "arguments": {}}</tool_call>\nDone.'), {
      content: '\nDone.',
      calls: [call(1, 'a', '{}')],
    });
  });

  test('whitespace alone is content when no call came', () => {
    assert.deepEqual(parse('hermes', '\n '), { content: '\n ', calls: [] });
  });

  test('arguments as a JSON string, as "parameters", absent or null', () => {
    const out = parse('hermes', [
      '<tool_call>{"name": "a", "arguments": "{\\"x\\": 1}"}</tool_call>',
      '<tool_call>{"name": "b", "parameters": {"y": 2}}</tool_call>',
      '<tool_call>{"name": "c"}</tool_call>',
      '<tool_call>{"name": "d", "arguments": null}</tool_call>',
      '<tool_call>{"name": "e", "arguments": ""}</tool_call>',
    ]);
    assert.deepEqual(out, {
      content: '',
      calls: [call(1, 'a', '{"x":1}'), call(2, 'b', '{"y":2}'), call(3, 'c', '{}'), call(4, 'd', '{}'), call(5, 'e', '{}')],
    });
  });

  test('markup that is not a valid call comes back as content, with the whitespace before it', () => {
    for (const body of [
      '{"name": "a", "arguments": {',
      'not json',
      '{"arguments": {}}',
      '{"name": "", "arguments": {}}',
      '{"name": 5}',
      '{"name": "a", "arguments": [1]}',
      '{"name": "a", "arguments": "[1]"}',
      '[{"name": "a"}]',
    ]) {
      const markup = `<tool_call>${body}</tool_call>`;
      assert.deepEqual(parse('hermes', `\n${markup}`), { content: `\n${markup}`, calls: [] }, body);
    }
    assert.deepEqual(parse('hermes', '<tool_call>{"name": "a"}</tool_call>\n<tool_call>oops</tool_call>'), {
      content: '\n<tool_call>oops</tool_call>',
      calls: [call(1, 'a', '{}')],
    });
  });

  test('a call missing its closing tag at the end of the output counts when its JSON is complete', () => {
    for (const end of ['', '\n', '\n</tool_', '\n</tool_call']) {
      assert.deepEqual(
        parse('hermes', `Ok <tool_call>\n{"name": "a", "arguments": {"q": "</tool"}}${end}`),
        { content: 'Ok ', calls: [call(1, 'a', '{"q":"</tool"}')] },
        end,
      );
    }
    assert.deepEqual(parse('hermes', '<tool_call>\n{"name": "a", "argu'), { content: '<tool_call>\n{"name": "a", "argu', calls: [] });
  });

  test('holds back what could begin a marker, and only that', () => {
    const parser = new ToolCallParser('hermes', counter());
    assert.deepEqual(parser.push('Hello <tool'), { content: 'Hello ', calls: [] });
    assert.deepEqual(parser.push('box> <'), { content: '<toolbox> ', calls: [] });
    assert.deepEqual(parser.push('tool_call>{"name": "a", '), { content: '', calls: [] });
    assert.deepEqual(parser.push('"arguments": {}}</tool_call'), { content: '', calls: [] });
    assert.deepEqual(parser.push('>'), { content: '', calls: [call(1, 'a', '{}')] });
    assert.deepEqual(parser.push('\n'), { content: '', calls: [] });
    assert.deepEqual(parser.push('\nBye'), { content: '\n\nBye', calls: [] });
    assert.deepEqual(parser.finish(), { content: '', calls: [] });
    assert.throws(() => parser.push('x'), /after finish/);
  });

  test('ids come from the given generator, OpenAI style by default', () => {
    const [c] = new ToolCallParser('hermes').push('<tool_call>{"name": "a"}</tool_call>').calls;
    assert.match(c.id, /^call_[A-Za-z0-9]{24}$/);
    const [m] = new ToolCallParser('mistral', mistralToolCallId).push('[TOOL_CALLS][{"name": "a"}]').calls;
    assert.match(m.id, /^[A-Za-z0-9]{9}$/);
  });
});

describe('ToolCallParser, llama3_json', () => {
  test('an output that starts with an object is calls', () => {
    assert.deepEqual(parse('llama3_json', '{"name": "get_weather", "parameters": {"city": "Paris"}}'), {
      content: '',
      calls: [call(1, 'get_weather', '{"city":"Paris"}')],
    });
    assert.deepEqual(parse('llama3_json', '\n <|python_tag|>{"name": "a", "arguments": {"s": "}{;"}}'), {
      content: '',
      calls: [call(1, 'a', '{"s":"}{;"}')],
    });
  });

  test('several calls, separated by ";" or newlines', () => {
    const text = '{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}\n{"name": "c", "parameters": "{}"};';
    assert.deepEqual(parse('llama3_json', text), { content: '', calls: [call(1, 'a', '{}'), call(2, 'b', '{"x":1}'), call(3, 'c', '{}')] });
  });

  test('an output that starts otherwise is all text', () => {
    for (const text of ['Hello {"name": "a", "parameters": {}}', '  The answer.', '<|python_', '[{"name": "a", "parameters": {}}]']) {
      assert.deepEqual(parse('llama3_json', text), { content: text, calls: [] }, text);
    }
  });

  test('a JSON object that is not a call is text, all of the output when no call came before', () => {
    for (const text of [
      ' {"answer": 42}',
      '{"name": "Bob"}',
      '{"name": "a", "parameters": [1]}',
      '{"name": "a", "parameters": {',
      '<|python_tag|>brave_search.call(query="x")',
    ]) {
      assert.deepEqual(parse('llama3_json', text), { content: text, calls: [] }, text);
    }
  });

  test('text after calls is content, the separators before it are not', () => {
    assert.deepEqual(parse('llama3_json', '{"name": "a", "parameters": {}};\n The end. {"name": "b", "parameters": {}}'), {
      content: 'The end. {"name": "b", "parameters": {}}',
      calls: [call(1, 'a', '{}')],
    });
  });

  test('streams calls as their objects complete', () => {
    const parser = new ToolCallParser('llama3_json', counter());
    assert.deepEqual(parser.push('  '), { content: '', calls: [] });
    assert.deepEqual(parser.push('{"name": "a", "parameters": {"q": "}"'), { content: '', calls: [] });
    assert.deepEqual(parser.push('}}; {"name"'), { content: '', calls: [call(1, 'a', '{"q":"}"}')] });
    assert.deepEqual(parser.push(': "b", "parameters": {}}'), { content: '', calls: [call(2, 'b', '{}')] });
    assert.deepEqual(parser.finish(), { content: '', calls: [] });
  });
});

describe('ToolCallParser, mistral', () => {
  test('[TOOL_CALLS] and a JSON list', () => {
    const text = 'Sure.[TOOL_CALLS] [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": "{\\"y\\": 2}"}]';
    assert.deepEqual(parse('mistral', text), { content: 'Sure.', calls: [call(1, 'a', '{"x":1}'), call(2, 'b', '{"y":2}')] });
    assert.deepEqual(parse('mistral', '[TOOL_CALLS]{"name": "a", "arguments": {}}'), { content: '', calls: [call(1, 'a', '{}')] });
  });

  test('the newer name[ARGS]{...} form', () => {
    const text = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{}';
    assert.deepEqual(parse('mistral', text), {
      content: '',
      calls: [call(1, 'get_weather', '{"city":"Paris"}'), call(2, 'get_time', '{}')],
    });
  });

  test('a marker not followed by calls is content', () => {
    for (const text of [
      '[TOOL_CALLS] hello',
      '[TOOL_CALLS]',
      '[TOOL_CALLS][{"name": "a", "arguments": {}}, {"arguments": {}}]',
      '[TOOL_CALLS][]',
      '[TOOL_CALLS][{"name": "a", "arguments": {}}',
      '[TOOL_CALLS]get_time[ARG',
      '[TOOL_CALLS]get_time[ARGS]"x"',
      '[TOOL_CALLS]get time[ARGS]{}',
    ]) {
      assert.deepEqual(parse('mistral', text), { content: text, calls: [] }, text);
    }
  });

  test('text after a marker that is not markup is scanned again', () => {
    assert.deepEqual(parse('mistral', '[TOOL_CALLS]oops [TOOL_CALLS][{"name": "a"}]'), {
      content: '[TOOL_CALLS]oops ',
      calls: [call(1, 'a', '{}')],
    });
  });
});

// However the output is split into deltas, the parser gives the same content and calls.
describe('ToolCallParser, split anywhere', () => {
  const pieces: Record<ToolCallFormat, string[]> = {
    hermes: [
      'Hi',
      ' ',
      '\n',
      '<',
      '<tool',
      '<tool_call>',
      '</tool_call>',
      '{"name": "a", "arguments": {"k": "</tool_call>"}}',
      '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>',
      '{',
      '}',
      '"',
      'x',
    ],
    llama3_json: [
      '<|python_tag|>',
      '<|python',
      ' ',
      '\n',
      ';',
      '{"name": "a", "parameters": {"s": "{\\"}"}}',
      '{"name": "b", "arguments": {}}',
      '{"x": 1}',
      '{',
      '}',
      '"',
      'text',
      '\\',
    ],
    mistral: [
      '[TOOL_CALLS]',
      '[TOOL_',
      '[ARGS]',
      'get_time',
      '[{"name": "a", "arguments": {"s": "]"}}]',
      '{"name": "b", "arguments": {}}',
      '[',
      ']',
      '{',
      '}',
      ' ',
      '\n',
      'ok',
      '"',
    ],
  };

  for (const format of TOOL_CALL_FORMATS) {
    test(format, () => {
      const output = fc.array(fc.constantFrom(...pieces[format]), { maxLength: 14 }).map((p) => p.join(''));
      fc.assert(
        fc.property(output, fc.array(fc.nat(), { maxLength: 12 }), (text, cutSeeds) => {
          const cuts = [...new Set(cutSeeds.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const deltas = [0, ...cuts].map((start, i) => text.slice(start, [...cuts, text.length][i]));
          assert.deepEqual(parse(format, deltas), parse(format, text));
          // One character at a time, the finest split.
          assert.deepEqual(parse(format, [...text]), parse(format, text));
        }),
        { numRuns: 400 },
      );
    });
  }

  test('every well-formed call is found, and no call markup leaks into the content', () => {
    const markup = '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>';
    fc.assert(
      fc.property(fc.array(fc.constantFrom('text ', '\n', markup, '<tool_c'), { maxLength: 8 }), (parts) => {
        const out = parse('hermes', parts);
        assert.equal(out.calls.length, parts.filter((p) => p === markup).length);
        assert.ok(!out.content.includes('<tool_call>\n{'));
      }),
    );
  });
});
