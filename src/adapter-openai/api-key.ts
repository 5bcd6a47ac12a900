// The REST API key: `Authorization: Bearer <key>`, compared in constant time. /health and
// /metrics stay open (load balancers and Prometheus scrape them without credentials, as with
// vLLM); they reveal counts and states, never prompts or outputs.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { unauthorized } from './openai-error.ts';

/** Compares SHA-256 digests (equal lengths), so neither the key's length nor its content leaks through timing. */
export function keyMatches(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Throws a 401 unless the request carries `apiKey`; no key configured: no check. */
export function checkApiKey(req: IncomingMessage, apiKey: string | undefined): void {
  if (!apiKey) return;
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
  if (!match) {
    throw unauthorized(
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    );
  }
  if (!keyMatches(match[1], apiKey)) throw unauthorized('Incorrect API key provided.');
}
