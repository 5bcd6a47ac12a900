// The REST API's operations as data: path, method, request body schema (the readers' own, from
// request-schemas/), answer, and whether the API key guards it. The OpenAPI document is built
// from this list.
import type { BodySchema, JsonSchema } from '../request-schemas/body-schema.ts';
import { CHAT_COMPLETION_BODY } from '../request-schemas/chat-completion-schema.ts';
import { COMPLETION_BODY } from '../request-schemas/completion-schema.ts';
import { LOAD_LORA_ADAPTER_BODY, UNLOAD_LORA_ADAPTER_BODY } from '../request-schemas/lora-schema.ts';
import { DETOKENIZE_BODY, DETOKENIZE_RESPONSE, TOKENIZE_BODY, TOKENIZE_RESPONSE } from '../request-schemas/tokenize-schema.ts';

export interface ApiAnswer {
  /** Content type → schema of the body. */
  content: Record<string, JsonSchema>;
  description: string;
}

export interface ApiOperation {
  path: string;
  method: 'get' | 'post';
  operationId: string;
  summary: string;
  tag: 'OpenAI' | 'vLLM' | 'Server';
  body?: BodySchema;
  /** Path parameters (name → description). */
  pathParams?: Record<string, string>;
  answer: ApiAnswer;
  /** Whether --api-key guards it. */
  guarded: boolean;
}

const json = (schema: JsonSchema) => ({ 'application/json': schema });
const text = { 'text/plain': { type: 'string' } satisfies JsonSchema };

const MODEL: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    object: { const: 'model' },
    created: { type: 'integer' },
    owned_by: { type: 'string' },
    root: { type: 'string', description: "The base model's id, or a LoRA adapter's directory." },
    parent: { type: ['string', 'null'], description: 'A LoRA adapter’s base model.' },
    max_model_len: { type: 'integer' },
  },
  required: ['id', 'object', 'created', 'owned_by'],
};

const GENERATION_ANSWER = (what: string): ApiAnswer => ({
  description: `The ${what} object, or with "stream": true server-sent events of chunks ending with "data: [DONE]".`,
  content: { ...json({ type: 'object' }), 'text/event-stream': { type: 'string' } },
});

export const API_OPERATIONS: readonly ApiOperation[] = [
  {
    path: '/v1/chat/completions',
    method: 'post',
    operationId: 'createChatCompletion',
    summary: 'Chat completion (messages rendered with the model’s chat template)',
    tag: 'OpenAI',
    body: CHAT_COMPLETION_BODY,
    answer: GENERATION_ANSWER('chat.completion'),
    guarded: true,
  },
  {
    path: '/v1/completions',
    method: 'post',
    operationId: 'createCompletion',
    summary: 'Text completion',
    tag: 'OpenAI',
    body: COMPLETION_BODY,
    answer: GENERATION_ANSWER('text_completion'),
    guarded: true,
  },
  {
    path: '/v1/models',
    method: 'get',
    operationId: 'listModels',
    summary: 'The served model and its loaded LoRA adapters',
    tag: 'OpenAI',
    answer: {
      description: 'The models.',
      content: json({ type: 'object', properties: { object: { const: 'list' }, data: { type: 'array', items: MODEL } } }),
    },
    guarded: true,
  },
  {
    path: '/v1/models/{model}',
    method: 'get',
    operationId: 'retrieveModel',
    summary: 'One model by id or alias',
    tag: 'OpenAI',
    pathParams: { model: 'The model id (it may contain slashes), an alias, or a LoRA adapter’s name.' },
    answer: { description: 'The model.', content: json(MODEL) },
    guarded: true,
  },
  {
    path: '/v1/load_lora_adapter',
    method: 'post',
    operationId: 'loadLoraAdapter',
    summary: 'Load a LoRA adapter at run time',
    tag: 'vLLM',
    body: LOAD_LORA_ADAPTER_BODY,
    answer: { description: 'A sentence saying it was added.', content: text },
    guarded: true,
  },
  {
    path: '/v1/unload_lora_adapter',
    method: 'post',
    operationId: 'unloadLoraAdapter',
    summary: 'Unload a LoRA adapter',
    tag: 'vLLM',
    body: UNLOAD_LORA_ADAPTER_BODY,
    answer: { description: 'A sentence saying it was removed.', content: text },
    guarded: true,
  },
  {
    path: '/tokenize',
    method: 'post',
    operationId: 'tokenize',
    summary: 'The token ids generation feeds the model for a prompt or messages',
    tag: 'vLLM',
    body: TOKENIZE_BODY,
    answer: { description: 'The tokens.', content: json(TOKENIZE_RESPONSE) },
    guarded: true,
  },
  {
    path: '/detokenize',
    method: 'post',
    operationId: 'detokenize',
    summary: 'The text of token ids',
    tag: 'vLLM',
    body: DETOKENIZE_BODY,
    answer: { description: 'The text.', content: json(DETOKENIZE_RESPONSE) },
    guarded: true,
  },
  {
    path: '/version',
    method: 'get',
    operationId: 'version',
    summary: 'The server’s version',
    tag: 'Server',
    answer: {
      description: 'The version.',
      content: json({ type: 'object', properties: { version: { type: 'string' } }, required: ['version'] }),
    },
    guarded: false,
  },
  {
    path: '/health',
    method: 'get',
    operationId: 'health',
    summary: 'Whether the model is loaded and the server takes requests (503 otherwise)',
    tag: 'Server',
    answer: {
      description: 'Ready.',
      content: json({
        type: 'object',
        properties: {
          status: { type: 'string' },
          running_requests: { type: 'integer' },
          waiting_requests: { type: 'integer' },
          error: { type: 'string' },
        },
        required: ['status'],
      }),
    },
    guarded: false,
  },
  {
    path: '/metrics',
    method: 'get',
    operationId: 'metrics',
    summary: 'Prometheus metrics',
    tag: 'Server',
    answer: { description: 'Prometheus text format.', content: { 'text/plain': { type: 'string' } } },
    guarded: false,
  },
  {
    path: '/openapi.json',
    method: 'get',
    operationId: 'openapi',
    summary: 'This document',
    tag: 'Server',
    answer: { description: 'OpenAPI 3.1.', content: json({ type: 'object' }) },
    guarded: false,
  },
];
