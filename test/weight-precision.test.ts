// --quantization and --dtype: which precision each device gets, the flags and their refusals, and
// what the choice does to a model: on the native path a tiny Q4_0/Q8_0 GGUF dequantized at load
// decodes the same greedy tokens as kept in its blocks and holds more bytes of weights; on MLX's
// CPU backend a tiny MLX 4-bit directory kept quantized (quantizedMatmul) gives logits close to
// the dequantized one's; float16/bfloat16 weights are built as asked (they compute only on Metal).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { engineOptions, type ServeFlags } from '../src/cli/program.ts';
import { EngineCore } from '../src/engine/engine-core.ts';
import { DEFAULT_ENGINE_OPTIONS, type CpuKernels, type QuantizationMode } from '../src/engine/engine-options.ts';
import { PrefillBatch } from '../src/engine/kv/prefill-batch.ts';
import { loadModel, type LoadedModel } from '../src/engine/load-model.ts';
import { mx, type MxArray } from '../src/engine/mlx.ts';
import { loadHfTransformer } from '../src/engine/model/load-weights.ts';
import { linearArrays } from '../src/engine/model/linear.ts';
import type { EngineEvent } from '../src/engine/request.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { dtypeRefusal, metalPossible, resolveWeightPrecision } from '../src/engine/weight-precision.ts';
import { BIN } from './helpers/cli-process.ts';
import {
  GGML,
  ggufFile,
  llamaGgufMetadata,
  randomQuantBlocks,
  type TensorSpec,
  tinyGgufTokens,
  randomNormTensors,
} from './helpers/gguf-writer.ts';
import { TINY_VOCAB, tinyConfig, tinyWeights, writeTinyTokenizer } from './helpers/tiny-model.ts';
import { parseCli } from './helpers/cli-flags.ts';

