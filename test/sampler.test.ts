// The sampler's contract: greedy is argmax and ignores randomness, a seeded row gives the same
// token whatever else is in the batch and wherever it sits, padding is ignored, logprobs are the
// raw log-softmax, bias and penalties do what they say, and bad input fails in JS, not in MLX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSamplingParams, InvalidArgumentError, type SamplingParams } from '../src/engine/sampling-params.ts';
import { Sampler, type SamplerRow } from '../src/engine/sampler/sampler.ts';
import { referenceLogSoftmax } from '../src/engine/sampler/reference.ts';
import { mx } from '../src/engine/mlx.ts';

/** Deterministic pseudo-random logits (float32-exact), std ~2.5. */
function randomLogits(rows: number, vocab: number, seed: number): number[][] {
  let state = seed >>> 0;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Array.from({ length: rows }, () => Array.from({ length: vocab }, () => Math.fround((next() + next() + next() - 1.5) * 5)));
}

const params = (p: Partial<SamplingParams> = {}): SamplingParams => ({ ...defaultSamplingParams(), ...p });
const row = (p: Partial<SamplingParams>, seed: number, outputTokenIds: number[] = [], promptTokenIds: number[] = []): SamplerRow => ({
  params: params(p),
  promptTokenIds,
  outputTokenIds,
  seed,
});
const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

test('greedy picks the argmax, whatever the seed, on the fast path and mixed with other rows', () => {
  const V = 300;
  const logits = randomLogits(6, V, 1);
  const x = mx.array(logits, mx.float32);
  const sampler = new Sampler(V);
  for (const temperature of [0, 1e-6]) {
    const fast = sampler.sample(
      x,
      logits.map((_, i) => row({ temperature }, i * 97)),
    );
    assert.deepEqual(
      fast.map((t) => t.tokenId),
      logits.map(argmax),
    );
  }
  const mixed = sampler.sample(
    x,
    logits.map((_, i) => (i % 2 ? row({ temperature: 0, logprobs: true }, i) : row({ temperature: 1, topK: 3 }, i))),
  );
  logits.forEach((l, i) => i % 2 && assert.equal(mixed[i].tokenId, argmax(l)));
});

test('a temperature just above the greedy threshold still follows the argmax on distinct logits', () => {
  const V = 200;
  const logits = randomLogits(4, V, 2);
  const out = new Sampler(V).sample(
    mx.array(logits, mx.float32),
    logits.map((_, i) => row({ temperature: 1e-5 }, i)),
  );
  assert.deepEqual(
    out.map((t) => t.tokenId),
    logits.map(argmax),
  );
});

// A vocabulary of 8192 with the default layout has 256 blocks, so the candidate tiers are real.
const V = 8192;
const targets: [string, Partial<SamplingParams>][] = [
  ['temperature 1', { temperature: 1 }],
  ['temperature 0.7 + top_p 0.9', { temperature: 0.7, topP: 0.9 }],
  ['top_k 40', { temperature: 1.3, topK: 40 }],
  ['top_k 3000 (beyond the first tiers)', { temperature: 1, topK: 3000 }],
  ['min_p 0.05', { temperature: 0.9, minP: 0.05 }],
  ['top_p 0.999 (reaches the exhaustive sort)', { temperature: 2, topP: 0.999 }],
  [
    'all filters + penalties + logprobs',
    {
      temperature: 0.8,
      topK: 50,
      topP: 0.95,
      minP: 0.01,
      repetitionPenalty: 1.2,
      frequencyPenalty: 0.4,
      presencePenalty: 0.2,
      logitBias: { 5: 3 },
      logprobs: true,
      topLogprobs: 4,
    },
  ],
];

