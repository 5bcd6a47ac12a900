// OpenAI's `prompt_cache_key`: a client's name for the prefix its requests share (a conversation,
// a user, a system prompt). This server's prefix cache needs no key to hit, but a balancer in
// front of several replicas does: requests carrying the same key should reach the replica whose
// cache already holds their prefix (deploy/haproxy/haproxy.cfg hashes on it). The adapter takes
// the key from the body or from an `x-prompt-cache-key` header and sends it on as gRPC metadata
// of the same name, so a gRPC balancer between the adapter and a remote service routes the same way.
import type { IncomingMessage } from 'node:http';
import { invalidRequest } from './openai-error.ts';
import { invalidType, type RequestBody } from './request-body.ts';

/** The metadata (and HTTP header) name that carries the key. */
export const PROMPT_CACHE_KEY_HEADER = 'x-prompt-cache-key';

/** The longest key in UTF-8 bytes: a routing key, not a payload (and it travels in a header). */
export const MAX_PROMPT_CACHE_KEY_BYTES = 256;

function checkLength(param: string, key: string): void {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_PROMPT_CACHE_KEY_BYTES) {
    throw invalidRequest(param, `Invalid '${param}': at most ${MAX_PROMPT_CACHE_KEY_BYTES} bytes (UTF-8), got ${bytes}.`);
  }
}

/** The body's `prompt_cache_key`; an empty string counts as none (it would name no prefix). */
export function readPromptCacheKey(body: RequestBody): string | undefined {
  const v = body.value('prompt_cache_key');
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType('prompt_cache_key', 'a string', v);
  checkLength('prompt_cache_key', v);
  return v === '' ? undefined : v;
}

/** The request's `x-prompt-cache-key` header: printable ASCII, as any header value a proxy passes on. */
export function promptCacheKeyFromHeader(req: IncomingMessage): string | undefined {
  // Distinct values: two keys cannot both route one request (Node would join them with ", ").
  const values = req.headersDistinct[PROMPT_CACHE_KEY_HEADER] ?? [];
  const given = values[0];
  if (given === undefined || (values.length === 1 && given === '')) return undefined;
  if (values.length > 1 || !/^[\x20-\x7e]*$/.test(given)) {
    throw invalidRequest(PROMPT_CACHE_KEY_HEADER, `Invalid '${PROMPT_CACHE_KEY_HEADER}' header: expected one printable ASCII value.`);
  }
  checkLength(PROMPT_CACHE_KEY_HEADER, given);
  return given;
}

/**
 * The key as a metadata value. gRPC metadata is printable ASCII and HTTP trims spaces at either
 * end, so any other character, a space, and `%` (keeping the mapping one-to-one) are
 * percent-encoded from their UTF-8 bytes; other ASCII keys pass unchanged.
 */
export function promptCacheKeyMetadata(key: string): string {
  // Buffer, not encodeURIComponent: a JSON string may hold a lone surrogate, which that throws on.
  return key.replace(/[^\x21-\x24\x26-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/** Adds the key, when there is one, to a call's metadata. */
export function withPromptCacheKey(headers: Record<string, string>, key: string | undefined): void {
  if (key !== undefined) headers[PROMPT_CACHE_KEY_HEADER] = promptCacheKeyMetadata(key);
}
