// The decode batch's keys and values: one buffer per layer, values [rows, kvHeads, columns,
// headDim] and keys transposed, [rows, kvHeads, headDim, columns], ready for q·Kᵀ.
//
// Layout: every sequence is right-aligned, so all rows write their next token into the same column
// (one in-place slice update per layer per step instead of a per-row scatter). Rows share one RoPE
// position counter: a sequence of n tokens joining when the counter is p is rotated as if its tokens
// sat at positions p-n … p-1. Attention only sees relative positions, so the result is the same as
// at positions 0 … n-1 (ENGINE-NOTES: "Batching with one RoPE offset").
//
// MLX updates a buffer in place only when nothing else shares it, and a JS handle to a view of it
// (a slice, a transpose) lives until the garbage collector runs; while it does, every update copies
// the whole buffer. So this class never makes views of its buffers: attention reads whole buffers
// under a mask (keys are stored transposed so no transpose is needed), and extraction copies
// with `take`.
import { attentionScale, isSlidingLayer, type ModelConfig } from '../model/config.ts';
import type { Rope } from '../model/rope.ts';
import { groupedAttention, type AttentionContext } from '../model/transformer.ts';
import { partsLength, type KvBlock } from './kv-block.ts';
import { contiguous } from '../model/linear.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface BatchKvCacheOptions {
  /** Columns are added and dropped in multiples of this (bounds reallocations and wasted attention). */
  columnChunk: number;
  /**
   * When the shared RoPE position passes this, every key is re-rotated back towards position 0.
   * MLX rotates in float32, whose resolution at position p is p·2⁻²⁴ radians: the counter of a
   * batch that is never empty must not grow without bound.
   */
  rebasePosition: number;
}

export const DEFAULT_BATCH_KV_OPTIONS: BatchKvCacheOptions = { columnChunk: 64, rebasePosition: 16384 };

/** Row capacities the buffer takes; between two, rows are reused without reallocating. */
export function rowBucket(n: number): number {
  if (n <= 1) return 1;
  if (n <= 2) return 2;
  if (n <= 4) return 4;
  if (n <= 8) return 8;
  return Math.ceil(n / 8) * 8;
}

export class BatchKvCache implements AttentionContext {
  /** Per layer [rows, kvHeads, headDim, columns]. */
  private keys: MxArray[] = [];
  /** Per layer [rows, kvHeads, columns, headDim]. */
  private values: MxArray[] = [];
  private rowCount = 0;
  private columnCount = 0;
  /** Column the next decode step writes (the same for every row). */
  private writeColumn = 0;
  /** RoPE position of the next decode token (the same for every row). */
  private position = 0;
  /** First column of each occupied row's sequence; undefined for a free row. */
  private rowStart: (number | undefined)[] = [];
  private mask: MxArray | undefined;
  /** The mask of sliding-window layers: also hides columns more than the window left of the write column. */
  private slidingMask: MxArray | undefined;
  private readonly scale: MxArray;
  private readonly softcap?: MxArray;

  constructor(
    private readonly config: ModelConfig,
    private readonly rope: Rope,
    private readonly opts: BatchKvCacheOptions = DEFAULT_BATCH_KV_OPTIONS,
  ) {
    this.scale = mx.array(attentionScale(config), mx.float32);
    if (config.attnLogitSoftcap) this.softcap = mx.array(config.attnLogitSoftcap, mx.float32);
  }

  get ropeOffset(): number {
    return this.position;
  }
  get rows(): number {
    return this.rowCount;
  }
  get columns(): number {
    return this.columnCount;
  }
  get occupiedRows(): number[] {
    const out: number[] = [];
    this.rowStart.forEach((s, r) => s !== undefined && out.push(r));
    return out;
  }
  /** Tokens held by a row (its sequence length so far). */
  rowLength(row: number): number {
    const s = this.rowStart[row];
    if (s === undefined) throw new Error(`row ${row} is free`);
    return this.writeColumn - s;
  }
  /** Bytes of the buffers (what the decode batch really holds in memory). */
  get bytes(): number {
    return this.rowCount * this.columnCount * this.bytesPerCell();
  }
  /** Bytes of one (row, column) cell across all layers, K and V. */
  bytesPerCell(): number {
    const c = this.config;
    return c.numLayers * 2 * c.numKvHeads * c.headDim * 4;
  }

  private plan(joinLength: number) {
    const chunk = this.opts.columnChunk;
    const starts = this.rowStart.filter((s): s is number => s !== undefined);
    // Columns no occupied row uses any more can be dropped, in whole chunks.
    const unusedLeft = starts.length === 0 ? this.writeColumn : Math.min(...starts);
    const drop = Math.floor(unusedLeft / chunk) * chunk;
    let write = this.writeColumn - drop;
    // A joining sequence ends just left of the write column, so it needs that many columns there.
    const shift = joinLength > write ? Math.ceil((joinLength - write) / chunk) * chunk : 0;
    write += shift;
    const columns = Math.max(this.columnCount - drop + shift, Math.ceil((write + 1) / chunk) * chunk);
    return { columns, drop, shift, write };
  }

