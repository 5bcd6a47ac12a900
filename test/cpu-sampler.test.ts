// The CPU sampler (logits in a Float32Array, per-row work in the native addon) against the same
// contract as the MLX sampler and the plain-JS reference: token frequencies over many seeds,
// exact sampling probabilities (the native draw is an inverse CDF, so sweeping its uniform over a
// grid measures them without noise), ties at a cut, bias and penalties, greedy, logprobs,
// independence from the batch, and validation. Needs the addon: node native/cpu-kernels/build.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { defaultSamplingParams, InvalidArgumentError, type SamplingParams } from '../src/engine/sampling-params.ts';
import { CpuSampler } from '../src/engine/sampler/cpu-sampler.ts';
import { HostPenaltyStateCache, OverwrittenLogits } from '../src/engine/sampler/host-penalty-state.ts';
import { planRow } from '../src/engine/sampler/row-plan.ts';
import type { SamplerRow } from '../src/engine/sampler/sampler.ts';
import { stepKey, stepUniform } from '../src/engine/sampler/step-key.ts';
import { referenceAdjustedLogits, referenceDistribution, referenceLogSoftmax } from '../src/engine/sampler/reference.ts';
import { cpuKernels, nativeKernelsUnavailable, type CpuKernelsAddon } from '../src/engine/native/cpu-kernels.ts';

/** The addon; a missing build fails here rather than skipping everything below. */
function addon(): CpuKernelsAddon {
  const kernels = cpuKernels();
  assert.ok(kernels, `the native kernels must be built for these tests: ${nativeKernelsUnavailable()}`);
  return kernels;
}

test('the native kernels are built and export the sampler functions', () => {
  const k = addon();
  for (const name of ['argmaxRows', 'logprobStats', 'sampleRow'] as const) assert.equal(typeof k[name], 'function', name);
});

test('the CPU sampler loads no MLX (the native path runs where MLX may not)', () => {
  // Records every native library a fresh process loads while it imports and uses the sampler.
  const script = `
    const loaded = [];
    const dlopen = process.dlopen;
    process.dlopen = function (module, filename, ...rest) { loaded.push(filename); return dlopen.call(this, module, filename, ...rest); };
    const { CpuSampler } = await import(${JSON.stringify(new URL('../src/engine/sampler/cpu-sampler.ts', import.meta.url).href)});
    new CpuSampler(4).sample(new Float32Array(4), [{ params: ${JSON.stringify(defaultSamplingParams())}, promptTokenIds: [], outputTokenIds: [], seed: 1 }]);
    console.log(JSON.stringify(loaded));`;
  const loaded = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }),
  ) as string[];
  assert.ok(
    loaded.some((f) => f.endsWith('cpu-kernels.node')),
    `loaded ${loaded.join(', ')}`,
  );
  assert.ok(!loaded.some((f) => /mlx/i.test(f)), `loaded ${loaded.join(', ')}`);
});

const params = (p: Partial<SamplingParams> = {}): SamplingParams => ({ ...defaultSamplingParams(), ...p });
const row = (p: Partial<SamplingParams>, seed: number, outputTokenIds: number[] = [], promptTokenIds: number[] = []): SamplerRow => ({
  params: params(p),
  promptTokenIds,
  outputTokenIds,
  seed,
});
const argmax = (xs: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
};

/** Deterministic uniform numbers in [0, 1) (an LCG), so the cases never change. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Deterministic pseudo-random logits (float32-exact), std ~2.5. */
function randomLogits(rows: number, vocab: number, seed: number): number[][] {
  const next = lcg(seed);
  return Array.from({ length: rows }, () => Array.from({ length: vocab }, () => Math.fround((next() + next() + next() - 1.5) * 5)));
}

const flat = (rows: readonly (readonly number[])[]) => new Float32Array(rows.flat());

// ---- Token frequencies over seeds (as test/sampler-distribution.test.ts for the MLX sampler) ----

