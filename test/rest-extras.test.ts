// The REST extras on the whole server (tiny model): vLLM's /tokenize and /detokenize (the tokens
// generation feeds the model, the context length, errors naming the parameter), GET /version, the
// OpenAPI document generated from the request schemas, the Swagger UI page served from the
// installed package, and the unknown-field policy (ignored with a log warning and a counter;
// refused with --strict-fields; known but unsupported fields still refused), and prompt_cache_key
// (checked, and sent on to the service as metadata).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startOpenAIAdapter, type OpenAIAdapter } from '../src/adapter-openai/adapter-server.ts';
import { COUNTED_UNKNOWN_FIELDS } from '../src/adapter-openai/unknown-fields.ts';
import { createLogger } from '../src/log/logger.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';
import { metricValue, scrape } from './helpers/prometheus-text.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';

const PACKAGE_VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

/** Log lines the server wrote, parsed. */
const logLines: Record<string, unknown>[] = [];
const logSink = { write: (line: string) => void logLines.push(JSON.parse(line)) };

let full: FullServer;
let rest: string;
let strict: OpenAIAdapter;
let openai: OpenAI;

before(async () => {
  full = await startFullServer({ logger: createLogger('warn', logSink) });
  rest = full.restBase;
  strict = await startOpenAIAdapter({ grpcTarget: full.server.grpcTarget, host: '127.0.0.1', port: 0, strictFields: true });
  openai = new OpenAI({ baseURL: full.server.adapter.url, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await strict?.close();
  await full?.close();
});

async function post(path: string, body: unknown, base = rest): Promise<Response> {
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function postJson(path: string, body: unknown, base = rest): Promise<Record<string, unknown>> {
  const r = await post(path, body, base);
  const json = (await r.json()) as Record<string, unknown>;
  assert.equal(r.status, 200, JSON.stringify(json));
  return json;
}

type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } };

async function expectError(status: number, path: string, body: unknown, param: string | null, base = rest): Promise<ErrorBody['error']> {
  const r = await post(path, body, base);
  const json = (await r.json()) as ErrorBody;
  assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${JSON.stringify(json)}`);
  assert.equal(json.error.param, param, json.error.message);
  assert.equal(typeof json.error.message, 'string');
  return json.error;
}

describe('/tokenize and /detokenize', () => {
  test('a prompt: the tokens a completion feeds the model, count and max_model_len', async () => {
    const prompt = 'The quick brown fox';
    const t = await postJson('/tokenize', { model: full.model, prompt });
    const tokens = t.tokens as number[];
    assert.equal(t.count, tokens.length);
    assert.equal(t.max_model_len, TEST_MODEL_SPEC.contextLength);
    assert.equal(t.token_strs, undefined);
    const completion = await openai.completions.create({ model: full.model, prompt, max_tokens: 1 });
    assert.equal(completion.usage?.prompt_tokens, t.count);
    // Token ids given to a completion are what the model was fed.
    const same = await openai.completions.create({ model: full.model, prompt: tokens, max_tokens: 1, temperature: 0 });
    const again = await openai.completions.create({ model: full.model, prompt, max_tokens: 1, temperature: 0 });
    assert.equal(same.choices[0].text, again.choices[0].text);
    // The model list reports the same context length; /v1/tokenize is the same route.
    const listed = await openai.models.retrieve(full.model);
    assert.equal((listed as unknown as { max_model_len: number }).max_model_len, t.max_model_len);
    assert.deepEqual(await postJson('/v1/tokenize', { prompt }), t);
  });

  test('round trip: detokenize gives the prompt back; token_strs spell it', async () => {
    const prompt = 'Hello, world! Ça va?';
    const t = await postJson('/tokenize', { prompt, add_special_tokens: false, return_token_strs: true });
    const strs = t.token_strs as string[];
    assert.equal(strs.length, t.count);
    const d = await postJson('/detokenize', { model: full.model, tokens: t.tokens });
    assert.deepEqual(Object.keys(d), ['prompt']);
    assert.equal(d.prompt, prompt);
    assert.deepEqual(await postJson('/v1/detokenize', { tokens: t.tokens }), d);
    assert.deepEqual(await postJson('/detokenize', { tokens: [] }), { prompt: '' });
    assert.deepEqual(await postJson('/tokenize', { prompt: '' }), { count: 0, max_model_len: t.max_model_len, tokens: [] });
  });

  test('messages: the chat template with and without the generation prompt, as chat completions feed it', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
    ];
    const withPrompt = await postJson('/tokenize', { messages });
    const without = await postJson('/tokenize', { messages, add_generation_prompt: false, add_special_tokens: false });
    const opening = await postJson('/detokenize', { tokens: (withPrompt.tokens as number[]).slice(without.count as number) });
    assert.equal(opening.prompt, '<|im_start|>assistant\n');
    assert.deepEqual((withPrompt.tokens as number[]).slice(0, without.count as number), without.tokens);
    const rendered = await postJson('/detokenize', { tokens: without.tokens });
    assert.equal(rendered.prompt, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n');
    const chat = await openai.chat.completions.create({
      model: full.model,
      messages: messages as OpenAI.ChatCompletionMessageParam[],
      max_tokens: 1,
    });
    assert.equal(chat.usage?.prompt_tokens, withPrompt.count);
    // Tools are passed to the template: the prompt changes (this template knows no tools, so
    // they are described in a system message).
    const tools = [{ type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } }];
    const withTools = await postJson('/tokenize', { messages, tools });
    assert.ok((withTools.count as number) > (withPrompt.count as number));
  });

  test('bad requests are 400 naming the parameter; an unknown model is 404; GET is 405', async () => {
    await expectError(400, '/tokenize', {}, 'prompt');
    await expectError(400, '/tokenize', { prompt: 5 }, 'prompt');
    await expectError(400, '/tokenize', { prompt: 'x', messages: [{ role: 'user', content: 'x' }] }, 'messages');
    await expectError(400, '/tokenize', { messages: [] }, 'messages');
    await expectError(400, '/tokenize', { messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role');
    await expectError(400, '/tokenize', { messages: [{ role: 'user', content: 'x' }], add_special_tokens: true }, 'add_special_tokens');
    await expectError(
      400,
      '/tokenize',
      { messages: [{ role: 'user', content: 'x' }], continue_final_message: true },
      'continue_final_message',
    );
    await expectError(400, '/tokenize', { messages: [{ role: 'user', content: 'x' }], chat_template: '{{ 1 }}' }, 'chat_template');
    await expectError(400, '/tokenize', { prompt: 'x', add_generation_prompt: true }, 'add_generation_prompt');
    await expectError(400, '/tokenize', { prompt: 'x', return_token_strs: 'yes' }, 'return_token_strs');
    await expectError(400, '/tokenize', { prompt: 'x'.repeat(100_000) }, 'prompt');
    await expectError(400, '/tokenize', [], null);
    const missing = await expectError(404, '/tokenize', { model: 'no-such-model', prompt: 'x' }, 'model');
    assert.equal(missing.code, 'model_not_found');
    await expectError(400, '/detokenize', {}, 'tokens');
    await expectError(400, '/detokenize', { tokens: 'abc' }, 'tokens');
    await expectError(400, '/detokenize', { tokens: [1, 2.5] }, 'tokens');
    await expectError(400, '/detokenize', { tokens: [2 ** 40] }, 'tokens');
    const outside = await expectError(400, '/detokenize', { tokens: [1, 99999] }, 'tokens');
    assert.match(outside.message, /^tokens: token id 99999 is outside the vocabulary/);
    await expectError(404, '/detokenize', { model: 'no-such-model', tokens: [1] }, 'model');
    const get = await fetch(`${rest}/tokenize`);
    assert.equal(get.status, 405);
  });
});

test('GET /version answers the package version', async () => {
  const r = await fetch(`${rest}/version`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(await r.json(), { version: PACKAGE_VERSION });
});

describe('/openapi.json and /docs', () => {
  type Doc = {
    openapi: string;
    info: { version: string };
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { $ref: string } }> } }>>;
    components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> };
  };

  test('an OpenAPI 3.1 document with every route and the request schemas', async () => {
    const r = await fetch(`${rest}/openapi.json`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    const doc = (await r.json()) as Doc;
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(doc.info.version, PACKAGE_VERSION);
    const routes: [string, string][] = [
      ['/v1/chat/completions', 'post'],
      ['/v1/completions', 'post'],
      ['/v1/models', 'get'],
      ['/v1/models/{model}', 'get'],
      ['/v1/load_lora_adapter', 'post'],
      ['/v1/unload_lora_adapter', 'post'],
      ['/tokenize', 'post'],
      ['/detokenize', 'post'],
      ['/version', 'get'],
      ['/health', 'get'],
      ['/metrics', 'get'],
      ['/openapi.json', 'get'],
    ];
    for (const [path, method] of routes) assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
    // Every $ref points at a schema the document has.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
    for (const ref of refs) assert.ok(doc.components.schemas[ref], ref);
    const bodyOf = (path: string) => {
      const ref = doc.paths[path].post.requestBody?.content['application/json'].schema.$ref ?? '';
      return doc.components.schemas[ref.split('/').pop() ?? ''];
    };
    const chat = bodyOf('/v1/chat/completions');
    for (const field of ['model', 'messages', 'temperature', 'tools', 'response_format', 'max_completion_tokens', 'reasoning_effort'])
      assert.ok(field in chat.properties, field);
    assert.deepEqual(chat.required, ['messages']);
    assert.ok('prompt' in bodyOf('/v1/completions').properties);
    assert.ok('echo' in bodyOf('/v1/completions').properties);
    assert.deepEqual(Object.keys(bodyOf('/detokenize').properties).sort(), ['model', 'tokens']);
    for (const field of ['prompt', 'messages', 'add_special_tokens', 'add_generation_prompt', 'return_token_strs', 'tools'])
      assert.ok(field in bodyOf('/tokenize').properties, field);
    assert.deepEqual(bodyOf('/v1/load_lora_adapter').required, ['lora_name', 'lora_path']);
  });

  test('/docs is Swagger UI on /openapi.json, its files served here with their content types', async () => {
    const page = await fetch(`${rest}/docs`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    const html = await page.text();
    assert.doesNotMatch(html, /https?:\/\//, 'no file from elsewhere');
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(assets.includes('/docs/swagger-ui-bundle.js') && assets.includes('/docs/swagger-ui.css'), assets.join(' '));
    const types: Record<string, RegExp> = { js: /^text\/javascript/, css: /^text\/css/, png: /^image\/png$/ };
    for (const asset of assets) {
      const r = await fetch(`${rest}${asset}`);
      assert.equal(r.status, 200, asset);
      assert.match(r.headers.get('content-type') ?? '', types[asset.split('.').pop() ?? ''], asset);
      const body = await r.text();
      assert.ok(body.length > 0, asset);
      if (asset.endsWith('docs-init.js')) assert.match(body, /url: '\/openapi\.json'/);
    }
    assert.equal((await fetch(`${rest}/docs/`)).status, 200);
    for (const bad of ['/docs/package.json', '/docs/constructor', '/docs/..%2Fpackage.json']) {
      assert.equal((await fetch(`${rest}${bad}`)).status, 404, bad);
    }
  });
});

describe('unknown request fields', () => {
  const chat = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };

  test('are accepted and ignored, with a warning naming them and a counter by route and field', async () => {
    const counted = async () => {
      const samples = await scrape(rest);
      const name = 'mlxserve:ignored_request_fields_total';
      return {
        topA: metricValue(samples, name, { route: 'chat', field: 'top_a' }),
        kwargs: metricValue(samples, name, { route: 'chat', field: 'chat_template_kwargs' }),
        other: metricValue(samples, name, { route: 'chat', field: 'other' }),
        tokenize: metricValue(samples, name, { route: 'tokenize', field: 'other' }),
      };
    };
    const before = await counted();
    const r = await postJson('/v1/chat/completions', {
      ...chat,
      top_a: 0.2,
      chat_template_kwargs: { enable_thinking: false },
      frobnicate: true,
    });
    assert.equal((r.choices as unknown[]).length, 1);
    await postJson('/tokenize', { prompt: 'x', mm_processor_kwargs_v2: {} });
    const afterwards = await counted();
    assert.deepEqual(afterwards, {
      topA: before.topA + 1,
      kwargs: before.kwargs + 1,
      other: before.other + 1,
      tokenize: before.tokenize + 1,
    });
    const warning = logLines.find((l) => l.msg === 'ignored unknown request fields' && l.route === 'chat');
    assert.ok(warning, JSON.stringify(logLines));
    assert.equal(warning.level, 'warn');
    assert.deepEqual(warning.fields, ['top_a', 'chat_template_kwargs', 'frobnicate']);
    assert.equal(typeof warning.requestId, 'string');
    // Field names come from clients: the label set stays bounded.
    assert.ok(COUNTED_UNKNOWN_FIELDS.size <= 32);
  });

  test('a body with thousands of unknown fields: one bounded log line, counted as "other"', async () => {
    const many = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`x${i}${'y'.repeat(100)}`, i]));
    await postJson('/v1/completions', { prompt: 'x', max_tokens: 1, ...many });
    const warning = logLines.findLast((l) => l.msg === 'ignored unknown request fields' && l.route === 'completions');
    assert.ok(warning);
    assert.equal(warning.count, 2000);
    assert.equal((warning.fields as string[]).length, 20);
    assert.ok((warning.fields as string[]).every((f) => f.length <= 65));
  });

  test('fields the server knows but does not implement keep their 400', async () => {
    const e = await expectError(400, '/v1/chat/completions', { ...chat, reasoning_effort: 'high' }, 'reasoning_effort');
    assert.equal(e.code, 'unsupported_parameter');
    await expectError(400, '/v1/completions', { prompt: 'x', suffix: 'y' }, 'suffix');
  });

  test('--strict-fields refuses them with 400 naming the field', async () => {
    const e = await expectError(400, '/v1/chat/completions', { ...chat, top_a: 0.2 }, 'top_a', strict.url.replace(/\/v1$/, ''));
    assert.equal(e.code, 'unrecognized_argument');
    assert.match(e.message, /Unrecognized request argument supplied: top_a/);
    const base = strict.url.replace(/\/v1$/, '');
    await expectError(400, '/tokenize', { prompt: 'x', extra: 1 }, 'extra', base);
    await expectError(400, '/v1/load_lora_adapter', { lora_name: 'a', lora_path: '/nowhere', extra: 1 }, 'extra', base);
    // Known fields, ignored or not, pass.
    const ok = await postJson('/v1/chat/completions', { ...chat, user: 'u', store: false, temperature: 0 }, base);
    assert.equal((ok.choices as unknown[]).length, 1);
  });

  test('the Node OpenAI SDK with unknown fields in the body succeeds', async () => {
    // The SDK sends fields its types do not know as they are (its way of passing extensions).
    const vendor = { top_a: 0.1, chat_template_kwargs: { enable_thinking: false } };
    const r = await openai.chat.completions.create({
      model: full.model,
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 2,
      ...vendor,
    });
    assert.equal(r.choices.length, 1);
    const c = await openai.completions.create({ model: full.model, prompt: 'x', max_tokens: 2, ...{ tfs_z: 1, mirostat: 0 } });
    assert.equal(c.choices.length, 1);
  });
});

describe('prompt_cache_key', () => {
  const chat = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };

  /** A gRPC stand-in that records each call's metadata and refuses it (UNAVAILABLE). */
  async function recordingService(): Promise<{ target: string; calls: http2.IncomingHttpHeaders[]; close(): Promise<void> }> {
    const calls: http2.IncomingHttpHeaders[] = [];
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      calls.push(headers);
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'recorded' },
        { endStream: true },
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return { target: `127.0.0.1:${port}`, calls, close: () => new Promise((r) => server.close(() => r())) };
  }

  test('chat and completions accept it (and answer as without it)', async () => {
    const c = await postJson('/v1/chat/completions', { ...chat, prompt_cache_key: 'conversation-1', temperature: 0 });
    assert.equal((c.choices as unknown[]).length, 1);
    const p = await postJson('/v1/completions', { prompt: 'x', max_tokens: 2, prompt_cache_key: 'k' });
    assert.equal((p.choices as unknown[]).length, 1);
    const sdk = await openai.chat.completions.create({
      model: full.model,
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 2,
      prompt_cache_key: 'sdk',
    });
    assert.equal(sdk.choices.length, 1);
  });

  test('is sent to the service as x-prompt-cache-key metadata, from the body or the header', async () => {
    const service = await recordingService();
    const adapter = await startOpenAIAdapter({ grpcTarget: service.target, host: '127.0.0.1', port: 0 });
    const base = adapter.url.replace(/\/v1$/, '');
    const send = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const keyOfLastCall = () => service.calls.at(-1)?.['x-prompt-cache-key'];
    try {
      assert.equal((await send('/v1/chat/completions', { ...chat, prompt_cache_key: 'chat-key' })).status, 503);
      assert.equal(keyOfLastCall(), 'chat-key');
      await send('/v1/completions', { prompt: 'x', prompt_cache_key: 'completion-key' });
      assert.equal(keyOfLastCall(), 'completion-key');
      await send('/v1/chat/completions', chat, { 'x-prompt-cache-key': 'header-key' });
      assert.equal(keyOfLastCall(), 'header-key');
      // The body's key wins over the header's (a balancer reading the body routed on it).
      await send('/v1/chat/completions', { ...chat, prompt_cache_key: 'body-key' }, { 'x-prompt-cache-key': 'header-key' });
      assert.equal(keyOfLastCall(), 'body-key');
      // Metadata is printable ASCII: anything else is percent-encoded from its UTF-8 bytes.
      await send('/v1/chat/completions', { ...chat, prompt_cache_key: 'é 100%' });
      assert.equal(keyOfLastCall(), '%C3%A9%20100%25');
      await send('/v1/chat/completions', chat);
      assert.equal(keyOfLastCall(), undefined);
      await send('/v1/chat/completions', { ...chat, prompt_cache_key: '' });
      assert.equal(keyOfLastCall(), undefined);
    } finally {
      await adapter.close();
      await service.close();
    }
  });

  test('a key that is not a string, or longer than 256 bytes, is a 400 naming it', async () => {
    const e = await expectError(400, '/v1/chat/completions', { ...chat, prompt_cache_key: 7 }, 'prompt_cache_key');
    assert.match(e.message, /expected a string, but got an integer/);
    await expectError(400, '/v1/completions', { prompt: 'x', prompt_cache_key: ['a'] }, 'prompt_cache_key');
    await postJson('/v1/completions', { prompt: 'x', max_tokens: 1, prompt_cache_key: 'k'.repeat(256) });
    const long = await expectError(400, '/v1/completions', { prompt: 'x', prompt_cache_key: 'k'.repeat(257) }, 'prompt_cache_key');
    assert.match(long.message, /at most 256 bytes \(UTF-8\), got 257/);
    // Bytes, not characters: 129 two-byte characters are 258 bytes.
    await expectError(400, '/v1/chat/completions', { ...chat, prompt_cache_key: 'é'.repeat(129) }, 'prompt_cache_key');
    const r = await fetch(`${rest}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-prompt-cache-key': 'h'.repeat(300) },
      body: JSON.stringify(chat),
    });
    const json = (await r.json()) as ErrorBody;
    assert.equal(r.status, 400);
    assert.equal(json.error.param, 'x-prompt-cache-key');
    // The header twice: two keys cannot both route one request.
    const twice = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${rest}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-prompt-cache-key': ['a', 'b'] },
      });
      req.on('response', async (res) => {
        let body = '';
        for await (const chunk of res) body += chunk;
        resolve({ status: res.statusCode ?? 0, body });
      });
      req.on('error', reject);
      req.end(JSON.stringify(chat));
    });
    assert.equal(twice.status, 400);
    assert.equal((JSON.parse(twice.body) as ErrorBody).error.param, 'x-prompt-cache-key');
  });
});
