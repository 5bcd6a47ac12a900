// The adapter's pure translations, without a server: request bodies into service requests, service
// failures into OpenAI errors, token bytes and offsets into OpenAI's logprob shapes, usage totals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code } from '@connectrpc/connect';
import { matchRoute } from '../src/adapter-openai/adapter-server.ts';
import { readChatRequest } from '../src/adapter-openai/chat-request.ts';
import { readCompletionRequest } from '../src/adapter-openai/completion-request.ts';
import { errorFromCode, restParam, type ParamNames } from '../src/adapter-openai/grpc-error.ts';
import { completionLogprobs, TextCursor, tokenBytes, tokenText } from '../src/adapter-openai/logprobs-format.ts';
import { OpenAIError } from '../src/adapter-openai/openai-error.ts';
import { choiceSeed } from '../src/adapter-openai/sampling-fields.ts';
import { openAIUsage } from '../src/adapter-openai/usage.ts';
import type { TokenLogprob, Usage } from '../src/gen/mlxserve/v1/generation_pb.ts';

const chatNames: ParamNames = { prompt: 'messages', maxTokens: 'max_completion_tokens', topLogprobs: 'top_logprobs', model: 'm' };

test('service field paths become the parameter the client sent', () => {
  assert.equal(restParam('sampling.top_p', chatNames), 'top_p');
  assert.equal(restParam('sampling.max_tokens', chatNames), 'max_completion_tokens');
  assert.equal(restParam('prompt.chat.messages', chatNames), 'messages');
  assert.equal(restParam('prompt.tokens.ids', { ...chatNames, prompt: 'prompt' }), 'prompt');
  assert.equal(restParam('sampling.top_logprobs', { ...chatNames, topLogprobs: 'logprobs' }), 'logprobs');
  assert.equal(restParam('', chatNames), null);
});

test('service status codes become OpenAI status codes', () => {
  const status = (code: Code) => errorFromCode(code, 'why', '', chatNames).status;
  assert.equal(status(Code.InvalidArgument), 400);
  assert.equal(status(Code.FailedPrecondition), 400);
  assert.equal(status(Code.NotFound), 404);
  assert.equal(status(Code.ResourceExhausted), 429);
  assert.equal(status(Code.Unauthenticated), 401);
  assert.equal(status(Code.Unavailable), 503);
  assert.equal(status(Code.Internal), 500);
  assert.equal(status(Code.Unknown), 500);
  const e = errorFromCode(
    Code.InvalidArgument,
    'sampling.max_tokens must be an integer in [1, 2147483647], got 0',
    'sampling.max_tokens',
    chatNames,
    ' must be an integer in [1, 2147483647], got 0',
  );
  assert.equal(e.param, 'max_completion_tokens');
  assert.equal(e.message, 'max_completion_tokens must be an integer in [1, 2147483647], got 0');
  // A message that does not lead with the field stays as the service worded it.
  const whole = errorFromCode(Code.InvalidArgument, "this model's maximum context length is 8 tokens", 'prompt.tokens.ids', chatNames);
  assert.equal(whole.param, 'messages');
  assert.equal(whole.message, "this model's maximum context length is 8 tokens");
  assert.deepEqual(Object.keys(e.toBody().error), ['message', 'type', 'param', 'code']);
});

test('a chat body becomes a chat prompt with sampling; developer speaks as system', () => {
  const plan = readChatRequest({
    model: 'default',
    messages: [
      { role: 'developer', content: 'be brief' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
      { role: 'assistant', content: null },
    ],
    temperature: 0.5,
    max_tokens: 9,
    stop: 'x',
    top_k: 5,
    logit_bias: { '12': -100 },
    seed: 3,
    n: 2,
  });
  assert.equal(plan.model, undefined, '"default" asks for the server default');
  assert.deepEqual(plan.messages, [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'a\nb' },
    { role: 'assistant', content: '' },
  ]);
  assert.equal(plan.sampling.temperature, 0.5);
  assert.equal(plan.sampling.maxTokens, 9);
  assert.deepEqual(plan.sampling.stop, ['x']);
  assert.equal(plan.sampling.topK, 5);
  assert.deepEqual(plan.sampling.logitBias, { 12: -100 });
  assert.equal(plan.sampling.topP, undefined, 'unset fields stay unset so the service default applies');
  assert.equal(plan.n, 2);
  assert.equal(plan.names.maxTokens, 'max_tokens');
  // max_completion_tokens wins over max_tokens, and names the field in errors.
  const both = readChatRequest({ messages: [{ role: 'user', content: 'x' }], max_tokens: 5, max_completion_tokens: 7 });
  assert.equal(both.sampling.maxTokens, 7);
  assert.equal(both.names.maxTokens, 'max_completion_tokens');
});