/** Deterministic standard normals (Box-Muller over a small LCG). */
function normals(count: number, seed: number): number[] {
  const uniform = lcg(seed);
  const u = () => uniform() + 0.5 / 2 ** 32;
  return Array.from({ length: count }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** Wilson-Hilferty approximation of the chi-square quantile exceeded with probability ~1e-6. */
function chiSquareTail(df: number): number {
  const z = 4.75;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

interface FrequencyCase {
  name: string;
  params: Partial<SamplingParams>;
  logits: number[];
  promptTokenIds?: number[];
  outputTokenIds?: number[];
}

function checkFrequencies(vocab: number, cases: FrequencyCase[], callsPerSeedBlock: number) {
  const sampler = new CpuSampler(vocab);
  const full = cases.map((c) => ({ ...c, logits: c.logits.map(Math.fround), params: params(c.params) }));
  const batch = full.length * 4;
  const logits = flat(Array.from({ length: batch }, (_, r) => full[r % full.length].logits));
  const counts = full.map(() => new Array(vocab).fill(0));
  for (let call = 0; call < callsPerSeedBlock; call++) {
    const rows: SamplerRow[] = Array.from({ length: batch }, (_, r) => {
      const c = full[r % full.length];
      return {
        params: c.params,
        promptTokenIds: c.promptTokenIds ?? [],
        outputTokenIds: c.outputTokenIds ?? [],
        seed: 1000 + call * batch + r,
      };
    });
    sampler.sample(logits, rows).forEach((t, r) => counts[r % full.length][t.tokenId]++);
  }
  const n = callsPerSeedBlock * 4;
  full.forEach((c, i) => {
    const ref = referenceDistribution(c.logits, {
      params: c.params,
      promptTokenIds: c.promptTokenIds ?? [],
      outputTokenIds: c.outputTokenIds ?? [],
    });
    let chi2 = 0;
    ref.probs.forEach((p, token) => {
      const observed = counts[i][token] / n;
      if (p === 0) {
        assert.equal(counts[i][token], 0, `${c.name}: token ${token} is not allowed but was sampled`);
        return;
      }
      const tolerance = 5 * Math.sqrt((p * (1 - p)) / n) + 1 / n;
      assert.ok(Math.abs(observed - p) <= tolerance, `${c.name}: token ${token} frequency ${observed} vs probability ${p.toFixed(4)}`);
      chi2 += (counts[i][token] - n * p) ** 2 / (n * p);
    });
    const df = ref.probs.filter((p) => p > 0).length - 1;
    if (df > 0) assert.ok(chi2 < chiSquareTail(df), `${c.name}: chi-square ${chi2.toFixed(1)} with ${df} degrees of freedom`);
  });
}

test('token frequencies over seeds match the reference distribution for every filter combination', () => {
  const V = 24;
  const base = normals(V * 8, 17).map((x) => 1.5 * x);
  const logitsOf = (k: number) => base.slice(k * V, (k + 1) * V);
  const peaked = [3, 2, 1, 0, ...new Array(V - 4).fill(-6)];
  checkFrequencies(
    V,
    [
      { name: 'temperature 1', params: { temperature: 1 }, logits: logitsOf(0) },
      { name: 'temperature 0.6', params: { temperature: 0.6 }, logits: logitsOf(1) },
      { name: 'top_k 5 at temperature 1.5', params: { temperature: 1.5, topK: 5 }, logits: logitsOf(2) },
      { name: 'top_p 0.8', params: { temperature: 1, topP: 0.8 }, logits: logitsOf(3) },
      { name: 'min_p 0.1 at temperature 0.8', params: { temperature: 0.8, minP: 0.1 }, logits: logitsOf(4) },
      { name: 'all filters', params: { temperature: 1.2, topK: 10, topP: 0.9, minP: 0.05 }, logits: logitsOf(5) },
      { name: 'top_k 20', params: { temperature: 2, topK: 20 }, logits: logitsOf(6) },
      { name: 'peaked', params: { temperature: 1 }, logits: peaked },
      { name: 'peaked, top_k 3', params: { temperature: 1, topK: 3 }, logits: peaked },
      {
        name: 'penalties and bias',
        logits: logitsOf(7),
        promptTokenIds: [1, 2, 3],
        outputTokenIds: [3, 3, 4],
        params: { temperature: 1, repetitionPenalty: 1.5, frequencyPenalty: 0.5, presencePenalty: 0.3, logitBias: { 5: 2, 6: -3 } },
      },
    ],
    300,
  );
});

// ---- Exact probabilities: the native draw swept over a grid of uniforms ----

const GRID = 2000;

/** How often each token comes out of sampleRow for u = (i + 0.5) / GRID: GRID × its probability, ±1. */
function gridCounts(logits: readonly number[], p: SamplingParams): number[] {
  const vocab = logits.length;
  const plan = planRow(0, { params: p, outputTokenIds: [], seed: 0 }, vocab);
  const x = new Float32Array(logits);
  const counts = new Array(vocab).fill(0);
  for (let i = 0; i < GRID; i++) {
    counts[addon().sampleRow(x, 0, vocab, plan.temperature, plan.topK, plan.topP, p.minP, (i + 0.5) / GRID)]++;
  }
  return counts;
}

/** The grid's counts against the reference's probabilities; no token outside the allowed set. */
function assertProbabilities(logits: readonly number[], p: SamplingParams, what: string): void {
  const ref = referenceDistribution(logits, { params: p, promptTokenIds: [], outputTokenIds: [] });
  const counts = gridCounts(logits, p);
  ref.probs.forEach((prob, token) => {
    if (prob === 0) return assert.equal(counts[token], 0, `${what}: token ${token} is not allowed but was drawn`);
    // The grid gives each token its share of GRID points to within one (plus float32 rounding).
    assert.ok(
      Math.abs(counts[token] - GRID * prob) <= 1 + 1e-3 * GRID * prob,
      `${what}: token ${token} drawn ${counts[token]} times of ${GRID}, probability ${prob}`,
    );
  });
}

/** Each filter on or off; when on, a value where it matters (fast-check's doubles favour extremes otherwise). */
const paramsArb = (vocab: number) =>
  fc
    .record({
      temperature: fc.oneof(
        fc.constant(1),
        fc.integer({ min: 5, max: 200 }).map((t) => t / 100),
      ),
      topK: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: vocab })),
      topP: fc.oneof(
        fc.constant(1),
        fc.integer({ min: 1, max: 99 }).map((v) => v / 100 + 0.001),
      ),
      minP: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 90 }).map((v) => v / 100 + 0.001),
      ),
    })
    .map((p) => params(p));

