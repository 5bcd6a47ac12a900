// Where a model runs and its keys/values live: the part of the engine that differs between the
// MLX path (Metal on macOS; CPU through MLX) and the native CPU path. The engine core owns the
// requests (queue, output, events); a backend owns KV memory, the prefix cache, the forward pass
// and sampling, and decides each step which queued requests it can start.
import type { EngineOptions } from './engine-options.ts';
import type { LoraUpdate } from './lora/lora-updates.ts';
import type { FinishReason } from './request.ts';
import type { SampledToken } from './sampler/sampler.ts';
import type { Sequence } from './sequence.ts';

/** What the engine core offers a backend during a step. */
export interface BackendHost {
  readonly opts: EngineOptions;
  /** Requests not started (or preempted), oldest first; a backend takes the ones it starts from the front. */
  readonly waiting: Sequence[];
  /** Sequences decoding one token per step; a backend adds them when their prompt is done. */
  readonly running: Sequence[];
  /** Reports that a request started (the first time only) with this many prompt tokens from the cache. */
  markStarted(s: Sequence, cachedTokens: number): void;
  /** Appends a sampled token and emits it; finishes the sequence (releasing it) and returns true when it ends. */
  appendToken(s: Sequence, sampled: SampledToken): boolean;
  /** Ends a sequence (it is released from the backend too). */
  finish(s: Sequence, reason: FinishReason): void;
  /** Puts a sequence the backend released back at the front of the queue (recompute preemption). */
  requeue(s: Sequence): void;
  /**
   * Before a sequence is admitted: makes its LoRA adapter resident and sets s.loraSlot. False:
   * every slot holds an adapter in use, so it cannot start now.
   */
  admitLora(s: Sequence): boolean;
}

export interface BackendStats {
  /** KV of the tokens the running and prefilling requests hold, shared cached prefixes included. */
  kvBytesUsed: number;
  /** KV memory held now for requests and the prefix cache together (buffers or slots taken). */
  kvBytesAllocated: number;
  prefixCacheBytes: number;
  prefixCacheLockedBytes: number;
  prefixCacheHits: number;
  prefixCacheQueries: number;
}

export interface EngineBackend {
  /** Bytes of keys and values one token takes across all layers. */
  readonly kvBytesPerToken: number;
  /** Sequences started whose prompt is still being computed. */
  readonly prefilling: readonly Sequence[];
  /** One step: start queued requests it has room for, compute prompt chunks and decode tokens. */
  step(host: BackendHost): void;
  /**
   * A sequence leaves (finished, cancelled, failed or preempted): its KV is freed, and first kept
   * in the prefix cache when `keepInCache`.
   */
  release(s: Sequence, keepInCache: boolean): void;
  /** Forgets every in-flight sequence after a failed step (their KV is freed, not cached). */
  reset(): void;
  /** Empties the prefix cache and frees idle buffers (after the warm-up). */
  clearCache(): void;
  /** `running`: the decoding sequences (the backend knows its prefilling ones). */
  stats(running: readonly Sequence[]): BackendStats;
  /** Puts a LoRA adapter's updates in a slot of the model (replacing what was there), or empties it. */
  setLoraSlot(slot: number, updates: readonly LoraUpdate[] | undefined): void;
}
