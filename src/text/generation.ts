// A generation as clients see it: a prompt (text, chat messages or token ids) and sampling
// parameters in, events with text out. The text layer (text-request.ts) turns one into the
// engine's token-only request and its token events back into these.
import type { EngineEvent, FinishReason as EngineFinishReason, Usage } from '../engine/request.ts';
import type { SamplingParams } from '../engine/sampling-params.ts';
import type { ParsedToolCall, ToolChatMessage, ToolChoice, ToolDefinition } from './tool-calls/tool-types.ts';

export type { ErrorCode, Usage } from '../engine/request.ts';

/** Why a generation ended: the engine's reasons, or the model called tools. */
export type FinishReason = EngineFinishReason | 'tool_calls';

/** A turn of a conversation: role and text, and for tool calling the calls and their results. */
export type ChatMessage = ToolChatMessage;

/** Exactly one kind of input. Chat messages are rendered with the model's chat template. */
export type PromptInput =
  | { kind: 'text'; text: string; addSpecialTokens?: boolean }
  | {
      kind: 'chat';
      messages: ChatMessage[];
      addGenerationPrompt?: boolean;
      /** Functions the model may call (see tool-calls/). */
      tools?: ToolDefinition[];
      /** Default: auto when there are tools. */
      toolChoice?: ToolChoice;
      /** Several calls in one answer; default false (see the proto's ChatMessages). */
      parallelToolCalls?: boolean;
    }
  | { kind: 'tokens'; tokenIds: number[] };

export interface GenerateRequest {
  /** Unique among the requests in flight. */
  id: string;
  input: PromptInput;
  sampling: SamplingParams;
  /** The LoRA adapter to generate with (its name); absent: the base model. */
  adapter?: string;
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
      /** Tool calls completed by these tokens (their markup is not in `text`). */
      toolCalls?: ParsedToolCall[];
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
