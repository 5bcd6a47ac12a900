// The sampler's empirical token frequencies over many seeds against the reference probabilities.
// Seeds are fixed, so the outcome is deterministic; the tolerance (5 standard deviations per
// token plus a count of slack) is what a correct sampler meets, and what a wrong one does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSamplingParams, type SamplingParams } from '../src/engine/sampling-params.ts';
import { Sampler, type SamplerRow } from '../src/engine/sampler/sampler.ts';
import { referenceDistribution } from '../src/engine/sampler/reference.ts';
import { mx } from '../src/engine/mlx.ts';

/** Deterministic standard normals (Box-Muller over a small LCG), so the cases never change. */
function normals(count: number, seed: number): number[] {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return Array.from({ length: count }, () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

/** Wilson-Hilferty approximation of the chi-square quantile exceeded with probability ~1e-6. */
function chiSquareTail(df: number): number {
  const z = 4.75;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

interface Case {
  name: string;
  params: Partial<SamplingParams>;
  logits: number[];
  promptTokenIds?: number[];
  outputTokenIds?: number[];
}

function checkFrequencies(vocab: number, sampler: Sampler, cases: Case[], callsPerSeedBlock: number) {
  const full = cases.map((c) => ({ ...c, params: { ...defaultSamplingParams(), ...c.params } }));
  const batch = full.length * 4;
  const logits = mx.array(
    Array.from({ length: batch }, (_, r) => full[r % full.length].logits.map(Math.fround)),
    mx.float32,
  );
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
    const ref = referenceDistribution(c.logits.map(Math.fround), {
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
    // A second, global check: the chi-square statistic against its 1e-6 upper tail.
    const df = ref.probs.filter((p) => p > 0).length - 1;
    if (df > 0) assert.ok(chi2 < chiSquareTail(df), `${c.name}: chi-square ${chi2.toFixed(1)} with ${df} degrees of freedom`);
  });
}

const V = 24;
const base = normals(V * 8, 17).map((x) => 1.5 * x);
const logitsOf = (k: number) => base.slice(k * V, (k + 1) * V);
// Nearly all the mass in block 0 (with blocks of 4): the choice inside a block, checked with power.
const oneBlock = [3, 2, 1, 0, ...new Array(V - 4).fill(-6)];

test('token frequencies match the reference distribution for every filter combination', () => {
  // Small blocks and few candidates make many rows fall back to the exhaustive pass; both paths are checked.
  const sampler = new Sampler(V, {
    blockSize: 4,
    candidateTiers: [
      { blocks: 2, tokens: 4 },
      { blocks: 4, tokens: 12 },
    ],
  });
  checkFrequencies(
    V,
    sampler,
    [
      { name: 'temperature 1', params: { temperature: 1 }, logits: logitsOf(0) },
      { name: 'temperature 0.6', params: { temperature: 0.6 }, logits: logitsOf(1) },
      { name: 'top_k 5 at temperature 1.5', params: { temperature: 1.5, topK: 5 }, logits: logitsOf(2) },
      { name: 'top_p 0.8', params: { temperature: 1, topP: 0.8 }, logits: logitsOf(3) },
      { name: 'min_p 0.1 at temperature 0.8', params: { temperature: 0.8, minP: 0.1 }, logits: logitsOf(4) },
      { name: 'all filters', params: { temperature: 1.2, topK: 10, topP: 0.9, minP: 0.05 }, logits: logitsOf(5) },
      { name: 'top_k 20 (beyond the candidates)', params: { temperature: 2, topK: 20 }, logits: logitsOf(6) },
      { name: 'mass inside one block', params: { temperature: 1 }, logits: oneBlock },
      { name: 'mass inside one block, top_k 3', params: { temperature: 1, topK: 3 }, logits: oneBlock },
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

test('token frequencies match with the default block layout (one block for a tiny vocabulary)', () => {
  checkFrequencies(
    V,
    new Sampler(V),
    [
      { name: 'temperature 1', params: { temperature: 1 }, logits: logitsOf(0) },
      { name: 'top_p 0.5', params: { temperature: 0.9, topP: 0.5 }, logits: logitsOf(3) },
    ],
    300,
  );
});
