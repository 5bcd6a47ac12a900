// The OpenAI-compatible HTTP server. It is a client of the gRPC service like any other: every
// request becomes GenerationService calls over one HTTP/2 connection to `grpcTarget` (the
// service in this process, or a remote one). Routes: POST /v1/chat/completions,
// POST /v1/completions, GET /v1/models, GET /v1/models/{id}, vLLM's POST /v1/load_lora_adapter and
// POST /v1/unload_lora_adapter, vLLM's POST /tokenize and /detokenize, GET /health, GET /metrics,
// GET /version, GET /openapi.json and its docs page GET /docs; the /v1 prefix is optional, as in
// vLLM and llama.cpp. A graceful shutdown drains it: new requests get 503 while the ones in
// progress are answered to the end.
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createLimitedHttpServer, DEFAULT_HTTP_LIMITS, type HttpLimits } from '../util/http-limits.ts';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { checkApiKey } from './api-key.ts';
import { chatFormat } from './chat-format.ts';
import { readChatRequest } from './chat-request.ts';
import { answerDocs } from './docs-page.ts';
import { completionFormat } from './completion-format.ts';
import { readCompletionRequest, type CompletionPlan } from './completion-request.ts';
import { answerGeneration, type GenerationContext } from './generation-endpoint.ts';
import { errorFromThrown, type ParamNames } from './grpc-error.ts';
import { checkHealth } from './health-endpoint.ts';
import { DEFAULT_MAX_BODY_BYTES, readJsonBody, sendJson } from './http-io.ts';
import { HttpMetrics } from './http-metrics.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { loadLoraAdapter, unloadLoraAdapter } from './lora-endpoints.ts';
import { listModels, retrieveModel } from './models-endpoint.ts';
import { openApiDocument } from './openapi/openapi-document.ts';
import { OpenAIError, unavailable } from './openai-error.ts';
import { PlaygroundAssets, type PlaygroundOptions } from './playground-assets.ts';
import { promptCacheKeyFromHeader, withPromptCacheKey } from './prompt-cache-key.ts';
import { requestIdOf } from './request-id.ts';
import type { BodySchema } from './request-schemas/body-schema.ts';
import { CHAT_COMPLETION_BODY } from './request-schemas/chat-completion-schema.ts';
import { COMPLETION_BODY } from './request-schemas/completion-schema.ts';
import { LOAD_LORA_ADAPTER_BODY, UNLOAD_LORA_ADAPTER_BODY } from './request-schemas/lora-schema.ts';
import { DETOKENIZE_BODY, TOKENIZE_BODY } from './request-schemas/tokenize-schema.ts';
import { connectToService, type GenerationClient, type ServiceConnection } from './service-connection.ts';
import { detokenize, tokenize } from './tokenize-endpoints.ts';
import { UnknownFieldPolicy } from './unknown-fields.ts';
import { PACKAGE_VERSION, versionBody } from './version-endpoint.ts';

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
  /** Largest request body accepted; a larger one gets 413. Default 4 MiB (DEFAULT_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  /** Header, request and idle timeouts, and the connection cap. Default DEFAULT_HTTP_LIMITS. */
  httpLimits?: HttpLimits;
  /**
   * The registry GET /metrics serves, which the adapter's own metrics join. The full server passes
   * the process's registry (with the service's metrics); default: one of its own, with the
   * process's standard metrics.
   */
  metricsRegistry?: Registry;
  /** Refuse unknown request fields with 400 (--strict-fields); default: ignore them with a warning. */
  strictFields?: boolean;
  /** Serve the web playground at `/` (its page calls the gRPC service there). Default: no playground. */
  playground?: PlaygroundOptions;
}