/** Cases whose decision is within rounding of flipping are not comparable between float32 and float64. */
const comparable = (logits: readonly number[], p: SamplingParams) =>
  referenceDistribution(logits, { params: p, promptTokenIds: [], outputTokenIds: [] }).margin > 1e-3;

test('sampling probabilities equal the reference for random logits and filters', () => {
  const vocab = 64;
  const logitsArb = fc.array(fc.double({ min: -6, max: 6, noNaN: true }).map(Math.fround), { minLength: vocab, maxLength: vocab });
  fc.assert(
    fc.property(logitsArb, paramsArb(vocab), (logits, p) => {
      fc.pre(comparable(logits, p));
      assertProbabilities(logits, p, JSON.stringify({ temperature: p.temperature, topK: p.topK, topP: p.topP, minP: p.minP }));
    }),
    // Each run sweeps the grid; shrinking a failure would rerun it thousands of times.
    { seed: 2024, numRuns: 150, endOnFailure: true },
  );
});

/** LM-like rows: most mass on a few tokens, a long tail; spread varies with the seed. */
function lmLikeLogits(vocab: number, seed: number): number[] {
  const next = lcg(seed);
  const scale = 0.6 + 1.2 * next();
  const row = Array.from({ length: vocab }, (_, rank) => Math.fround(10 - scale * 2.2 * Math.log(rank + 1) - 3 * next()));
  for (let i = vocab - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [row[i], row[j]] = [row[j], row[i]];
  }
  return row;
}

test('sampling probabilities equal the reference on a large vocabulary, where cuts are searched near the top', () => {
  // Wide and narrow distributions and cuts from a handful of tokens to thousands exercise every
  // search window, including the whole row.
  const vocab = 6000;
  const settings: Partial<SamplingParams>[] = [
    { temperature: 0.7, topP: 0.9 },
    { temperature: 1, topP: 0.95 },
    { temperature: 2, topP: 0.999 },
    { temperature: 0.3, topP: 0.5 },
    { temperature: 0.7, topP: 0.9, topK: 50 },
    { temperature: 1, topK: 3000 },
    { temperature: 1.5, topK: 1 },
    { temperature: 0.8, minP: 0.05 },
    { temperature: 1.2, minP: 0.001, topP: 0.8 },
    { temperature: 1 },
  ];
  let compared = 0;
  for (let seed = 1; seed <= 3; seed++) {
    const logits = lmLikeLogits(vocab, seed);
    for (const s of settings) {
      const p = params(s);
      if (!comparable(logits, p)) continue;
      compared++;
      assertProbabilities(logits, p, `seed ${seed} ${JSON.stringify(s)}`);
    }
  }
  assert.ok(compared >= 25, `${compared} cases compared`);
});