test('a seeded row gives the same token alone, at any position, among any neighbours, with padding', () => {
  const sampler = new Sampler(V);
  const target = randomLogits(1, V, 3)[0];
  const neighbours = randomLogits(12, V, 4);
  for (const [name, p] of targets) {
    for (let step = 0; step < 3; step++) {
      const output = Array.from({ length: step }, (_, i) => (i * 131) % V);
      const mine = row(p, 12345, output, [7, 8, 9]);
      const alone = sampler.sample(mx.array([target], mx.float32), [mine])[0];
      // Other rows of every kind, the target in the middle, null padding rows and padded logits rows.
      const others = targets.map(([, q], i) => row(q, 999 + i, [i, i + 1]));
      const rows: (SamplerRow | null)[] = [...others.slice(0, 3), null, mine, ...others.slice(3), null];
      const logits = rows.map((r, i) => (r === mine ? target : neighbours[i % neighbours.length]));
      const padded = [...logits, neighbours[0], neighbours[1]];
      const inBatch = sampler.sample(mx.array(padded, mx.float32), rows);
      assert.deepEqual(inBatch[4], alone, `${name}, step ${step}`);
      assert.equal(inBatch[3], null);
      assert.equal(inBatch[rows.length - 1], null);
    }
  }
});

test('the tokens do not depend on which tier certified them', () => {
  // Tiers this small make every filtered row fall back to a later evaluation; one tier holding the
  // whole vocabulary certifies every row in the first; the default ones are in between.
  const tiny = new Sampler(V, { candidateTiers: [{ blocks: 1, tokens: 2 }] });
  const whole = new Sampler(V, { candidateTiers: [{ blocks: Infinity, tokens: Infinity }] });
  const standard = new Sampler(V);
  const logits = randomLogits(8, V, 5);
  const x = mx.array(logits, mx.float32);
  for (const [name, p] of targets) {
    const rows = logits.map((_, i) => row(p, 500 + i));
    const expected = whole.sample(x, rows);
    assert.deepEqual(tiny.sample(x, rows), expected, `${name}: smallest tiers`);
    assert.deepEqual(standard.sample(x, rows), expected, `${name}: default tiers`);
  }
});

test('the random stream advances with the step and differs between seeds', () => {
  const sampler = new Sampler(64);
  const flat = mx.array([new Array(64).fill(0)], mx.float32); // uniform distribution
  const bySeed = new Set(Array.from({ length: 40 }, (_, s) => sampler.sample(flat, [row({}, s)])[0].tokenId));
  const output: number[] = [];
  const byStep = new Set(
    Array.from({ length: 40 }, () => {
      const t = sampler.sample(flat, [row({}, 7, output)])[0].tokenId;
      output.push(t);
      return t;
    }),
  );
  assert.ok(bySeed.size > 20, `${bySeed.size} distinct tokens over 40 seeds`);
  assert.ok(byStep.size > 20, `${byStep.size} distinct tokens over 40 steps`);
});

test('padding rows are never read: garbage there changes nothing', () => {
  const sampler = new Sampler(V);
  const logits = randomLogits(3, V, 6);
  const rows = [
    row({ temperature: 0.8, topP: 0.9 }, 1),
    row({ temperature: 0 }, 2),
    row({ temperature: 1, logprobs: true, topLogprobs: 2 }, 3),
  ];
  const clean = sampler.sample(mx.array(logits, mx.float32), rows);
  const nan = new Array(V).fill(NaN);
  const inf = new Array(V).fill(Infinity);
  const dirty = sampler.sample(mx.array([nan, logits[0], inf, logits[1], logits[2], nan], mx.float32), [
    null,
    rows[0],
    null,
    rows[1],
    rows[2],
  ]);
  assert.deepEqual([dirty[1], dirty[3], dirty[4]], clean);
  assert.deepEqual(sampler.sample(mx.array(logits, mx.float32), [null, null]), [null, null]);
  // Greedy rows around a padding row: the batch-wide argmax path.
  const greedy = [row({ temperature: 0 }, 1), null, row({ temperature: 0 }, 2), row({ temperature: 0 }, 3)];
  const around = sampler.sample(mx.array([logits[0], nan, logits[1], logits[2]], mx.float32), greedy);
  assert.deepEqual(around, [{ tokenId: argmax(logits[0]) }, null, { tokenId: argmax(logits[1]) }, { tokenId: argmax(logits[2]) }]);
});

