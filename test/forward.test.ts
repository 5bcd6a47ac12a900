import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadHfTransformer } from '../src/engine/model/load-weights.ts';
import { BatchKvCache } from '../src/engine/kv/batch-kv-cache.ts';
import { PrefillBatch } from '../src/engine/kv/prefill-batch.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';
import { referenceLogits } from './helpers/reference-forward.ts';
import { mx, type MxArray } from '../src/engine/mlx.ts';

function maxAbsDiff(a: MxArray, b: MxArray): number {
  return mx.max(mx.abs(mx.subtract(a, b))).item() as number;
}

test('packed prefill then batched decode equals the plain reference forward', () => {
  const dir = writeTinyModel({ numLayers: 2, vocabSize: 128 });
  const model = loadHfTransformer(dir);
  const tensors = mx.load(join(dir, 'model.safetensors')) as unknown as Record<string, MxArray>;
  const prompts = [
    [1, 5, 9, 2, 7],
    [3, 3, 4],
    [10, 20, 30, 40, 50, 60, 70, 80],
  ];
  const prefill = new PrefillBatch(
    model.config,
    model.rope,
    prompts.map((tokens) => ({ tokens })),
  );
  const step = prefill.prepareStep(1000);
  const hidden = model.forward(step.tokens, prefill);
  const last = mx.take(
    hidden,
    mx.array(
      step.completing.map((c) => c.packedIndex),
      mx.int32,
    ),
    0,
  );
  const logits = model.logits(last);
  mx.eval(logits, ...prefill.stepOutputs());
  prefill.finishStep();
  prompts.forEach((p, i) => {
    const ref = referenceLogits(tensors, model.config, p);
    assert.ok(maxAbsDiff(logits.index(i), ref.index(p.length - 1)) < 1e-3, `prefill logits of prompt ${i}`);
  });

  const batch = new BatchKvCache(model.config, model.rope, { columnChunk: 4, rebasePosition: 1000 });
  const rows: number[] = [];
  prompts.forEach((_, i) => {
    batch.reserve(rows.length + 1, prefill.promptBlock(i).length);
    const row = batch.freeRow()!;
    batch.join(row, [prefill.promptBlock(i)]);
    rows.push(row);
  });
  const seqs = prompts.map((p) => [...p]);
  for (let s = 0; s < 6; s++) {
    const next = seqs.map((q, i) => (q[q.length - 1] * 7 + i + s) % 128);
    batch.reserve(rows.length);
    const tokens = new Array(batch.rows).fill(0);
    rows.forEach((r, i) => (tokens[r] = next[i]));
    const h = model.forward(
      mx.array(
        tokens.map((t) => [t]),
        mx.int32,
      ),
      batch,
    );
    const lg = model.logits(h);
    mx.eval(lg, ...batch.stepOutputs());
    batch.advance();
    seqs.forEach((q, i) => q.push(next[i]));
    seqs.forEach((q, i) => {
      const ref = referenceLogits(tensors, model.config, q);
      const d = maxAbsDiff(lg.index(rows[i]), ref.index(q.length - 1));
      assert.ok(d < 1e-3, `decode step ${s} row ${i}: max diff ${d}`);
    });
  }
});

test('rows that come and go: the position counter is rebased and outputs stay exact', () => {
  const dir = writeTinyModel({ numLayers: 2, vocabSize: 128, seed: 2 });
  const model = loadHfTransformer(dir);
  const tensors = mx.load(join(dir, 'model.safetensors')) as unknown as Record<string, MxArray>;
  const batch = new BatchKvCache(model.config, model.rope, { columnChunk: 4, rebasePosition: 12 });
  const seqs = new Map<number, number[]>();
  const joinPrompt = (prompt: number[]) => {
    const prefill = new PrefillBatch(model.config, model.rope, [{ tokens: prompt }]);
    const step = prefill.prepareStep(100);
    mx.eval(model.forward(step.tokens, prefill), ...prefill.stepOutputs());
    prefill.finishStep();
    batch.reserve(seqs.size + 1, prompt.length);
    const row = batch.freeRow() as number;
    batch.join(row, [prefill.promptBlock(0)]);
    seqs.set(row, [...prompt]);
  };
  const decode = (steps: number) => {
    for (let s = 0; s < steps; s++) {
      // Rows are renumbered when the buffer shrinks (a lone row moves to row 0).
      const renumber = batch.reserve(seqs.size);
      const moved = [...seqs].map(([row, q]) => [renumber.get(row) ?? row, q] as const);
      seqs.clear();
      for (const [row, q] of moved) seqs.set(row, q);
      const tokens = new Array(batch.rows).fill(0);
      for (const [row, q] of seqs) tokens[row] = (q[q.length - 1] * 5 + 3) % 128;
      const lg = model.logits(
        model.forward(
          mx.array(
            tokens.map((t) => [t]),
            mx.int32,
          ),
          batch,
        ),
      );
      mx.eval(lg, ...batch.stepOutputs());
      batch.advance();
      for (const [row, q] of seqs) {
        q.push(tokens[row]);
        const d = maxAbsDiff(lg.index(row), referenceLogits(tensors, model.config, q).index(q.length - 1));
        assert.ok(d < 1e-3, `row ${row} at length ${q.length}: max diff ${d}`);
      }
    }
  };
  joinPrompt([1, 2, 3, 4]);
  decode(3);
  joinPrompt([9, 8, 7]);
  decode(3);
  const [first] = [...seqs.keys()];
  batch.leave(first);
  seqs.delete(first);
  const before = batch.ropeOffset;
  decode(4);
  // Position 14 > 12 while the only row started at position 4: its keys were moved back to 0.
  assert.ok(batch.ropeOffset < before + 4, `position ${batch.ropeOffset} after ${before} + 4 steps`);
});
