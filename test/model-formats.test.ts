// Checkpoint formats and architectures, each held to the plain reference forward: a GGUF file with
// every supported tensor type (and llama.cpp's q/k row permutation), an MLX 4-bit directory,
// Qwen2 (q/k/v bias, tied embeddings), llama3 RoPE scaling; and clear errors for what we don't run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type LoadedModel } from '../src/engine/load-model.ts';
import type { CpuKernels } from '../src/engine/engine-options.ts';
import { PrefillBatch } from '../src/engine/kv/prefill-batch.ts';
import { configFromHf, type ModelConfig } from '../src/engine/model/config.ts';
import { ropeInverseFrequencies } from '../src/engine/model/rope.ts';
import { BYTE_TO_CHAR } from '../src/text/byte-level.ts';
import { ggufFile, llamaGgufMetadata, permuteRowsForGguf, T, type TensorSpec, tinyGgufTokens } from './helpers/gguf-writer.ts';
import { referenceLogits } from './helpers/reference-forward.ts';
import { tinyConfig, tinyWeights, writeTinyModel, writeTinyTokenizer, TINY_VOCAB } from './helpers/tiny-model.ts';
import { mx, type MxArray } from '../src/engine/mlx.ts';

const PROMPT = [5, 77, 130, 9, 200, 31, 64, 2];

/** Both CPU paths load every format: each test runs once per path. */
const KERNELS: CpuKernels[] = ['mlx', 'native'];

/** Logits of the engine's forward (packed prefill path on MLX) for every prompt position. */
function engineLogits(model: LoadedModel, tokens: number[]): MxArray {
  if (model.native) {
    const n = model.native;
    const T = tokens.length;
    const V = model.config.vocabSize;
    const out = new Float32Array(T * V);
    const at = Int32Array.from(tokens, (_, i) => i);
    n.reserveKv(T);
    n.forward({ tokens: Int32Array.from(tokens), positions: at, ctxOffset: new Int32Array(T), ctxSlots: at, logitRows: at }, out);
    return mx.array(
      Array.from({ length: T }, (_, t) => Array.from(out.subarray(t * V, (t + 1) * V))),
      mx.float32,
    );
  }
  const t = model.transformer!;
  const batch = new PrefillBatch(t.config, t.rope, [{ tokens }]);
  const step = batch.prepareStep(tokens.length);
  const logits = t.logits(t.forward(step.tokens, batch));
  mx.eval(logits);
  return logits;
}

function assertClose(a: MxArray, b: MxArray, tol: number, what: string) {
  const d = mx.max(mx.abs(mx.subtract(a, b))).item() as number;
  assert.ok(d < tol, `${what}: max |difference| ${d}`);
}

// ---- GGUF ----

/** f16 bits → number, written independently of the loader's converter. */
function half(bits: number): number {
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return bits & 0x8000 ? -v : v;
}

/** A random f16 scale in [2^-8, 2^-5): small enough to keep activations sane. */
function randomScaleBits(r: () => number): number {
  return ((7 + Math.floor(r() * 3)) << 10) | Math.floor(r() * 1024);
}

interface Quantized {
  data: Buffer;
  /** The values the blocks stand for, row-major [rows, cols]. */
  values: Float32Array;
}

