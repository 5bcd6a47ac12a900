// The request schemas (src/adapter-openai/request-schemas/) and the body readers cannot drift: each
// reader, run on a minimal valid body, reads exactly the fields its schema lists (a field the
// schema lacks would be undocumented and counted as unknown while in use; a field the reader
// ignores would be documented but do nothing), and reading a field the schema lacks fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readChatBody } from '../src/adapter-openai/chat-request.ts';
import { readCompletionBody } from '../src/adapter-openai/completion-request.ts';
import { readLoadAdapterBody, readUnloadAdapterBody } from '../src/adapter-openai/lora-endpoints.ts';
import { API_OPERATIONS } from '../src/adapter-openai/openapi/api-operations.ts';
import { RequestBody } from '../src/adapter-openai/request-body.ts';
import { type BodySchema, knownFields } from '../src/adapter-openai/request-schemas/body-schema.ts';
import { CHAT_COMPLETION_BODY } from '../src/adapter-openai/request-schemas/chat-completion-schema.ts';
import { COMPLETION_BODY } from '../src/adapter-openai/request-schemas/completion-schema.ts';
import { LOAD_LORA_ADAPTER_BODY, UNLOAD_LORA_ADAPTER_BODY } from '../src/adapter-openai/request-schemas/lora-schema.ts';
import { DETOKENIZE_BODY, TOKENIZE_BODY } from '../src/adapter-openai/request-schemas/tokenize-schema.ts';
import { readDetokenizeBody, readTokenizeBody } from '../src/adapter-openai/tokenize-endpoints.ts';

const user = [{ role: 'user', content: 'x' }];

/** Each schema, its reader, and minimal bodies that take the reader through every branch that reads. */
const READERS: [BodySchema, (body: RequestBody) => unknown, unknown[]][] = [
  [CHAT_COMPLETION_BODY, readChatBody, [{ messages: user }]],
  [COMPLETION_BODY, readCompletionBody, [{ prompt: 'x' }]],
  [TOKENIZE_BODY, readTokenizeBody, [{ prompt: 'x' }, { messages: user }]],
  [DETOKENIZE_BODY, readDetokenizeBody, [{ tokens: [1] }]],
  [LOAD_LORA_ADAPTER_BODY, readLoadAdapterBody, [{ lora_name: 'a', lora_path: '/a' }]],
  [UNLOAD_LORA_ADAPTER_BODY, readUnloadAdapterBody, [{ lora_name: 'a' }]],
];

test('every reader reads exactly the fields its schema lists', () => {
  for (const [schema, read, bodies] of READERS) {
    for (const json of bodies) {
      const body = RequestBody.from(json, schema);
      read(body);
      assert.deepEqual([...body.fieldsRead()].sort(), [...knownFields(schema)].sort(), `${schema.title} on ${JSON.stringify(json)}`);
    }
  }
});

test('every schema with a reader is a request body of the OpenAPI document', () => {
  const documented = new Set(API_OPERATIONS.flatMap((op) => (op.body ? [op.body] : [])));
  for (const [schema] of READERS) assert.ok(documented.has(schema), schema.title);
  assert.equal(documented.size, READERS.length);
});

test('reading a field the schema does not list is a bug, not a silent read', () => {
  const body = RequestBody.from({ prompt: 'x' }, DETOKENIZE_BODY);
  assert.throws(() => body.value('prompt'), /does not list the field 'prompt'/);
  assert.throws(() => body.ignore('user'), /does not list the field 'user'/);
});

test('a required field of a schema is one of its properties', () => {
  for (const [schema] of READERS) {
    for (const name of schema.required ?? []) assert.ok(name in schema.properties, `${schema.title}.${name}`);
    for (const alt of schema.oneOf ?? []) for (const name of alt.required ?? []) assert.ok(name in schema.properties, name);
  }
});

test('each schema is valid JSON Schema 2020-12 (the dialect of OpenAPI 3.1) and accepts the minimal bodies', () => {
  const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
  for (const [schema, , bodies] of READERS) {
    const validate = ajv.compile(schema);
    for (const body of bodies) assert.ok(validate(body), `${schema.title}: ${ajv.errorsText(validate.errors)}`);
    assert.equal(validate({}), false, `${schema.title} requires something`);
    for (const example of schema.examples ?? []) {
      assert.ok(validate(example), `${schema.title} example: ${ajv.errorsText(validate.errors)}`);
      assert.ok(
        Object.keys(example as object).every((k) => k in schema.properties),
        `${schema.title} example uses known fields`,
      );
    }
  }
});
