// LoRA adapters through the API, on the whole server (engine process, gRPC service, REST adapter)
// serving the tiny Llama of test/fixtures/architectures/llama with the adapters of
// test/fixtures/lora: selection by `model` (REST and gRPC) or `adapter` (gRPC), /v1/models and
// ListModels with `parent`, runtime load and unload over REST (vLLM's routes) and gRPC, and every
// refusal: unknown names, bad files, a rank above --max-lora-rank, names of the base model, and
// the API key.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import OpenAI from 'openai';
import { FinishReason, GenerationErrorSchema } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import type { AdapterInfo } from '../src/engine/request.ts';
import { matchRoute } from '../src/adapter-openai/adapter-server.ts';
import { selectModel } from '../src/service/adapter-selection.ts';
import type { ModelInfo } from '../src/service/model-info.ts';
import { RequestError } from '../src/service/request-error.ts';
import { startFullServer, waitUntil, type FullServer } from './helpers/full-server.ts';
import { scrape } from './helpers/prometheus-text.ts';
import { writeTinyTokenizer } from './helpers/tiny-model.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const LORA = join(FIXTURES, 'lora');
const API_KEY = 'sk-lora-test';
/** The adapters of rank 4 fit; peft-rslora (rank 8) does not. */
const MAX_LORA_RANK = 4;

const scratch = mkdtempSync(join(tmpdir(), 'lora-api-'));

/** The fixture Llama as a servable directory: its config and weights plus the tiny byte-level tokenizer (the same 260 ids). */
function fixtureModel(): string {
  const dir = join(scratch, 'llama');
  cpSync(join(FIXTURES, 'architectures', 'llama'), dir, { recursive: true });
  rmSync(join(dir, 'reference.json'));
  writeTinyTokenizer(dir);
  return dir;
}

/** A copy of a fixture adapter whose adapter_config.json is not JSON. */
function malformedAdapter(): string {
  const dir = join(scratch, 'malformed');
  cpSync(join(LORA, 'mlx'), dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), '{"lora_parameters": {"rank": 4,');
  return dir;
}

let full: FullServer;
let rest: string;
let grpc: Client<typeof GenerationService>;
let openai: OpenAI;
let base: string;
const auth = { authorization: `Bearer ${API_KEY}` };