/** Random ggml blocks of `type` for a [rows, cols] matrix, with the values ggml would decode. */
function randomTensor(type: number, rows: number, cols: number, r: () => number): Quantized {
  const n = rows * cols;
  const values = new Float32Array(n);
  if (type === 0 || type === 1) {
    const data = Buffer.alloc(n * (type === 0 ? 4 : 2));
    for (let i = 0; i < n; i++) {
      if (type === 0) {
        values[i] = (r() - 0.5) * 0.4;
        data.writeFloatLE(values[i], i * 4);
      } else {
        const bits = ((10 + Math.floor(r() * 3)) << 10) | Math.floor(r() * 1024) | (r() < 0.5 ? 0x8000 : 0);
        values[i] = half(bits);
        data.writeUInt16LE(bits, i * 2);
      }
    }
    return { data, values };
  }
  const blockBytes = { 2: 18, 3: 20, 8: 34 }[type] as number;
  const blocks = n / 32;
  const data = Buffer.alloc(blocks * blockBytes);
  for (let b = 0; b < blocks; b++) {
    const at = b * blockBytes;
    const dBits = randomScaleBits(r);
    data.writeUInt16LE(dBits, at);
    const d = half(dBits);
    if (type === 8) {
      for (let j = 0; j < 32; j++) {
        const q = Math.floor(r() * 256) - 128;
        data.writeInt8(q, at + 2 + j);
        values[b * 32 + j] = d * q;
      }
      continue;
    }
    let m = 0;
    if (type === 3) {
      const mBits = randomScaleBits(r) | 0x8000;
      data.writeUInt16LE(mBits, at + 2);
      m = half(mBits);
    }
    const qs = at + (type === 3 ? 4 : 2);
    for (let j = 0; j < 16; j++) {
      const lo = Math.floor(r() * 16);
      const hi = Math.floor(r() * 16);
      data[qs + j] = lo | (hi << 4);
      values[b * 32 + j] = type === 2 ? d * (lo - 8) : d * lo + m;
      values[b * 32 + j + 16] = type === 2 ? d * (hi - 8) : d * hi + m;
    }
  }
  return { data, values };
}

function toArray(values: Float32Array, rows: number, cols: number): MxArray {
  const nested: number[][] = [];
  for (let i = 0; i < rows; i++) nested.push(Array.from(values.subarray(i * cols, (i + 1) * cols)));
  return mx.array(nested, mx.float32);
}

