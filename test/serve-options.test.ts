// vLLM's serving flags on the whole server (engine process, gRPC service, REST adapter):
// --served-model-name (an id and aliases), --max-model-len (the context the engine enforces and
// reports), --chat-template (in place of the model's), and sampling defaults from the model's
// generation_config.json (--generation-config auto | vllm); and the startup errors of each.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Code, type ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import OpenAI from 'openai';
import { FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';

const MAX_MODEL_LEN = 128;
/** generation_config.json's max_new_tokens. */
const MAX_NEW_TOKENS = 5;
const TEMPLATE =
  "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";

/** Token ids the tiny byte-level vocabulary has (bytes), of a given length. */
const tokens = (n: number) => Array.from({ length: n }, (_, i) => 97 + (i % 26));

describe('--served-model-name, --max-model-len, --chat-template and generation_config.json defaults', () => {
  let full: FullServer;
  let openai: OpenAI;
  let grpc: Client<typeof GenerationService>;

  before(async () => {
    full = await startFullServer({
      model: { generationConfig: { temperature: 0, top_k: 50, max_new_tokens: MAX_NEW_TOKENS } },
      servedModelNames: ['my-model', 'alias-a', 'org/alias-b'],
      chatTemplate: TEMPLATE,
      engine: { maxModelLen: MAX_MODEL_LEN },
    });
    openai = new OpenAI({ baseURL: full.server.adapter.url, apiKey: 'unused', maxRetries: 0 });
    grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: full.grpcBase }));
  });
  after(() => full?.close());

  test('/v1/models and ListModels report the first name as the id, the aliases, and --max-model-len as the context', async () => {
    assert.equal(full.model, 'my-model');
    const list = (await (await fetch(`${full.server.adapter.url}/models`)).json()) as { data: { id: string; max_model_len: number }[] };
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0].id, 'my-model');
    assert.equal(list.data[0].max_model_len, MAX_MODEL_LEN);
    for (const name of ['my-model', 'alias-a', 'org/alias-b', 'default']) {
      const one = await fetch(`${full.server.adapter.url}/models/${name}`);
      assert.equal(one.status, 200, name);
      assert.equal(((await one.json()) as { id: string }).id, 'my-model');
    }
    assert.equal((await fetch(`${full.server.adapter.url}/models/other`)).status, 404);
    const { models } = await grpc.listModels({});
    assert.equal(models[0].id, 'my-model');
    assert.deepEqual(models[0].aliases, ['alias-a', 'org/alias-b']);
    assert.equal(models[0].contextLength, MAX_MODEL_LEN);
  });

  test('every name and "default" are accepted as `model` and answered as the first; others get 404 / NOT_FOUND', async () => {
    for (const model of ['my-model', 'alias-a', 'org/alias-b', 'default']) {
      const r = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      assert.equal(r.model, 'my-model', model);
      const c = await grpc.complete({ model, prompt: { input: { case: 'text', value: 'hi' } }, sampling: { maxTokens: 2 } });
      assert.equal(c.model, 'my-model', model);
    }
    await assert.rejects(
      openai.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404 && e.code === 'model_not_found',
    );
    await assert.rejects(
      grpc.complete({ model: 'other', prompt: { input: { case: 'text', value: 'hi' } } }),
      (e: ConnectError) => e.code === Code.NotFound && /this server serves "my-model"/.test(e.rawMessage),
    );
  });

  test('the context is --max-model-len: a prompt or a budget beyond it is refused naming it', async () => {
    const refused = async (prompt: number[], maxTokens: number, param: string) => {
      const r = await fetch(`${full.server.adapter.url}/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'alias-a', prompt, max_tokens: maxTokens }),
      });
      assert.equal(r.status, 400);
      const { error } = (await r.json()) as { error: { param: string; message: string } };
      assert.equal(error.param, param);
      assert.match(error.message, new RegExp(`maximum context length is ${MAX_MODEL_LEN} tokens`));
    };
    await refused(tokens(MAX_MODEL_LEN), 1, 'prompt');
    await refused(tokens(100), 29, 'max_tokens');
    const fits = await openai.completions.create({ model: 'default', prompt: tokens(100), max_tokens: 28 });
    assert.equal(fits.usage?.prompt_tokens, 100);
    await assert.rejects(
      grpc.complete({ prompt: { input: { case: 'tokens', value: { ids: tokens(MAX_MODEL_LEN + 10) } } } }),
      (e: ConnectError) => e.code === Code.InvalidArgument && new RegExp(`${MAX_MODEL_LEN} tokens`).test(e.rawMessage),
    );
  });

  test("chat prompts are rendered with --chat-template, not the model's", async () => {
    const { tokenIds } = await grpc.tokenize({
      prompt: { input: { case: 'chat', value: { messages: [{ role: 'user', content: 'hi' }] } } },
    });
    const { text } = await grpc.detokenize({ tokenIds });
    assert.equal(text, '<user>hi<assistant>');
    const r = await openai.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
    assert.equal(r.usage?.prompt_tokens, '<user>hi<assistant>'.length);
  });

  test("generation_config.json's temperature applies to requests that give none; a request's own value wins", async () => {
    for (const content of ['one', 'two words', 'three more words']) {
      const ask = (temperature?: number) =>
        openai.chat.completions.create({ model: 'default', messages: [{ role: 'user', content }], max_tokens: 6, temperature });
      const [byDefault, greedy] = await Promise.all([ask(), ask(0)]);
      assert.equal(byDefault.choices[0].message.content, greedy.choices[0].message.content, content);
    }
  });

  test('max_new_tokens is the default max_tokens, cut to the context the prompt leaves; a request that gives max_tokens keeps it', async () => {
    const chat = (max_tokens?: number) =>
      openai.chat.completions.create({
        model: 'default',
        messages: [{ role: 'user', content: 'count' }],
        max_tokens,
        // @ts-expect-error vLLM's extension
        ignore_eos: true,
      });
    const byDefault = await chat();
    assert.equal(byDefault.usage?.completion_tokens, MAX_NEW_TOKENS);
    assert.equal(byDefault.choices[0].finish_reason, 'length');
    assert.equal((await chat(8)).usage?.completion_tokens, 8);
    // 3 tokens of context left: the default budget shrinks to them instead of refusing the request.
    const nearEnd = await grpc.complete({
      prompt: { input: { case: 'tokens', value: { ids: tokens(MAX_MODEL_LEN - 3) } } },
      sampling: { ignoreEos: true },
    });
    assert.equal(nearEnd.finished?.usage?.completionTokens, 3);
    assert.equal(nearEnd.finished?.finishReason, FinishReason.LENGTH);
  });
});

test('--generation-config vllm ignores generation_config.json: no default max_tokens, the built-in sampling defaults', async () => {
  const full = await startFullServer({
    model: { generationConfig: { max_new_tokens: MAX_NEW_TOKENS } },
    generationConfig: 'vllm',
    engine: { maxModelLen: 48 },
  });
  try {
    const grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: full.grpcBase }));
    const r = await grpc.complete({ prompt: { input: { case: 'tokens', value: { ids: tokens(40) } } }, sampling: { ignoreEos: true } });
    // Until the context is full, not max_new_tokens.
    assert.equal(r.finished?.usage?.completionTokens, 8);
    assert.equal(r.model, full.model);
    assert.deepEqual((await grpc.listModels({})).models[0].aliases, []);
  } finally {
    await full.close();
  }
});

describe('startup errors', () => {
  test("--max-model-len beyond the model's context fails the start, naming both numbers", async () => {
    const over = (TEST_MODEL_SPEC.contextLength ?? 0) + 1;
    await assert.rejects(
      startFullServer({ engine: { maxModelLen: over } }),
      new RegExp(`--max-model-len ${over} is more than the model's context length of ${TEST_MODEL_SPEC.contextLength} tokens`),
    );
  });

  test('a --chat-template that does not parse, or an empty model name, is refused before anything loads', async () => {
    await assert.rejects(
      startFullServer({ chatTemplate: '{% for m in messages %}' }),
      /the chat template \(--chat-template\) does not parse/,
    );
    await assert.rejects(startFullServer({ servedModelNames: ['ok', ''] }), /--served-model-name: a model name must not be empty/);
  });
});
