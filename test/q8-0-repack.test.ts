// Q5_0 and IQ4_NL blocks rewritten as Q8_0 decode to exactly the f32 values of the original blocks
// (the dequantizers gguf-dequantize.test.ts holds to ggml's), with random and edge-case f16 scales;
// and the GGUF conversion gives such tensors the same entries as the equivalent Q8_0 tensor, whose
// affine decoding (scale·q + bias in f32, as MLX and the native kernels compute it) is those values.
// (One exception, shared by every Q8_0 and Q4_0 tensor: where q is 0 under a negative scale, ggml's
// d·0 is −0 and the affine (q + 128)·d − 128·d is +0. A matrix product cannot tell them apart: its
// sums start at +0, and adding a zero of either sign leaves any sum unchanged.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readGguf } from '../src/engine/gguf.ts';
import { convertGgufTensors } from '../src/engine/model/gguf-tensors.ts';
import { dequantize } from '../src/engine/quant/dequantize.ts';
import { halfToFloat } from '../src/engine/quant/f16.ts';
import { iq4nlToQ8_0, q5_0ToQ8_0 } from '../src/engine/quant/q8-0-repack.ts';
import { GGML, ggufFile, randomQuantBlocks } from './helpers/gguf-writer.ts';

const BLOCKS = 4096;
const TYPES = [
  { name: 'Q5_0', type: GGML.Q5_0, blockBytes: 22, repack: q5_0ToQ8_0 },
  { name: 'IQ4_NL', type: GGML.IQ4_NL, blockBytes: 18, repack: iq4nlToQ8_0 },
];
/** f16 scales: ±0, the smallest subnormal, a subnormal, 1, the largest finite, then random finite ones. */
const EDGE_SCALES = [0x0000, 0x8000, 0x0001, 0x83ff, 0x3c00, 0x7bff, 0xfbff];

