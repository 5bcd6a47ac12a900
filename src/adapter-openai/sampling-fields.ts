// The sampling fields both endpoints share (OpenAI's plus vLLM's extensions), read from a request
// body into the service's SamplingParams. Types are checked here; ranges are checked once, by the
// service, whose INVALID_ARGUMENT names the field so the 400 can name it too.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { SamplingParamsSchema } from '../gen/mlxserve/v1/sampling_pb.ts';
import { invalidRequest } from './openai-error.ts';
import { invalidType, isInt32, outOfInt32Range, quote, type RequestBody } from './request-body.ts';

export type SamplingInit = MessageInitShape<typeof SamplingParamsSchema>;

/**
 * Choices per prompt. OpenAI allows 128; here every choice is a request of its own in the batch,
 * so a bound closer to the batch size keeps one client from filling the queue.
 */
export const MAX_N = 16;
/** Choices of one request in all (prompts × n), for completions with a list of prompts. */
export const MAX_CHOICES = 128;
/** The largest |seed| the service accepts (it must survive a round trip through a double). */
const MAX_SEED = 2 ** 53 - 1;

export function readStop(body: RequestBody): string[] {
  const v = body.value('stop');
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw invalidType('stop', 'a string or an array of strings', v);
}

function readTokenIdList(body: RequestBody, name: string): number[] {
  const v = body.value(name);
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((id) => Number.isSafeInteger(id))) throw invalidType(name, 'an array of integers', v);
  const bad = (v as number[]).find((id) => !isInt32(id));
  if (bad !== undefined) throw outOfInt32Range(name, bad);
  return v as number[];
}

export function readLogitBias(body: RequestBody): Record<number, number> {
  const bias = body.object('logit_bias');
  const out: Record<number, number> = {};
  if (!bias) return out;
  for (const [key, value] of Object.entries(bias)) {
    if (!/^\d+$/.test(key) || !isInt32(Number(key))) {
      throw invalidRequest('logit_bias', `Invalid key in 'logit_bias': ${quote(key)}. Keys must be token ids (non-negative integers).`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw invalidRequest('logit_bias', `Invalid value for 'logit_bias' token ${key}: expected a number between -100 and 100.`);
    }
    out[Number(key)] = value;
  }
  return out;
}

export function readN(body: RequestBody): number {
  const n = body.integer('n') ?? 1;
  if (n < 1 || n > MAX_N) throw invalidRequest('n', `Invalid 'n': must be between 1 and ${MAX_N}, got ${n}.`);
  return n;
}

export function readSeed(body: RequestBody): number | undefined {
  const seed = body.integer('seed');
  if (seed !== undefined && Math.abs(seed) > MAX_SEED) {
    throw invalidRequest('seed', `Invalid 'seed': must be between ${-MAX_SEED} and ${MAX_SEED}, got ${seed}.`);
  }
  return seed;
}

/**
 * The seed of choice `index` of a request with `n` choices: distinct per choice (n seeded
 * choices must not be n copies of one answer) and reproducible from the request's seed.
 */
export function choiceSeed(seed: number, index: number): number {
  return seed + index <= MAX_SEED ? seed + index : seed - index;
}

export interface SharedSampling {
  sampling: SamplingInit;
  seed: number | undefined;
}

/**
 * Reads every sampling field except the token budget and logprobs (whose names and meaning differ
 * between the endpoints).
 */
export function readSharedSampling(body: RequestBody): SharedSampling {
  const seed = readSeed(body);
  const sampling: SamplingInit = {
    temperature: body.number('temperature'),
    topP: body.number('top_p'),
    topK: body.int32('top_k'),
    minP: body.number('min_p'),
    repetitionPenalty: body.number('repetition_penalty'),
    presencePenalty: body.number('presence_penalty'),
    frequencyPenalty: body.number('frequency_penalty'),
    logitBias: readLogitBias(body),
    stop: readStop(body),
    stopTokenIds: readTokenIdList(body, 'stop_token_ids'),
    ignoreEos: body.boolean('ignore_eos'),
  };
  return { sampling, seed };
}

export interface StreamOptions {
  stream: boolean;
  includeUsage: boolean;
}

export function readStreamOptions(body: RequestBody): StreamOptions {
  const stream = body.boolean('stream') ?? false;
  const options = body.object('stream_options');
  let includeUsage = false;
  if (options) {
    if (!stream) throw invalidRequest('stream_options', "'stream_options' is only allowed when 'stream' is true.");
    const v = options.include_usage;
    if (v !== undefined && v !== null && typeof v !== 'boolean') throw invalidType('stream_options.include_usage', 'a boolean', v);
    includeUsage = v === true;
  }
  return { stream, includeUsage };
}

/** Fields of OpenAI's API that change nothing here and are accepted as is. */
export function ignoreHarmlessFields(body: RequestBody): void {
  // `user` identifies the end user for abuse monitoring; `store`, `metadata` and `service_tier`
  // concern OpenAI's platform, not generation.
  body.ignore('user', 'store', 'metadata', 'service_tier');
}
