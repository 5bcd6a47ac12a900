// Reads a POST /v1/completions body into a GenerationPlan. The prompt may be a string, an array
// of strings, an array of token ids or an array of token-id arrays (as in OpenAI's API); each
// prompt gets its own n choices, numbered prompt by prompt.
import { invalidRequest, unsupportedParameter } from './openai-error.ts';
import { readStructuredOutput } from './structured-output-fields.ts';
import { serviceModel, type GenerationPlan, type PromptInit } from './generation-plan.ts';
import { readPromptCacheKey } from './prompt-cache-key.ts';
import { invalidType, isInt32, RequestBody } from './request-body.ts';
import { COMPLETION_BODY } from './request-schemas/completion-schema.ts';
import { ignoreHarmlessFields, MAX_CHOICES, readN, readSharedSampling, readStreamOptions } from './sampling-fields.ts';

/** OpenAI's (and vLLM's) default token budget of a completion when max_tokens is not given. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

/** A prompt as the client sent it: text, or token ids. */
export type RawPrompt = string | number[];

const isTokenIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isSafeInteger(t));

export function readPrompts(value: unknown): RawPrompt[] {
  if (value === undefined) throw invalidRequest('prompt', "Missing required parameter: 'prompt'.", 'missing_required_parameter');
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw invalidType('prompt', 'a string or an array', value);
  if (value.length === 0)
    throw invalidRequest('prompt', "Invalid 'prompt': empty array. Expected an array with minimum length 1.", 'empty_array');
  if (value.every((p) => typeof p === 'string')) return value as string[];
  if (isTokenIds(value)) return checkTokenIdRange([value]);
  if (value.every(isTokenIds)) return checkTokenIdRange(value as number[][]);
  throw invalidType('prompt', 'a string, an array of strings, an array of token ids or an array of token-id arrays', value);
}

function checkTokenIdRange(prompts: number[][]): number[][] {
  for (const ids of prompts) {
    const bad = ids.find((id) => !isInt32(id));
    if (bad !== undefined) throw invalidRequest('prompt', `Invalid token id ${bad} in 'prompt': token ids are 32-bit integers.`);
  }
  return prompts;
}

function promptInit(p: RawPrompt): PromptInit {
  return typeof p === 'string' ? { input: { case: 'text', value: p } } : { input: { case: 'tokens', value: { ids: p } } };
}

export interface CompletionPlan extends GenerationPlan {
  rawPrompts: RawPrompt[];
  /** Prepend the prompt to each choice's text. */
  echo: boolean;
}

export function readCompletionRequest(json: unknown): CompletionPlan {
  return readCompletionBody(RequestBody.from(json, COMPLETION_BODY));
}

export function readCompletionBody(body: RequestBody): CompletionPlan {
  const requested = body.string('model');
  const rawPrompts = readPrompts(body.value('prompt'));
  const { sampling, seed } = readSharedSampling(body);
  const n = readN(body);
  if (rawPrompts.length * n > MAX_CHOICES) {
    throw invalidRequest(
      'prompt',
      `A request may ask for at most ${MAX_CHOICES} choices (prompts × n); this one asks for ${rawPrompts.length} × ${n}. Send the prompts in several requests.`,
    );
  }
  const { stream, includeUsage } = readStreamOptions(body);

  const unlimited = body.isNull('max_tokens');
  sampling.maxTokens = unlimited ? undefined : (body.int32('max_tokens') ?? DEFAULT_COMPLETION_MAX_TOKENS);

  const logprobs = body.int32('logprobs');
  sampling.logprobs = logprobs !== undefined;
  sampling.topLogprobs = logprobs;

  const echo = body.boolean('echo') ?? false;
  if (echo && logprobs !== undefined) {
    throw unsupportedParameter('echo', "'echo' together with 'logprobs' would need prompt logprobs, which this server does not compute");
  }
  const bestOf = body.integer('best_of');
  if (bestOf !== undefined && bestOf !== n) {
    throw unsupportedParameter('best_of', "ranking candidates is not implemented; leave 'best_of' unset or equal to 'n'");
  }
  body.unsupported('suffix', 'insertion (suffix) is not implemented', (v) => v === '');
  body.unsupported('min_tokens', 'a minimum output length is not implemented', (v) => v === 0);
  body.unsupported('include_stop_str_in_output', 'the stop string is never part of the output', (v) => v === false);
  const structured = readStructuredOutput(body);
  sampling.structuredOutput = structured?.output;
  ignoreHarmlessFields(body);
  const promptCacheKey = readPromptCacheKey(body);

  return {
    model: serviceModel(requested),
    rawPrompts,
    prompts: rawPrompts.map(promptInit),
    echo,
    n,
    sampling,
    seed,
    stream,
    includeUsage,
    promptCacheKey,
    names: {
      prompt: 'prompt',
      maxTokens: 'max_tokens',
      topLogprobs: 'logprobs',
      model: requested ?? 'default',
      structuredOutput: structured?.param,
    },
  };
}
