// What a caller writes (plain objects, numbers, strings) → the mlxserve.v1 request messages.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { PromptSchema, SamplingParamsSchema } from './proto.ts';

export interface ChatMessage {
  /** "system", "user", "assistant" or "tool". */
  role: string;
  content: string;
}

/**
 * The input: a string (raw text), raw text with options, chat messages (rendered with the
 * model's chat template) or token ids.
 */
export type PromptInput =
  | string
  | { text: string; addSpecialTokens?: boolean }
  | { messages: ChatMessage[]; addGenerationPrompt?: boolean }
  | { tokenIds: number[] };

/** Sampling parameters; unset ones take the server's defaults (see proto/mlxserve/v1/sampling.proto). */
export interface SamplingOptions {
  /** 0 is greedy. [0, 2], default 1. */
  temperature?: number;
  /** (0, 1], default 1. */
  topP?: number;
  /** 0 or -1: off. Default 0. */
  topK?: number;
  /** [0, 1], default 0. */
  minP?: number;
  /** Same seed, prompt and parameters: same tokens. */
  seed?: number | bigint;
  /** (0, 2], default 1. */
  repetitionPenalty?: number;
  /** [-2, 2], default 0. */
  presencePenalty?: number;
  /** [-2, 2], default 0. */
  frequencyPenalty?: number;
  /** Token id → bias in [-100, 100]. */
  logitBias?: Record<number, number>;
  /** Default: until a stop condition or the end of the context window. */
  maxTokens?: number;
  /** At most 16 non-empty strings; the matched one is not returned. */
  stop?: string[];
  stopTokenIds?: number[];
  ignoreEos?: boolean;
  /** Return each token's log probability. */
  logprobs?: boolean;
  /** Also return this many alternatives per token, [0, 20]. */
  topLogprobs?: number;
}

export interface GenerationRequest {
  prompt: PromptInput;
  sampling?: SamplingOptions;
  /** A model id from listModels(); default: the server's default model. */
  model?: string;
}

export function toProtoPrompt(prompt: PromptInput): MessageInitShape<typeof PromptSchema> {
  if (typeof prompt === 'string') return { input: { case: 'text', value: prompt } };
  if ('text' in prompt) return { input: { case: 'text', value: prompt.text }, addSpecialTokens: prompt.addSpecialTokens };
  if ('messages' in prompt) {
    return { input: { case: 'chat', value: { messages: prompt.messages, addGenerationPrompt: prompt.addGenerationPrompt } } };
  }
  return { input: { case: 'tokens', value: { ids: prompt.tokenIds } } };
}

export function toProtoSampling(s: SamplingOptions | undefined): MessageInitShape<typeof SamplingParamsSchema> | undefined {
  if (!s) return undefined;
  const { seed, ...rest } = s;
  return { ...rest, seed: seed === undefined ? undefined : BigInt(seed) };
}

/** The fields StartGeneration, GenerateStreamRequest and CompleteRequest share. */
export function toProtoGeneration(r: GenerationRequest) {
  return { model: r.model, prompt: toProtoPrompt(r.prompt), sampling: toProtoSampling(r.sampling) };
}