const dir = mkdtempSync(join(tmpdir(), 'weight-precision-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the precision each device gets', () => {
  test('auto keeps quantized weights where they compute at least as fast: native and Metal, not MLX on a CPU', () => {
    assert.deepEqual(resolveWeightPrecision('native', 'auto', 'auto'), { dtype: 'float32', keepQuantized: true, warning: undefined });
    assert.deepEqual(resolveWeightPrecision('mlx-cpu', 'auto', 'auto'), { dtype: 'float32', keepQuantized: false, warning: undefined });
    assert.deepEqual(resolveWeightPrecision('mlx-metal', 'auto', 'auto'), {
      dtype: 'checkpoint',
      keepQuantized: true,
      warning: undefined,
    });
  });

  test('explicit choices apply; keep on MLX CPU warns why it is slow', () => {
    assert.equal(resolveWeightPrecision('native', 'float32', 'dequantize').keepQuantized, false);
    assert.equal(resolveWeightPrecision('mlx-metal', 'auto', 'dequantize').keepQuantized, false);
    const keep = resolveWeightPrecision('mlx-cpu', 'auto', 'keep');
    assert.equal(keep.keepQuantized, true);
    assert.match(keep.warning ?? '', /quantized matmul is scalar/);
    assert.equal(resolveWeightPrecision('mlx-metal', 'bfloat16', 'keep').dtype, 'bfloat16');
    assert.equal(resolveWeightPrecision('mlx-metal', 'float16', 'auto').dtype, 'float16');
  });

  test('float16 and bfloat16 are refused on every CPU path, saying why', () => {
    for (const device of ['native', 'mlx-cpu', 'cpu'] as const)
      for (const dtype of ['float16', 'bfloat16'] as const) {
        const why = dtypeRefusal(dtype, device);
        assert.match(why ?? '', new RegExp(`--dtype ${dtype} cannot run on a CPU: MLX's CPU matmul computes only float32`));
        if (device !== 'cpu') assert.throws(() => resolveWeightPrecision(device, dtype, 'auto'), /cannot run on a CPU/);
      }
    assert.equal(dtypeRefusal('float32', 'native'), undefined);
    assert.equal(dtypeRefusal('auto', 'mlx-cpu'), undefined);
    assert.equal(metalPossible('linux', 'x64'), false);
    assert.equal(metalPossible('darwin', 'arm64'), true);
  });
});

describe('--dtype and --quantization', () => {
  test('map onto the engine options; auto by default', async () => {
    const defaults = (await parseCli()).serve as ServeFlags;
    assert.equal(engineOptions(defaults).dtype, 'auto');
    assert.equal(engineOptions(defaults).quantization, 'auto');
    assert.deepEqual(engineOptions(defaults), DEFAULT_ENGINE_OPTIONS);
    const flags = (await parseCli('--dtype', 'bfloat16', '--quantization', 'dequantize')).serve as ServeFlags;
    assert.deepEqual(engineOptions(flags), { ...DEFAULT_ENGINE_OPTIONS, dtype: 'bfloat16', quantization: 'dequantize' });
    assert.equal(engineOptions((await parseCli('--quantization', 'keep')).serve as ServeFlags).quantization, 'keep');
    assert.equal(engineOptions((await parseCli('--dtype', 'float32')).serve as ServeFlags).dtype, 'float32');
  });

  test('other values are refused naming the flag and the choices', async () => {
    for (const args of [
      ['--dtype', 'float64'],
      ['--dtype', 'half'],
      ['--quantization', 'int4'],
      ['--quantization', 'yes'],
    ]) {
      const { serve, error } = await parseCli(...args);
      assert.equal(serve, undefined, `${args.join(' ')} was accepted`);
      assert.match(error, new RegExp(`${args[0]}.*Allowed choices`, 's'), error);
    }
  });

  test('--dtype float16 without Metal: the executable exits with status 1 before loading anything, saying why', async (t) => {
    if (metalPossible()) return t.skip('Metal may run float16 here');
    await assert.rejects(
      promisify(execFile)(process.execPath, [
        BIN,
        '--model',
        join(dir, 'no-such-model'),
        '--dtype',
        'float16',
        '--port',
        '0',
        '--grpc-port',
        '0',
      ]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /--dtype float16 cannot run on a CPU: MLX's CPU matmul computes only float32/);
        return true;
      },
    );
  });
});

/** A tiny llama GGUF: Q4_0 and Q8_0 projections, a Q8_0 embedding and output, F32 norms. */
function writeQuantGguf(): string {
  const H = 128;
  const I = 256;
  const HEADS = 4;
  const KV_HEADS = 2;
  const D = H / HEADS;
  const VOCAB = 288;
  let seed = 11;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const tensors: TensorSpec[] = [];
  const layout: [string, number, number, number][] = [['token_embd.weight', GGML.Q8_0, VOCAB, H]];
  for (let l = 0; l < 2; l++) {
    const q = l === 0 ? GGML.Q4_0 : GGML.Q8_0;
    layout.push(
      [`blk.${l}.attn_q.weight`, q, HEADS * D, H],
      [`blk.${l}.attn_k.weight`, q, KV_HEADS * D, H],
      [`blk.${l}.attn_v.weight`, q, KV_HEADS * D, H],
      [`blk.${l}.attn_output.weight`, GGML.Q8_0, H, HEADS * D],
      [`blk.${l}.ffn_gate.weight`, q, I, H],
      [`blk.${l}.ffn_up.weight`, q, I, H],
      [`blk.${l}.ffn_down.weight`, GGML.Q4_0, H, I],
    );
  }
  layout.push(['output.weight', GGML.Q4_0, VOCAB, H]);
  for (const [name, type, rows, cols] of layout)
    tensors.push({ name, ne: [cols, rows], type, data: randomQuantBlocks(type, rows * cols, random) });
  tensors.push(...randomNormTensors(2, H, random));
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
  const path = join(dir, 'tiny-q4_0-q8_0.gguf');
  writeFileSync(path, ggufFile(kvs, tensors));
  return path;
}

/** Greedy tokens of a few prompts decoded together (the engine stops only at maxTokens: no stop ids). */
function greedyTokens(model: LoadedModel, prompts: number[][], maxTokens: number): number[][] {
  const out = prompts.map((): number[] => []);
  const core = new EngineCore(model, { ...DEFAULT_ENGINE_OPTIONS, batchSize: prompts.length, prefixCache: false }, (e: EngineEvent) => {
    if (e.type === 'tokens') out[Number(e.requestId)].push(...e.tokenIds);
  });
  prompts.forEach((p, i) =>
    core.submit({
      id: String(i),
      promptTokenIds: p,
      sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens },
    }),
  );
  while (core.hasWork()) core.step();
  return out;
}

describe('--quantization on the native path', () => {
  test('dequantize decodes the same greedy tokens as keep and holds more bytes of weights', async () => {
    const path = writeQuantGguf();
    const load = (quantization: QuantizationMode) =>
      loadModel({ id: 'tiny', format: 'gguf', path }, { cacheDir: join(dir, 'cache'), cpuKernels: 'native', quantization });
    const keep = await load('keep');
    const dequantized = await load('dequantize');
    assert.ok(keep.native && dequantized.native, keep.fallbackReason);
    assert.match(keep.precision, /kept quantized/);
    assert.match(dequantized.precision, /dequantized at load/);
    // Q4_0 as the kernels hold it: 20 bytes per 32 values, Q8_0 36, f32 128; the dequantized model
    // holds every projection and the embedding in f32.
    assert.ok(dequantized.weightBytes > 3 * keep.weightBytes, `weights ${keep.weightBytes} kept vs ${dequantized.weightBytes} dequantized`);
    const prompts = [
      [5, 77, 130, 9, 200, 31, 64, 2],
      [256, 100, 101, 102],
      [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50],
    ];
    const a = greedyTokens(keep, prompts, 12);
    const b = greedyTokens(dequantized, prompts, 12);
    assert.equal(a[0].length, 12);
    assert.deepEqual(b, a);
    // The default on the native path keeps them.
    const auto = await loadModel({ id: 'tiny', format: 'gguf', path }, { cacheDir: join(dir, 'cache'), cpuKernels: 'native' });
    assert.equal(auto.weightBytes, keep.weightBytes);
  });
});