test('ties at a cut are all kept: top_k, top_p and min_p thresholds are values', () => {
  // top_k 2 over [.., 3, .., 3, 3, ..]: the second largest is 3, so all three 3s stay.
  const tiesAtTopK = [0.5, 3, 1, 3, 3, -1, 0, 2];
  assert.deepEqual(
    gridCounts(tiesAtTopK, params({ topK: 2 })).map((c) => c > 0),
    [false, true, false, true, true, false, false, false],
  );
  assertProbabilities(tiesAtTopK, params({ topK: 2 }), 'top_k ties');
  // top_p: the token at 2 alone holds ~0.47 of the mass; the cut then falls among the three 1s.
  const tiesAtTopP = [1, 2, 1, -3, 1, -3];
  assert.deepEqual(
    gridCounts(tiesAtTopP, params({ topP: 0.6 })).map((c) => c > 0),
    [true, true, true, false, true, false],
  );
  assertProbabilities(tiesAtTopP, params({ topP: 0.6 }), 'top_p ties');
  // min_p 0.5 at temperature 1: log(0.5) below the maximum 0 is -0.693...; -0.6931 is above, -0.6932 below.
  // biome-ignore lint/suspicious/noApproximativeNumericConstant: just above and just below -ln 2, on purpose
  const nearMinP = [0, -0.6931, -0.6932, -5].map(Math.fround);
  assert.deepEqual(
    gridCounts(nearMinP, params({ minP: 0.5 })).map((c) => c > 0),
    [true, true, false, false],
  );
});

test('the uniform maps to tokens in ascending id order (an inverse CDF), so a draw depends only on u', () => {
  const x = new Float32Array([0, 0, 0, 0]);
  const k = addon();
  assert.equal(k.sampleRow(x, 0, 4, 1, 0, 1, 0, 0), 0);
  assert.equal(k.sampleRow(x, 0, 4, 1, 0, 1, 0, 0.2499), 0);
  assert.equal(k.sampleRow(x, 0, 4, 1, 0, 1, 0, 0.2501), 1);
  assert.equal(k.sampleRow(x, 0, 4, 1, 0, 1, 0, 0.9999), 3);
});

// ---- The sampler's contract (as test/sampler.test.ts for the MLX sampler) ----

test('greedy is the first index of the maximum, whatever the seed, alone or among sampled rows', () => {
  const V = 300;
  const logits = randomLogits(6, V, 1);
  const sampler = new CpuSampler(V);
  for (const temperature of [0, 1e-6]) {
    const out = sampler.sample(
      flat(logits),
      logits.map((_, i) => row({ temperature }, i * 97)),
    );
    assert.deepEqual(
      out.map((t) => t.tokenId),
      logits.map(argmax),
    );
  }
  const mixed = sampler.sample(
    flat(logits),
    logits.map((_, i) => (i % 2 ? row({ temperature: 0, logprobs: true }, i) : row({ temperature: 1, topK: 3 }, i))),
  );
  logits.forEach((l, i) => i % 2 && assert.equal(mixed[i].tokenId, argmax(l)));
  // Equal maxima: the first one, as reference.ts defines it.
  const [tied] = new CpuSampler(6).sample(new Float32Array([1, 5, 3, 5, 5, 0]), [row({ temperature: 0 }, 1)]);
  assert.equal(tied.tokenId, 1);
});

test('a temperature just above the greedy threshold still follows the argmax on distinct logits', () => {
  const V = 200;
  const logits = randomLogits(4, V, 2);
  const out = new CpuSampler(V).sample(
    flat(logits),
    logits.map((_, i) => row({ temperature: 1e-5 }, i)),
  );
  assert.deepEqual(
    out.map((t) => t.tokenId),
    logits.map(argmax),
  );
});

