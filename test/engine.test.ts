// The engine on a tiny random-weight model: continuous batching must not change any request's
// greedy output, and bad requests must fail alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CPU_KERNELS, EngineHarness } from './helpers/engine-harness.ts';
import { writeTinyModel, TINY_SPECIAL } from './helpers/tiny-model.ts';

const dir = writeTinyModel({ numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, contextLength: 256, logitScale: 4, seed: 7 });

function prompt(len: number, seed: number): number[] {
  return Array.from({ length: len }, (_, i) => (seed * 31 + i * 17) % 250);
}

// Every test runs on both CPU paths: the native kernels and MLX.
for (const cpuKernels of CPU_KERNELS) {
  test(`greedy output is the same alone, in a batch of 8 of different lengths, and joining mid-flight (${cpuKernels})`, async () => {
    const alone = await EngineHarness.load(dir, { cpuKernels, prefixCache: false });
    const prompts = [3, 9, 17, 30, 5, 44, 12, 1].map((len, i) => prompt(len, i + 1));
    const opts = { maxTokens: 24, ignoreEos: true };
    const expected = prompts.map((p) => alone.generate(p, opts).tokenIds);
    for (const e of expected) assert.equal(e.length, 24);

    const batched = await EngineHarness.load(dir, { cpuKernels, prefixCache: false });
    const ids = prompts.map((p) => batched.submit(p, opts));
    batched.runUntilDone(ids);
    ids.forEach((id, i) => assert.deepEqual(batched.result(id).tokenIds, expected[i], `request ${i} in a batch of 8`));

    // Requests arriving while others decode join the running batch.
    const staggered = await EngineHarness.load(dir, { cpuKernels, prefixCache: false, prefillTokens: 16 });
    const late: string[] = [];
    for (let i = 0; i < prompts.length; i++) {
      late.push(staggered.submit(prompts[i], opts));
      for (let s = 0; s < 3; s++) staggered.core.step();
    }
    staggered.runUntilDone(late);
    late.forEach((id, i) => assert.deepEqual(staggered.result(id).tokenIds, expected[i], `request ${i} joining mid-flight`));
  });

  test(`a long prompt is prefilled in chunks while other streams keep decoding (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels, prefixCache: false, prefillTokens: 8 });
    const expected = (await EngineHarness.load(dir, { cpuKernels, prefixCache: false })).generate(prompt(60, 3), {
      maxTokens: 8,
      ignoreEos: true,
    });
    const short = h.submit(prompt(4, 9), { maxTokens: 40, ignoreEos: true });
    h.core.step();
    h.core.step();
    const long = h.submit(prompt(60, 3), { maxTokens: 8, ignoreEos: true });
    const before = h.result(short).tokenIds.length;
    // 60 prompt tokens at 8 per step take 8 steps; the short stream gets a token in every one.
    for (let s = 0; s < 8; s++) h.core.step();
    assert.equal(h.result(short).tokenIds.length, before + 8);
    h.runUntilDone([long, short]);
    assert.deepEqual(h.result(long).tokenIds, expected.tokenIds);
  });

  test(`usage counts prompt and completion tokens; max_tokens ends with length (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels });
    const r = h.generate(prompt(10, 2), { maxTokens: 5, ignoreEos: true });
    assert.equal(r.finishReason, 'length');
    assert.deepEqual(r.usage, { promptTokens: 10, completionTokens: 5, cachedTokens: 0 });
  });

  test(`--max-model-len: the engine serves less context than the model has, and refuses more than it has (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels, maxModelLen: 64 });
    assert.equal(h.core.info().contextLength, 64);
    // The harness checks against the model's 256 tokens: these reach the engine, which refuses them.
    const long = h.result(h.submit(prompt(64, 2)));
    assert.equal(long.error?.field, 'prompt');
    assert.match(long.error.message, /maximum context length is 64 tokens/);
    assert.equal(h.result(h.submit(prompt(60, 2), { maxTokens: 5 })).error?.field, 'max_tokens');
    // Without max_tokens a request ends where the served context does.
    const r = h.generate(prompt(60, 3), { ignoreEos: true });
    assert.equal(r.finishReason, 'length');
    assert.equal(r.tokenIds.length, 4);
    await assert.rejects(
      EngineHarness.load(dir, { cpuKernels, maxModelLen: 257 }),
      /--max-model-len 257 is more than the model's context length of 256 tokens/,
    );
  });

  test(`cancel frees the slot: a cancelled request ends with cancelled and the next one runs (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels, batchSize: 1 });
    const a = h.submit(prompt(5, 1), { maxTokens: 200, ignoreEos: true });
    const b = h.submit(prompt(5, 2), { maxTokens: 3, ignoreEos: true });
    for (let s = 0; s < 4; s++) h.core.step();
    assert.equal(h.result(b).tokenIds.length, 0, 'batch size 1: b waits');
    h.core.cancel(a);
    h.runUntilDone([a, b]);
    assert.equal(h.result(a).finishReason, 'cancelled');
    assert.equal(h.result(b).finishReason, 'length');
    assert.equal(h.core.stats().running, 0);
  });

  test(`bad requests get a clear error naming the field and the engine keeps serving others (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels });
    const good = h.submit(prompt(6, 4), { maxTokens: 4, ignoreEos: true });
    const cases: [string, () => string][] = [
      ['prompt_token_ids', () => h.submit([1, 2, 999])],
      ['prompt_token_ids', () => h.submit([1, -1])],
      ['prompt', () => h.submit({ kind: 'text', text: '' })],
      ['prompt', () => h.submit(prompt(300, 1))],
      ['max_tokens', () => h.submit(prompt(200, 1), { maxTokens: 100 })],
      ['max_tokens', () => h.submit(prompt(5, 1), { maxTokens: -3 })],
      ['temperature', () => h.submit(prompt(5, 1), { temperature: Number.NaN })],
      ['temperature', () => h.submit(prompt(5, 1), { temperature: -1 })],
      ['top_p', () => h.submit(prompt(5, 1), { topP: 0 })],
      ['logit_bias', () => h.submit(prompt(5, 1), { logitBias: { 5000: 1 } })],
      ['top_logprobs', () => h.submit(prompt(5, 1), { logprobs: true, topLogprobs: 21 })],
      ['messages', () => h.submit({ kind: 'chat', messages: [{ role: 'wizard', content: 'hi' }] })],
    ];
    for (const [field, send] of cases) {
      const id = send();
      const r = h.result(id);
      assert.ok(r.error, `expected an error for ${field}`);
      assert.equal(r.error.code, 'invalid_argument');
      assert.equal(r.error.field, field, r.error.message);
    }
    // A second request with the id of one in flight is refused; the first is unaffected.
    h.submit(prompt(3, 1), {}, good);
    assert.equal(h.result(good).error?.code, 'already_exists');
    while (h.result(good).finishReason === undefined) h.core.step();
    assert.equal(h.result(good).finishReason, 'length');
    assert.equal(h.result(good).tokenIds.length, 4);
  });

  test(`chat input is rendered with the template; EOS and stop token ids end generation (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels });
    const r = h.generate({ kind: 'chat', messages: [{ role: 'user', content: 'hi' }] }, { maxTokens: 3, ignoreEos: true });
    // <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n
    assert.equal(r.usage?.promptTokens, 1 + 5 + 2 + 1 + 1 + 1 + 10);
    // Force the end-of-sequence token with a logit bias: generation stops at once with 'stop'.
    const eos = h.generate(prompt(5, 1), { maxTokens: 10, logitBias: { [TINY_SPECIAL.imEnd]: 100 } });
    assert.equal(eos.finishReason, 'stop');
    assert.equal(eos.text, '');
    const stopId = h.generate(prompt(5, 1), { maxTokens: 10, stopTokenIds: [65], logitBias: { 65: 100 } });
    assert.equal(stopId.finishReason, 'stop');
    assert.equal(stopId.stopReason, 65);
  });

  test(`stop strings end generation across token boundaries and are never emitted (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels });
    const free = h.generate(prompt(7, 5), { maxTokens: 40, ignoreEos: true });
    // Pick a two-token piece of the greedy output as the stop string: it spans a token boundary.
    const text = free.text;
    assert.ok(text.length >= 6, 'greedy output has some text');
    const stop = text.slice(3, 5);
    const r = h.generate(prompt(7, 5), { maxTokens: 40, ignoreEos: true, stop: [stop] });
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.stopReason, stop);
    assert.equal(r.text, text.slice(0, text.indexOf(stop)));
    assert.ok(!r.text.includes(stop));
  });

  test(`seeded sampling is reproducible whatever else runs; penalties and logit_bias change what they should (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels });
    const sampling = { temperature: 1, seed: 1234, maxTokens: 16, ignoreEos: true };
    const a = h.generate(prompt(8, 6), sampling);
    const others = [1, 2, 3].map((i) => h.submit(prompt(4 + i, i), { temperature: 0.8, maxTokens: 30, ignoreEos: true }));
    const b = h.submit(prompt(8, 6), sampling);
    h.runUntilDone([b, ...others]);
    assert.deepEqual(h.result(b).tokenIds, a.tokenIds);
    const c = h.generate(prompt(8, 6), { ...sampling, seed: 4321 });
    assert.notDeepEqual(c.tokenIds, a.tokenIds);

    const greedy = h.generate(prompt(8, 8), { maxTokens: 30, ignoreEos: true });
    const repeats = (ids: number[]) => ids.length - new Set(ids).size;
    const penalized = h.generate(prompt(8, 8), { maxTokens: 30, ignoreEos: true, frequencyPenalty: 2, presencePenalty: 2 });
    assert.ok(repeats(penalized.tokenIds) < repeats(greedy.tokenIds) || repeats(greedy.tokenIds) === 0);
    const banned = greedy.tokenIds[0];
    const biased = h.generate(prompt(8, 8), { maxTokens: 30, ignoreEos: true, logitBias: { [banned]: -100 } });
    assert.ok(!biased.tokenIds.includes(banned));
  });

  test(`logprobs: the chosen token and up to 20 alternatives, sorted (${cpuKernels})`, async () => {
    const h = await EngineHarness.load(dir, { cpuKernels });
    const r = h.generate(prompt(5, 3), { maxTokens: 4, ignoreEos: true, logprobs: true, topLogprobs: 5 });
    const deltas = r.events.filter((e) => e.type === 'delta' && e.tokenIds.length > 0);
    assert.equal(deltas.length, 4);
    for (const d of deltas) {
      if (d.type !== 'delta') continue;
      const lp = d.logprobs?.[0];
      assert.ok(lp);
      assert.equal(lp.tokenId, d.tokenIds[0]);
      assert.equal(lp.top.length, 5);
      for (let i = 1; i < lp.top.length; i++) assert.ok(lp.top[i - 1].logprob >= lp.top[i].logprob);
      // Greedy: the chosen token is the most likely one.
      assert.equal(lp.top[0].tokenId, lp.tokenId);
      assert.ok(Math.abs(lp.top[0].logprob - lp.logprob) < 1e-5);
      assert.ok(lp.logprob <= 0);
    }
  });

  test(`a small KV budget queues requests and preempts growing ones; every output stays the same (${cpuKernels})`, async () => {
    const prompts = [10, 14, 6, 20, 9, 12].map((len, i) => prompt(len, i + 20));
    const opts = { maxTokens: 40, ignoreEos: true };
    const roomy = await EngineHarness.load(dir, { cpuKernels, prefixCache: false });
    const expected = prompts.map((p) => roomy.generate(p, opts).tokenIds);
    // A cell (one token of one row) is 2 layers · K,V · 2 KV heads · 16 dims · 4 bytes = 512 bytes:
    // this budget fits a handful of rows of a few dozen tokens, far less than the six requests need.
    const tight = await EngineHarness.load(dir, { cpuKernels, prefixCache: true, kvBudgetBytes: 160 * 512 });
    const ids = prompts.map((p) => tight.submit(p, opts));
    let peakRunning = 0;
    while (ids.some((id) => !tight.done(id))) {
      tight.core.step();
      const s = tight.core.stats();
      peakRunning = Math.max(peakRunning, s.running);
      assert.ok(s.kvBytesUsed <= 160 * 512 * 2, `KV in use ${s.kvBytesUsed}`);
    }
    ids.forEach((id, i) => assert.deepEqual(tight.result(id).tokenIds, expected[i], `request ${i}`));
    assert.ok(peakRunning < prompts.length, `at most ${peakRunning} ran at once`);
  });
}
