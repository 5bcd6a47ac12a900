// The native CPU kernels against plain references, on random shapes and blocks, for every kernel
// variant this CPU runs (generic, avx2, avx512): dequantization is bit-exact (w = d·q + m rounded
// once to f32, as MLX dequantizes), and y = x·Wᵀ agrees with a float64 sum within float32
// rounding of the terms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cpuKernels, type NativeWeightType } from '../src/engine/native/cpu-kernels.ts';
import { rowBytes } from '../src/engine/native/native-weights.ts';

const addon = cpuKernels();

function halfToFloat(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

interface Case {
  type: NativeWeightType;
  rows: number;
  cols: number;
  M: number;
  data: Uint8Array;
  x: Float32Array;
}

/** The values a matrix stands for, decoded independently of the addon. */
function decode(c: Case): Float64Array {
  const out = new Float64Array(c.rows * c.cols);
  if (c.type === 'F32') {
    out.set(new Float32Array(c.data.buffer, c.data.byteOffset, c.rows * c.cols));
    return out;
  }
  const bb = c.type === 'Q4' ? 20 : 36;
  const view = new DataView(c.data.buffer, c.data.byteOffset, c.data.byteLength);
  for (let b = 0; b < (c.rows * c.cols) / 32; b++) {
    const d = halfToFloat(view.getUint16(b * bb, true));
    const m = halfToFloat(view.getUint16(b * bb + 2, true));
    for (let j = 0; j < 32; j++) {
      const byte = c.data[b * bb + 4 + (c.type === 'Q4' ? j % 16 : j)];
      const q = c.type === 'Q8' ? byte : j < 16 ? byte & 15 : byte >> 4;
      out[b * 32 + j] = Math.fround(d * q + m);
    }
  }
  return out;
}

/** A random matrix of `type` with f16 scales in a sane range (|w| ≲ 8). */
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    type: fc.constantFrom<NativeWeightType>('Q4', 'Q8', 'F32'),
    rows: fc.integer({ min: 1, max: 70 }),
    blocks: fc.integer({ min: 1, max: 6 }),
    extraCols: fc.integer({ min: 0, max: 31 }),
    M: fc.integer({ min: 1, max: 21 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map(({ type, rows, blocks, extraCols, M, seed }) => {
    let s = seed >>> 0;
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    // F32 matrices may have any width; quantized ones are whole blocks.
    const cols = blocks * 32 + (type === 'F32' ? extraCols : 0);
    const data = new Uint8Array(rows * rowBytes(type, cols));
    if (type === 'F32') {
      const f = new Float32Array(data.buffer);
      for (let i = 0; i < f.length; i++) f[i] = (next() / 2 ** 32) * 4 - 2;
    } else {
      const bb = type === 'Q4' ? 20 : 36;
      const view = new DataView(data.buffer);
      for (let b = 0; b < (rows * cols) / 32; b++) {
        const scale = ((next() & 1 ? 0x8000 : 0) | ((9 + (next() % 4)) << 10) | (next() % 1024)) & 0xffff;
        view.setUint16(b * bb, scale, true);
        view.setUint16(b * bb + 2, ((next() & 1 ? 0x8000 : 0) | ((10 + (next() % 4)) << 10) | (next() % 1024)) & 0xffff, true);
        for (let j = 4; j < bb; j++) data[b * bb + j] = next() & 0xff;
      }
    }
    const x = Float32Array.from({ length: M * cols }, () => (next() / 2 ** 32) * 2 - 1);
    return { type, rows, cols, M, data, x };
  });

test('the addon is built and picks a kernel variant this CPU runs', () => {
  assert.ok(addon, 'native/cpu-kernels/build/cpu-kernels.node must be built (scripts/setup.sh)');
  assert.ok(addon.kernelVariants.includes('generic'));
  assert.ok(addon.kernelVariants.includes(addon.kernels));
});

test('dequantization of Q4 and Q8 blocks is bit-exact', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      if (c.type === 'F32') return;
      const got = addon!.dequantBlocks(c.type, c.rows, c.cols, c.data);
      const want = decode(c);
      for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `value ${i}`);
    }),
    { numRuns: 60 },
  );
});

