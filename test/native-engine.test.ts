// The engine on the native CPU path: each token's result is independent of what else is in the
// batch (the same bits, not just the same greedy choice), the forward matches the plain reference
// step after step, KV slots are never leaked or shared wrongly, and the step budget spreads
// prompts over steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { cpuKernels } from '../src/engine/native/cpu-kernels.ts';
import { StepBudget } from '../src/engine/native/step-budget.ts';
import { SlotAllocator } from '../src/engine/native/slot-allocator.ts';
import { mx, type MxArray } from '../src/engine/mlx.ts';
import { EngineHarness, type RequestResult } from './helpers/engine-harness.ts';
import { referenceLogits } from './helpers/reference-forward.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

const dir = writeTinyModel({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, contextLength: 256, logitScale: 4, seed: 5 });

function prompt(len: number, seed: number): number[] {
  return Array.from({ length: len }, (_, i) => (seed * 37 + i * 13) % 250);
}

/** Chosen tokens with their logprobs and top alternatives, as a comparable record. */
function trace(r: RequestResult) {
  return r.events.flatMap((e) =>
    e.type === 'delta' && e.logprobs ? e.logprobs.map((l) => [l.tokenId, l.logprob, l.top.map((t) => [t.tokenId, t.logprob])]) : [],
  );
}

const sampling = { maxTokens: 16, ignoreEos: true, logprobs: true, topLogprobs: 5 };

test('a request gets the same bits alone, in a batch, joining mid-flight and from the prefix cache', async () => {
  const prompts = [4, 19, 33, 7, 50, 26].map((len, i) => prompt(len, i + 1));
  const alone = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false });
  const expected = prompts.map((p) => trace(alone.generate(p, sampling)));

  const batched = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false });
  const ids = prompts.map((p) => batched.submit(p, sampling));
  batched.runUntilDone(ids);
  ids.forEach((id, i) => assert.deepEqual(trace(batched.result(id)), expected[i], `request ${i} in a batch`));

  const staggered = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: true, prefillTokens: 8 });
  const late: string[] = [];
  for (const p of prompts) {
    late.push(staggered.submit(p, sampling));
    for (let s = 0; s < 2; s++) staggered.core.step();
  }
  staggered.runUntilDone(late);
  late.forEach((id, i) => assert.deepEqual(trace(staggered.result(id)), expected[i], `request ${i} joining mid-flight`));

  // Again, now that every prompt (and its answer) is cached.
  const again = prompts.map((p) => staggered.submit(p, sampling));
  staggered.runUntilDone(again);
  again.forEach((id, i) => {
    assert.ok((staggered.result(id).cachedTokens ?? 0) >= prompts[i].length - 1, `request ${i} used the cache`);
    assert.deepEqual(trace(staggered.result(id)), expected[i], `request ${i} from the cache`);
  });
});

for (const variant of cpuKernels()?.kernelVariants ?? ['generic']) {
  test(`every prefill and decode step matches the plain reference forward (${variant} kernels)`, async () => {
    // The kernel variant is picked when a model is created (CK_KERNELS names one this CPU runs).
    const previous = process.env.CK_KERNELS;
    process.env.CK_KERNELS = variant;
    let h: EngineHarness;
    try {
      h = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false, prefillTokens: 8 });
    } finally {
      if (previous === undefined) delete process.env.CK_KERNELS;
      else process.env.CK_KERNELS = previous;
    }
    assert.match(h.model.native!.info.kernels, new RegExp(`^${variant}$`));
    const tensors = mx.load(join(dir, 'model.safetensors')) as unknown as Record<string, MxArray>;
    const p = prompt(21, 9);
    const r = h.generate(p, { maxTokens: 12, ignoreEos: true, logprobs: true, topLogprobs: 3 });
    const steps = r.events.flatMap((e) => (e.type === 'delta' && e.logprobs ? e.logprobs : []));
    const ref = referenceLogits(tensors, h.model.config, [...p, ...r.tokenIds.slice(0, -1)]);
    const logProbs = mx.subtract(ref, mx.logsumexp(ref, -1, true)).tolist() as number[][];
    steps.forEach((s, t) => {
      const row = logProbs[p.length - 1 + t];
      const best = row.indexOf(Math.max(...row));
      assert.equal(s.tokenId, best, `step ${t}`);
      assert.ok(Math.abs(s.logprob - row[best]) < 1e-4, `step ${t}: logprob ${s.logprob} vs ${row[best]}`);
    });
  });
}

test('KV slots: all return when requests end, cached ones stay with the cache, none with an idle engine', async () => {
  for (const prefixCache of [false, true]) {
    const h = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache, batchSize: 4 });
    // The warm-up's requests (and the cache entries they leave, which it empties) hold nothing after it.
    h.core.warmUp();
    assert.equal(h.core.stats().kvBytesUsed, 0, `prefix cache ${prefixCache}: KV held after the warm-up`);
    assert.equal(h.core.stats().prefixCacheBytes, 0);
    const ids = Array.from({ length: 10 }, (_, i) => h.submit(prompt(10 + i * 7, i), { maxTokens: 5 + i, ignoreEos: true }));
    for (let s = 0; s < 6; s++) h.core.step();
    h.core.cancel(ids[3]);
    h.core.cancel(ids[7]);
    h.runUntilDone(ids);
    const stats = h.core.stats();
    assert.equal(stats.kvBytesUsed, 0, `prefix cache ${prefixCache}: KV held by no request`);
    assert.equal(stats.prefixCacheLockedBytes, 0);
    assert.equal(stats.prefixCacheBytes > 0, prefixCache);
  }
});

