// Refusals of the OpenAI-compatible adapter, seen through the official `openai` SDK (which maps
// status codes to its error classes) and raw fetch: OpenAI's status codes and error body
// {"error": {message, type, param, code}} with the offending parameter named as the client sent
// it, whether the adapter or the service refused it. Also the API key and a full queue (429).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startOpenAIAdapter, type OpenAIAdapter } from '../src/adapter-openai/adapter-server.ts';
import { connectToService } from '../src/adapter-openai/service-connection.ts';
import type { RunningServer } from '../src/cli/serve.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

let server: RunningServer;
let full: FullServer;
let openai: OpenAI;
let modelId: string;
let url: string;

before(async () => {
  // One running request and one waiting fill the engine, so a third is refused (429).
  full = await startFullServer({ engine: { batchSize: 1, maxQueue: 1 } });
  server = full.server;
  modelId = full.model;
  url = server.adapter.url;
  openai = new OpenAI({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await full.close();
});

type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } };
const errorBody = async (res: Response) => (await res.json()) as ErrorBody;

const user = (content: string) => [{ role: 'user' as const, content }];

/** Runs `call`, expects the SDK to throw an APIError, and returns it. */
async function apiError(call: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await call();
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${String(err)}`);
    return err;
  }
  assert.fail('the request succeeded');
}

async function expect400(param: string, body: Record<string, unknown>, endpoint: 'chat' | 'completions' = 'chat') {
  const err = await apiError(() =>
    endpoint === 'chat'
      ? openai.chat.completions.create({
          model: modelId,
          messages: user('hi'),
          ...body,
        } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
      : openai.completions.create({ model: modelId, prompt: 'hi', ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming),
  );
  assert.ok(err instanceof OpenAI.BadRequestError, `status ${err.status}: ${err.message}`);
  assert.equal(err.type, 'invalid_request_error');
  assert.equal(err.param, param, err.message);
  assert.ok(err.message.length > 0);
  return err;
}

describe('400: the parameter is named', () => {
  test('out-of-range sampling values, refused by the service', async () => {
    const err = await expect400('temperature', { temperature: 5 });
    assert.match(err.message, /^400 temperature must be in \[0, 2\]/);
    await expect400('top_p', { top_p: 0 });
    await expect400('presence_penalty', { presence_penalty: 3 });
    await expect400('top_logprobs', { logprobs: true, top_logprobs: 21 });
    await expect400('logit_bias', { logit_bias: { 999999: 5 } });
    await expect400('max_completion_tokens', { max_completion_tokens: 0 });
    await expect400('max_tokens', { max_tokens: -1 });
    await expect400('logprobs', { logprobs: 21 }, 'completions');
  });

  test('a request longer than the context window: context_length_exceeded', async () => {
    const err = await expect400('max_tokens', { max_tokens: 100_000 });
    assert.equal(err.code, 'context_length_exceeded');
  });

  test('wrong types, refused by the adapter', async () => {
    const err = await expect400('temperature', { temperature: 'hot' });
    assert.equal(err.code, 'invalid_type');
    await expect400('n', { n: 1.5 });
    await expect400('stop', { stop: [1, 2] });
    await expect400('stream', { stream: 'yes' });
  });

  test('malformed tools, tool choices and output formats', async () => {
    const tool = (name: string, parameters: unknown = {}) => ({ type: 'function', function: { name, parameters } });
    await expect400('tools', { tools: [tool('no spaces allowed')] });
    await expect400('tools', { tools: [tool('f'), tool('f')] });
    await expect400('tools', { tools: [tool('f', { type: 'array' })] });
    await expect400('tool_choice', { tool_choice: 'required' });
    await expect400('tool_choice', { tools: [tool('f')], tool_choice: { type: 'function', function: { name: 'g' } } });
    await expect400('response_format', { response_format: { type: 'xml' } });
    await expect400('response_format', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } } });
    await expect400('messages[0].role', { messages: [{ role: 'function', content: 'x', name: 'f' }] });
    await expect400('messages[0].tool_call_id', { messages: [{ role: 'tool', content: 'x' }] });
  });

  test('fields this server does not implement', async () => {
    await expect400('audio', { audio: { voice: 'alloy', format: 'wav' } });
    await expect400('suffix', { suffix: 'end' }, 'completions');
    await expect400('best_of', { best_of: 3 }, 'completions');
  });

  test('harmless values of those fields are accepted', async () => {
    const r = await openai.chat.completions.create({
      model: modelId,
      messages: user('hi'),
      max_tokens: 1,
      tools: [],
      tool_choice: 'none',
      response_format: { type: 'text' },
      user: 'u-1',
      store: false,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(r.choices.length, 1);
  });

  test('messages: missing, empty, bad role, non-text content', async () => {
    await expect400('messages', { messages: undefined });
    await expect400('messages', { messages: [] });
    await expect400('messages[0].role', { messages: [{ role: 'wizard', content: 'x' }] });
    await expect400('messages[0].content[0].type', {
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }],
    });
  });

  test('n out of range, top_logprobs without logprobs', async () => {
    await expect400('n', { n: 0 });
    await expect400('top_logprobs', { top_logprobs: 2 });
  });

  test('completions: a token id outside the vocabulary, an empty prompt list', async () => {
    await expect400('prompt', { prompt: [1, 2, 99999] }, 'completions');
    await expect400('prompt', { prompt: [] }, 'completions');
  });

  test('a bad streaming request fails before the stream starts', async () => {
    const err = await apiError(() =>
      openai.chat.completions.create({ model: modelId, messages: user('hi'), temperature: -1, stream: true }),
    );
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.param, 'temperature');
  });

  test('a body that is not JSON', async () => {
    const res = await fetch(`${url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": ',
    });
    assert.equal(res.status, 400);
    const body = await errorBody(res);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('a JSON body declared as another type (a form post, text): 415; JSON types and no type are read', async () => {
    const json = JSON.stringify({ model: modelId, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const res = await fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': type }, body: json });
      assert.equal(res.status, 415, type);
      const body = await errorBody(res);
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(body.error.code, 'unsupported_media_type');
      assert.match(body.error.message, /application\/json/);
    }
    for (const type of ['application/json; charset=utf-8', 'application/vnd.api+json', undefined]) {
      const res = await fetch(`${url}/chat/completions`, {
        method: 'POST',
        headers: type ? { 'content-type': type } : {},
        body: new Blob([json]), // a Blob without a type: fetch sends no Content-Type
      });
      assert.equal(res.status, 200, String(type));
      await res.arrayBuffer();
    }
  });
});

