// Graceful shutdown of the real executable on a tiny model: on SIGTERM health turns NOT_SERVING
// (gRPC) and 503 (REST), new requests are refused, the streams in progress (REST and gRPC) run to
// their end, and the process exits 0. Requests still running when the drain timeout expires are
// cancelled (their clients see the stream end) and the process still exits 0. With a shutdown
// delay, health reports not-ready first while new requests are still served, and only then does
// the drain refuse them. The logs on stderr are JSON lines throughout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { rm } from 'node:fs/promises';
import OpenAI from 'openai';
import { Health, HealthCheckResponse_ServingStatus as Status } from '../src/gen/grpc/health/v1/health_pb.ts';
import { FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { launchCli, waitForHealth } from './helpers/cli-process.ts';
import { waitUntil } from './helpers/full-server.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

let modelDir: string;
before(() => {
  modelDir = writeTinyModel(TEST_MODEL_SPEC);
});
after(() => rm(modelDir, { recursive: true, force: true }));

const serverArgs = (drainTimeout: number, shutdownDelay = 0) => [
  '--model',
  modelDir,
  '--port',
  '0',
  '--grpc-port',
  '0',
  '--batch-size',
  '4',
  '--kv-cache-bytes',
  '256MiB',
  '--radix-cache-size',
  '64MiB',
  '--log-level',
  'info',
  '--drain-timeout',
  String(drainTimeout),
  '--shutdown-delay',
  String(shutdownDelay),
];

/** Every stderr line is a JSON log record; returns them. */
function jsonLogLines(stderr: string): { level: string; msg: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        assert.fail(`a stderr line is not JSON: ${line}`);
      }
    });
}

test('SIGTERM: health goes NOT_SERVING, new requests are refused, running streams finish, exit 0', async () => {
  const server = await launchCli(serverArgs(30));
  try {
    await waitForHealth(server.api);
    const openai = new OpenAI({ baseURL: server.api, apiKey: 'unused', maxRetries: 0 });
    const transport = createGrpcTransport({ baseUrl: `http://${server.grpc}` });
    const grpc = createClient(GenerationService, transport);
    const health = createClient(Health, transport);

    // Two long generations in progress: a REST stream and a gRPC stream.
    const rest = await openai.chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'a long answer please' }],
      max_tokens: 800,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const restChunks = rest[Symbol.asyncIterator]();
    await restChunks.next();
    await restChunks.next();
    const grpcEvents = grpc
      .generateStream({ prompt: { input: { case: 'text', value: 'long' } }, sampling: { maxTokens: 500, ignoreEos: true } })
      [Symbol.asyncIterator]();
    assert.equal((await grpcEvents.next()).value?.event.case, 'started');

    server.child.kill('SIGTERM');

    let restDone = false;
    const restResult = (async () => {
      let usage: OpenAI.CompletionUsage | undefined;
      let finish: string | null = null;
      for (let r = await restChunks.next(); !r.done; r = await restChunks.next()) {
        if (r.value.usage) usage = r.value.usage;
        if (r.value.choices[0]?.finish_reason) finish = r.value.choices[0].finish_reason;
      }
      restDone = true;
      return { usage, finish };
    })();

    await waitUntil('/health says draining', async () => (await fetch(server.api.replace(/\/v1$/, '/health'))).status === 503);
    const body = (await (await fetch(server.api.replace(/\/v1$/, '/health'))).json()) as { status: string };
    assert.equal(body.status, 'draining');
    assert.equal((await health.check({ service: '' })).status, Status.NOT_SERVING);

    const refused = await fetch(`${server.api}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'too late' }], max_tokens: 2 }),
    });
    assert.equal(refused.status, 503);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /shutting down/);
    await assert.rejects(
      grpc.complete({ prompt: { input: { case: 'text', value: 'too late' } } }),
      (e) => ConnectError.from(e).code === Code.Unavailable,
    );
    assert.equal(restDone, false, 'the refusals came while the stream still ran');

    const { usage, finish } = await restResult;
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, 800, 'the REST stream ran to its end');
    let last: unknown;
    let tokens = 0;
    for (let r = await grpcEvents.next(); !r.done; r = await grpcEvents.next()) {
      last = r.value.event;
      if (r.value.event.case === 'delta') tokens += r.value.event.value.tokenIds.length;
    }
    assert.equal((last as { case: string; value: { finishReason: FinishReason } }).value.finishReason, FinishReason.LENGTH);
    assert.equal(tokens, 500, 'the gRPC stream ran to its end');

    assert.equal(await server.exited, 0, server.stderr());
    const logs = jsonLogLines(server.stderr());
    assert.ok(logs.some((l) => /^draining/.test(l.msg)));
    assert.ok(logs.some((l) => /^drained/.test(l.msg)));
    assert.ok(logs.some((l) => l.msg === 'request finished' && typeof l.requestId === 'string' && l.completionTokens === 800));
    assert.ok(!server.stderr().includes('a long answer please'), 'prompts are not logged');
  } finally {
    server.child.kill('SIGKILL');
  }
});

test('SIGTERM with a short drain timeout: a stream still running is cancelled, exit 0', async () => {
  const server = await launchCli(serverArgs(1));
  try {
    await waitForHealth(server.api);
    const openai = new OpenAI({ baseURL: server.api, apiKey: 'unused', maxRetries: 0 });
    const stream = await openai.completions.create({
      model: 'default',
      prompt: 'endless',
      max_tokens: 4000,
      ignore_eos: true,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    // A gRPC stream running beside it.
    const grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://${server.grpc}` }));
    const grpcEvents = grpc
      .generateStream({ prompt: { input: { case: 'text', value: 'endless' } }, sampling: { maxTokens: 4000, ignoreEos: true } })
      [Symbol.asyncIterator]();
    await grpcEvents.next();
    const grpcEnd = (async () => {
      for (let r = await grpcEvents.next(); !r.done; r = await grpcEvents.next());
    })();
    server.child.kill('SIGTERM');
    // Cut by the drain timeout, it ends with UNAVAILABLE naming the shutdown, not with OK.
    await assert.rejects(grpcEnd, (e) => {
      const err = ConnectError.from(e);
      return err.code === Code.Unavailable && /shutting down/.test(err.rawMessage);
    });
    let received = 1;
    let error: unknown;
    try {
      for (let r = await chunks.next(); !r.done; r = await chunks.next()) received++;
    } catch (e) {
      error = e;
    }
    assert.ok(error !== undefined || received < 4000, 'the stream was cut short');
    assert.equal(await server.exited, 0, server.stderr());
    assert.ok(jsonLogLines(server.stderr()).some((l) => /^drain timeout/.test(l.msg)));
  } finally {
    server.child.kill('SIGKILL');
  }
});

