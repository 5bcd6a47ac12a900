// Live test of the TypeScript client against a running server (test/helpers/test-server.ts, a
// tiny random-weight model, started as its own process the way the other clients' tests do).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGrpcTransport } from '@connectrpc/connect-node';
import {
  assistantMessage,
  Code,
  createGenerationClient,
  GenerationServiceError,
  parseToolArguments,
  toolMessage,
  type ChatMessage,
  type GenerationClient,
  type GenerationEvent,
  type Tool,
  type ToolCall,
} from '../src/index.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
let serverProcess: ChildProcess;
let baseUrl: string;
let client: GenerationClient;
let modelId: string;

before(async () => {
  serverProcess = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/test-server.ts'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: serverProcess.stdout! }), 'line')) as [string];
  const { port, model } = JSON.parse(line) as { port: number; model: string };
  modelId = model;
  baseUrl = `http://127.0.0.1:${port}`;
  client = createGenerationClient(baseUrl);
});

after(async () => {
  const exited = once(serverProcess, 'exit');
  serverProcess.kill('SIGTERM');
  await exited;
});

const greedy = (maxTokens: number) => ({ temperature: 0, maxTokens, ignoreEos: true });

/** Waits until the server runs no request (a cancelled one would otherwise run for seconds). */
async function waitForNoRunningRequests(): Promise<void> {
  const deadline = Date.now() + 3000;
  while ((await client.status()).runningRequests > 0) {
    if (Date.now() > deadline) throw new Error('a request is still running');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('two requests multiplexed on one Generate stream each get their own events', async () => {
  const requestA = { prompt: { tokenIds: [10, 20, 30] }, sampling: greedy(16) };
  const requestB = { prompt: { messages: [{ role: 'user', content: 'Hi!' }] }, sampling: greedy(12) };
  const expectedA = await client.complete(requestA);
  const expectedB = await client.complete(requestB);

  const session = client.session();
  const a = session.generate(requestA);
  const b = session.generate(requestB, { requestId: 'chat' });
  assert.equal(b.id, 'chat');
  assert.equal(session.openRequests, 2);
  const [ra, rb] = await Promise.all([a.completion(), b.completion()]);
  await session.close();

  assert.equal(ra.model, modelId);
  assert.deepEqual(ra.tokenIds, expectedA.tokenIds);
  assert.equal(ra.text, expectedA.text);
  assert.deepEqual(ra.finish, {
    type: 'finished',
    finishReason: 'length',
    stopString: undefined,
    stopTokenId: undefined,
    usage: { promptTokens: 3, completionTokens: 16, cachedTokens: ra.finish.usage.cachedTokens },
  });
  assert.deepEqual(rb.tokenIds, expectedB.tokenIds);
  assert.equal(rb.finish.usage.completionTokens, 12);
  assert.equal(session.openRequests, 0);
});

test('cancel ends a request with finishReason "cancelled" and frees its slot; the session goes on', async () => {
  const session = client.session();
  const long = session.generate({ prompt: 'hello', sampling: { maxTokens: 4000, ignoreEos: true } });
  const events: GenerationEvent[] = [];
  for await (const e of long) {
    events.push(e);
    if (e.type === 'delta') long.cancel();
  }
  const last = events.at(-1);
  assert.equal(last?.type === 'finished' && last.finishReason, 'cancelled');
  assert.ok(last?.type === 'finished' && last.usage.completionTokens < 4000);
  await waitForNoRunningRequests();

  // Leaving the loop early cancels too.
  const abandoned = session.generate({ prompt: 'hello', sampling: { maxTokens: 4000, ignoreEos: true } });
  for await (const e of abandoned) if (e.type === 'delta') break;
  await waitForNoRunningRequests();

  const after = await session.generate({ prompt: 'abc', sampling: greedy(3) }).completion();
  assert.equal(after.tokenIds.length, 3);
  await session.close();
});

test('Tokenize and Detokenize', async () => {
  const t = await client.tokenize('hi', { returnTokenStrings: true });
  assert.deepEqual(t, { tokenIds: [104, 105], tokenStrings: ['h', 'i'] });
  const chat = await client.tokenize({ messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(chat.tokenIds.length, 21);
  assert.equal(await client.detokenize(chat.tokenIds, { skipSpecialTokens: true }), 'user\nhi\nassistant\n');
});

test('streaming one request, listing models, status and health', async () => {
  const events: GenerationEvent['type'][] = [];
  let text = '';
  for await (const e of client.generate({ prompt: 'abc', sampling: greedy(5) })) {
    events.push(e.type);
    if (e.type === 'delta') text += e.text;
  }
  assert.equal(events[0], 'started');
  assert.equal(events.at(-1), 'finished');
  assert.equal(text, (await client.complete({ prompt: 'abc', sampling: greedy(5) })).text);
  const [model] = await client.listModels();
  assert.equal(model.id, modelId);
  assert.equal(await client.isServing(), true);
  assert.equal((await client.status()).runningRequests, 0);
});

test('promptCacheKey is sent as x-prompt-cache-key metadata on calls and on a session stream; a bad one is refused', async () => {
  const seen: (string | null)[] = [];
  const recorded = createGenerationClient({
    transport: createGrpcTransport({
      baseUrl,
      interceptors: [
        (next) => (req) => {
          seen.push(req.header.get('x-prompt-cache-key'));
          return next(req);
        },
      ],
    }),
  });
  await recorded.complete({ prompt: 'abc', sampling: greedy(2) }, { promptCacheKey: 'conversation-7' });
  for await (const _ of recorded.generate({ prompt: 'abc', sampling: greedy(2) }, { promptCacheKey: 'stream-key' })) {
  }
  await recorded.tokenize('hi');
  await recorded.tokenize('hi', { promptCacheKey: 'é 100%' });
  await recorded.tokenize('hi', { promptCacheKey: '' });
  const session = recorded.session({ promptCacheKey: 'session-key' });
  await session.generate({ prompt: 'abc', sampling: greedy(2) }).completion();
  await session.close();
  // Metadata is printable ASCII: other characters, spaces and % are percent-encoded (UTF-8), as the REST adapter does.
  assert.deepEqual(seen, ['conversation-7', 'stream-key', null, '%C3%A9%20100%25', null, 'session-key']);

  for (const bad of ['k'.repeat(257), 'é'.repeat(129)]) {
    await assert.rejects(
      recorded.complete({ prompt: 'abc' }, { promptCacheKey: bad }),
      (e: unknown) => e instanceof GenerationServiceError && e.code === Code.InvalidArgument && e.field === 'promptCacheKey',
    );
  }
});

test('a LoRA adapter is loaded, listed with its parent, selected by `model` or `adapter`, and unloaded', async () => {
  const info = await client.loadAdapter('ts-lora', `${repoRoot}test/fixtures/lora/peft`);
  assert.deepEqual([info.id, info.parent, info.adapter?.format, info.adapter?.rank], ['ts-lora', modelId, 'peft', 4]);
  assert.deepEqual(
    (await client.listModels()).map((m) => [m.id, m.parent]),
    [
      [modelId, undefined],
      ['ts-lora', modelId],
    ],
  );
  const byModel = await client.complete({ model: 'ts-lora', prompt: 'abc', sampling: greedy(6) });
  const byField = await client.complete({ adapter: 'ts-lora', prompt: 'abc', sampling: greedy(6) });
  assert.equal(byModel.model, 'ts-lora');
  assert.equal(byField.model, 'ts-lora');
  assert.deepEqual(byField.tokenIds, byModel.tokenIds);
  await assert.rejects(client.loadAdapter('ts-lora', `${repoRoot}test/fixtures/lora/mlx`), (e: GenerationServiceError) => {
    return e.code === Code.AlreadyExists;
  });
  await client.unloadAdapter('ts-lora');
  await assert.rejects(client.complete({ model: 'ts-lora', prompt: 'abc' }), (e: GenerationServiceError) => e.code === Code.NotFound);
  await assert.rejects(client.unloadAdapter('ts-lora'), (e: GenerationServiceError) => e.code === Code.NotFound);
});

test('failures are GenerationServiceErrors with the status code and the offending field', async () => {
  const isBadTopP = (e: unknown) =>
    e instanceof GenerationServiceError &&
    e.code === Code.InvalidArgument &&
    e.field === 'sampling.top_p' &&
    e.codeName === 'invalid_argument';
  await assert.rejects(client.complete({ prompt: 'a', sampling: { topP: 0 } }), isBadTopP);
  await assert.rejects(client.collect({ prompt: 'a', sampling: { topP: 0 } }), isBadTopP);
  await assert.rejects(
    client.complete({ prompt: 'a', model: 'nope' }),
    (e) => e instanceof GenerationServiceError && e.code === Code.NotFound,
  );

  const session = client.session();
  const bad = session.generate({ prompt: 'a', sampling: { topP: 0 } });
  await assert.rejects(bad.completion(), (e) => isBadTopP(e) && (e as GenerationServiceError).requestId === bad.id);
  const good = session.generate({ prompt: 'a', sampling: greedy(2) });
  assert.throws(
    () => session.generate({ prompt: 'a' }, { requestId: good.id }),
    (e) => e instanceof GenerationServiceError && e.code === Code.AlreadyExists,
  );
  assert.equal((await good.completion()).tokenIds.length, 2, 'one failing request does not end the session');
  await session.close();

  const abort = new AbortController();
  const stream = client.generate({ prompt: 'a', sampling: { maxTokens: 4000, ignoreEos: true } }, { signal: abort.signal });
  await assert.rejects(
    (async () => {
      for await (const e of stream) if (e.type === 'delta') abort.abort();
    })(),
    (e) => e instanceof GenerationServiceError && e.code === Code.Canceled,
  );
  await waitForNoRunningRequests();
});

// Structured output and tool calls. The tiny model's weights are random: only the grammar makes its
// output valid, so the schemas bound every value (enums, booleans) to keep the outputs short.
const PERSON = {
  type: 'object',
  properties: { name: { type: 'string', enum: ['Ada', 'Grace'] }, admin: { type: 'boolean' } },
  required: ['name', 'admin'],
};
const WEATHER: Tool = {
  name: 'get_weather',
  description: 'The current weather in a city',
  parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Tokyo'] } }, required: ['city'] },
};
const TIME: Tool = {
  name: 'get_time',
  description: 'The current time in a timezone',
  parameters: JSON.stringify({ type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] }),
};
const weatherQuestion: ChatMessage[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

function assertWeatherCall(call: ToolCall | undefined): asserts call is ToolCall {
  assert.ok(call, 'a tool call');
  assert.equal(call.name, 'get_weather');
  assert.ok(call.id.length > 0);
  const args = parseToolArguments(call);
  assert.deepEqual(Object.keys(args), ['city']);
  assert.ok(['Paris', 'Tokyo'].includes(args.city as string), call.arguments);
}

test('a JSON schema (object or text) constrains the output to an instance of it', async () => {
  for (const jsonSchema of [PERSON, JSON.stringify(PERSON)]) {
    const r = await client.complete({ prompt: 'A user:', sampling: { temperature: 0, maxTokens: 200, jsonSchema } });
    assert.equal(r.finish.finishReason, 'stop', r.text);
    const value = JSON.parse(r.text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(value).sort(), ['admin', 'name']);
    assert.ok(['Ada', 'Grace'].includes(value.name as string));
    assert.equal(typeof value.admin, 'boolean');
    assert.deepEqual(r.toolCalls, []);
  }
});

test('a choice, a regex and any JSON object constrain the output', async () => {
  const choices = ['yes', 'no', 'maybe'];
  const chosen = await client.complete({ prompt: 'Is it raining?', sampling: { temperature: 0, maxTokens: 20, choice: choices } });
  assert.ok(choices.includes(chosen.text), chosen.text);
  assert.equal(chosen.finish.finishReason, 'stop');

  const session = client.session();
  const matched = await session
    .generate({ prompt: 'A year:', sampling: { temperature: 0, maxTokens: 20, regex: '(19|20)[0-9]{2}' } })
    .completion();
  await session.close();
  assert.match(matched.text, /^(19|20)[0-9]{2}$/);

  const object = await client.collect({ prompt: 'JSON:', sampling: { temperature: 0, maxTokens: 2, jsonObject: true } });
  assert.ok(object.text.startsWith('{'), object.text);
});

test('tool choice "required" gets a call of the tool with arguments that parse, on the stream and from complete()', async () => {
  const request = {
    prompt: { messages: weatherQuestion, tools: [WEATHER], toolChoice: 'required' as const },
    sampling: { temperature: 0, maxTokens: 200 },
  };
  const streamed: ToolCall[] = [];
  let finish: GenerationEvent | undefined;
  for await (const e of client.generate(request)) {
    if (e.type === 'delta') streamed.push(...e.toolCalls);
    else if (e.type === 'finished') finish = e;
  }
  assert.equal(streamed.length, 1);
  assertWeatherCall(streamed[0]);
  assert.equal(finish?.type === 'finished' && finish.finishReason, 'tool_calls');

  // complete() runs the unary Complete RPC (whose response carries the calls), not a stream.
  const methods: string[] = [];
  const recording = createGenerationClient({
    transport: createGrpcTransport({
      baseUrl,
      interceptors: [
        (next) => (req) => {
          methods.push(req.method.name);
          return next(req);
        },
      ],
    }),
  });
  const completed = await recording.complete(request);
  assert.deepEqual(methods, ['Complete']);
  assert.equal(completed.finish.finishReason, 'tool_calls');
  assert.equal(completed.text, '', 'the call markup is not part of the text');
  assert.equal(completed.toolCalls.length, 1);
  assertWeatherCall(completed.toolCalls[0]);
  assert.equal(completed.toolCalls[0].arguments, streamed[0].arguments, 'greedy: the same call');
});

test('a tool call round trip: call, the result as a tool message, then an answer', async () => {
  const tools = [TIME, WEATHER];
  const first = await client.complete({
    prompt: { messages: weatherQuestion, tools, toolChoice: { function: 'get_weather' } },
    sampling: { temperature: 0, maxTokens: 200 },
  });
  assert.equal(first.finish.finishReason, 'tool_calls');
  const [call] = first.toolCalls;
  assertWeatherCall(call);

  const result = { temperature_celsius: 21, sky: 'clear' };
  const messages = [...weatherQuestion, assistantMessage(first), toolMessage(call, result)];
  assert.deepEqual(messages[2], { role: 'tool', content: JSON.stringify(result), toolCallId: call.id, name: 'get_weather' });
  const session = client.session();
  const answer = await session.generate({ prompt: { messages, tools }, sampling: { temperature: 0, maxTokens: 16 } }).completion();
  await session.close();
  assert.ok(['stop', 'length', 'tool_calls'].includes(answer.finish.finishReason), answer.finish.finishReason);
  assert.ok(answer.finish.usage.promptTokens > first.finish.usage.promptTokens, 'the second prompt holds the call and its result');
  const rendered = await client.detokenize((await client.tokenize({ messages, tools })).tokenIds);
  assert.ok(rendered.includes(JSON.stringify(result)), 'the tool result is in the rendered prompt');
});

test('a schema that does not compile is INVALID_ARGUMENT on sampling.json_schema; two formats are refused before sending', async () => {
  const isBadSchema = (e: unknown) =>
    e instanceof GenerationServiceError && e.code === Code.InvalidArgument && e.field === 'sampling.json_schema';
  await assert.rejects(client.complete({ prompt: 'a', sampling: { jsonSchema: { type: 'nonsense' } } }), isBadSchema);
  await assert.rejects(client.complete({ prompt: 'a', sampling: { jsonSchema: '{not json' } }), isBadSchema);
  const session = client.session();
  await assert.rejects(session.generate({ prompt: 'a', sampling: { jsonSchema: { type: 'nonsense' } } }).completion(), isBadSchema);

  const isTwoFormats = (e: unknown) =>
    e instanceof GenerationServiceError && e.code === Code.InvalidArgument && e.field === 'sampling.structured_output';
  assert.throws(() => session.generate({ prompt: 'a', sampling: { regex: 'a+', choice: ['a'] } }), isTwoFormats);
  assert.equal(session.openRequests, 0);
  await session.close();
  await assert.rejects(client.complete({ prompt: 'a', sampling: { jsonSchema: PERSON, jsonObject: true } }), isTwoFormats);
  await assert.rejects(
    client.complete({ prompt: { messages: weatherQuestion, tools: [WEATHER], toolChoice: 'sometimes' as 'auto' } }),
    (e) => e instanceof GenerationServiceError && e.field === 'prompt.chat.tool_choice',
  );
});
