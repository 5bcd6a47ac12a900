// Llama (with Llama 3 RoPE scaling), Qwen2, Qwen3, Mistral, Phi-3 (and Phi-4-mini-style), Gemma 2 and Gemma 3 held to PyTorch
// transformers: tiny random-weight checkpoints saved by
// transformers (test/fixtures/architectures/<family>/, made by
// scripts/reference/make_architecture_fixtures.py) run through the engine's batched, cached forward
// on both CPU paths, alone and in a batch, must produce the reference's greedy tokens and top-5
// logprobs. The Gemma fixtures' sliding window (8) is shorter than every prompt, so their local
// layers attend to a window. The phi4mini fixture (a Phi3ForCausalLM configured as Phi-4-mini:
// partial rotary embedding, LongRoPE with an original length of 64) has prompts within 64 tokens
// (short factors) and one beyond (long factors). The llama fixture's llama3 scaling has an original
// length of 32, so it rescales most of its rotary frequencies. The weights also load from GGUF files
// and from MLX 4/8-bit directories.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CpuKernels } from '../src/engine/engine-options.ts';
import { loadModel } from '../src/engine/load-model.ts';
import type { ModelConfig } from '../src/engine/model/config.ts';
import { readSafetensors } from '../src/engine/model/safetensors-reader.ts';
import { type SafetensorsEntry, writeSafetensors } from '../src/engine/model/safetensors-writer.ts';
import { BYTE_TO_CHAR } from '../src/text/byte-level.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { CPU_KERNELS, EngineHarness } from './helpers/engine-harness.ts';
import { ggufFile, llamaGgufMetadata, T, type Kv, type TensorSpec } from './helpers/gguf-writer.ts';
import { writeTinyTokenizer } from './helpers/tiny-model.ts';

interface ReferenceStep {
  token_id: number;
  top: { token_id: number; logprob: number }[];
}
interface ReferenceCase {
  name: string;
  prompt_token_ids: number[];
  generated_token_ids: number[];
  steps: ReferenceStep[];
}

const FIXTURES = join(import.meta.dirname, 'fixtures', 'architectures');
const LOGPROB_TOLERANCE = 1e-3;

function reference(family: string): ReferenceCase[] {
  return (JSON.parse(readFileSync(join(FIXTURES, family, 'reference.json'), 'utf8')) as { cases: ReferenceCase[] }).cases;
}

