// The shipped HAProxy config (deploy/haproxy/haproxy.cfg) run by the real HAProxy in front of two
// real replicas (the whole server each, on a tiny model): prefix affinity on prompt_cache_key
// serves at least twice the share of prompt tokens from the prefix cache that round robin does,
// the replicas' load stays within the balance factor, requests without a key are served, and
// gRPC streams (one call, and many requests on one Generate stream) work through it over h2c,
// cancel included, and gRPC-Web and Connect (what browsers speak) over HTTP/1.1 on the same port.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Code, createClient } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { FinishReason } from '../src/gen/mlxserve/v1/generation_pb.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { AsyncQueue } from '../src/service/async-queue.ts';
import { startFullServer, waitUntil, type FullServer } from './helpers/full-server.ts';
import { endOf } from './helpers/grpc-stream.ts';
import {
  type Balancer,
  haproxySkip,
  roundRobinVariant,
  SHIPPED_HAPROXY_CONFIG as SHIPPED_CONFIG,
  startHaproxy,
} from './helpers/haproxy.ts';
import { metricValue, scrape } from './helpers/prometheus-text.ts';

/** The shipped config's balance factor: no replica above this share of the average load. */
const BALANCE_FACTOR = 1.5;

const skip = haproxySkip();

const addresses = (replicas: FullServer[]) => replicas.map((r) => ({ rest: new URL(r.restBase).host, grpc: r.server.grpcTarget }));

interface ChatAnswer {
  choices: { message: { content: string } }[];
  usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function chat(base: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<ChatAnswer> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ max_tokens: 4, temperature: 0, ...body }),
  });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return json as ChatAnswer;
}

/** Text no other chat shares (the tiny model's tokenizer is byte-level: one token a character). */
function uniqueText(chars: number): string {
  return randomBytes(chars).toString('base64').replace(/[+/=]/g, 'x').slice(0, chars);
}

const CHATS = 40;
const TURNS = 3;

/**
 * 40 chats of 3 turns, each with its own prompt_cache_key, every turn sending the whole
 * conversation so far. One chat after another, so round robin alternates strictly. Returns the
 * share of prompt tokens the replicas served from their prefix caches (from their metrics) and the
 * same share from the answers' usage.
 */
async function runChats(base: string, replicas: FullServer[]): Promise<{ metricsRatio: number; usageRatio: number }> {
  const totals = async () => {
    let hits = 0;
    let queries = 0;
    for (const r of replicas) {
      const samples = await scrape(r.restBase);
      hits += metricValue(samples, 'vllm:prefix_cache_hits_total');
      queries += metricValue(samples, 'vllm:prefix_cache_queries_total');
    }
    return { hits, queries };
  };
  const before = await totals();
  let prompt = 0;
  let cached = 0;
  for (let c = 0; c < CHATS; c++) {
    // The same keys every run, so where the hash puts them (and so the load per replica) is fixed.
    const key = `conversation-${c}`;
    const messages: { role: string; content: string }[] = [];
    for (let turn = 0; turn < TURNS; turn++) {
      messages.push({ role: 'user', content: uniqueText(300) });
      const answer = await chat(base, { messages, prompt_cache_key: key });
      messages.push({ role: 'assistant', content: answer.choices[0].message.content });
      prompt += answer.usage.prompt_tokens;
      cached += answer.usage.prompt_tokens_details.cached_tokens;
    }
  }
  const after = await totals();
  return { metricsRatio: (after.hits - before.hits) / (after.queries - before.queries), usageRatio: cached / prompt };
}