/** An MLX 4-bit directory of a tiny llama (group size 64), and the same weights dequantized. */
function writeMlx4Bit(): string {
  const config = {
    ...tinyConfig({ hiddenSize: 256, intermediateSize: 256, numHeads: 4, numKvHeads: 2, vocabSize: TINY_VOCAB, tieWordEmbeddings: true }),
    quantization: { group_size: 64, bits: 4 },
  };
  const quantized: Record<string, MxArray> = {};
  for (const [name, w] of Object.entries(tinyWeights(config, 9))) {
    if (w.ndim !== 2) {
      quantized[name] = w;
      continue;
    }
    const [q, s, b] = mx.quantize(w, 64, 4) as unknown as MxArray[];
    const base = name.replace(/\.weight$/, '');
    quantized[`${base}.weight`] = q;
    quantized[`${base}.scales`] = s.astype(mx.float16);
    quantized[`${base}.biases`] = b.astype(mx.float16);
  }
  const out = mkdtempSync(join(dir, 'mlx-q4-'));
  writeFileSync(join(out, 'config.json'), JSON.stringify(config));
  mx.saveSafetensors(join(out, 'model.safetensors'), quantized);
  writeTinyTokenizer(out);
  return out;
}

function mlxLogits(model: LoadedModel, tokens: number[]): Float32Array {
  const t = model.transformer as NonNullable<LoadedModel['transformer']>;
  const batch = new PrefillBatch(t.config, t.rope, [{ tokens }]);
  const logits = t.logits(t.forward(batch.prepareStep(tokens.length).tokens, batch));
  mx.eval(logits);
  return Float32Array.from((logits.tolist() as number[][]).flat());
}

describe("--quantization on MLX's CPU backend", () => {
  test('keep (quantizedMatmul, quantized embedding) gives logits close to dequantize, in fewer bytes', async () => {
    const path = writeMlx4Bit();
    const load = (quantization: QuantizationMode, kernels: CpuKernels = 'mlx') =>
      loadModel({ id: 'tiny-mlx4', format: 'hf', path }, { cacheDir: dir, cpuKernels: kernels, quantization });
    const keep = await load('keep');
    const dequantized = await load('dequantize');
    const auto = await load('auto');
    assert.ok(keep.transformer && dequantized.transformer);
    assert.match(keep.precisionWarning ?? '', /quantized matmul is scalar/);
    assert.equal(dequantized.precisionWarning, undefined);
    assert.equal(keep.transformer.weights.layers[0].qkv.kind, 'quantized');
    assert.equal(keep.transformer.weights.embed.kind, 'quantized');
    assert.equal(keep.transformer.weights.lmHead.kind, 'quantized');
    assert.equal(dequantized.transformer.weights.layers[0].qkv.kind, 'dense');
    assert.equal(auto.weightBytes, dequantized.weightBytes, 'MLX on a CPU dequantizes by default');
    assert.ok(keep.weightBytes * 3 < dequantized.weightBytes, `weights ${keep.weightBytes} kept vs ${dequantized.weightBytes}`);
    const prompt = [5, 77, 130, 9, 200, 31, 64, 2, 257, 100];
    const a = mlxLogits(keep, prompt);
    const b = mlxLogits(dequantized, prompt);
    let max = 0;
    let spread = 0;
    for (let i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
      spread = Math.max(spread, Math.abs(b[i]));
    }
    assert.ok(spread > 0.1, `logits spread ${spread}`);
    assert.ok(max < 1e-3, `max |keep − dequantize| ${max}`);
  });

  test("--dtype float16 / bfloat16 (the Metal code path) build weights in that dtype; auto takes the checkpoint's", () => {
    const path = writeMlx4Bit();
    const dtypes = (t: ReturnType<typeof loadHfTransformer>) =>
      new Set(
        [t.weights.finalNorm, t.weights.layers[0].attnNorm, ...linearArrays(t.weights.layers[0].qkv).slice(1)].map((a) => String(a.dtype)),
      );
    for (const dtype of [mx.float16, mx.bfloat16]) {
      const kept = loadHfTransformer(path, { keepQuantized: true, dtype });
      assert.deepEqual(dtypes(kept), new Set([String(dtype)]));
      const dense = loadHfTransformer(path, { keepQuantized: false, dtype });
      assert.equal(String((dense.weights.embed as { table: MxArray }).table.dtype), String(dtype));
      assert.deepEqual(dtypes(dense), new Set([String(dtype)]));
    }
    // The checkpoint's: its scales are float16.
    assert.deepEqual(dtypes(loadHfTransformer(path, { keepQuantized: true, dtype: 'checkpoint' })), new Set(['float16']));
    assert.deepEqual(dtypes(loadHfTransformer(path, { keepQuantized: true })), new Set(['float32']));
  });
});