/** The fixture's checkpoint in a directory of its own, with the tiny tokenizer its vocabulary matches. */
function fixtureDirectory(family: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${family}-fixture-`));
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(FIXTURES, family, f), join(dir, f));
  writeTinyTokenizer(dir);
  return dir;
}

/**
 * The phi4mini cases within its original 64 positions (short factors) and the one whose prompt is
 * longer (long factors: transformers' forward of the whole sequence, and ours for a request that
 * may pass 64).
 */
function splitPhi4MiniCases(): [ReferenceCase[], ReferenceCase[]] {
  const cases = reference('phi4mini');
  const within = cases.filter((c) => c.prompt_token_ids.length + c.generated_token_ids.length <= 64);
  const beyond = cases.filter((c) => c.prompt_token_ids.length > 64);
  assert.equal(within.length + beyond.length, cases.length, 'no case crosses 64 during generation');
  assert.ok(within.length > 0 && beyond.length > 0);
  return [within, beyond];
}

/** Submits the cases (all at once: one batch; or one after another) and returns each one's steps. */
function run(h: EngineHarness, cases: ReferenceCase[], batched: boolean) {
  const submit = (c: ReferenceCase) =>
    h.submit(c.prompt_token_ids, { maxTokens: c.generated_token_ids.length, ignoreEos: true, logprobs: true, topLogprobs: 5 });
  let ids: string[];
  if (batched) {
    ids = cases.map(submit);
    h.runUntilDone(ids);
  } else {
    ids = cases.map((c) => {
      const id = submit(c);
      h.runUntilDone([id]);
      return id;
    });
  }
  return ids.map((id) => {
    const r = h.result(id);
    assert.equal(r.error, undefined, r.error?.message);
    return { tokenIds: r.tokenIds, steps: r.events.flatMap((e) => (e.type === 'delta' && e.logprobs ? e.logprobs : [])) };
  });
}

/** Greedy tokens identical, and the reference's top-5 logprobs matched at every step. */
function assertMatchesReference(h: EngineHarness, cases: ReferenceCase[], what: string) {
  for (const batched of [false, true]) {
    const outputs = run(h, cases, batched);
    cases.forEach((c, i) => {
      const label = `${what}, ${c.name}${batched ? ' in a batch' : ' alone'}`;
      assert.deepEqual(outputs[i].tokenIds, c.generated_token_ids, `${label}: greedy tokens`);
      c.steps.forEach((ref, t) => {
        const ours = outputs[i].steps[t];
        for (const expected of ref.top) {
          const mine = ours.top.find((a) => a.tokenId === expected.token_id);
          assert.ok(mine, `${label} step ${t}: top-5 token ${expected.token_id} missing`);
          const d = Math.abs(mine.logprob - expected.logprob);
          assert.ok(d < LOGPROB_TOLERANCE, `${label} step ${t}: logprob of ${expected.token_id} off by ${d}`);
        }
      });
    });
  }
}

async function harness(dir: string, kernels: CpuKernels): Promise<EngineHarness> {
  const h = await EngineHarness.load(dir, { cpuKernels: kernels, prefixCache: false });
  assert.equal(h.model.native !== undefined, kernels === 'native', h.model.fallbackReason);
  return h;
}

for (const kernels of CPU_KERNELS) {
  test(`Llama 3-style (llama3 RoPE scaling, original length 32) matches transformers (${kernels})`, async () => {
    const dir = fixtureDirectory('llama');
    const h = await harness(dir, kernels);
    const c = h.model.config;
    assert.equal(c.architecture, 'llama');
    assert.deepEqual(c.ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 });
    assert.equal(c.contextLength, 512);
    assert.equal(c.attentionBias, false);
    assert.equal(c.tieWordEmbeddings, false);
    const cases = reference('llama');
    assertMatchesReference(h, cases, `llama (${kernels})`);
    // The scaling matters here: without it the same weights continue differently.
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { rope_parameters: Record<string, unknown> };
    config.rope_parameters = { rope_type: 'default', rope_theta: config.rope_parameters.rope_theta };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const unscaled = run(await harness(dir, kernels), cases, true);
    assert.ok(
      cases.some((ref, i) => unscaled[i].tokenIds.join() !== ref.generated_token_ids.join()),
      'unscaled RoPE changes some continuation',
    );
  });

  test(`Qwen2 (q/k/v biases, tied embeddings) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('qwen2'), kernels);
    const c = h.model.config;
    assert.equal(c.architecture, 'qwen2');
    assert.equal(c.attentionBias, true);
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.ropeTheta, 1000000);
    assert.equal(c.ropeScaling, undefined);
    assertMatchesReference(h, reference('qwen2'), `qwen2 (${kernels})`);
  });

  test(`Qwen3 (per-head q/k norms, head_dim 32 ≠ hidden/heads, tied embeddings) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('qwen3'), kernels);
    const c = h.model.config;
    assert.equal(c.architecture, 'qwen3');
    assert.equal(c.qkNorm, true);
    assert.equal(c.headDim, 32);
    assert.equal(c.ropeTheta, 1000000);
    assert.equal(c.tieWordEmbeddings, true);
    assertMatchesReference(h, reference('qwen3'), `qwen3 (${kernels})`);
  });

  test(`Phi-3 (fused qkv_proj and gate_up_proj) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('phi3'), kernels);
    assert.equal(h.model.config.architecture, 'phi3');
    assertMatchesReference(h, reference('phi3'), `phi3 (${kernels})`);
  });

  test(`Phi-4-mini-style Phi-3 (partial rotary 0.75, LongRoPE short and long factors) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('phi4mini'), kernels);
    const c = h.model.config;
    assert.equal(c.architecture, 'phi3');
    assert.equal(c.headDim, 16);
    assert.equal(c.rotaryDim, 12);
    assert.deepEqual(c.ropeScaling, {
      type: 'longrope',
      shortFactor: [1, 1.25, 1.5, 2, 3, 5],
      longFactor: [1, 2, 4, 8, 16, 32],
      attentionFactor: Math.sqrt(1 + Math.log(4) / Math.log(64)),
      originalMaxPositionEmbeddings: 64,
    });
    const [within, beyond] = splitPhi4MiniCases();
    if (kernels === 'native') {
      assert.equal(c.contextLength, 256);
      // Short and long factors side by side in one batch, too.
      assertMatchesReference(h, [...within, ...beyond], `phi4mini (${kernels})`);
    } else {
      assert.equal(c.contextLength, 64, 'MLX serves LongRoPE within original_max_position_embeddings (the short factors)');
      assertMatchesReference(h, within, `phi4mini (${kernels})`);
      const r = h.generate(beyond[0].prompt_token_ids, { maxTokens: 8 });
      assert.equal(r.error?.code, 'invalid_argument');
      assert.match(r.error?.message ?? '', /maximum context length is 64 tokens/);
    }
  });

  test(`Mistral (sliding window caps the context) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('mistral'), kernels);
    assert.equal(h.model.config.architecture, 'mistral');
    assert.equal(h.model.config.contextLength, 128, 'the sliding window (128) caps max_position_embeddings (512)');
    assertMatchesReference(h, reference('mistral'), `mistral (${kernels})`);
    // Past the window the model would need windowed attention: such a request is refused up front.
    const r = h.generate(
      Array.from({ length: 120 }, (_, i) => 32 + (i % 90)),
      { maxTokens: 16 },
    );
    assert.equal(r.error?.code, 'invalid_argument');
    assert.match(r.error?.message ?? '', /maximum context length is 128 tokens/);
  });

  test(`Gemma 2 (sliding window 8 on even layers, soft-capping, GeGLU, sandwich norms) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('gemma2'), kernels);
    const c = h.model.config;
    assert.equal(c.architecture, 'gemma2');
    assert.equal(c.slidingWindow, 8);
    assert.deepEqual(c.slidingLayers, [true, false, true, false]);
    assert.equal(c.contextLength, 512, 'the window is run, not a cap on the context');
    assert.equal(c.attnLogitSoftcap, 10);
    assert.equal(c.finalLogitSoftcap, 8);
    assert.equal(c.attentionScale, 24 ** -0.5);
    assert.equal(c.embedScale, 8);
    assert.ok(
      reference('gemma2').every((r) => r.prompt_token_ids.length > 8),
      'every prompt is longer than the window',
    );
    assertMatchesReference(h, reference('gemma2'), `gemma2 (${kernels})`);
  });

  test(`Gemma 3 (q/k norms, local RoPE base, linear scaling on the global layer, window 8) matches transformers (${kernels})`, async () => {
    const h = await harness(fixtureDirectory('gemma3'), kernels);
    const c = h.model.config;
    assert.equal(c.architecture, 'gemma3');
    assert.equal(c.qkNorm, true);
    assert.deepEqual(c.slidingLayers, [true, true, false, true]);
    assert.equal(c.localRopeTheta, 10000);
    assert.equal(c.ropeTheta, 1000000);
    assert.deepEqual(c.ropeScaling, { type: 'linear', factor: 2 });
    assert.equal(c.attnLogitSoftcap, undefined);
    assertMatchesReference(h, reference('gemma3'), `gemma3 (${kernels})`);
  });
}

for (const family of ['gemma2', 'gemma3'])
  test(`${family} in 5-token prompt chunks and with its prompts' KV from the prefix cache (re-rotated per layer on MLX) matches transformers on both CPU paths`, async () => {
    for (const kernels of CPU_KERNELS) {
      // Prompts computed 5 tokens a step: chunks straddle the window's edge.
      const h = await EngineHarness.load(fixtureDirectory(family), { cpuKernels: kernels, prefillTokens: 5 });
      const cases = reference(family);
      // The first pass fills the cache; the second finds every prompt there.
      assertMatchesReference(h, cases, `${family} (${kernels}, prefix cache, 5-token prompt chunks)`);
      const ids = cases.map((c) => h.submit(c.prompt_token_ids, { maxTokens: c.generated_token_ids.length, ignoreEos: true }));
      h.runUntilDone(ids);
      ids.forEach((id, i) => {
        const r = h.result(id);
        assert.ok((r.cachedTokens ?? 0) > 8, `${family} (${kernels}) ${cases[i].name}: ${r.cachedTokens} tokens from the cache`);
        assert.deepEqual(r.tokenIds, cases[i].generated_token_ids, `${family} (${kernels}) ${cases[i].name} from the cache`);
      });
    }
  });

