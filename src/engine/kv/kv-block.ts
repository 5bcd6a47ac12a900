import { mx, type MxArray } from '../mlx.ts';
import type { Rope } from '../model/rope.ts';
// A run of consecutive tokens' keys and values for every layer, detached from any cache buffer.
// The unit the prefix cache stores and the unit a sequence brings into the decode batch.

export interface KvBlock {
  /** [layers, kvHeads, length, headDim] */
  keys: MxArray;
  /** [layers, kvHeads, length, headDim] */
  values: MxArray;
  length: number;
  /**
   * RoPE position the block's first key was rotated at; token i was rotated at ropeBase + i. Only
   * relative positions matter to attention, so a block can be moved to another base with Rope.shift.
   */
  ropeBase: number;
}

export function kvBlockBytes(b: KvBlock): number {
  return (b.keys.size + b.values.size) * b.keys.itemsize;
}

/** Tokens in consecutive parts of one sequence. */
export function partsLength(parts: readonly KvBlock[]): number {
  return parts.reduce((n, b) => n + b.length, 0);
}

/**
 * Tokens [start, end) of a sequence held as consecutive parts (each at its own rotation base), as
 * one block at true positions (ropeBase = start) that shares no buffer with the parts. A sequence
 * is kept in parts (cached prefix + newly computed tokens) rather than concatenated: every copy of
 * a long prefix costs several ms per thousand tokens on the CPU.
 */
export function sliceParts(rope: Rope, parts: readonly KvBlock[], start: number, end: number): KvBlock {
  const keys: MxArray[] = [];
  const values: MxArray[] = [];
  let offset = 0;
  for (const p of parts) {
    const lo = Math.max(start, offset);
    const hi = Math.min(end, offset + p.length);
    if (lo < hi) {
      const cols = mx.Slice(lo - offset, hi - offset);
      // Token lo - offset of the part was rotated at p.ropeBase + lo - offset; it belongs at lo.
      keys.push(rope.shift(p.keys.index(mx.Slice(), mx.Slice(), cols), offset - p.ropeBase));
      values.push(p.values.index(mx.Slice(), mx.Slice(), cols));
    }
    offset += p.length;
  }
  if (keys.length === 0 || end > offset) throw new Error(`tokens [${start}, ${end}) are outside the ${offset} held`);
  const block: KvBlock = {
    keys: copyOf(keys.length === 1 ? keys[0] : mx.concatenate(keys, 2)),
    values: copyOf(values.length === 1 ? values[0] : mx.concatenate(values, 2)),
    length: end - start,
    ropeBase: start,
  };
  mx.eval(block.keys, block.values);
  return block;
}

/** Splits a block at token `at` into two blocks that own their memory (no shared buffer). */
export function splitKvBlock(b: KvBlock, at: number): [KvBlock, KvBlock] {
  const part = (a: MxArray, start: number, stop: number) => copyOf(a.index(mx.Slice(), mx.Slice(), mx.Slice(start, stop)));
  const first: KvBlock = { keys: part(b.keys, 0, at), values: part(b.values, 0, at), length: at, ropeBase: b.ropeBase };
  const rest: KvBlock = {
    keys: part(b.keys, at, b.length),
    values: part(b.values, at, b.length),
    length: b.length - at,
    ropeBase: b.ropeBase + at,
  };
  mx.eval(first.keys, first.values, rest.keys, rest.values);
  return [first, rest];
}

/**
 * A copy that shares no buffer with `a`: a view would keep its whole source buffer alive (and stop
 * MLX from updating that buffer in place). An elementwise op never writes into a shared input.
 */
export function copyOf(a: MxArray): MxArray {
  return mx.add(a, 0);
}
