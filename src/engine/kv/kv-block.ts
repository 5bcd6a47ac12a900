import { mx, type MxArray } from '../mlx.ts';
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

/** Joins blocks that follow each other in one sequence (all at the same base convention: the first's). */
export function concatKvBlocks(blocks: KvBlock[]): KvBlock {
  if (blocks.length === 1) return blocks[0];
  return {
    keys: mx.concatenate(blocks.map((b) => b.keys), 2),
    values: mx.concatenate(blocks.map((b) => b.values), 2),
    length: blocks.reduce((n, b) => n + b.length, 0),
    ropeBase: blocks[0].ropeBase,
  };
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