test('phi4mini in 5-token prompt chunks and from the prefix cache matches transformers on both CPU paths; long-factor requests bypass the cache', async () => {
  const [within, beyond] = splitPhi4MiniCases();
  for (const kernels of CPU_KERNELS) {
    const h = await EngineHarness.load(fixtureDirectory('phi4mini'), { cpuKernels: kernels, prefillTokens: 5 });
    const cases = kernels === 'native' ? [...within, ...beyond] : within;
    // The first pass fills the cache (short-factor requests only); the second finds their prompts there.
    assertMatchesReference(h, cases, `phi4mini (${kernels}, prefix cache, 5-token prompt chunks)`);
    const ids = cases.map((c) => h.submit(c.prompt_token_ids, { maxTokens: c.generated_token_ids.length, ignoreEos: true }));
    h.runUntilDone(ids);
    ids.forEach((id, i) => {
      const r = h.result(id);
      const long = cases[i].prompt_token_ids.length > 64;
      if (long) assert.equal(r.cachedTokens ?? 0, 0, `${cases[i].name} (${kernels}): long factors, keys unlike the cached ones`);
      else assert.ok((r.cachedTokens ?? 0) > 8, `phi4mini (${kernels}) ${cases[i].name}: ${r.cachedTokens} tokens from the cache`);
      assert.deepEqual(r.tokenIds, cases[i].generated_token_ids, `phi4mini (${kernels}) ${cases[i].name} again`);
    });
  }
});

