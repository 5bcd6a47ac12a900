// What a generation streams back, as plain typed objects: one `started`, zero or more `delta`,
// then one `finished`.
import {
  FinishReason as ProtoFinishReason,
  type GenerationDelta,
  type GenerationFinished,
  type GenerationStarted,
  type TokenLogprob,
} from './proto.ts';
import { Code, GenerationServiceError } from './errors.ts';
import type { ChatMessage } from './request.ts';
import { fromProtoToolCall, type ToolCall } from './tools.ts';

export type { TokenLogprob, TopLogprob } from './proto.ts';

/** 'tool_calls': the model called tools (see the deltas' and the completion's toolCalls) and stopped. */
export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error' | 'tool_calls';

export interface Usage {
  promptTokens: number;
  /** Generated tokens, including a stop or end-of-sequence token that ended generation. */
  completionTokens: number;
  /** Prompt tokens whose KV came from the server's prefix cache. */
  cachedTokens: number;
}

export interface StartedEvent {
  type: 'started';
  promptTokens: number;
  cachedTokens: number;
  /** The model serving the request. */
  model: string;
}

export interface DeltaEvent {
  type: 'delta';
  /** Text completed by these tokens; may be empty while a character or stop string is pending. */
  text: string;
  tokenIds: number[];
  /** One per token id when logprobs were asked for. */
  logprobs: TokenLogprob[];
  /** Tool calls completed by these tokens (their markup is not part of `text`). */
  toolCalls: ToolCall[];
}

export interface FinishedEvent {
  type: 'finished';
  finishReason: FinishReason;
  /** The stop string that ended generation, when finishReason is 'stop'. */
  stopString?: string;
  /** The stop or end-of-sequence token that ended generation, when finishReason is 'stop'. */
  stopTokenId?: number;
  usage: Usage;
}

export type GenerationEvent = StartedEvent | DeltaEvent | FinishedEvent;

/** A whole generation, from complete() or by collecting a stream. */
export interface Completion {
  model: string;
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  /** The tools the model called, in order; the finish reason is then 'tool_calls'. */
  toolCalls: ToolCall[];
  finish: FinishedEvent;
}

/** The assistant turn a completion adds to a chat (its text and tool calls), to send back with the results. */
export function assistantMessage(completion: Completion): ChatMessage {
  return { role: 'assistant', content: completion.text, toolCalls: completion.toolCalls };
}

const FINISH_REASONS: Partial<Record<ProtoFinishReason, FinishReason>> = {
  [ProtoFinishReason.STOP]: 'stop',
  [ProtoFinishReason.LENGTH]: 'length',
  [ProtoFinishReason.CANCELLED]: 'cancelled',
  [ProtoFinishReason.ERROR]: 'error',
  [ProtoFinishReason.TOOL_CALLS]: 'tool_calls',
};

export function fromStarted(s: GenerationStarted): StartedEvent {
  return { type: 'started', promptTokens: s.promptTokens, cachedTokens: s.cachedTokens, model: s.model };
}

export function fromDelta(d: GenerationDelta): DeltaEvent {
  return { type: 'delta', text: d.text, tokenIds: d.tokenIds, logprobs: d.logprobs, toolCalls: d.toolCalls.map(fromProtoToolCall) };
}

/** A finish with FINISH_REASON_ERROR is thrown as the error it carries. */
export function fromFinished(f: GenerationFinished, requestId?: string): FinishedEvent {
  if (f.finishReason === ProtoFinishReason.ERROR) {
    if (f.error) throw GenerationServiceError.fromProto(f.error, requestId);
    throw new GenerationServiceError('the generation failed', Code.Internal, '', requestId);
  }
  const u = f.usage;
  return {
    type: 'finished',
    finishReason: FINISH_REASONS[f.finishReason] ?? 'error',
    stopString: f.stopReason.case === 'stopString' ? f.stopReason.value : undefined,
    stopTokenId: f.stopReason.case === 'stopTokenId' ? f.stopReason.value : undefined,
    usage: { promptTokens: u?.promptTokens ?? 0, completionTokens: u?.completionTokens ?? 0, cachedTokens: u?.cachedTokens ?? 0 },
  };
}

/** Collects a stream of events into a Completion. */
export async function collectCompletion(events: AsyncIterable<GenerationEvent>): Promise<Completion> {
  let model = '';
  let text = '';
  const tokenIds: number[] = [];
  const logprobs: TokenLogprob[] = [];
  const toolCalls: ToolCall[] = [];
  for await (const e of events) {
    if (e.type === 'started') model = e.model;
    else if (e.type === 'delta') {
      text += e.text;
      tokenIds.push(...e.tokenIds);
      logprobs.push(...e.logprobs);
      toolCalls.push(...e.toolCalls);
    } else return { model, text, tokenIds, logprobs, toolCalls, finish: e };
  }
  throw new GenerationServiceError('the generation ended without finishing', Code.Internal);
}
