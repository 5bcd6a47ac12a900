// Reads a safetensors file into raw tensors (dtype, shape, bytes) without MLX: the native CPU path
// takes weights as bytes. The file is read whole; tensors are views of that buffer.
import { readFileSync } from 'node:fs';
import { halfTable } from '../quant/f16.ts';
import { UnsupportedModelError } from './config.ts';

export interface RawTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

export function readSafetensors(path: string): Map<string, RawTensor> {
  const file = readFileSync(path);
  if (file.byteLength < 8) throw new UnsupportedModelError(`${path} is not a safetensors file`);
  const headerLength = Number(file.readBigUInt64LE(0));
  if (headerLength > file.byteLength - 8) throw new UnsupportedModelError(`${path} has a truncated header`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8'));
  } catch {
    throw new UnsupportedModelError(`${path} has an unreadable header`);
  }
  const base = 8 + headerLength;
  const out = new Map<string, RawTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = t.data_offsets;
    if (!(start >= 0 && end >= start && base + end <= file.byteLength))
      throw new UnsupportedModelError(`${path}: tensor ${name} lies outside the file`);
    out.set(name, { dtype: t.dtype, shape: t.shape, data: file.subarray(base + start, base + end) });
  }
  return out;
}

/**
 * An F32, F16 or BF16 tensor's values as f32 (f16 and bf16 widen exactly), in a buffer of their
 * own: tensors are views at any offset of the file, which a Float32Array cannot start at.
 */
export function floatValues(t: RawTensor): Float32Array {
  const bytes = new Uint8Array(t.data);
  if (t.dtype === 'F32') return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  if (t.dtype !== 'F16' && t.dtype !== 'BF16') throw new UnsupportedModelError(`a ${t.dtype} tensor has no float values`);
  const halves = new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2);
  const out = new Float32Array(halves.length);
  if (t.dtype === 'F16') {
    const table = halfTable();
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  } else {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) bits[i] = halves[i] << 16;
  }
  return out;
}
