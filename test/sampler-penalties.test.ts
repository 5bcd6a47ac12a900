// logit_bias and repetition / frequency / presence penalties on the device against the plain-JS
// reference, including bias on a token the penalties also hit, and the per-request bookkeeping
// that carries token history from step to step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultSamplingParams, InvalidArgumentError, type SamplingParams } from '../src/engine/sampling-params.ts';
import { applyLogitAdjustments } from '../src/engine/sampler/logit-adjustments.ts';
import { PenaltyStateCache } from '../src/engine/sampler/penalty-state.ts';
import { referenceAdjustedLogits } from '../src/engine/sampler/reference.ts';
import { mx } from '../src/engine/mlx.ts';

interface Row {
  params: SamplingParams;
  promptTokenIds: number[];
  outputTokenIds: number[];
  logits: number[];
}

const V = 40;
const tokens = fc.array(fc.integer({ min: 0, max: V - 1 }), { maxLength: 30 });
const rowArb: fc.Arbitrary<Row> = fc
  .record({
    logits: fc.array(
      fc.integer({ min: -800, max: 800 }).map((v) => v / 100),
      { minLength: V, maxLength: V },
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
    bias: fc.array(fc.tuple(fc.integer({ min: 0, max: V - 1 }), fc.integer({ min: -100, max: 100 })), { maxLength: 6 }),
  })
  .map((r) => ({
    logits: r.logits,
    promptTokenIds: r.promptTokenIds,
    outputTokenIds: r.outputTokenIds,
    params: {
      ...defaultSamplingParams(),
      repetitionPenalty: r.repetitionPenalty,
      frequencyPenalty: r.frequencyPenalty,
      presencePenalty: r.presencePenalty,
      logitBias: Object.fromEntries(r.bias),
    },
  }));

function adjustOnDevice(rows: Row[], batchRows: number[], batchSize: number, cache = new PenaltyStateCache(V)): number[][] {
  const logits = Array.from({ length: batchSize }, () => new Array(V).fill(0.25));
  rows.forEach((r, i) => (logits[batchRows[i]] = r.logits));
  const adjusted = applyLogitAdjustments(
    mx.array(logits, mx.float32),
    rows.map((r, i) => ({ batchRow: batchRows[i], state: cache.get(r.params, r.promptTokenIds, r.outputTokenIds) })),
  );
  return adjusted.tolist() as number[][];
}

function assertClose(actual: number[], expected: number[], what: string) {
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]) <= 1e-4 * Math.max(1, Math.abs(expected[i])), `${what}: token ${i}: ${a} vs ${expected[i]}`);
  });
}

test('bias and penalties match the reference for random rows placed anywhere in a padded batch', () => {
  fc.assert(
    fc.property(fc.array(rowArb, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 3 }), (rows, extra) => {
      const batchSize = rows.length + extra;
      const batchRows = rows.map((_, i) => batchSize - 1 - i); // reversed, leaving padding rows first
      const adjusted = adjustOnDevice(rows, batchRows, batchSize);
      rows.forEach((r, i) => assertClose(adjusted[batchRows[i]], referenceAdjustedLogits(r.logits, r), `row ${i}`));
      for (let b = 0; b < extra; b++)
        assert.ok(
          adjusted[b].every((v) => v === 0.25),
          'padding rows untouched',
        );
    }),
    { seed: 4242, numRuns: 80 },
  );
});

test('bias is applied before the repetition penalty on the same token', () => {
  const params = { ...defaultSamplingParams(), repetitionPenalty: 2, logitBias: { 3: -5, 4: 5 } };
  const logits = new Array(V).fill(0).map((_, i) => (i === 3 ? 2 : i === 4 ? -1 : 0));
  const row = { params, promptTokenIds: [3, 4], outputTokenIds: [], logits };
  const [adjusted] = adjustOnDevice([row], [0], 1);
  // token 3: 2 - 5 = -3, negative so multiplied: -6. token 4: -1 + 5 = 4, positive so divided: 2.
  assert.equal(adjusted[3], -6);
  assert.equal(adjusted[4], 2);
});

