// Structured output on the real default model (SmolLM2-135M-Instruct) through the whole server:
// 200 chat requests at concurrency 8 mixing JSON schemas, JSON objects, regular expressions,
// choices and free text, where every constrained output that ends by itself is valid and the free
// texts are what they are without the constrained requests beside them; streaming, n, logprobs and
// stop strings under a grammar; refusals of formats that do not compile, over REST and gRPC; and a
// large schema compiling while a free stream runs. Greedy wherever the output is compared.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Ajv, type ValidateFunction } from 'ajv';
import type { RunningServer } from '../src/cli/serve.ts';
import { GenerationErrorSchema } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { startDefaultModelServer } from './helpers/full-server.ts';

let server: RunningServer;
let base: string;

before(async () => {
  server = await startDefaultModelServer({ batchSize: 8, kvBudgetBytes: 512 * 1024 ** 2, prefixCacheBytes: 128 * 1024 ** 2 });
  base = server.adapter.url;
});
after(() => server?.close());

// ---- requests -------------------------------------------------------------------------------

interface ChatChoice {
  index: number;
  message: { content: string };
  finish_reason: string;
  logprobs: { content: { token: string; logprob: number; bytes: number[] }[] } | null;
}
interface ChatCompletion {
  choices: ChatChoice[];
  usage: { completion_tokens: number };
}
interface ErrorBody {
  error: { message: string; type: string; param: string | null };
}

async function post(path: string, body: object): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', ...body }),
  });
  return { status: res.status, json: await res.json() };
}

async function chat(body: object): Promise<ChatCompletion> {
  const r = await post('/chat/completions', body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as ChatCompletion;
}

/** A streamed chat completion: its text, finish reason and how many content chunks carried it. */
async function chatStream(body: object, onChunk?: (n: number) => void) {
  const res = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  let text = '';
  let finishReason: string | null = null;
  let chunks = 0;
  let buffer = '';
  let done = false;
  const decoder = new TextDecoder();
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data) as { choices: { delta: { content?: string }; finish_reason: string | null }[] };
      for (const c of chunk.choices) {
        if (c.delta.content) {
          text += c.delta.content;
          chunks++;
          onChunk?.(chunks);
        }
        if (c.finish_reason) finishReason = c.finish_reason;
      }
    }
  }
  assert.ok(done, 'the stream ends with [DONE]');
  return { text, finishReason, chunks };
}

async function refused(path: string, body: object, param: string, message?: RegExp): Promise<void> {
  const r = await post(path, body);
  const what = `${JSON.stringify(body).slice(0, 120)} → ${JSON.stringify(r.json)}`;
  assert.equal(r.status, 400, what);
  const { error } = r.json as ErrorBody;
  assert.equal(error.type, 'invalid_request_error', what);
  assert.equal(error.param, param, what);
  if (message) assert.match(error.message, message, what);
}

/** Runs `jobs` with at most `concurrency` in flight; results in the jobs' order. */
async function pool<T, R>(jobs: T[], concurrency: number, run: (job: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await run(jobs[i]);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

const user = (content: string) => [{ role: 'user', content }];
const jsonSchema = (name: string, schema: object) => ({ type: 'json_schema', json_schema: { name, schema, strict: true } });

// ---- formats --------------------------------------------------------------------------------
// Every string and array is bounded, so the model always has a way to finish.

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 16 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    role: { enum: ['admin', 'editor', 'viewer'] },
    hobbies: { type: 'array', items: { type: 'string', maxLength: 12 }, minItems: 1, maxItems: 2 },
  },
  required: ['name', 'age', 'role', 'hobbies'],
  additionalProperties: false,
};

const ORDER = {
  $defs: {
    item: {
      type: 'object',
      properties: {
        sku: { type: 'string', maxLength: 8 },
        quantity: { type: 'integer', minimum: 1, maximum: 9 },
        price: { type: 'number', minimum: 0, maximum: 500 },
      },
      required: ['sku', 'quantity', 'price'],
      additionalProperties: false,
    },
    customer: {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 16 }, vip: { type: 'boolean' } },
      required: ['name', 'vip'],
      additionalProperties: false,
    },
  },
  type: 'object',
  properties: {
    order_id: { type: 'integer', minimum: 1, maximum: 99999 },
    customer: { $ref: '#/$defs/customer' },
    items: { type: 'array', items: { $ref: '#/$defs/item' }, minItems: 1, maxItems: 2 },
    status: { enum: ['pending', 'shipped', 'delivered'] },
  },
  required: ['order_id', 'customer', 'items', 'status'],
  additionalProperties: false,
};

