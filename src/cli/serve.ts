// The whole server in one process: the engine (in its supervised child process), the gRPC service
// on --grpc-port, and the OpenAI adapter on --port as a gRPC client of that service. Both ports
// listen while the model loads, so /health and the gRPC health service can report "starting".
// One Prometheus registry holds the process's metrics (service, engine, HTTP, Node's own), served
// at the REST port's /metrics.
import type { ToolCallFormat } from '../text/tool-calls/tool-types.ts';
import type { Interceptor } from '@connectrpc/connect';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { startOpenAIAdapter, type OpenAIAdapter } from '../adapter-openai/adapter-server.ts';
import type { Logger } from '../log/logger.ts';
import type { EngineOptions } from '../engine/engine-options.ts';
import { EngineClient } from '../engine/engine-client.ts';
import { defaultCacheDir, resolveModel, type ResolvedModel } from '../model-source/model-source.ts';
import { modelInfo, type ModelInfo } from '../service/model-info.ts';
import { grammarVocabulary } from '../text/grammar-vocabulary.ts';
import { loadTokenizer } from '../text/load-tokenizer.ts';
import { TokenizerPool } from '../text/tokenizer-pool.ts';
import type { RestartPolicy } from '../engine/restart-policy.ts';
import { startGrpcServer, type GrpcServer } from '../service/grpc-server.ts';
import { gracefulShutdown } from './graceful-shutdown.ts';
import { requireApiKey } from './grpc-api-key.ts';
import type { HttpLimits } from '../util/http-limits.ts';

export interface ServerConfig {
  /** --model: a path, a Hugging Face id, or undefined for the default model. */
  model?: string;
  cacheDir?: string;
  engine: EngineOptions;
  host: string;
  port: number;
  grpcHost: string;
  grpcPort: number;
  apiKey?: string;
  logger: Logger;
  /** Log each request's prompt (default false). */
  logPrompts?: boolean;
  /** The format the model writes tool calls in (default: read from its chat template). */
  toolCallFormat?: ToolCallFormat;
  /** Largest REST request body, in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** Largest gRPC request message, in bytes (default 4 MiB). */
  grpcMaxMessageBytes?: number;
  /** Timeouts and connection cap of both ports (default DEFAULT_HTTP_LIMITS). */
  httpLimits?: HttpLimits;
  /** When the engine process is restarted after it dies (default DEFAULT_RESTART_POLICY). */
  restartPolicy?: Partial<RestartPolicy>;
  /** Engine load progress (layers done / total). */
  onLoadProgress?: (done: number, total: number) => void;
  /** Draw download progress bars (default: when stderr is a terminal). */
  progressBar?: boolean;
}

export interface RunningServer {
  model: ResolvedModel;
  engine: EngineClient;
  grpc: GrpcServer;
  adapter: OpenAIAdapter;
  /** The address the adapter dials: the gRPC service of this process. */
  grpcTarget: string;
  /** The process's metrics, served at the REST port's /metrics. */
  metrics: Registry;
  /** Resolves when the model is loaded and the engine serves. */
  ready: Promise<ModelInfo>;
  /**
   * Stops gracefully: refuses new requests, lets running ones finish for up to drainTimeoutMs
   * (then cancels them), closes both servers and stops the engine.
   */
  shutdown(drainTimeoutMs: number): Promise<void>;
  /** Stops at once: running requests are cut off. */
  close(): Promise<void>;
}

/** The address to dial for a server listening on `host` (a wildcard means this machine). */
export function dialTarget(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '') return `127.0.0.1:${port}`;
  if (host === '::') return `[::1]:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const log = config.logger;
  const cacheDir = config.cacheDir ?? defaultCacheDir();
  const model = await resolveModel(config.model, { cacheDir, progressBar: config.progressBar, log: (line) => log.info(line) });
  log.info(`model ${model.id} (${model.format}) at ${model.path}`);

  const engine = new EngineClient({
    model,
    cacheDir,
    engine: config.engine,
    onProgress: config.onLoadProgress,
    restartPolicy: config.restartPolicy,
  });
  engine.on('restart', (why: string, delayMs: number) =>
    log.warn({ why, delayMs, restarts: engine.restarts }, 'engine process stopped; restarting'),
  );
  // Without a listener an EventEmitter 'error' would end the process.
  engine.on('error', (err: Error) => log.error({ error: err.message }, 'engine failed'));

  // The tokenizer loads here, beside the engine (which never needs it).
  const tokenizer = loadTokenizer(model).then((t) => {
    if (config.toolCallFormat) t.toolCallFormat = config.toolCallFormat;
    return new TokenizerPool(t, model);
  });
  tokenizer.catch((err: Error) => log.error({ error: err.message }, 'the tokenizer failed to load'));

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const interceptors: Interceptor[] = config.apiKey ? [requireApiKey(config.apiKey)] : [];
  const grpc = await startGrpcServer({
    engine,
    tokenizer,
    host: config.grpcHost,
    port: config.grpcPort,
    interceptors,
    logger: log,
    logPrompts: config.logPrompts,
    metricsRegistry: metrics,
    maxMessageBytes: config.grpcMaxMessageBytes,
    httpLimits: config.httpLimits,
  });
  const grpcTarget = dialTarget(config.grpcHost, grpc.port);
  let adapter: OpenAIAdapter;
  try {
    adapter = await startOpenAIAdapter({
      grpcTarget,
      grpcApiKey: config.apiKey,
      apiKey: config.apiKey,
      host: config.host,
      port: config.port,
      logger: log,
      maxBodyBytes: config.maxBodyBytes,
      httpLimits: config.httpLimits,
      metricsRegistry: metrics,
    });
  } catch (err) {
    await grpc.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await adapter.close();
      await grpc.close();
      await engine.stop();
      await (await tokenizer.catch(() => undefined))?.close();
    })());
  const shutdown = (drainTimeoutMs: number) => (closing ??= gracefulShutdown({ adapter, grpc, engine }, drainTimeoutMs, log));
  // Ready when both the engine and the tokenizer are, and they agree on the vocabulary.
  const ready = Promise.all([engine.start(), tokenizer]).then(([info, pool]) => {
    if (pool.tokenizer.vocabSize > info.vocabSize) {
      throw new Error(`the tokenizer has ${pool.tokenizer.vocabSize} tokens but the model's embedding only ${info.vocabSize}`);
    }
    engine.setGrammarVocabulary(grammarVocabulary(pool.tokenizer, info.vocabSize));
    return modelInfo(info, pool.tokenizer);
  });
  // The caller awaits `ready`; this keeps a load failure from also counting as unhandled.
  ready.catch(() => {});
  return { model, engine, grpc, adapter, grpcTarget, metrics, ready, shutdown, close };
}
