// The client: every GenerationService RPC as a plain async function or async iterator, plus
// sessions that multiplex many requests over one Generate stream. Failures are thrown as
// GenerationServiceError (status code, offending field).
import { createClient, type Client, type Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { connectCallOptions, type CallOptions } from './call-options.ts';
import { GenerationServiceError } from './errors.ts';
import { collectCompletion, fromDelta, fromFinished, fromStarted, type Completion, type GenerationEvent } from './events.ts';
import { GenerationService, Health, HealthCheckResponse_ServingStatus, type GetServerStatusResponse, type ModelInfo } from './proto.ts';
import { toProtoGeneration, toProtoPrompt, type GenerationRequest, type PromptInput } from './request.ts';
import { GenerationSession, type SessionOptions } from './session.ts';
import { fromProtoToolCall } from './tools.ts';

export type { CallOptions } from './call-options.ts';

export interface ClientOptions {
  /** The server, e.g. "http://localhost:50051". Ignored when `transport` is given. */
  baseUrl?: string;
  /**
   * A connect transport to use instead of gRPC over HTTP/2 to baseUrl (e.g. createConnectTransport
   * from @connectrpc/connect-node for HTTP/1.1).
   */
  transport?: Transport;
}

export interface TokenizeOptions extends CallOptions {
  model?: string;
  /** Also return each token decoded on its own. */
  returnTokenStrings?: boolean;
}

export interface DetokenizeOptions extends CallOptions {
  model?: string;
  /** Leave out special tokens (beginning/end of sequence, chat markers). */
  skipSpecialTokens?: boolean;
}

export class GenerationClient {
  /** The generated connect client, for anything this wrapper does not cover. */
  readonly raw: Client<typeof GenerationService>;
  private readonly health: Client<typeof Health>;

  constructor(options: ClientOptions) {
    const transport = options.transport ?? createGrpcTransport({ baseUrl: requireBaseUrl(options.baseUrl) });
    this.raw = createClient(GenerationService, transport);
    this.health = createClient(Health, transport);
  }

  /** One request's events as they come: started, deltas, finished. */
  async *generate(request: GenerationRequest, options: CallOptions = {}): AsyncGenerator<GenerationEvent> {
    try {
      for await (const r of this.raw.generateStream(toProtoGeneration(request), connectCallOptions(options))) {
        const e = r.event;
        if (e.case === 'started') yield fromStarted(e.value);
        else if (e.case === 'delta') yield fromDelta(e.value);
        else if (e.case === 'finished') yield fromFinished(e.value);
      }
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /** One request (the Complete RPC), answered once it is finished, with the tools the model called. */
  async complete(request: GenerationRequest, options: CallOptions = {}): Promise<Completion> {
    try {
      const r = await this.raw.complete(toProtoGeneration(request), connectCallOptions(options));
      if (!r.finished) throw new Error('the server sent no finish');
      return {
        model: r.model,
        text: r.text,
        tokenIds: r.tokenIds,
        logprobs: r.logprobs,
        toolCalls: r.toolCalls.map(fromProtoToolCall),
        finish: fromFinished(r.finished),
      };
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /** Streams one request and collects it (like complete(), but cancellable mid-way through `signal`). */
  collect(request: GenerationRequest, options: CallOptions = {}): Promise<Completion> {
    return collectCompletion(this.generate(request, options));
  }

  /** Opens a Generate stream for many concurrent requests. Close it with close() or abort(). */
  session(options: SessionOptions = {}): GenerationSession {
    return new GenerationSession(this.raw, options);
  }

  /** The token ids a prompt becomes, exactly as generation would feed them to the model. */
  async tokenize(prompt: PromptInput, options: TokenizeOptions = {}): Promise<{ tokenIds: number[]; tokenStrings: string[] }> {
    const { model, returnTokenStrings, ...call } = options;
    try {
      const r = await this.raw.tokenize({ model, prompt: toProtoPrompt(prompt), returnTokenStrings }, connectCallOptions(call));
      return { tokenIds: r.tokenIds, tokenStrings: r.tokenStrings };
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  async detokenize(tokenIds: number[], options: DetokenizeOptions = {}): Promise<string> {
    const { model, skipSpecialTokens, ...call } = options;
    try {
      return (await this.raw.detokenize({ model, tokenIds, skipSpecialTokens }, connectCallOptions(call))).text;
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /**
   * Reads a LoRA adapter (mlx-lm's or PEFT's directory, on the server's disk) and serves it as
   * `name`; returns it as listModels() lists it (with `parent` and `adapter` set).
   */
  async loadAdapter(name: string, path: string, options: CallOptions = {}): Promise<ModelInfo> {
    try {
      const { model } = await this.raw.loadAdapter({ name, path }, connectCallOptions(options));
      if (!model) throw new Error('the server sent no model');
      return model;
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /** Stops serving a LoRA adapter; resolves once the requests using it have finished. */
  async unloadAdapter(name: string, options: CallOptions = {}): Promise<void> {
    try {
      await this.raw.unloadAdapter({ name }, connectCallOptions(options));
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /** The served models, the default first, then the LoRA adapters. */
  async listModels(options: CallOptions = {}): Promise<ModelInfo[]> {
    try {
      return (await this.raw.listModels({}, connectCallOptions(options))).models;
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /** The engine's state and load. */
  async status(options: CallOptions = {}): Promise<GetServerStatusResponse> {
    try {
      return await this.raw.getServerStatus({}, connectCallOptions(options));
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }

  /** Whether the server takes generation requests now (grpc.health.v1 says SERVING). */
  async isServing(options: CallOptions = {}): Promise<boolean> {
    try {
      return (
        (await this.health.check({ service: GenerationService.typeName }, connectCallOptions(options))).status ===
        HealthCheckResponse_ServingStatus.SERVING
      );
    } catch (e) {
      throw GenerationServiceError.from(e);
    }
  }
}

function requireBaseUrl(baseUrl: string | undefined): string {
  if (!baseUrl) throw new TypeError('GenerationClient needs a baseUrl (e.g. "http://localhost:50051") or a transport');
  return baseUrl;
}

/** A client of the server at baseUrl (e.g. "http://localhost:50051"), over gRPC. */
export function createGenerationClient(baseUrlOrOptions: string | ClientOptions): GenerationClient {
  return new GenerationClient(typeof baseUrlOrOptions === 'string' ? { baseUrl: baseUrlOrOptions } : baseUrlOrOptions);
}