test('phi4mini on the native path: a short prompt that may grow past 64 tokens rotates with the long factors, alone and batched', async () => {
  const [within] = splitPhi4MiniCases();
  const h = await EngineHarness.load(fixtureDirectory('phi4mini'), { cpuKernels: 'native', prefixCache: true });
  const prompt = within[0].prompt_token_ids;
  const sampling = { maxTokens: 64, ignoreEos: true, logprobs: true, topLogprobs: 5 };
  const alone = h.submit(prompt, sampling);
  h.runUntilDone([alone]);
  const expected = trace(h, alone);
  // Within 64 it would have matched the reference (short factors); with room to pass 64 it does not.
  assert.notDeepEqual(
    h.result(alone).tokenIds.slice(0, within[0].generated_token_ids.length),
    within[0].generated_token_ids,
    'the long factors change the output',
  );
  assert.equal(h.result(alone).cachedTokens ?? 0, 0);
  const ids = [...within.map((c) => h.submit(c.prompt_token_ids, { ...sampling, maxTokens: 8 })), h.submit(prompt, sampling)];
  h.runUntilDone(ids);
  assert.deepEqual(trace(h, ids[ids.length - 1]), expected, 'the same bits beside short-factor requests');
});

/** Chosen tokens with their logprobs and top alternatives, as a comparable record. */
function trace(h: EngineHarness, id: string) {
  return h
    .result(id)
    .events.flatMap((e) =>
      e.type === 'delta' && e.logprobs ? e.logprobs.map((l) => [l.tokenId, l.logprob, l.top.map((t) => [t.tokenId, t.logprob])]) : [],
    );
}

test('Gemma on the native path: a request gets the same bits alone, in a batch, joining mid-flight in 5-token chunks and from the prefix cache', async () => {
  const sampling = { maxTokens: 12, ignoreEos: true, logprobs: true, topLogprobs: 5 };
  for (const family of ['gemma2', 'gemma3']) {
    const dir = fixtureDirectory(family);
    const prompts = [
      ...reference(family).map((c) => c.prompt_token_ids),
      Array.from({ length: 41 }, (_, i) => 32 + ((i * 7) % 90)),
      [3, 5],
    ];
    const alone = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false });
    const expected = prompts.map((p) => {
      const id = alone.submit(p, sampling);
      alone.runUntilDone([id]);
      return trace(alone, id);
    });
    const batched = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: false });
    const ids = prompts.map((p) => batched.submit(p, sampling));
    batched.runUntilDone(ids);
    ids.forEach((id, i) => assert.deepEqual(trace(batched, id), expected[i], `${family} request ${i} in a batch`));
    const staggered = await EngineHarness.load(dir, { cpuKernels: 'native', prefixCache: true, prefillTokens: 5 });
    const late: string[] = [];
    for (const p of prompts) {
      late.push(staggered.submit(p, sampling));
      for (let s = 0; s < 2; s++) staggered.core.step();
    }
    staggered.runUntilDone(late);
    late.forEach((id, i) => assert.deepEqual(trace(staggered, id), expected[i], `${family} request ${i} joining mid-flight`));
    const again = prompts.map((p) => staggered.submit(p, sampling));
    staggered.runUntilDone(again);
    again.forEach((id, i) => assert.deepEqual(trace(staggered, id), expected[i], `${family} request ${i} from the cache`));
  }
});

/** Hugging Face layer tensor names → llama.cpp's (gguf-py's tensor map). */
const GGUF_NAMES: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.qkv_proj': 'attn_qkv',
  'self_attn.o_proj': 'attn_output',
  'self_attn.q_norm': 'attn_q_norm',
  'self_attn.k_norm': 'attn_k_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  // Phi-3: gate|up fused, which llama.cpp keeps as a double-height ffn_up.
  'mlp.gate_up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
  input_layernorm: 'attn_norm',
  post_attention_layernorm: 'ffn_norm',
};

