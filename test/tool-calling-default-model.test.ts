// Tool calling on the real default model (SmolLM2-135M-Instruct, whose ChatML template knows no
// tools: the server describes them in the system message, Hermes style), through the OpenAI SDK
// and gRPC: a required or named call is forced by the grammar and its arguments validate against
// the tool's schema; streamed calls come as delta.tool_calls; a call → result → answer round trip
// works; tool_choice "none" gives text.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import type { RunningServer } from '../src/cli/serve.ts';
import { FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { ToolChoiceMode } from '../src/gen/mlxserve/v1/prompt_pb.ts';
import { startDefaultModelServer } from './helpers/full-server.ts';

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 40 }, unit: { enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
};
const TIME = { type: 'object', properties: { timezone: { type: 'string', maxLength: 40 } }, required: ['timezone'] };
const tools: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Get the current weather in a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'get_time', description: 'Get the current time in a timezone', parameters: TIME } },
];
const ajv = new Ajv();
const validators: Record<string, ReturnType<Ajv['compile']>> = { get_weather: ajv.compile(WEATHER), get_time: ajv.compile(TIME) };
const ask = (content: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content }];

function checkCall(call: { id: string; type: string; function: { name: string; arguments: string } }, name?: string) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  if (name) assert.equal(call.function.name, name);
  const validate = validators[call.function.name];
  assert.ok(validate, `a call of one of the tools, got ${call.function.name}`);
  assert.ok(validate(JSON.parse(call.function.arguments)), call.function.arguments);
}

