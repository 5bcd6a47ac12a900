// Property-based fuzzing of the REST API (fast-check) against the whole server on a tiny model:
// thousands of malformed bodies (broken JSON, random bytes, invalid UTF-8, deep nesting), and
// valid bodies with one field set to something nasty (wrong types, huge and negative numbers,
// 1e999, NaN and Infinity as literals and as strings, empty and giant strings, lone surrogates).
// Every one is answered, with a 4xx unless it is a valid request; none gets a 5xx; the server and
// its engine process (the same pid) stay up, and a normal request works afterwards. The model's
// context is 128 tokens, so a request that does generate costs little.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

let full: FullServer;
let enginePid: number | undefined;

before(async () => {
  full = await startFullServer({ model: { contextLength: 128 }, engine: { batchSize: 8 } });
  enginePid = full.server.engine.pid;
});
after(() => full.close());

/** A request that takes longer than this hangs, as far as the test is concerned. */
const REQUEST_TIMEOUT_MS = 20_000;

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

async function send(path: string, body?: string | Uint8Array, method = 'POST'): Promise<Answer> {
  const res = await fetch(`${full.restBase}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** A 4xx must be an OpenAI error body; a 200 a completion (or an SSE stream that ends with [DONE]). */
function checkAnswer(answer: Answer, request: string): void {
  const where = `${answer.status} for ${request.slice(0, 300)}: ${answer.body.slice(0, 300)}`;
  assert.ok(answer.status < 500, where);
  if (answer.status >= 400) {
    const error = (JSON.parse(answer.body) as { error: { message: string; type: string } }).error;
    assert.equal(typeof error.message, 'string', where);
    assert.ok(error.message.length > 0, where);
    return;
  }
  assert.equal(answer.status, 200, where);
  if (answer.contentType.startsWith('text/event-stream')) {
    assert.ok(answer.body.endsWith('data: [DONE]\n\n'), where);
    assert.ok(!answer.body.includes('"server_error"'), where);
  } else {
    assert.ok(Array.isArray((JSON.parse(answer.body) as { choices: unknown[] }).choices), where);
  }
}

const ENDPOINTS = ['/v1/chat/completions', '/v1/completions'] as const;

/** JSON text nested `depth` levels deep. */
const deepNesting = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean())
  .map(([depth, arrays]) => (arrays ? '['.repeat(depth) + ']'.repeat(depth) : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`));

test('malformed bodies (not JSON, not an object, random bytes, deep nesting) get 400', async () => {
  const body = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
    fc.json({ maxDepth: 3 }).map((text) => text.slice(0, Math.max(0, text.length - 1))), // truncated
    deepNesting,
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ENDPOINTS), body, async (path, raw) => {
      const answer = await send(path, raw);
      const shown = typeof raw === 'string' ? raw : Buffer.from(raw).toString('hex');
      // A random JSON object could in principle be a valid request; none here is (no prompt).
      assert.equal(answer.status, 400, `${answer.status} for ${shown.slice(0, 200)}: ${answer.body.slice(0, 200)}`);
      checkAnswer(answer, shown);
    }),
    { numRuns: 700 },
  );
});

/** Values as JSON text, including what JSON.stringify cannot produce. */
const nastyValue: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.constantFrom(
    'NaN',
    'Infinity',
    '-Infinity',
    '1e999',
    '-1e999',
    '1e308',
    '-1e308',
    '5e-324',
    '-0',
    '9007199254740993',
    '-9223372036854775808',
    '2147483648',
    '-2147483649',
    '4294967296',
    '1.5',
    '-1',
    '0',
    'true',
    'null',
    '[]',
    '{}',
    '""',
  ),
  fc
    .constantFrom('NaN', 'Infinity', '-1', '', ' ', '\u0000', '\ud800', '\udfff\ud800', '1e999', 'default', 'text', 'user')
    .map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.integer({ min: 0, max: 300_000 }).map((n) => JSON.stringify('x'.repeat(n))),
  fc.integer({ min: 0, max: 5000 }).map((n) => JSON.stringify(Array.from({ length: n }, (_, i) => i))),
  deepNesting,
);

const CHAT_FIELDS = [
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'stream',
  'stream_options',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'seed',
  'user',
  'top_k',
  'min_p',
  'repetition_penalty',
  'ignore_eos',
  'stop_token_ids',
  'tools',
  'tool_choice',
  'response_format',
  'add_generation_prompt',
  'no_such_field',
];
const COMPLETION_FIELDS = [
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'stream',
  'stream_options',
  'echo',
  'logprobs',
  'suffix',
  'best_of',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'seed',
  'user',
  'top_k',
  'min_p',
  'repetition_penalty',
  'ignore_eos',
  'stop_token_ids',
  'no_such_field',
];