/** Gemma's layer norms in llama.cpp's names (its ffn_norm is the MLP's input norm, pre_feedforward_layernorm). */
const GEMMA_GGUF_NAMES: Record<string, string> = {
  pre_feedforward_layernorm: 'ffn_norm',
  post_attention_layernorm: 'post_attention_norm',
  post_feedforward_layernorm: 'post_ffw_norm',
};

/**
 * llama.cpp's converter's reordering of q/k rows for llama (its RoPE rotates adjacent pairs): per
 * head, row half·(d/2) + j moves to 2j + half.
 */
function permuteQkRows(data: Float32Array, heads: number, cols: number): Float32Array {
  const rows = data.length / cols;
  const headRows = rows / heads;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++)
    for (let half = 0; half < 2; half++)
      for (let j = 0; j < headRows / 2; j++) {
        const from = (h * headRows + half * (headRows / 2) + j) * cols;
        out.set(data.subarray(from, from + cols), (h * headRows + 2 * j + half) * cols);
      }
  return out;
}

/**
 * A fixture's tensors (weights and Qwen2's q/k/v biases) in an F32 GGUF file as llama.cpp's
 * converter writes it for `arch` (llama: q/k rows permuted; NeoX RoPE for qwen2, qwen3, phi3 and
 * gemma: rows not permuted; for Gemma the 1 of x·(1 + w) added to every norm weight), with the tiny
 * byte-level vocabulary.
 */
function fixtureGguf(family: string, arch: string, extra: Kv[], extraTensors: TensorSpec[] = []): string {
  const gemma = arch.startsWith('gemma');
  const permuted = arch === 'llama';
  const config = JSON.parse(readFileSync(join(FIXTURES, family, 'config.json'), 'utf8')) as Record<string, number>;
  const tensors: TensorSpec[] = [];
  for (const [name, t] of readSafetensors(join(FIXTURES, family, 'model.safetensors'))) {
    assert.equal(t.dtype, 'F32', name);
    const layer = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
    const globals: Record<string, string> = {
      'model.embed_tokens.weight': 'token_embd.weight',
      'model.norm.weight': 'output_norm.weight',
      'lm_head.weight': 'output.weight',
    };
    const names = gemma ? { ...GGUF_NAMES, ...GEMMA_GGUF_NAMES } : GGUF_NAMES;
    const gguf = layer ? names[layer[2]] && `blk.${layer[1]}.${names[layer[2]]}.${layer[3]}` : globals[name];
    assert.ok(gguf, `no GGUF name for ${name}`);
    let data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (gemma && name.endsWith('norm.weight')) {
      const shifted = new Float32Array(new Uint8Array(t.data).buffer).map((v) => v + 1);
      data = Buffer.from(shifted.buffer);
    }
    const qk = layer && /^self_attn\.[qk]_proj$/.exec(layer[2]);
    if (permuted && qk) {
      assert.equal(layer[3], 'weight', `${name}: llama has no q/k biases to permute`);
      const heads = layer[2] === 'self_attn.q_proj' ? config.num_attention_heads : config.num_key_value_heads;
      const cols = t.shape[1];
      data = Buffer.from(permuteQkRows(new Float32Array(new Uint8Array(t.data).buffer), heads, cols).buffer);
    }
    tensors.push({ name: gguf, ne: [...t.shape].reverse(), type: 0, data });
  }
  tensors.push(...extraTensors);
  const llama = llamaGgufMetadata({
    contextLength: config.max_position_embeddings,
    hiddenSize: config.hidden_size,
    numLayers: config.num_hidden_layers,
    intermediateSize: config.intermediate_size,
    numHeads: config.num_attention_heads,
    numKvHeads: config.num_key_value_heads,
    tokens: [...BYTE_TO_CHAR, '<|bos|>', '<|eos|>', '<|im_start|>', '<|im_end|>'],
  });
  const kvs: Kv[] = llama
    .filter((kv) => !/rope\.freq_base|layer_norm_rms_epsilon/.test(kv.key))
    .map(
      (kv): Kv =>
        kv.key === 'general.architecture'
          ? { key: kv.key, type: T.STRING, value: arch }
          : { ...kv, key: kv.key.replace(/^llama\./, `${arch}.`) },
    );
  const rope = (config as unknown as { rope_parameters: { rope_theta: number; full_attention?: { rope_theta: number } } }).rope_parameters;
  const params = rope.full_attention ?? rope;
  kvs.push(
    { key: `${arch}.rope.freq_base`, type: T.F32, value: params.rope_theta },
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: T.F32, value: config.rms_norm_eps },
    ...extra,
  );
  const path = join(mkdtempSync(join(tmpdir(), `${family}-gguf-`)), `${family}-tiny.gguf`);
  writeFileSync(path, ggufFile(kvs, tensors));
  return path;
}

