// Reads a GGUF file's header: its metadata and where each tensor lies in the file. The tensor data
// itself is not read here; loaders read the byte ranges they need. Parsing is @huggingface/gguf's,
// which reads a local file in 2 MB chunks, so a large model is never held in memory at once.
import { open, stat } from 'node:fs/promises';
import { gguf, GGMLQuantizationType } from '@huggingface/gguf';

export interface GgufTensorInfo {
  name: string;
  /** Dimensions outermost first (numpy order), i.e. GGUF's `ne` reversed. */
  shape: number[];
  /** ggml type number (0 = F32, 1 = F16, 3 = Q4_1, ...). */
  type: number;
  typeName: string;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  /** The file's key/value pairs. Integers beyond 2^53 stay bigint; all others are plain JS values. */
  metadata: Record<string, unknown>;
  tensors: GgufTensorInfo[];
  /** Absolute offset where tensor data starts (aligned to `general.alignment`). */
  tensorDataOffset: number;
}

/** A problem with a GGUF file's contents; the message names the key or tensor at fault. */
export class GgufFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufFormatError';
  }
}

/**
 * Elements per block and bytes per block of each ggml type, from ggml's type traits
 * (gguf-py `GGML_QUANT_SIZES`). A tensor's innermost dimension is a whole number of blocks.
 */
const GGML_BLOCKS: Record<number, readonly [elements: number, bytes: number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  9: [32, 36], // Q8_1
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  15: [256, 292], // Q8_K
  16: [256, 66], // IQ2_XXS
  17: [256, 74], // IQ2_XS
  18: [256, 98], // IQ3_XXS
  19: [256, 50], // IQ1_S
  20: [32, 18], // IQ4_NL
  21: [256, 110], // IQ3_S
  22: [256, 82], // IQ2_S
  23: [256, 136], // IQ4_XS
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
  28: [1, 8], // F64
  29: [256, 56], // IQ1_M
  30: [1, 2], // BF16
  34: [256, 54], // TQ1_0
  35: [256, 66], // TQ2_0
  39: [32, 17], // MXFP4
};

/** Elements and bytes per block of a ggml type; throws for a type this reader does not know. */
export function ggmlBlockLayout(type: number): { blockElements: number; blockBytes: number } {
  const layout = GGML_BLOCKS[type];
  if (!layout) throw new GgufFormatError(`unknown ggml tensor type ${type}`);
  return { blockElements: layout[0], blockBytes: layout[1] };
}

export function ggmlTypeName(type: number): string {
  return (GGMLQuantizationType as unknown as Record<number, string>)[type] ?? `TYPE_${type}`;
}

function tensorByteLength(name: string, shape: number[], type: number): number {
  const { blockElements, blockBytes } = ggmlBlockLayout(type);
  const inner = shape[shape.length - 1] ?? 1;
  if (inner % blockElements !== 0) {
    throw new GgufFormatError(
      `tensor ${name}: innermost dimension ${inner} is not a multiple of the ${ggmlTypeName(type)} block size ${blockElements}`,
    );
  }
  const elements = shape.reduce((n, d) => n * d, 1);
  return (elements / blockElements) * blockBytes;
}

function toSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < 0n) {
    throw new GgufFormatError(`${what} ${value} is out of range`);
  }
  return Number(value);
}

/** uint64/int64 values arrive as bigint; plain numbers are easier for everyone when they fit. */
function normalizeValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
  }
  if (Array.isArray(value) && value.some((v) => typeof v === 'bigint' || Array.isArray(v))) {
    return value.map(normalizeValue);
  }
  return value;
}

async function checkMagic(path: string): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new GgufFormatError(`cannot read GGUF file ${path}: ${(err as Error).message}`);
  }
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    if (head.toString('latin1') !== 'GGUF') {
      throw new GgufFormatError(`${path} is not a GGUF file (its first bytes are not "GGUF")`);
    }
  } finally {
    await handle.close();
  }
  return size;
}

export async function readGguf(path: string): Promise<GgufFile> {
  const fileSize = await checkMagic(path);
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf(path, { allowLocalFile: true });
  } catch (err) {
    throw new GgufFormatError(`cannot parse GGUF file ${path}: ${(err as Error).message}`);
  }
  const { version, tensor_count: _tensorCount, kv_count: _kvCount, ...kv } = parsed.metadata as Record<string, unknown>;
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(kv)) metadata[key] = normalizeValue(value);

  const tensorDataOffset = toSafeNumber(parsed.tensorDataOffset, 'tensor data offset');
  const tensors = parsed.tensorInfos.map((info): GgufTensorInfo => {
    const shape = info.shape.map((d) => toSafeNumber(d, `tensor ${info.name} dimension`)).reverse();
    const type = Number(info.dtype);
    const offset = tensorDataOffset + toSafeNumber(info.offset, `tensor ${info.name} offset`);
    const byteLength = tensorByteLength(info.name, shape, type);
    if (offset + byteLength > fileSize) {
      throw new GgufFormatError(
        `tensor ${info.name} (${byteLength} bytes at offset ${offset}) extends past the end of the file (${fileSize} bytes)`,
      );
    }
    return { name: info.name, shape, type, typeName: ggmlTypeName(type), offset, byteLength };
  });
  return { path, version: Number(version), metadata, tensors, tensorDataOffset };
}
