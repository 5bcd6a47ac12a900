// Multi-LoRA in the engine, on both CPU paths: a request with an adapter computes what the base
// model with the adapter merged into its weights (W + scale·B·A) computes, alone and in a batch
// mixing adapters and the base; adapters beyond --max-loras wait for a slot and swap in; the prefix
// cache never hands KV computed under one adapter to another; unknown adapters are refused and an
// adapter in use drains before it is unloaded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { EngineCore } from '../src/engine/engine-core.ts';
import { type CpuKernels, DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../src/engine/engine-options.ts';
import { type LoadedModel, loadModel } from '../src/engine/load-model.ts';
import { LoraAdapterError } from '../src/engine/lora/lora-adapter-error.ts';
import { LoraRegistryError } from '../src/engine/lora/lora-registry.ts';
import type { EngineEvent, TokenIdLogprob } from '../src/engine/request.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { CPU_KERNELS } from './helpers/engine-harness.ts';
import { writeMergedModel, writeRandomPeftAdapter } from './helpers/lora-writer.ts';

const BASE = join(import.meta.dirname, 'fixtures', 'architectures', 'llama');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'lora');
const scratch = mkdtempSync(join(tmpdir(), 'lora-engine-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// Three different adapters (PEFT's own files, rsLoRA on q/v only, a random one on o and the MLP)
// and mlx-lm's layout of the first one's numbers.
const ADAPTERS: Record<string, string> = {
  peft: join(FIXTURES, 'peft'),
  rslora: join(FIXTURES, 'peft-rslora'),
  random: writeRandomPeftAdapter(join(scratch, 'random'), BASE, {
    rank: 8,
    alpha: 16,
    modules: ['o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    seed: 7,
    std: 0.04,
  }),
  mlx: join(FIXTURES, 'mlx'),
};
const MERGED = Object.fromEntries(
  ['peft', 'rslora', 'random'].map((name) => [name, writeMergedModel(BASE, ADAPTERS[name], join(scratch, `merged-${name}`))]),
);
const PROMPTS = [
  [256, 5, 9, 77, 12],
  [256, 40, 41, 42, 43, 44, 45, 46, 47],
  [256, 100, 3, 200, 17, 99, 150, 8, 8, 31, 64, 128, 250, 2],
];
const MAX_TOKENS = 12;

interface Output {
  tokens: number[];
  logprobs: TokenIdLogprob[];
  cachedTokens?: number;
  error?: Extract<EngineEvent, { type: 'error' }>;
  finished: boolean;
}

class Engine {
  readonly outputs = new Map<string, Output>();
  readonly core: EngineCore;
  private next = 0;

  constructor(model: LoadedModel, opts: Partial<EngineOptions>) {
    this.core = new EngineCore(model, { ...DEFAULT_ENGINE_OPTIONS, ...opts }, (e) => {
      const o = this.output(e.requestId);
      if (e.type === 'started') o.cachedTokens = e.cachedTokens;
      if (e.type === 'tokens') {
        o.tokens.push(...e.tokenIds);
        o.logprobs.push(...(e.logprobs ?? []));
      }
      if (e.type === 'error') o.error = e;
      if (e.type === 'finished' || e.type === 'error') o.finished = true;
    });
  }

  private output(id: string): Output {
    let o = this.outputs.get(id);
    if (!o) {
      o = { tokens: [], logprobs: [], finished: false };
      this.outputs.set(id, o);
    }
    return o;
  }

  submit(prompt: number[], adapter?: string, maxTokens = MAX_TOKENS): string {
    const id = `r${this.next++}`;
    this.core.submit({
      id,
      promptTokenIds: prompt,
      sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens, logprobs: true, topLogprobs: 5 },
      adapter,
    });
    return id;
  }

  run(ids: string[]): Output[] {
    for (let i = 0; i < 10_000 && !ids.every((id) => this.output(id).finished); i++) this.core.step();
    return ids.map((id) => this.output(id));
  }

  generate(prompt: number[], adapter?: string): Output {
    return this.run([this.submit(prompt, adapter)])[0];
  }
}

/** Same greedy tokens, and each step's top-5 log probabilities within `tolerance`. */
function assertSameOutput(actual: Output, expected: Output, tolerance: number, what: string): void {
  assert.equal(actual.error, undefined, what);
  assert.deepEqual(actual.tokens, expected.tokens, what);
  actual.logprobs.forEach((lp, i) => {
    const ref = expected.logprobs[i];
    assert.ok(Math.abs(lp.logprob - ref.logprob) <= tolerance, `${what}, token ${i}: ${lp.logprob} vs ${ref.logprob}`);
    lp.top.forEach((t, j) => {
      assert.equal(t.tokenId, ref.top[j].tokenId, `${what}, token ${i}, alternative ${j}`);
      assert.ok(Math.abs(t.logprob - ref.top[j].logprob) <= tolerance, `${what}, token ${i}, alternative ${j}`);
    });
  });
}

const models = new Map<string, LoadedModel>();
async function model(dir: string, cpuKernels: CpuKernels): Promise<LoadedModel> {
  const key = `${dir}:${cpuKernels}`;
  let m = models.get(key);
  if (!m) {
    m = await loadModel({ id: 'tiny-llama', format: 'hf', path: dir }, { cacheDir: scratch, cpuKernels });
    models.set(key, m);
  }
  return m;
}

const loras = (names: string[]) => names.map((name) => ({ name, path: ADAPTERS[name] }));

for (const cpuKernels of CPU_KERNELS) {
  describe(`LoRA on the ${cpuKernels} path`, () => {
    test('each adapter computes what its merged weights compute, alone and in a batch mixing adapters and the base', async () => {
      const base = await model(BASE, cpuKernels);
      const engine = new Engine(base, { cpuKernels, loras: loras(['peft', 'rslora', 'random', 'mlx']) });
      const names = ['peft', 'rslora', 'random'];
      const alone = new Map<string, Output>();
      for (const [p, prompt] of PROMPTS.entries()) {
        alone.set(`base:${p}`, engine.generate(prompt));
        for (const name of [...names, 'mlx']) alone.set(`${name}:${p}`, engine.generate(prompt, name));
      }
      for (const name of names) {
        const merged = new Engine(await model(MERGED[name], cpuKernels), { cpuKernels });
        let differs = false;
        for (const [p, prompt] of PROMPTS.entries()) {
          const reference = merged.generate(prompt);
          const mine = alone.get(`${name}:${p}`) as Output;
          assertSameOutput(mine, reference, 1e-3, `${name} on prompt ${p} vs its merged weights`);
          differs ||= mine.tokens.join() !== (alone.get(`base:${p}`) as Output).tokens.join();
        }
        assert.ok(differs, `${name} changes some greedy output (else the test would prove nothing)`);
      }
      // mlx-lm's layout of PEFT's numbers is the same adapter.
      for (const p of PROMPTS.keys())
        assertSameOutput(alone.get(`mlx:${p}`) as Output, alone.get(`peft:${p}`) as Output, 1e-5, `mlx layout, prompt ${p}`);

      // Everything at once: every request shares steps with others under other adapters.
      const mixed = new Map<string, string>();
      for (const [p, prompt] of PROMPTS.entries()) {
        for (const name of ['base', ...names, 'mlx']) mixed.set(`${name}:${p}`, engine.submit(prompt, name === 'base' ? undefined : name));
      }
      engine.run([...mixed.values()]);
      for (const [key, id] of mixed) {
        assertSameOutput(engine.outputs.get(id) as Output, alone.get(key) as Output, 1e-4, `${key} in the mixed batch`);
      }
    });

    test('with fewer slots than adapters, requests wait for a slot and adapters swap in; outputs unchanged', async () => {
      const base = await model(BASE, cpuKernels);
      const wide = new Engine(base, { cpuKernels, loras: loras(['peft', 'rslora', 'random']) });
      const narrow = new Engine(base, { cpuKernels, loras: loras(['peft', 'rslora', 'random']), maxLoras: 1 });
      const jobs = PROMPTS.flatMap((prompt) => ['peft', 'rslora', undefined, 'random'].map((name) => ({ prompt, name })));
      const expected = jobs.map((j) => wide.generate(j.prompt, j.name));
      const ids = jobs.map((j) => narrow.submit(j.prompt, j.name));
      narrow.core.step();
      const during = narrow.core.stats().lora;
      assert.equal(during.maxLoras, 1);
      assert.deepEqual(during.running, ['peft'], 'the one slot computes the first adapter');
      assert.deepEqual(during.waiting.toSorted(), ['peft', 'random', 'rslora'], "the others' requests wait, as do peft's later ones");
      const got = narrow.run(ids);
      assert.deepEqual(narrow.core.stats().lora, { running: [], waiting: [], maxLoras: 1 });
      got.forEach((o, i) => assertSameOutput(o, expected[i], 1e-4, `request ${i} (${jobs[i].name ?? 'base'}) with one slot`));
    });

    test('preempted requests give their slot back and resume under their own adapter', async () => {
      const base = await model(BASE, cpuKernels);
      const wide = new Engine(base, { cpuKernels, loras: loras(['peft', 'rslora']), prefixCache: false });
      // 512 bytes a token: two requests are admitted, then outgrow the budget together.
      const tight = new Engine(base, {
        cpuKernels,
        loras: loras(['peft', 'rslora']),
        maxLoras: 1,
        kvBudgetBytes: 600 * 512,
        prefixCacheBytes: 64 * 512,
      });
      const jobs = ['peft', undefined, 'rslora', 'peft'].map((name, i) => ({ prompt: PROMPTS[i % PROMPTS.length], name }));
      const expected = jobs.map((j) => wide.run([wide.submit(j.prompt, j.name, 400)])[0]);
      const got = tight.run(jobs.map((j) => tight.submit(j.prompt, j.name, 400)));
      got.forEach((o, i) => assert.deepEqual(o.tokens, expected[i].tokens, `request ${i} (${jobs[i].name ?? 'base'})`));
      assert.ok(tight.core.stats().preemptions > 0, 'the budget was small enough to preempt');
    });

    test('the prefix cache keeps each adapter to its own KV, and cached_tokens stays truthful', async () => {
      const base = await model(BASE, cpuKernels);
      const engine = new Engine(base, { cpuKernels, loras: loras(['peft', 'rslora']) });
      const prompt = [256, ...Array.from({ length: 40 }, (_, i) => (i * 7) % 250)];
      const first = engine.generate(prompt);
      assert.equal(first.cachedTokens, 0);
      const baseAgain = engine.generate(prompt);
      assert.ok((baseAgain.cachedTokens ?? 0) > 0, 'the base model reuses its own prefix');
      const peft = engine.generate(prompt, 'peft');
      assert.equal(peft.cachedTokens, 0, "an adapter never starts from the base model's KV");
      const peftAgain = engine.generate(prompt, 'peft');
      assert.ok((peftAgain.cachedTokens ?? 0) > 0, 'an adapter reuses its own prefix');
      assertSameOutput(peftAgain, peft, 1e-4, 'peft from its cached prefix');
      assert.equal(engine.generate(prompt, 'rslora').cachedTokens, 0, "nor another adapter's");
      // Unloaded and loaded again under the same name (the file could have changed): no reuse.
      engine.core.unloadAdapter('peft', () => {});
      engine.core.loadAdapter('peft', ADAPTERS.peft);
      assert.equal(engine.generate(prompt, 'peft').cachedTokens, 0, 'a reloaded adapter starts afresh');
    });
  });
}

test('an unknown adapter is refused with not_found; the engine goes on', async () => {
  const engine = new Engine(await model(BASE, 'native'), { loras: loras(['peft']) });
  const refused = engine.generate(PROMPTS[0], 'nope');
  assert.equal(refused.error?.code, 'not_found');
  assert.match(refused.error?.message ?? '', /"nope"/);
  assert.equal(engine.generate(PROMPTS[0], 'peft').tokens.length, MAX_TOKENS);
});

test('unloading an adapter in use refuses new requests at once and completes when its requests have finished', async () => {
  const engine = new Engine(await model(BASE, 'native'), { loras: loras(['peft']) });
  const expected = engine.generate(PROMPTS[1], 'peft');
  const running = engine.submit(PROMPTS[1], 'peft');
  const queued = engine.submit(PROMPTS[2], 'peft');
  engine.core.step();
  let drained = false;
  engine.core.unloadAdapter('peft', () => {
    drained = true;
  });
  assert.equal(drained, false, 'two requests still use it');
  assert.deepEqual(engine.core.adapters(), [], 'no longer listed');
  const late = engine.generate(PROMPTS[0], 'peft');
  assert.equal(late.error?.code, 'not_found');
  const [done] = engine.run([running, queued]);
  assertSameOutput(done, expected, 1e-4, 'the running request is unaffected');
  assert.equal(drained, true, 'drained once both finished');
  // Unused: done at once. Unknown: not_found.
  engine.core.loadAdapter('again', ADAPTERS.rslora);
  let now = false;
  engine.core.unloadAdapter('again', () => {
    now = true;
  });
  assert.equal(now, true);
  assert.throws(
    () => engine.core.unloadAdapter('again', () => {}),
    (e: unknown) => e instanceof LoraRegistryError && e.code === 'not_found',
  );
});

test('loading checks the adapter against the limits and the name against those served', async () => {
  const engine = new Engine(await model(BASE, 'native'), { maxLoraRank: 4 });
  assert.throws(
    () => engine.core.loadAdapter('big', ADAPTERS.rslora),
    (e: unknown) => e instanceof LoraAdapterError && /adapter_config\.json: r: rank 8 is above the largest served \(4\)/.test(e.message),
  );
  engine.core.loadAdapter('small', ADAPTERS.peft);
  assert.throws(
    () => engine.core.loadAdapter('small', ADAPTERS.peft),
    (e: unknown) => e instanceof LoraRegistryError && e.code === 'already_exists',
  );
  assert.deepEqual(
    engine.core.adapters().map((a) => [a.name, a.format, a.rank, a.scale, a.layers, a.modules.length]),
    [['small', 'peft', 4, 2, 2, 7]],
  );
  // A bad --lora stops the engine from starting, naming the file.
  assert.throws(
    () => new Engine(models.get(`${BASE}:native`) as LoadedModel, { loras: [{ name: 'x', path: join(scratch, 'missing') }] }),
    /missing: adapter directory does not exist/,
  );
});