async function checkGguf(path: string, family: string, check: (config: ModelConfig) => void) {
  const location = { id: `${family}-gguf`, format: 'gguf' as const, path };
  const tokenizer = await loadTokenizer(location);
  for (const kernels of CPU_KERNELS) {
    const model = await loadModel(location, { cacheDir: mkdtempSync(join(tmpdir(), `${family}-gguf-cache-`)), cpuKernels: kernels });
    assert.equal(model.native !== undefined, kernels === 'native', model.fallbackReason);
    assert.equal(model.config.architecture, family);
    check(model.config);
    assertMatchesReference(new EngineHarness(model, tokenizer, { prefixCache: false }), reference(family), `${family} GGUF (${kernels})`);
  }
}

test('Qwen3 from a GGUF file (attn_q_norm / attn_k_norm tensors) matches transformers on both CPU paths', async () => {
  const path = fixtureGguf('qwen3', 'qwen3', [
    { key: 'qwen3.attention.key_length', type: T.U32, value: 32 },
    { key: 'qwen3.attention.value_length', type: T.U32, value: 32 },
  ]);
  await checkGguf(path, 'qwen3', (c) => {
    assert.equal(c.headDim, 32);
    assert.equal(c.tieWordEmbeddings, true);
  });
});

test('Llama 3-style from a GGUF file (q/k rows permuted, llama3 scaling as the rope_freqs tensor) matches transformers on both CPU paths', async () => {
  const config = JSON.parse(readFileSync(join(FIXTURES, 'llama', 'config.json'), 'utf8')) as {
    head_dim: number;
    rope_parameters: {
      rope_theta: number;
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };
  };
  // As llama.cpp's converter computes them: per rotated pair, what its inverse frequency is divided by.
  const r = config.rope_parameters;
  const dim = config.head_dim;
  const factors = Array.from({ length: dim / 2 }, (_, i) => {
    const wavelen = 2 * Math.PI * r.rope_theta ** ((2 * i) / dim);
    if (wavelen < r.original_max_position_embeddings / r.high_freq_factor) return 1;
    if (wavelen > r.original_max_position_embeddings / r.low_freq_factor) return r.factor;
    const smooth = (r.original_max_position_embeddings / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    return 1 / ((1 - smooth) / r.factor + smooth);
  });
  assert.ok(factors.some((f) => f === 1) && factors.some((f) => f === r.factor) && factors.some((f) => f > 1 && f < r.factor));
  const ropeFreqs: TensorSpec = {
    name: 'rope_freqs.weight',
    ne: [factors.length],
    type: 0,
    data: Buffer.from(Float32Array.from(factors).buffer),
  };
  const path = fixtureGguf('llama', 'llama', [{ key: 'llama.rope.dimension_count', type: T.U32, value: dim }], [ropeFreqs]);
  await checkGguf(path, 'llama', (c) => {
    assert.equal(c.ropeScaling?.type, 'freqFactors');
    assert.deepEqual(c.ropeScaling?.type === 'freqFactors' && c.ropeScaling.factors, [...Float32Array.from(factors)]);
    assert.equal(c.tieWordEmbeddings, false);
  });
});

test('Qwen2 from a GGUF file (attn_q/k/v bias tensors, tied embeddings) matches transformers on both CPU paths', async () => {
  await checkGguf(fixtureGguf('qwen2', 'qwen2', []), 'qwen2', (c) => {
    assert.equal(c.attentionBias, true);
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.ropeTheta, 1000000);
  });
});

test('Phi-3 from a GGUF file (attn_qkv, double-height ffn_up) matches transformers on both CPU paths', async () => {
  const phi3Keys = (window: number): Kv[] => [
    { key: 'phi3.rope.dimension_count', type: T.U32, value: 16 },
    { key: 'phi3.rope.scaling.original_context_length', type: T.U32, value: 4096 },
    { key: 'phi3.attention.sliding_window', type: T.U32, value: window },
  ];
  // 0: no window (as the converter writes for Phi-4).
  await checkGguf(fixtureGguf('phi3', 'phi3', phi3Keys(0)), 'phi3', (c) => assert.equal(c.contextLength, 512));
  // A window longer than any prompt here caps the context and leaves the output alone.
  await checkGguf(fixtureGguf('phi3', 'phi3', phi3Keys(100)), 'phi3', (c) => assert.equal(c.contextLength, 100));
  // An attention factor says LongRoPE; without its factor tensors the file cannot be run.
  const longRope = fixtureGguf('phi3', 'phi3', [...phi3Keys(0), { key: 'phi3.rope.scaling.attn_factor', type: T.F32, value: 1.19 }]);
  await assert.rejects(
    loadModel({ id: 'x', format: 'gguf', path: longRope }, { cacheDir: tmpdir() }),
    /LongRoPE scaling lacks rope_factors/,
  );
});

