// A prompt (text, chat messages or token ids) as the token ids the engine computes, checked
// against the model's context: here, at the edge, so that errors name the field the client sent
// and the engine only ever sees token ids.
import { InvalidArgumentError } from '../engine/sampling-params.ts';
import type { PromptInput } from './generation.ts';
import type { Tokenizer } from './tokenizer.ts';

/** What a prompt is checked against. */
export interface PromptLimits {
  contextLength: number;
}

/** Bytes of a vocabulary's longest token, per tokenizer (computed once). */
const longestTokenBytes = new WeakMap<Tokenizer, number>();

/**
 * Refuses, without tokenizing it, a text that cannot fit the context window: no token spells more
 * characters than the longest token has bytes, so a text over contextLength times that (doubled,
 * for normalizers) has too many tokens. Tokenizing megabytes would only waste seconds.
 */
export function checkPromptChars(tokenizer: Tokenizer, field: string, text: string, limits: PromptLimits): void {
  let longest = longestTokenBytes.get(tokenizer);
  if (longest === undefined) {
    longest = 1;
    for (let id = 0; id < tokenizer.vocabSize; id++) longest = Math.max(longest, tokenizer.tokenBytes(id).length);
    longestTokenBytes.set(tokenizer, longest);
  }
  const limit = 2 * limits.contextLength * longest;
  if (text.length > limit) {
    throw new InvalidArgumentError(
      field,
      `this model's maximum context length is ${limits.contextLength} tokens, but the prompt has ${text.length} characters, far more than fit (at most ${limit})`,
    );
  }
}

/** What tokenizing a prompt needs: the text to encode (with its options), or ids already given. */
export type PromptText = { field: string; text: string; addSpecialTokens: boolean } | { field: string; tokenIds: number[] };

/** The text a prompt is encoded from (chat: rendered with the template), checked for size. */
export function promptText(tokenizer: Tokenizer, input: PromptInput, limits: PromptLimits): PromptText {
  switch (input?.kind) {
    case 'text':
      if (typeof input.text !== 'string') throw InvalidArgumentError.ofField('prompt', ' must be a string');
      checkPromptChars(tokenizer, 'prompt', input.text, limits);
      return { field: 'prompt', text: input.text, addSpecialTokens: input.addSpecialTokens ?? true };
    case 'chat': {
      // tool_choice "none": the model answers in text, so it is not shown the tools.
      const tools = input.toolChoice && 'mode' in input.toolChoice && input.toolChoice.mode === 'none' ? [] : input.tools;
      const text = tokenizer.applyChatTemplate(input.messages, { addGenerationPrompt: input.addGenerationPrompt ?? true, tools });
      checkPromptChars(tokenizer, 'messages', text, limits);
      // The template already wrote the special tokens (as vLLM and transformers do).
      return { field: 'messages', text, addSpecialTokens: false };
    }
    case 'tokens':
      // Their range is the vocabulary's: the service checks it under the request's own field
      // name, and the engine checks it again before any id reaches the model.
      if (!Array.isArray(input.tokenIds)) throw InvalidArgumentError.ofField('prompt_token_ids', ' must be a list of integers');
      return { field: 'prompt_token_ids', tokenIds: [...input.tokenIds] };
    default:
      throw new InvalidArgumentError('input', 'a request needs a prompt: text, chat messages or token ids');
  }
}

/** Checks a tokenized prompt (and max_tokens) against the context window. */
export function checkPromptLength(field: string, ids: readonly number[], maxTokens: number | undefined, limits: PromptLimits): void {
  if (ids.length === 0) throw new InvalidArgumentError(field, 'the prompt is empty');
  const context = limits.contextLength;
  if (ids.length >= context) {
    throw new InvalidArgumentError(
      'prompt',
      `this model's maximum context length is ${context} tokens, but the prompt has ${ids.length} tokens (at least one token must be left for the output)`,
    );
  }
  if (maxTokens !== undefined && ids.length + maxTokens > context) {
    throw new InvalidArgumentError(
      'max_tokens',
      `this model's maximum context length is ${context} tokens; the prompt has ${ids.length} tokens and max_tokens is ${maxTokens}`,
    );
  }
}

/** Tokenizes a prompt here and now (the service moves big texts to a worker first; see tokenizer-pool.ts). */
export function promptTokenIds(tokenizer: Tokenizer, input: PromptInput, maxTokens: number | undefined, limits: PromptLimits): number[] {
  const p = promptText(tokenizer, input, limits);
  const ids = 'tokenIds' in p ? p.tokenIds : tokenizer.encode(p.text, { addSpecialTokens: p.addSpecialTokens });
  checkPromptLength(p.field, ids, maxTokens, limits);
  return ids;
}

/** What tokenizes long texts off the event loop (tokenizer-pool.ts). */
export interface PromptEncoder {
  readonly tokenizer: Tokenizer;
  encode(text: string, opts: { addSpecialTokens: boolean }): Promise<number[]>;
}

/** promptTokenIds, with long texts tokenized off the event loop. */
export async function tokenizePrompt(
  encoder: PromptEncoder,
  input: PromptInput,
  maxTokens: number | undefined,
  limits: PromptLimits,
): Promise<number[]> {
  const p = promptText(encoder.tokenizer, input, limits);
  const ids = 'tokenIds' in p ? p.tokenIds : await encoder.encode(p.text, { addSpecialTokens: p.addSpecialTokens });
  checkPromptLength(p.field, ids, maxTokens, limits);
  return ids;
}