const V = 8192;
const targets: [string, Partial<SamplingParams>][] = [
  ['temperature 1', { temperature: 1 }],
  ['temperature 0.7 + top_p 0.9', { temperature: 0.7, topP: 0.9 }],
  ['top_k 40', { temperature: 1.3, topK: 40 }],
  ['top_k 3000', { temperature: 1, topK: 3000 }],
  ['min_p 0.05', { temperature: 0.9, minP: 0.05 }],
  ['top_p 0.999', { temperature: 2, topP: 0.999 }],
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

test('a seeded row gives the same token alone, at any position, among any neighbours, in any order, with padding', () => {
  const sampler = new CpuSampler(V);
  const target = randomLogits(1, V, 3)[0];
  const neighbours = randomLogits(12, V, 4);
  for (const [name, p] of targets) {
    for (let step = 0; step < 3; step++) {
      const output = Array.from({ length: step }, (_, i) => (i * 131) % V);
      const mine = row(p, 12345, output, [7, 8, 9]);
      const alone = sampler.sample(flat([target]), [mine])[0];
      const others = targets.map(([, q], i) => row(q, 999 + i, [i, i + 1]));
      const rows: (SamplerRow | null)[] = [...others.slice(0, 3), null, mine, ...others.slice(3), null];
      const logits = rows.map((r, i) => (r === mine ? target : neighbours[i % neighbours.length]));
      const inBatch = sampler.sample(flat([...logits, neighbours[0], neighbours[1]]), rows);
      assert.deepEqual(inBatch[4], alone, `${name}, step ${step}`);
      assert.equal(inBatch[3], null);
      assert.equal(inBatch[rows.length - 1], null);
      // The same rows reversed: every row's token is unchanged.
      const reversed = sampler.sample(flat(logits.slice().reverse()), rows.slice().reverse());
      assert.deepEqual(reversed.slice().reverse(), inBatch.slice(0, rows.length), `${name}, step ${step}, reversed batch`);
    }
  }
});

test("the draw is the step key's uniform: the random stream advances with the step and differs between seeds", () => {
  const sampler = new CpuSampler(64);
  const uniform = new Float32Array(64); // every token equally likely
  const bySeed = new Set(Array.from({ length: 40 }, (_, s) => sampler.sample(uniform, [row({}, s)])[0].tokenId));
  const output: number[] = [];
  const byStep = new Set(
    Array.from({ length: 40 }, () => {
      const t = sampler.sample(uniform, [row({}, 7, output)])[0].tokenId;
      output.push(t);
      return t;
    }),
  );
  assert.ok(bySeed.size > 20, `${bySeed.size} distinct tokens over 40 seeds`);
  assert.ok(byStep.size > 20, `${byStep.size} distinct tokens over 40 steps`);
  // Over a uniform row the inverse CDF picks token floor(64 u).
  for (const [seed, step] of [
    [1, 0],
    [7, 5],
    [-3, 2],
    [2 ** 53 - 1, 100],
  ]) {
    const out = Array.from({ length: step }, () => 0);
    const [t] = sampler.sample(uniform, [row({}, seed, out)]);
    assert.equal(t.tokenId, Math.floor(64 * stepUniform(stepKey(seed, step))), `seed ${seed}, step ${step}`);
  }
});

test("step uniforms are the key's top 53 bits over 2^53", () => {
  for (const [seed, step] of [
    [0, 0],
    [1, 1],
    [-1, 7],
    [123456789, 42],
    [2 ** 53 - 1, 0],
  ]) {
    const key = stepKey(seed, step);
    const bits = key.reduce((acc, part) => (acc << 16n) | BigInt(part), 0n);
    assert.equal(stepUniform(key), Number(bits >> 11n) / 2 ** 53);
    assert.ok(stepUniform(key) >= 0 && stepUniform(key) < 1);
  }
  assert.equal(stepUniform([0xffff, 0xffff, 0xffff, 0xffff]), 1 - 2 ** -53);
});

test('padding rows are never read: garbage there changes nothing', () => {
  const sampler = new CpuSampler(V);
  const logits = randomLogits(3, V, 6);
  const rows = [
    row({ temperature: 0.8, topP: 0.9 }, 1),
    row({ temperature: 0 }, 2),
    row({ temperature: 1, logprobs: true, topLogprobs: 2 }, 3),
  ];
  const clean = sampler.sample(flat(logits), rows);
  const nan = new Array(V).fill(NaN);
  const inf = new Array(V).fill(Infinity);
  const dirty = sampler.sample(flat([nan, logits[0], inf, logits[1], logits[2], nan]), [null, rows[0], null, rows[1], rows[2]]);
  assert.deepEqual([dirty[1], dirty[3], dirty[4]], clean);
  assert.deepEqual(sampler.sample(flat(logits), [null, null]), [null, null]);
  const greedy = [row({ temperature: 0 }, 1), null, row({ temperature: 0 }, 2), row({ temperature: 0 }, 3)];
  const around = sampler.sample(flat([logits[0], nan, logits[1], logits[2]]), greedy);
  assert.deepEqual(around, [{ tokenId: argmax(logits[0]) }, null, { tokenId: argmax(logits[1]) }, { tokenId: argmax(logits[2]) }]);
});

test('non-finite logits in a real row give some in-range token, never a crash', () => {
  const sampler = new CpuSampler(V);
  const nan = new Array(V).fill(NaN);
  const inf = new Array(V).fill(0).map((_, i) => (i === 17 ? Infinity : i % 7));
  const negInf = new Array(V).fill(-Infinity);
  const someNaN = new Array(V).fill(0).map((_, i) => (i % 3 ? NaN : i % 11));
  for (const logits of [nan, inf, negInf, someNaN]) {
    const out = sampler.sample(
      flat(targets.map(() => logits)),
      targets.map(([, p], i) => row({ ...p, logprobs: true, topLogprobs: 3 }, i, [1, 2], [3])),
    );
    for (const t of out) assert.ok(Number.isInteger(t.tokenId) && t.tokenId >= 0 && t.tokenId < V, `token ${t.tokenId}`);
  }
  const [greedy] = sampler.sample(flat([inf]), [row({ temperature: 0 }, 1)]);
  assert.equal(greedy.tokenId, 17);
  // NaN is never the largest value, and never drawn while a number can be.
  const [mostlyNaN] = sampler.sample(flat([someNaN]), [row({ temperature: 0 }, 1)]);
  assert.equal(mostlyNaN.tokenId, argmax(someNaN.map((v) => (Number.isNaN(v) ? -Infinity : v))));
  for (let seed = 0; seed < 20; seed++) {
    const [t] = sampler.sample(flat([someNaN]), [row({ temperature: 1 }, seed)]);
    assert.ok(!Number.isNaN(someNaN[t.tokenId]), `seed ${seed} drew NaN token ${t.tokenId}`);
  }
});

test('logprobs are the raw log-softmax: chosen token and sorted top alternatives', () => {
  const vocab = 1000;
  const sampler = new CpuSampler(vocab);
  const logits = randomLogits(4, vocab, 7);
  const rows = [
    row({ temperature: 0, logprobs: true, topLogprobs: 5 }, 1),
    // Bias, penalties and temperature must not change the reported logprobs.
    row({ temperature: 0.5, logprobs: true, topLogprobs: 20, logitBias: { 3: 50 }, repetitionPenalty: 1.5 }, 2, [1, 2], [3]),
    row({ temperature: 1, logprobs: true }, 3),
    row({ temperature: 1, topK: 5 }, 4),
  ];
  const out = sampler.sample(flat(logits), rows);
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
  assert.ok(Math.abs(out[1].logprob! - referenceLogSoftmax(logits[1])[3]) < 1e-4, 'the biased token reports its raw logprob');
});

test('logprobs match over a realistic vocabulary, and top alternatives tie-break by token id', () => {
  const vocab = 49152;
  const logits = lmLikeLogits(vocab, 11);
  const [t] = new CpuSampler(vocab).sample(new Float32Array(logits), [
    row({ temperature: 0.7, topP: 0.9, logprobs: true, topLogprobs: 20 }, 5),
  ]);
  const ref = referenceLogSoftmax(logits);
  assert.ok(Math.abs(t.logprob! - ref[t.tokenId]) < 1e-4);
  const expected = ref
    .map((logprob, tokenId) => ({ tokenId, logprob }))
    .sort((a, b) => b.logprob - a.logprob || a.tokenId - b.tokenId)
    .slice(0, 20);
  assert.deepEqual(
    t.topLogprobs!.map((e) => e.tokenId),
    expected.map((e) => e.tokenId),
  );
  t.topLogprobs!.forEach((e, j) => assert.ok(Math.abs(e.logprob - expected[j].logprob) < 1e-4));

  const [tied] = new CpuSampler(5).sample(new Float32Array([1, 3, 2, 3, 3]), [row({ temperature: 0, topLogprobs: 4 }, 1)]);
  assert.deepEqual(
    tied.topLogprobs!.map((e) => e.tokenId),
    [1, 3, 4, 2],
  );
});

test('top_logprobs larger than the vocabulary lists the whole vocabulary', () => {
  const logits = randomLogits(1, 8, 8);
  const [t] = new CpuSampler(8).sample(flat(logits), [row({ temperature: 0, logprobs: true, topLogprobs: 20 }, 1)]);
  assert.equal(t.topLogprobs!.length, 8);
  assert.deepEqual(new Set(t.topLogprobs!.map((e) => e.tokenId)), new Set([0, 1, 2, 3, 4, 5, 6, 7]));
});

test('logit_bias +100 forces a token and -100 bans one', () => {
  const vocab = 500;
  const sampler = new CpuSampler(vocab);
  const logits = randomLogits(1, vocab, 9)[0];
  const best = argmax(logits);
  const x = flat(Array.from({ length: 16 }, () => logits));
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
  assert.equal(greedy.tokenId, argmax(logits.map((v, i) => (i === best ? -Infinity : v))));
});

test('frequency and repetition penalties move greedy away from a repeated token', () => {
  const vocab = 64;
  const logits = new Array(vocab).fill(0);
  logits[10] = 2;
  logits[11] = 1.5;
  const x = flat([logits]);
  const sampler = new CpuSampler(vocab);
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
  const sampler = new CpuSampler(vocab);
  const logits = randomLogits(8, vocab, 10);
  const plain = sampler.sample(
    flat(logits),
    logits.map((_, i) => row({ temperature: 0.9 }, i)),
  );
  const noOps = sampler.sample(
    flat(logits),
    logits.map((_, i) => row({ temperature: 0.9, topK: vocab, topP: 1, minP: 0 }, i)),
  );
  assert.deepEqual(noOps, plain);
});

test('bad token ids fail in JS with the field named, before any logit is touched, and the sampler keeps working', () => {
  const vocab = 32;
  const sampler = new CpuSampler(vocab);
  const x = flat(randomLogits(2, vocab, 11));
  const before = x.slice();
  const field = (f: string) => (e: unknown) => e instanceof InvalidArgumentError && e.field === f;
  assert.throws(() => sampler.sample(x, [row({ logitBias: { 32: 1 } }, 1)]), field('logit_bias'));
  assert.throws(() => sampler.sample(x, [row({ frequencyPenalty: 1 }, 1, [vocab])]), field('output token ids'));
  assert.throws(() => sampler.sample(x, [row({ repetitionPenalty: 1.1 }, 1, [], [-3])]), field('prompt token ids'));
  // A bad second row: the first row's bias must not have been applied.
  assert.throws(() => sampler.sample(x, [row({ logitBias: { 0: 50 } }, 1), row({ logitBias: { 32: 1 } }, 2)]), field('logit_bias'));
  assert.deepEqual(x, before);
  assert.throws(() => sampler.sample(x, [row({}, 1), row({}, 2), row({}, 3)]), RangeError);
  assert.throws(() => sampler.sample(new Float32Array(vocab + 1), [row({}, 1)]), RangeError);
  assert.throws(() => sampler.sample(new Float64Array(vocab) as unknown as Float32Array, [row({}, 1)]), TypeError);
  assert.throws(() => new CpuSampler(0), RangeError);
  assert.equal(sampler.sample(x, [row({ temperature: 0 }, 1)]).length, 1);
});

test('the native functions refuse out-of-range arguments with an exception', () => {
  const k = addon();
  const x = new Float32Array(16);
  assert.throws(() => k.sampleRow(x, 8, 16, 1, 0, 1, 0, 0.5), /outside/);
  assert.throws(() => k.sampleRow(x, 0, 16, 0, 0, 1, 0, 0.5), /temperature/);
  assert.throws(() => k.sampleRow(x, 0, 16, 1, 17, 1, 0, 0.5), /topK/);
  assert.throws(() => k.sampleRow(x, 0, 16, 1, 0, 0, 0, 0.5), /topP/);
  assert.throws(() => k.sampleRow(x, 0, 16, 1, 0, 1, 0, 1), /u must/);
  assert.throws(() => k.argmaxRows(x, 8, new Int32Array([2]), new Int32Array(1)), /outside/);
  assert.throws(() => k.logprobStats(x, 0, 8, new Int32Array(9)), /longer/);
});

// ---- Bias and penalties on the host (as test/sampler-penalties.test.ts for the device) ----

const PV = 40;
const tokens = fc.array(fc.integer({ min: 0, max: PV - 1 }), { maxLength: 30 });
const penaltyRowArb = fc
  .record({
    logits: fc.array(
      fc.integer({ min: -800, max: 800 }).map((v) => v / 100),
      { minLength: PV, maxLength: PV },
    ),
    promptTokenIds: tokens,
    outputTokenIds: tokens,
    repetitionPenalty: fc.oneof(
      fc.constant(1),
      fc.integer({ min: 50, max: 200 }).map((v) => v / 100),
    ),
    frequencyPenalty: fc.oneof(
      fc.constant(0),
      fc.integer({ min: -200, max: 200 }).map((v) => v / 100),
    ),
    presencePenalty: fc.oneof(
      fc.constant(0),
      fc.integer({ min: -200, max: 200 }).map((v) => v / 100),
    ),
    bias: fc.array(fc.tuple(fc.integer({ min: 0, max: PV - 1 }), fc.integer({ min: -100, max: 100 })), { maxLength: 6 }),
  })
  .map((r) => ({
    logits: r.logits,
    promptTokenIds: r.promptTokenIds,
    outputTokenIds: r.outputTokenIds,
    params: params({
      repetitionPenalty: r.repetitionPenalty,
      frequencyPenalty: r.frequencyPenalty,
      presencePenalty: r.presencePenalty,
      logitBias: Object.fromEntries(r.bias),
    }),
  }));

function assertClose(actual: ArrayLike<number>, expected: readonly number[], what: string) {
  expected.forEach((e, i) => {
    assert.ok(Math.abs(actual[i] - e) <= 1e-4 * Math.max(1, Math.abs(e)), `${what}: token ${i}: ${actual[i]} vs ${e}`);
  });
}

test('bias and penalties applied on the host match the reference, on any row of a batch, and are undone exactly', () => {
  fc.assert(
    fc.property(penaltyRowArb, fc.integer({ min: 0, max: 3 }), (r, batchRow) => {
      const x = new Float32Array(4 * PV).fill(0.25);
      x.set(r.logits, batchRow * PV);
      const original = x.slice();
      const overwritten = new OverwrittenLogits();
      new HostPenaltyStateCache(PV).get(r.params, r.promptTokenIds, r.outputTokenIds).apply(x, batchRow * PV, overwritten);
      assertClose(x.subarray(batchRow * PV, (batchRow + 1) * PV), referenceAdjustedLogits(r.logits, r), 'adjusted');
      x.forEach((v, i) => (i < batchRow * PV || i >= (batchRow + 1) * PV) && assert.equal(v, 0.25, 'other rows untouched'));
      overwritten.restore(x);
      assert.deepEqual(x, original);
    }),
    { seed: 4242, numRuns: 150 },
  );
});

test('host bookkeeping carried from step to step equals a fresh computation; a rewritten history starts over', () => {
  const vocab = 400;
  const p = params({
    repetitionPenalty: 1.3,
    frequencyPenalty: 0.2,
    presencePenalty: 0.4,
    logitBias: { 35: -3, 3: 2, 397: -1.5, 151: 4, 399: 7 },
  });
  const promptTokenIds = Array.from({ length: 150 }, (_, i) => (i * 7) % 300);
  const outputTokenIds: number[] = [];
  const logits = Array.from({ length: vocab }, (_, i) => ((i * 37) % 17) - 8);
  const cache = new HostPenaltyStateCache(vocab);
  const adjust = (output: number[], c: HostPenaltyStateCache) => {
    const x = new Float32Array(logits);
    c.get(p, promptTokenIds, output).apply(x, 0, new OverwrittenLogits());
    return x;
  };
  for (let step = 0; step < 120; step++) {
    outputTokenIds.push(step % 50 === 7 ? 397 : (step * 37 + 11) % 399);
    const carried = adjust(outputTokenIds, cache);
    if (step % 23 === 0 || step === 119) {
      assert.deepEqual(carried, adjust(outputTokenIds.slice(), new HostPenaltyStateCache(vocab)), `step ${step}`);
      assertClose(carried, referenceAdjustedLogits(logits, { params: p, promptTokenIds, outputTokenIds }), `step ${step} vs reference`);
    }
  }
  const freq = params({ frequencyPenalty: 1 });
  const rewritten = [5, 5];
  const zero = new Array(PV).fill(0);
  const c2 = new HostPenaltyStateCache(PV);
  const apply = () => {
    const x = new Float32Array(zero);
    c2.get(freq, [], rewritten).apply(x, 0, new OverwrittenLogits());
    return x;
  };
  apply();
  rewritten[1] = 6; // rewritten, not appended
  const x = apply();
  assert.equal(x[5], -1);
  assert.equal(x[6], -1);
});

test('the CPU sampler applies penalties from the carried history across decode steps', () => {
  // A penalized greedy decode over a flat row must never repeat a token while unused ones are
  // as good: each step's frequency penalty comes from the history carried by the sampler.
  const vocab = 16;
  const sampler = new CpuSampler(vocab);
  const x = new Float32Array(vocab);
  const output: number[] = [];
  const p = params({ temperature: 0, frequencyPenalty: 1 });
  for (let step = 0; step < vocab; step++)
    output.push(sampler.sample(x, [{ params: p, promptTokenIds: [], outputTokenIds: output, seed: 1 }])[0].tokenId);
  assert.deepEqual(
    output,
    Array.from({ length: vocab }, (_, i) => i),
  );
});
