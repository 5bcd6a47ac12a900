// Overload: with the batch full and the queue full, a new request is refused at once (REST 429
// with Retry-After, gRPC RESOURCE_EXHAUSTED); a request that waits in the queue longer than the
// queue timeout is refused the same way and leaves the queue, while the running one goes on.
// Whole server on a tiny model: batch of 1, queue of 3, queue timeout 1 s.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import OpenAI from 'openai';
import { ErrorCode } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { AsyncQueue } from '../src/service/async-queue.ts';
import { startFullServer, waitUntil, type FullServer } from './helpers/full-server.ts';
import { metricValue, scrape } from './helpers/prometheus-text.ts';
import { endOf } from './helpers/grpc-stream.ts';

const MAX_QUEUE = 3;
let full: FullServer;
let openai: OpenAI;
let grpc: Client<typeof GenerationService>;

before(async () => {
  full = await startFullServer({ engine: { batchSize: 1, maxQueue: MAX_QUEUE, queueTimeoutMs: 1000 } });
  openai = new OpenAI({ baseURL: full.server.adapter.url, apiKey: 'unused', maxRetries: 0 });
  grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: full.grpcBase }));
});
after(() => full.close());

const long = { prompt: { input: { case: 'text' as const, value: 'long' } }, sampling: { maxTokens: 3000, ignoreEos: true } };

/** A REST stream that holds the only batch slot until aborted. */
async function occupyTheBatch(abort: AbortController) {
  const stream = await openai.chat.completions.create(
    {
      model: 'default',
      messages: [{ role: 'user', content: 'occupy' }],
      max_tokens: 3000,
      ignore_eos: true,
      stream: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming,
    { signal: abort.signal },
  );
  const chunks = stream[Symbol.asyncIterator]();
  await chunks.next(); // the role
  await chunks.next(); // a token: it runs
  return chunks;
}

const status = () => grpc.getServerStatus({});

test('a full queue: REST 429 with Retry-After and gRPC RESOURCE_EXHAUSTED, at once', async () => {
  const abort = new AbortController();
  await occupyTheBatch(abort);
  const waiters = Array.from({ length: MAX_QUEUE }, () => endOf(grpc.generateStream(long, { signal: abort.signal })));
  await waitUntil('the queue is full', async () => (await status()).waitingRequests === MAX_QUEUE);

  const res = await fetch(`${full.server.adapter.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'one more' }], max_tokens: 2 }),
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '1');
  const body = (await res.json()) as { error: { type: string; code: string; message: string } };
  assert.equal(body.error.type, 'rate_limit_error');
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.match(body.error.message, /queue is full/);
  const sdkError = await openai.completions.create({ model: 'default', prompt: 'x', max_tokens: 2 }).catch((e: unknown) => e);
  assert.ok(sdkError instanceof OpenAI.RateLimitError);

  await assert.rejects(
    grpc.complete(long),
    (e) => ConnectError.from(e).code === Code.ResourceExhausted && /queue is full/.test(ConnectError.from(e).rawMessage),
  );
  abort.abort();
  await Promise.all(waiters);
  await waitUntil('the engine is idle', async () => {
    const s = await status();
    return s.runningRequests === 0 && s.waitingRequests === 0;
  });
});

test('a request that waits longer than the queue timeout is refused and leaves the queue; the running one goes on', async () => {
  const before = await scrape(full.restBase);
  const abort = new AbortController();
  const running = await occupyTheBatch(abort);

  // One waiter of each kind: REST, a single-request gRPC call, a request on a multiplexed stream.
  const rest = openai.chat.completions
    .create({ model: 'default', messages: [{ role: 'user', content: 'wait' }], max_tokens: 2 })
    .catch((e: unknown) => e);
  const single = endOf(grpc.generateStream(long));
  const outgoing = new AsyncQueue<{ action: { case: 'start'; value: { requestId: string } & typeof long } }>();
  const multiplexed = grpc.generate(outgoing)[Symbol.asyncIterator]();
  outgoing.push({ action: { case: 'start', value: { requestId: 'm', ...long } } });

  const restError = await rest;
  assert.ok(restError instanceof OpenAI.RateLimitError, String(restError));
  assert.equal(restError.headers?.get('retry-after'), '1');
  assert.match(restError.message, /waited 1\.0 s in the queue/);
  assert.equal(await single, Code.ResourceExhausted);
  const event = (await multiplexed.next()).value;
  assert.equal(event.requestId, 'm');
  assert.equal(event.event.case, 'error');
  assert.equal(event.event.value.code, ErrorCode.RESOURCE_EXHAUSTED);
  assert.match(event.event.value.message, /queue timeout/);

  // The queue is empty again; the running request still streams.
  const s = await status();
  assert.equal(s.waitingRequests, 0);
  assert.equal(s.runningRequests, 1);
  assert.equal((await running.next()).done, false);
  const after = await scrape(full.restBase);
  assert.equal(
    metricValue(after, 'mlxserve:request_errors_total', { code: 'resource_exhausted' }) -
      metricValue(before, 'mlxserve:request_errors_total', { code: 'resource_exhausted' }),
    3,
  );

  outgoing.close();
  abort.abort();
  assert.equal((await multiplexed.next()).done, true, 'the multiplexed stream ends with OK after half-close');
});