test('Phi-4-mini-style Phi-3 from a GGUF file (rope.dimension_count, LongRoPE factor tensors) matches transformers on both CPU paths', async () => {
  const config = JSON.parse(readFileSync(join(FIXTURES, 'phi4mini', 'config.json'), 'utf8')) as {
    rope_parameters: { short_factor: number[]; long_factor: number[] };
  };
  const factors = (name: string, values: number[]): TensorSpec => ({
    name,
    ne: [values.length],
    type: 0,
    data: Buffer.from(Float32Array.from(values).buffer),
  });
  // As llama.cpp's converter writes them: the attention factor from max/original context, in F32.
  const path = fixtureGguf(
    'phi4mini',
    'phi3',
    [
      { key: 'phi3.rope.dimension_count', type: T.U32, value: 12 },
      { key: 'phi3.rope.scaling.original_context_length', type: T.U32, value: 64 },
      { key: 'phi3.rope.scaling.attn_factor', type: T.F32, value: Math.sqrt(1 + Math.log(4) / Math.log(64)) },
      { key: 'phi3.attention.sliding_window', type: T.U32, value: 0 },
    ],
    [
      factors('rope_factors_long.weight', config.rope_parameters.long_factor),
      factors('rope_factors_short.weight', config.rope_parameters.short_factor),
    ],
  );
  const location = { id: 'phi4mini-gguf', format: 'gguf' as const, path };
  const tokenizer = await loadTokenizer(location);
  const [within, beyond] = splitPhi4MiniCases();
  for (const kernels of CPU_KERNELS) {
    const model = await loadModel(location, { cacheDir: mkdtempSync(join(tmpdir(), 'phi4mini-gguf-cache-')), cpuKernels: kernels });
    assert.equal(model.native !== undefined, kernels === 'native', model.fallbackReason);
    const c = model.config;
    assert.equal(c.rotaryDim, 12);
    assert.equal(c.ropeScaling?.type, 'longrope');
    assert.equal(c.contextLength, kernels === 'native' ? 256 : 64);
    const h = new EngineHarness(model, tokenizer, { prefixCache: false });
    assertMatchesReference(h, kernels === 'native' ? [...within, ...beyond] : within, `phi4mini GGUF (${kernels})`);
  }
});

test('Gemma 2 and Gemma 3 from GGUF files (norms shifted by the converter, post-norm tensors) match transformers on both CPU paths', async () => {
  const gemmaKeys = (arch: string, family: string): Kv[] => [
    { key: `${arch}.attention.key_length`, type: T.U32, value: 16 },
    { key: `${arch}.attention.value_length`, type: T.U32, value: 16 },
    { key: `${arch}.attention.sliding_window`, type: T.U32, value: 8 },
    // The fixtures scale attention by 24^-0.5, not by head_dim as llama.cpp assumes for these sizes.
    { key: `${arch}.attention.scale`, type: T.F32, value: 24 ** -0.5 },
    ...(family === 'gemma2'
      ? [
          { key: 'gemma2.attn_logit_softcapping', type: T.F32, value: 10 },
          { key: 'gemma2.final_logit_softcapping', type: T.F32, value: 8 },
        ]
      : [
          { key: 'gemma3.rope.scaling.type', type: T.STRING, value: 'linear' },
          { key: 'gemma3.rope.scaling.factor', type: T.F32, value: 2 },
          // Layer 2 global, as in the fixture (llama.cpp's fixed pattern makes every sixth layer global).
          {
            key: 'gemma3.attention.sliding_window_pattern',
            type: T.ARRAY,
            itemType: T.BOOL,
            value: [true, true, false, true],
          },
        ]),
  ];
  for (const family of ['gemma2', 'gemma3']) {
    await checkGguf(fixtureGguf(family, family, gemmaKeys(family, family)), family, (c) => {
      assert.equal(c.slidingWindow, 8);
      assert.equal(c.normWeightOffset, undefined);
      assert.equal(c.tieWordEmbeddings, true);
    });
  }
});

const GROUP = 64;

