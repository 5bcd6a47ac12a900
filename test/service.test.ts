// The gRPC service's single-request RPCs against a real engine on a tiny model: every RPC's
// answer, and every refusal with its status code and the offending field.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { ErrorCode, FinishReason, GenerationErrorSchema } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { EngineState, GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import type { PromptSchema } from '../src/gen/mlxserve/v1/prompt_pb.ts';
import type { SamplingParamsSchema } from '../src/gen/mlxserve/v1/sampling_pb.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { TINY_SPECIAL, TINY_VOCAB } from './helpers/tiny-model.ts';

let server: TestServer;
let client: Client<typeof GenerationService>;

before(async () => {
  server = await startTestServer();
  client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
});
after(() => server.close());

const text = (value: string) => ({ input: { case: 'text' as const, value } });
const tokens = (ids: number[]) => ({ input: { case: 'tokens' as const, value: { ids } } });
const chat = (...messages: { role: string; content: string }[]) => ({ input: { case: 'chat' as const, value: { messages } } });
const greedy = (maxTokens: number) => ({ temperature: 0, maxTokens, ignoreEos: true });

/** Runs a call that must fail; returns its status code and the GenerationError in its details. */
async function refusal(call: () => Promise<unknown>): Promise<{ code: Code; field: string; message: string }> {
  try {
    await call();
  } catch (e) {
    const err = ConnectError.from(e);
    const [detail] = err.findDetails(GenerationErrorSchema);
    assert.ok(detail, `status ${Code[err.code]} carries a GenerationError: ${err.message}`);
    assert.equal(detail.code as number, err.code as number, 'the detail code is the status code');
    assert.equal(detail.message, err.rawMessage);
    return { code: err.code, field: detail.field, message: detail.message };
  }
  assert.fail('the call should have failed');
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of stream) out.push(x);
  return out;
}

test('GenerateStream streams started, deltas and finished; Complete returns the same completion', async () => {
  const req = { prompt: tokens([5, 6, 7, 8]), sampling: greedy(12) };
  const events = await collect(client.generateStream(req));
  const first = events[0].event;
  assert.equal(first.case, 'started');
  assert.equal(first.value.promptTokens, 4);
  assert.equal(first.value.model, server.model);
  const last = events[events.length - 1].event;
  assert.equal(last.case, 'finished');
  assert.equal(last.value.finishReason, FinishReason.LENGTH);
  assert.equal(last.value.usage?.promptTokens, 4);
  assert.equal(last.value.usage?.completionTokens, 12);
  const deltas = events.slice(1, -1).map((e) => (e.event.case === 'delta' ? e.event.value : assert.fail(`unexpected ${e.event.case}`)));
  const streamedIds = deltas.flatMap((d) => d.tokenIds);
  assert.equal(streamedIds.length, 12);

  const done = await client.complete(req);
  assert.equal(done.model, server.model);
  assert.deepEqual(done.tokenIds, streamedIds, 'greedy: the same tokens either way');
  assert.equal(done.text, deltas.map((d) => d.text).join(''));
  assert.equal(done.finished?.finishReason, FinishReason.LENGTH);
  assert.equal(done.finished?.usage?.completionTokens, 12);
});

test('stop tokens and stop strings end generation with their reason; logprobs come per token', async () => {
  const stopToken = await client.complete({ prompt: text('abc'), sampling: { maxTokens: 10, stopTokenIds: [65], logitBias: { 65: 100 } } });
  assert.equal(stopToken.finished?.finishReason, FinishReason.STOP);
  assert.deepEqual(stopToken.finished?.stopReason, { case: 'stopTokenId', value: 65 });
  // The model's end-of-sequence token stops generation and is named as the stop token, for a
  // plain prompt and for a chat (whose template ends turns with its own EOS token).
  const eos = await client.complete({ prompt: text('abc'), sampling: { maxTokens: 10, logitBias: { [TINY_SPECIAL.eos]: 100 } } });
  assert.equal(eos.finished?.finishReason, FinishReason.STOP);
  assert.deepEqual(eos.finished?.stopReason, { case: 'stopTokenId', value: TINY_SPECIAL.eos });
  const chatEnd = await client.complete({
    prompt: chat({ role: 'user', content: 'hi' }),
    sampling: { maxTokens: 10, logitBias: { [TINY_SPECIAL.imEnd]: 100 } },
  });
  assert.deepEqual(chatEnd.finished?.stopReason, { case: 'stopTokenId', value: TINY_SPECIAL.imEnd });

  const free = await client.complete({ prompt: text('abc'), sampling: greedy(30) });
  const stop = free.text.slice(4, 6);
  const stopped = await client.complete({ prompt: text('abc'), sampling: { ...greedy(30), stop: [stop] } });
  assert.equal(stopped.finished?.finishReason, FinishReason.STOP);
  assert.deepEqual(stopped.finished?.stopReason, { case: 'stopString', value: stop });
  assert.equal(stopped.text, free.text.slice(0, free.text.indexOf(stop)));

  // max_tokens ends the output inside a character (the first byte of 😊): the text drops it, the
  // token stays, streamed or not.
  const cut = { prompt: text('abc'), sampling: { maxTokens: 1, ignoreEos: true, logitBias: { 240: 100 } } };
  const whole = await client.complete(cut);
  assert.deepEqual(whole.tokenIds, [0xf0]);
  assert.equal(whole.text, '');
  assert.equal(whole.finished?.usage?.completionTokens, 1);
  const streamed = await collect(client.generateStream(cut));
  assert.equal(streamed.map((r) => (r.event.case === 'delta' ? r.event.value.text : '')).join(''), '');

  const withLogprobs = await client.complete({ prompt: text('abc'), sampling: { ...greedy(5), logprobs: true, topLogprobs: 3 } });
  assert.equal(withLogprobs.logprobs.length, 5);
  withLogprobs.logprobs.forEach((l, i) => {
    assert.equal(l.tokenId, withLogprobs.tokenIds[i]);
    assert.ok(l.logprob <= 0);
    assert.equal(l.topLogprobs.length, 3);
    assert.equal(l.topLogprobs[0].tokenId, l.tokenId, 'greedy picks the most likely token');
  });
});

