// What an OpenAI request asks the service to run, once its body is read and checked: the prompts,
// how many choices per prompt, the sampling parameters, and how to answer (stream or not).
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { PromptSchema } from '../gen/mlxserve/v1/prompt_pb.ts';
import type { ParamNames } from './grpc-error.ts';
import type { SamplingInit } from './sampling-fields.ts';

export type PromptInit = MessageInitShape<typeof PromptSchema>;

/** Names that select the server's default model, whatever its id (the seed's README uses "default"). */
export const DEFAULT_MODEL_ALIASES: ReadonlySet<string> = new Set(['default', '']);

export interface GenerationPlan {
  /** The model id to ask the service for; undefined for the server's default. */
  model: string | undefined;
  /** One entry per prompt; choices are numbered prompt by prompt, n each. */
  prompts: PromptInit[];
  n: number;
  /** Sampling shared by all choices; the seed is set per choice. */
  sampling: SamplingInit;
  seed: number | undefined;
  stream: boolean;
  includeUsage: boolean;
  /** The body's prompt_cache_key, sent to the service as metadata. */
  promptCacheKey: string | undefined;
  names: ParamNames;
}

/** The model id to send, from the request's `model` field. */
export function serviceModel(requested: string | undefined): string | undefined {
  return requested === undefined || DEFAULT_MODEL_ALIASES.has(requested) ? undefined : requested;
}
