// The server's own answers do not wait for the engine: while a full batch decodes and a long prompt
// is prefilled, GetServerStatus reports the load as it is (no zero readings), and Tokenize and
// Detokenize answer from the server's text layer. (How fast they answer is measured by
// bench/status-latency.ts, not asserted here.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { EngineState, GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { startDecodingStreams } from './helpers/decoding-streams.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';

const BATCH = 16;
let server: TestServer;
let client: Client<typeof GenerationService>;

before(async () => {
  // One row to spare: the long prompt joins the decoding batch.
  server = await startTestServer({ engine: { batchSize: BATCH + 1 } });
  client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
});
after(() => server.close());

const tokens = (ids: number[]) => ({ input: { case: 'tokens' as const, value: { ids } } });

test('status, Tokenize and Detokenize under a full batch with a 2,000-token prompt arriving', async () => {
  // The whole batch decodes.
  const batch = await startDecodingStreams(client, BATCH, (i) => [5 + i, 6, 7, 8], 3000);
  const longPrompt = Array.from({ length: 2000 }, (_, i) => 10 + (i % 200));
  // It keeps generating after its prompt, so that it is still in flight when the status is read.
  const stopLong = new AbortController();
  const long = client.complete(
    { prompt: tokens(longPrompt), sampling: { temperature: 0, maxTokens: 1500, ignoreEos: true } },
    { signal: stopLong.signal },
  );

  const text = 'the server answers this itself';
  const [first, tokenized] = await Promise.all([
    client.getServerStatus({}),
    client.tokenize({ prompt: { input: { case: 'text', value: text } } }),
  ]);
  const detokenized = await client.detokenize({ tokenIds: tokenized.tokenIds });
  // The engine's figures arrive with its steps; the new request shows in them within a step or two.
  let status = first;
  for (let i = 0; i < 200 && status.runningRequests + status.waitingRequests < BATCH + 1; i++) {
    assert.ok(status.runningRequests >= BATCH, `a reading of ${status.runningRequests} running under load`);
    await new Promise((r) => setTimeout(r, 10));
    status = await client.getServerStatus({});
  }

  assert.equal(status.engineState, EngineState.READY);
  assert.equal(status.inFlightRequests, BATCH + 1);
  assert.ok(status.runningRequests >= BATCH && status.runningRequests <= BATCH + 1, `running ${status.runningRequests}`);
  assert.equal(status.runningRequests + status.waitingRequests, BATCH + 1, 'every request is running or waiting');
  assert.ok(status.kvCacheBytesUsed > 0n && status.kvCacheBytesUsed <= status.kvCacheBytesCapacity);
  assert.ok(status.engineResidentBytes > 0n);
  assert.ok(tokenized.tokenIds.length > 0);
  assert.equal(detokenized.text, text);

  stopLong.abort();
  await assert.rejects(long, (e) => ConnectError.from(e).code === Code.Canceled);
  await batch.stop();
});
