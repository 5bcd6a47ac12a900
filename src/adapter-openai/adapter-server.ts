// The OpenAI-compatible HTTP server. It is a client of the gRPC service like any other: every
// request becomes GenerationService calls over one HTTP/2 connection to `grpcTarget` (the
// service in this process, or a remote one). Routes: POST /v1/chat/completions,
// POST /v1/completions, GET /v1/models, GET /v1/models/{id}, GET /health; the /v1 prefix is
// optional, as in vLLM and llama.cpp.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chatFormat } from './chat-format.ts';
import { readChatRequest } from './chat-request.ts';
import { completionFormat } from './completion-format.ts';
import { readCompletionRequest, type CompletionPlan } from './completion-request.ts';
import { answerGeneration, type GenerationContext } from './generation-endpoint.ts';
import { errorFromThrown, type ParamNames } from './grpc-error.ts';
import { checkHealth } from './health-endpoint.ts';
import { readJsonBody, sendJson } from './http-io.ts';
import { silentLogger, type Logger } from './logger.ts';
import { listModels, retrieveModel } from './models-endpoint.ts';
import { OpenAIError, unauthorized } from './openai-error.ts';
import { connectToService, type GenerationClient, type ServiceConnection } from './service-connection.ts';

export const DEFAULT_ADAPTER_HOST = '127.0.0.1';
export const DEFAULT_ADAPTER_PORT = 8080;

export interface OpenAIAdapterOptions {
  /** host:port (or http:// URL) of the gRPC service. */
  grpcTarget: string;
  /** API key the service requires, sent as `authorization: Bearer …` metadata. */
  grpcApiKey?: string;
  /** API key REST clients must send as `Authorization: Bearer …`; unset: no authentication. */
  apiKey?: string;
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  logger?: Logger;
}

export interface OpenAIAdapter {
  /** Base URL of the API, e.g. http://127.0.0.1:8080/v1. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** Stable per server version and model, as OpenAI's fingerprint is per backend configuration. */
export function systemFingerprint(model: string): string {
  return 'fp_' + createHash('sha256').update(`${PACKAGE_VERSION}\0${model}`).digest('hex').slice(0, 10);
}

function keyMatches(given: string, expected: string): boolean {
  // Compare digests so neither the length nor the content leaks through timing.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function checkApiKey(req: IncomingMessage, apiKey: string | undefined): void {
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

const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, openai-organization, openai-project, x-stainless-*',
};

type Route = 'chat' | 'completions' | 'models' | 'model' | 'health';

/** The route of a path, with the model id for GET /v1/models/{id}. */
export function matchRoute(pathname: string): { route: Route; modelId?: string } | undefined {
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/health') return { route: 'health' };
  const rest = path.startsWith('/v1/') ? path.slice(3) : path;
  if (rest === '/chat/completions') return { route: 'chat' };
  if (rest === '/completions') return { route: 'completions' };
  if (rest === '/models') return { route: 'models' };
  // Model ids may contain slashes (e.g. "HuggingFaceTB/SmolLM2-135M-Instruct").
  if (rest.startsWith('/models/')) {
    try {
      return { route: 'model', modelId: decodeURIComponent(rest.slice('/models/'.length)) };
    } catch {
      return undefined; // a malformed %-escape: no such URL
    }
  }
  return undefined;
}

const ROUTE_METHODS: Record<Route, string> = { chat: 'POST', completions: 'POST', models: 'GET', model: 'GET', health: 'GET' };

const NO_NAMES: ParamNames = { prompt: 'prompt', maxTokens: 'max_tokens', topLogprobs: 'top_logprobs', model: 'model' };

async function echoTexts(client: GenerationClient, plan: CompletionPlan, signal: AbortSignal): Promise<string[] | undefined> {
  if (!plan.echo) return undefined;
  return Promise.all(
    plan.rawPrompts.map(async (p) =>
      typeof p === 'string' ? p : (await client.detokenize({ model: plan.model, tokenIds: p, skipSpecialTokens: false }, { signal })).text,
    ),
  );
}

export async function startOpenAIAdapter(options: OpenAIAdapterOptions): Promise<OpenAIAdapter> {
  const log = options.logger ?? silentLogger;
  const connection: ServiceConnection = connectToService({ target: options.grpcTarget, apiKey: options.grpcApiKey });
  const { client } = connection;

  async function route(req: IncomingMessage, res: ServerResponse, abort: AbortController): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const matched = matchRoute(url.pathname);
    if (!matched) throw new OpenAIError(404, `Invalid URL (${method} ${url.pathname})`, 'invalid_request_error');
    if (method !== ROUTE_METHODS[matched.route] && !(method === 'HEAD' && ROUTE_METHODS[matched.route] === 'GET')) {
      throw new OpenAIError(405, `Method ${method} is not allowed for ${url.pathname}; use ${ROUTE_METHODS[matched.route]}.`, 'invalid_request_error');
    }
    if (matched.route === 'health') {
      const health = await checkHealth(client);
      sendJson(res, health.status, health.body);
      return;
    }
    checkApiKey(req, options.apiKey);
    const ctx: GenerationContext = { client, res, abort, fingerprint: systemFingerprint };
    switch (matched.route) {
      case 'models':
        sendJson(res, 200, await listModels(client, abort.signal));
        return;
      case 'model':
        sendJson(res, 200, await retrieveModel(client, matched.modelId ?? '', abort.signal));
        return;
      case 'chat': {
        const plan = readChatRequest(await readJsonBody(req));
        await answerGeneration(ctx, plan, chatFormat({ logprobs: plan.sampling.logprobs === true }));
        return;
      }
      case 'completions': {
        const plan = readCompletionRequest(await readJsonBody(req));
        let echo: string[] | undefined;
        try {
          echo = await echoTexts(client, plan, abort.signal);
        } catch (err) {
          throw errorFromThrown(err, plan.names);
        }
        await answerGeneration(ctx, plan, completionFormat({ logprobs: plan.sampling.logprobs === true, echoTexts: echo, n: plan.n }));
        return;
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    for (const [k, v] of Object.entries(CORS_HEADERS)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    // A client that goes away before its answer is complete cancels its gRPC calls, which frees
    // its engine slots.
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) {
        log.debug(`${req.method} ${req.url}: client disconnected; cancelling`);
        abort.abort();
      }
    });
    try {
      await route(req, res, abort);
    } catch (err) {
      const e = err instanceof OpenAIError ? err : errorFromThrown(err, NO_NAMES);
      if (abort.signal.aborted) log.debug(`${req.method} ${req.url}: ended after the client left: ${e.message}`);
      else if (!(err instanceof OpenAIError)) log.warn(`${req.method} ${req.url}: ${e.status} ${(err as Error).stack ?? e.message}`);
      else if (e.status >= 500) log.warn(`${req.method} ${req.url}: ${e.status} ${e.message}`);
      if (!res.headersSent) sendJson(res, e.status, e.toBody());
      else if (!res.writableEnded) res.end();
    } finally {
      // Whatever is still running for this request (other choices after one failed) is not wanted.
      abort.abort();
      log.debug(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - started).toFixed(0)} ms`);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => log.error(`unhandled error: ${(err as Error).stack ?? err}`));
  });
  // Generations can take minutes; Node's default request timeout (5 min) would cut them off.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;

  const host = options.host ?? DEFAULT_ADAPTER_HOST;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      connection.close();
      reject(err);
    });
    server.listen(options.port ?? DEFAULT_ADAPTER_PORT, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  server.on('error', (err) => log.error(`HTTP server error: ${err.message}`));
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}/v1`,
    host,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      connection.close();
    },
  };
}
