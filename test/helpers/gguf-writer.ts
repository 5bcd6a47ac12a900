// A minimal GGUF writer (format v3, little endian) for tests, independent of the reader under test.

import { BYTE_TO_CHAR } from '../../src/text/byte-level.ts';

export const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;
type ScalarType = Exclude<(typeof T)[keyof typeof T], typeof T.ARRAY>;
export type Kv =
  | { key: string; type: ScalarType; value: unknown }
  | { key: string; type: typeof T.ARRAY; itemType: ScalarType; value: unknown[] };
export interface TensorSpec {
  name: string;
  /** GGUF order: ne[0] first (innermost). */
  ne: number[];
  type: number;
  data: Buffer;
}

class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    this.chunks.push(b);
    this.length += b.length;
  }
  scalar(type: ScalarType, value: unknown) {
    const b = Buffer.alloc(type === T.STRING ? 0 : [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8][type]);
    switch (type) {
      case T.U8:
        b.writeUInt8(value as number);
        break;
      case T.I8:
        b.writeInt8(value as number);
        break;
      case T.U16:
        b.writeUInt16LE(value as number);
        break;
      case T.I16:
        b.writeInt16LE(value as number);
        break;
      case T.U32:
        b.writeUInt32LE(value as number);
        break;
      case T.I32:
        b.writeInt32LE(value as number);
        break;
      case T.F32:
        b.writeFloatLE(value as number);
        break;
      case T.BOOL:
        b.writeUInt8(value ? 1 : 0);
        break;
      case T.U64:
        b.writeBigUInt64LE(BigInt(value as number | bigint));
        break;
      case T.I64:
        b.writeBigInt64LE(BigInt(value as number | bigint));
        break;
      case T.F64:
        b.writeDoubleLE(value as number);
        break;
      case T.STRING: {
        const s = Buffer.from(value as string, 'utf8');
        this.scalar(T.U64, s.length);
        this.push(s);
        return;
      }
    }
    this.push(b);
  }
  toBuffer() {
    return Buffer.concat(this.chunks);
  }
}