  private planRows(occupied: number): number {
    const target = rowBucket(occupied);
    if (this.rowCount < occupied) return target;
    // Shrink only when far too big: each reallocation copies the whole batch. A lone sequence
    // always gets a single row: one row decodes as a matrix-vector product, far cheaper.
    if (this.rowCount > 2 * target || (occupied === 1 && this.rowCount > 1)) return target;
    return this.rowCount;
  }

  /** Bytes the buffers would take after `reserve(occupied, joinLength)`, for admission control. */
  bytesAfterReserve(occupied: number, joinLength: number): number {
    return this.planRows(occupied) * this.plan(joinLength).columns * this.bytesPerCell();
  }

  /**
   * Makes room for `occupied` rows in total and for a sequence of `joinLength` tokens joining now,
   * reallocating when needed. Returns the new index of every occupied row (rows are packed to the
   * top when the buffer shrinks).
   */
  reserve(occupied: number, joinLength = 0): Map<number, number> {
    const p = this.plan(joinLength);
    const rows = this.planRows(occupied);
    const old = this.occupiedRows;
    const renumber = new Map(old.map((r) => [r, r]));
    const columnsChange = p.drop > 0 || p.shift > 0 || p.columns > this.columnCount;
    if (rows === this.rowCount && !columnsChange) return renumber;
    if (rows < this.rowCount) old.forEach((r, i) => renumber.set(r, i));
    const rowMap: number[] = new Array(rows).fill(-1);
    for (const [from, to] of renumber) rowMap[to] = from;
    this.relayout(rows, rowMap, p.drop, p.shift, p.columns);
    const starts: (number | undefined)[] = new Array(rows).fill(undefined);
    for (const [from, to] of renumber) starts[to] = (this.rowStart[from] as number) - p.drop + p.shift;
    this.rowStart = starts;
    this.writeColumn = p.write;
    this.mask = undefined;
    this.slidingMask = undefined;
    return renumber;
  }

  private relayout(rows: number, rowMap: number[], drop: number, shift: number, columns: number) {
    const c = this.config;
    const keptColumns = Math.max(0, Math.min(this.columnCount, this.writeColumn) - drop);
    const srcRows = mx.array(
      rowMap.map((r) => Math.max(r, 0)),
      mx.int32,
    );
    // Keys keep columns on axis 3, values on axis 2.
    const move = (buf: MxArray | undefined, axis: 2 | 3): MxArray => {
      const shape = (n: number) => (axis === 3 ? [rows, c.numKvHeads, c.headDim, n] : [rows, c.numKvHeads, n, c.headDim]);
      const parts: MxArray[] = [];
      if (shift > 0) parts.push(mx.zeros(shape(shift), mx.float32));
      if (buf && keptColumns > 0 && this.rowCount > 0) {
        const window = mx.take(buf, mx.arange(drop, drop + keptColumns, 1, mx.int32), axis);
        parts.push(mx.take(window, srcRows, 0));
      }
      const used = shift + (buf && this.rowCount > 0 ? keptColumns : 0);
      if (columns > used) parts.push(mx.zeros(shape(columns - used), mx.float32));
      return parts.length === 1 ? mx.add(parts[0], 0) : mx.concatenate(parts, axis);
    };
    for (let l = 0; l < c.numLayers; l++) {
      this.keys[l] = move(this.keys[l], 3);
      this.values[l] = move(this.values[l], 2);
      mx.eval(this.keys[l], this.values[l]);
    }
    this.rowCount = rows;
    this.columnCount = columns;
  }

  freeRow(): number | undefined {
    for (let r = 0; r < this.rowCount; r++) if (this.rowStart[r] === undefined) return r;
    return undefined;
  }

  /**
   * Places a sequence's keys/values, given as consecutive parts (e.g. its cached prefix and the
   * tokens just computed), in a free row so that its last token sits just left of the write
   * column, re-rotating keys to the shared position counter. Call reserve() first.
   */
  join(row: number, parts: readonly KvBlock[]): void {
    if (this.rowStart[row] !== undefined) throw new Error(`row ${row} is occupied`);
    if (row >= this.rowCount) throw new Error(`row ${row} is outside the buffer (${this.rowCount} rows)`);
    const n = partsLength(parts);
    const start = this.writeColumn - n;
    if (start < 0) throw new Error(`no room for ${n} tokens left of column ${this.writeColumn}; reserve() first`);
    // The first sequence of an empty batch keeps its true positions (rotation base 0).
    if (this.occupiedRows.length === 0) this.position = n;
    const rowSel = mx.Slice(row, row + 1);
    const all = mx.Slice();
    let offset = 0;
    for (const block of parts) {
      // Token offset + i goes to position this.position - n + offset + i.
      const keys = this.rope.shift(block.keys, this.position - n + offset - block.ropeBase);
      const cols = mx.Slice(start + offset, start + offset + block.length);
      for (let l = 0; l < this.config.numLayers; l++) {
        this.keys[l].indexPut_([rowSel, all, all, cols], mx.expandDims(mx.swapaxes(keys.index(l), -1, -2), 0));
        this.values[l].indexPut_([rowSel, all, cols], mx.expandDims(block.values.index(l), 0));
      }
      offset += block.length;
    }
    mx.eval(...this.keys, ...this.values);
    this.rowStart[row] = start;
    this.mask = undefined;
    this.slidingMask = undefined;
  }

