// Writes a safetensors file from JS typed arrays. node-mlx cannot build a large array from JS data
// (mx.array takes plain arrays only), but mx.load reads safetensors at disk speed.
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'U32' | 'U8' | 'I32';

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

/** Writes atomically (temporary name, then rename) so a crash never leaves a half file behind. */
export function writeSafetensors(path: string, tensors: Map<string, SafetensorsEntry>): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // The format wants the data start 8-byte aligned; pad the header with spaces.
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, size);
    writeSync(fd, json);
    for (const t of tensors.values()) writeSync(fd, t.data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