test('frequency counts every occurrence, presence counts once', () => {
  const params = { ...defaultSamplingParams(), frequencyPenalty: 0.5, presencePenalty: 1 };
  const row = { params, promptTokenIds: [7, 7, 7], outputTokenIds: [9, 9, 9, 2], logits: new Array(V).fill(1) };
  const [adjusted] = adjustOnDevice([row], [0], 1);
  assert.equal(adjusted[9], 1 - 1.5 - 1);
  assert.equal(adjusted[2], 1 - 0.5 - 1);
  assert.equal(adjusted[7], 1, 'prompt tokens are not frequency/presence penalized');
});

test('history carried from step to step equals a fresh computation, across many chunks', () => {
  const vocab = 400;
  // Bias on prompt tokens uploaded with the first chunks (35) and in the first tail (3, index 129),
  // on tokens that only appear later in the output (397, 151) and on one that never appears (399).
  const params = {
    ...defaultSamplingParams(),
    repetitionPenalty: 1.3,
    frequencyPenalty: 0.2,
    presencePenalty: 0.4,
    logitBias: { 35: -3, 3: 2, 397: -1.5, 151: 4, 399: 7 },
  };
  const promptTokenIds = Array.from({ length: 150 }, (_, i) => (i * 7) % 300);
  const outputTokenIds: number[] = [];
  const logits = Array.from({ length: vocab }, (_, i) => ((i * 37) % 17) - 8);
  const cache = new PenaltyStateCache(vocab);
  const adjust = (output: number[], c: PenaltyStateCache) => {
    const row = { params, promptTokenIds, outputTokenIds: output, logits };
    const x = applyLogitAdjustments(mx.array([logits], mx.float32), [{ batchRow: 0, state: c.get(params, promptTokenIds, output) }]);
    return { row, adjusted: (x.tolist() as number[][])[0] };
  };
  for (let step = 0; step < 220; step++) {
    outputTokenIds.push(step % 50 === 7 ? 397 : (step * 37 + 11) % 399);
    const { row, adjusted: carried } = adjust(outputTokenIds, cache);
    if (step % 23 === 0 || step === 219) {
      const fresh = adjust(outputTokenIds.slice(), new PenaltyStateCache(vocab)).adjusted;
      assert.deepEqual(carried, fresh, `step ${step}`);
      assertClose(carried, referenceAdjustedLogits(logits, row), `step ${step} vs reference`);
    }
  }
});

test('a history that does not continue the previous one starts over', () => {
  const params = { ...defaultSamplingParams(), frequencyPenalty: 1 };
  const cache = new PenaltyStateCache(V);
  const output = [5, 5];
  const logits = new Array(V).fill(0);
  adjustOnDevice([{ params, promptTokenIds: [], outputTokenIds: output, logits }], [0], 1, cache);
  output[1] = 6; // rewritten, not appended
  const [adjusted] = adjustOnDevice([{ params, promptTokenIds: [], outputTokenIds: output, logits }], [0], 1, cache);
  assert.equal(adjusted[5], -1);
  assert.equal(adjusted[6], -1);
});

test('token ids outside the vocabulary are refused before reaching MLX', () => {
  const params = { ...defaultSamplingParams(), repetitionPenalty: 1.1 };
  const cache = new PenaltyStateCache(V);
  assert.throws(
    () => cache.get(params, [1, V], []),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === 'prompt token ids',
  );
  assert.throws(
    () => cache.get(params, [1], [-1]),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === 'output token ids',
  );
  assert.throws(
    () => cache.get({ ...params, logitBias: { [V]: 1 } }, [], []),
    (e: unknown) => e instanceof InvalidArgumentError && e.field === 'logit_bias',
  );
});
