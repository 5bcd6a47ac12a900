// The OpenAI-compatible adapter against the whole server (engine process, gRPC service, adapter as
// its gRPC client) on a tiny model, driven by the official `openai` SDK and by curl: answers and
// stream chunks in OpenAI's shapes, n, stop, logprobs, usage with cached tokens, models, health.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import type { RunningServer } from '../src/cli/serve.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

let server: RunningServer;
let full: FullServer;
let openai: OpenAI;
let modelId: string;

before(async () => {
  full = await startFullServer({ engine: { batchSize: 8 } });
  server = full.server;
  modelId = full.model;
  openai = new OpenAI({ baseURL: server.adapter.url, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await full.close();
});

const user = (content: string) => [{ role: 'user' as const, content }];

describe('models and health', () => {
  test('GET /v1/models lists the served model in OpenAI shape', async () => {
    const page = await openai.models.list();
    assert.equal(page.data.length, 1);
    const [m] = page.data;
    assert.equal(m.id, modelId);
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(typeof m.owned_by, 'string');
  });

  test('GET /v1/models/{id} returns the model; "default" names it too', async () => {
    assert.equal((await openai.models.retrieve(modelId)).id, modelId);
    assert.equal((await openai.models.retrieve('default')).id, modelId);
  });

  test('GET /health is 200 once the engine is ready', async () => {
    const res = await fetch(server.adapter.url.replace(/\/v1$/, '/health'));
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'ready');
  });
});

describe('chat completions', () => {
  test('a non-streamed answer has the OpenAI shape', async () => {
    const r = await openai.chat.completions.create({ model: modelId, messages: user('Hello'), max_tokens: 6, temperature: 0 });
    assert.match(r.id, /^chatcmpl-[0-9a-f]{32}$/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, modelId);
    assert.match(r.system_fingerprint ?? '', /^fp_[0-9a-f]{10}$/);
    assert.ok(Math.abs(r.created - Date.now() / 1000) < 60);
    assert.equal(r.choices.length, 1);
    const [c] = r.choices;
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.equal(c.logprobs, null);
    assert.ok(c.finish_reason === 'length' || c.finish_reason === 'stop');
    const u = r.usage!;
    assert.ok(u.prompt_tokens > 0);
    assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= 6);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    assert.equal(typeof u.prompt_tokens_details?.cached_tokens, 'number');
  });

  test('a stream starts with the role, ends with [DONE], and says the same as the answer', async () => {
    const request = { model: modelId, messages: user('Stream me'), max_tokens: 12, temperature: 0, ignore_eos: true };
    const whole = await openai.chat.completions.create(request as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const stream = await openai.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.model === modelId));
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    assert.equal(text, whole.choices[0].message.content);
    const finishes = chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason !== null));
    assert.deepEqual(
      finishes.map((f) => f.finish_reason),
      ['length'],
    );
    // include_usage: `usage: null` on every chunk but the last, which has no choices.
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage?.completion_tokens, 12);
    assert.equal(last.usage?.prompt_tokens, whole.usage?.prompt_tokens);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
  });

  test('n=2 gives choices 0 and 1, the same again with the same seed', async () => {
    const request = { model: modelId, messages: user('Pick'), max_tokens: 8, n: 2, seed: 42, temperature: 1 };
    const a = await openai.chat.completions.create(request);
    const b = await openai.chat.completions.create(request);
    assert.deepEqual(
      a.choices.map((c) => c.index),
      [0, 1],
    );
    assert.deepEqual(
      a.choices.map((c) => c.message.content),
      b.choices.map((c) => c.message.content),
    );
    const u = a.usage!;
    // The prompt counts once; completion tokens add up over both choices.
    assert.ok(u.completion_tokens > 8 && u.completion_tokens <= 16, `completion_tokens ${u.completion_tokens}`);
  });

  test('n=2 streams interleave and each choice gets its role and its finish', async () => {
    const stream = await openai.chat.completions.create({
      model: modelId,
      messages: user('Two'),
      max_tokens: 5,
      n: 2,
      stream: true,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const roles = new Set<number>();
    const finished = new Set<number>();
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        if (c.delta.role) roles.add(c.index);
        if (c.finish_reason) finished.add(c.index);
      }
    }
    assert.deepEqual([...roles].sort(), [0, 1]);
    assert.deepEqual([...finished].sort(), [0, 1]);
  });

  test('stop ends the text before the stop string, with finish_reason "stop"', async () => {
    const base = { model: modelId, messages: user('Say something long'), max_tokens: 24, temperature: 0, ignore_eos: true };
    const free = (await openai.chat.completions.create(base as OpenAI.ChatCompletionCreateParamsNonStreaming)).choices[0].message.content!;
    // A printable character from inside the greedy answer: the same request with it as a stop string must end just before it.
    const at = [...free].findIndex((ch, i) => i >= 2 && /[ -~]/.test(ch));
    assert.ok(at > 0, `no printable character in ${JSON.stringify(free)}`);
    const stop = [...free][at];
    const r = await openai.chat.completions.create({ ...base, stop: [stop] } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].message.content, free.slice(0, free.indexOf(stop)));
  });

  test('logprobs: one entry per token, the greedy token first among its alternatives', async () => {
    const r = await openai.chat.completions.create({
      model: modelId,
      messages: user('Logprobs'),
      max_tokens: 6,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const content = r.choices[0].logprobs?.content;
    assert.ok(content);
    assert.equal(content.length, r.usage?.completion_tokens);
    for (const entry of content) {
      assert.ok(entry.logprob <= 0);
      assert.ok(Array.isArray(entry.bytes));
      assert.equal(entry.top_logprobs.length, 3);
      assert.equal(entry.top_logprobs[0].token, entry.token);
      assert.ok(Math.abs(entry.top_logprobs[0].logprob - entry.logprob) < 1e-4);
      assert.ok(entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob);
    }
    // The bytes of all tokens decode to the text.
    const bytes = Uint8Array.from(content.flatMap((e) => e.bytes ?? []));
    assert.equal(new TextDecoder().decode(bytes), r.choices[0].message.content);
  });

  test('streamed logprobs arrive with their tokens', async () => {
    const stream = await openai.chat.completions.create({
      model: modelId,
      messages: user('Logprobs'),
      max_tokens: 6,
      temperature: 0,
      logprobs: true,
      stream: true,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let count = 0;
    for await (const chunk of stream) count += chunk.choices[0]?.logprobs?.content?.length ?? 0;
    assert.equal(count, 6);
  });

  test('a repeated prompt is served from the prefix cache: cached_tokens', async () => {
    const messages = user(`A prompt long enough to be worth caching, ${'with many words '.repeat(8)}and a unique tail ${Date.now()}`);
    const first = await openai.chat.completions.create({ model: modelId, messages, max_tokens: 2, temperature: 0 });
    const second = await openai.chat.completions.create({ model: modelId, messages, max_tokens: 2, temperature: 0 });
    const cached1 = first.usage!.prompt_tokens_details!.cached_tokens!;
    const cached2 = second.usage!.prompt_tokens_details!.cached_tokens!;
    assert.equal(first.usage!.prompt_tokens, second.usage!.prompt_tokens);
    assert.ok(cached2 > cached1, `cached ${cached1} then ${cached2}`);
    assert.ok(cached2 >= second.usage!.prompt_tokens - 2 && cached2 <= second.usage!.prompt_tokens);
  });

  test('content as an array of text parts is the same prompt as a string', async () => {
    const asString = await openai.chat.completions.create({
      model: modelId,
      messages: user('part one\npart two'),
      max_tokens: 5,
      temperature: 0,
    });
    const asParts = await openai.chat.completions.create({
      model: modelId,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'part one' },
            { type: 'text', text: 'part two' },
          ],
        },
      ],
      max_tokens: 5,
      temperature: 0,
    });
    assert.equal(asParts.choices[0].message.content, asString.choices[0].message.content);
    assert.equal(asParts.usage?.prompt_tokens, asString.usage?.prompt_tokens);
  });

  test('max_completion_tokens bounds the answer', async () => {
    const r = await openai.chat.completions.create({
      model: modelId,
      messages: user('Bound'),
      max_completion_tokens: 3,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(r.usage?.completion_tokens, 3);
    assert.equal(r.choices[0].finish_reason, 'length');
  });
});

