// The id of one REST request: the client's `X-Request-Id` when it sent a sane one (a proxy in
// front may have assigned it), otherwise a new one. It is returned as `x-request-id` (as OpenAI
// does), sent to the service as metadata, and tags every log line about the request.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && /^[\x21-\x7e]{1,128}$/.test(given)) return given;
  return `req_${randomUUID().replaceAll('-', '')}`;
}