  /** Frees a row. Its cells are left as they are and masked out. */
  leave(row: number): void {
    this.rowStart[row] = undefined;
    this.mask = undefined;
    this.slidingMask = undefined;
    if (this.occupiedRows.length === 0) {
      // An empty batch restarts the position counter, keeping RoPE angles small and exact.
      this.position = 0;
    }
  }

  /** Copies a row's tokens [from, length) out as a block at RoPE base `from` (true positions). */
  extract(row: number, from = 0): KvBlock {
    const start = this.rowStart[row];
    if (start === undefined) throw new Error(`row ${row} is free`);
    const length = this.writeColumn - start - from;
    const cols = mx.arange(start + from, this.writeColumn, 1, mx.int32);
    const rowIdx = mx.array([row], mx.int32);
    const pick = (buf: MxArray, axis: number) => mx.squeeze(mx.take(mx.take(buf, rowIdx, 0), cols, axis), 0);
    const keys = mx.stack(
      this.keys.map((k) => mx.swapaxes(pick(k, 3), -1, -2)),
      0,
    );
    const values = mx.stack(
      this.values.map((v) => pick(v, 2)),
      0,
    );
    const base = this.position - this.rowLength(row) + from;
    const block: KvBlock = { keys: this.rope.shift(keys, from - base), values, length, ropeBase: from };
    mx.eval(block.keys, block.values);
    return block;
  }

  /**
   * Builds this step's mask: each row sees its own columns up to and including the write column;
   * on a sliding-window layer only the last slidingWindow of them (rows are right-aligned, so
   * that is the same columns for every row).
   */
  private stepMask(sliding: boolean): MxArray {
    if (sliding && this.slidingMask) return this.slidingMask;
    if (!sliding && this.mask) return this.mask;
    const first = sliding ? this.writeColumn - (this.config.slidingWindow as number) + 1 : 0;
    const lo = this.rowStart.slice(0, this.rowCount).map((s) => (s === undefined ? this.writeColumn : Math.max(s, first)));
    while (lo.length < this.rowCount) lo.push(this.writeColumn);
    const cols = mx.arange(0, this.columnCount, 1, mx.int32);
    const visible = mx.logicalAnd(
      mx.greaterEqual(mx.expandDims(cols, 0), mx.expandDims(mx.array(lo, mx.int32), 1)),
      mx.lessEqual(cols, this.writeColumn),
    );
    const mask = mx.reshape(mx.where(visible, 0, -Infinity), [this.rowCount, 1, 1, this.columnCount]);
    if (sliding) this.slidingMask = mask;
    else this.mask = mask;
    return mask;
  }

  attend(layer: number, q: MxArray, k: MxArray, v: MxArray): MxArray {
    const at = mx.Slice(this.writeColumn, this.writeColumn + 1);
    const all = mx.Slice();
    this.keys[layer].indexPut_([all, all, all, at], mx.swapaxes(k, -1, -2));
    this.values[layer].indexPut_([all, all, at], v);
    const mask = this.stepMask(isSlidingLayer(this.config, layer));
    return groupedAttention(q, this.keys[layer], this.values[layer], mask, this.scale, this.softcap);
  }

  /** Arrays a step must evaluate so the in-place updates happen. */
  stepOutputs(): MxArray[] {
    return [...this.keys, ...this.values];
  }

  /** Call after a decode step has been evaluated: the write column and position move on. */
  advance(): void {
    this.writeColumn += 1;
    this.position += 1;
    this.mask = undefined;
    this.slidingMask = undefined;
    if (this.position > this.opts.rebasePosition) this.rebase();
  }

  /**
   * Re-rotates every key so the longest row starts at position 0 again (see rebasePosition). Only
   * rows that came and went push the counter up: a row's first token sits at position - length.
   */
  private rebase(): void {
    const longest = Math.max(0, ...this.occupiedRows.map((r) => this.rowLength(r)));
    const delta = longest - this.position;
    if (delta >= 0) return;
    for (let l = 0; l < this.config.numLayers; l++) {
      const shifted = mx.swapaxes(this.rope.shiftLayer(mx.swapaxes(this.keys[l], -1, -2), delta, l), -1, -2);
      this.keys[l] = contiguous(shifted);
      mx.eval(this.keys[l]);
    }
    this.position = longest;
  }

  /** Whether the next step has a column to write into. */
  hasRoomForStep(): boolean {
    return this.writeColumn < this.columnCount;
  }

  /** Drops everything (buffers too). */
  clear(): void {
    this.keys = [];
    this.values = [];
    this.rowCount = 0;
    this.columnCount = 0;
    this.writeColumn = 0;
    this.position = 0;
    this.rowStart = [];
    this.mask = undefined;
    this.slidingMask = undefined;
  }
}