describe('concurrency', () => {
  test('more concurrent requests than batch slots all complete, streamed and not', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const request = { model: modelId, messages: user(`request ${i}`), max_tokens: 4, temperature: 0, ignore_eos: true };
        if (i % 2 === 0)
          return (await openai.chat.completions.create(request as OpenAI.ChatCompletionCreateParamsNonStreaming)).usage?.completion_tokens;
        let tokens = 0;
        const stream = await openai.chat.completions.create({
          ...request,
          stream: true,
          stream_options: { include_usage: true },
        } as OpenAI.ChatCompletionCreateParamsStreaming);
        for await (const chunk of stream) tokens = chunk.usage?.completion_tokens ?? tokens;
        return tokens;
      }),
    );
    assert.deepEqual(answers, Array(20).fill(4));
  });
});

describe('completions', () => {
  test('a non-streamed completion has the OpenAI shape; max_tokens defaults to 16', async () => {
    const r = await openai.completions.create({
      model: modelId,
      prompt: 'Once upon a time',
      temperature: 0,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, 16);
    assert.equal(typeof r.choices[0].text, 'string');
  });

  test('a prompt array with n=2 gives n choices per prompt, numbered prompt by prompt', async () => {
    const one = await openai.completions.create({ model: modelId, prompt: 'beta', max_tokens: 4, temperature: 0 });
    const r = await openai.completions.create({ model: modelId, prompt: ['alpha', 'beta'], n: 2, max_tokens: 4, temperature: 0 });
    assert.deepEqual(
      r.choices.map((c) => c.index),
      [0, 1, 2, 3],
    );
    // Greedy: both choices of a prompt agree, and prompt 1's equal the single-prompt answer.
    assert.equal(r.choices[2].text, one.choices[0].text);
    assert.equal(r.choices[3].text, one.choices[0].text);
    assert.equal(r.usage?.prompt_tokens, 'alpha'.length + 'beta'.length);
  });

  test('token-id prompts, echo, and logprobs in the completions shape', async () => {
    const ids = [...Buffer.from('Hi there')];
    const byText = await openai.completions.create({ model: modelId, prompt: 'Hi there', max_tokens: 5, temperature: 0, logprobs: 2 });
    const byIds = await openai.completions.create({ model: modelId, prompt: ids, max_tokens: 5, temperature: 0 });
    assert.equal(byIds.choices[0].text, byText.choices[0].text);

    const echoed = await openai.completions.create({ model: modelId, prompt: ids, max_tokens: 5, temperature: 0, echo: true });
    assert.equal(echoed.choices[0].text, `Hi there${byText.choices[0].text}`);

    const lp = byText.choices[0].logprobs!;
    assert.equal(lp.tokens!.length, byText.usage?.completion_tokens);
    assert.equal(lp.token_logprobs!.length, lp.tokens!.length);
    assert.equal(lp.text_offset![0], 0);
    assert.ok(lp.text_offset!.every((o, i) => i === 0 || o >= lp.text_offset![i - 1]));
    for (const [i, top] of lp.top_logprobs!.entries()) {
      assert.ok(Object.keys(top).length >= 2 && Object.keys(top).length <= 3);
      assert.equal(top[lp.tokens![i]], lp.token_logprobs![i]);
    }
  });

  test('a streamed completion says the same as the whole one, usage last', async () => {
    const request = { model: modelId, prompt: 'Stream', max_tokens: 10, temperature: 0, ignore_eos: true };
    const whole = await openai.completions.create(request as OpenAI.CompletionCreateParamsNonStreaming);
    const stream = await openai.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'text_completion');
      text += chunk.choices.map((c) => c.text).join('');
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, whole.choices[0].text);
    assert.equal(usage?.completion_tokens, 10);
  });
});

describe('SSE framing on the wire', () => {
  test('curl sees text/event-stream, one data: line per event, and data: [DONE] last', async () => {
    // Asynchronously: the server runs in this process.
    const out = await promisify(execFile)(
      'curl',
      [
        '-sS',
        '-N',
        '-D',
        '-',
        `${server.adapter.url}/chat/completions`,
        '-H',
        'Content-Type: application/json',
        '-d',
        JSON.stringify({ model: 'default', messages: user('curl'), max_tokens: 4, stream: true, ignore_eos: true }),
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const [head, body] = out.stdout.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.match(head, /content-type: text\/event-stream/i);
    const events = body.split('\n\n');
    assert.equal(events.pop(), '', 'the stream ends with a blank line');
    assert.equal(events.at(-1), 'data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => {
      assert.match(e, /^data: \{.*\}$/, 'each event is one data: line of JSON');
      return JSON.parse(e.slice('data: '.length));
    });
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  });
});
