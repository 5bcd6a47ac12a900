// LoRA adapter files (src/engine/lora/): mlx-lm's and PEFT's layouts read to one normalized shape,
// every refusal naming its file and field, and mergedWeight held to PEFT's own merge_and_unload()
// of adapters PEFT made (test/fixtures/lora/, scripts/reference/make_lora_fixtures.py).
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configFromHf } from '../src/engine/model/config.ts';
import { readSafetensors } from '../src/engine/model/safetensors-reader.ts';
import { type SafetensorsEntry, writeSafetensors } from '../src/engine/model/safetensors-writer.ts';
import { LoraAdapterError } from '../src/engine/lora/lora-adapter-error.ts';
import {
  ADAPTER_CONFIG,
  type LoraBaseModel,
  layerModulePaths,
  MLX_WEIGHTS,
  PEFT_WEIGHTS,
  readLoraAdapter,
} from '../src/engine/lora/lora-adapter.ts';
import { mergedWeight } from '../src/engine/lora/merged-weight.ts';
import { floatToHalf, halfToFloat } from '../src/engine/quant/f16.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'lora');
const BASE = join(import.meta.dirname, 'fixtures', 'architectures', 'llama');
const config = configFromHf(JSON.parse(readFileSync(join(BASE, 'config.json'), 'utf8')));
const MODEL: LoraBaseModel = { config, modules: layerModulePaths(config) };
const LIMITS = { maxRank: 64 };

const scratch = mkdtempSync(join(tmpdir(), 'lora-adapter-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let copies = 0;

/** A copy of a fixture adapter to break. */
function copyOf(name: string): string {
  const dir = join(scratch, `${name}-${copies++}`);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const c = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8'));
  edit(c);
  writeFileSync(join(dir, ADAPTER_CONFIG), JSON.stringify(c));
}

/** Rewrites the weights file; `edit` returns the new entries (undefined drops a tensor). */
function editTensors(file: string, edit: (name: string, t: SafetensorsEntry) => [string, SafetensorsEntry] | undefined): void {
  const out = new Map<string, SafetensorsEntry>();
  for (const [name, t] of readSafetensors(file)) {
    const e = edit(name, { dtype: t.dtype as SafetensorsEntry['dtype'], shape: t.shape, data: new Uint8Array(t.data) });
    if (e) out.set(e[0], e[1]);
  }
  writeSafetensors(file, out);
}

function f32(t: { data: Uint8Array }): Float32Array {
  const bytes = new Uint8Array(t.data);
  return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
}

function rejects(dir: string, file: string, field: string | undefined, message: RegExp, model = MODEL, limits = LIMITS): void {
  assert.throws(
    () => readLoraAdapter(dir, model, limits),
    (e: unknown) => {
      assert.ok(e instanceof LoraAdapterError, `a LoraAdapterError, got ${e}`);
      assert.equal(e.file, file);
      assert.equal(e.field, field);
      assert.match(e.message, message);
      return true;
    },
  );
}

test('mlx-lm and PEFT adapters holding the same numbers read to the same normalized adapter', () => {
  const mlx = readLoraAdapter(join(FIXTURES, 'mlx'), MODEL, LIMITS);
  const peft = readLoraAdapter(join(FIXTURES, 'peft'), MODEL, LIMITS);
  assert.equal(mlx.format, 'mlx-lm');
  assert.equal(peft.format, 'peft');
  assert.equal(peft.rank, 4);
  assert.equal(peft.scale, 8 / 4); // lora_alpha / r
  assert.equal(mlx.scale, peft.scale);
  assert.equal(peft.modules.length, 2 * 7);
  assert.deepEqual(
    peft.modules.slice(0, 7).map((m) => [m.layer, m.module, m.inFeatures, m.outFeatures]),
    [
      [0, 'q_proj', 64, 64],
      [0, 'k_proj', 64, 32],
      [0, 'v_proj', 64, 32],
      [0, 'o_proj', 64, 64],
      [0, 'gate_proj', 64, 128],
      [0, 'up_proj', 64, 128],
      [0, 'down_proj', 128, 64],
    ],
  );
  assert.deepEqual(mlx.modules, peft.modules);
  const q = peft.modules[0];
  assert.equal(q.a.length, 4 * 64);
  assert.equal(q.b.length, 64 * 4);
  assert.ok(
    q.b.some((v) => v !== 0),
    'B is nonzero (init_lora_weights=False)',
  );
});

test('mergedWeight matches PEFT merge_and_unload() (lora_alpha / r and rsLoRA lora_alpha / sqrt(r))', () => {
  const base = readSafetensors(join(BASE, 'model.safetensors'));
  const merged = readSafetensors(join(FIXTURES, 'merged.safetensors'));
  const adapters = {
    peft: readLoraAdapter(join(FIXTURES, 'peft'), MODEL, LIMITS),
    'peft-rslora': readLoraAdapter(join(FIXTURES, 'peft-rslora'), MODEL, LIMITS),
    mlx: readLoraAdapter(join(FIXTURES, 'mlx'), MODEL, LIMITS),
  };
  assert.equal(adapters['peft-rslora'].scale, 16 / Math.sqrt(8));
  let checked = 0;
  for (const [name, expected] of merged) {
    const m = /^(peft|peft-rslora)\.model\.layers\.(\d+)\.\w+\.(\w+)\.weight$/.exec(name);
    assert.ok(m, name);
    const prefix = m[1] as 'peft' | 'peft-rslora';
    for (const adapter of prefix === 'peft' ? [adapters.peft, adapters.mlx] : [adapters[prefix]]) {
      const part = adapter.modules.find((p) => p.layer === Number(m[2]) && p.module === m[3]);
      assert.ok(part, name);
      const w = f32(base.get(name.slice(prefix.length + 1)) as { data: Uint8Array });
      const got = mergedWeight(w, part);
      const want = f32(expected);
      assert.equal(got.length, want.length);
      let worst = 0;
      let moved = 0;
      for (let i = 0; i < got.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - want[i]));
        moved = Math.max(moved, Math.abs(want[i] - w[i]));
      }
      assert.ok(worst < 1e-5, `${name}: max |ours − PEFT| = ${worst}`);
      assert.ok(moved > 1e-2, `${name}: the adapter changes the weight (max ${moved})`);
      checked++;
    }
  }
  assert.equal(checked, 3 * 2 + 1);
});