test('chat input is rendered with the template', async () => {
  const done = await client.complete({ prompt: chat({ role: 'user', content: 'hi' }), sampling: greedy(2) });
  // <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n
  assert.equal(done.finished?.usage?.promptTokens, 1 + 5 + 2 + 1 + 1 + 1 + 10);
});

test('Tokenize matches what generation feeds the model; Detokenize inverts it', async () => {
  const t = await client.tokenize({ prompt: text('hé!'), returnTokenStrings: true });
  assert.deepEqual(t.tokenIds, [...Buffer.from('hé!')]);
  assert.equal(t.tokenStrings.length, t.tokenIds.length);
  assert.equal(t.tokenStrings[0], 'h');
  const c = await client.tokenize({ prompt: chat({ role: 'user', content: 'hi' }) });
  assert.equal(c.tokenIds[0], TINY_SPECIAL.imStart);
  assert.equal(c.tokenIds.length, 21);
  assert.deepEqual(c.tokenStrings, []);
  const ids = await client.tokenize({ prompt: tokens([104, 105]), returnTokenStrings: true });
  assert.deepEqual(ids.tokenIds, [104, 105]);
  assert.deepEqual(ids.tokenStrings, ['h', 'i']);
  assert.deepEqual((await client.tokenize({ prompt: text('') })).tokenIds, []);

  assert.equal((await client.detokenize({ tokenIds: t.tokenIds })).text, 'hé!');
  assert.equal((await client.detokenize({ tokenIds: c.tokenIds, skipSpecialTokens: true })).text, 'user\nhi\nassistant\n');
  assert.match((await client.detokenize({ tokenIds: c.tokenIds })).text, /^<\|im_start\|>user/);
});

test('ListModels describes the served model; GetServerStatus reports the engine', async () => {
  const { models } = await client.listModels({});
  assert.equal(models.length, 1);
  const [m] = models;
  assert.equal(m.id, server.model);
  assert.equal(m.isDefault, true);
  assert.equal(m.vocabSize, TINY_VOCAB);
  assert.equal(m.contextLength, 4096);
  assert.equal(m.architecture, 'llama');
  assert.equal(m.hasChatTemplate, true);
  assert.deepEqual(m.eosTokenIds, [TINY_SPECIAL.eos, TINY_SPECIAL.imEnd]);
  assert.equal(m.numLayers, 2);
  assert.equal(m.hiddenSize, 64);
  assert.ok(m.kvBytesPerToken > 0n);
  assert.ok(m.created && m.created.seconds > 0n);

  const s = await client.getServerStatus({});
  assert.equal(s.engineState, EngineState.READY);
  assert.equal(s.runningRequests, 0);
  assert.equal(s.waitingRequests, 0);
  assert.ok(s.kvCacheBytesCapacity > 0n);
  assert.ok(s.prefixCacheQueryTokens > 0n, 'earlier tests looked up prompts');
  assert.ok(s.prefixCacheHitRate >= 0 && s.prefixCacheHitRate <= 1);
  assert.ok(s.uptime && (s.uptime.seconds > 0n || s.uptime.nanos > 0));
  assert.match(s.serverVersion, /^\d+\.\d+\.\d+/);
});

