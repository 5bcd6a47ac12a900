// Multi-LoRA on the real default model (SmolLM2-135M-Instruct, Q4_1 kept quantized on the native
// kernels): three random adapters each give the greedy tokens of the model with that adapter merged
// into its (dequantized, f32) weights, alone and in one batch with the other two and the base.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportHf } from '../scripts/export-hf.ts';
import { EngineCore } from '../src/engine/engine-core.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/engine-options.ts';
import { type LoadedModel, loadModel } from '../src/engine/load-model.ts';
import type { TokenIdLogprob } from '../src/engine/request.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { writeMergedModel, writeRandomPeftAdapter } from './helpers/lora-writer.ts';

const scratch = mkdtempSync(join(tmpdir(), 'lora-default-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const cacheDir = defaultCacheDir();
const location = await resolveModel(undefined, { cacheDir, defaultSource: 'pypi' });
const MAX_TOKENS = 16;

interface Output {
  tokens: number[];
  logprobs: TokenIdLogprob[];
}

/** Runs the prompts (each with its adapter, or none) in one batch; returns their outputs in order. */
function generate(model: LoadedModel, loras: { name: string; path: string }[], jobs: { prompt: number[]; adapter?: string }[]): Output[] {
  const outputs = jobs.map((): Output => ({ tokens: [], logprobs: [] }));
  let finished = 0;
  const core = new EngineCore(model, { ...DEFAULT_ENGINE_OPTIONS, loras, prefixCache: false }, (e) => {
    const o = outputs[Number(e.requestId)];
    if (e.type === 'tokens') {
      o.tokens.push(...e.tokenIds);
      o.logprobs.push(...(e.logprobs ?? []));
    } else if (e.type === 'error') throw new Error(e.message);
    else if (e.type === 'finished') finished++;
  });
  jobs.forEach((j, i) =>
    core.submit({
      id: String(i),
      promptTokenIds: j.prompt,
      sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: MAX_TOKENS, logprobs: true, topLogprobs: 1 },
      adapter: j.adapter,
    }),
  );
  while (finished < jobs.length) core.step();
  return outputs;
}

test('random adapters on the default model equal their merged weights, alone and mixed with each other and the base', async () => {
  const tokenizer = await loadTokenizer(location);
  const prompts = ['What is the capital of France?', 'Write a haiku about rivers.'].map((text) =>
    tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true }), {
      addSpecialTokens: false,
    }),
  );
  const exported = (await exportHf(location.path, join(scratch, 'base'), cacheDir)).outDir;
  const all = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
  const specs = [
    { name: 'all-r8', rank: 8, alpha: 16, modules: [...all], seed: 11, std: 0.05 },
    { name: 'attn-r16', rank: 16, alpha: 16, modules: ['q_proj', 'v_proj'] as (typeof all)[number][], seed: 12, std: 0.08 },
    { name: 'mlp-r4', rank: 4, alpha: 8, modules: ['gate_proj', 'up_proj', 'down_proj'] as (typeof all)[number][], seed: 13, std: 0.06 },
  ];
  const loras = specs.map((s) => ({ name: s.name, path: writeRandomPeftAdapter(join(scratch, s.name), exported, s) }));
  const model = await loadModel(location, { cacheDir });
  assert.ok(model.native, 'the default path: native kernels with the weights kept quantized');

  const jobs = prompts.flatMap((prompt) => [undefined, ...specs.map((s) => s.name)].map((adapter) => ({ prompt, adapter })));
  const alone = jobs.map((j) => generate(model, loras, [j])[0]);
  const mixed = generate(model, loras, jobs);
  jobs.forEach((j, i) => {
    assert.deepEqual(mixed[i].tokens, alone[i].tokens, `${j.adapter ?? 'base'}: mixed batch = alone`);
  });
  for (const lora of loras) {
    const merged = await loadModel(
      { id: lora.name, format: 'hf', path: writeMergedModel(exported, lora.path, join(scratch, `merged-${lora.name}`)) },
      { cacheDir },
    );
    const reference = generate(
      merged,
      [],
      prompts.map((prompt) => ({ prompt })),
    );
    let changes = false;
    prompts.forEach((_, p) => {
      const i = jobs.findIndex((j) => j.prompt === prompts[p] && j.adapter === lora.name);
      const base = jobs.findIndex((j) => j.prompt === prompts[p] && j.adapter === undefined);
      assert.deepEqual(alone[i].tokens, reference[p].tokens, `${lora.name}, prompt ${p}: greedy tokens = merged weights'`);
      alone[i].logprobs.forEach((lp, t) =>
        assert.ok(Math.abs(lp.logprob - reference[p].logprobs[t].logprob) < 2e-3, `${lora.name}, prompt ${p}, token ${t}`),
      );
      changes ||= alone[i].tokens.join() !== alone[base].tokens.join();
    });
    assert.ok(changes, `${lora.name} changes some greedy output (else the test would prove nothing)`);
  }
});
