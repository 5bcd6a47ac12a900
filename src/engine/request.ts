// What a client submits to the engine and the events the engine streams back for it.
import type { SamplingParams } from './sampling-params.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content: string;
}

/** Exactly one kind of input. Chat messages are rendered with the model's chat template. */
export type PromptInput =
  | { kind: 'text'; text: string; addSpecialTokens?: boolean }
  | { kind: 'chat'; messages: ChatMessage[]; addGenerationPrompt?: boolean }
  | { kind: 'tokens'; tokenIds: number[] };

export interface GenerateRequest {
  /** Client-chosen, unique among the requests currently in the engine. */
  id: string;
  input: PromptInput;
  sampling: SamplingParams;
}

export interface TopLogprob {
  tokenId: number;
  /** The token as text; a part of a multi-byte character is spelled "bytes:\xNN…". */
  token: string;
  logprob: number;
  /** The token's exact bytes. */
  bytes: number[];
}

export interface TokenLogprob extends TopLogprob {
  top: TopLogprob[];
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose KV came from the prefix cache instead of being computed. */
  cachedTokens: number;
}

export type ErrorCode = 'invalid_argument' | 'resource_exhausted' | 'unavailable' | 'internal' | 'already_exists';

export type EngineEvent =
  | { type: 'started'; requestId: string; promptTokens: number; cachedTokens: number }
  | {
      type: 'delta';
      requestId: string;
      /** Text completed by these tokens; may be empty while a multi-byte character or a possible stop string is pending. */
      text: string;
      tokenIds: number[];
      logprobs?: TokenLogprob[];
    }
  | {
      type: 'finished';
      requestId: string;
      finishReason: FinishReason;
      /** The stop string or stop token id that ended generation, when finishReason is 'stop'. */
      stopReason?: string | number;
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
    };

export interface ModelInfo {
  id: string;
  architecture: string;
  vocabSize: number;
  contextLength: number;
  hiddenSize: number;
  numLayers: number;
  /** Bytes of KV cache one token occupies across all layers. */
  kvBytesPerToken: number;
  eosTokenIds: number[];
  bosTokenId?: number;
  hasChatTemplate: boolean;
  /** What computes the model, e.g. "native (avx512, 2 threads)" or "mlx (metal)". */
  runtime?: string;
  /** Why MLX runs the model on the CPU although the native kernels were asked for. */
  runtimeFallback?: string;
}

export interface EngineStats {
  running: number;
  waiting: number;
  kvBytesUsed: number;
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
}
