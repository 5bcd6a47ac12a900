// A generation as clients see it: a prompt (text, chat messages or token ids) and sampling
// parameters in, events with text out. The text layer (text-request.ts) turns one into the
// engine's token-only request and its token events back into these.
import type { EngineEvent, FinishReason, Usage } from '../engine/request.ts';
import type { SamplingParams } from '../engine/sampling-params.ts';

export type { ErrorCode, FinishReason, Usage } from '../engine/request.ts';

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
  /** Unique among the requests in flight. */
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

export type GenerationEvent =
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
  /** Refused before it started (by the server or the engine, the same shape). */
  | Extract<EngineEvent, { type: 'error' }>;
