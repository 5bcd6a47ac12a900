// Per-request sampling parameters: what a client may ask of the sampler, with the defaults and
// ranges that OpenAI's API and vLLM use. Validation names the offending field so every layer above
// (gRPC INVALID_ARGUMENT, OpenAI 400 `param`) can report it as is.
import type { StructuredOutput } from './structured-output.ts';

/** What the engine applies while sampling: everything but what the server handles in text. */
export interface EngineSamplingParams {
  /** 0 means greedy (argmax). Range [0, 2]. Default 1. */
  temperature: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability sums to top_p. (0, 1]. Default 1. */
  topP: number;
  /** Keep the k most likely tokens; 0 (or -1 from clients) disables. Default 0. */
  topK: number;
  /** Drop tokens with probability below min_p times the top token's. [0, 1]. Default 0. */
  minP: number;
  /** Seed for this request's random stream; the same seed gives the same tokens whatever else runs. */
  seed?: number;
  /** Multiplicative penalty on tokens already in prompt or output (vLLM semantics); 1 disables. (0, 2]. */
  repetitionPenalty: number;
  /** Subtracted once from the logit of every token already generated. [-2, 2]. */
  presencePenalty: number;
  /** Subtracted per occurrence from the logit of every token already generated. [-2, 2]. */
  frequencyPenalty: number;
  /** Added to the logits of the given token ids before sampling. Values in [-100, 100]. */
  logitBias: Record<number, number>;
  /** Maximum tokens to generate; undefined means until the context is full. */
  maxTokens?: number;
  /**
   * Generation stops when one of these token ids is sampled (the token is not part of the text).
   * What the server sends the engine includes the model's end-of-sequence tokens unless the client
   * asked to ignore them.
   */
  stopTokenIds: number[];
  /** Return the chosen token's log probability at each step. */
  logprobs: boolean;
  /** Also return this many most likely alternatives per step. [0, 20]. */
  topLogprobs: number;
  /**
   * Only tokens that keep the output a valid prefix of this format may be sampled
   * (structured-output.ts checks its shape; the engine's grammar compiler whether it compiles).
   */
  structuredOutput?: StructuredOutput;
}

/** A client's sampling parameters: the engine's, and what the server's text layer applies. */
export interface SamplingParams extends EngineSamplingParams {
  /** Generation stops when the text contains one of these; the stop string is not returned. */
  stop: string[];
  /** Keep generating past the model's end-of-sequence tokens. */
  ignoreEos: boolean;
}

export const MAX_TOP_LOGPROBS = 20;
export const MAX_STOP_STRINGS = 16;
/** As OpenAI's API: a bias map is a handful of tokens, and each entry costs every sampling step. */
export const MAX_LOGIT_BIAS_ENTRIES = 300;

export function defaultSamplingParams(): SamplingParams {
  return {
    temperature: 1,
    topP: 1,
    topK: 0,
    minP: 0,
    repetitionPenalty: 1,
    presencePenalty: 0,
    frequencyPenalty: 0,
    logitBias: {},
    stopTokenIds: [],
    stop: [],
    ignoreEos: false,
    logprobs: false,
    topLogprobs: 0,
  };
}

/**
 * A request field that failed validation; `field` uses the snake_case name clients send. When
 * the message is the field's name followed by `reason` (see ofField), each edge that names the
 * field differently (the gRPC path `sampling.top_p`, the REST `top_p`) can word it with its own
 * name; otherwise the message stands as it is.
 */
export class InvalidArgumentError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'InvalidArgumentError';
  }

  /** An error whose message is `field` + `reason` (e.g. "top_p" + " must be in (0, 1], got 0"). */
  static ofField(field: string, reason: string): InvalidArgumentError {
    return new InvalidArgumentError(field, field + reason, reason);
  }
}

function checkRange(field: string, value: number, min: number, max: number, opts: { minOpen?: boolean } = {}) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw InvalidArgumentError.ofField(field, ` must be a finite number, got ${String(value)}`);
  }
  const belowMin = opts.minOpen ? value <= min : value < min;
  if (belowMin || value > max) {
    const lo = opts.minOpen ? `(${min}` : `[${min}`;
    throw InvalidArgumentError.ofField(field, ` must be in ${lo}, ${max}], got ${value}`);
  }
}

function checkInteger(field: string, value: number, min: number, max: number) {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw InvalidArgumentError.ofField(field, ` must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

/**
 * Checks every field against its range and the model's vocabulary. Throws InvalidArgumentError
 * naming the first bad field. The server checks a request once when it arrives; the engine checks
 * what it is sent again, as a guard: a bad value inside MLX aborts the process.
 */
export function validateSamplingParams(p: SamplingParams, vocabSize: number): void {
  validateEngineSamplingParams(p, vocabSize);
  if (p.stop.length > MAX_STOP_STRINGS) {
    throw new InvalidArgumentError('stop', `at most ${MAX_STOP_STRINGS} stop strings are allowed, got ${p.stop.length}`);
  }
  for (const s of p.stop) {
    if (typeof s !== 'string' || s.length === 0) throw new InvalidArgumentError('stop', 'stop strings must be non-empty');
  }
}

/** validateSamplingParams for the fields the engine applies. */
export function validateEngineSamplingParams(p: EngineSamplingParams, vocabSize: number): void {
  checkRange('temperature', p.temperature, 0, 2);
  checkRange('top_p', p.topP, 0, 1, { minOpen: true });
  checkInteger('top_k', p.topK, 0, vocabSize);
  checkRange('min_p', p.minP, 0, 1);
  if (p.seed !== undefined) checkInteger('seed', p.seed, -(2 ** 53 - 1), 2 ** 53 - 1);
  checkRange('repetition_penalty', p.repetitionPenalty, 0, 2, { minOpen: true });
  checkRange('presence_penalty', p.presencePenalty, -2, 2);
  checkRange('frequency_penalty', p.frequencyPenalty, -2, 2);
  const biased = Object.keys(p.logitBias).length;
  if (biased > MAX_LOGIT_BIAS_ENTRIES) {
    throw InvalidArgumentError.ofField('logit_bias', ` may hold at most ${MAX_LOGIT_BIAS_ENTRIES} token ids, got ${biased}`);
  }
  for (const [key, bias] of Object.entries(p.logitBias)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw InvalidArgumentError.ofField('logit_bias', `: token id ${key} is outside the vocabulary [0, ${vocabSize})`);
    }
    checkRange('logit_bias', bias, -100, 100);
  }
  if (p.maxTokens !== undefined) checkInteger('max_tokens', p.maxTokens, 1, 2 ** 31 - 1);
  for (const id of p.stopTokenIds) checkInteger('stop_token_ids', id, 0, vocabSize - 1);
  checkInteger('top_logprobs', p.topLogprobs, 0, MAX_TOP_LOGPROBS);
}