test('non-finite logits in a real row give some in-range token, never a crash', () => {
  const vocab = V;
  const sampler = new Sampler(vocab);
  const nan = new Array(vocab).fill(NaN);
  const inf = new Array(vocab).fill(0).map((_, i) => (i === 17 ? Infinity : i % 7));
  const negInf = new Array(vocab).fill(-Infinity);
  for (const logits of [nan, inf, negInf]) {
    const x = mx.array(
      targets.map(() => logits),
      mx.float32,
    );
    const out = sampler.sample(
      x,
      targets.map(([, p], i) => row({ ...p, logprobs: true, topLogprobs: 3 }, i, [1, 2], [3])),
    );
    for (const t of out) assert.ok(Number.isInteger(t.tokenId) && t.tokenId >= 0 && t.tokenId < vocab, `token ${t.tokenId}`);
  }
  const [greedy] = sampler.sample(mx.array([inf], mx.float32), [row({ temperature: 0 }, 1)]);
  assert.equal(greedy.tokenId, 17);
});

test('logprobs are the raw log-softmax: chosen token and sorted top alternatives', () => {
  const vocab = 1000;
  const sampler = new Sampler(vocab);
  const logits = randomLogits(4, vocab, 7);
  const rows = [
    row({ temperature: 0, logprobs: true, topLogprobs: 5 }, 1),
    // Bias, penalties and temperature must not change the reported logprobs.
    row({ temperature: 0.5, logprobs: true, topLogprobs: 20, logitBias: { 3: 50 }, repetitionPenalty: 1.5 }, 2, [1, 2], [3]),
    row({ temperature: 1, logprobs: true }, 3),
    row({ temperature: 1, topK: 5 }, 4),
  ];
  const out = sampler.sample(mx.array(logits, mx.float32), rows);
  out.forEach((t, i) => {
    const ref = referenceLogSoftmax(logits[i]);
    if (!rows[i].params.logprobs) {
      assert.equal(t.logprob, undefined);
      assert.equal(t.topLogprobs, undefined);
      return;
    }
    assert.ok(Math.abs(t.logprob! - ref[t.tokenId]) < 1e-4, `row ${i} chosen logprob ${t.logprob} vs ${ref[t.tokenId]}`);
    const n = rows[i].params.topLogprobs;
    if (n === 0) return assert.equal(t.topLogprobs, undefined);
    const expected = ref
      .map((logprob, tokenId) => ({ tokenId, logprob }))
      .sort((a, b) => b.logprob - a.logprob)
      .slice(0, n);
    assert.deepEqual(
      t.topLogprobs!.map((e) => e.tokenId),
      expected.map((e) => e.tokenId),
      `row ${i} top ids`,
    );
    t.topLogprobs!.forEach((e, j) => {
      assert.ok(Math.abs(e.logprob - expected[j].logprob) < 1e-4);
      if (j > 0) assert.ok(e.logprob <= t.topLogprobs![j - 1].logprob, 'sorted, most likely first');
    });
  });
  assert.equal(out[1].tokenId, 3, 'bias +50 decides the token');
});

test('top_logprobs larger than the vocabulary lists the whole vocabulary', () => {
  const logits = randomLogits(1, 8, 8);
  const [t] = new Sampler(8).sample(mx.array(logits, mx.float32), [row({ temperature: 0, logprobs: true, topLogprobs: 20 }, 1)]);
  assert.equal(t.topLogprobs!.length, 8);
  assert.deepEqual(new Set(t.topLogprobs!.map((e) => e.tokenId)), new Set([0, 1, 2, 3, 4, 5, 6, 7]));
});