function lcg(seed: number): () => number {
  return () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Random blocks whose scales span every finite f16, the edge cases first. */
function blocksWithScales(type: number, blockBytes: number, random: () => number): Buffer {
  const src = randomQuantBlocks(type, BLOCKS * 32, random);
  for (let b = 0; b < BLOCKS; b++) {
    let d = b < EDGE_SCALES.length ? EDGE_SCALES[b] : Math.floor(random() * 0x10000);
    if ((d & 0x7c00) === 0x7c00) d &= 0xbfff;
    src.writeUInt16LE(d, b * blockBytes);
  }
  return src;
}

/** Q8_0 decoded as ggml's dequantize_row_q8_0 does (d·q in f32), apart from the code under test. */
function decodeQ8_0(data: Uint8Array): Float32Array {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float32Array((data.byteLength / 34) * 32);
  for (let b = 0; b < out.length / 32; b++) {
    const d = halfToFloat(buf.readUInt16LE(b * 34));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = buf.readInt8(b * 34 + 2 + j) * d;
  }
  return out;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/**
 * Index and bits of the first value that differs, or undefined when all are bit-identical (or, with
 * `signedZeros` false, identical but for the sign of zeros).
 */
function firstDifference(actual: Float32Array, expected: Float32Array, signedZeros = true): string | undefined {
  const a = bits(actual);
  const e = bits(expected);
  if (a.length !== e.length) return `length ${a.length} vs ${e.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i] || (!signedZeros && actual[i] === 0 && expected[i] === 0)) continue;
    return `value ${i}: 0x${a[i].toString(16)} (${actual[i]}) vs 0x${e[i].toString(16)} (${expected[i]})`;
  }
  return undefined;
}

describe('Q5_0 and IQ4_NL as Q8_0 blocks', () => {
  for (const [i, t] of TYPES.entries()) {
    test(`${t.name}: ${BLOCKS} random blocks decode to the same f32 bits as the ${t.name} dequantizer`, () => {
      const src = blocksWithScales(t.type, t.blockBytes, lcg(11 + i));
      const q8 = t.repack(src);
      assert.equal(q8.byteLength, BLOCKS * 34);
      assert.equal(firstDifference(decodeQ8_0(q8), dequantize(t.type, src, BLOCKS * 32)), undefined);
    });
  }

  test('a partial block is refused', () => {
    assert.throws(() => q5_0ToQ8_0(new Uint8Array(23)), RangeError);
    assert.throws(() => iq4nlToQ8_0(new Uint8Array(17)), RangeError);
  });
});

describe('GGUF conversion of Q5_0 and IQ4_NL tensors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'q8-0-repack-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ROWS = 8;
  const COLS = 96;

  /** Affine entries decoded as MLX's dequantize and the native kernels do: scale·q + bias in f32. */
  function decodeAffine(entries: ReturnType<typeof convertGgufTensors>, base: string): Float32Array {
    const w = entries.get(`${base}.weight`);
    const s = entries.get(`${base}.scales`);
    const b = entries.get(`${base}.biases`);
    assert.ok(w && s && b, `${base}: weight, scales and biases`);
    assert.deepEqual([w.dtype, w.shape], ['U32', [ROWS, COLS / 4]], '8-bit words');
    assert.deepEqual([s.dtype, s.shape, b.dtype, b.shape], ['F16', [ROWS, COLS / 32], 'F16', [ROWS, COLS / 32]]);
    const scales = Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength);
    const biases = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
    const out = new Float32Array(ROWS * COLS);
    for (let i = 0; i < out.length; i++) {
      const g = i >> 5;
      out[i] = Math.fround(halfToFloat(scales.readUInt16LE(g * 2)) * w.data[i]) + halfToFloat(biases.readUInt16LE(g * 2));
    }
    return out;
  }

  test('they become the entries of the same values written as Q8_0, which decode to them bit for bit', async () => {
    const random = lcg(5);
    const specs = TYPES.flatMap((t) => {
      const data = randomQuantBlocks(t.type, ROWS * COLS, random);
      // Negative scales in every other block (llama-quantize writes both signs).
      for (let b = 1; b < (ROWS * COLS) / 32; b += 2) data[b * t.blockBytes + 1] |= 0x80;
      return [
        { name: `${t.name}.weight`, ne: [COLS, ROWS], type: t.type, data },
        { name: `${t.name}_as_q8_0.weight`, ne: [COLS, ROWS], type: GGML.Q8_0, data: Buffer.from(t.repack(data)) },
      ];
    });
    const path = join(dir, 'mixed.gguf');
    writeFileSync(path, ggufFile([], specs));
    const entries = convertGgufTensors(path, (await readGguf(path)).tensors);
    for (const t of TYPES) {
      for (const part of ['weight', 'scales', 'biases'])
        assert.deepEqual(entries.get(`${t.name}.${part}`), entries.get(`${t.name}_as_q8_0.${part}`), `${t.name}.${part}`);
      const original = specs.find((s) => s.name === `${t.name}.weight`)?.data as Buffer;
      const expected = dequantize(t.type, original, ROWS * COLS);
      assert.equal(firstDifference(decodeQ8_0(t.repack(original)), expected), undefined);
      assert.equal(firstDifference(decodeAffine(entries, t.name), expected, false), undefined);
    }
  });

  test('a tensor with a scale too large for the Q8_0 bias (−128·d beyond f16) stays exact as f32', async () => {
    const data = randomQuantBlocks(GGML.Q5_0, ROWS * COLS, lcg(9));
    data.writeUInt16LE(0x6000, 22 * 5); // d = 512: −128·d = −65536 is not an f16
    const path = join(dir, 'large-scale.gguf');
    writeFileSync(path, ggufFile([], [{ name: 'big.weight', ne: [COLS, ROWS], type: GGML.Q5_0, data }]));
    const entries = convertGgufTensors(path, (await readGguf(path)).tensors);
    const w = entries.get('big.weight');
    assert.ok(w);
    assert.deepEqual([w.dtype, w.shape, entries.has('big.scales')], ['F32', [ROWS, COLS], false]);
    const values = new Float32Array(w.data.slice().buffer);
    assert.equal(firstDifference(values, dequantize(GGML.Q5_0, data, ROWS * COLS)), undefined);
  });
});