test('mergedWeight is W + scale · B · A and leaves W alone', () => {
  const w = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2, 3]
  const part = {
    layer: 0,
    module: 'q_proj' as const,
    rank: 1,
    inFeatures: 3,
    outFeatures: 2,
    a: Float32Array.from([1, 0, -1]),
    b: Float32Array.from([2, 3]),
    scale: 0.5,
  };
  assert.deepEqual([...mergedWeight(w, part)], [2, 2, 2, 5.5, 5, 4.5]);
  assert.deepEqual([...w], [1, 2, 3, 4, 5, 6]);
  assert.throws(() => mergedWeight(new Float32Array(5), part), RangeError);
});

test('f16 and bf16 adapters read as their f32 values', () => {
  const want = readLoraAdapter(join(FIXTURES, 'peft'), MODEL, LIMITS);
  const bf16 = (v: number) => {
    const u = new Uint32Array(Float32Array.of(v).buffer)[0];
    return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  };
  for (const [dtype, encode, decode] of [
    ['F16', floatToHalf, halfToFloat],
    ['BF16', bf16, (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]],
  ] as const) {
    const dir = copyOf('peft');
    editTensors(join(dir, PEFT_WEIGHTS), (name, t) => {
      const halves = Uint16Array.from(f32(t), encode);
      return [name, { dtype, shape: t.shape, data: new Uint8Array(halves.buffer) }];
    });
    const got = readLoraAdapter(dir, MODEL, LIMITS);
    assert.equal(got.modules.length, want.modules.length);
    for (const [i, m] of got.modules.entries()) {
      const w = want.modules[i];
      assert.deepEqual(
        [...m.a],
        [...w.a].map((v) => Math.fround(decode(encode(v)))),
        `${dtype} A of ${m.layer}.${m.module}`,
      );
      assert.deepEqual(
        [...m.b],
        [...w.b].map((v) => Math.fround(decode(encode(v)))),
        `${dtype} B of ${m.layer}.${m.module}`,
      );
    }
  }
});