describe('HAProxy in front of two replicas', { skip }, () => {
  const replicas: FullServer[] = [];
  let shipped: Balancer | undefined;
  /** HAProxy on the shipped config, started by the first test that needs it. */
  const balancer = async () => {
    shipped ??= await startHaproxy(SHIPPED_CONFIG, addresses(replicas));
    return shipped;
  };

  before(async () => {
    for (let i = 0; i < 2; i++) replicas.push(await startFullServer());
  });
  after(async () => {
    await shipped?.close();
    await Promise.all(replicas.map((r) => r.close()));
  });

  test('affinity on prompt_cache_key serves ≥ 2x the cached share of round robin, load within the balance factor', async (t) => {
    const roundRobinBalancer = await startHaproxy(roundRobinVariant(SHIPPED_CONFIG), addresses(replicas));
    const roundRobin = await runChats(roundRobinBalancer.rest, replicas).finally(() => roundRobinBalancer.close());

    const affinityBalancer = await balancer();
    const affinity = await runChats(affinityBalancer.rest, replicas);
    const counts = await affinityBalancer.counts();
    t.diagnostic(
      `cached-token share: affinity ${affinity.metricsRatio.toFixed(3)} (usage ${affinity.usageRatio.toFixed(3)}), ` +
        `round robin ${roundRobin.metricsRatio.toFixed(3)} (usage ${roundRobin.usageRatio.toFixed(3)}); ` +
        `requests per replica ${counts.get('rest_affinity/r1')}/${counts.get('rest_affinity/r2')}`,
    );
    assert.ok(
      affinity.metricsRatio >= 2 * roundRobin.metricsRatio,
      `affinity ${affinity.metricsRatio} < 2 × round robin ${roundRobin.metricsRatio}`,
    );
    assert.ok(affinity.usageRatio >= 2 * roundRobin.usageRatio, `usage: affinity ${affinity.usageRatio} < 2 × ${roundRobin.usageRatio}`);

    // Every request had a key, so all went through the affinity backend, and its consistent hash
    // (with the balance factor's bound) kept each replica within 150% of the average.
    const perReplica = [counts.get('rest_affinity/r1') ?? 0, counts.get('rest_affinity/r2') ?? 0];
    assert.equal(perReplica[0] + perReplica[1], CHATS * TURNS);
    const average = (CHATS * TURNS) / 2;
    for (const n of perReplica) assert.ok(n <= Math.ceil(average * BALANCE_FACTOR), `a replica took ${n} of ${CHATS * TURNS} requests`);
  });

  test('requests without a key are spread by least connections; `user` and the header are keys too; a body past the buffer is spread', async () => {
    const lb = await balancer();
    const before = await lb.counts();
    const spread = (counts: Map<string, number>) => (counts.get('rest_spread/r1') ?? 0) + (counts.get('rest_spread/r2') ?? 0);
    const keyed = (counts: Map<string, number>) => (counts.get('rest_affinity/r1') ?? 0) + (counts.get('rest_affinity/r2') ?? 0);

    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => chat(lb.rest, { messages: [{ role: 'user', content: `no key ${i}` }] })),
    );
    assert.equal(answers.length, 8);
    const completion = await fetch(`${lb.rest}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 2 }),
    });
    assert.equal(completion.status, 200);
    const afterUnkeyed = await lb.counts();
    assert.equal(spread(afterUnkeyed) - spread(before), 9);
    assert.equal(keyed(afterUnkeyed), keyed(before));
    // Eight at once: least connections used both replicas.
    assert.ok((afterUnkeyed.get('rest_spread/r1') ?? 0) > (before.get('rest_spread/r1') ?? 0));
    assert.ok((afterUnkeyed.get('rest_spread/r2') ?? 0) > (before.get('rest_spread/r2') ?? 0));

    await chat(lb.rest, { messages: [{ role: 'user', content: 'hi' }], user: 'user-1' });
    await chat(lb.rest, { messages: [{ role: 'user', content: 'hi' }] }, { 'x-prompt-cache-key': 'header-key' });
    const afterKeyed = await lb.counts();
    assert.equal(keyed(afterKeyed) - keyed(afterUnkeyed), 2);
    assert.equal(spread(afterKeyed), spread(afterUnkeyed));

    // A body beyond HAProxy's buffer still reaches a replica (here refused there: longer than the
    // tiny model's context), its key unread, so it is spread.
    const big = await fetch(`${lb.rest}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(100_000) }], prompt_cache_key: 'big' }),
    });
    const bigAnswer = (await big.json()) as { error?: { param: string | null } };
    assert.equal(big.status, 400, JSON.stringify(bigAnswer));
    assert.equal(bigAnswer.error?.param, 'messages');
    assert.equal(spread(await lb.counts()) - spread(afterKeyed), 1);
  });

  test('gRPC through the h2c frontend: a GenerateStream call and a Generate stream, each cancelled mid-way', async () => {
    const lb = await balancer();
    const grpc = createClient(GenerationService, createGrpcTransport({ baseUrl: lb.grpc }));
    const long = {
      prompt: { input: { case: 'text' as const, value: 'once upon a time' } },
      sampling: { maxTokens: 3000, ignoreEos: true },
    };
    const before = await lb.counts();

    // One request: its first deltas arrive through HAProxy, then the client aborts.
    const abort = new AbortController();
    const events: string[] = [];
    const ended = endOf(
      (async function* () {
        for await (const r of grpc.generateStream(long, { signal: abort.signal, headers: { 'x-prompt-cache-key': 'grpc-key' } })) {
          events.push(r.event.case ?? '');
          if (events.length === 4) abort.abort();
          yield r;
        }
      })(),
    );
    assert.equal(await ended, Code.Canceled);
    assert.deepEqual(events, ['started', 'delta', 'delta', 'delta']);

    // Many requests on one bidirectional stream: two start, one is cancelled by a message on the
    // stream, the other finishes.
    const outgoing = new AsyncQueue<{ action: { case: 'start' | 'cancel'; value: Record<string, unknown> & { requestId: string } } }>();
    const stream = grpc.generate(outgoing)[Symbol.asyncIterator]();
    outgoing.push({ action: { case: 'start', value: { requestId: 'long', ...long } } });
    outgoing.push({
      action: { case: 'start', value: { requestId: 'short', prompt: long.prompt, sampling: { maxTokens: 3, ignoreEos: true } } },
    });
    const finished = new Map<string, FinishReason>();
    let cancelSent = false;
    while (finished.size < 2) {
      const { value, done } = await stream.next();
      assert.ok(!done, 'the stream ended before both requests finished');
      if (value.event.case === 'delta' && value.requestId === 'long' && !cancelSent) {
        cancelSent = true;
        outgoing.push({ action: { case: 'cancel', value: { requestId: 'long' } } });
      }
      if (value.event.case === 'finished') finished.set(value.requestId, value.event.value.finishReason);
    }
    outgoing.close();
    assert.equal((await stream.next()).done, true);
    assert.deepEqual(Object.fromEntries(finished), { long: FinishReason.CANCELLED, short: FinishReason.LENGTH });

    const afterCalls = await lb.counts();
    const grpcCalls = (prefix: string, counts: Map<string, number>) =>
      (counts.get(`${prefix}/r1`) ?? 0) + (counts.get(`${prefix}/r2`) ?? 0);
    assert.equal(grpcCalls('grpc_affinity', afterCalls) - grpcCalls('grpc_affinity', before), 1, 'the keyed call was hashed');
    assert.equal(grpcCalls('grpc_spread', afterCalls) - grpcCalls('grpc_spread', before), 1, 'the unkeyed stream was spread');
    // Nothing keeps generating on a replica once its client has gone.
    await waitUntil('no replica runs a request', async () => {
      for (const r of replicas) if (metricValue(await scrape(r.restBase), 'vllm:num_requests_running') !== 0) return false;
      return true;
    });
  });

  test('gRPC-Web and Connect over HTTP/1.1 through the gRPC frontend, keyed and not', async () => {
    const lb = await balancer();
    const before = await lb.counts();
    const request = { prompt: { input: { case: 'text' as const, value: 'hello' } }, sampling: { maxTokens: 3, ignoreEos: true } };
    for (const transport of [
      createConnectTransport({ baseUrl: lb.grpc, httpVersion: '1.1' }),
      createGrpcWebTransport({ baseUrl: lb.grpc, httpVersion: '1.1' }),
    ]) {
      const client = createClient(GenerationService, transport);
      const events: string[] = [];
      for await (const r of client.generateStream(request, { headers: { 'x-prompt-cache-key': 'web-key' } }))
        events.push(r.event.case ?? '');
      assert.deepEqual(events, ['started', 'delta', 'delta', 'delta', 'finished']);
      const answer = await client.complete(request);
      assert.equal(answer.finished?.finishReason, FinishReason.LENGTH);
    }
    const after = await lb.counts();
    const calls = (prefix: string) =>
      ['r1', 'r2'].reduce((n, s) => n + (after.get(`${prefix}/${s}`) ?? 0) - (before.get(`${prefix}/${s}`) ?? 0), 0);
    assert.equal(calls('grpc_affinity'), 2, 'the keyed streams were hashed');
    assert.equal(calls('grpc_spread'), 2, 'the unkeyed calls were spread');
  });
});
