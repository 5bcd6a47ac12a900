import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GgufFormatError, ggmlBlockLayout, readGguf } from '../src/engine/gguf.ts';
import { configFromGguf } from '../src/engine/model/config.ts';
import { ggufFile, T, type Kv } from './helpers/gguf-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'gguf-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
function writeTemp(bytes: Buffer): string {
  const path = join(dir, `f${fileCount++}.gguf`);
  writeFileSync(path, bytes);
  return path;
}

function f32(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}

const llamaKvs: Kv[] = [
  { key: 'general.architecture', type: T.STRING, value: 'llama' },
  { key: 'llama.context_length', type: T.U32, value: 2048 },
  { key: 'llama.embedding_length', type: T.U32, value: 64 },
  { key: 'llama.block_count', type: T.U32, value: 2 },
  { key: 'llama.feed_forward_length', type: T.U32, value: 128 },
  { key: 'llama.attention.head_count', type: T.U32, value: 4 },
  { key: 'llama.attention.head_count_kv', type: T.U32, value: 2 },
  { key: 'llama.rope.freq_base', type: T.F32, value: 10000 },
  { key: 'llama.attention.layer_norm_rms_epsilon', type: T.F32, value: 1e-5 },
];

describe('readGguf on a file written by the test', () => {
  test('reads every metadata value type', async () => {
    const path = writeTemp(
      ggufFile([
        { key: 'u8', type: T.U8, value: 200 },
        { key: 'i8', type: T.I8, value: -5 },
        { key: 'u16', type: T.U16, value: 60000 },
        { key: 'i16', type: T.I16, value: -300 },
        { key: 'u32', type: T.U32, value: 4000000000 },
        { key: 'i32', type: T.I32, value: -2000000000 },
        { key: 'f32', type: T.F32, value: 0.5 },
        { key: 'bool', type: T.BOOL, value: true },
        { key: 'string', type: T.STRING, value: 'héllo 🎉' },
        { key: 'u64', type: T.U64, value: 2n ** 40n },
        { key: 'u64.big', type: T.U64, value: 2n ** 60n },
        { key: 'i64', type: T.I64, value: -7n },
        { key: 'f64', type: T.F64, value: 1.25 },
        { key: 'strings', type: T.ARRAY, itemType: T.STRING, value: ['a', '', 'Ġb', '<0x0A>'] },
        { key: 'ints', type: T.ARRAY, itemType: T.I32, value: [1, -2, 3] },
      ]),
    );
    const file = await readGguf(path);
    assert.equal(file.version, 3);
    assert.deepEqual(file.tensors, []);
    assert.deepEqual(file.metadata, {
      u8: 200,
      i8: -5,
      u16: 60000,
      i16: -300,
      u32: 4000000000,
      i32: -2000000000,
      f32: 0.5,
      bool: true,
      string: 'héllo 🎉',
      u64: 2 ** 40,
      'u64.big': 2n ** 60n,
      i64: -7,
      f64: 1.25,
      strings: ['a', '', 'Ġb', '<0x0A>'],
      ints: [1, -2, 3],
    });
  });

  test('reads tensor infos: numpy-order shape, type, absolute offset, byte length', async () => {
    const q41 = Buffer.alloc(2 * 20, 7); // two Q4_1 blocks of 32 elements
    const path = writeTemp(
      ggufFile(llamaKvs, [
        { name: 'a.weight', ne: [3, 2], type: 0, data: f32([1, 2, 3, 4, 5, 6]) },
        { name: 'b.weight', ne: [32, 2], type: 3, data: q41 },
        { name: 'c.bias', ne: [5], type: 0, data: f32([9, 8, 7, 6, 5]) },
      ]),
    );
    const file = await readGguf(path);
    assert.deepEqual(
      file.tensors.map(({ name, shape, type, typeName, byteLength }) => ({ name, shape, type, typeName, byteLength })),
      [
        { name: 'a.weight', shape: [2, 3], type: 0, typeName: 'F32', byteLength: 24 },
        { name: 'b.weight', shape: [2, 32], type: 3, typeName: 'Q4_1', byteLength: 40 },
        { name: 'c.bias', shape: [5], type: 0, typeName: 'F32', byteLength: 20 },
      ],
    );
    assert.equal(file.tensorDataOffset % 32, 0);
    // The offsets point at the bytes the writer put there.
    const bytes = readFileSync(path);
    const a = file.tensors[0];
    assert.deepEqual(bytes.subarray(a.offset, a.offset + a.byteLength), f32([1, 2, 3, 4, 5, 6]));
    const c = file.tensors[2];
    assert.deepEqual(bytes.subarray(c.offset, c.offset + c.byteLength), f32([9, 8, 7, 6, 5]));
    assert.deepEqual(bytes.subarray(file.tensors[1].offset, file.tensors[1].offset + 40), q41);
  });

  test('honours general.alignment', async () => {
    const path = writeTemp(
      ggufFile(
        [{ key: 'general.alignment', type: T.U32, value: 64 }],
        [
          { name: 'x', ne: [3], type: 0, data: f32([1, 2, 3]) },
          { name: 'y', ne: [2], type: 0, data: f32([4, 5]) },
        ],
        64,
      ),
    );
    const file = await readGguf(path);
    assert.equal(file.tensorDataOffset % 64, 0);
    assert.equal(file.tensors[1].offset - file.tensors[0].offset, 64);
  });

  test('rejects a file that is not GGUF, is missing, or whose tensor runs past its end', async () => {
    const notGguf = join(dir, 'not.gguf');
    writeFileSync(notGguf, 'this is not a model');
    await assert.rejects(readGguf(notGguf), (e: Error) => e instanceof GgufFormatError && /not a GGUF file/.test(e.message));
    await assert.rejects(readGguf(join(dir, 'missing.gguf')), (e: Error) => e instanceof GgufFormatError && /cannot read/.test(e.message));
    const whole = ggufFile([], [{ name: 'big', ne: [64], type: 0, data: f32(new Array(64).fill(1)) }]);
    const truncated = writeTemp(whole.subarray(0, whole.length - 16));
    await assert.rejects(readGguf(truncated), (e: Error) => e instanceof GgufFormatError && /tensor big .*past the end/.test(e.message));
  });

  test('ggml block layouts match the formats this project dequantizes', () => {
    assert.deepEqual(ggmlBlockLayout(0), { blockElements: 1, blockBytes: 4 });
    assert.deepEqual(ggmlBlockLayout(1), { blockElements: 1, blockBytes: 2 });
    assert.deepEqual(ggmlBlockLayout(3), { blockElements: 32, blockBytes: 20 });
    assert.deepEqual(ggmlBlockLayout(8), { blockElements: 32, blockBytes: 34 });
    assert.deepEqual(ggmlBlockLayout(12), { blockElements: 256, blockBytes: 144 });
    assert.throws(() => ggmlBlockLayout(99), /unknown ggml tensor type 99/);
  });
});

