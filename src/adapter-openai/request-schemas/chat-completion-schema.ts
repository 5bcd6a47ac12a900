// POST /v1/chat/completions: every field chat-request.ts reads.
import { type BodySchema, type JsonSchema, notSupported } from './body-schema.ts';
import { MODEL_PROPERTY, SAMPLING_PROPERTIES, STRUCTURED_OUTPUT_PROPERTIES } from './sampling-schema.ts';

const textContent: JsonSchema = {
  anyOf: [
    { type: 'string' },
    {
      type: 'array',
      items: { type: 'object', properties: { type: { const: 'text' }, text: { type: 'string' } }, required: ['type', 'text'] },
    },
  ],
  description: 'Text, or an array of text parts (joined by newlines). Other content types are refused.',
};

const toolCall: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    type: { const: 'function' },
    function: { type: 'object', properties: { name: { type: 'string' }, arguments: { type: 'string' } }, required: ['name', 'arguments'] },
  },
  required: ['function'],
};

export const CHAT_MESSAGES: JsonSchema = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    properties: {
      role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
      content: { anyOf: [textContent, { type: 'null' }] },
      tool_calls: { type: 'array', items: toolCall, description: 'An assistant message’s tool calls.' },
      tool_call_id: { type: 'string', description: 'A tool message: the call it answers.' },
      name: { type: 'string' },
    },
    required: ['role'],
  },
  description: 'The conversation, rendered with the model’s chat template.',
};

export const CHAT_TOOLS: JsonSchema = {
  type: 'array',
  maxItems: 128,
  items: {
    type: 'object',
    properties: {
      type: { const: 'function' },
      function: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          description: { type: 'string' },
          parameters: { type: 'object' },
          strict: { type: 'boolean' },
        },
        required: ['name'],
      },
    },
    required: ['type', 'function'],
  },
  description: 'Functions the model may call, passed to the chat template.',
};

const TOOL_CHOICE: JsonSchema = {
  anyOf: [
    { enum: ['auto', 'none', 'required'] },
    { type: 'object', properties: { type: { const: 'function' }, function: { type: 'object', properties: { name: { type: 'string' } } } } },
  ],
};

/** vLLM's chat-template options this server refuses (chat completions and tokenize). */
export const TEMPLATE_OPTION_PROPERTIES: Record<string, JsonSchema> = {
  continue_final_message: notSupported({ type: 'boolean' }, 'continuing the final message (false is accepted).'),
  chat_template: notSupported({ type: 'string' }, "a request's own chat template; the server's (--chat-template) is used."),
};

export const CHAT_COMPLETION_BODY: BodySchema = {
  title: 'ChatCompletionRequest',
  type: 'object',
  examples: [{ model: 'default', messages: [{ role: 'user', content: 'Say hello.' }], max_completion_tokens: 32 }],
  required: ['messages'],
  properties: {
    model: MODEL_PROPERTY,
    messages: CHAT_MESSAGES,
    max_completion_tokens: { type: 'integer', minimum: 1, description: 'Most tokens to generate. Default: what the context leaves.' },
    max_tokens: { type: 'integer', minimum: 1, deprecated: true, description: 'Older name of max_completion_tokens.' },
    logprobs: { type: 'boolean', default: false, description: 'Return the log probability of each output token.' },
    top_logprobs: { type: 'integer', minimum: 0, maximum: 20, description: "Alternatives per token; needs 'logprobs'." },
    add_generation_prompt: { type: 'boolean', default: true, description: 'End the prompt with the opening of an assistant turn.' },
    tools: CHAT_TOOLS,
    tool_choice: TOOL_CHOICE,
    parallel_tool_calls: { type: 'boolean', default: false },
    ...SAMPLING_PROPERTIES,
    ...STRUCTURED_OUTPUT_PROPERTIES,
    functions: notSupported({ type: 'array' }, "the deprecated function calling; send 'tools'."),
    function_call: notSupported(
      { anyOf: [{ type: 'string' }, { type: 'object' }] },
      "the deprecated function calling; send 'tool_choice'.",
    ),
    audio: notSupported({ type: 'object' }, 'audio output.'),
    modalities: notSupported({ type: 'array', items: { type: 'string' } }, 'output other than ["text"].'),
    prediction: notSupported({ type: 'object' }, 'predicted outputs.'),
    reasoning_effort: notSupported({ type: 'string' }, 'the models served are not reasoning models.'),
    web_search_options: notSupported({ type: 'object' }, 'web search.'),
    min_tokens: notSupported({ type: 'integer' }, 'a minimum output length (0 is accepted).'),
    include_stop_str_in_output: notSupported({ type: 'boolean' }, 'the stop string is never part of the output (false is accepted).'),
    ...TEMPLATE_OPTION_PROPERTIES,
  },
};