/**
 * MLX's affine quantization, written out (MLX 0.13's quantize refuses rows this short): per group
 * of 64 values, scale = (max - min) / (2^bits - 1) and bias = min; value i of a uint32 word sits at
 * bit (i mod values-per-word)·bits. Also returns the values the quantized weights stand for.
 */
function affineQuantize(w: Float32Array, rows: number, cols: number, bits: number) {
  const levels = 2 ** bits - 1;
  const perWord = 32 / bits;
  const groups = (rows * cols) / GROUP;
  const words = new Uint32Array((rows * cols) / perWord);
  const scales = new Float32Array(groups);
  const biases = new Float32Array(groups);
  const values = new Float32Array(rows * cols);
  for (let g = 0; g < groups; g++) {
    const part = w.subarray(g * GROUP, (g + 1) * GROUP);
    const min = Math.min(...part);
    const scale = Math.fround((Math.max(...part) - min) / levels) || 1;
    scales[g] = scale;
    biases[g] = min;
    part.forEach((v, j) => {
      const q = Math.min(levels, Math.max(0, Math.round((v - biases[g]) / scale)));
      const i = g * GROUP + j;
      words[Math.floor(i / perWord)] |= q << ((i % perWord) * bits);
      values[i] = Math.fround(Math.fround(scale * q) + biases[g]);
    });
  }
  return { words, scales, biases, values };
}

/**
 * MLX 4/8-bit directories of a fixture: the engine must give what it gives for the same weights
 * dequantized to f32 (which the tests above hold to transformers), since quantizing changes them.
 */
for (const family of ['llama', 'qwen2', 'qwen3', 'mistral', 'phi3', 'phi4mini', 'gemma2', 'gemma3'])
  test(`${family} from MLX 4-bit and 8-bit directories equals its dequantized weights on both CPU paths`, async () => {
    const config = JSON.parse(readFileSync(join(FIXTURES, family, 'config.json'), 'utf8')) as Record<string, unknown>;
    const weights = readSafetensors(join(FIXTURES, family, 'model.safetensors'));
    // phi4mini's long prompt runs on the native path only (tested above).
    const cases = reference(family)
      .filter((c) => c.name !== 'raw-long')
      .map((c) => ({ ...c, generated_token_ids: c.generated_token_ids.slice(0, 8) }));
    for (const bits of [4, 8]) {
      const quantized = new Map<string, SafetensorsEntry>();
      const dequantized = new Map<string, SafetensorsEntry>();
      const bytes = (a: Float32Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      for (const [name, t] of weights) {
        const values = new Float32Array(new Uint8Array(t.data).buffer); // a copy: t.data views the file
        if (t.shape.length !== 2) {
          quantized.set(name, { dtype: 'F32', shape: t.shape, data: bytes(values) });
          dequantized.set(name, { dtype: 'F32', shape: t.shape, data: bytes(values) });
          continue;
        }
        const [rows, cols] = t.shape;
        const a = affineQuantize(values, rows, cols, bits);
        const base = name.replace(/\.weight$/, '');
        quantized.set(`${base}.weight`, { dtype: 'U32', shape: [rows, (cols * bits) / 32], data: bytes(a.words) });
        quantized.set(`${base}.scales`, { dtype: 'F32', shape: [rows, cols / GROUP], data: bytes(a.scales) });
        quantized.set(`${base}.biases`, { dtype: 'F32', shape: [rows, cols / GROUP], data: bytes(a.biases) });
        dequantized.set(name, { dtype: 'F32', shape: t.shape, data: bytes(a.values) });
      }
      const write = (tensors: Map<string, SafetensorsEntry>, cfg: Record<string, unknown>) => {
        const dir = mkdtempSync(join(tmpdir(), `${family}-q${bits}-`));
        writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
        writeSafetensors(join(dir, 'model.safetensors'), tensors);
        writeTinyTokenizer(dir);
        return dir;
      };
      const quantizedDir = write(quantized, { ...config, quantization: { group_size: 64, bits } });
      const denseDir = write(dequantized, config);
      for (const kernels of CPU_KERNELS) {
        // The dense twin's output is the expectation the quantized directory is held to.
        const dense = await harness(denseDir, kernels);
        const expected: ReferenceCase[] = run(dense, cases, true).map((o, i) => ({
          ...cases[i],
          generated_token_ids: o.tokenIds,
          steps: o.steps.map((s) => ({ token_id: s.tokenId, top: s.top.map((a) => ({ token_id: a.tokenId, logprob: a.logprob })) })),
        }));
        assertMatchesReference(await harness(quantizedDir, kernels), expected, `${family} ${bits}-bit (${kernels})`);
      }
    }
  });
