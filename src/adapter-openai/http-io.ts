// Reading JSON request bodies and writing JSON answers and server-sent events over node:http.
// Each SSE event is written (and so flushed) on its own; a slow client pauses the writer instead
// of piling up memory, and a client that has gone away makes every later write a no-op.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidRequest, OpenAIError } from './openai-error.ts';

/** Bodies beyond this are refused: chat histories are large, but not this large. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new OpenAIError(413, `The request body is larger than ${MAX_BODY_BYTES} bytes.`, 'invalid_request_error');
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw invalidRequest(null, 'The request body is empty; expected a JSON object.');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidRequest(null, `We could not parse the JSON body of your request: ${(err as Error).message}. The API expects a JSON payload.`);
  }
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