const WEATHER = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 16 },
    temperature_c: { type: 'number', minimum: -50, maximum: 60 },
    conditions: { type: 'string', enum: ['sunny', 'cloudy', 'rain', 'snow'] },
    forecast: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          day: { enum: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] },
          high: { type: 'integer', minimum: -50, maximum: 60 },
        },
        required: ['day', 'high'],
        additionalProperties: false,
      },
      minItems: 1,
      maxItems: 2,
    },
  },
  required: ['city', 'temperature_c', 'conditions', 'forecast'],
  additionalProperties: false,
};

const VERDICT = {
  type: 'object',
  properties: {
    answer: { enum: ['yes', 'no'] },
    confidence: { type: 'number', minimum: 0, maximum: 1 },
    reason: { type: 'string', maxLength: 24 },
  },
  required: ['answer', 'confidence', 'reason'],
  additionalProperties: false,
};

const SCHEMAS: { name: string; schema: object; prompts: string[] }[] = [
  {
    name: 'person',
    schema: PERSON,
    prompts: ['Invent a fictional person.', 'Describe a software engineer named Ada.', 'Create a profile for a chess player.'],
  },
  {
    name: 'order',
    schema: ORDER,
    prompts: ['Describe a customer order for two books.', 'Create an order at a coffee shop.', 'Record a purchase of headphones.'],
  },
  {
    name: 'weather',
    schema: WEATHER,
    prompts: ['What is the weather in Paris?', 'Give a short forecast for Tokyo.', 'How is the weather in Oslo in winter?'],
  },
  { name: 'verdict', schema: VERDICT, prompts: ['Is the Earth round?', 'Can penguins fly?', 'Is water wet?'] },
];

const REGEXES: { pattern: string; prompts: string[] }[] = [
  { pattern: String.raw`\d{4}-\d{2}-\d{2}`, prompts: ['When was the Eiffel Tower finished? Answer with a date.', "What is today's date?"] },
  {
    pattern: String.raw`[a-z0-9._]{1,16}@[a-z0-9]{1,12}\.(com|org|net)`,
    prompts: ['What is the support email of Example Corp?', 'Give me an email address for Alice.'],
  },
  { pattern: String.raw`([01]\d|2[0-3]):[0-5]\d`, prompts: ['At what time does the train leave?'] },
  { pattern: String.raw`\+1-\d{3}-\d{3}-\d{4}`, prompts: ['What is the phone number of the pizza place?'] },
];

const CHOICES: { choices: string[]; prompt: string }[] = [
  { choices: ['yes', 'no'], prompt: 'Is the sky blue?' },
  { choices: ['positive', 'negative', 'neutral'], prompt: 'Classify the sentiment: "I love this movie!"' },
  { choices: ['Paris', 'London', 'Berlin', 'Madrid'], prompt: 'What is the capital of France?' },
  { choices: ['red', 'green', 'blue'], prompt: 'What color is grass?' },
  { choices: ['cat', 'dog', 'bird', 'fish'], prompt: 'Which animal barks?' },
];

const JSON_OBJECT_SYSTEM = 'You reply with one short JSON object.';
const JSON_OBJECT_PROMPTS = [
  'Return a JSON object with the keys "name" and "age" for a fictional person.',
  'Give the capital of France as a JSON object with the key "capital".',
  'What is the largest planet? Answer as JSON with the key "planet".',
  'Output a JSON object with a "greeting" key.',
  'Name a fruit in JSON with the key "fruit".',
  'Give the boiling point of water in Celsius as JSON with key "celsius".',
];

const FREE_PROMPTS = [
  'Write a haiku about the sea.',
  'What is the capital of Italy?',
  'Tell me a joke.',
  'Explain photosynthesis briefly.',
  'Name three fruits.',
  'How do airplanes fly?',
  'What is 12 times 12?',
  'Describe a sunset.',
];

const ajv = new Ajv({ allErrors: true });
const validators = new Map<string, ValidateFunction>(SCHEMAS.map((s) => [s.name, ajv.compile(s.schema)]));

type Check = (text: string) => string | undefined;

