// Crash isolation beyond the running request (service-health.test.ts covers that one): when the
// engine process dies, requests still waiting in its queue end at once too, whichever way they
// came (single gRPC call, multiplexed stream, REST), nothing hangs, and the server recovers. A
// crash loop does not spin: restarts back off exponentially and, after a few quick failures, the
// engine is left 'failed', which health, status, /health and /metrics all report.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import OpenAI from 'openai';
import { Health, HealthCheckResponse_ServingStatus as Status } from '../src/gen/grpc/health/v1/health_pb.ts';
import { ErrorCode } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { EngineState, GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { AsyncQueue } from '../src/service/async-queue.ts';
import { startFullServer, waitUntil, type FullServer } from './helpers/full-server.ts';
import { metricValue, scrape } from './helpers/prometheus-text.ts';
import { endOf } from './helpers/grpc-stream.ts';

const servers: FullServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function start(
  maxQuickFailures: number,
): Promise<{ full: FullServer; grpc: Client<typeof GenerationService>; health: Client<typeof Health> }> {
  const full = await startFullServer({
    engine: { batchSize: 1, maxQueue: 8 },
    restartPolicy: { initialDelayMs: 50, maxDelayMs: 1000, stableAfterMs: 60_000, maxQuickFailures },
  });
  servers.push(full);
  const transport = createGrpcTransport({ baseUrl: full.grpcBase });
  return { full, grpc: createClient(GenerationService, transport), health: createClient(Health, transport) };
}

const long = { prompt: { input: { case: 'text' as const, value: 'long' } }, sampling: { maxTokens: 3000, ignoreEos: true } };

test('an engine crash ends the running and the queued requests at once, on every path; the next request works', async () => {
  const { full, grpc, health } = await start(5);
  const openai = new OpenAI({ baseURL: full.server.adapter.url, apiKey: 'unused', maxRetries: 0 });
  const before = await scrape(full.restBase);

  const running = grpc.generateStream(long)[Symbol.asyncIterator]();
  assert.equal((await running.next()).value?.event.case, 'started');
  // Three more wait for the only slot: a single call, a request on a multiplexed stream, and a REST stream.
  const queuedSingle = endOf(grpc.generateStream(long));
  const outgoing = new AsyncQueue<{ action: { case: 'start'; value: { requestId: string } & typeof long } }>();
  const multiplexed = grpc.generate(outgoing)[Symbol.asyncIterator]();
  outgoing.push({ action: { case: 'start', value: { requestId: 'queued', ...long } } });
  const queuedRest = openai.chat.completions
    .create({ model: 'default', messages: [{ role: 'user', content: 'queued' }], max_tokens: 5, stream: true })
    .then(async (s) => {
      for await (const _ of s);
      return 'ok';
    })
    .catch((e: unknown) => e);
  await waitUntil('three requests wait', async () => (await grpc.getServerStatus({})).waitingRequests === 3);

  process.kill(full.server.engine.pid!, 'SIGKILL');

  assert.equal(await endOf({ [Symbol.asyncIterator]: () => running }), Code.Unavailable);
  assert.equal(await queuedSingle, Code.Unavailable);
  const refused = (await multiplexed.next()).value;
  assert.equal(refused.requestId, 'queued');
  assert.equal(
    refused.event.case === 'error' && refused.event.value.code,
    ErrorCode.UNAVAILABLE,
    'a queued request had not started: an error event',
  );
  assert.match(refused.event.case === 'error' ? refused.event.value.message : '', /engine process stopped/);
  const restError = await queuedRest;
  assert.ok(restError instanceof OpenAI.APIError && restError.status === 503, `REST got ${String(restError)}`);

  await waitUntil('the engine is back', async () => (await health.check({ service: '' })).status === Status.SERVING);
  outgoing.push({ action: { case: 'start', value: { requestId: 'after', ...long, sampling: { maxTokens: 3, ignoreEos: true } } } });
  for (;;) {
    const r = (await multiplexed.next()).value;
    if (r.requestId === 'after' && r.event.case === 'finished') break;
  }
  outgoing.close();
  assert.equal((await multiplexed.next()).done, true);
  const answer = await openai.chat.completions.create({
    model: 'default',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 3,
    ignore_eos: true,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(answer.usage?.completion_tokens, 3);

  const after = await scrape(full.restBase);
  assert.equal(metricValue(after, 'mlxserve:engine_restarts_total'), 1);
  assert.equal(
    metricValue(after, 'mlxserve:request_errors_total', { code: 'unavailable' }) -
      metricValue(before, 'mlxserve:request_errors_total', { code: 'unavailable' }),
    4,
  );
  // The prefix-cache counters keep counting across engine processes.
  assert.ok(metricValue(after, 'vllm:prefix_cache_queries_total') >= metricValue(before, 'vllm:prefix_cache_queries_total'));
});

test('a crash loop backs off exponentially and ends in FAILED, reported by health, status, /health and /metrics', async () => {
  const { full, grpc, health } = await start(2);
  const engine = full.server.engine;
  const delays: number[] = [];
  engine.on('restart', (_why: string, delayMs: number) => delays.push(delayMs));
  const gaveUp = new Promise<Error>((resolve) => engine.once('error', resolve));

  // Kill the engine each time it comes up, as a fault at start-up would.
  for (let kill = 0; kill < 3; kill++) {
    await waitUntil('the engine is ready', () => engine.state === 'ready', 500);
    process.kill(engine.pid!, 'SIGKILL');
    await waitUntil('the engine noticed', () => engine.state !== 'ready');
  }
  assert.match((await gaveUp).message, /died 3 times in a row/);
  assert.equal(engine.state, 'failed');
  assert.deepEqual(delays, [50, 100], 'each quick failure doubles the wait; the third is not restarted');
  assert.equal(engine.restarts, 2);

  assert.equal((await health.check({ service: '' })).status, Status.NOT_SERVING);
  assert.equal((await grpc.getServerStatus({})).engineState, EngineState.FAILED);
  const refused = await grpc.complete(long).catch((e: unknown) => ConnectError.from(e));
  assert.ok(refused instanceof ConnectError && refused.code === Code.Unavailable);
  assert.match(refused.rawMessage, /not restarted/);
  const rest = await fetch(`${full.restBase}/health`);
  assert.equal(rest.status, 503);
  assert.equal(((await rest.json()) as { status: string }).status, 'failed');
  const metrics = await scrape(full.restBase);
  assert.equal(metricValue(metrics, 'mlxserve:engine_state', { state: 'failed' }), 1);
  assert.equal(metricValue(metrics, 'mlxserve:serving'), 0);
  assert.equal(metricValue(metrics, 'mlxserve:engine_restarts_total'), 2);
});
