// Structured output through the official OpenAI Node SDK's helpers: a zod schema turned into a
// strict json_schema response format by zodResponseFormat, answered by the whole server on a tiny
// model (random weights: the grammar alone makes the answer valid), parsed back by the SDK.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

let full: FullServer;
let openai: OpenAI;

before(async () => {
  full = await startFullServer({ engine: { batchSize: 8 } });
  openai = new OpenAI({ baseURL: full.server.adapter.url, apiKey: 'unused', maxRetries: 0 });
});
after(() => full.close());

// Bounded strings and arrays: a model with random weights still finishes within max_tokens. The
// strings are ASCII patterns: the tiny model's tokens are single bytes, and XGrammar takes some byte
// sequences that are not UTF-8 (F4 B6 A6 9A, above U+10FFFF) for one character, which the text
// then shows as several U+FFFD, past a maxLength.
const Pet = z.object({
  name: z.string().regex(/^[A-Z][a-z]{0,11}$/),
  kind: z.enum(['cat', 'dog', 'fish']),
  age: z.number().int().min(0).max(30),
  tags: z.array(z.string().regex(/^[a-z]{1,8}$/)).max(2),
});

const request = {
  messages: [{ role: 'user' as const, content: 'Describe a pet.' }],
  response_format: zodResponseFormat(Pet, 'pet'),
  max_tokens: 200,
  temperature: 0,
};

test('chat.completions.parse with zodResponseFormat returns the parsed object', async () => {
  const r = await openai.chat.completions.parse({ model: full.model, ...request });
  const [choice] = r.choices;
  assert.equal(choice.finish_reason, 'stop');
  assert.equal(choice.message.refusal, null);
  const pet = choice.message.parsed;
  assert.ok(pet, choice.message.content ?? '');
  assert.deepEqual(Pet.parse(JSON.parse(choice.message.content as string)), pet);
  // Compact JSON with `, ` and `: ` between items, in the schema's order.
  assert.match(choice.message.content ?? '', /^\{"name": ".*", "kind": "(cat|dog|fish)", "age": \d+, "tags": \[.*\]\}$/s);
});

test('the SDK stream helper assembles the same parsed object', async () => {
  const whole = await openai.chat.completions.parse({ model: full.model, ...request });
  const stream = openai.chat.completions.stream({ model: full.model, ...request });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
  assert.deepEqual(final.choices[0].message.parsed, whole.choices[0].message.parsed);
});

test('n=3 sampled with a seed: every choice parses', async () => {
  const r = await openai.chat.completions.parse({ model: full.model, ...request, temperature: 1, n: 3, seed: 42 });
  assert.equal(r.choices.length, 3);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop', c.message.content ?? '');
    assert.ok(Pet.safeParse(c.message.parsed).success, c.message.content ?? '');
  }
});
