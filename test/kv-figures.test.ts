// What the KV figures mean, the same in GetServerStatus and /metrics, on both CPU paths: "used" is
// the KV of the tokens running requests hold (0 when nothing runs, whatever stays allocated or
// cached), "allocated" the memory held for KV (the prefix cache included), the prefix cache's
// bytes apart, and vllm:kv_cache_usage_perc = used / capacity.
import assert from 'node:assert/strict';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { after, describe, test } from 'node:test';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { CPU_KERNELS } from './helpers/engine-harness.ts';
import { startTestServer, waitForIdleEngine, type TestServer } from './helpers/test-server.ts';

const tokens = (ids: number[]) => ({ input: { case: 'tokens' as const, value: { ids } } });

for (const cpuKernels of CPU_KERNELS) {
  describe(`KV figures (${cpuKernels})`, () => {
    let server: TestServer;
    after(() => server?.close());

    test('idle: nothing used, the prefix cache kept and allocated; running: the tokens held', async () => {
      server = await startTestServer({ engine: { cpuKernels } });
      const client = createClient(GenerationService, createGrpcTransport({ baseUrl: server.baseUrl }));
      const perToken = Number((await client.listModels({})).models[0].kvBytesPerToken);
      const prompt = Array.from({ length: 60 }, (_, i) => 20 + i);
      await client.complete({ prompt: tokens(prompt), sampling: { temperature: 0, maxTokens: 8, ignoreEos: true } });
      await waitForIdleEngine(server.engine);

      const idle = await client.getServerStatus({});
      assert.equal(idle.kvCacheBytesUsed, 0n, 'nothing runs: nothing used');
      assert.ok(idle.prefixCacheBytes >= BigInt(60 * perToken), 'the prompt stays in the prefix cache');
      assert.equal(idle.prefixCacheLockedBytes, 0n);
      assert.ok(idle.kvCacheBytesAllocated >= idle.prefixCacheBytes, 'the cache is held memory');
      const usage = async () => (await server.server.metrics.getSingleMetric('vllm:kv_cache_usage_perc')?.get())?.values[0]?.value;
      assert.equal(await usage(), 0);

      // A request reusing that prompt and growing past it.
      const abort = new AbortController();
      const stream = client
        .generateStream(
          { prompt: tokens([...prompt, 7, 8]), sampling: { temperature: 0, maxTokens: 3000, ignoreEos: true } },
          { signal: abort.signal },
        )
        [Symbol.asyncIterator]();
      let generated = 0;
      while (generated < 20) {
        const { value } = await stream.next();
        if (value?.event.case === 'delta') generated += value.event.value.tokenIds.length;
      }
      const running = await client.getServerStatus({});
      const used = Number(running.kvCacheBytesUsed);
      assert.ok(used >= (62 + 10) * perToken, `used ${used / perToken} tokens`);
      assert.ok(used <= (62 + 3000) * perToken, `used ${used / perToken} tokens`);
      assert.ok(running.prefixCacheLockedBytes > 0n, 'the reused prefix is locked');
      assert.ok(Number(running.kvCacheBytesAllocated) >= used);
      const fraction = await usage();
      assert.ok(fraction !== undefined && fraction > 0 && fraction <= 1);
      abort.abort();
      await stream.next().catch(() => {});
      await waitForIdleEngine(server.engine);
    });
  });
}
