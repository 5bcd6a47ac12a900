// Prompt processing for one or more sequences in a single forward pass ("packing").
//
// Each sequence (segment) gets a contiguous run of columns in a staging buffer: first its cached
// prefix (from the radix cache), then its prompt tokens. The new tokens of all segments are packed
// into one row [1, T] so the projections run as one large matmul; a block-diagonal causal mask keeps
// segments from seeing each other. All packed tokens are rotated from one RoPE offset, so each
// segment gets its own rotation base (where its token 0 would sit) and its cached keys are shifted
// to it. A single long prompt is processed in chunks over several steps, at true positions.
import { attentionScale, isSlidingLayer, type ModelConfig } from '../model/config.ts';
import type { Rope } from '../model/rope.ts';
import { groupedAttention, type AttentionContext } from '../model/transformer.ts';
import { partsLength, type KvBlock } from './kv-block.ts';
import { mx, type MxArray } from '../mlx.ts';

export interface PrefillSegment {
  /** KV of the prompt's cached prefix as consecutive parts (the radix path's blocks), if any. */
  cached?: readonly KvBlock[];
  /** The prompt tokens after the cached prefix; at least one. */
  tokens: readonly number[];
}

interface SegmentState {
  column: number;
  /** The cached prefix's blocks, as given (kept for sequenceParts). */
  cached: readonly KvBlock[];
  cachedLength: number;
  tokens: readonly number[];
  /** New tokens already processed. */
  done: number;
  /** New tokens processed in the current step. */
  stepTokens: number;
  /** Index of the segment's first new token of this step in the packed row. */
  packedAt: number;
  ropeBase: number;
}

export interface PrefillStep {
  /** int32 [1, T] packed new tokens. */
  tokens: MxArray;
  /** Segments whose prompt completes in this step, with the packed index of their last token. */
  completing: { segment: number; packedIndex: number }[];
}

export class PrefillBatch implements AttentionContext {
  private readonly segments: SegmentState[];
  private readonly keys: MxArray[] = [];
  private readonly values: MxArray[] = [];
  private readonly columnCount: number;
  private readonly scale: MxArray;
  private readonly softcap?: MxArray;
  private offset = 0;
  private mask: MxArray | undefined;
  /** The mask of sliding-window layers (each token sees only the last slidingWindow positions). */
  private slidingMask: MxArray | undefined;
  /** Columns holding keys so far (this step's included); attention needs no more. */
  private visibleColumns = 0;

  constructor(
    private readonly config: ModelConfig,
    private readonly rope: Rope,
    segments: PrefillSegment[],
  ) {
    if (segments.length === 0) throw new Error('a prefill batch needs at least one segment');
    this.scale = mx.array(attentionScale(config), mx.float32);
    if (config.attnLogitSoftcap) this.softcap = mx.array(config.attnLogitSoftcap, mx.float32);
    let column = 0;
    let packed = 0;
    this.segments = segments.map((s) => {
      if (s.tokens.length === 0) throw new Error('a prefill segment needs at least one new token');
      const cachedLength = s.cached ? partsLength(s.cached) : 0;
      const state: SegmentState = {
        column,
        cached: s.cached ?? [],
        cachedLength,
        tokens: s.tokens,
        done: 0,
        stepTokens: 0,
        packedAt: packed,
        ropeBase: 0,
      };
      column += cachedLength + s.tokens.length;
      packed += s.tokens.length;
      return state;
    });
    this.columnCount = column;
    if (this.segments.length > 1) {
      // All segments finish in one step with packed positions R + packedAt + i; choose R so no base is negative.
      const R = Math.max(0, ...this.segments.map((s) => s.cachedLength - s.packedAt));
      for (const s of this.segments) s.ropeBase = R + s.packedAt - s.cachedLength;
    }
    const c = config;
    for (let l = 0; l < c.numLayers; l++) {
      // Keys transposed, [1, kvHeads, headDim, columns] (see groupedAttention).
      this.keys.push(mx.zeros([1, c.numKvHeads, c.headDim, this.columnCount], mx.float32));
      this.values.push(mx.zeros([1, c.numKvHeads, this.columnCount, c.headDim], mx.float32));
    }
    segments.forEach((s, j) => s.cached && this.placeCached(this.segments[j], s.cached));
    mx.eval(...this.keys, ...this.values);
  }

  private placeCached(s: SegmentState, parts: readonly KvBlock[]) {
    const all = mx.Slice();
    let offset = 0;
    for (const block of parts) {
      // Token offset + i belongs at s.ropeBase + offset + i; it was rotated at block.ropeBase + i.
      const keys = this.rope.shift(block.keys, s.ropeBase + offset - block.ropeBase);
      const cols = mx.Slice(s.column + offset, s.column + offset + block.length);
      for (let l = 0; l < this.config.numLayers; l++) {
        this.keys[l].indexPut_([all, all, all, cols], mx.expandDims(mx.swapaxes(keys.index(l), -1, -2), 0));
        this.values[l].indexPut_([all, all, cols], mx.expandDims(block.values.index(l), 0));
      }
      offset += block.length;
    }
  }

