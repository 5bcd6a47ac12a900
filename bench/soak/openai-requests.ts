// The soak's REST requests: whole answers and streams through the bench client's OpenAI backend
// (the official SDK), streams aborted through the SDK's AbortSignal, and raw HTTP requests whose
// socket is destroyed before the answer is complete (a client that goes away).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import OpenAI from 'openai';
import { OpenAIBackend, openAIBaseUrl } from '../client/openai-backend.ts';
import { Cutter } from './cutter.ts';
import { describeError, judgeAnswer, runToEnd, thrownOutcome, type Kind, type Outcome } from './outcome.ts';
import type { CutPoint, SoakRequest } from './prompts.ts';

export interface RestSettings {
  model: string;
  apiKey?: string;
  temperature: number;
  timeoutMs: number;
}

/** What a finished answer says about itself (from a JSON body or the chunks of a stream). */
interface Answer {
  outputTokens: number;
  finishReason?: string;
}

/** The finish reason and usage of a chat completion, streamed (SSE) or whole. */
function parseAnswer(body: string, streamed: boolean): Answer {
  const docs = streamed
    ? body
        .split('\n')
        .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
        .map((l) => JSON.parse(l.slice(6)))
    : [JSON.parse(body)];
  let answer: Answer = { outputTokens: 0 };
  for (const d of docs as Array<{ usage?: { completion_tokens?: number }; choices?: Array<{ finish_reason?: string | null }> }>) {
    const finish = d.choices?.[0]?.finish_reason;
    if (finish) answer = { ...answer, finishReason: finish };
    if (d.usage?.completion_tokens !== undefined) answer = { ...answer, outputTokens: d.usage.completion_tokens };
  }
  return answer;
}

export class RestRequests {
  private readonly base: string;
  private readonly backends = new Map<string, OpenAIBackend>();
  private readonly sdk: OpenAI;

  constructor(
    url: string,
    private readonly s: RestSettings,
  ) {
    this.base = openAIBaseUrl(url);
    this.sdk = new OpenAI({ baseURL: this.base, apiKey: s.apiKey ?? 'none', maxRetries: 0, timeout: s.timeoutMs });
  }

  /** One backend per (streamed, ignore_eos) pair, made when first needed. */
  private backend(stream: boolean, ignoreEos: boolean): OpenAIBackend {
    const key = `${stream}/${ignoreEos}`;
    let b = this.backends.get(key);
    if (!b) {
      const eos = ignoreEos ? 'ignore' : 'natural';
      b = new OpenAIBackend(this.base, { ...this.s, stream, eos, eosTokenIds: [] });
      this.backends.set(key, b);
    }
    return b;
  }

  /** The JSON body of a chat request (the SDK's types do not know ignore_eos). */
  private chatBody(r: SoakRequest, stream: boolean): Record<string, unknown> {
    if (r.body.kind !== 'chat') throw new TypeError('cut-off REST requests are chat requests');
    return {
      model: this.s.model,
      messages: r.body.messages,
      max_tokens: r.maxTokens,
      temperature: this.s.temperature,
      ...(r.ignoreEos ? { ignore_eos: true } : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
  }

  /** A request that runs to its end: chat or text, streamed or not. */
  complete(kind: Kind, r: SoakRequest, stream: boolean): Promise<Outcome> {
    return runToEnd(kind, r, () =>
      this.backend(stream, r.ignoreEos).send({ body: r.body, promptTokens: 0, maxTokens: r.maxTokens }, () => {}),
    );
  }

  /** A chat stream the client aborts (AbortController) at the cut point. */
  async cancel(r: SoakRequest, cut: CutPoint): Promise<Outcome> {
    const kind = 'openai-cancel';
    const t0 = performance.now();
    const abort = new AbortController();
    const cutter = new Cutter(cut, () => abort.abort());
    try {
      const create = this.sdk.chat.completions.create.bind(this.sdk.chat.completions) as unknown as (
        body: Record<string, unknown>,
        options: { signal: AbortSignal },
      ) => Promise<AsyncIterable<OpenAI.ChatCompletionChunk>>;
      const stream = await create(this.chatBody(r, true), { signal: abort.signal });
      const answer: Answer = { outputTokens: 0 };
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) cutter.chunk();
        if (chunk.choices[0]?.finish_reason) answer.finishReason = chunk.choices[0].finish_reason;
        if (chunk.usage) answer.outputTokens = chunk.usage.completion_tokens;
      }
      // It ended although it was to be cut: it finished first (checked as a complete answer), or was cut at the very end.
      const ms = performance.now() - t0;
      return answer.finishReason === undefined && cutter.fired
        ? { kind, result: 'cancelled', outputTokens: 0, ms }
        : judgeAnswer(kind, answer, r, ms);
    } catch (err) {
      return cutter.fired
        ? { kind, result: 'cancelled', outputTokens: 0, ms: performance.now() - t0 }
        : thrownOutcome(kind, err, performance.now() - t0);
    } finally {
      cutter.done();
    }
  }

  /**
   * A raw HTTP chat request (its own connection) whose socket is destroyed at the cut point:
   * streamed, after some chunks or some time; not streamed, after some time (before the answer).
   */
  disconnect(r: SoakRequest, cut: CutPoint, stream: boolean): Promise<Outcome> {
    const kind = 'openai-disconnect';
    const t0 = performance.now();
    const url = new URL(`${this.base}/chat/completions`);
    const body = JSON.stringify(this.chatBody(r, stream));
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const settle = (o: Omit<Outcome, 'kind' | 'ms'>) => {
        if (settled) return;
        settled = true;
        cutter.done();
        resolve({ kind, ms: performance.now() - t0, ...o });
      };
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(this.s.apiKey ? { authorization: `Bearer ${this.s.apiKey}` } : {}),
        },
      });
      const cutter = new Cutter(cut, () => {
        req.destroy();
        settle({ result: 'disconnected', outputTokens: 0 });
      });
      req.setTimeout(this.s.timeoutMs, () => {
        req.destroy();
        settle({ result: 'failed', error: `no answer within ${this.s.timeoutMs} ms`, outputTokens: 0 });
      });
      req.on('error', (err) =>
        settle(
          cutter.fired ? { result: 'disconnected', outputTokens: 0 } : { result: 'failed', error: describeError(err), outputTokens: 0 },
        ),
      );
      req.on('response', (res: IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (res.statusCode === 200 && stream) for (const _ of chunk.matchAll(/"content":"[^"]/g)) cutter.chunk();
        });
        res.on('error', () => {});
        res.on('close', () =>
          settle(
            cutter.fired
              ? { result: 'disconnected', outputTokens: 0 }
              : { result: 'failed', error: 'the connection closed before the answer ended', outputTokens: 0 },
          ),
        );
        res.on('end', () => {
          if (res.statusCode !== 200) {
            const error = `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
            settle({ result: res.statusCode === 429 ? 'refused' : 'failed', error, outputTokens: 0 });
            return;
          }
          let answer: Answer;
          try {
            answer = parseAnswer(text, stream);
          } catch (err) {
            settle({ result: 'failed', error: `unreadable answer: ${describeError(err)}`, outputTokens: 0 });
            return;
          }
          const { result, error, outputTokens } = judgeAnswer(kind, answer, r, 0);
          settle({ result, error, outputTokens });
        });
      });
      req.end(body);
    });
  }

  async close(): Promise<void> {
    for (const b of this.backends.values()) await b.close();
  }
}
