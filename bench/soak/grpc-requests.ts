// The soak's gRPC requests with the repository's TypeScript client: GenerateStream and Complete
// through the bench client's gRPC backend, GenerateStream calls cancelled (AbortSignal) or cut off
// by dropping their HTTP/2 connection, and bidirectional Generate sessions on which one request
// is cancelled with a CancelGeneration message.
import type { Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import {
  Code,
  createGenerationClient,
  GenerationServiceError,
  type FinishedEvent,
  type GenerationClient,
  type GenerationRequest,
} from '../../clients/typescript/src/index.ts';
import { GrpcBackend } from '../client/grpc-backend.ts';
import { Cutter } from './cutter.ts';
import { judgeAnswer, runToEnd, thrownOutcome, type Kind, type Outcome } from './outcome.ts';
import type { CutPoint, SoakRequest } from './prompts.ts';

export interface GrpcSettings {
  apiKey?: string;
  temperature: number;
  timeoutMs: number;
}

/** http://host:port from "host:port" or a URL. */
export function grpcBaseUrl(target: string): string {
  return /^https?:\/\//.test(target) ? target.replace(/\/+$/, '') : `http://${target}`;
}

/** A client on its own HTTP/2 connection (`manager`), sending the API key when there is one. */
export function grpcClient(baseUrl: string, apiKey?: string): { client: GenerationClient; manager: Http2SessionManager } {
  const auth: Interceptor = (next) => (req) => {
    req.header.set('authorization', `Bearer ${apiKey}`);
    return next(req);
  };
  const manager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager: manager, interceptors: apiKey ? [auth] : [] });
  return { client: createGenerationClient({ transport }), manager };
}

export class GrpcRequests {
  private readonly baseUrl: string;
  private readonly backends = new Map<string, GrpcBackend>();
  private readonly shared: { client: GenerationClient; manager: Http2SessionManager };

  constructor(
    target: string,
    private readonly s: GrpcSettings,
  ) {
    this.baseUrl = grpcBaseUrl(target);
    this.shared = grpcClient(this.baseUrl, s.apiKey);
  }

  private backend(stream: boolean, ignoreEos: boolean): GrpcBackend {
    const key = `${stream}/${ignoreEos}`;
    let b = this.backends.get(key);
    if (!b) {
      b = new GrpcBackend(this.baseUrl, { ...this.s, stream, eos: ignoreEos ? 'ignore' : 'natural', eosTokenIds: [] });
      this.backends.set(key, b);
    }
    return b;
  }

  private request(r: SoakRequest): GenerationRequest {
    return {
      prompt: r.body.kind === 'chat' ? { messages: r.body.messages } : r.body.text,
      sampling: { temperature: this.s.temperature, maxTokens: r.maxTokens, ignoreEos: r.ignoreEos },
    };
  }

  /** GenerateStream (stream) or Complete (not), to the end. */
  complete(kind: Kind, r: SoakRequest, stream: boolean): Promise<Outcome> {
    return runToEnd(kind, r, () =>
      this.backend(stream, r.ignoreEos).send({ body: r.body, promptTokens: 0, maxTokens: r.maxTokens }, () => {}),
    );
  }

  /**
   * Streams `r` on `client` and calls `cut` at the cut point. Whatever the call throws after the
   * cut is the cut's doing; an answer that finished first is checked as a complete one.
   */
  private async streamCut(
    kind: Kind,
    client: GenerationClient,
    r: SoakRequest,
    point: CutPoint,
    cut: (signal: AbortController) => void,
    cutResult: 'cancelled' | 'disconnected',
  ): Promise<Outcome> {
    const t0 = performance.now();
    const abort = new AbortController();
    const cutter = new Cutter(point, () => cut(abort));
    let finished: FinishedEvent | undefined;
    try {
      for await (const e of client.generate(this.request(r), { signal: abort.signal, timeoutMs: this.s.timeoutMs })) {
        if (e.type === 'delta' && e.tokenIds.length > 0) cutter.chunk();
        else if (e.type === 'finished') finished = e;
      }
    } catch (err) {
      return cutter.fired
        ? { kind, result: cutResult, outputTokens: 0, ms: performance.now() - t0 }
        : thrownOutcome(kind, err, performance.now() - t0);
    } finally {
      cutter.done();
    }
    return this.judge(kind, r, finished, cutter.fired ? cutResult : undefined, t0);
  }

  /** The outcome of a stream that ended without an error. */
  private judge(
    kind: Kind,
    r: SoakRequest,
    finished: FinishedEvent | undefined,
    cutResult: 'cancelled' | 'disconnected' | undefined,
    t0: number,
  ): Outcome {
    const ms = performance.now() - t0;
    if (cutResult && (!finished || finished.finishReason === 'cancelled')) return { kind, result: cutResult, outputTokens: 0, ms };
    if (!finished) return { kind, result: 'failed', error: 'the stream ended without a finish', outputTokens: 0, ms };
    return judgeAnswer(kind, { outputTokens: finished.usage.completionTokens, finishReason: finished.finishReason }, r, ms);
  }

  /** GenerateStream cancelled by the client at the cut point (the HTTP/2 stream is reset). */
  cancel(r: SoakRequest, point: CutPoint): Promise<Outcome> {
    return this.streamCut('grpc-cancel', this.shared.client, r, point, (abort) => abort.abort(), 'cancelled');
  }

  /** GenerateStream on a connection of its own, which the client drops at the cut point. */
  async disconnect(r: SoakRequest, point: CutPoint): Promise<Outcome> {
    const own = grpcClient(this.baseUrl, this.s.apiKey);
    try {
      return await this.streamCut('grpc-disconnect', own.client, r, point, () => own.manager.abort(), 'disconnected');
    } finally {
      own.manager.abort();
    }
  }

  /**
   * Several requests on one Generate stream; the one at `cancelIndex` is cancelled with a
   * CancelGeneration message at the cut point and must end with finish reason 'cancelled' (or
   * have finished before). The others run to their end.
   */
  async session(rs: SoakRequest[], cancelIndex: number, point: CutPoint): Promise<Outcome[]> {
    const kind = 'grpc-session';
    const t0 = performance.now();
    const session = this.shared.client.session({ timeoutMs: this.s.timeoutMs });
    const outcomes = await Promise.all(
      rs.map(async (r, i): Promise<Outcome> => {
        const request = session.generate(this.request(r));
        const cutter = i === cancelIndex ? new Cutter(point, () => request.cancel()) : undefined;
        let finished: FinishedEvent | undefined;
        try {
          for await (const e of request) {
            if (e.type === 'delta' && e.tokenIds.length > 0) cutter?.chunk();
            else if (e.type === 'finished') finished = e;
          }
        } catch (err) {
          // A request cancelled before it entered the batch may be answered with CANCELLED instead of a finish.
          if (cutter?.fired && err instanceof GenerationServiceError && err.code === Code.Canceled)
            return { kind, result: 'cancelled', outputTokens: 0, ms: performance.now() - t0 };
          return thrownOutcome(kind, err, performance.now() - t0);
        } finally {
          cutter?.done();
        }
        if (cutter?.fired && finished?.finishReason === 'cancelled')
          return { kind, result: 'cancelled', outputTokens: 0, ms: performance.now() - t0 };
        return this.judge(kind, r, finished, undefined, t0);
      }),
    );
    await session.close();
    return outcomes;
  }

  async close(): Promise<void> {
    for (const b of this.backends.values()) await b.close();
    this.shared.manager.abort();
  }
}
