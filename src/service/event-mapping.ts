// Engine events and facts → gRPC response messages (as init shapes, which connect serializes).
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { FinishReason as EngineFinishReason, GenerationEvent, TokenLogprob, Usage } from '../text/generation.ts';
import type { AdapterInfo } from '../engine/request.ts';
import type { ModelInfo } from './model-info.ts';
import {
  ErrorCode,
  FinishReason,
  type GenerationDeltaSchema,
  type GenerationFinishedSchema,
  type GenerationStartedSchema,
  type TokenLogprobSchema,
  type UsageSchema,
} from '../gen/mlxserve/v1/generation_pb.ts';
import { LoraAdapterInfoSchema, type ModelInfoSchema } from '../gen/mlxserve/v1/generation_service_pb.ts';
import type { RequestError } from './request-error.ts';

export type StartedEvent = Extract<GenerationEvent, { type: 'started' }>;
export type DeltaEvent = Extract<GenerationEvent, { type: 'delta' }>;
export type FinishedEvent = Extract<GenerationEvent, { type: 'finished' }>;

const FINISH_REASONS: Record<EngineFinishReason, FinishReason> = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  cancelled: FinishReason.CANCELLED,
  error: FinishReason.ERROR,
  tool_calls: FinishReason.TOOL_CALLS,
};

export function toStarted(e: StartedEvent, modelId: string): MessageInitShape<typeof GenerationStartedSchema> {
  return { promptTokens: e.promptTokens, cachedTokens: e.cachedTokens, model: modelId };
}

export function toTokenLogprob(l: TokenLogprob): MessageInitShape<typeof TokenLogprobSchema> {
  return {
    tokenId: l.tokenId,
    token: l.token,
    logprob: l.logprob,
    tokenBytes: Uint8Array.from(l.bytes),
    topLogprobs: l.top.map((t) => ({ tokenId: t.tokenId, token: t.token, logprob: t.logprob, tokenBytes: Uint8Array.from(t.bytes) })),
  };
}

export function toDelta(e: DeltaEvent): MessageInitShape<typeof GenerationDeltaSchema> {
  return { text: e.text, tokenIds: e.tokenIds, logprobs: e.logprobs?.map(toTokenLogprob) ?? [], toolCalls: e.toolCalls ?? [] };
}

export function toUsage(u: Usage): MessageInitShape<typeof UsageSchema> {
  return { promptTokens: u.promptTokens, completionTokens: u.completionTokens, cachedTokens: u.cachedTokens };
}

export function toFinished(e: FinishedEvent): MessageInitShape<typeof GenerationFinishedSchema> {
  const stopReason =
    typeof e.stopReason === 'string'
      ? { case: 'stopString' as const, value: e.stopReason }
      : typeof e.stopReason === 'number'
        ? { case: 'stopTokenId' as const, value: e.stopReason }
        : { case: undefined };
  return {
    finishReason: FINISH_REASONS[e.finishReason],
    stopReason,
    usage: toUsage(e.usage),
    error: e.finishReason === 'error' ? { code: ErrorCode.INTERNAL, message: e.error ?? 'generation failed' } : undefined,
  };
}

/** The end of a request that failed after it started (e.g. the engine process died). */
export function toFailedFinish(error: RequestError, usage: Usage): MessageInitShape<typeof GenerationFinishedSchema> {
  return { finishReason: FinishReason.ERROR, usage: toUsage(usage), error: error.toProto() };
}

export function toModelInfo(
  info: ModelInfo,
  extra: { ownedBy: string; loadedAt: Date | undefined; isDefault: boolean },
): MessageInitShape<typeof ModelInfoSchema> {
  return {
    id: info.id,
    ownedBy: extra.ownedBy,
    created: extra.loadedAt ? timestampFromDate(extra.loadedAt) : undefined,
    architecture: info.architecture,
    contextLength: info.contextLength,
    vocabSize: info.vocabSize,
    hasChatTemplate: info.hasChatTemplate,
    eosTokenIds: info.eosTokenIds,
    bosTokenId: info.bosTokenId,
    hiddenSize: info.hiddenSize,
    numLayers: info.numLayers,
    kvBytesPerToken: BigInt(info.kvBytesPerToken),
    isDefault: extra.isDefault,
    aliases: [...info.aliases],
  };
}

/** A LoRA adapter as a model of its own: its base model's facts, its name, its parent and its details. */
export function toAdapterModelInfo(base: ModelInfo, adapter: AdapterInfo, ownedBy: string): MessageInitShape<typeof ModelInfoSchema> {
  return {
    ...toModelInfo(base, { ownedBy, loadedAt: new Date(adapter.loadedAt * 1000), isDefault: false }),
    id: adapter.name,
    aliases: [],
    parent: base.id,
    adapter: create(LoraAdapterInfoSchema, {
      path: adapter.path,
      format: adapter.format,
      rank: adapter.rank,
      scale: adapter.scale,
      modules: [...adapter.modules],
      layers: adapter.layers,
    }),
  };
}