/** A valid body as JSON text fields, with `field` set to `value` (raw JSON text). */
function bodyWith(base: Record<string, string>, field: string, value: string): string {
  const fields = { ...base, [field]: value };
  return `{${Object.entries(fields)
    .map(([k, v]) => `${JSON.stringify(k)}:${v}`)
    .join(',')}}`;
}

test('valid requests with one field set to something nasty get 200 or a 4xx, never a 5xx or a hang', async () => {
  const chatBase = (stream: boolean) => ({
    model: '"default"',
    messages: '[{"role":"user","content":"hi"}]',
    max_tokens: '2',
    ...(stream ? { stream: 'true' } : {}),
  });
  const completionBase = (stream: boolean) => ({
    model: '"default"',
    prompt: '"hi"',
    max_tokens: '2',
    ...(stream ? { stream: 'true' } : {}),
  });
  // Fields inside a message too: role and content.
  const messageField = fc
    .tuple(fc.constantFrom('role', 'content', 'name', 'tool_calls'), nastyValue)
    .map(([key, value]) => ['messages', `[{"role":"user","content":"hi",${JSON.stringify(key)}:${value}}]`] as const);
  const request = fc.oneof(
    fc.tuple(
      fc.constant('/v1/chat/completions'),
      fc.boolean(),
      fc.oneof(fc.tuple(fc.constantFrom(...CHAT_FIELDS), nastyValue), messageField),
    ),
    fc.tuple(fc.constant('/v1/completions'), fc.boolean(), fc.tuple(fc.constantFrom(...COMPLETION_FIELDS), nastyValue)),
  );
  await fc.assert(
    fc.asyncProperty(request, async ([path, stream, [field, value]]) => {
      const base = path === '/v1/chat/completions' ? chatBase(stream) : completionBase(stream);
      const body = bodyWith(base, field, value);
      checkAnswer(await send(path, body), body);
    }),
    { numRuns: 1500 },
  );
});

test('invalid UTF-8 inside a JSON string gets 400', async () => {
  const invalidUtf8 = fc.constantFrom(
    [0xff],
    [0xc0, 0xaf],
    [0xe0, 0x80],
    [0xed, 0xa0, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xc3],
    [0x80],
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ENDPOINTS), invalidUtf8, fc.string({ maxLength: 10 }), async (path, bad, text) => {
      const field = path === '/v1/completions' ? '"prompt":"' : '"messages":[{"role":"user","content":"';
      const tail = path === '/v1/completions' ? '"}' : '"}]}';
      const body = Buffer.concat([
        Buffer.from(`{"model":"default",${field}${JSON.stringify(text).slice(1, -1)}`),
        Buffer.from(bad),
        Buffer.from(tail),
      ]);
      const answer = await send(path, body);
      assert.equal(answer.status, 400, answer.body);
      assert.match(answer.body, /not valid UTF-8/);
    }),
    { numRuns: 100 },
  );
});

test('any path and method gets an answer: 404, 405 or 200', async () => {
  const path = fc.oneof(
    fc.string({ maxLength: 40 }).map((s) => `/v1/models/${encodeURIComponent(s)}`),
    fc.webPath(),
    fc.constantFrom('/v1/models/%', '/v1/models/%E0%A4%A', '/health', '/metrics', '/v1/chat/completions', '/v1//completions'),
  );
  await fc.assert(
    fc.asyncProperty(path, fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'), async (p, method) => {
      const answer = await send(
        p.startsWith('/') ? p : `/${p}`,
        method === 'POST' || method === 'PUT' || method === 'PATCH' ? '{}' : undefined,
        method,
      );
      assert.ok(answer.status < 500 && answer.status !== 0, `${method} ${p}: ${answer.status} ${answer.body.slice(0, 200)}`);
    }),
    { numRuns: 200 },
  );
});

test('afterwards: the same engine process serves, and a normal request works', async () => {
  assert.equal(full.server.engine.pid, enginePid, 'the engine process never restarted');
  assert.equal(full.server.engine.restarts, 0);
  assert.equal((await send('/health', undefined, 'GET')).status, 200);
  const answer = await send(
    '/v1/chat/completions',
    JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, ignore_eos: true }),
  );
  assert.equal(answer.status, 200);
  assert.equal((JSON.parse(answer.body) as { usage: { completion_tokens: number } }).usage.completion_tokens, 3);
});