describe('404 and 405', () => {
  test('an unknown model: NotFoundError with code model_not_found', async () => {
    const err = await apiError(() => openai.chat.completions.create({ model: 'gpt-17', messages: user('hi') }));
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.param, 'model');
    assert.match(err.message, /gpt-17/);
    const retrieve = await apiError(() => openai.models.retrieve('gpt-17'));
    assert.ok(retrieve instanceof OpenAI.NotFoundError);
  });

  test('an unknown path is 404, a known path with the wrong method 405', async () => {
    const missing = await fetch(`${url}/embeddings`, { method: 'POST', body: '{}' });
    assert.equal(missing.status, 404);
    assert.match((await errorBody(missing)).error.message, /Invalid URL \(POST \/v1\/embeddings\)/);
    const wrongMethod = await fetch(`${url}/chat/completions`);
    assert.equal(wrongMethod.status, 405);
  });
});

describe('401: the API key', () => {
  let guarded: OpenAIAdapter;
  before(async () => {
    guarded = await startOpenAIAdapter({ grpcTarget: server.grpcTarget, apiKey: 'sk-test-key', host: '127.0.0.1', port: 0 });
  });
  after(() => guarded.close());

  test('no key or a wrong key: AuthenticationError; the right key works; /health needs none', async () => {
    const noKey = await fetch(`${guarded.url}/models`);
    assert.equal(noKey.status, 401);
    assert.equal((await errorBody(noKey)).error.code, 'invalid_api_key');
    const wrong = await apiError(() => new OpenAI({ baseURL: guarded.url, apiKey: 'sk-wrong', maxRetries: 0 }).models.list());
    assert.ok(wrong instanceof OpenAI.AuthenticationError);
    const right = await new OpenAI({ baseURL: guarded.url, apiKey: 'sk-test-key', maxRetries: 0 }).models.list();
    assert.equal(right.data[0].id, modelId);
    assert.equal((await fetch(guarded.url.replace(/\/v1$/, '/health'))).status, 200);
  });
});

describe('503: the service cannot be reached', () => {
  test('an adapter whose gRPC target is down answers 503 and /health says so', async () => {
    const orphan = await startOpenAIAdapter({ grpcTarget: '127.0.0.1:1', host: '127.0.0.1', port: 0 });
    try {
      const err = await apiError(() =>
        new OpenAI({ baseURL: orphan.url, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'm', messages: user('hi') }),
      );
      assert.equal(err.status, 503);
      assert.equal((await fetch(orphan.url.replace(/\/v1$/, '/health'))).status, 503);
    } finally {
      await orphan.close();
    }
  });
});

describe('429: the queue is full', () => {
  test('with one request running and one waiting, a third is refused with RateLimitError', async () => {
    const abort = new AbortController();
    const long = {
      model: modelId,
      messages: user('long'),
      max_tokens: 3000,
      ignore_eos: true,
      stream: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming;
    try {
      const running = await openai.chat.completions.create(long, { signal: abort.signal });
      const it = running[Symbol.asyncIterator]();
      await it.next(); // role chunk
      await it.next(); // first tokens: the request holds the only batch slot
      // The second waits; wait until the engine has queued it before sending the third.
      void openai.chat.completions.create(long, { signal: abort.signal }).catch(() => {});
      const statusClient = connectToService({ target: server.grpcTarget });
      try {
        for (let i = 0; i < 200; i++) {
          if ((await statusClient.client.getServerStatus({})).waitingRequests === 1) break;
          await new Promise((r) => setTimeout(r, 10));
        }
      } finally {
        statusClient.close();
      }
      const err = await apiError(() => openai.chat.completions.create({ model: modelId, messages: user('third'), max_tokens: 2 }));
      assert.ok(err instanceof OpenAI.RateLimitError, `status ${err.status}`);
      assert.equal(err.code, 'rate_limit_exceeded');
    } finally {
      abort.abort();
    }
  });
});