/** Where JSON text has whitespace other than one space after each `,` and `:` (outside strings). */
function spacingProblem(text: string): string | undefined {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (/\s/.test(ch) && !(ch === ' ' && (text[i - 1] === ',' || text[i - 1] === ':'))) return `whitespace at ${i}`;
    else if ((ch === ',' || ch === ':') && text[i + 1] !== ' ') return `no space after ${ch} at ${i}`;
  }
  return undefined;
}

function schemaCheck(name: string): Check {
  const validate = validators.get(name) as ValidateFunction;
  return (text) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return `not JSON: ${(e as Error).message}`;
    }
    return validate(value) ? spacingProblem(text) : ajv.errorsText(validate.errors);
  };
}

const jsonObjectCheck: Check = (text) => {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? spacingProblem(text) : 'not an object';
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
};

const regexCheck =
  (pattern: string): Check =>
  (text) =>
    new RegExp(`^(?:${pattern})$`).test(text) ? undefined : `does not match /${pattern}/`;

const choiceCheck =
  (choices: string[]): Check =>
  (text) =>
    choices.includes(text) ? undefined : `not one of ${JSON.stringify(choices)}`;

interface Job {
  kind: 'json_schema' | 'json_object' | 'regex' | 'choice' | 'free';
  body: object;
  check?: Check;
}

/** The i-th request of the mix: kinds interleaved, each kind cycling through its variants. */
function mixedJobs(count: number): Job[] {
  // 4 schema, 2 json_object, 5 regex, 5 choice, 4 free in every 20.
  const cycle = 'SCROFSCRFSCROSCRFCRF';
  const seen = { S: 0, C: 0, R: 0, O: 0, F: 0 };
  const jobs: Job[] = [];
  for (let i = 0; i < count; i++) {
    const k = cycle[i % cycle.length] as keyof typeof seen;
    const n = seen[k]++;
    if (k === 'S') {
      const s = SCHEMAS[n % SCHEMAS.length];
      const prompt = s.prompts[Math.floor(n / SCHEMAS.length) % s.prompts.length];
      jobs.push({
        kind: 'json_schema',
        body: { messages: user(prompt), temperature: 0, max_tokens: 300, response_format: jsonSchema(s.name, s.schema) },
        check: schemaCheck(s.name),
      });
    } else if (k === 'O') {
      const prompt = JSON_OBJECT_PROMPTS[n % JSON_OBJECT_PROMPTS.length];
      jobs.push({
        kind: 'json_object',
        body: {
          messages: [{ role: 'system', content: JSON_OBJECT_SYSTEM }, ...user(prompt)],
          temperature: 0,
          max_tokens: 200,
          response_format: { type: 'json_object' },
        },
        check: jsonObjectCheck,
      });
    } else if (k === 'R') {
      const r = REGEXES[n % REGEXES.length];
      const prompt = r.prompts[Math.floor(n / REGEXES.length) % r.prompts.length];
      // Both spellings of a regex: vLLM's older guided_regex and its structured_outputs object.
      const format = n % 2 === 0 ? { guided_regex: r.pattern } : { structured_outputs: { regex: r.pattern } };
      jobs.push({
        kind: 'regex',
        body: { messages: user(prompt), temperature: 0, max_tokens: 48, ...format },
        check: regexCheck(r.pattern),
      });
    } else if (k === 'C') {
      const c = CHOICES[n % CHOICES.length];
      const format = n % 2 === 0 ? { guided_choice: c.choices } : { structured_outputs: { choice: c.choices } };
      jobs.push({
        kind: 'choice',
        body: { messages: user(c.prompt), temperature: 0, max_tokens: 16, ...format },
        check: choiceCheck(c.choices),
      });
    } else {
      const prompt = FREE_PROMPTS[n % FREE_PROMPTS.length];
      jobs.push({ kind: 'free', body: { messages: user(`${prompt} (${n})`), temperature: 0, max_tokens: 16 } });
    }
  }
  return jobs;
}

// ---- tests ----------------------------------------------------------------------------------

