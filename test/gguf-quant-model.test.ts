// A tiny llama GGUF whose tensors are K-quants (Q2_K–Q6_K), Q5_0, Q5_1 and IQ4_NL (with a Q8_0
// projection fused next to them, as llama-quantize's K_M mixes do) loads on both CPU paths, and its
// forward is the forward of the same model written as F32 with the dequantized values, bit for bit:
// the loader turns these blocks into exactly the f32 weights ggml decodes (held to ggml by
// gguf-dequantize.test.ts), or for Q5_0 and IQ4_NL into Q8_0 blocks that decode to them (which the
// native kernels multiply to the same bits as f32 weights), so nothing downstream can tell the two
// files apart.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CpuKernels } from '../src/engine/engine-options.ts';
import { PrefillBatch } from '../src/engine/kv/prefill-batch.ts';
import { loadModel, type LoadedModel } from '../src/engine/load-model.ts';
import { mx } from '../src/engine/mlx.ts';
import { dequantize } from '../src/engine/quant/dequantize.ts';
import { halfToFloat } from '../src/engine/quant/f16.ts';
import {
  f32Bytes,
  GGML,
  ggufFile,
  llamaGgufMetadata,
  randomQuantBlocks,
  type TensorSpec,
  tinyGgufTokens,
  randomNormTensors,
} from './helpers/gguf-writer.ts';
import { CPU_KERNELS } from './helpers/engine-harness.ts';

const PROMPT = [5, 77, 130, 9, 200, 31, 64, 2, 257, 100];
const H = 256;
const I = 512;
const HEADS = 4;
const KV_HEADS = 2;
const D = H / HEADS;
const VOCAB = 288;

const dir = mkdtempSync(join(tmpdir(), 'gguf-quant-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * [GGUF name, ggml type, rows, cols]: every dequantized type at least once, in several roles; Q5_0
 * and IQ4_NL both fused with f32 parts and alone or together (so computed as Q8_0 blocks).
 */
const LAYOUT: [string, number, number, number][] = [
  ['token_embd.weight', GGML.Q6_K, VOCAB, H],
  ['blk.0.attn_q.weight', GGML.Q4_K, HEADS * D, H],
  ['blk.0.attn_k.weight', GGML.Q5_0, KV_HEADS * D, H],
  ['blk.0.attn_v.weight', GGML.Q8_0, KV_HEADS * D, H],
  ['blk.0.attn_output.weight', GGML.Q5_K, H, HEADS * D],
  ['blk.0.ffn_gate.weight', GGML.Q2_K, I, H],
  ['blk.0.ffn_up.weight', GGML.Q3_K, I, H],
  ['blk.0.ffn_down.weight', GGML.Q6_K, H, I],
  ['blk.1.attn_q.weight', GGML.Q5_1, HEADS * D, H],
  ['blk.1.attn_k.weight', GGML.IQ4_NL, KV_HEADS * D, H],
  ['blk.1.attn_v.weight', GGML.Q4_K, KV_HEADS * D, H],
  ['blk.1.attn_output.weight', GGML.Q5_0, H, HEADS * D],
  ['blk.1.ffn_gate.weight', GGML.Q5_0, I, H],
  ['blk.1.ffn_up.weight', GGML.IQ4_NL, I, H],
  ['blk.1.ffn_down.weight', GGML.Q5_K, H, I],
  ['output.weight', GGML.Q3_K, VOCAB, H],
];

/** Q8_0 decoded as ggml does (d·q), written apart from the code under test. */
function decodeQ8_0(data: Buffer, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const d = halfToFloat(data.readUInt16LE(b * 34));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = d * data.readInt8(b * 34 + 2 + j);
  }
  return out;
}

/** The quantized file and the same model with every tensor written as F32. */
function writeModels(): { quantized: string; f32: string } {
  let seed = 7;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const quantized: TensorSpec[] = [];
  const dense: TensorSpec[] = [];
  for (const [name, type, rows, cols] of LAYOUT) {
    const data = randomQuantBlocks(type, rows * cols, random);
    const values = type === GGML.Q8_0 ? decodeQ8_0(data, rows * cols) : dequantize(type, data, rows * cols);
    quantized.push({ name, ne: [cols, rows], type, data });
    dense.push({ name, ne: [cols, rows], type: GGML.F32, data: f32Bytes(values) });
  }
  const norms = randomNormTensors(2, H, random);
  quantized.push(...norms);
  dense.push(...norms);
  const tokens = tinyGgufTokens();
  const kvs = llamaGgufMetadata({
    contextLength: 256,
    hiddenSize: H,
    numLayers: 2,
    intermediateSize: I,
    numHeads: HEADS,
    numKvHeads: KV_HEADS,
    tokens,
  });
  const paths = { quantized: join(dir, 'tiny-kquants.gguf'), f32: join(dir, 'tiny-f32.gguf') };
  writeFileSync(paths.quantized, ggufFile(kvs, quantized));
  writeFileSync(paths.f32, ggufFile(kvs, dense));
  return paths;
}

/** Logits of the engine's forward (packed prefill on MLX) for every prompt position. */
function engineLogits(model: LoadedModel, tokens: number[]): Float32Array {
  const V = model.config.vocabSize;
  if (model.native) {
    const out = new Float32Array(tokens.length * V);
    const at = Int32Array.from(tokens, (_, i) => i);
    model.native.reserveKv(tokens.length);
    model.native.forward(
      { tokens: Int32Array.from(tokens), positions: at, ctxOffset: new Int32Array(tokens.length), ctxSlots: at, logitRows: at },
      out,
    );
    return out;
  }
  const t = model.transformer!;
  const batch = new PrefillBatch(t.config, t.rope, [{ tokens }]);
  const logits = t.logits(t.forward(batch.prepareStep(tokens.length).tokens, batch));
  mx.eval(logits);
  return Float32Array.from((logits.tolist() as number[][]).flat());
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

const paths = writeModels();
const logitsByPath = new Map<CpuKernels, Float32Array>();

for (const kernels of CPU_KERNELS)
  test(`GGUF K-quants, Q5_0, Q5_1, IQ4_NL: the forward equals the F32 model's bit for bit (${kernels})`, async () => {
    const load = (path: string, name: string) =>
      loadModel({ id: name, format: 'gguf', path }, { cacheDir: join(dir, `cache-${kernels}`), cpuKernels: kernels });
    const quantized = await load(paths.quantized, 'quantized');
    assert.equal(quantized.native !== undefined, kernels === 'native', quantized.fallbackReason);
    assert.equal(quantized.config.vocabSize, VOCAB);
    const dense = await load(paths.f32, 'f32');
    const q = engineLogits(quantized, PROMPT);
    const f = engineLogits(dense, PROMPT);
    assert.equal(q.length, PROMPT.length * VOCAB);
    assert.ok(
      q.every((v) => Number.isFinite(v)),
      'logits are finite',
    );
    // Spread-out logits: the weights' scales give a model that is not degenerate.
    assert.ok(Math.max(...q.subarray(0, VOCAB)) - Math.min(...q.subarray(0, VOCAB)) > 1, 'logits spread');
    assert.deepEqual(bits(q), bits(f));
    logitsByPath.set(kernels, q);
  });

test('both CPU paths compute the same logits for the quantized file (within float tolerance)', (t) => {
  const [a, b] = CPU_KERNELS.map((k) => logitsByPath.get(k));
  if (!a || !b) return t.skip('a path did not run');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  t.diagnostic(`max |native − mlx| ${max}`);
  assert.ok(max < 2e-3, `max |native − mlx| ${max}`);
});