describe('tool calling on the default model', () => {
  let server: RunningServer;
  let openai: OpenAI;
  let model: string;
  before(async () => {
    server = await startDefaultModelServer({ batchSize: 8 });
    model = (await server.ready).id;
    openai = new OpenAI({ baseURL: server.adapter.url, apiKey: 'unused' });
  });
  after(async () => {
    await server?.close();
  });

  test('required and named calls: forced, arguments valid, finish_reason tool_calls, streamed alike', async () => {
    const cases: [string, OpenAI.ChatCompletionToolChoiceOption, string | undefined][] = [
      ['What is the weather in Paris?', 'required', undefined],
      ['What time is it in Tokyo?', { type: 'function', function: { name: 'get_time' } }, 'get_time'],
      ['Tell me a joke.', { type: 'function', function: { name: 'get_weather' } }, 'get_weather'],
    ];
    for (const [question, toolChoice, name] of cases) {
      const r = await openai.chat.completions.create({
        model,
        messages: ask(question),
        tools,
        tool_choice: toolChoice,
        temperature: 0,
        max_tokens: 100,
      });
      const choice = r.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.content, null);
      assert.equal(choice.message.tool_calls?.length, 1);
      checkCall(choice.message.tool_calls?.[0] as never, name);

      const stream = await openai.chat.completions.create({
        model,
        messages: ask(question),
        tools,
        tool_choice: toolChoice,
        temperature: 0,
        max_tokens: 100,
        stream: true,
      });
      const streamed: { index: number; id?: string; name?: string; arguments: string }[] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        for (const d of c?.delta.tool_calls ?? []) {
          const at = (streamed[d.index] ??= { index: d.index, arguments: '' });
          at.id ??= d.id;
          at.name ??= d.function?.name;
          at.arguments += d.function?.arguments ?? '';
        }
        finish = c?.finish_reason ?? finish;
      }
      assert.equal(finish, 'tool_calls');
      assert.equal(streamed.length, 1);
      const whole = choice.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      assert.equal(streamed[0].name, whole.function.name);
      assert.equal(streamed[0].arguments, whole.function.arguments);
    }
  });

  test('parallel calls when asked: one or more, each valid', async () => {
    const r = await openai.chat.completions.create({
      model,
      messages: ask('What is the weather in Paris and in Rome?'),
      tools,
      tool_choice: 'required',
      parallel_tool_calls: true,
      temperature: 0,
      max_tokens: 200,
    });
    const calls = r.choices[0].message.tool_calls ?? [];
    assert.ok(calls.length >= 1);
    // The last call may be cut by max_tokens (a small model repeats itself): the complete ones validate.
    for (const call of calls) checkCall(call as never);
    assert.ok(['tool_calls', 'length'].includes(r.choices[0].finish_reason));
  });

  test('a round trip: call, tool result, answer; the result is part of the next prompt', async () => {
    const first = await openai.chat.completions.create({
      model,
      messages: ask('What is the weather in Paris?'),
      tools,
      tool_choice: 'required',
      temperature: 0,
      max_tokens: 100,
    });
    const call = first.choices[0].message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      ...ask('What is the weather in Paris?'),
      first.choices[0].message,
      { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temperature: 21, sky: 'sunny' }) },
    ];
    const answer = await openai.chat.completions.create({ model, messages, tools, temperature: 0, max_tokens: 60 });
    assert.ok(['stop', 'length', 'tool_calls'].includes(answer.choices[0].finish_reason));
    assert.ok(
      (answer.usage?.prompt_tokens ?? 0) > (first.usage?.prompt_tokens ?? 0) + 10,
      'the call and its result were rendered into the prompt',
    );
    // The first turn's prompt is a prefix of the second's: the prefix cache serves it.
    assert.ok((answer.usage?.prompt_tokens_details?.cached_tokens ?? 0) > 0);
  });

  test('auto and none: calls found in free output validate; none gives text only', async () => {
    const auto = await openai.chat.completions.create({
      model,
      messages: ask('Use a tool: weather in Oslo?'),
      tools,
      temperature: 0,
      max_tokens: 100,
    });
    for (const call of auto.choices[0].message.tool_calls ?? []) checkCall(call as never);
    const none = await openai.chat.completions.create({
      model,
      messages: ask('What is the weather in Paris?'),
      tools,
      tool_choice: 'none',
      temperature: 0,
      max_tokens: 30,
    });
    assert.equal(none.choices[0].message.tool_calls, undefined);
    assert.ok((none.choices[0].message.content ?? '').length > 0);
    assert.ok((none.usage?.prompt_tokens ?? 0) < (auto.usage?.prompt_tokens ?? 0), 'tool_choice none does not show the tools');
  });

  test('a tool schema the grammar compiler refuses is a 400 naming tools; the server goes on', async () => {
    const bad: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'bogus' } } } } },
    ];
    await assert.rejects(
      openai.chat.completions.create({ model, messages: ask('x'), tools: bad, tool_choice: 'required', max_tokens: 5 }),
      (e: unknown) =>
        e instanceof OpenAI.BadRequestError && (e.error as { param?: string }).param === 'tools' && /could not be compiled/.test(e.message),
    );
    const ok = await openai.chat.completions.create({ model, messages: ask('hi'), max_tokens: 3 });
    assert.equal(ok.choices.length, 1);
  });

  test('over gRPC: tools in the chat prompt, calls as GenerationDelta.tool_calls, FINISH_REASON_TOOL_CALLS', async () => {
    const client = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://${server.grpcTarget}` }));
    const calls: { id: string; name: string; arguments: string }[] = [];
    let text = '';
    let finish: FinishReason | undefined;
    for await (const r of client.generateStream({
      prompt: {
        input: {
          case: 'chat',
          value: {
            messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
            tools: tools.map((t) => ({
              name: (t as OpenAI.ChatCompletionFunctionTool).function.name,
              description: (t as OpenAI.ChatCompletionFunctionTool).function.description,
              parameters: JSON.stringify((t as OpenAI.ChatCompletionFunctionTool).function.parameters),
            })),
            toolChoice: { choice: { case: 'mode', value: ToolChoiceMode.REQUIRED } },
          },
        },
      },
      sampling: { temperature: 0, maxTokens: 100 },
    })) {
      if (r.event.case === 'delta') {
        text += r.event.value.text;
        calls.push(...r.event.value.toolCalls);
      }
      if (r.event.case === 'finished') finish = r.event.value.finishReason;
    }
    assert.equal(finish, FinishReason.TOOL_CALLS);
    assert.equal(text, '');
    assert.equal(calls.length, 1);
    checkCall({ id: calls[0].id, type: 'function', function: calls[0] });
  });
});
