// Converts GGUF tensor data to what MLX loads: float tensors as they are, Q4_0 / Q4_1 / Q8_0
// blocks repacked into MLX's affine quantization (uint32-packed values, per-group scales and
// biases, group size 32), Q5_0 and IQ4_NL blocks first rewritten exactly as Q8_0 blocks, and the
// other quantized types the engine reads (K-quants, Q5_1: see ../quant) dequantized to f32 exactly
// as ggml decodes them. The result is written once as a safetensors file next to the model and
// loaded with mx.load (MLX) or read as bytes (native kernels). (MLX's own GGUF reader mis-orders
// 4-bit values in this build, so we do not use it for quantized tensors.)
import { closeSync, openSync, readSync } from 'node:fs';
import type { GgufFile, GgufTensorInfo } from '../gguf.ts';
import { GGML_DEQUANTIZERS, dequantize } from '../quant/dequantize.ts';
import { floatToHalf, halfToFloat } from '../quant/f16.ts';
import { Q8_0_REPACKS } from '../quant/q8-0-repack.ts';
import { UnsupportedModelError } from './config.ts';
import type { SafetensorsEntry } from './safetensors-writer.ts';

export const GGML_F32 = 0;
export const GGML_F16 = 1;
export const GGML_Q4_0 = 2;
export const GGML_Q4_1 = 3;
export const GGML_Q8_0 = 8;
export const GGML_BF16 = 30;

/**
 * Types kept as they are (floats) or repacked (Q4_0, Q4_1, Q8_0); Q8_0_REPACKS' become Q8_0, the rest
 * of GGML_DEQUANTIZERS' f32.
 */
const KEPT = new Map<number, string>([
  [GGML_F32, 'F32'],
  [GGML_F16, 'F16'],
  [GGML_Q4_0, 'Q4_0'],
  [GGML_Q4_1, 'Q4_1'],
  [GGML_Q8_0, 'Q8_0'],
  [GGML_BF16, 'BF16'],
]);

/** The names of the GGUF tensor types this loader reads. */
export function supportedGgufTypes(): string[] {
  return [...KEPT.values(), ...[...GGML_DEQUANTIZERS.values()].map((d) => d.name)];
}

const BLOCK = 32;

/** f16 bits for -k·d, where d is given as f16 bits and k is a power of two (exact in f16). */
function negScaledHalf(dBits: number, k: number): number {
  const v = -halfToFloat(dBits) * k;
  return floatToHalf(v);
}

/**
 * Whether every Q8_0 block's affine bias −128·d is a finite f16 (|d| ≤ 511.75), so that the repacked
 * blocks decode exactly. (Real weights' scales are far smaller; this keeps the repack exact anyway.)
 */
function q8_0BiasesFit(blocks: Uint8Array): boolean {
  for (let at = 0; at < blocks.byteLength; at += 34) if (((blocks[at] | (blocks[at + 1] << 8)) & 0x7fff) > 0x5fff) return false;
  return true;
}

export interface ConvertedTensor {
  /** float tensors: one entry; quantized: weight/scales/biases entries (name suffixes). */
  entries: Map<string, SafetensorsEntry>;
}

/**
 * The values of a small F32 tensor of a GGUF file (Phi-3's LongRoPE rope_factors_*), read from the
 * file; undefined when the file has no tensor of that name.
 */
export function ggufF32Tensor(gguf: GgufFile, name: string): Float32Array | undefined {
  const t = gguf.tensors.find((x) => x.name === name);
  if (!t) return undefined;
  if (t.type !== GGML_F32) throw new UnsupportedModelError(`tensor ${name} has GGUF type ${t.typeName}, expected F32`);
  const fd = openSync(gguf.path, 'r');
  try {
    const bytes = readBytes(fd, t.offset, t.byteLength);
    return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  } finally {
    closeSync(fd);
  }
}

function readBytes(fd: number, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, offset + done);
    if (n <= 0) throw new UnsupportedModelError(`GGUF file ends before tensor data at byte ${offset + done}`);
    done += n;
  }
  return buf;
}

/**
 * Repacks quantized blocks: each block of 32 values becomes 32/(32/bits) uint32 words whose value i
 * sits at bits (i mod per-word)·bits, plus an f16 scale and bias with value = scale·q + bias.
 */