test('logit_bias +100 forces a token and -100 bans one', () => {
  const vocab = 500;
  const sampler = new Sampler(vocab);
  const logits = randomLogits(1, vocab, 9)[0];
  const best = argmax(logits);
  const x = mx.array(
    Array.from({ length: 16 }, () => logits),
    mx.float32,
  );
  for (let call = 0; call < 5; call++) {
    const forced = sampler.sample(
      x,
      Array.from({ length: 16 }, (_, i) => row({ temperature: 2, logitBias: { 123: 100 } }, call * 16 + i)),
    );
    assert.ok(forced.every((t) => t.tokenId === 123));
    const banned = sampler.sample(
      x,
      Array.from({ length: 16 }, (_, i) => row({ temperature: 1, topK: 2, logitBias: { [best]: -100 } }, call * 16 + i)),
    );
    assert.ok(banned.every((t) => t.tokenId !== best));
  }
  const [greedy] = sampler.sample(x, [row({ temperature: 0, logitBias: { [best]: -100 } }, 1)]);
  const secondBest = argmax(logits.map((v, i) => (i === best ? -Infinity : v)));
  assert.equal(greedy.tokenId, secondBest);
});

test('frequency and repetition penalties move greedy away from a repeated token', () => {
  const vocab = 64;
  const logits = new Array(vocab).fill(0);
  logits[10] = 2;
  logits[11] = 1.5;
  const x = mx.array([logits], mx.float32);
  const sampler = new Sampler(vocab);
  assert.equal(sampler.sample(x, [row({ temperature: 0 }, 1, [10])])[0].tokenId, 10);
  assert.equal(sampler.sample(x, [row({ temperature: 0, frequencyPenalty: 0.3 }, 1, [10, 10])])[0].tokenId, 11, '2 - 0.6 < 1.5');
  assert.equal(sampler.sample(x, [row({ temperature: 0, frequencyPenalty: 0.3 }, 1, [10])])[0].tokenId, 10, '2 - 0.3 > 1.5');
  assert.equal(sampler.sample(x, [row({ temperature: 0, presencePenalty: 0.6 }, 1, [10, 10, 10])])[0].tokenId, 11);
  assert.equal(
    sampler.sample(x, [row({ temperature: 0, repetitionPenalty: 1.5 }, 1, [], [10])])[0].tokenId,
    11,
    'prompt tokens count for repetition',
  );
  assert.equal(sampler.sample(x, [row({ temperature: 0, presencePenalty: 2 }, 1, [], [10])])[0].tokenId, 10, 'but not for presence');
});

test('edge parameters: top_k equal to the vocabulary, top_p 1 and min_p 0 filter nothing', () => {
  const vocab = 256;
  const sampler = new Sampler(vocab);
  const logits = randomLogits(8, vocab, 10);
  const x = mx.array(logits, mx.float32);
  const plain = sampler.sample(
    x,
    logits.map((_, i) => row({ temperature: 0.9 }, i)),
  );
  const noOps = sampler.sample(
    x,
    logits.map((_, i) => row({ temperature: 0.9, topK: vocab, topP: 1, minP: 0 }, i)),
  );
  assert.deepEqual(noOps, plain);
});

test('bad token ids fail in JS with the field named, and the sampler keeps working', () => {
  const vocab = 32;
  const sampler = new Sampler(vocab);
  const x = mx.array(randomLogits(2, vocab, 11), mx.float32);
  const field = (f: string) => (e: unknown) => e instanceof InvalidArgumentError && e.field === f;
  assert.throws(() => sampler.sample(x, [row({ logitBias: { 32: 1 } }, 1)]), field('logit_bias'));
  assert.throws(() => sampler.sample(x, [row({ frequencyPenalty: 1 }, 1, [vocab])]), field('output token ids'));
  assert.throws(() => sampler.sample(x, [row({ repetitionPenalty: 1.1 }, 1, [], [-3])]), field('prompt token ids'));
  assert.throws(() => sampler.sample(x, [row({}, 1), row({}, 2), row({}, 3)]), RangeError);
  assert.throws(() => sampler.sample(mx.zeros([2, vocab + 1]), [row({}, 1)]), RangeError);
  assert.throws(() => sampler.sample(mx.zeros([2, vocab], mx.int32), [row({}, 1)]), TypeError);
  assert.equal(sampler.sample(x, [row({ temperature: 0 }, 1)]).length, 1);
});