for (const kernels of KERNELS)
  test(`GGUF: F32, F16, Q4_0, Q4_1 and Q8_0 tensors and llama q/k permutation load exactly (${kernels})`, async () => {
    let seed = 1;
    const r = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const H = 64,
      heads = 4,
      kvHeads = 2,
      D = 16,
      I = 128,
      V = TINY_VOCAB,
      layers = 2;
    const hf: Record<string, MxArray> = {};
    const tensors: TensorSpec[] = [];
    const add = (gguf: string, hfName: string, type: number, rows: number, cols: number, permuteHeads?: number) => {
      const t = randomTensor(type, rows, cols, r);
      // The file holds permuted rows; the HF reference holds them un-permuted.
      let values = t.values;
      if (permuteHeads) {
        // Find the HF values whose permutation gives the file's values: apply the inverse by
        // permuting a row-index vector.
        const idx = new Float32Array(rows).map((_, i) => i);
        const permutedIdx = permuteRowsForGguf(idx, rows, 1, permuteHeads);
        const unpermuted = new Float32Array(values.length);
        for (let gRow = 0; gRow < rows; gRow++) unpermuted.set(values.subarray(gRow * cols, (gRow + 1) * cols), permutedIdx[gRow] * cols);
        values = unpermuted;
      }
      hf[hfName] = toArray(values, rows, cols);
      tensors.push({ name: gguf, ne: [cols, rows], type, data: t.data });
    };
    const norm = (gguf: string, hfName: string) => {
      const values = Array.from({ length: H }, () => 1 + (r() - 0.5) * 0.2);
      hf[hfName] = mx.array(values, mx.float32);
      const data = Buffer.alloc(H * 4);
      values.forEach((v, i) => data.writeFloatLE(v, i * 4));
      tensors.push({ name: gguf, ne: [H], type: 0, data });
    };
    add('token_embd.weight', 'model.embed_tokens.weight', 8, V === 260 ? 288 : V, H);
    for (let i = 0; i < layers; i++) {
      add(`blk.${i}.attn_q.weight`, `model.layers.${i}.self_attn.q_proj.weight`, 2, heads * D, H, heads);
      add(`blk.${i}.attn_k.weight`, `model.layers.${i}.self_attn.k_proj.weight`, 3, kvHeads * D, H, kvHeads);
      add(`blk.${i}.attn_v.weight`, `model.layers.${i}.self_attn.v_proj.weight`, 8, kvHeads * D, H);
      add(`blk.${i}.attn_output.weight`, `model.layers.${i}.self_attn.o_proj.weight`, 1, H, heads * D);
      add(`blk.${i}.ffn_gate.weight`, `model.layers.${i}.mlp.gate_proj.weight`, 3, I, H);
      add(`blk.${i}.ffn_up.weight`, `model.layers.${i}.mlp.up_proj.weight`, 8, I, H);
      add(`blk.${i}.ffn_down.weight`, `model.layers.${i}.mlp.down_proj.weight`, 2, H, I);
      norm(`blk.${i}.attn_norm.weight`, `model.layers.${i}.input_layernorm.weight`);
      norm(`blk.${i}.ffn_norm.weight`, `model.layers.${i}.post_attention_layernorm.weight`);
    }
    norm('output_norm.weight', 'model.norm.weight');
    add('output.weight', 'lm_head.weight', 0, 288, H);
    const tokens = tinyGgufTokens();
    const kvs = llamaGgufMetadata({
      contextLength: 256,
      hiddenSize: H,
      numLayers: layers,
      intermediateSize: I,
      numHeads: heads,
      numKvHeads: kvHeads,
      tokens,
    });
    const dir = mkdtempSync(join(tmpdir(), 'gguf-model-'));
    const path = join(dir, 'tiny.gguf');
    writeFileSync(path, ggufFile(kvs, tensors));
    const model = await loadModel({ id: 'tiny-gguf', format: 'gguf', path }, { cacheDir: dir, cpuKernels: kernels });
    assert.equal(model.native !== undefined, kernels === 'native', model.fallbackReason);
    const c: ModelConfig = model.config;
    assert.equal(c.vocabSize, 288);
    assert.equal(c.tieWordEmbeddings, false);
    assertClose(engineLogits(model, PROMPT), referenceLogits(hf, c, PROMPT), 2e-3, 'GGUF logits vs reference');
  });

test('GGUF: an unsupported tensor type is refused with a message naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gguf-bad-'));
  const path = join(dir, 'bad.gguf');
  const tokens = [...BYTE_TO_CHAR];
  writeFileSync(
    path,
    ggufFile(
      [
        { key: 'general.architecture', type: T.STRING, value: 'llama' },
        { key: 'llama.embedding_length', type: T.U32, value: 256 },
        { key: 'llama.block_count', type: T.U32, value: 1 },
        { key: 'llama.feed_forward_length', type: T.U32, value: 256 },
        { key: 'llama.attention.head_count', type: T.U32, value: 4 },
        { key: 'tokenizer.ggml.model', type: T.STRING, value: 'gpt2' },
        { key: 'tokenizer.ggml.tokens', type: T.ARRAY, itemType: T.STRING, value: tokens },
        { key: 'tokenizer.ggml.merges', type: T.ARRAY, itemType: T.STRING, value: [] },
      ],
      // IQ2_XXS (type 16): 256 values per 66-byte block.
      [{ name: 'token_embd.weight', ne: [256, 256], type: 16, data: Buffer.alloc(256 * 66) }],
    ),
  );
  await assert.rejects(
    loadModel({ id: 'bad', format: 'gguf', path }, { cacheDir: dir }),
    /token_embd\.weight has GGUF type IQ2_XXS; supported: .*Q4_K/,
  );
});

// ---- Hugging Face / MLX directories and architectures ----