export interface OpenAIAdapter {
  /** Base URL of the API, e.g. http://127.0.0.1:8080/v1. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /**
   * While draining, new requests (other than /health and /metrics) get 503, /health answers 503
   * "draining", and connections are closed after their response; requests in progress continue.
   */
  draining: boolean;
  /**
   * Leaving the balancer's pool, before draining: /health answers 503 "draining" while requests
   * are still served, so a balancer's checks take the server out before it refuses anything.
   */
  leaving: boolean;
  /** Requests being answered. */
  readonly inFlight: number;
  /** Sets `draining`; resolves when no request is being answered (true) or after timeoutMs (false). */
  drain(timeoutMs?: number): Promise<boolean>;
  /** Stops listening and closes every connection (requests still running are cut off). */
  close(): Promise<void>;
}

/** Stable per server version and model, as OpenAI's fingerprint is per backend configuration. */
export function systemFingerprint(model: string): string {
  return `fp_${createHash('sha256').update(`${PACKAGE_VERSION}\0${model}`).digest('hex').slice(0, 10)}`;
}

const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers':
    'authorization, content-type, openai-organization, openai-project, x-prompt-cache-key, x-request-id, x-stainless-*',
  'access-control-expose-headers': 'x-request-id, retry-after',
};

type Route =
  | 'chat'
  | 'completions'
  | 'models'
  | 'model'
  | 'load_lora'
  | 'unload_lora'
  | 'tokenize'
  | 'detokenize'
  | 'health'
  | 'metrics'
  | 'version'
  | 'openapi'
  | 'docs';

/** Routes for machines (probes, scrapers): open without the API key, answered while draining, logged at debug. */
const OPERATIONS_ROUTES: ReadonlySet<Route> = new Set(['health', 'metrics']);

/**
 * The path of a request target, without its query. Not through `new URL`: it reads '//x' as a
 * host, and throws on targets such as '//'.
 */
