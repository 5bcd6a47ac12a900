// GET /metrics on the REST port: after a few requests (REST and gRPC, streamed and not, one
// refused, one cancelled) the counters and histograms moved by exactly what those requests did,
// and while a request runs the engine gauges show it. Against the whole server on a tiny model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import OpenAI from 'openai';
import type { RunningServer } from '../src/cli/serve.ts';
import { startFullServer, type FullServer } from './helpers/full-server.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { hasMetric, metricValue, scrape, type Sample } from './helpers/prometheus-text.ts';

let server: RunningServer;
let full: FullServer;
let openai: OpenAI;
let base: string;
let model: string;

before(async () => {
  full = await startFullServer({ engine: { batchSize: 4 } });
  server = full.server;
  model = full.model;
  base = server.adapter.url.replace(/\/v1$/, '');
  openai = new OpenAI({ baseURL: server.adapter.url, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await full.close();
});

const labels = () => ({ model_name: model });

/** How much each named metric moved between two scrapes. */
function moved(before: Sample[], after: Sample[], name: string, l: Record<string, string> = {}): number {
  return metricValue(after, name, l) - metricValue(before, name, l);
}

test('counters and histograms move by what the requests did', async () => {
  const before = await scrape(base);
  const chat = {
    model: 'default',
    messages: [{ role: 'user' as const, content: 'The same question twice, please' }],
    max_tokens: 5,
    temperature: 0,
    ignore_eos: true,
  };
  const first = await openai.chat.completions.create(chat);
  const second = await openai.chat.completions.create(chat);
  let streamed = 0;
  let streamPrompt = 0;
  const stream = await openai.completions.create({
    model: 'default',
    prompt: 'count with me',
    max_tokens: 4,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  } as OpenAI.CompletionCreateParamsStreaming);
  for await (const chunk of stream) {
    if (chunk.usage) {
      streamed = chunk.usage.completion_tokens;
      streamPrompt = chunk.usage.prompt_tokens;
    }
  }
  const grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://${server.grpcTarget}` }));
  const complete = await grpc.complete({
    prompt: { input: { case: 'text', value: 'over gRPC' } },
    sampling: { maxTokens: 3, ignoreEos: true },
  });
  const refused = await fetch(`${server.adapter.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...chat, temperature: 5 }),
  });
  assert.equal(refused.status, 400);
  const after = await scrape(base);

  const completions = [
    first.usage!.completion_tokens,
    second.usage!.completion_tokens,
    streamed,
    complete.finished!.usage!.completionTokens,
  ];
  assert.deepEqual(completions, [5, 5, 4, 3]);
  const prompts = first.usage!.prompt_tokens + second.usage!.prompt_tokens + streamPrompt + complete.finished!.usage!.promptTokens;
  const requests = completions.length;
  const tokens = completions.reduce((a, b) => a + b, 0);

  assert.equal(moved(before, after, 'vllm:generation_tokens_total', labels()), tokens);
  assert.equal(moved(before, after, 'vllm:prompt_tokens_total', labels()), prompts);
  assert.equal(moved(before, after, 'vllm:request_success_total', { ...labels(), finished_reason: 'length' }), requests);
  assert.equal(moved(before, after, 'vllm:time_to_first_token_seconds_count', labels()), requests);
  assert.equal(moved(before, after, 'vllm:e2e_request_latency_seconds_count', labels()), requests);
  assert.equal(moved(before, after, 'vllm:request_queue_time_seconds_count', labels()), requests);
  // One gap between consecutive tokens fewer than tokens, per request.
  assert.equal(moved(before, after, 'vllm:inter_token_latency_seconds_count', labels()), tokens - requests);
  assert.equal(moved(before, after, 'vllm:request_generation_tokens_sum', labels()), tokens);
  assert.ok(moved(before, after, 'vllm:e2e_request_latency_seconds_sum', labels()) > 0);
  assert.equal(moved(before, after, 'mlxserve:request_errors_total', { code: 'invalid_argument' }), 1);

  // The second chat request found the first one's prompt in the prefix cache.
  assert.ok((second.usage?.prompt_tokens_details?.cached_tokens ?? 0) > 0);
  assert.ok(moved(before, after, 'vllm:prefix_cache_hits_total', labels()) >= second.usage!.prompt_tokens_details!.cached_tokens!);
  assert.ok(moved(before, after, 'vllm:prefix_cache_queries_total', labels()) > 0);
  const hitRate = metricValue(after, 'vllm:gpu_prefix_cache_hit_rate', labels());
  assert.ok(hitRate > 0 && hitRate <= 1, `hit rate ${hitRate}`);

  assert.equal(moved(before, after, 'http_requests_total', { handler: 'chat', method: 'POST', status: '200' }), 2);
  assert.equal(moved(before, after, 'http_requests_total', { handler: 'chat', method: 'POST', status: '400' }), 1);
  assert.equal(metricValue(after, 'mlxserve:engine_state', { state: 'ready' }), 1);
  assert.equal(metricValue(after, 'mlxserve:engine_state', { state: 'restarting' }), 0);
  assert.equal(metricValue(after, 'mlxserve:serving'), 1);
  assert.equal(metricValue(after, 'mlxserve:engine_restarts_total'), 0);
  assert.ok(metricValue(after, 'mlxserve:engine_resident_memory_bytes', labels()) > 10 * 1024 ** 2, 'the engine reports its memory');
  assert.ok(hasMetric(after, 'process_resident_memory_bytes'), "Node's process metrics are there");
});

test('while a request runs the engine gauges show it; a cancelled one counts as aborted', async () => {
  const before = await scrape(base);
  const abort = new AbortController();
  const stream = await openai.chat.completions.create(
    {
      model: 'default',
      messages: [{ role: 'user', content: 'go on' }],
      max_tokens: 3000,
      ignore_eos: true,
      stream: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming,
    { signal: abort.signal },
  );
  const chunks = stream[Symbol.asyncIterator]();
  await chunks.next(); // the role
  await chunks.next(); // a token: it runs
  const during = await scrape(base);
  assert.equal(metricValue(during, 'vllm:num_requests_running', labels()), 1);
  assert.equal(metricValue(during, 'vllm:num_requests_waiting', labels()), 0);
  assert.equal(metricValue(during, 'mlxserve:requests_in_flight'), 1);
  assert.ok(metricValue(during, 'vllm:kv_cache_usage_perc', labels()) > 0);
  assert.ok(metricValue(during, 'mlxserve:kv_cache_used_bytes', labels()) > 0);
  abort.abort();

  // The engine lets go of the request at its next step.
  let after = await scrape(base);
  for (
    let i = 0;
    i < 100 &&
    metricValue(after, 'vllm:request_success_total', { ...labels(), finished_reason: 'abort' }) ===
      metricValue(before, 'vllm:request_success_total', { ...labels(), finished_reason: 'abort' });
    i++
  ) {
    await new Promise((r) => setTimeout(r, 20));
    after = await scrape(base);
  }
  assert.equal(moved(before, after, 'vllm:request_success_total', { ...labels(), finished_reason: 'abort' }), 1);
  assert.equal(metricValue(after, 'vllm:num_requests_running', labels()), 0);
  assert.equal(metricValue(after, 'mlxserve:prefix_cache_locked_bytes', labels()), 0);
  assert.ok(moved(before, after, 'vllm:generation_tokens_total', labels()) >= 1);
});
