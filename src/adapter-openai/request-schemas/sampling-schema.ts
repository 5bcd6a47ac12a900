// The fields chat completions and completions share: sampling (OpenAI's and vLLM's extensions),
// choices, streaming, structured output, and OpenAI's platform fields that change nothing here.
// Read by sampling-fields.ts and structured-output-fields.ts.
import { acceptedAndIgnored, type JsonSchema } from './body-schema.ts';

const stringOrStrings: JsonSchema = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const tokenIds: JsonSchema = { type: 'array', items: { type: 'integer' } };
const jsonSchemaValue: JsonSchema = {
  anyOf: [{ type: 'object' }, { type: 'boolean' }, { type: 'string' }],
  description: 'A JSON Schema (an object, or serialized as a string).',
};

export const SAMPLING_PROPERTIES: Record<string, JsonSchema> = {
  seed: { type: 'integer', description: 'Makes sampling reproducible; choice i of n uses seed + i.' },
  temperature: {
    type: 'number',
    minimum: 0,
    description: "Sampling temperature; 0 is greedy. Default: the model's generation config, else 1.",
  },
  top_p: {
    type: 'number',
    minimum: 0,
    maximum: 1,
    description: 'Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p.',
  },
  top_k: { type: 'integer', description: 'Keep the k most likely tokens (0 or -1: all).' },
  min_p: { type: 'number', minimum: 0, maximum: 1, description: "Drop tokens less likely than min_p times the top token's probability." },
  repetition_penalty: { type: 'number', description: 'Divides the logits of tokens already in the prompt or output (1: off).' },
  presence_penalty: { type: 'number', minimum: -2, maximum: 2 },
  frequency_penalty: { type: 'number', minimum: -2, maximum: 2 },
  logit_bias: {
    type: 'object',
    additionalProperties: { type: 'number', minimum: -100, maximum: 100 },
    description: 'Token id (as a string key) → bias added to its logit.',
  },
  stop: { ...stringOrStrings, description: 'Up to 4 strings; the output ends before the first match.' },
  stop_token_ids: { ...tokenIds, description: 'Token ids that end the output.' },
  ignore_eos: { type: 'boolean', description: 'Keep generating past end-of-sequence tokens.' },
  n: { type: 'integer', minimum: 1, maximum: 16, default: 1, description: 'Choices per prompt.' },
  stream: { type: 'boolean', default: false, description: 'Answer with server-sent events.' },
  stream_options: {
    type: 'object',
    properties: { include_usage: { type: 'boolean', description: 'Send a last chunk with the usage.' } },
    description: "Only with 'stream': true.",
  },
  prompt_cache_key: {
    type: 'string',
    description:
      'Names the prefix a group of requests shares (at most 256 bytes); sent on as x-prompt-cache-key metadata, which a balancer in front of several replicas routes on.',
  },
  user: acceptedAndIgnored({ type: 'string' }, 'identifies the end user on OpenAI’s platform.'),
  store: acceptedAndIgnored({ type: 'boolean' }, 'concerns OpenAI’s platform.'),
  metadata: acceptedAndIgnored({ type: 'object' }, 'concerns OpenAI’s platform.'),
  service_tier: acceptedAndIgnored({ type: 'string' }, 'concerns OpenAI’s platform.'),
};

export const STRUCTURED_OUTPUT_PROPERTIES: Record<string, JsonSchema> = {
  response_format: {
    type: 'object',
    properties: {
      type: { enum: ['text', 'json_object', 'json_schema'] },
      json_schema: {
        type: 'object',
        properties: { name: { type: 'string' }, schema: jsonSchemaValue, strict: { type: 'boolean' }, description: { type: 'string' } },
        required: ['name'],
      },
    },
    required: ['type'],
    description: 'Constrain the output to JSON (any object, or a JSON Schema). At most one structured-output field per request.',
  },
  structured_outputs: {
    type: 'object',
    properties: {
      json: jsonSchemaValue,
      regex: { type: 'string' },
      choice: { type: 'array', items: { type: 'string' }, minItems: 1 },
      grammar: { type: 'string', description: 'An EBNF (GBNF) grammar.' },
      json_object: { type: 'boolean' },
    },
    description: "vLLM's structured outputs: exactly one of json, regex, choice, grammar, json_object.",
  },
  guided_json: { ...jsonSchemaValue, description: "vLLM's older spelling of structured_outputs.json." },
  guided_regex: { type: 'string', description: "vLLM's older spelling of structured_outputs.regex." },
  guided_choice: {
    type: 'array',
    items: { type: 'string' },
    minItems: 1,
    description: "vLLM's older spelling of structured_outputs.choice.",
  },
  guided_grammar: { type: 'string', description: "vLLM's older spelling of structured_outputs.grammar." },
  guided_decoding_backend: acceptedAndIgnored({ type: 'string' }, 'this server has one grammar backend.'),
  guided_whitespace_pattern: acceptedAndIgnored({ type: 'string' }, 'this server emits compact JSON.'),
};

export const MODEL_PROPERTY: JsonSchema = {
  type: 'string',
  description:
    'The model id, one of its --served-model-name aliases, or a loaded LoRA adapter’s name. Unset or "default": the default model.',
};
