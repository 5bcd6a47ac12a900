// vLLM's POST /tokenize and /detokenize: every field tokenize-endpoints.ts reads. Tokenize takes
// either a `prompt` (vLLM's TokenizeCompletionRequest) or `messages` (its TokenizeChatRequest); the
// two share one body here, the fields of the other kind being refused by name.
import type { BodySchema, JsonSchema } from './body-schema.ts';
import { CHAT_MESSAGES, CHAT_TOOLS, TEMPLATE_OPTION_PROPERTIES } from './chat-completion-schema.ts';
import { MODEL_PROPERTY } from './sampling-schema.ts';

const tokenIds: JsonSchema = { type: 'array', items: { type: 'integer', minimum: 0 } };

export const TOKENIZE_BODY: BodySchema = {
  title: 'TokenizeRequest',
  type: 'object',
  examples: [
    { model: 'default', prompt: 'Hello, world' },
    { messages: [{ role: 'user', content: 'Hi' }], return_token_strs: true },
  ],
  oneOf: [{ required: ['prompt'] }, { required: ['messages'] }],
  properties: {
    model: MODEL_PROPERTY,
    prompt: { type: 'string', description: 'Text to tokenize as is. Give this or messages.' },
    messages: { ...CHAT_MESSAGES, description: 'A conversation, rendered with the chat template and tokenized. Give this or prompt.' },
    add_special_tokens: {
      type: 'boolean',
      description:
        'prompt: let the tokenizer add its special tokens (e.g. beginning-of-sequence); default true. messages: the template writes them; only false is accepted.',
    },
    add_generation_prompt: { type: 'boolean', default: true, description: 'messages: end with the opening of an assistant turn.' },
    tools: { ...CHAT_TOOLS, description: 'messages: functions shown to the model by the chat template.' },
    return_token_strs: { type: 'boolean', default: false, description: 'Also return each token as text.' },
    ...TEMPLATE_OPTION_PROPERTIES,
  },
};

export const TOKENIZE_RESPONSE: JsonSchema = {
  type: 'object',
  properties: {
    count: { type: 'integer', description: 'Number of tokens.' },
    max_model_len: { type: 'integer', description: 'The context length the server enforces for this model.' },
    tokens: tokenIds,
    token_strs: { type: 'array', items: { type: 'string' }, description: 'With return_token_strs: each token as text.' },
  },
  required: ['count', 'max_model_len', 'tokens'],
};

export const DETOKENIZE_BODY: BodySchema = {
  title: 'DetokenizeRequest',
  type: 'object',
  examples: [{ model: 'default', tokens: [72, 105] }],
  required: ['tokens'],
  properties: {
    model: MODEL_PROPERTY,
    tokens: { ...tokenIds, description: "Token ids of the model's vocabulary." },
  },
};

export const DETOKENIZE_RESPONSE: JsonSchema = {
  type: 'object',
  properties: { prompt: { type: 'string', description: 'The decoded text, special tokens included.' } },
  required: ['prompt'],
};
