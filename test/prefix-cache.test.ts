// The radix prefix cache inside the engine: reusing cached KV must never change a greedy output,
// and it must actually be used (cached token counts), within its byte bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CPU_KERNELS, EngineHarness } from './helpers/engine-harness.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

const dir = writeTinyModel({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, contextLength: 512, logitScale: 4, seed: 11 });

/** A small deterministic PRNG so "random" conversations are the same on every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

function tokens(r: (n: number) => number, len: number): number[] {
  return Array.from({ length: len }, () => r(250));
}

// Every test runs on both CPU paths: the native kernels and MLX.
for (const cpuKernels of CPU_KERNELS) {
  test(`multi-turn conversations: the same greedy tokens with the cache on and off, later turns hit the cache (${cpuKernels})`, async () => {
    const on = await EngineHarness.load(dir, { cpuKernels, prefixCache: true });
    const off = await EngineHarness.load(dir, { cpuKernels, prefixCache: false });
    const r = rng(42);
    for (let conv = 0; conv < 4; conv++) {
      let history: number[] = tokens(r, 5 + r(30));
      let previousSequence = 0;
      for (let turn = 0; turn < 4; turn++) {
        const maxTokens = 3 + r(12);
        const a = on.generate(history, { maxTokens, ignoreEos: true });
        const b = off.generate(history, { maxTokens, ignoreEos: true });
        assert.deepEqual(a.tokenIds, b.tokenIds, `conversation ${conv} turn ${turn}`);
        assert.equal(b.usage?.cachedTokens, 0);
        // The previous turn's prompt and answer are cached, all but the answer's last token (it was
        // sampled but never went through the model).
        assert.equal(a.usage?.cachedTokens, turn === 0 ? 0 : previousSequence - 1, `conversation ${conv} turn ${turn}`);
        previousSequence = history.length + a.tokenIds.length;
        history = [...history, ...a.tokenIds, ...tokens(r, 2 + r(10))];
      }
    }
    const s = on.core.stats();
    assert.ok(s.prefixCacheHits > 0 && s.prefixCacheHits <= s.prefixCacheQueries);
  });

  test(`concurrent requests sharing a system prompt reuse it and match the uncached outputs (${cpuKernels})`, async () => {
    const on = await EngineHarness.load(dir, { cpuKernels, prefixCache: true, prefillTokens: 64 });
    const off = await EngineHarness.load(dir, { cpuKernels, prefixCache: false });
    const r = rng(7);
    const system = tokens(r, 60);
    const prompts = Array.from({ length: 6 }, () => [...system, ...tokens(r, 3 + r(8))]);
    const expected = prompts.map((p) => off.generate(p, { maxTokens: 10, ignoreEos: true }).tokenIds);
    // The first request runs alone; the others arrive while it decodes, two at a time.
    const ids = [on.submit(prompts[0], { maxTokens: 10, ignoreEos: true })];
    for (let i = 1; i < prompts.length; i += 2) {
      for (let s = 0; s < 3; s++) on.core.step();
      ids.push(on.submit(prompts[i], { maxTokens: 10, ignoreEos: true }));
      if (i + 1 < prompts.length) ids.push(on.submit(prompts[i + 1], { maxTokens: 10, ignoreEos: true }));
    }
    on.runUntilDone(ids);
    ids.forEach((id, i) => {
      const res = on.result(id);
      assert.deepEqual(res.tokenIds, expected[i], `request ${i}`);
      if (i > 0) assert.ok((res.usage?.cachedTokens ?? 0) >= system.length, `request ${i} cached ${res.usage?.cachedTokens}`);
    });
  });

  test(`a small cache stays within its byte bound and outputs stay the same (${cpuKernels})`, async () => {
    const kvPerToken = 2 * 2 * 2 * 16 * 4; // layers · (K,V) · kv heads · head dim · f32
    const capacity = 150 * kvPerToken;
    const on = await EngineHarness.load(dir, { cpuKernels, prefixCache: true, prefixCacheBytes: capacity });
    const off = await EngineHarness.load(dir, { cpuKernels, prefixCache: false });
    const r = rng(3);
    for (let i = 0; i < 12; i++) {
      const p = tokens(r, 20 + r(60));
      const a = on.generate(p, { maxTokens: 5, ignoreEos: true });
      assert.deepEqual(a.tokenIds, off.generate(p, { maxTokens: 5, ignoreEos: true }).tokenIds);
      assert.ok(on.core.stats().prefixCacheBytes <= capacity, `cache holds ${on.core.stats().prefixCacheBytes} > ${capacity}`);
    }
    assert.ok(on.core.stats().prefixCacheBytes > 0);
  });

  test(`cancelled and finished requests release their cache locks (everything stays evictable) (${cpuKernels})`, async () => {
    const on = await EngineHarness.load(dir, { cpuKernels, prefixCache: true });
    const r = rng(9);
    const a = on.submit(tokens(r, 30), { maxTokens: 50, ignoreEos: true });
    const b = on.submit(tokens(r, 30), { maxTokens: 4, ignoreEos: true });
    for (let s = 0; s < 5; s++) on.core.step();
    on.core.cancel(a);
    on.runUntilDone([a, b]);
    assert.equal(on.result(a).finishReason, 'cancelled');
    const stats = on.core.stats();
    assert.equal(stats.prefixCacheLockedBytes, 0);
    assert.ok(stats.prefixCacheBytes > 0);
  });
}