test('tools, tool choices and the tool turns of a conversation map to the chat prompt', () => {
  const weather = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  const plan = readChatRequest({
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city": "Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '21 C' },
    ],
    tools: [{ type: 'function', function: { name: 'weather', description: 'Current weather', parameters: weather, strict: true } }],
    tool_choice: { type: 'function', function: { name: 'weather' } },
    parallel_tool_calls: true,
  });
  const input = plan.prompts[0].input;
  assert.equal(input?.case, 'chat');
  const chat = input?.value as Record<string, unknown>;
  assert.deepEqual(chat.messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'weather', arguments: '{"city": "Paris"}' }] },
    { role: 'tool', content: '21 C', toolCallId: 'call_1' },
  ]);
  assert.deepEqual(chat.tools, [{ name: 'weather', description: 'Current weather', parameters: JSON.stringify(weather) }]);
  assert.deepEqual(chat.toolChoice, { choice: { case: 'function', value: 'weather' } });
  assert.equal(chat.parallelToolCalls, true);
  const none = readChatRequest({ messages: [{ role: 'user', content: 'x' }], tools: [], tool_choice: 'auto' }).prompts[0].input
    ?.value as Record<string, unknown>;
  assert.deepEqual(none.tools, []);
});

test('refusals name the parameter', () => {
  const param = (body: unknown, read: (b: unknown) => unknown = readChatRequest) => {
    try {
      read(body);
    } catch (e) {
      assert.ok(e instanceof OpenAIError);
      assert.equal(e.status, 400);
      return e.param;
    }
    assert.fail('accepted');
  };
  const msgs = [{ role: 'user', content: 'x' }];
  assert.equal(param({ messages: msgs, functions: [{ name: 'f' }] }), 'functions');
  assert.equal(param({ messages: msgs, stream_options: { include_usage: true } }), 'stream_options');
  assert.equal(param({ messages: msgs, logit_bias: { abc: 1 } }), 'logit_bias');
  assert.equal(param({ messages: msgs, seed: 2 ** 60 }), 'seed');
  assert.equal(param({ messages: [{ role: 'assistant', content: 'x', tool_calls: [{ id: 'a' }] }] }), 'messages[0].tool_calls[0].function');
  assert.equal(param({ messages: [{ role: 'user', content: 'x', tool_calls: [] }], tools: 'f' }), 'tools');
  assert.equal(param('not an object'), null);
  assert.equal(param({ prompt: 'x', echo: true, logprobs: 1 }, readCompletionRequest), 'echo');
  assert.equal(param({ prompt: [['a']] }, readCompletionRequest), 'prompt');
});

test('completions: prompts in all four forms; max_tokens defaults to 16, null means no limit', () => {
  assert.deepEqual(readCompletionRequest({ prompt: 'a' }).rawPrompts, ['a']);
  assert.deepEqual(readCompletionRequest({ prompt: ['a', 'b'] }).rawPrompts, ['a', 'b']);
  assert.deepEqual(readCompletionRequest({ prompt: [1, 2] }).rawPrompts, [[1, 2]]);
  assert.deepEqual(readCompletionRequest({ prompt: [[1], [2, 3]] }).rawPrompts, [[1], [2, 3]]);
  assert.equal(readCompletionRequest({ prompt: 'a' }).sampling.maxTokens, 16);
  assert.equal(readCompletionRequest({ prompt: 'a', max_tokens: null }).sampling.maxTokens, undefined);
  const lp = readCompletionRequest({ prompt: 'a', logprobs: 0 });
  assert.equal(lp.sampling.logprobs, true);
  assert.equal(lp.sampling.topLogprobs, 0);
});

