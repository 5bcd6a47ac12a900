// The K-quant, Q5_0/Q5_1 and IQ4_NL dequantizers against ggml's own, bit for bit: the fixture
// (scripts/reference/make_quant_fixture.py) holds what gguf-py 0.19.0, a port of ggml-quants.c's
// dequantize_row_* that is bit-exact with it, decodes from blocks with edge-case and random f16
// scales, and a SHA-256 of what it decodes from 1,024 pseudo-random blocks per type.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ggmlBlockLayout } from '../src/engine/gguf.ts';
import { dequantize, GGML_DEQUANTIZERS } from '../src/engine/quant/dequantize.ts';

interface TypeFixture {
  type: number;
  blockElements: number;
  blockBytes: number;
  scaleFields: number[];
  blocks: string;
  values: string;
  bulk: { blocks: number; sha256: string };
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/gguf-dequantize.json', import.meta.url), 'utf8')) as {
  gguf: string;
  types: Record<string, TypeFixture>;
};

function bytes(base64: string): Uint8Array {
  const b = Buffer.from(base64, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The script's pseudo-random blocks: SHA-256 in counter mode, f16 scales made finite. */
function counterBlocks(name: string, f: TypeFixture): Uint8Array {
  const n = f.bulk.blocks * f.blockBytes;
  const out = new Uint8Array(n);
  for (let i = 0, at = 0; at < n; i++, at += 32) {
    const digest = createHash('sha256').update(`${name}:${i}`).digest();
    out.set(digest.subarray(0, Math.min(32, n - at)), at);
  }
  for (let b = 0; b < f.bulk.blocks; b++)
    for (const field of f.scaleFields) {
      const at = b * f.blockBytes + field;
      if (((out[at] | (out[at + 1] << 8)) & 0x7c00) === 0x7c00) out[at + 1] &= 0xbf;
    }
  return out;
}

/** Index and bits of the first value that differs, or undefined when all are bit-identical. */
function firstDifference(actual: Float32Array, expected: Float32Array): string | undefined {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  if (a.length !== e.length) return `length ${a.length} vs ${e.length}`;
  for (let i = 0; i < a.length; i++)
    if (a[i] !== e[i]) return `value ${i}: 0x${a[i].toString(16)} (${actual[i]}) vs 0x${e[i].toString(16)} (${expected[i]})`;
  return undefined;
}

describe(`ggml dequantizers match gguf-py ${fixture.gguf} bit for bit`, () => {
  test('the fixture covers every dequantizer, with ggml block layouts', () => {
    assert.deepEqual(Object.keys(fixture.types).sort(), [...GGML_DEQUANTIZERS.values()].map((d) => d.name).sort());
    for (const [name, f] of Object.entries(fixture.types)) {
      const d = GGML_DEQUANTIZERS.get(f.type);
      assert.equal(d?.name, name);
      assert.deepEqual(ggmlBlockLayout(f.type), { blockElements: f.blockElements, blockBytes: f.blockBytes });
      assert.deepEqual({ blockElements: d.blockElements, blockBytes: d.blockBytes }, ggmlBlockLayout(f.type));
    }
  });

  for (const [name, f] of Object.entries(fixture.types)) {
    test(`${name}: edge-case and random scales`, () => {
      const src = bytes(f.blocks);
      const expectedBytes = bytes(f.values);
      const expected = new Float32Array(expectedBytes.slice().buffer);
      const actual = dequantize(f.type, src, expected.length);
      assert.equal(src.byteLength / f.blockBytes, expected.length / f.blockElements);
      assert.equal(firstDifference(actual, expected), undefined);
    });

    test(`${name}: ${f.bulk.blocks} pseudo-random blocks`, () => {
      const values = dequantize(f.type, counterBlocks(name, f), f.bulk.blocks * f.blockElements);
      const digest = createHash('sha256').update(new Uint8Array(values.buffer)).digest('hex');
      assert.equal(digest, f.bulk.sha256);
    });
  }

  test('a byte length that is not the blocks of the values is refused', () => {
    assert.throws(() => dequantize(12, new Uint8Array(143), 256), /Q4_K: 256 values take 144 bytes, got 143/);
    assert.throws(() => dequantize(6, new Uint8Array(22), 16), /not a whole number of Q5_0 blocks/);
    assert.throws(() => dequantize(8, new Uint8Array(34), 32), /no dequantizer for ggml type 8/);
  });
});