test('200 mixed requests at concurrency 8: constrained outputs are valid, free outputs unchanged', async () => {
  const jobs = mixedJobs(200);
  const free = jobs.filter((j) => j.kind === 'free');
  // The free requests alone first: greedy, so the mix must give each the same text.
  const alone = await pool(free, 8, (j) => chat(j.body));
  const mixed = await pool(jobs, 8, (j) => chat(j.body));

  const invalid: string[] = [];
  const byLength: Record<string, number> = {};
  const counts: Record<string, number> = {};
  let freeIndex = 0;
  let tokens = 0;
  jobs.forEach((job, i) => {
    const r = mixed[i];
    tokens += r.usage.completion_tokens;
    const [c] = r.choices;
    counts[job.kind] = (counts[job.kind] ?? 0) + 1;
    if (job.kind === 'free') {
      const expected = alone[freeIndex++].choices[0];
      assert.equal(c.message.content, expected.message.content, `free request ${i} differs beside constrained ones`);
      assert.equal(c.finish_reason, expected.finish_reason);
      return;
    }
    if (c.finish_reason === 'length') {
      byLength[job.kind] = (byLength[job.kind] ?? 0) + 1;
      return;
    }
    assert.equal(c.finish_reason, 'stop', `request ${i}`);
    const problem = job.check?.(c.message.content);
    if (problem) invalid.push(`request ${i} (${job.kind}): ${problem}: ${JSON.stringify(c.message.content)}`);
  });
  const constrained = jobs.length - free.length;
  const cut = Object.values(byLength).reduce((a, b) => a + b, 0);
  console.log(
    `structured mix: ${JSON.stringify(counts)}, ${tokens} completion tokens; cut by max_tokens: ${cut} of ${constrained} ${JSON.stringify(byLength)}`,
  );
  assert.deepEqual(invalid, []);
  assert.ok(cut < constrained * 0.05, `${cut} of ${constrained} constrained outputs were cut by max_tokens`);
});

test('a streamed json_schema answer says what the non-streamed one says', async () => {
  const body = {
    messages: user('Describe a customer order for two books.'),
    temperature: 0,
    max_tokens: 300,
    response_format: jsonSchema('order', ORDER),
  };
  const whole = (await chat(body)).choices[0];
  const streamed = await chatStream(body);
  assert.equal(whole.finish_reason, 'stop');
  assert.equal(schemaCheck('order')(whole.message.content), undefined, whole.message.content);
  assert.equal(streamed.text, whole.message.content);
  assert.equal(streamed.finishReason, 'stop');
  assert.ok(streamed.chunks > 1);
});

test('n=3 sampled with a seed: every choice is valid', async () => {
  const body = {
    messages: user('Invent a fictional person.'),
    n: 3,
    seed: 1234,
    temperature: 0.8,
    max_tokens: 300,
    response_format: jsonSchema('person', PERSON),
  };
  const r = await chat(body);
  assert.deepEqual(
    r.choices.map((c) => c.index),
    [0, 1, 2],
  );
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop', c.message.content);
    assert.equal(schemaCheck('person')(c.message.content), undefined, c.message.content);
  }
  // Seeded: the same request gives the same choices.
  assert.deepEqual(
    (await chat(body)).choices.map((c) => c.message.content),
    r.choices.map((c) => c.message.content),
  );
});

test('logprobs of a json_schema answer: one entry per token, spelling the answer', async () => {
  const r = await chat({
    messages: user('Is the Earth round?'),
    temperature: 0,
    max_tokens: 200,
    logprobs: true,
    top_logprobs: 2,
    response_format: jsonSchema('verdict', VERDICT),
  });
  const [c] = r.choices;
  assert.equal(c.finish_reason, 'stop');
  assert.equal(schemaCheck('verdict')(c.message.content), undefined, c.message.content);
  const entries = c.logprobs?.content ?? [];
  assert.equal(entries.length, r.usage.completion_tokens);
  for (const e of entries) {
    assert.ok(Number.isFinite(e.logprob) && e.logprob <= 0, `${e.token}: ${e.logprob}`);
  }
  // The entries spell the answer; the last is the end-of-sequence token the grammar allowed at its end.
  const bytes = entries.slice(0, -1).flatMap((e) => e.bytes);
  assert.equal(Buffer.from(bytes).toString('utf8'), c.message.content);
  assert.equal(entries.at(-1)?.token, '<|im_end|>');
});