test('choice seeds differ per choice and stay in range', () => {
  assert.deepEqual(
    [0, 1, 2].map((i) => choiceSeed(10, i)),
    [10, 11, 12],
  );
  const max = 2 ** 53 - 1;
  assert.ok([0, 1, 2].every((i) => Math.abs(choiceSeed(max, i)) <= max));
  assert.equal(new Set([0, 1, 2].map((i) => choiceSeed(max, i))).size, 3);
});

const lp = (token: string, logprob: number, top: [string, number][] = []) =>
  ({
    token,
    logprob,
    tokenBytes: new Uint8Array(),
    tokenId: 0,
    topLogprobs: top.map(([t, l]) => ({ token: t, logprob: l, tokenBytes: new Uint8Array(), tokenId: 0 })),
  }) as unknown as TokenLogprob;

test('a token that is part of a character keeps its bytes and shows as bytes:\\x..', () => {
  const half = lp('bytes:\\xe2\\x82', -1);
  assert.deepEqual([...tokenBytes(half)], [0xe2, 0x82]);
  assert.equal(tokenText(half), 'bytes:\\xe2\\x82');
  assert.deepEqual([...tokenBytes(lp('€', -1))], [0xe2, 0x82, 0xac]);
});

test('completions logprobs: offsets count characters, a split character once', () => {
  const cursor = new TextCursor(2);
  const out = completionLogprobs(
    [
      lp('a', -0.1, [
        ['a', -0.1],
        ['b', -2],
      ]),
      lp('bytes:\\xe2\\x82', -0.5),
      lp('bytes:\\xac', -0.2),
      lp('z', -Infinity),
    ],
    cursor,
  );
  assert.deepEqual(out.tokens, ['a', 'bytes:\\xe2\\x82', 'bytes:\\xac', 'z']);
  assert.deepEqual(out.text_offset, [2, 3, 3, 4]);
  assert.equal(cursor.chars, 5);
  assert.deepEqual(out.top_logprobs[0], { a: -0.1, b: -2 });
  assert.deepEqual(out.top_logprobs[1], { 'bytes:\\xe2\\x82': -0.5 }, 'the sampled token is among the alternatives');
  assert.equal(out.token_logprobs[3], -9999, '-Infinity would not survive JSON');
});

test("usage counts each prompt once and every choice's completion", () => {
  const u = (promptTokens: number, completionTokens: number, cachedTokens: number) =>
    ({ promptTokens, completionTokens, cachedTokens }) as Usage;
  const total = openAIUsage([
    { promptIndex: 0, usage: u(10, 5, 0) },
    { promptIndex: 0, usage: u(10, 7, 10) },
    { promptIndex: 1, usage: u(4, 1, 2) },
  ]);
  assert.deepEqual(total, { prompt_tokens: 14, completion_tokens: 13, total_tokens: 27, prompt_tokens_details: { cached_tokens: 2 } });
});

test('routes: the /v1 prefix is optional, model ids may hold slashes', () => {
  assert.deepEqual(matchRoute('/v1/chat/completions'), { route: 'chat' });
  assert.deepEqual(matchRoute('/chat/completions/'), { route: 'chat' });
  assert.deepEqual(matchRoute('/v1/models/HuggingFaceTB/SmolLM2-135M-Instruct'), {
    route: 'model',
    modelId: 'HuggingFaceTB/SmolLM2-135M-Instruct',
  });
  assert.deepEqual(matchRoute('/v1/models/a%2Fb'), { route: 'model', modelId: 'a/b' });
  assert.deepEqual(matchRoute('/health'), { route: 'health' });
  assert.equal(matchRoute('/v1/embeddings'), undefined);
  assert.equal(matchRoute('/v1/models/%E0%A4%A'), undefined);
});

test('a number of the wrong kind is named as it was received', () => {
  const messages = [{ role: 'user', content: 'x' }];
  const refusal = (body: Record<string, unknown>) => {
    try {
      readChatRequest({ model: 'm', messages, ...body });
    } catch (e) {
      assert.ok(e instanceof OpenAIError);
      return e.message;
    }
    assert.fail('accepted');
  };
  assert.equal(refusal({ max_tokens: 1.5 }), "Invalid type for 'max_tokens': expected an integer, but got a decimal (1.5) instead.");
  const huge = refusal({ max_tokens: 1e20 });
  assert.doesNotMatch(huge, /got an integer/);
  assert.match(huge, /got 100000000000000000000, an integer beyond ±9007199254740991/);
});
