// HTTP/2 rapid reset on the gRPC port: a connection that opens and cancels streams as fast as it
// can is cut off (GOAWAY) after a few hundred, and other clients are served as before.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { DEFAULT_RESETS_PER_SECOND } from '../src/service/stream-rate-guard.ts';
import { rapidReset } from './helpers/rapid-reset.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test('a connection opening and cancelling thousands of streams is cut off; others are served', async () => {
  const burst = await rapidReset(server.baseUrl, 3000);
  assert.ok(burst.processedByServer !== undefined, 'the server sent GOAWAY');
  assert.ok(burst.processedByServer < 2 * DEFAULT_RESETS_PER_SECOND + 400, `the server processed ${burst.processedByServer} streams`);

  const client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
  const done = await client.complete({ prompt: { input: { case: 'text', value: 'hi' } }, sampling: { maxTokens: 2, ignoreEos: true } });
  assert.equal(done.tokenIds.length, 2);
});