test('stop strings apply to a regex-constrained output', async () => {
  const pattern = String.raw`\d{4}-\d{2}-\d{2}`;
  const chatBody = { messages: user("What is today's date?"), temperature: 0, max_tokens: 48, guided_regex: pattern };
  const full = (await chat(chatBody)).choices[0].message.content;
  assert.match(full, /^\d{4}-\d{2}-\d{2}$/);
  const cut = (await chat({ ...chatBody, stop: ['-'] })).choices[0];
  assert.equal(cut.message.content, full.slice(0, full.indexOf('-')));
  assert.equal(cut.finish_reason, 'stop');

  // /v1/completions with the structured_outputs spelling and a stop string in the last part.
  const completion = { prompt: 'The meeting is on', temperature: 0, max_tokens: 48, structured_outputs: { regex: ` ${pattern}` } };
  const r1 = await post('/completions', completion);
  assert.equal(r1.status, 200, JSON.stringify(r1.json));
  const text = (r1.json as { choices: { text: string; finish_reason: string }[] }).choices[0].text;
  assert.match(text, /^ \d{4}-\d{2}-\d{2}$/);
  const stop = text.slice(-2);
  const r2 = await post('/completions', { ...completion, stop: [stop] });
  const [c2] = (r2.json as { choices: { text: string; finish_reason: string }[] }).choices;
  assert.equal(c2.text, text.slice(0, text.indexOf(stop)));
  assert.equal(c2.finish_reason, 'stop');
});

test('an EBNF grammar constrains a completion', async () => {
  const grammar = 'root ::= "The answer is " ("yes" | "no" | "maybe") "."';
  const r = await post('/completions', { prompt: 'Is the sky green?', temperature: 0, max_tokens: 32, guided_grammar: grammar });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const [c] = (r.json as { choices: { text: string; finish_reason: string }[] }).choices;
  assert.match(c.text, /^The answer is (yes|no|maybe)\.$/);
  assert.equal(c.finish_reason, 'stop');
});

test('formats that cannot be used are refused with 400 naming the parameter; the server still serves', async () => {
  const messages = user('Hello');
  await refused('/chat/completions', { messages, response_format: jsonSchema('bogus', { type: 'bogus' }) }, 'response_format', /bogus/);
  await refused('/chat/completions', { messages, guided_json: { type: 'bogus' } }, 'guided_json', /bogus/);
  await refused('/chat/completions', { messages, guided_regex: '[a-z' }, 'guided_regex');
  await refused('/completions', { prompt: 'x', structured_outputs: { regex: 'a(b' } }, 'structured_outputs');
  await refused('/chat/completions', { messages, guided_grammar: 'root ::= undefined_rule' }, 'guided_grammar');
  await refused('/chat/completions', { messages, guided_choice: [] }, 'guided_choice');
  await refused('/chat/completions', { messages, response_format: { type: 'xml' } }, 'response_format', /xml/);
  // Two formats at once: the error names one of them and the message both.
  const two = await post('/chat/completions', { messages, guided_regex: 'a', guided_choice: ['a', 'b'] });
  assert.equal(two.status, 400);
  const { error } = two.json as ErrorBody;
  assert.ok(['guided_regex', 'guided_choice'].includes(error.param as string), error.param ?? 'null');
  assert.match(error.message, /guided_regex/);
  assert.match(error.message, /guided_choice/);
  await refused(
    '/chat/completions',
    { messages, response_format: { type: 'json_object' }, guided_json: { type: 'object' } },
    'guided_json',
  );

  // A format request and a free one are both still served.
  const ok = await chat({ messages: user('Is the sky blue?'), temperature: 0, max_tokens: 8, guided_choice: ['yes', 'no'] });
  assert.ok(['yes', 'no'].includes(ok.choices[0].message.content));
  const free = await chat({ messages: user('What is the capital of France?'), temperature: 0, max_tokens: 16 });
  assert.match(free.choices[0].message.content, /Paris/);
});

test('gRPC: a JSON schema that does not compile is INVALID_ARGUMENT naming sampling.json_schema', async () => {
  const client = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://${server.grpcTarget}` }));
  const request = {
    prompt: { input: { case: 'text' as const, value: 'Hello' } },
    sampling: { maxTokens: 8, structuredOutput: { case: 'jsonSchema' as const, value: '{"type": "bogus"}' } },
  };
  for (const call of [
    () => client.complete(request),
    async () => {
      for await (const _ of client.generateStream(request));
    },
  ]) {
    const err = await call().then(
      () => assert.fail('the request should be refused'),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.InvalidArgument, err.message);
    const [detail] = err.findDetails(GenerationErrorSchema);
    assert.equal(detail?.field, 'sampling.json_schema', err.message);
    assert.match(err.rawMessage, /json_schema/);
  }
  // A schema that compiles is answered with an instance of it.
  const r = await client.complete({
    prompt: { input: { case: 'chat', value: { messages: [{ role: 'user', content: 'Is water wet?' }] } } },
    sampling: { temperature: 0, maxTokens: 200, structuredOutput: { case: 'jsonSchema', value: JSON.stringify(VERDICT) } },
  });
  assert.equal(schemaCheck('verdict')(r.text), undefined, r.text);
});