  get ropeOffset(): number {
    return this.offset;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get complete(): boolean {
    return this.segments.every((s) => s.done === s.tokens.length);
  }

  /** Tokens whose KV the batch holds: the cached prefixes and the prompt tokens computed so far. */
  get tokensHeld(): number {
    return this.segments.reduce((n, s) => n + s.cachedLength + s.done, 0);
  }

  /** Staging buffer bytes. */
  get bytes(): number {
    const c = this.config;
    return this.columnCount * c.numLayers * 2 * c.numKvHeads * c.headDim * 4;
  }

  /** Tokens still to process. */
  get remainingTokens(): number {
    return this.segments.reduce((n, s) => n + s.tokens.length - s.done, 0);
  }

  /**
   * Chooses this step's tokens: everything when several segments are packed (the scheduler sizes
   * such groups to one step), else up to `budget` tokens of the single segment.
   */
  prepareStep(budget: number): PrefillStep {
    const packed: number[] = [];
    const completing: PrefillStep['completing'] = [];
    const lo: number[] = [];
    const hi: number[] = [];
    const single = this.segments.length === 1;
    this.segments.forEach((s, j) => {
      const remaining = s.tokens.length - s.done;
      s.stepTokens = single ? Math.min(remaining, Math.max(1, budget)) : remaining;
      s.packedAt = packed.length;
      for (let i = 0; i < s.stepTokens; i++) {
        packed.push(s.tokens[s.done + i]);
        lo.push(s.column);
        hi.push(s.column + s.cachedLength + s.done + i);
      }
      if (s.done + s.stepTokens === s.tokens.length) completing.push({ segment: j, packedIndex: packed.length - 1 });
    });
    const first = this.segments[0];
    this.offset = single ? first.cachedLength + first.done : first.ropeBase + first.cachedLength - first.packedAt;
    // A chunked prompt has filled only part of its columns: attend to those alone. (That makes
    // views of the staging buffers, so their next update copies them; a copy of one prompt's KV
    // costs far less than softmax over the empty columns.)
    this.visibleColumns = single ? first.column + first.cachedLength + first.done + first.stepTokens : this.columnCount;
    const cols = mx.expandDims(mx.arange(0, this.visibleColumns, 1, mx.int32), 0);
    const maskFrom = (from: number[]) => {
      const visible = mx.logicalAnd(
        mx.greaterEqual(cols, mx.expandDims(mx.array(from, mx.int32), 1)),
        mx.lessEqual(cols, mx.expandDims(mx.array(hi, mx.int32), 1)),
      );
      return mx.reshape(mx.where(visible, 0, -Infinity), [1, 1, packed.length, this.visibleColumns]);
    };
    this.mask = maskFrom(lo);
    // A segment's columns are its consecutive positions: the window is the last slidingWindow columns up to the token's own.
    const window = this.config.slidingWindow;
    this.slidingMask =
      window !== undefined && this.config.slidingLayers?.some((s) => s)
        ? maskFrom(lo.map((l, i) => Math.max(l, hi[i] - window + 1)))
        : undefined;
    return { tokens: mx.array([packed], mx.int32), completing };
  }

  /** The segment of each packed token of the step prepareStep chose. */
  stepSegments(): Int32Array {
    const out = new Int32Array(this.segments.reduce((n, s) => n + s.stepTokens, 0));
    this.segments.forEach((s, j) => out.fill(j, s.packedAt, s.packedAt + s.stepTokens));
    return out;
  }

  attend(layer: number, q: MxArray, k: MxArray, v: MxArray): MxArray {
    if (!this.mask) throw new Error('prepareStep() first');
    const all = mx.Slice();
    for (const s of this.segments) {
      if (s.stepTokens === 0) continue;
      const at = s.column + s.cachedLength + s.done;
      const cols = mx.Slice(at, at + s.stepTokens);
      const src = mx.Slice(s.packedAt, s.packedAt + s.stepTokens);
      this.keys[layer].indexPut_([all, all, all, cols], mx.swapaxes(k.index(all, all, src), -1, -2));
      this.values[layer].indexPut_([all, all, cols], v.index(all, all, src));
    }
    const mask = isSlidingLayer(this.config, layer) && this.slidingMask ? this.slidingMask : this.mask;
    if (this.visibleColumns === this.columnCount)
      return groupedAttention(q, this.keys[layer], this.values[layer], mask, this.scale, this.softcap);
    const used = mx.Slice(0, this.visibleColumns);
    return groupedAttention(
      q,
      this.keys[layer].index(all, all, all, used),
      this.values[layer].index(all, all, used),
      mask,
      this.scale,
      this.softcap,
    );
  }

  stepOutputs(): MxArray[] {
    return [...this.keys, ...this.values];
  }

  /** Call after the step was evaluated. */
  finishStep(): void {
    for (const s of this.segments) {
      s.done += s.stepTokens;
      s.stepTokens = 0;
    }
    this.mask = undefined;
    this.slidingMask = undefined;
  }

  /**
   * The keys/values a completed segment computed (its prompt after the cached prefix), at its
   * rotation base. The cached prefix is not copied out again: the caller still holds it.
   */
  promptBlock(segment: number): KvBlock {
    const s = this.segments[segment];
    const length = s.tokens.length;
    const cols = mx.Slice(s.column + s.cachedLength, s.column + s.cachedLength + length);
    const all = mx.Slice();
    // The staging buffers are dropped after this group, so views of them are harmless here.
    const block: KvBlock = {
      keys: mx.stack(
        this.keys.map((k) => mx.swapaxes(mx.squeeze(k.index(all, all, all, cols), 0), -1, -2)),
        0,
      ),
      values: mx.stack(
        this.values.map((v) => mx.squeeze(v.index(all, all, cols), 0)),
        0,
      ),
      length,
      ropeBase: s.ropeBase + s.cachedLength,
    };
    mx.eval(block.keys, block.values);
    return block;
  }

  /**
   * A completed segment's whole sequence as consecutive parts: its cached prefix's blocks, then
   * promptBlock(). The prefix is not copied again: it is written once, into the decode batch.
   */
  sequenceParts(segment: number): KvBlock[] {
    return [...this.segments[segment].cached, this.promptBlock(segment)];
  }
}
