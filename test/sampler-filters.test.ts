// min_p / top_k / top_p on the device against the plain-JS reference: for random logits and
// parameters, the tokens the device threshold allows are exactly the reference's allowed set,
// on the candidate-block path (whenever it certifies itself) and on the exhaustive path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultSamplingParams, type SamplingParams } from '../src/engine/sampling-params.ts';
import { planRow } from '../src/engine/sampler/row-plan.ts';
import { sampleFiltered, type CandidateTier } from '../src/engine/sampler/filtered-sampling.ts';
import { gumbelRows } from '../src/engine/sampler/random-stream.ts';
import { blockLayout } from '../src/engine/sampler/vocab-blocks.ts';
import { referenceDistribution } from '../src/engine/sampler/reference.ts';
import { mx } from '../src/engine/mlx.ts';

interface Case {
  logits: number[];
  params: SamplingParams;
}

/** Logits exactly representable in float32, so JS and the device start from the same numbers. */
const logitsArb = (vocab: number) =>
  fc.array(fc.double({ min: -6, max: 6, noNaN: true }).map(Math.fround), { minLength: vocab, maxLength: vocab });

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
        fc.integer({ min: 1, max: 99 }).map((p) => p / 100 + 0.001),
      ),
      minP: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 90 }).map((p) => p / 100 + 0.001),
      ),
    })
    .filter((p) => p.topK > 0 || p.topP < 1 || p.minP > 0)
    .map((p) => ({ ...defaultSamplingParams(), ...p }));

const caseArb = (vocab: number) => fc.record({ logits: logitsArb(vocab), params: paramsArb(vocab) });

interface Outcome {
  certified: boolean[];
  allowed: boolean[][];
}

function runDevice(cases: Case[], vocab: number, blockSize: number, tier: CandidateTier, exhaustive: boolean): Outcome {
  const layout = blockLayout(vocab, blockSize);
  const plans = cases.map((c, i) => planRow(i, { params: c.params, outputTokenIds: [], seed: i }, vocab));
  const logits = mx.array(
    cases.map((c) => c.logits),
    mx.float32,
  );
  const scaled = mx.divide(
    logits,
    mx.array(
      plans.map((p) => [p.temperature]),
      mx.float32,
    ),
  );
  const result = sampleFiltered({
    logits,
    plans,
    noise: gumbelRows(
      plans.map((p) => p.stepKey),
      layout.numBlocks + blockSize,
    ),
    fullLogMass: mx.logsumexp(scaled, -1, true),
    layout,
    tier: exhaustive ? null : tier,
  });
  const thresholds = (result.threshold.tolist() as number[][]).map((r) => r[0]);
  const certified = result.certified.tolist() as boolean[];
  // The same division the sampler does, read back, so the comparison uses the device's own values.
  const allowed = (scaled.tolist() as number[][]).map((row, i) => row.map((s) => s >= thresholds[i]));
  return { certified, allowed };
}

/** Cases whose decision is within rounding of flipping are not comparable between float32 and float64. */
function comparable(c: Case): boolean {
  return referenceDistribution(c.logits, { params: c.params, promptTokenIds: [], outputTokenIds: [] }).margin > 1e-3;
}

function checkAgainstReference(vocab: number, blockSize: number, tier: CandidateTier, seed: number) {
  let certifiedCount = 0;
  let uncertifiedCount = 0;
  fc.assert(
    fc.property(fc.array(caseArb(vocab), { minLength: 1, maxLength: 8 }), (drawn) => {
      const cases = drawn.filter(comparable);
      if (cases.length === 0) return;
      for (const exhaustive of [false, true]) {
        const out = runDevice(cases, vocab, blockSize, tier, exhaustive);
        cases.forEach((c, i) => {
          if (!out.certified[i]) {
            assert.ok(!exhaustive, 'the exhaustive path always certifies');
            uncertifiedCount++;
            return;
          }
          if (!exhaustive) certifiedCount++;
          const ref = referenceDistribution(c.logits, { params: c.params, promptTokenIds: [], outputTokenIds: [] });
          assert.deepEqual(out.allowed[i], ref.allowed, `allowed set (exhaustive=${exhaustive}) for ${JSON.stringify(c.params)}`);
        });
      }
    }),
    { seed, numRuns: 150 },
  );
  return { certifiedCount, uncertifiedCount };
}

test('allowed sets match the reference with many small blocks (candidates often insufficient)', () => {
  const { certifiedCount, uncertifiedCount } = checkAgainstReference(64, 4, { blocks: 2, tokens: 8 }, 1234);
  // Both outcomes must occur, or the test would not be exercising the certification logic.
  assert.ok(certifiedCount >= 20, `certified ${certifiedCount}`);
  assert.ok(uncertifiedCount >= 20, `uncertified ${uncertifiedCount}`);
  console.log(`candidate path: ${certifiedCount} certified, ${uncertifiedCount} fell back`);
});

test('allowed sets match the reference when only part of the candidate blocks is kept', () => {
  checkAgainstReference(64, 4, { blocks: 6, tokens: 5 }, 5);
});

test('allowed sets match the reference when a tier asks for more tokens than its blocks hold', () => {
  checkAgainstReference(64, 4, { blocks: 1, tokens: 8 }, 11);
});

test('allowed sets match the reference when the vocabulary is not a whole number of blocks', () => {
  checkAgainstReference(37, 8, { blocks: 3, tokens: 24 }, 99);
});

test('allowed sets match the reference for tiny vocabularies', () => {
  checkAgainstReference(8, 4, { blocks: 1, tokens: 4 }, 7);
  checkAgainstReference(8, 32, { blocks: 64, tokens: 256 }, 8);
});

test('top_k beyond what a tier sorted is not certified from a partial list', () => {
  // One candidate block of 4 tokens cannot show the 6th largest, even when asked for 8 tokens.
  const params = { ...defaultSamplingParams(), topK: 6 };
  const logits = [10, 9, 8, 7, 1, 0.5, 0.25, 0, -1, -2, -3, -4, 0.75, 0.125, -0.5, -5];
  const ref = referenceDistribution(logits, { params, promptTokenIds: [], outputTokenIds: [] });
  const out = runDevice([{ logits, params }], 16, 4, { blocks: 1, tokens: 8 }, false);
  assert.ok(!out.certified[0] || out.allowed[0].every((a, i) => a === ref.allowed[i]));
  assert.ok(!out.certified[0]);
});

test('ties at the top_k cut are all kept', () => {
  const params = { ...defaultSamplingParams(), topK: 2 };
  const logits = [Math.fround(0.5), 3, 1, 3, 3, -1, 0, 2];
  for (const exhaustive of [false, true]) {
    const out = runDevice([{ logits, params }], 8, 2, { blocks: 3, tokens: 6 }, exhaustive);
    assert.ok(out.certified[0]);
    assert.deepEqual(out.allowed[0], [false, true, false, true, true, false, false, false]);
  }
});
