// Reading JSON request bodies and writing JSON answers and server-sent events over node:http.
// Each SSE event is written (and so flushed) on its own; a slow client pauses the writer instead
// of piling up memory, and a client that has gone away makes every later write a no-op.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidRequest, payloadTooLarge, unsupportedMediaType } from './openai-error.ts';

/**
 * Bodies beyond this are refused with 413 (--max-body-size). A whole context window of chat
 * history is a few hundred KiB of JSON; 4 MiB leaves room and bounds what one request can make
 * the server parse and hold.
 */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * After a body turned out too large, this much more is read and thrown away so the client, still
 * sending, gets to read the 413 (closing on it would reset the connection and lose the answer).
 * A client sending more than that is cut off.
 */
const DISCARD_BYTES = 64 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Nesting beyond this is refused before any code walks the body: a request is a few levels deep,
 * and recursion over a value nested thousands deep would overflow the stack.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests objects and arrays deeper than `max` (checked without recursion). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The raw body, or a 413 once it exceeds maxBytes (by Content-Length or by what arrives). */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(req.headers['content-length']) > maxBytes;
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      else {
        chunks.length = 0;
        if (size > maxBytes + DISCARD_BYTES) req.destroy();
      }
    });
    req.on('end', () => settle(() => (tooLarge ? reject(payloadTooLarge(maxBytes)) : resolve(Buffer.concat(chunks)))));
    req.on('error', (err) => settle(() => reject(err)));
    req.on('close', () =>
      settle(() => reject(tooLarge ? payloadTooLarge(maxBytes) : new Error('the client closed the connection while sending'))),
    );
  });
}

/**
 * Whether a request's declared body type is JSON: application/json or a `+json` type. A request
 * without a Content-Type is read as JSON (some clients send none); any other type, such as the
 * form encoding `curl -d` defaults to, is refused with 415, as vLLM does.
 */
export function declaresJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const mediaType = contentType.split(';', 1)[0].trim().toLowerCase();
  return mediaType === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(mediaType);
}

export async function readJsonBody(req: IncomingMessage, maxBytes = DEFAULT_MAX_BODY_BYTES): Promise<unknown> {
  const contentType = req.headers['content-type'];
  if (!declaresJson(contentType)) throw unsupportedMediaType(contentType ?? '');
  const body = await readBody(req, maxBytes);
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw invalidRequest(null, 'The request body is not valid UTF-8; the API expects a JSON payload in UTF-8.');
  }
  if (text.trim() === '') throw invalidRequest(null, 'The request body is empty; expected a JSON object.');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidRequest(
      null,
      `We could not parse the JSON body of your request: ${(err as Error).message}. The API expects a JSON payload.`,
    );
  }
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
    throw invalidRequest(null, `The JSON body of your request is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  return value;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export class SseStream {
  private closed = false;

  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Tells nginx-like proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.flushHeaders();
    res.once('close', () => (this.closed = true));
  }

  get isOpen(): boolean {
    return !this.closed && !this.res.destroyed;
  }

  /** Writes one `data:` event; waits while the client is not reading. */
  async send(data: unknown): Promise<void> {
    await this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream the way OpenAI does: `data: [DONE]`. */
  async done(): Promise<void> {
    await this.write('data: [DONE]\n\n');
    if (this.isOpen) this.res.end();
  }

  private async write(text: string): Promise<void> {
    if (!this.isOpen) return;
    if (!this.res.write(text)) {
      // Whichever comes first; the other listener is removed so long streams do not collect them.
      const stop = new AbortController();
      try {
        await Promise.race([once(this.res, 'drain', { signal: stop.signal }), once(this.res, 'close', { signal: stop.signal })]);
      } finally {
        stop.abort();
      }
    }
  }
}