export function ggufFile(kvs: Kv[], tensors: TensorSpec[] = [], alignment = 32): Buffer {
  const w = new ByteWriter();
  w.push(Buffer.from('GGUF', 'latin1'));
  w.scalar(T.U32, 3);
  w.scalar(T.U64, tensors.length);
  w.scalar(T.U64, kvs.length);
  for (const kv of kvs) {
    w.scalar(T.STRING, kv.key);
    w.scalar(T.U32, kv.type);
    if (kv.type === T.ARRAY) {
      w.scalar(T.U32, kv.itemType);
      w.scalar(T.U64, kv.value.length);
      for (const item of kv.value) w.scalar(kv.itemType, item);
    } else {
      w.scalar(kv.type, kv.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  tensors.forEach((t, i) => {
    w.scalar(T.STRING, t.name);
    w.scalar(T.U32, t.ne.length);
    for (const d of t.ne) w.scalar(T.U64, d);
    w.scalar(T.U32, t.type);
    w.scalar(T.U64, offsets[i]);
  });
  w.push(Buffer.alloc((alignment - (w.length % alignment)) % alignment));
  tensors.forEach((t, i) => {
    w.push(t.data);
    const end = i + 1 < tensors.length ? offsets[i + 1] : offsets[i] + t.data.length;
    w.push(Buffer.alloc(end - offsets[i] - t.data.length));
  });
  return w.toBuffer();
}

/** llama.cpp's convert_hf_to_gguf permutation of q/k rows, applied to HF-layout values [rows, cols]. */
export function permuteRowsForGguf(values: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const out = new Float32Array(values.length);
  const half = rows / heads / 2;
  for (let h = 0; h < heads; h++)
    for (let a = 0; a < 2; a++)
      for (let i = 0; i < half; i++) {
        const src = (h * 2 * half + a * half + i) * cols; // HF: [heads, 2, half]
        const dst = (h * 2 * half + i * 2 + a) * cols; // GGUF: [heads, half, 2]
        out.set(values.subarray(src, src + cols), dst);
      }
  return out;
}

export interface LlamaGgufShape {
  contextLength: number;
  hiddenSize: number;
  numLayers: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  /** Byte-level BPE vocabulary: 256 byte tokens (normal) then control tokens; BOS 256, EOS 259. */
  tokens: string[];
}

/** The metadata of a tiny llama GGUF with a byte-level BPE tokenizer and no merges. */
export function llamaGgufMetadata(m: LlamaGgufShape): Kv[] {
  return [
    { key: 'general.architecture', type: T.STRING, value: 'llama' },
    { key: 'llama.context_length', type: T.U32, value: m.contextLength },
    { key: 'llama.embedding_length', type: T.U32, value: m.hiddenSize },
    { key: 'llama.block_count', type: T.U32, value: m.numLayers },
    { key: 'llama.feed_forward_length', type: T.U32, value: m.intermediateSize },
    { key: 'llama.attention.head_count', type: T.U32, value: m.numHeads },
    { key: 'llama.attention.head_count_kv', type: T.U32, value: m.numKvHeads },
    { key: 'llama.rope.freq_base', type: T.F32, value: 10000 },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: T.F32, value: 1e-5 },
    { key: 'tokenizer.ggml.model', type: T.STRING, value: 'gpt2' },
    { key: 'tokenizer.ggml.tokens', type: T.ARRAY, itemType: T.STRING, value: m.tokens },
    { key: 'tokenizer.ggml.token_type', type: T.ARRAY, itemType: T.I32, value: m.tokens.map((_, i) => (i < 256 ? 1 : 3)) },
    { key: 'tokenizer.ggml.merges', type: T.ARRAY, itemType: T.STRING, value: [] },
    { key: 'tokenizer.ggml.bos_token_id', type: T.U32, value: 256 },
    { key: 'tokenizer.ggml.eos_token_id', type: T.U32, value: 259 },
  ];
}

/** ggml type numbers of the quantized types the tests write. */
export const GGML = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  IQ4_NL: 20,
} as const;

/** [byte offset in the block, f16 exponent field (15 = 2^0)] of an f16 scale. */
type ScaleField = [at: number, exponent: number];

/**
 * Per quantized type: values and bytes per block and its f16 scale fields: d, and dmin (K-quants,
 * subtracted) or m (Q4_1/Q5_1, added: written negative to keep values around zero). The exponents
 * keep decoded weights within about ±0.5, so a tiny model's activations neither vanish nor explode.
 */
const QUANT_BLOCKS: Record<number, { elements: number; bytes: number; d: ScaleField; dmin?: ScaleField; m?: ScaleField }> = {
  [GGML.Q4_0]: { elements: 32, bytes: 18, d: [0, 8] },
  [GGML.Q4_1]: { elements: 32, bytes: 20, d: [0, 8], m: [2, 11] },
  [GGML.Q5_0]: { elements: 32, bytes: 22, d: [0, 7] },
  [GGML.Q5_1]: { elements: 32, bytes: 24, d: [0, 6], m: [2, 10] },
  [GGML.Q8_0]: { elements: 32, bytes: 34, d: [0, 3] },
  [GGML.IQ4_NL]: { elements: 32, bytes: 18, d: [0, 5] },
  [GGML.Q2_K]: { elements: 256, bytes: 84, d: [80, 6], dmin: [82, 7] },
  [GGML.Q3_K]: { elements: 256, bytes: 110, d: [108, 5] },
  [GGML.Q4_K]: { elements: 256, bytes: 144, d: [0, 3], dmin: [2, 5] },
  [GGML.Q5_K]: { elements: 256, bytes: 176, d: [0, 2], dmin: [2, 5] },
  [GGML.Q6_K]: { elements: 256, bytes: 210, d: [208, 1] },
};

/**
 * Random blocks of a quantized ggml type for `elements` values: random quant bytes, f16 scales of
 * a magnitude that keeps the values small (see QUANT_BLOCKS). `random` returns [0, 1).
 */
export function randomQuantBlocks(type: number, elements: number, random: () => number): Buffer {
  const layout = QUANT_BLOCKS[type];
  if (!layout) throw new Error(`no random blocks for ggml type ${type}`);
  if (elements % layout.elements !== 0) throw new Error(`${elements} values is not a whole number of blocks of type ${type}`);
  const blocks = elements / layout.elements;
  const out = Buffer.alloc(blocks * layout.bytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(random() * 256);
  const fields: [ScaleField, number][] = [[layout.d, 0]];
  if (layout.dmin) fields.push([layout.dmin, 0]);
  if (layout.m) fields.push([layout.m, 0x8000]);
  for (let b = 0; b < blocks; b++)
    for (const [[at, exponent], sign] of fields)
      out.writeUInt16LE(sign | (exponent << 10) | Math.floor(random() * 1024), b * layout.bytes + at);
  return out;
}

/** Float32 values as a little-endian F32 tensor's bytes. */
export function f32Bytes(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

/**
 * The tiny tokenizer's vocabulary as GGUF tokens (one per byte, then the chat specials), padded
 * with unused tokens to 288 rows: a multiple of 32, as quantized output rows need.
 */
export function tinyGgufTokens(): string[] {
  return [...BYTE_TO_CHAR, '<|bos|>', '<|eos|>', '<|im_start|>', '<|im_end|>', ...Array.from({ length: 28 }, (_, i) => `<|pad${i}|>`)];
}

/** A llama GGUF's norm weights (per layer and the output's), F32 near 1 from `random`. */
export function randomNormTensors(layers: number, hidden: number, random: () => number): TensorSpec[] {
  const names = [...Array.from({ length: layers }, (_, l) => [`blk.${l}.attn_norm`, `blk.${l}.ffn_norm`]).flat(), 'output_norm'];
  return names.map((name) => {
    const norm = Float32Array.from({ length: hidden }, () => 1 + (random() - 0.5) * 0.2);
    return { name: `${name}.weight`, ne: [hidden], type: GGML.F32, data: f32Bytes(norm) };
  });
}