describe('the model configuration a GGUF header gives', () => {
  test('reads the llama-family keys from a written file', async () => {
    const path = writeTemp(
      ggufFile([
        ...llamaKvs,
        { key: 'llama.rope.scaling.type', type: T.STRING, value: 'linear' },
        { key: 'llama.rope.scaling.factor', type: T.F32, value: 4 },
        { key: 'llama.vocab_size', type: T.U32, value: 320 },
      ]),
    );
    const c = configFromGguf((await readGguf(path)).metadata, 999, false);
    assert.deepEqual(c, {
      architecture: 'llama',
      vocabSize: 320,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 128,
      rmsNormEps: Math.fround(1e-5),
      ropeTheta: 10000,
      ropeScaling: { type: 'linear', factor: 4 },
      contextLength: 2048,
      tieWordEmbeddings: true,
      attentionBias: false,
    });
  });

  test("uses llama.cpp's defaults for optional keys, under the architecture's prefix", () => {
    const c = configFromGguf(
      {
        'general.architecture': 'qwen2',
        'qwen2.context_length': 4096,
        'qwen2.embedding_length': 96,
        'qwen2.block_count': 3,
        'qwen2.feed_forward_length': 256,
        'qwen2.attention.head_count': 6,
        'qwen2.attention.layer_norm_rms_epsilon': 1e-6,
      },
      500,
      true,
    );
    assert.equal(c.numKvHeads, 6);
    assert.equal(c.headDim, 16);
    assert.equal(c.ropeTheta, 10000);
    assert.equal(c.ropeScaling, undefined);
    assert.equal(c.vocabSize, 500, "the tokenizer's size when the header has none");
    assert.equal(c.tieWordEmbeddings, false);
  });

  test('a missing key or an unknown architecture is an error naming it', () => {
    const base = Object.fromEntries(llamaKvs.map((kv) => [kv.key, kv.value]));
    const without = (key: string) => Object.fromEntries(Object.entries(base).filter(([k]) => k !== key));
    assert.throws(() => configFromGguf(without('llama.block_count'), 10, false), /"llama.block_count"/);
    assert.throws(
      () => configFromGguf(without('general.architecture'), 10, false),
      /unsupported GGUF architecture ""; supported: llama, .*qwen2/,
    );
    assert.throws(() => configFromGguf({ ...base, 'llama.embedding_length': 'wide' }, 10, false), /"llama.embedding_length"/);
  });
});

const realGguf = process.env.SMOLLM2_GGUF;
describe('readGguf on the default model (SmolLM2-135M-Instruct Q4_1)', {
  skip: realGguf ? false : 'SMOLLM2_GGUF (path to SmolLM2-135M-Instruct.Q4_1.gguf) is not set',
}, () => {
  test('metadata, hyperparameters and tensor layout', async () => {
    const file = await readGguf(realGguf!);
    assert.equal(file.metadata['general.architecture'], 'llama');
    assert.equal((file.metadata['tokenizer.ggml.tokens'] as string[]).length, 49152);
    assert.equal((file.metadata['tokenizer.ggml.merges'] as string[]).length, 48900);
    const c = configFromGguf(file.metadata, 49152, false);
    assert.deepEqual(
      { ...c, rmsNormEps: undefined },
      {
        architecture: 'llama',
        vocabSize: 49152,
        hiddenSize: 576,
        numLayers: 30,
        numHeads: 9,
        numKvHeads: 3,
        headDim: 64,
        intermediateSize: 1536,
        rmsNormEps: undefined,
        ropeTheta: 100000,
        ropeScaling: undefined,
        contextLength: 8192,
        tieWordEmbeddings: true,
        attentionBias: false,
      },
    );
    assert.ok(Math.abs(c.rmsNormEps - 1e-5) < 1e-10);
    assert.equal(file.tensors.length, 272);
    const embedding = file.tensors.find((t) => t.name === 'token_embd.weight')!;
    assert.deepEqual(embedding.shape, [49152, 576]);
    // Tensors are laid out back to back (with alignment padding) and the last one ends the file.
    const sorted = [...file.tensors].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i].offset >= sorted[i - 1].offset + sorted[i - 1].byteLength);
    const last = sorted[sorted.length - 1];
    assert.equal(last.offset + last.byteLength, statSync(realGguf!).size);
  });
});