export function requestPath(target: string | undefined): string {
  const path = (target ?? '/').split(/[?#]/, 1)[0];
  return path.startsWith('/') ? path : `/${path}`;
}

/** The route of a path, with the model id for GET /v1/models/{id} and the file for GET /docs/{file}. */
export function matchRoute(pathname: string): { route: Route; modelId?: string; file?: string } | undefined {
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/health') return { route: 'health' };
  if (path === '/metrics') return { route: 'metrics' };
  if (path === '/version') return { route: 'version' };
  if (path === '/openapi.json') return { route: 'openapi' };
  if (path === '/docs') return { route: 'docs', file: '' };
  if (path.startsWith('/docs/')) return { route: 'docs', file: path.slice('/docs/'.length) };
  const rest = path.startsWith('/v1/') ? path.slice(3) : path;
  if (rest === '/chat/completions') return { route: 'chat' };
  if (rest === '/completions') return { route: 'completions' };
  if (rest === '/models') return { route: 'models' };
  if (rest === '/load_lora_adapter') return { route: 'load_lora' };
  if (rest === '/unload_lora_adapter') return { route: 'unload_lora' };
  if (rest === '/tokenize') return { route: 'tokenize' };
  if (rest === '/detokenize') return { route: 'detokenize' };
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

/** A path as shown in an error message: cut short. */
function quotePath(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

const ROUTE_METHODS: Record<Route, string> = {
  chat: 'POST',
  completions: 'POST',
  models: 'GET',
  model: 'GET',
  load_lora: 'POST',
  unload_lora: 'POST',
  tokenize: 'POST',
  detokenize: 'POST',
  health: 'GET',
  metrics: 'GET',
  version: 'GET',
  openapi: 'GET',
  docs: 'GET',
};

const NO_NAMES: ParamNames = { prompt: 'prompt', maxTokens: 'max_tokens', topLogprobs: 'top_logprobs', model: 'model' };

async function echoTexts(
  client: GenerationClient,
  plan: CompletionPlan,
  call: { signal: AbortSignal; headers: Record<string, string> },
): Promise<string[] | undefined> {
  if (!plan.echo) return undefined;
  return Promise.all(
    plan.rawPrompts.map(async (p) =>
      typeof p === 'string' ? p : (await client.detokenize({ model: plan.model, tokenIds: p, skipSpecialTokens: false }, call)).text,
    ),
  );
}

/** The registry of an adapter running on its own: its metrics and the process's. */
function ownRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export async function startOpenAIAdapter(options: OpenAIAdapterOptions): Promise<OpenAIAdapter> {
  const log = options.logger ?? silentLogger;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const metrics = new HttpMetrics(options.metricsRegistry ?? ownRegistry());
  const connection: ServiceConnection = connectToService({ target: options.grpcTarget, apiKey: options.grpcApiKey });
  const { client } = connection;
  const unknownFields = new UnknownFieldPolicy(metrics.registry, options.strictFields ?? false);
  const playground = options.playground ? PlaygroundAssets.load(options.playground) : undefined;
  if (options.playground && !playground) log.warn('the playground is not built (node scripts/build.mjs); / answers 404');
  let draining = false;
  let leaving = false;
  /** Responses not yet finished; a drain waits for them. */
  const open = new Set<ServerResponse>();
  const idleWaiters = new Set<() => void>();

  async function route(req: IncomingMessage, res: ServerResponse, abort: AbortController, requestId: string, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const matched = matchRoute(path);
    if (!matched && playground?.answer(req, res, path)) return;
    if (!matched) throw new OpenAIError(404, `Invalid URL (${method} ${quotePath(path)})`, 'invalid_request_error');
    const { route, modelId, file } = matched;
    if (method !== ROUTE_METHODS[route] && !(method === 'HEAD' && ROUTE_METHODS[route] === 'GET')) {
      throw new OpenAIError(405, `Method ${method} is not allowed for ${path}; use ${ROUTE_METHODS[route]}.`, 'invalid_request_error');
    }
    if (route === 'health') {
      const health = draining || leaving ? { status: 503, body: { status: 'draining' } } : await checkHealth(client);
      sendJson(res, health.status, health.body);
      return;
    }
    if (route === 'metrics') return metrics.answer(res);
    // What the server is and how to call it: open without the key (a browser cannot send one to
    // the docs page), as vLLM leaves them.
    if (route === 'version') return sendJson(res, 200, versionBody());
    if (route === 'openapi') return sendJson(res, 200, openApiDocument());
    if (route === 'docs') return answerDocs(res, file ?? '');
    checkApiKey(req, options.apiKey);
    if (draining) throw unavailable('the server is shutting down and takes no new requests; retry on another instance');
    const headers: Record<string, string> = { 'x-request-id': requestId };
    // Checked on every API route before its body is read, so a bad header is refused early.
    const headerKey = promptCacheKeyFromHeader(req);
    /** The JSON body, its unknown fields ignored with a warning (or refused, with --strict-fields). */
    const body = async (schema: BodySchema) => {
      const json = await readJsonBody(req, maxBodyBytes);
      unknownFields.screen(json, schema, route, log.child({ requestId }));
      return json;
    };
    const ctx: GenerationContext = { client, res, abort, headers, fingerprint: systemFingerprint };
    switch (route) {
      case 'models':
        sendJson(res, 200, await listModels(client, abort.signal));
        return;
      case 'model':
        sendJson(res, 200, await retrieveModel(client, modelId ?? '', abort.signal));
        return;
      case 'load_lora':
        await loadLoraAdapter(client, await body(LOAD_LORA_ADAPTER_BODY), res, { signal: abort.signal, headers });
        return;
      case 'unload_lora':
        await unloadLoraAdapter(client, await body(UNLOAD_LORA_ADAPTER_BODY), res, { signal: abort.signal, headers });
        return;
      case 'tokenize':
        sendJson(res, 200, await tokenize(client, await body(TOKENIZE_BODY), { signal: abort.signal, headers }));
        return;
      case 'detokenize':
        sendJson(res, 200, await detokenize(client, await body(DETOKENIZE_BODY), { signal: abort.signal, headers }));
        return;
      case 'chat': {
        const plan = readChatRequest(await body(CHAT_COMPLETION_BODY));
        withPromptCacheKey(headers, plan.promptCacheKey ?? headerKey);
        await answerGeneration(ctx, plan, chatFormat({ logprobs: plan.sampling.logprobs === true }));
        return;
      }
      case 'completions': {
        const plan = readCompletionRequest(await body(COMPLETION_BODY));
        withPromptCacheKey(headers, plan.promptCacheKey ?? headerKey);
        let echo: string[] | undefined;
        try {
          echo = await echoTexts(client, plan, { signal: abort.signal, headers });
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
    const requestId = requestIdOf(req);
    const method = req.method ?? 'GET';
    const path = requestPath(req.url);
    const matched = matchRoute(path);
    const reqLog = log.child({ requestId });
    res.setHeader('x-request-id', requestId);
    for (const [k, v] of Object.entries(CORS_HEADERS)) res.setHeader(k, v);
    // Keep-alive connections would outlive the drain; each closes after its response instead.
    if (draining) res.setHeader('connection', 'close');
    if (method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    // A client that goes away before its answer is complete cancels its gRPC calls, which frees
    // its engine slots.
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) {
        reqLog.debug({ method, path }, 'client disconnected; cancelling');
        abort.abort();
      }
    });
    try {
      await route(req, res, abort, requestId, path);
    } catch (err) {
      const e = err instanceof OpenAIError ? err : errorFromThrown(err, NO_NAMES);
      if (abort.signal.aborted) reqLog.debug({ method, path, error: e.message }, 'ended after the client left');
      else if (!(err instanceof OpenAIError))
        reqLog.warn({ method, path, status: e.status, error: (err as Error).stack ?? e.message }, 'request failed');
      else if (e.status >= 500) reqLog.warn({ method, path, status: e.status, error: e.message }, 'request failed');
      if (!res.headersSent) sendJson(res, e.status, e.toBody(), e.headers);
      else if (!res.writableEnded) res.end();
    } finally {
      // Whatever is still running for this request (other choices after one failed) is not wanted.
      abort.abort();
      const handler = matched?.route ?? 'unknown';
      metrics.record(handler, method, res.statusCode);
      const fields = { method, path, status: res.statusCode, durationMs: Math.round(performance.now() - started) };
      if (matched && OPERATIONS_ROUTES.has(matched.route)) reqLog.debug(fields, 'http request');
      else reqLog.info(fields, 'http request');
    }
  }

  const track = (res: ServerResponse) => {
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (open.size === 0) for (const wake of idleWaiters) wake();
    });
  };

  const server: Server = createLimitedHttpServer(options.httpLimits ?? DEFAULT_HTTP_LIMITS, (req, res) => {
    track(res);
    handle(req, res).catch((err) => {
      // A bug in the handler itself: the client still gets an answer rather than a hang.
      log.error({ error: (err as Error).stack ?? String(err) }, 'unhandled error');
      if (!res.headersSent)
        sendJson(res, 500, { error: { message: 'internal server error', type: 'server_error', param: null, code: null } });
      else res.destroy();
    });
  });

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
  server.on('error', (err) => log.error({ error: err.message }, 'HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  const whenIdle = (timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (open.size === 0) return resolve(true);
      const done = (idle: boolean) => {
        clearTimeout(timer);
        idleWaiters.delete(wake);
        resolve(idle);
      };
      const wake = () => done(true);
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => done(false), timeoutMs) : undefined;
      idleWaiters.add(wake);
    });

  // Idle keep-alive connections stay open while draining: a client that sends on one gets a 503
  // and `connection: close`, where closing them now would race its request into a reset.
  // close() ends them.
  const setDraining = (on: boolean) => {
    draining = on;
  };

  return {
    url: `http://${urlHost}:${port}/v1`,
    host,
    port,
    get draining() {
      return draining;
    },
    set draining(on: boolean) {
      setDraining(on);
    },
    get leaving() {
      return leaving;
    },
    set leaving(on: boolean) {
      leaving = on;
    },
    get inFlight() {
      return open.size;
    },
    drain(timeoutMs = Number.POSITIVE_INFINITY) {
      setDraining(true);
      return whenIdle(timeoutMs);
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      connection.close();
    },
  };
}