test('missing files and malformed JSON name the file', () => {
  const nowhere = join(scratch, 'nowhere');
  rejects(nowhere, nowhere, undefined, /does not exist/);
  const file = join(copyOf('peft'), ADAPTER_CONFIG);
  rejects(file, file, undefined, /is not a directory \(an adapter is the directory holding adapter_config\.json\)/);
  const empty = join(scratch, 'empty');
  mkdirSync(empty);
  rejects(empty, empty, undefined, /neither adapters\.safetensors \(mlx-lm\) nor adapter_model\.safetensors \(PEFT\)/);
  const noConfig = copyOf('peft');
  rmSync(join(noConfig, ADAPTER_CONFIG));
  rejects(noConfig, noConfig, ADAPTER_CONFIG, /is missing/);
  const badJson = copyOf('mlx');
  writeFileSync(join(badJson, ADAPTER_CONFIG), '{"lora_parameters": {');
  rejects(badJson, join(badJson, ADAPTER_CONFIG), undefined, /not valid JSON/);
  const truncated = copyOf('peft');
  writeFileSync(join(truncated, PEFT_WEIGHTS), Buffer.from([1, 2, 3]));
  rejects(truncated, join(truncated, PEFT_WEIGHTS), undefined, /not a safetensors file/);
});

test('config fields: rank above the limit, missing or unsupported settings', () => {
  const peft = copyOf('peft');
  rejects(peft, join(peft, ADAPTER_CONFIG), 'r', /rank 4 is above the largest served \(2\)/, MODEL, { maxRank: 2 });
  const mlx = copyOf('mlx');
  rejects(mlx, join(mlx, ADAPTER_CONFIG), 'lora_parameters.rank', /rank 4 is above/, MODEL, { maxRank: 3 });

  const alpha = copyOf('mlx');
  editConfig(alpha, (c) => {
    c.lora_parameters = { rank: 4, alpha: 16, dropout: 0 };
  });
  rejects(alpha, join(alpha, ADAPTER_CONFIG), 'lora_parameters.scale', /"scale", not "alpha"/);
  const dora = copyOf('mlx');
  editConfig(dora, (c) => {
    c.fine_tune_type = 'dora';
  });
  rejects(dora, join(dora, ADAPTER_CONFIG), 'fine_tune_type', /"dora" is not supported/);
  const noRank = copyOf('peft');
  editConfig(noRank, (c) => {
    c.r = 0;
  });
  rejects(noRank, join(noRank, ADAPTER_CONFIG), 'r', /positive integer/);
  const useDora = copyOf('peft');
  editConfig(useDora, (c) => {
    c.use_dora = true;
  });
  rejects(useDora, join(useDora, ADAPTER_CONFIG), 'use_dora', /DoRA is not supported/);
  const pattern = copyOf('peft');
  editConfig(pattern, (c) => {
    c.rank_pattern = { q_proj: 8 };
  });
  rejects(pattern, join(pattern, ADAPTER_CONFIG), 'rank_pattern', /per-module rank/);
  const tooManyLayers = copyOf('mlx');
  editConfig(tooManyLayers, (c) => {
    c.num_layers = 3;
  });
  rejects(tooManyLayers, join(tooManyLayers, ADAPTER_CONFIG), 'num_layers', /is 3, but the model has 2 layers/);
});