function repackQuantized(type: number, raw: Uint8Array, rows: number, cols: number) {
  const bits = type === GGML_Q8_0 ? 8 : 4;
  const groups = cols / BLOCK;
  const wordsPerBlock = (BLOCK * bits) / 32;
  const words = new Uint32Array(rows * groups * wordsPerBlock);
  const scales = new Uint16Array(rows * groups);
  const biases = new Uint16Array(rows * groups);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const blockBytes = type === GGML_Q4_0 ? 18 : type === GGML_Q4_1 ? 20 : 34;
  const nibbles = new Uint8Array(BLOCK);
  for (let b = 0; b < rows * groups; b++) {
    const at = b * blockBytes;
    const d = view.getUint16(at, true);
    scales[b] = d;
    if (type === GGML_Q8_0) {
      // value = d·q with q in [-128, 127]; stored as q+128 with bias -128·d.
      biases[b] = negScaledHalf(d, 128);
      for (let w = 0; w < wordsPerBlock; w++) {
        let word = 0;
        for (let k = 0; k < 4; k++) word |= ((raw[at + 2 + w * 4 + k] ^ 0x80) & 0xff) << (8 * k);
        words[b * wordsPerBlock + w] = word >>> 0;
      }
      continue;
    }
    const qsAt = type === GGML_Q4_0 ? at + 2 : at + 4;
    // Q4_0: value = d·(q-8); Q4_1: value = d·q + m.
    biases[b] = type === GGML_Q4_0 ? negScaledHalf(d, 8) : view.getUint16(at + 2, true);
    // ggml stores value j in the low nibble of byte j and value j+16 in its high nibble.
    for (let j = 0; j < 16; j++) {
      const byte = raw[qsAt + j];
      nibbles[j] = byte & 0x0f;
      nibbles[j + 16] = byte >> 4;
    }
    for (let w = 0; w < wordsPerBlock; w++) {
      let word = 0;
      for (let k = 0; k < 8; k++) word |= nibbles[w * 8 + k] << (4 * k);
      words[b * wordsPerBlock + w] = word >>> 0;
    }
  }
  const packedCols = (cols * bits) / 32;
  return {
    weight: { dtype: 'U32', shape: [rows, packedCols], data: new Uint8Array(words.buffer) } satisfies SafetensorsEntry,
    scales: { dtype: 'F16', shape: [rows, groups], data: new Uint8Array(scales.buffer) } satisfies SafetensorsEntry,
    biases: { dtype: 'F16', shape: [rows, groups], data: new Uint8Array(biases.buffer) } satisfies SafetensorsEntry,
  };
}

/**
 * Reads the given tensors from a GGUF file and returns safetensors entries for them. A tensor named
 * `x.weight` of a quantized type yields `x.weight`, `x.scales`, `x.biases`.
 */
export function convertGgufTensors(path: string, tensors: GgufTensorInfo[]): Map<string, SafetensorsEntry> {
  const out = new Map<string, SafetensorsEntry>();
  const fd = openSync(path, 'r');
  try {
    for (const t of tensors) {
      if (!KEPT.has(t.type) && !GGML_DEQUANTIZERS.has(t.type)) {
        throw new UnsupportedModelError(`tensor ${t.name} has GGUF type ${t.typeName}; supported: ${supportedGgufTypes().join(', ')}`);
      }
      let raw = readBytes(fd, t.offset, t.byteLength);
      let type = t.type;
      const q8 = Q8_0_REPACKS.get(type)?.(raw);
      if (q8 && q8_0BiasesFit(q8)) {
        // Same f32 values as the original blocks (see ../quant/q8-0-repack.ts), at 8.5 bits a value.
        raw = q8;
        type = GGML_Q8_0;
      }
      const typeName = KEPT.get(type);
      if (!typeName) {
        // Neither the native kernels nor MLX on a CPU run these blocks: f32, as ggml decodes them.
        const elements = t.shape.reduce((a, b) => a * b, 1);
        const values = dequantize(type, raw, elements);
        out.set(t.name, { dtype: 'F32', shape: t.shape, data: new Uint8Array(values.buffer) });
        continue;
      }
      if (type === GGML_F32 || type === GGML_F16 || type === GGML_BF16) {
        out.set(t.name, { dtype: typeName as SafetensorsEntry['dtype'], shape: t.shape, data: raw });
        continue;
      }
      const cols = t.shape[t.shape.length - 1];
      const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      if (cols % BLOCK !== 0) throw new UnsupportedModelError(`tensor ${t.name}: ${cols} columns is not a multiple of ${BLOCK}`);
      const q = repackQuantized(type, raw, rows, cols);
      const base = t.name.replace(/\.weight$/, '');
      out.set(`${base}.weight`, q.weight);
      out.set(`${base}.scales`, q.scales);
      out.set(`${base}.biases`, q.biases);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