test('a KV pool too small for all requests preempts and still gives every request its tokens', async () => {
  const long = writeTinyModel({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, contextLength: 1024, logitScale: 4, seed: 6 });
  const expected = await EngineHarness.load(long, { cpuKernels: 'native', prefixCache: false });
  const prompts = Array.from({ length: 4 }, (_, i) => prompt(20, i + 3));
  const want = prompts.map((p) => expected.generate(p, { maxTokens: 600, ignoreEos: true }).tokenIds);
  // 512 bytes a token (2 layers · K, V · 2 KV heads · 16 dims · f32): three requests are admitted
  // (each with room to grow 256 tokens) but outgrow the 900 + 64 slots together.
  const tight = await EngineHarness.load(long, {
    cpuKernels: 'native',
    prefixCache: true,
    prefixCacheBytes: 64 * 512,
    kvBudgetBytes: 900 * 512,
  });
  const ids = prompts.map((p) => tight.submit(p, { maxTokens: 600, ignoreEos: true }));
  tight.runUntilDone(ids);
  ids.forEach((id, i) => assert.deepEqual(tight.result(id).tokenIds, want[i], `request ${i}`));
  assert.ok(tight.core.stats().preemptions > 0, 'the pool was small enough to preempt');
  assert.equal(tight.core.stats().kvBytesUsed, 0);
});

test('step budget: fitted from measured steps, a prompt gets what keeps a step within the stall ratio', () => {
  const budget = new StepBudget(512, 2.5, 16);
  // A machine where a step costs 4 ms + 3 ms per decode row + 1 ms per prompt token.
  const cost = (d: number, p: number) => 4 + 3 * d + p;
  for (let i = 0; i < 400; i++) {
    const d = i % 9;
    const p = (i * 37) % 200;
    budget.observe(d, p, cost(d, p));
  }
  assert.ok(Math.abs(budget.predict(8, 20) - cost(8, 20)) < 0.01, 'the fit recovers the costs');
  // 8 rows: a decode-only step takes 28 ms; 2.5x of it leaves 42 ms for 42 tokens.
  assert.equal(budget.promptTokens(8), 42);
  assert.equal(budget.promptTokens(0), 512, 'nothing decoding: the whole chunk');
  assert.equal(budget.promptTokens(1), 16, 'never fewer than the minimum');
});

test('slot allocator: slots come back for reuse and the pool never overfills', () => {
  const a = new SlotAllocator(5);
  const taken = [a.take(), a.take(), a.take()];
  assert.deepEqual(taken, [0, 1, 2]);
  a.release(taken, 1, 3);
  assert.equal(a.used, 1);
  assert.deepEqual([a.take(), a.take(), a.take(), a.take(), a.take()], [2, 1, 3, 4, -1]);
  assert.throws(() => a.release([0, 1, 2, 3, 4, 5]), /more slots released/);
});

test('random traffic (shared prefixes, cancels, a small cache, a tight KV pool) leaves no slot behind', async () => {
  const long = writeTinyModel({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, contextLength: 1024, logitScale: 4, seed: 8 });
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        seed: fc.integer({ min: 0, max: 1e6 }),
        requests: fc.integer({ min: 1, max: 14 }),
        cacheTokens: fc.integer({ min: 0, max: 300 }),
        budgetTokens: fc.integer({ min: 1100, max: 3000 }),
        batchSize: fc.integer({ min: 1, max: 6 }),
        prefillTokens: fc.integer({ min: 4, max: 64 }),
      }),
      async (c) => {
        const h = await EngineHarness.load(long, {
          cpuKernels: 'native',
          prefixCache: c.cacheTokens > 0,
          prefixCacheBytes: Math.max(1, c.cacheTokens) * 512,
          kvBudgetBytes: c.budgetTokens * 512,
          batchSize: c.batchSize,
          prefillTokens: c.prefillTokens,
        });
        let s = c.seed;
        const next = (n: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n;
        const system = prompt(40, c.seed);
        const ids: string[] = [];
        for (let i = 0; i < c.requests; i++) {
          const body = next(2) ? [...system, ...prompt(1 + next(30), i)] : prompt(1 + next(80), i + 100);
          ids.push(h.submit(body, { maxTokens: 1 + next(60), ignoreEos: true }));
          for (let k = next(4); k > 0; k--) h.core.step();
          if (next(4) === 0) h.core.cancel(ids[next(ids.length)]);
        }
        h.runUntilDone(ids);
        const stats = h.core.stats();
        assert.equal(stats.kvBytesUsed, 0, 'slots held by no request');
        assert.equal(stats.prefixCacheLockedBytes, 0, 'cache locks');
        assert.ok(stats.prefixCacheBytes <= Math.max(1, c.cacheTokens) * 512, 'the cache within its bound');
      },
    ),
    { numRuns: 60 },
  );
});
