// Requests over this server's gRPC API (mlxserve.v1) with the TypeScript client package: one
// GenerateStream call per request (streaming) or Complete (not streaming).
import { createGenerationClient, type GenerationClient, type GenerationRequest } from '../../clients/typescript/src/index.ts';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import type { Interceptor } from '@connectrpc/connect';
import { eosLogitBias, type Backend, type GenerationSettings, type SendResult } from './backend.ts';
import type { BenchRequest } from './workload.ts';

export class GrpcBackend implements Backend {
  readonly endpoint = 'grpc' as const;
  private readonly client: GenerationClient;
  /** Owned here so close() can end the HTTP/2 connection (it would keep the process alive). */
  private readonly session: Http2SessionManager;

  constructor(
    url: string,
    private readonly settings: GenerationSettings,
  ) {
    const key = settings.apiKey;
    const auth: Interceptor = (next) => (req) => {
      req.header.set('authorization', `Bearer ${key}`);
      return next(req);
    };
    this.session = new Http2SessionManager(url);
    this.client = createGenerationClient({
      transport: createGrpcTransport({ baseUrl: url, sessionManager: this.session, interceptors: key ? [auth] : [] }),
    });
  }

  private request(r: BenchRequest): GenerationRequest {
    const s = this.settings;
    const bias = eosLogitBias(s);
    return {
      model: s.model,
      prompt: r.body.kind === 'chat' ? { messages: r.body.messages } : r.body.text,
      sampling: {
        temperature: s.temperature,
        maxTokens: r.maxTokens,
        ignoreEos: s.eos === 'ignore',
        ...(bias ? { logitBias: Object.fromEntries(Object.entries(bias).map(([id, v]) => [Number(id), v])) } : {}),
      },
    };
  }

  async send(r: BenchRequest, onTokens: (n: number) => void): Promise<SendResult> {
    const call = { timeoutMs: this.settings.timeoutMs };
    if (!this.settings.stream) {
      const c = await this.client.complete(this.request(r), call);
      onTokens(c.finish.usage.completionTokens);
      return {
        promptTokens: c.finish.usage.promptTokens,
        outputTokens: c.finish.usage.completionTokens,
        finishReason: c.finish.finishReason,
      };
    }
    let promptTokens: number | undefined;
    let counted = 0;
    let finished: SendResult | undefined;
    // Read to the end of the stream rather than returning at `finished`: leaving early would leave
    // the call's deadline timer running (and the process alive) until it fires.
    for await (const e of this.client.generate(this.request(r), call)) {
      if (e.type === 'started') promptTokens = e.promptTokens;
      else if (e.type === 'delta') {
        if (e.tokenIds.length > 0) {
          counted += e.tokenIds.length;
          onTokens(e.tokenIds.length);
        }
      } else
        finished = {
          promptTokens: e.usage.promptTokens ?? promptTokens,
          outputTokens: e.usage.completionTokens,
          finishReason: e.finishReason,
        };
    }
    return finished ?? { promptTokens, outputTokens: counted };
  }

  async close(): Promise<void> {
    this.session.abort();
  }
}
