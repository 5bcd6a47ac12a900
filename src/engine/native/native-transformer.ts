// The native CPU model: weights and KV pool inside the addon, a forward pass over any mix of
// prompt chunks and decode tokens, each token at its own position, logits into a caller's buffer.
import type { LoraUpdate } from '../lora/lora-updates.ts';
import type { ModelConfig } from '../model/config.ts';
import type { CpuKernelsAddon, NativeModelHandle, NativeModelInfo } from './cpu-kernels.ts';

/** One forward pass (see native/cpu-kernels/model.h, ForwardBatch). */
export interface NativeForwardBatch {
  tokens: Int32Array;
  /** Position of each token in its sequence. */
  positions: Int32Array;
  /** Start of each token's sequence slot list in ctxSlots. */
  ctxOffset: Int32Array;
  /** Slots of positions 0, 1, … of every sequence in the batch, one list after another. */
  ctxSlots: Int32Array;
  /** Tokens whose next-token logits are wanted, in the order they are written. */
  logitRows: Int32Array;
  /** Per token, 1: its sequence rotates with LongRoPE's long factors (usesLongRope); absent: none does. */
  ropeLong?: Uint8Array;
  /** Per token, the LoRA slot of its sequence's adapter or -1; absent: no token has one. */
  lora?: Int32Array;
}

export class NativeTransformer {
  constructor(
    readonly config: ModelConfig,
    private readonly addon: CpuKernelsAddon,
    private readonly handle: NativeModelHandle,
    readonly info: NativeModelInfo,
  ) {}

  /** Bytes of one token's keys and values over all layers (f32). */
  get kvBytesPerToken(): number {
    const c = this.config;
    return c.numLayers * 2 * c.numKvHeads * c.headDim * 4;
  }

  /** A KV pool of `slots` tokens (dropping any earlier pool and its contents). */
  reserveKv(slots: number): void {
    this.addon.reserveKv(this.handle, slots);
  }

  /** Runs the batch; writes logitRows.length × vocab logits into `logits`. */
  forward(b: NativeForwardBatch, logits: Float32Array): void {
    this.addon.forward(
      this.handle,
      b.tokens,
      b.positions,
      b.ctxOffset,
      b.ctxSlots,
      b.logitRows,
      logits,
      b.ropeLong ?? null,
      b.lora ?? null,
    );
  }

  /** Puts an adapter's updates in a LoRA slot (dropping what was there), or empties it. */
  setLoraSlot(slot: number, updates: readonly LoraUpdate[] | undefined): void {
    this.addon.clearLora(this.handle, slot);
    for (const u of updates ?? []) this.addon.setLora(this.handle, slot, u.layer, u.target, u.rank, u.a, u.b);
  }

  /** Returns the memory behind slots [begin, end) to the system. */
  releaseSlots(begin: number, end: number): void {
    this.addon.releaseSlots(this.handle, begin, end);
  }
}