// A timeout, so that a shutdown held open by the stalled client fails the test rather than the run.
test('SIGTERM with a shutdown delay: health is not ready at once, new requests are still served until the delay ends, then refused', {
  timeout: 60_000,
}, async () => {
  const server = await launchCli(serverArgs(30, 3));
  try {
    await waitForHealth(server.api);
    const transport = createGrpcTransport({ baseUrl: `http://${server.grpc}` });
    const grpc = createClient(GenerationService, transport);
    const health = createClient(Health, transport);
    const complete = (content: string) =>
      fetch(`${server.api}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content }], max_tokens: 2 }),
      });

    // A stream on a connection of its own that the test stops reading: flow control holds its
    // last messages, so the server is still draining (not closed) after the delay, however fast
    // the tiny model is. Such a client must not hold the shutdown either: once the drain is over
    // its connection is cut (it used to keep the process alive for good).
    const long = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://${server.grpc}` }))
      .generateStream({ prompt: { input: { case: 'text', value: 'long' } }, sampling: { maxTokens: 4000, ignoreEos: true } })
      [Symbol.asyncIterator]();
    assert.equal((await long.next()).value?.event.case, 'started');

    const signalled = performance.now();
    server.child.kill('SIGTERM');
    await waitUntil('/health says draining', async () => (await fetch(server.api.replace(/\/v1$/, '/health'))).status === 503);
    assert.equal((await health.check({ service: '' })).status, Status.NOT_SERVING);
    assert.equal((await health.check({ service: GenerationService.typeName })).status, Status.NOT_SERVING);

    // Within the delay: a balancer that has not yet seen the failed check still gets answers.
    const served = await complete('still served');
    assert.equal(served.status, 200, await served.text());
    const grpcServed = await grpc.complete({
      prompt: { input: { case: 'text', value: 'still served' } },
      sampling: { maxTokens: 2, ignoreEos: true },
    });
    assert.equal(grpcServed.finished?.finishReason, FinishReason.LENGTH);
    assert.ok(performance.now() - signalled < 3000, 'those requests came within the delay');

    // After it: refused, as without a delay.
    await waitUntil('new requests are refused', async () => (await complete('too late')).status === 503);
    assert.ok(
      performance.now() - signalled >= 2900,
      `refused ${Math.round(performance.now() - signalled)} ms after SIGTERM, before the 3 s delay`,
    );
    assert.equal(await server.exited, 0, server.stderr());
    const logs = jsonLogLines(server.stderr());
    assert.ok(logs.some((l) => /^leaving/.test(l.msg)));
    assert.ok(logs.some((l) => /^drained/.test(l.msg)));
  } finally {
    server.child.kill('SIGKILL');
  }
});