/** Loads a directory on each CPU path and holds both to the reference. */
async function checkDirectory(dir: string, tensors: Record<string, MxArray>, what: string, tol = 1e-3) {
  let model: LoadedModel | undefined;
  for (const kernels of KERNELS) {
    model = await loadModel({ id: what, format: 'hf', path: dir }, { cacheDir: dir, cpuKernels: kernels });
    assert.equal(model.native !== undefined, kernels === 'native', model.fallbackReason);
    assertClose(engineLogits(model, PROMPT), referenceLogits(tensors, model.config, PROMPT), tol, `${what} (${kernels})`);
  }
  return model as LoadedModel;
}

test('MLX 4-bit and 8-bit quantized directories (weight/scales/biases) load and match their dequantized weights', async () => {
  for (const bits of [4, 8]) {
    const config = {
      ...tinyConfig({ hiddenSize: 256, intermediateSize: 256, numHeads: 4, numKvHeads: 2, vocabSize: TINY_VOCAB }),
      quantization: { group_size: 64, bits },
    };
    const weights = tinyWeights(config, 5);
    const quantized: Record<string, MxArray> = {};
    const reference: Record<string, MxArray> = {};
    for (const [name, w] of Object.entries(weights)) {
      if (w.ndim === 2) {
        const [q, s, b] = mx.quantize(w, 64, bits) as unknown as MxArray[];
        const base = name.replace(/\.weight$/, '');
        quantized[`${base}.weight`] = q;
        quantized[`${base}.scales`] = s;
        quantized[`${base}.biases`] = b;
        reference[name] = mx.dequantize(q, s, b, 64, bits);
      } else {
        quantized[name] = w;
        reference[name] = w;
      }
    }
    const dir = mkdtempSync(join(tmpdir(), `mlx-q${bits}-`));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    mx.saveSafetensors(join(dir, 'model.safetensors'), quantized);
    writeTinyTokenizer(dir);
    await checkDirectory(dir, reference, `MLX ${bits}-bit`);
  }
});

test('Qwen2 (q/k/v bias, tied embeddings) matches the reference', async () => {
  const dir = writeTinyModel({ architecture: 'qwen2', tieWordEmbeddings: true, seed: 3 });
  const tensors = mx.load(join(dir, 'model.safetensors')) as unknown as Record<string, MxArray>;
  const model = await checkDirectory(dir, tensors, 'qwen2');
  assert.equal(model.config.attentionBias, true);
  assert.equal(model.config.tieWordEmbeddings, true);
});

test('llama3 RoPE scaling: frequencies as transformers computes them, and the forward matches', async () => {
  const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
  const cfg = configFromHf({ ...tinyConfig({ ropeScaling: scaling }), rope_theta: 500000 });
  // transformers' _compute_llama3_parameters, written out again.
  const expected = Array.from({ length: cfg.headDim / 2 }, (_, i) => {
    const f = 1 / 500000 ** ((2 * i) / cfg.headDim);
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 64 / 4) return f;
    if (wavelen > 64 / 1) return f / 8;
    const smooth = (64 / wavelen - 1) / (4 - 1);
    return (1 - smooth) * (f / 8) + smooth * f;
  });
  ropeInverseFrequencies(cfg).forEach((f, i) => assert.ok(Math.abs(f - expected[i]) < 1e-12 * Math.max(1, expected[i]), `frequency ${i}`));
  const dir = writeTinyModel({ ropeScaling: scaling, seed: 4 });
  const tensors = mx.load(join(dir, 'model.safetensors')) as unknown as Record<string, MxArray>;
  await checkDirectory(dir, tensors, 'llama3 rope scaling');
});

test('an unknown architecture is refused with a message naming it', async () => {
  const dir = writeTinyModel({});
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ ...tinyConfig({}), model_type: 'gpt_neox', architectures: ['GPTNeoXForCausalLM'] }),
  );
  await assert.rejects(
    loadModel({ id: 'x', format: 'hf', path: dir }, { cacheDir: dir }),
    /unsupported architecture "gpt_neox" \(GPTNeoXForCausalLM\)/,
  );
});
