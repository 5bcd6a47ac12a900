// What the playground tells its user about a failed call, for each status the service answers
// with (the messages are the server's own), and how it reads token counters from /metrics.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { describeCallError } from '../web/playground/src/call-errors.ts';
import { metricSum } from '../web/playground/src/metrics-text.ts';

const URL = 'http://127.0.0.1:50051';
const describe = (message: string, code: Code) => describeCallError(new ConnectError(message, code), URL);

test('each failure gets a plain message', () => {
  const wrongKey = describe('incorrect API key', Code.Unauthenticated);
  assert.equal(wrongKey.kind, 'unauthenticated');
  assert.match(wrongKey.message, /^401 Unauthenticated: .*incorrect API key.*API key field/);
  const busy = describe('the queue is full (4 requests waiting)', Code.ResourceExhausted);
  assert.equal(busy.kind, 'busy');
  assert.match(busy.message, /^429 \/ RESOURCE_EXHAUSTED: .*queue is full/);
  // What the service says while the model loads (EngineClient.unavailableReason).
  assert.deepEqual(describe('the engine is starting; retry later', Code.Unavailable), {
    kind: 'loading',
    message: 'The model is still loading; retry in a moment.',
  });
  const draining = describe('the server is shutting down and takes no new requests', Code.Unavailable);
  assert.equal(draining.kind, 'unavailable');
  assert.match(draining.message, /^503 \/ UNAVAILABLE: the server is shutting down/);
  assert.equal(describe('This operation was aborted', Code.Canceled).kind, 'stopped');
  const invalid = describe('sampling.top_p: must be in (0, 1]', Code.InvalidArgument);
  assert.equal(invalid.kind, 'error');
  assert.match(invalid.message, /^InvalidArgument: sampling\.top_p/);
});

test('a service out of reach (down, or this origin refused by CORS) says so', () => {
  for (const err of [new TypeError('Failed to fetch'), new ConnectError('Failed to fetch', Code.Unavailable)]) {
    const problem = describeCallError(err, URL);
    assert.equal(problem.kind, 'unreachable');
    assert.match(problem.message, /Cannot reach the gRPC service at http:\/\/127\.0\.0\.1:50051.*--allowed-origins/);
  }
});

test("a metric's samples are summed over their labels", () => {
  const text = [
    '# HELP vllm:generation_tokens_total Generation tokens.',
    '# TYPE vllm:generation_tokens_total counter',
    'vllm:generation_tokens_total{model_name="a"} 120',
    'vllm:generation_tokens_total{model_name="b"} 5',
    'vllm:generation_tokens_total_created{model_name="a"} 1700000000',
    'vllm:prompt_tokens_total 7',
  ].join('\n');
  assert.equal(metricSum(text, 'vllm:generation_tokens_total'), 125);
  assert.equal(metricSum(text, 'vllm:prompt_tokens_total'), 7);
  assert.equal(metricSum(text, 'vllm:missing_total'), undefined);
});
