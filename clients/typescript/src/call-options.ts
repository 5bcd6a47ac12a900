// Options every call takes, and their translation into connect's call options: the prompt cache
// key travels as metadata, where a balancer in front of several servers can read it.
import { Code, GenerationServiceError } from './errors.ts';

export interface CallOptions {
  /** Aborting it cancels the call (and its generation on the server). */
  signal?: AbortSignal;
  /** Deadline; when it expires the server stops the generation. */
  timeoutMs?: number;
  /**
   * Names the prefix this request shares with others (a conversation, a user), as OpenAI's
   * `prompt_cache_key`: sent as `x-prompt-cache-key` metadata, on which a balancer in front of
   * several servers routes, so the requests meet the server whose prefix cache holds it. At most
   * 256 bytes (UTF-8); "" is none.
   */
  promptCacheKey?: string;
}

const MAX_PROMPT_CACHE_KEY_BYTES = 256;

/** Connect's call options for ours: the prompt cache key becomes metadata. */
export function connectCallOptions(options: CallOptions): { signal?: AbortSignal; timeoutMs?: number; headers?: Record<string, string> } {
  const { promptCacheKey, ...call } = options;
  if (promptCacheKey === undefined || promptCacheKey === '') return call;
  const bytes = new TextEncoder().encode(promptCacheKey).length;
  if (bytes > MAX_PROMPT_CACHE_KEY_BYTES) {
    throw new GenerationServiceError(
      `promptCacheKey: at most ${MAX_PROMPT_CACHE_KEY_BYTES} bytes (UTF-8), got ${bytes}`,
      Code.InvalidArgument,
      'promptCacheKey',
    );
  }
  return { ...call, headers: { 'x-prompt-cache-key': metadataValue(promptCacheKey) } };
}

/**
 * Metadata is printable ASCII and HTTP trims spaces at either end, so other characters, spaces and
 * `%` are percent-encoded from their UTF-8 bytes, as the server's REST adapter sends a body's
 * prompt_cache_key: the same key routes the same way from either.
 */
function metadataValue(key: string): string {
  const encoder = new TextEncoder();
  return key.replace(/[^\x21-\x24\x26-\x7e]/gu, (c) =>
    [...encoder.encode(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}