test('bad requests get INVALID_ARGUMENT naming the field, in the status and its GenerationError', async () => {
  type Req = { prompt?: MessageInitShape<typeof PromptSchema>; sampling?: MessageInitShape<typeof SamplingParamsSchema> };
  const cases: [string, Req][] = [
    ['prompt', { sampling: greedy(2) }],
    ['prompt.text', { prompt: text('') }],
    ['prompt.tokens.ids', { prompt: tokens([1, TINY_VOCAB]) }],
    ['prompt.tokens.ids', { prompt: tokens([]) }],
    ['prompt.chat.messages', { prompt: chat() }],
    ['prompt.chat.messages', { prompt: chat({ role: 'wizard', content: 'hi' }) }],
    ['prompt.tokens.ids', { prompt: tokens(new Array(4096).fill(65)) }],
    ['sampling.max_tokens', { prompt: tokens(new Array(4000).fill(65)), sampling: { maxTokens: 200 } }],
    ['sampling.max_tokens', { prompt: text('a'), sampling: { maxTokens: 0 } }],
    ['sampling.temperature', { prompt: text('a'), sampling: { temperature: 2.5 } }],
    ['sampling.top_p', { prompt: text('a'), sampling: { topP: 0 } }],
    ['sampling.top_k', { prompt: text('a'), sampling: { topK: TINY_VOCAB + 1 } }],
    ['sampling.min_p', { prompt: text('a'), sampling: { minP: 1.5 } }],
    ['sampling.seed', { prompt: text('a'), sampling: { seed: 2n ** 60n } }],
    ['sampling.repetition_penalty', { prompt: text('a'), sampling: { repetitionPenalty: 0 } }],
    ['sampling.presence_penalty', { prompt: text('a'), sampling: { presencePenalty: 3 } }],
    ['sampling.frequency_penalty', { prompt: text('a'), sampling: { frequencyPenalty: -3 } }],
    ['sampling.logit_bias', { prompt: text('a'), sampling: { logitBias: { [TINY_VOCAB]: 1 } } }],
    ['sampling.logit_bias', { prompt: text('a'), sampling: { logitBias: { 5: 101 } } }],
    ['sampling.stop', { prompt: text('a'), sampling: { stop: [''] } }],
    ['sampling.stop', { prompt: text('a'), sampling: { stop: new Array(17).fill('x') } }],
    ['sampling.stop_token_ids', { prompt: text('a'), sampling: { stopTokenIds: [TINY_VOCAB] } }],
    ['sampling.top_logprobs', { prompt: text('a'), sampling: { logprobs: true, topLogprobs: 21 } }],
  ];
  for (const [field, req] of cases) {
    for (const call of [() => client.complete(req), () => collect(client.generateStream(req))]) {
      const r = await refusal(call);
      assert.equal(r.code, Code.InvalidArgument, `${field}: ${r.message}`);
      assert.equal(r.field, field, r.message);
      // 'prompt.tokens.ids' is named in the message as "the prompt".
      assert.ok(
        field.split('.').some((part) => r.message.includes(part)),
        `the message names the field: ${r.message}`,
      );
    }
  }
  const tok = await refusal(() => client.tokenize({ prompt: tokens([TINY_VOCAB + 5]) }));
  assert.deepEqual([tok.code, tok.field], [Code.InvalidArgument, 'prompt.tokens.ids']);
  const detok = await refusal(() => client.detokenize({ tokenIds: [-1] }));
  assert.deepEqual([detok.code, detok.field], [Code.InvalidArgument, 'token_ids']);
  const noPrompt = await refusal(() => client.tokenize({}));
  assert.deepEqual([noPrompt.code, noPrompt.field], [Code.InvalidArgument, 'prompt']);
  // Nothing refused took a slot.
  assert.equal((await client.getServerStatus({})).runningRequests, 0);
});

test('an unknown model is NOT_FOUND; naming the served model works', async () => {
  for (const call of [
    () => client.complete({ model: 'no-such-model', prompt: text('a') }),
    () => collect(client.generateStream({ model: 'no-such-model', prompt: text('a') })),
    () => client.tokenize({ model: 'no-such-model', prompt: text('a') }),
    () => client.detokenize({ model: 'no-such-model', tokenIds: [65] }),
  ]) {
    const r = await refusal(call);
    assert.equal(r.code, Code.NotFound);
    assert.equal(r.field, '');
    assert.match(r.message, /no-such-model/);
  }
  const ok = await client.complete({ model: server.model, prompt: text('a'), sampling: greedy(2) });
  assert.equal(ok.tokenIds.length, 2);
  assert.equal(ErrorCode.NOT_FOUND as number, Code.NotFound as number, 'error codes are the gRPC status numbers');
});