test('targets the model lacks, fused Phi-3 projections, the embedding and the LM head are refused', () => {
  const attentionOnly: LoraBaseModel = {
    config,
    modules: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'],
  };
  const peft = copyOf('peft');
  rejects(peft, join(peft, ADAPTER_CONFIG), 'target_modules', /targets (gate|up|down)_proj, which the model does not have/, attentionOnly);
  const mlx = copyOf('mlx');
  rejects(mlx, join(mlx, ADAPTER_CONFIG), 'lora_parameters.keys', /targets mlp\.gate_proj, which the model does not have/, attentionOnly);

  const phi3: LoraBaseModel = { config, modules: layerModulePaths({ architecture: 'phi3' }) };
  const fused = copyOf('peft');
  editConfig(fused, (c) => {
    c.target_modules = ['qkv_proj', 'o_proj'];
  });
  rejects(
    fused,
    join(fused, ADAPTER_CONFIG),
    'target_modules',
    /fused projections \(Phi-3's self_attn\.qkv_proj\) is not supported yet/,
    phi3,
  );

  const lmHead = copyOf('peft');
  editConfig(lmHead, (c) => {
    c.target_modules = ['q_proj', 'lm_head'];
  });
  rejects(lmHead, join(lmHead, ADAPTER_CONFIG), 'target_modules', /embedding or the LM head is not supported/);
  const embedKeys = copyOf('mlx');
  editConfig(embedKeys, (c) => {
    (c.lora_parameters as Record<string, unknown>).keys = ['self_attn.q_proj', 'model.embed_tokens'];
  });
  rejects(embedKeys, join(embedKeys, ADAPTER_CONFIG), 'lora_parameters.keys', /embedding or the LM head/);
  // A tensor on the head, whatever the config says (PEFT writes lora_embedding_A for embeddings).
  const headTensor = copyOf('peft');
  editConfig(headTensor, (c) => {
    c.target_modules = 'all-linear';
  });
  const weights = join(headTensor, PEFT_WEIGHTS);
  const name = 'base_model.model.model.embed_tokens.lora_embedding_A';
  editTensors(weights, (n, t) => (n.endsWith('layers.1.mlp.up_proj.lora_A.weight') ? [name, t] : [n, t]));
  rejects(headTensor, weights, name, /embedding or the LM head is not supported/);
});

test('tensors: layers beyond the model or outside num_layers, wrong shapes, missing partners, dtypes', () => {
  const oneLayer: LoraBaseModel = { config: { ...config, numLayers: 1 }, modules: MODEL.modules };
  const peft = copyOf('peft');
  rejects(
    peft,
    join(peft, PEFT_WEIGHTS),
    'base_model.model.model.layers.1.mlp.down_proj.lora_A.weight',
    /is in layer 1, but the model has 1 layers/,
    oneLayer,
  );

  const lastOne = copyOf('mlx');
  editConfig(lastOne, (c) => {
    c.num_layers = 1;
  });
  rejects(lastOne, join(lastOne, MLX_WEIGHTS), 'model.layers.0.mlp.down_proj.lora_a', /outside the last num_layers layers \(1 on\)/);

  const untargeted = copyOf('peft');
  editConfig(untargeted, (c) => {
    c.target_modules = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
  });
  rejects(
    untargeted,
    join(untargeted, PEFT_WEIGHTS),
    'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight',
    /target_modules does not list/,
  );

  const a = 'model.layers.1.self_attn.k_proj.lora_a';
  const shape = copyOf('mlx');
  editTensors(join(shape, MLX_WEIGHTS), (n, t) => (n === a ? [n, { ...t, shape: [32, 8], data: t.data.subarray(0, 32 * 8 * 4) }] : [n, t]));
  rejects(shape, join(shape, MLX_WEIGHTS), a, /has shape \[32,8\], expected \[64,4\]/);
  // The same numbers, but the model's k projection is wider than the adapter's B.
  const wideKv: LoraBaseModel = { config: { ...config, numKvHeads: 4 }, modules: MODEL.modules };
  const narrow = copyOf('peft');
  const kB = 'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight';
  rejects(narrow, join(narrow, PEFT_WEIGHTS), kB, /has shape \[32,4\], expected \[64,4\]/, wideKv);

  const b = 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight';
  const lonely = copyOf('peft');
  editTensors(join(lonely, PEFT_WEIGHTS), (n, t) => (n === b ? undefined : [n, t]));
  rejects(lonely, join(lonely, PEFT_WEIGHTS), b.replace('lora_B', 'lora_A'), /has no matching LoRA B tensor/);

  const f64 = copyOf('peft');
  editTensors(join(f64, PEFT_WEIGHTS), (n, t) => {
    if (n !== b) return [n, t];
    const data = new Uint8Array(Float64Array.from(f32(t)).buffer);
    return [n, { ...t, dtype: 'F64' as SafetensorsEntry['dtype'], data }];
  });
  rejects(f64, join(f64, PEFT_WEIGHTS), b, /has dtype F64; supported: F32, F16, BF16/);

  const stray = copyOf('mlx');
  editTensors(join(stray, MLX_WEIGHTS), (n, t) => (n === a ? ['model.layers.1.self_attn.k_proj.lora_A.weight', t] : [n, t]));
  rejects(stray, join(stray, MLX_WEIGHTS), 'model.layers.1.self_attn.k_proj.lora_A.weight', /not a LoRA tensor of a decoder layer/);
});