for (const variant of addon?.kernelVariants ?? ['generic']) {
  test(`matmul (${variant}): every type, any rows, 1-21 activation rows, against a float64 sum`, () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 3 }), (c, threads) => {
        const { y } = addon!.kernelMatmul(variant, c.type, c.rows, c.cols, c.data, c.x, c.M, threads, 1);
        const w = decode(c);
        for (let m = 0; m < c.M; m++) {
          for (let n = 0; n < c.rows; n++) {
            let sum = 0;
            let magnitude = 0;
            for (let k = 0; k < c.cols; k++) {
              const term = c.x[m * c.cols + k] * w[n * c.cols + k];
              sum += term;
              magnitude += Math.abs(term);
            }
            const err = Math.abs(y[m * c.rows + n] - sum);
            assert.ok(
              err <= 1e-5 * magnitude + 1e-6,
              `${c.type} [${c.rows}×${c.cols}] M=${c.M}: y[${m}][${n}] = ${y[m * c.rows + n]}, expected ${sum}`,
            );
          }
        }
      }),
      { numRuns: 80 },
    );
  });
}

test('results do not depend on the batch: a row gives the same bits alone and among others', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const together = addon!.kernelMatmul(addon!.kernels, c.type, c.rows, c.cols, c.data, c.x, c.M, 2, 1).y;
      for (const m of [0, c.M - 1]) {
        const alone = addon!.kernelMatmul(
          addon!.kernels,
          c.type,
          c.rows,
          c.cols,
          c.data,
          c.x.slice(m * c.cols, (m + 1) * c.cols),
          1,
          1,
          1,
        ).y;
        assert.deepEqual(alone, together.slice(m * c.rows, (m + 1) * c.rows));
      }
    }),
    { numRuns: 40 },
  );
});

test('bad arguments are JavaScript errors, not crashes', () => {
  const a = addon!;
  assert.throws(() => a.kernelMatmul('generic', 'Q4', 2, 33, new Uint8Array(10), new Float32Array(33), 1, 1, 1), /invalid shape/);
  assert.throws(() => a.kernelMatmul('generic', 'Q4', 1, 32, new Uint8Array(19), new Float32Array(32), 1, 1, 1), /wrong size/);
  assert.throws(() => a.kernelMatmul('nonesuch', 'Q4', 1, 32, new Uint8Array(20), new Float32Array(32), 1, 1, 1), /cannot run/);
  assert.throws(() => a.dequantBlocks('Q8', 1, 32, new Uint8Array(20)), /wrong size/);
});

for (const variant of addon?.kernelVariants ?? ['generic']) {
  test(`lora_expand (${variant}): y += t·Bᵀ over each rank row's columns only, any shape and thread count`, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 90 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (M, rank, out, threads, seed) => {
          let s = seed;
          const next = () => {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            return s / 2 ** 32 - 0.5;
          };
          const t = Float32Array.from({ length: M * rank }, next);
          const bt = Float32Array.from({ length: rank * out }, next);
          const begin = Int32Array.from({ length: rank }, () => Math.floor((next() + 0.5) * out));
          const end = Int32Array.from(begin, (b) => b + Math.floor((next() + 0.5) * (out - b + 1)));
          const y = Float32Array.from({ length: M * out }, next);
          const want = Float64Array.from(y);
          for (let m = 0; m < M; m++)
            for (let k = 0; k < rank; k++) for (let n = begin[k]; n < end[k]; n++) want[m * out + n] += t[m * rank + k] * bt[k * out + n];
          addon!.kernelLoraExpand(variant, t, M, rank, bt, out, begin, end, y, threads);
          y.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-5, `y[${i}] = ${v}, expected ${want[i]}`));
        },
      ),
      { numRuns: 60 },
    );
  });
}