test('a large schema compiles while a free stream runs; the stream finishes as it would alone', async () => {
  const freeBody = { messages: user('Tell me a long story about a dragon.'), temperature: 0, max_tokens: 64, ignore_eos: true };
  const alone = (await chat(freeBody)).choices[0];
  // 400 object variants, each with its own keys: a grammar far larger than the ones above (it takes
  // the compiler a while), whose instances are short.
  const variants = Array.from({ length: 400 }, (_, i) => ({
    type: 'object',
    properties: { [`kind_${i}`]: { const: `variant_${i}` }, [`value_${i}`]: { type: 'integer', minimum: 0, maximum: 99 } },
    required: [`kind_${i}`, `value_${i}`],
    additionalProperties: false,
  }));
  const large = { anyOf: variants };
  const validate = ajv.compile(large);
  let compiled: Promise<ChatCompletion> | undefined;
  let chunksWhileCompiling = 0;
  let compiling = false;
  const stream = chatStream(freeBody, (n) => {
    if (n === 1) {
      compiling = true;
      compiled = chat({ messages: user('Pick a record.'), temperature: 0, max_tokens: 200, response_format: jsonSchema('large', large) });
      compiled.then(() => {
        compiling = false;
      });
    } else if (compiling) chunksWhileCompiling++;
  });
  const streamed = await stream;
  assert.equal(streamed.text, alone.message.content);
  assert.equal(streamed.finishReason, 'length');
  assert.ok(compiled, 'the large-schema request was sent');
  const r = (await compiled).choices[0];
  assert.equal(r.finish_reason, 'stop');
  assert.ok(validate(JSON.parse(r.message.content)), `${r.message.content}: ${ajv.errorsText(validate.errors)}`);
  console.log(`large schema: the free stream sent ${chunksWhileCompiling} chunks while the large-schema request was in flight`);
});

/** A schema of `depth` definitions, each holding an optional $ref to the next. */
function refChain(depth: number): object {
  const defs = Object.fromEntries(
    Array.from({ length: depth }, (_, i) => [
      `d${i}`,
      {
        type: 'object',
        properties: {
          [`f${i}`]: { type: 'integer', minimum: 0, maximum: 9 },
          next: i + 1 < depth ? { $ref: `#/$defs/d${i + 1}` } : { type: 'null' },
        },
        required: [`f${i}`],
        additionalProperties: false,
      },
    ]),
  );
  return { $defs: defs, type: 'object', properties: { head: { $ref: '#/$defs/d0' } }, required: ['head'], additionalProperties: false };
}

// Last: a compile that breaks XGrammar retires its worker; the formats after it compile in a new one.
test('deep $ref chains are compiled or refused, and formats sent after them still compile', async () => {
  for (const depth of [30, 40, 100, 300]) {
    const r = await post('/chat/completions', {
      messages: user('Fill in the record.'),
      temperature: 0,
      max_tokens: 100,
      response_format: jsonSchema(`chain_${depth}`, refChain(depth)),
    });
    if (r.status === 400) assert.equal((r.json as ErrorBody).error.param, 'response_format');
    else assert.equal(r.status, 200, JSON.stringify(r.json));
  }
  // Formats not compiled before in this server.
  const schema = {
    type: 'object',
    properties: { n: { type: 'integer', minimum: 0, maximum: 9 } },
    required: ['n'],
    additionalProperties: false,
  };
  const r1 = await chat({ messages: user('Pick a digit.'), temperature: 0, max_tokens: 50, response_format: jsonSchema('digit', schema) });
  assert.match(r1.choices[0].message.content, /^\{"n": \d\}$/);
  const r2 = await chat({
    messages: user('When does the shop open?'),
    temperature: 0,
    max_tokens: 20,
    guided_regex: String.raw`[0-2]\d:[0-5]\d`,
  });
  assert.match(r2.choices[0].message.content, /^[0-2]\d:[0-5]\d$/);
});
