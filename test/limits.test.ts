// Request limits, each refused with a clear error naming what is too big: the REST body size
// (413), n and the number of choices, stop strings, logit_bias entries, max_tokens and the prompt
// against the context window, and the gRPC message size. The server answers normally afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { DEFAULT_MAX_BODY_BYTES } from '../src/adapter-openai/http-io.ts';
import { MAX_CHOICES, MAX_N } from '../src/adapter-openai/sampling-fields.ts';
import { MAX_LOGIT_BIAS_ENTRIES, MAX_STOP_STRINGS } from '../src/engine/sampling-params.ts';
import { GenerationErrorSchema } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { DEFAULT_GRPC_MAX_MESSAGE_BYTES } from '../src/service/grpc-server.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';

let full: FullServer;
let grpc: Client<typeof GenerationService>;
/** The tiny model's context window. */
const CONTEXT = 4096;

before(async () => {
  full = await startFullServer();
  grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: full.grpcBase }));
});
after(() => full.close());

type ErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } };

async function post(
  path: string,
  body: string | Buffer | ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
  init: Record<string, unknown> = {},
) {
  const res = await fetch(`${full.server.adapter.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
    ...init,
  });
  return { status: res.status, body: (await res.json()) as ErrorBody & Record<string, unknown> };
}

const chat = (extra: Record<string, unknown>) =>
  JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, ...extra });

async function expect400(path: string, body: string, param: string | null, message: RegExp) {
  const { status, body: answer } = await post(path, body);
  assert.equal(status, 400, JSON.stringify(answer));
  assert.equal(answer.error.type, 'invalid_request_error');
  assert.equal(answer.error.param, param);
  assert.match(answer.error.message, message);
  return answer.error;
}

describe('REST', () => {
  test(`a body over ${DEFAULT_MAX_BODY_BYTES} bytes is refused with 413, by Content-Length or as it streams in`, async () => {
    const huge = chat({ messages: [{ role: 'user', content: 'x'.repeat(DEFAULT_MAX_BODY_BYTES) }] });
    const declared = await post('/chat/completions', huge);
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error.code, 'request_too_large');
    assert.match(declared.body.error.message, /larger than 4194304 bytes/);

    // No Content-Length: the body arrives in chunks and is refused once it passes the limit.
    const chunk = new TextEncoder().encode('x'.repeat(1024 * 1024));
    let sent = 0;
    const streamed = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 6) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const chunked = await post('/completions', streamed, {}, { duplex: 'half' });
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.error.type, 'invalid_request_error');

    // A body under the limit is read whole (and here refused for its content, not its size).
    const under = await post('/chat/completions', chat({ messages: [{ role: 'user', content: 'x'.repeat(DEFAULT_MAX_BODY_BYTES / 2) }] }));
    assert.equal(under.status, 400);
    assert.equal(under.body.error.code, 'context_length_exceeded');
  });

  test('a body that is not UTF-8 is refused', async () => {
    const bytes = Buffer.concat([Buffer.from('{"model":"default","prompt":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    const { status, body } = await post('/completions', bytes);
    assert.equal(status, 400);
    assert.match(body.error.message, /not valid UTF-8/);
  });

  test(`n is at most ${MAX_N}, and a request asks for at most ${MAX_CHOICES} choices`, async () => {
    await expect400('/chat/completions', chat({ n: MAX_N + 1 }), 'n', /between 1 and 16/);
    const ok = await post('/chat/completions', chat({ n: MAX_N }));
    assert.equal((ok.body.choices as unknown[]).length, MAX_N);
    const prompts = Array.from({ length: MAX_CHOICES / MAX_N + 1 }, (_, i) => `prompt ${i}`);
    await expect400(
      '/completions',
      JSON.stringify({ model: 'default', prompt: prompts, n: MAX_N, max_tokens: 1 }),
      'prompt',
      /at most 128 choices/,
    );
  });

  test(`at most ${MAX_STOP_STRINGS} stop strings and ${MAX_LOGIT_BIAS_ENTRIES} logit_bias entries`, async () => {
    await expect400(
      '/chat/completions',
      chat({ stop: Array.from({ length: MAX_STOP_STRINGS + 1 }, (_, i) => `s${i}`) }),
      'stop',
      /at most 16 stop strings/,
    );
    const bias = Object.fromEntries(Array.from({ length: MAX_LOGIT_BIAS_ENTRIES + 1 }, (_, i) => [String(i % 256), 1]));
    // Keys repeat past 256 (the vocabulary); use distinct ids beyond it to exceed the count instead.
    for (let i = 256; Object.keys(bias).length <= MAX_LOGIT_BIAS_ENTRIES; i++) bias[String(i)] = 1;
    await expect400('/chat/completions', chat({ logit_bias: bias }), 'logit_bias', /at most 300 token ids/);
  });

  test('max_tokens and the prompt are bounded by the context window (as vLLM: refused, not clipped)', async () => {
    const error = await expect400('/chat/completions', chat({ max_tokens: CONTEXT }), 'max_tokens', /maximum context length is 4096/);
    assert.equal(error.code, 'context_length_exceeded');
    await expect400('/chat/completions', chat({ max_tokens: 2 ** 31 }), 'max_tokens', /Invalid 'max_tokens': 2147483648 is out of range/);
    await expect400('/chat/completions', chat({ max_tokens: 0 }), 'max_tokens', /max_tokens must be an integer in \[1/);
    await expect400(
      '/completions',
      JSON.stringify({ model: 'default', prompt: 'y'.repeat(CONTEXT + 10) }),
      'prompt',
      /maximum context length is 4096 tokens, but the prompt has/,
    );
  });
});

describe('gRPC', () => {
  const prompt = { input: { case: 'text' as const, value: 'hi' } };

  async function expectInvalid(call: Promise<unknown>, field: string, message: RegExp) {
    const err = await call.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    assert.ok(err, 'the call was refused');
    assert.equal(err.code, Code.InvalidArgument, err.message);
    assert.equal(err.findDetails(GenerationErrorSchema)[0]?.field, field);
    assert.match(err.rawMessage, message);
  }

  test(`a message over ${DEFAULT_GRPC_MAX_MESSAGE_BYTES} bytes ends the call with RESOURCE_EXHAUSTED before it is decoded`, async () => {
    const err = await grpc
      .complete({ prompt: { input: { case: 'text', value: 'z'.repeat(DEFAULT_GRPC_MAX_MESSAGE_BYTES) } } })
      .catch((e: unknown) => ConnectError.from(e));
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.ResourceExhausted);
    assert.match(err.rawMessage, /message size .* is larger than configured readMaxBytes 4194304/);
  });

  test('stop strings, logit_bias entries, max_tokens and the prompt are checked as over REST, naming the field', async () => {
    await expectInvalid(
      grpc.complete({ prompt, sampling: { stop: Array.from({ length: 17 }, (_, i) => `s${i}`) } }),
      'sampling.stop',
      /at most 16/,
    );
    const logitBias = Object.fromEntries(Array.from({ length: 301 }, (_, i) => [i, 1]));
    await expectInvalid(grpc.complete({ prompt, sampling: { logitBias } }), 'sampling.logit_bias', /at most 300 token ids/);
    await expectInvalid(grpc.complete({ prompt, sampling: { maxTokens: CONTEXT } }), 'sampling.max_tokens', /maximum context length/);
    await expectInvalid(
      grpc.complete({ prompt: { input: { case: 'tokens', value: { ids: Array.from({ length: CONTEXT }, () => 65) } } } }),
      'prompt.tokens.ids',
      /maximum context length is 4096 tokens, but the prompt has 4096 tokens/,
    );
  });

  test('after all that the server answers as usual', async () => {
    const done = await grpc.complete({ prompt, sampling: { maxTokens: 2, ignoreEos: true } });
    assert.equal(done.tokenIds.length, 2);
  });
});
