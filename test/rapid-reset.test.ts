// HTTP/2 rapid reset on the gRPC port: a connection that opens and cancels streams as fast as it
// can is cut off (GOAWAY) after a few hundred, and other clients are served as before.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { DEFAULT_STREAM_RATE_LIMITS } from '../src/service/stream-rate-guard.ts';
import { startTestServer, type TestServer } from './helpers/test-server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

test('a connection opening and cancelling thousands of streams is cut off; others are served', async () => {
  const session = http2.connect(server.baseUrl);
  session.on('error', () => {});
  const goaway = new Promise<number>((resolve) => session.once('goaway', (_code, lastStreamId) => resolve(lastStreamId)));
  const closed = new Promise((resolve) => session.once('close', resolve));
  await new Promise((r) => session.once('connect', r));
  for (let i = 0; i < 3000 && !session.destroyed && !session.closed; i++) {
    try {
      const s = session.request({
        ':method': 'POST',
        ':path': '/mlxserve.v1.GenerationService/Complete',
        'content-type': 'application/grpc',
      });
      s.on('error', () => {});
      s.close(http2.constants.NGHTTP2_CANCEL);
    } catch {
      break;
    }
    if (i % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  // Client streams have odd ids: the server processed (lastStreamId + 1) / 2 of them.
  const processed = ((await goaway) + 1) / 2;
  await closed;
  assert.ok(processed < 2 * DEFAULT_STREAM_RATE_LIMITS.resetsPerSecond + 400, `the server processed ${processed} streams`);

  const client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
  const done = await client.complete({ prompt: { input: { case: 'text', value: 'hi' } }, sampling: { maxTokens: 2, ignoreEos: true } });
  assert.equal(done.tokenIds.length, 2);
});
