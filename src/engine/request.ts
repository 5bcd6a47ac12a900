// What the server submits to the engine process and the events the engine streams back: token
// ids only. Text (tokenizing, chat templates, detokenizing, stop strings) is the server's
// business (src/text); the engine never sees it.
import type { EngineSamplingParams } from './sampling-params.ts';

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose KV came from the prefix cache instead of being computed. */
  cachedTokens: number;
}

export type ErrorCode =
  | 'invalid_argument'
  | 'resource_exhausted'
  | 'unavailable'
  | 'internal'
  | 'already_exists'
  /** The request names a LoRA adapter the engine does not serve. */
  | 'not_found';

export interface EngineRequest {
  /** Unique among the requests currently in the engine. */
  id: string;
  promptTokenIds: number[];
  sampling: EngineSamplingParams;
  /** The LoRA adapter to generate with (its name); absent: the base model. */
  adapter?: string;
}

/** A LoRA adapter the engine serves (--lora, or loaded at run time). */
export interface AdapterInfo {
  name: string;
  /** The directory it was read from. */
  path: string;
  format: 'mlx-lm' | 'peft';
  rank: number;
  /** The multiplier of B·A (alpha / rank for PEFT, rsLoRA's alpha / √rank, mlx-lm's scale). */
  scale: number;
  /** The projections it adapts (q_proj, …, down_proj) and over how many layers. */
  modules: string[];
  layers: number;
  /** Unix seconds when it was loaded. */
  loadedAt: number;
}

/** A sampled token's log probability (of the raw logits) and the most likely alternatives. */
export interface TokenIdLogprob {
  tokenId: number;
  logprob: number;
  /** The top_logprobs most likely tokens, most likely first. */
  top: { tokenId: number; logprob: number }[];
}

export type EngineEvent =
  | { type: 'started'; requestId: string; promptTokens: number; cachedTokens: number }
  | {
      /** Tokens sampled for the request, in order (one per step). */
      type: 'tokens';
      requestId: string;
      tokenIds: number[];
      logprobs?: TokenIdLogprob[];
    }
  | {
      type: 'finished';
      requestId: string;
      finishReason: FinishReason;
      /** The stop token id (an end-of-sequence token, or one the client named) that ended generation. */
      stopTokenId?: number;
      usage: Usage;
      /** Why the request failed, when finishReason is 'error'. */
      error?: string;
    }
  | {
      /** The request was refused before it started; nothing was generated. Ends the request's stream. */
      type: 'error';
      requestId: string;
      code: ErrorCode;
      message: string;
      /** The offending request field (snake_case), for invalid_argument. */
      field?: string;
      /** When the message is the field's name followed by more: that rest. */
      reason?: string;
    };

/** The model as the engine loaded it. */
export interface EngineModelInfo {
  id: string;
  architecture: string;
  vocabSize: number;
  contextLength: number;
  hiddenSize: number;
  numLayers: number;
  /** Bytes of KV cache one token occupies across all layers. */
  kvBytesPerToken: number;
  /** What computes the model, e.g. "native (avx512, 2 threads)" or "mlx (metal)". */
  runtime?: string;
  /** Why MLX runs the model on the CPU although the native kernels were asked for. */
  runtimeFallback?: string;
  /** Bytes the weights occupy in memory. */
  weightBytes?: number;
  /** How the weights are held: kept quantized or dequantized, and the dtype (--quantization, --dtype). */
  precision?: string;
  /** Why that choice is slow on this device. */
  precisionWarning?: string;
  /** LoRA adapters served, in load order. */
  adapters: AdapterInfo[];
}

export interface EngineStats {
  running: number;
  waiting: number;
  /** KV of the tokens the running requests hold, shared cached prefixes included. */
  kvBytesUsed: number;
  /** KV memory held now for running requests and the prefix cache together (≥ used when idle: the cache). */
  kvBytesAllocated: number;
  /** --kv-cache-bytes: the most KV the running requests may hold. */
  kvBytesCapacity: number;
  prefixCacheBytes: number;
  /** Prefix-cache bytes locked by requests using them; 0 when the engine is idle (else a lock leaked). */
  prefixCacheLockedBytes: number;
  prefixCacheHits: number;
  prefixCacheQueries: number;
  /** Running requests moved back to the queue to free KV memory, since the engine process started. */
  preemptions: number;
  /** Resident memory of the engine process. */
  residentBytes: number;
  /** LoRA adapters by name: those the running batch uses, those requests wait for, and --max-loras. */
  lora: { running: string[]; waiting: string[]; maxLoras: number };
}