before(async () => {
  full = await startFullServer({
    modelDir: fixtureModel(),
    apiKey: API_KEY,
    engine: { loras: [{ name: 'lora-mlx', path: join(LORA, 'mlx') }], maxLoraRank: MAX_LORA_RANK, maxLoras: 2 },
  });
  rest = full.server.adapter.url;
  base = full.model;
  grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: full.grpcBase }));
  openai = new OpenAI({ baseURL: rest, apiKey: API_KEY, maxRetries: 0 });
});
after(async () => {
  await full?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const grpcCall = { headers: auth };
const text = (value: string) => ({ input: { case: 'text' as const, value } });
const GREEDY = { temperature: 0, maxTokens: 8, ignoreEos: true };

async function post(path: string, body: unknown, headers: Record<string, string> = auth): Promise<Response> {
  return fetch(`${rest}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function errorOf(r: Response): Promise<{ message: string; type: string; param: string | null; code: string | null }> {
  const body = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  return body.error;
}

/** Greedy completion tokens over gRPC, on the model or adapter `model` names. */
async function tokens(model: string | undefined, adapter?: string): Promise<number[]> {
  const r = await grpc.complete({ model, adapter, prompt: text('The adapter says'), sampling: GREEDY }, grpcCall);
  assert.equal(r.model, adapter ?? model ?? base);
  return r.tokenIds;
}

function grpcRefusal(code: Code, field?: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(Code[e.code], Code[code], e.rawMessage);
    if (field !== undefined) assert.equal(e.findDetails(GenerationErrorSchema)[0]?.field, field);
    if (message) assert.match(e.rawMessage, message);
    return true;
  };
}

describe('selecting an adapter', () => {
  test('ListModels and /v1/models list the base model first, then each adapter with its parent', async () => {
    const { models } = await grpc.listModels({}, grpcCall);
    assert.deepEqual(
      models.map((m) => [m.id, m.parent, m.isDefault]),
      [
        [base, undefined, true],
        ['lora-mlx', base, false],
      ],
    );
    const adapter = models[1].adapter;
    assert.deepEqual(
      [adapter?.path, adapter?.format, adapter?.rank, adapter?.scale, adapter?.layers, adapter?.modules.length],
      [join(LORA, 'mlx'), 'mlx-lm', 4, 2, 2, 7],
    );
    assert.equal(models[1].contextLength, models[0].contextLength);

    const list = (await (await fetch(`${rest}/models`, { headers: auth })).json()) as { data: Record<string, unknown>[] };
    assert.deepEqual(
      list.data.map((m) => [m.id, m.object, m.parent, m.root]),
      [
        [base, 'model', null, base],
        ['lora-mlx', 'model', base, join(LORA, 'mlx')],
      ],
    );
    assert.equal(list.data[1].max_model_len, list.data[0].max_model_len);
    const one = await fetch(`${rest}/models/lora-mlx`, { headers: auth });
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { parent: string }).parent, base);
  });

  test('greedy output with an adapter is the same every time, and differs from the base model', async () => {
    const baseTokens = await tokens(undefined);
    const mlx = await tokens('lora-mlx');
    assert.deepEqual(await tokens('lora-mlx'), mlx);
    assert.deepEqual(await tokens(undefined, 'lora-mlx'), mlx);
    assert.deepEqual(await tokens(base, 'lora-mlx'), mlx);
    assert.deepEqual(await tokens('default', 'lora-mlx'), mlx);
    assert.deepEqual(await tokens('lora-mlx', 'lora-mlx'), mlx);
    assert.deepEqual(await tokens(base), baseTokens);
    assert.notDeepEqual(mlx, baseTokens);
  });

  test('REST: `model` names the adapter for chat and completions, and responses echo it', async () => {
    const completion = async (model: string) => {
      const r = await openai.completions.create({
        model,
        prompt: 'The adapter says',
        max_tokens: 8,
        temperature: 0,
        ignore_eos: true,
      } as never);
      assert.equal(r.model, model);
      return r.choices[0].text;
    };
    const withAdapter = await completion('lora-mlx');
    assert.equal(await completion('lora-mlx'), withAdapter);
    const grpcText = (await grpc.complete({ model: 'lora-mlx', prompt: text('The adapter says'), sampling: GREEDY }, grpcCall)).text;
    assert.equal(withAdapter, grpcText);
    assert.notEqual(await completion(base), withAdapter);

    const chat = await openai.chat.completions.create({ model: 'lora-mlx', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assert.equal(chat.model, 'lora-mlx');
    const chunks: string[] = [];
    const stream = await openai.chat.completions.create({
      model: 'lora-mlx',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
      stream: true,
    });
    for await (const chunk of stream) chunks.push(chunk.model);
    assert.ok(chunks.length > 0 && chunks.every((m) => m === 'lora-mlx'), chunks.join());
  });

  test('requests of the base model and of two adapters on one Generate stream each get their own output', async () => {
    const loaded = await grpc.loadAdapter({ name: 'batch-peft', path: join(LORA, 'peft') }, grpcCall);
    try {
      const solo = { base: await tokens(undefined), mlx: await tokens('lora-mlx'), peft: await tokens('batch-peft') };
      assert.equal(loaded.model?.id, 'batch-peft');
      async function* starts() {
        for (const [requestId, model] of [
          ['base', undefined],
          ['mlx', 'lora-mlx'],
          ['peft', 'batch-peft'],
        ] as const) {
          yield { action: { case: 'start' as const, value: { requestId, model, prompt: text('The adapter says'), sampling: GREEDY } } };
        }
      }
      const got: Record<string, number[]> = { base: [], mlx: [], peft: [] };
      const started: Record<string, string> = {};
      for await (const r of grpc.generate(starts(), grpcCall)) {
        if (r.event.case === 'started') started[r.requestId] = r.event.value.model;
        if (r.event.case === 'delta') got[r.requestId].push(...r.event.value.tokenIds);
        if (r.event.case === 'error') assert.fail(r.event.value.message);
      }
      assert.deepEqual(started, { base, mlx: 'lora-mlx', peft: 'batch-peft' });
      assert.deepEqual(got, solo);
    } finally {
      await grpc.unloadAdapter({ name: 'batch-peft' }, grpcCall);
    }
  });

  test('an unknown adapter is 404 / NOT_FOUND; `model` and `adapter` that disagree are INVALID_ARGUMENT', async () => {
    const r = await post('/chat/completions', { model: 'no-such-lora', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 404);
    assert.deepEqual(await errorOf(r), {
      message: 'The model `no-such-lora` does not exist or you do not have access to it.',
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found',
    });
    await assert.rejects(
      grpc.complete({ adapter: 'no-such-lora', prompt: text('hi') }, grpcCall),
      grpcRefusal(Code.NotFound, '', /adapter "no-such-lora" not found; this server serves .*"lora-mlx"/),
    );
    await assert.rejects(
      grpc.complete({ model: 'no-such-lora', prompt: text('hi') }, grpcCall),
      grpcRefusal(Code.NotFound, '', /model "no-such-lora" not found/),
    );
    await assert.rejects(
      grpc.complete({ model: 'other', adapter: 'lora-mlx', prompt: text('hi') }, grpcCall),
      grpcRefusal(Code.InvalidArgument, 'model', /does not go with adapter "lora-mlx"/),
    );
    // A refused start on the multiplexed stream is an error event, the stream goes on.
    async function* one() {
      yield { action: { case: 'start' as const, value: { requestId: 'x', adapter: 'no-such-lora', prompt: text('hi') } } };
    }
    for await (const r of grpc.generate(one(), grpcCall)) {
      assert.equal(r.event.case, 'error');
      if (r.event.case === 'error') assert.equal(r.event.value.code, Code.NotFound);
    }
  });

  test('Tokenize takes an adapter name for its base model', async () => {
    const a = await grpc.tokenize({ model: 'lora-mlx', prompt: text('abc') }, grpcCall);
    const b = await grpc.tokenize({ prompt: text('abc') }, grpcCall);
    assert.deepEqual(a.tokenIds, b.tokenIds);
  });

  test("REST: /tokenize and /detokenize take an adapter's name, with its base model's context length", async () => {
    const tokenize = async (model: string) => (await (await post('/tokenize', { model, prompt: 'abc' })).json()) as Record<string, unknown>;
    const [a, b] = [await tokenize('lora-mlx'), await tokenize(base)];
    assert.deepEqual(a, b);
    const listed = (await openai.models.retrieve(base)) as unknown as { max_model_len: number };
    assert.equal(a.max_model_len, listed.max_model_len);
    const d = await post('/detokenize', { model: 'lora-mlx', tokens: a.tokens });
    assert.deepEqual(await d.json(), { prompt: 'abc' });
    assert.equal((await post('/tokenize', { model: 'lora-none', prompt: 'abc' })).status, 404);
  });
});

test("vLLM's lora_requests_info names the adapters a streaming request computes with, and --max-loras", async () => {
  const abort = new AbortController();
  const scrapeLora = async () =>
    (await scrape(full.restBase, auth)).filter((x) => x.name === 'vllm:lora_requests_info').map((x) => x.labels);
  const iterator = grpc
    .generateStream(
      { model: 'lora-mlx', prompt: text('A long story'), sampling: { temperature: 0, maxTokens: 480, ignoreEos: true } },
      { ...grpcCall, signal: abort.signal },
    )
    [Symbol.asyncIterator]();
  await iterator.next();
  await waitUntil('the engine reports the adapter running', async () =>
    (await scrapeLora()).some((l) => l.running_lora_adapters === 'lora-mlx'),
  );
  assert.deepEqual(await scrapeLora(), [{ max_lora: '2', running_lora_adapters: 'lora-mlx', waiting_lora_adapters: '' }]);
  abort.abort();
  await iterator.next().catch(() => undefined);
  await waitUntil('the engine reports no adapter in use', async () => (await scrapeLora()).every((l) => l.running_lora_adapters === ''));
});

describe('loading and unloading at run time', () => {
  test("REST: vLLM's load_lora_adapter, use, unload_lora_adapter, then 404", async () => {
    const load = await post('/load_lora_adapter', { lora_name: 'peft-a', lora_path: join(LORA, 'peft') });
    assert.equal(load.status, 200);
    assert.match(load.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await load.text(), "Success: LoRA adapter 'peft-a' added successfully.");

    const models = await openai.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [base, 'lora-mlx', 'peft-a'],
    );
    const chat = await openai.chat.completions.create({ model: 'peft-a', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    assert.equal(chat.model, 'peft-a');

    const again = await post('/load_lora_adapter', { lora_name: 'peft-a', lora_path: join(LORA, 'peft') });
    assert.equal(again.status, 400);
    assert.deepEqual(await errorOf(again), {
      message: "The lora adapter 'peft-a' has already been loaded.",
      type: 'invalid_request_error',
      param: 'lora_name',
      code: null,
    });

    const unload = await post('/unload_lora_adapter', { lora_name: 'peft-a' });
    assert.equal(unload.status, 200);
    assert.equal(await unload.text(), "Success: LoRA adapter 'peft-a' removed successfully.");
    await assert.rejects(
      openai.chat.completions.create({ model: 'peft-a', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 404 && e.code === 'model_not_found',
    );
    assert.deepEqual(
      (await openai.models.list()).data.map((m) => m.id),
      [base, 'lora-mlx'],
    );
    const gone = await post('/unload_lora_adapter', { lora_name: 'peft-a' });
    assert.equal(gone.status, 404);
    assert.deepEqual(await errorOf(gone), {
      message: "The lora adapter 'peft-a' cannot be found.",
      type: 'invalid_request_error',
      param: 'lora_name',
      code: 'model_not_found',
    });
  });

  test('gRPC: LoadAdapter returns the adapter as listed; the same name twice is ALREADY_EXISTS; UnloadAdapter, then NOT_FOUND', async () => {
    const { model } = await grpc.loadAdapter({ name: 'grpc-peft', path: join(LORA, 'peft') }, grpcCall);
    assert.deepEqual(
      [model?.id, model?.parent, model?.adapter?.format, model?.adapter?.rank, model?.adapter?.scale],
      ['grpc-peft', base, 'peft', 4, 2],
    );
    assert.deepEqual(model?.adapter?.modules.toSorted(), ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    const r = await grpc.complete({ adapter: 'grpc-peft', prompt: text('hi'), sampling: { maxTokens: 2 } }, grpcCall);
    assert.equal(r.model, 'grpc-peft');
    await assert.rejects(
      grpc.loadAdapter({ name: 'grpc-peft', path: join(LORA, 'mlx') }, grpcCall),
      grpcRefusal(Code.AlreadyExists, '', /already loaded/),
    );
    await grpc.unloadAdapter({ name: 'grpc-peft' }, grpcCall);
    await assert.rejects(grpc.complete({ adapter: 'grpc-peft', prompt: text('hi') }, grpcCall), grpcRefusal(Code.NotFound));
    await assert.rejects(grpc.unloadAdapter({ name: 'grpc-peft' }, grpcCall), grpcRefusal(Code.NotFound, '', /not found/));
  });

  test('a relative path is read from the working directory and reported absolute', async () => {
    const relative = join('test', 'fixtures', 'lora', 'mlx');
    const { model } = await grpc.loadAdapter({ name: 'relative', path: relative }, grpcCall);
    assert.equal(model?.adapter?.path, join(process.cwd(), relative));
    await grpc.unloadAdapter({ name: 'relative' }, grpcCall);
  });

  test('unloading an adapter in use refuses new requests for it, lets the running one finish, then answers', async () => {
    await grpc.loadAdapter({ name: 'busy', path: join(LORA, 'peft') }, grpcCall);
    const running = grpc.generateStream(
      { adapter: 'busy', prompt: text('a long one'), sampling: { maxTokens: 480, ignoreEos: true } },
      grpcCall,
    );
    const events = running[Symbol.asyncIterator]();
    assert.equal((await events.next()).value?.event.case, 'started');
    // What the engine runs when the unload is answered (its figures come with every step's events,
    // ahead of the answer): the running request must have ended by then.
    let runningAtUnload: number | undefined;
    const unloading = grpc.unloadAdapter({ name: 'busy' }, grpcCall).then(() => (runningAtUnload = full.server.engine.stats()?.running));
    await waitUntil('requests for the adapter being unloaded are refused', async () => {
      try {
        await grpc.complete({ adapter: 'busy', prompt: text('hi'), sampling: { maxTokens: 1 } }, grpcCall);
        return false;
      } catch (e) {
        return grpcRefusal(Code.NotFound)(e);
      }
    });
    let generated = 0;
    for (let e = await events.next(); !e.done; e = await events.next()) {
      if (e.value.event.case === 'delta') generated += e.value.event.value.tokenIds.length;
      if (e.value.event.case === 'finished') assert.equal(e.value.event.value.finishReason, FinishReason.LENGTH);
    }
    assert.equal(generated, 480, 'the running request was cut short');
    await unloading;
    assert.equal(runningAtUnload, 0);
    assert.deepEqual(
      (await grpc.listModels({}, grpcCall)).models.map((m) => m.id),
      [base, 'lora-mlx'],
    );
  });

  test('unloading an adapter never loaded is 404 / NOT_FOUND; unloading the base model says it is not an adapter', async () => {
    const r = await post('/unload_lora_adapter', { lora_name: 'never-loaded' });
    assert.equal(r.status, 404);
    assert.equal((await errorOf(r)).code, 'model_not_found');
    await assert.rejects(grpc.unloadAdapter({ name: 'never-loaded' }, grpcCall), grpcRefusal(Code.NotFound));
    await assert.rejects(grpc.unloadAdapter({ name: base }, grpcCall), grpcRefusal(Code.NotFound, '', /is the base model/));
  });

  test('a missing directory or a malformed adapter is 400 / INVALID_ARGUMENT naming the file', async () => {
    const missing = join(scratch, 'no-such-adapter');
    const r = await post('/load_lora_adapter', { lora_name: 'missing', lora_path: missing });
    assert.equal(r.status, 400);
    const error = await errorOf(r);
    assert.equal(error.param, 'lora_path');
    assert.match(error.message, /no-such-adapter/);
    await assert.rejects(
      grpc.loadAdapter({ name: 'missing', path: missing }, grpcCall),
      grpcRefusal(Code.InvalidArgument, 'path', /no-such-adapter/),
    );

    const malformed = malformedAdapter();
    const bad = await post('/load_lora_adapter', { lora_name: 'malformed', lora_path: malformed });
    assert.equal(bad.status, 400);
    assert.match((await errorOf(bad)).message, /adapter_config\.json/);
    await assert.rejects(
      grpc.loadAdapter({ name: 'malformed', path: malformed }, grpcCall),
      grpcRefusal(Code.InvalidArgument, 'path', /adapter_config\.json/),
    );
    // Nothing was left half-loaded.
    assert.deepEqual(
      (await grpc.listModels({}, grpcCall)).models.map((m) => m.id),
      [base, 'lora-mlx'],
    );
  });

  test('an adapter of a rank above --max-lora-rank is 400 / INVALID_ARGUMENT naming the rank', async () => {
    const r = await post('/load_lora_adapter', { lora_name: 'rslora', lora_path: join(LORA, 'peft-rslora') });
    assert.equal(r.status, 400);
    const error = await errorOf(r);
    assert.equal(error.param, 'lora_path');
    assert.match(error.message, /adapter_config\.json/);
    assert.match(error.message, /\b8\b/);
    assert.match(error.message, new RegExp(`\\b${MAX_LORA_RANK}\\b`));
    await assert.rejects(
      grpc.loadAdapter({ name: 'rslora', path: join(LORA, 'peft-rslora') }, grpcCall),
      grpcRefusal(Code.InvalidArgument, 'path', /\b8\b/),
    );
  });

  test('bad request bodies are 400 naming the parameter', async () => {
    const cases: [string, unknown, string, RegExp][] = [
      ['/load_lora_adapter', {}, 'lora_name', /Missing required parameter: 'lora_name'/],
      ['/load_lora_adapter', { lora_name: 'x' }, 'lora_path', /Missing required parameter: 'lora_path'/],
      ['/load_lora_adapter', { lora_name: '', lora_path: '/tmp' }, 'lora_name', /must not be empty/],
      ['/load_lora_adapter', { lora_name: 5, lora_path: '/tmp' }, 'lora_name', /expected a string/],
      ['/load_lora_adapter', { lora_name: 'x', lora_path: '/tmp', load_inplace: true }, 'load_inplace', /not supported/],
      ['/load_lora_adapter', { lora_name: 'default', lora_path: join(LORA, 'peft') }, 'lora_name', /name of the base model/],
      ['/load_lora_adapter', { lora_name: 'x'.repeat(300), lora_path: join(LORA, 'peft') }, 'lora_name', /at most 256 bytes/],
      ['/unload_lora_adapter', {}, 'lora_name', /Missing required parameter: 'lora_name'/],
      ['/unload_lora_adapter', [], '', /must be a JSON object/],
    ];
    for (const [path, body, param, message] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
      const error = await errorOf(r);
      assert.equal(error.param ?? '', param, error.message);
      assert.match(error.message, message);
    }
    const r = await post('/load_lora_adapter', { lora_name: base, lora_path: join(LORA, 'peft') });
    assert.equal(r.status, 400);
    assert.equal((await errorOf(r)).param, 'lora_name');
    await assert.rejects(
      grpc.loadAdapter({ name: base, path: join(LORA, 'peft') }, grpcCall),
      grpcRefusal(Code.InvalidArgument, 'name', /name of the base model/),
    );
    await assert.rejects(grpc.loadAdapter({ name: 'x', path: '' }, grpcCall), grpcRefusal(Code.InvalidArgument, 'path'));
    await assert.rejects(grpc.unloadAdapter({ name: '' }, grpcCall), grpcRefusal(Code.InvalidArgument, 'name'));
    const wrongMethod = await fetch(`${rest}/load_lora_adapter`, { headers: auth });
    assert.equal(wrongMethod.status, 405);
  });

  test('load and unload need the API key, over REST and gRPC', async () => {
    for (const path of ['/load_lora_adapter', '/unload_lora_adapter']) {
      const none = await post(path, { lora_name: 'k', lora_path: join(LORA, 'peft') }, {});
      assert.equal(none.status, 401, path);
      const wrong = await post(path, { lora_name: 'k', lora_path: join(LORA, 'peft') }, { authorization: 'Bearer nope' });
      assert.equal(wrong.status, 401, path);
      assert.equal((await errorOf(wrong)).code, 'invalid_api_key');
    }
    await assert.rejects(grpc.loadAdapter({ name: 'k', path: join(LORA, 'peft') }), grpcRefusal(Code.Unauthenticated));
    await assert.rejects(grpc.unloadAdapter({ name: 'lora-mlx' }), grpcRefusal(Code.Unauthenticated));
    assert.deepEqual(
      (await grpc.listModels({}, grpcCall)).models.map((m) => m.id),
      [base, 'lora-mlx'],
    );
  });
});

test('a --lora name that is a name of the model is refused at start', async () => {
  await assert.rejects(
    startFullServer({ servedModelNames: ['tiny', 'also-tiny'], engine: { loras: [{ name: 'also-tiny', path: join(LORA, 'mlx') }] } }),
    /--lora: the adapter name "also-tiny" is a name of the model/,
  );
});

test('a --lora adapter that cannot be read stops the start, naming the file', async () => {
  await assert.rejects(startFullServer({ engine: { loras: [{ name: 'bad', path: malformedAdapter() }] } }), /adapter_config\.json/);
});

test("selectModel: `model` and `adapter` against the base model's names and the adapters served", () => {
  const model = { id: 'base', aliases: ['alias'] } as Partial<ModelInfo> as ModelInfo;
  const adapters = [{ name: 'a' }, { name: 'b' }] as AdapterInfo[];
  const pick = (m?: string, a?: string) => {
    const s = selectModel(model, adapters, m, a);
    return [s.id, s.adapter?.name];
  };
  for (const m of [undefined, '', 'base', 'alias', 'default']) assert.deepEqual(pick(m), ['base', undefined], String(m));
  for (const m of [undefined, '', 'base', 'alias', 'default', 'a']) assert.deepEqual(pick(m, 'a'), ['a', 'a'], String(m));
  assert.deepEqual(pick('b'), ['b', 'b']);
  assert.deepEqual(pick('b', ''), ['b', 'b']);
  const refused = (m: string | undefined, a: string | undefined, code: number, message: RegExp) =>
    assert.throws(
      () => selectModel(model, adapters, m, a),
      (e: unknown) => e instanceof RequestError && e.code === code && message.test(e.message),
    );
  refused('c', undefined, Code.NotFound, /model "c" not found; this server serves "base", "a", "b"/);
  refused(undefined, 'c', Code.NotFound, /adapter "c" not found/);
  refused('b', 'a', Code.InvalidArgument, /model "b" does not go with adapter "a"/);
  refused('c', 'a', Code.InvalidArgument, /give the base model \("base"\), the same adapter, or no model/);
});

test("vLLM's LoRA routes are POST routes, with or without /v1", () => {
  assert.deepEqual(matchRoute('/v1/load_lora_adapter'), { route: 'load_lora' });
  assert.deepEqual(matchRoute('/unload_lora_adapter/'), { route: 'unload_lora' });
});
