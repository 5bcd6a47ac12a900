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

export type { TokenLogprob, TopLogprob } from './proto.ts';

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error';

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
  finish: FinishedEvent;
}

const FINISH_REASONS: Partial<Record<ProtoFinishReason, FinishReason>> = {
  [ProtoFinishReason.STOP]: 'stop',
  [ProtoFinishReason.LENGTH]: 'length',
  [ProtoFinishReason.CANCELLED]: 'cancelled',
  [ProtoFinishReason.ERROR]: 'error',
};

export function fromStarted(s: GenerationStarted): StartedEvent {
  return { type: 'started', promptTokens: s.promptTokens, cachedTokens: s.cachedTokens, model: s.model };
}

export function fromDelta(d: GenerationDelta): DeltaEvent {
  return { type: 'delta', text: d.text, tokenIds: d.tokenIds, logprobs: d.logprobs };
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
  for await (const e of events) {
    if (e.type === 'started') model = e.model;
    else if (e.type === 'delta') {
      text += e.text;
      tokenIds.push(...e.tokenIds);
      logprobs.push(...e.logprobs);
    } else return { model, text, tokenIds, logprobs, finish: e };
  }
  throw new GenerationServiceError('the generation ended without finishing', Code.Internal);
}
