// ggml quantized tensor types decoded to f32 here (what neither the native kernels nor the MLX
// repacking of gguf-tensors.ts keep quantized), by ggml type number. Q5_0 and IQ4_NL load as Q8_0
// blocks instead (q8-0-repack.ts); their dequantizers are what those blocks are held to.
import { dequantizeQ2_K, dequantizeQ3_K, dequantizeQ4_K, dequantizeQ5_K, dequantizeQ6_K } from './k-quants.ts';
import { dequantizeIQ4_NL, dequantizeQ5_0, dequantizeQ5_1 } from './legacy-quants.ts';

export interface Dequantizer {
  name: string;
  blockElements: number;
  blockBytes: number;
  /** Decodes dst.length / blockElements blocks from the start of src into dst. */
  decode: (src: Uint8Array, dst: Float32Array) => void;
}

const table: Dequantizer[] = [
  { name: 'Q5_0', blockElements: 32, blockBytes: 22, decode: dequantizeQ5_0 },
  { name: 'Q5_1', blockElements: 32, blockBytes: 24, decode: dequantizeQ5_1 },
  { name: 'IQ4_NL', blockElements: 32, blockBytes: 18, decode: dequantizeIQ4_NL },
  { name: 'Q2_K', blockElements: 256, blockBytes: 84, decode: dequantizeQ2_K },
  { name: 'Q3_K', blockElements: 256, blockBytes: 110, decode: dequantizeQ3_K },
  { name: 'Q4_K', blockElements: 256, blockBytes: 144, decode: dequantizeQ4_K },
  { name: 'Q5_K', blockElements: 256, blockBytes: 176, decode: dequantizeQ5_K },
  { name: 'Q6_K', blockElements: 256, blockBytes: 210, decode: dequantizeQ6_K },
];
const TYPE_NUMBERS: Record<string, number> = { Q5_0: 6, Q5_1: 7, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, IQ4_NL: 20 };

/** The dequantizers by ggml type number. */
export const GGML_DEQUANTIZERS: ReadonlyMap<number, Dequantizer> = new Map(table.map((d) => [TYPE_NUMBERS[d.name], d]));

/** Decodes `elements` values of ggml type `type` from `src` (which holds exactly their blocks). */
export function dequantize(type: number, src: Uint8Array, elements: number): Float32Array {
  const d = GGML_DEQUANTIZERS.get(type);
  if (!d) throw new RangeError(`no dequantizer for ggml type ${type}`);
  if (elements % d.blockElements !== 0) throw new RangeError(`${elements} values is not a whole number of ${d.name} blocks`);
  const expected = (elements / d.blockElements) * d.blockBytes;
  if (src.byteLength !== expected) throw new RangeError(`${d.name}: ${elements} values take ${expected} bytes, got ${src.byteLength}`);
  const dst = new Float32Array(elements);
  d.decode(src, dst);
  return dst;
}
