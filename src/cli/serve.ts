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
import { DEFAULT_MODEL_NAME, modelInfo, type ModelInfo, type ServedModel } from '../service/model-info.ts';
import { defaultSamplingParams } from '../engine/sampling-params.ts';
import { checkChatTemplate } from '../text/chat-template.ts';
import { type GenerationConfigReading, type GenerationDefaults, readGenerationDefaults } from '../text/generation-config.ts';
import { grammarVocabulary } from '../text/grammar-vocabulary.ts';
import { loadTokenizer } from '../text/load-tokenizer.ts';
import { TokenizerPool } from '../text/tokenizer-pool.ts';
import type { RestartPolicy } from '../engine/restart-policy.ts';
import { startGrpcServer, type GrpcServer } from '../service/grpc-server.ts';
import { CorsPolicy, pageOrigins } from '../service/cors-policy.ts';
import { playgroundGrpcHost } from '../adapter-openai/playground-assets.ts';
import { dtypeRefusal, metalPossible } from '../engine/weight-precision.ts';
import { gracefulShutdown, type ShutdownTimes } from './graceful-shutdown.ts';
import { requireApiKey } from './grpc-api-key.ts';
import type { HttpLimits } from '../util/http-limits.ts';

export interface ServerConfig {
  /** --model: a path, a Hugging Face id, or undefined for the default model. */
  model?: string;
  /** --revision: branch, tag or commit of a Hugging Face repo `model`. */
  revision?: string;
  /** --offline: no network (HF_HUB_OFFLINE=1 also turns it on). */
  offline?: boolean;
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
  /** Refuse unknown REST request fields with 400 (--strict-fields); default: ignore them with a warning. */
  strictFields?: boolean;
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
  /**
   * Names the model is served under (--served-model-name): the first is its id (in ListModels,
   * /v1/models and responses), the others aliases requests may use too. Default: the model's name.
   */
  servedModelNames?: readonly string[];
  /** A chat template in place of the model's (--chat-template): the template itself. It must parse. */
  chatTemplate?: string;
  /** Sampling defaults from the model's generation_config.json (auto, the default) or none (vllm). */
  generationConfig?: GenerationConfigMode;
  /** Serve the web playground at the REST port's `/` (--no-ui: off). Default true. */
  ui?: boolean;
  /** Origins of web pages allowed to call the gRPC service, besides the playground's (--allowed-origins). */
  allowedOrigins?: readonly string[];
}

/** --generation-config, as vLLM's: `auto` reads the model's generation_config.json, `vllm` ignores it. */
export const GENERATION_CONFIG_MODES = ['auto', 'vllm'] as const;
export type GenerationConfigMode = (typeof GENERATION_CONFIG_MODES)[number];

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
   * Stops gracefully: reports not-ready for shutdownDelayMs while still serving, then refuses new
   * requests, lets running ones finish for up to drainTimeoutMs (then cancels them), closes both
   * servers and stops the engine.
   */
  shutdown(times: ShutdownTimes): Promise<void>;
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
  // Refused before anything is fetched or loaded.
  if (config.chatTemplate !== undefined) checkChatTemplate(config.chatTemplate, 'the chat template (--chat-template)');
  // Without Metal every path computes in f32 (the engine checks again on the device it gets).
  const dtypeRefused = metalPossible() ? undefined : dtypeRefusal(config.engine.dtype, 'cpu');
  if (dtypeRefused) throw new Error(dtypeRefused);
  const [servedId, ...aliases] = config.servedModelNames ?? [];
  if ([servedId, ...aliases].some((name) => name === '')) throw new Error('--served-model-name: a model name must not be empty');
  const cacheDir = config.cacheDir ?? defaultCacheDir();
  const resolved = await resolveModel(config.model, {
    cacheDir,
    revision: config.revision,
    offline: config.offline,
    progressBar: config.progressBar,
    log: (line) => log.info(line),
  });
  log.info(`model ${resolved.id} (${resolved.format}) at ${resolved.path}`);
  // The engine, the tokenizer and every response know the model by the name it is served under.
  const model = servedId === undefined ? resolved : { ...resolved, id: servedId };
  if (servedId !== undefined) log.info({ servedModelNames: config.servedModelNames }, `served as "${servedId}"`);
  const generation = await generationDefaults(model, config.generationConfig ?? 'auto');
  for (const warning of generation.warnings) log.warn(warning);
  log.info(samplingDefaultsLog(generation), 'sampling defaults for the fields a request leaves unset');
  const served: ServedModel = { aliases, samplingDefaults: generation.defaults };
  for (const { name } of config.engine.loras) {
    if (name === model.id || name === DEFAULT_MODEL_NAME || aliases.includes(name)) {
      throw new Error(`--lora: the adapter name "${name}" is a name of the model; requests naming it get the model. Choose another name.`);
    }
  }

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
  const tokenizer = loadTokenizer(model, { chatTemplate: config.chatTemplate }).then((t) => {
    if (config.toolCallFormat) t.toolCallFormat = config.toolCallFormat;
    if (config.chatTemplate !== undefined) {
      log.info(
        { characters: config.chatTemplate.length, toolCallFormat: t.toolCallFormat },
        "chat template from --chat-template (in place of the model's)",
      );
    }
    return new TokenizerPool(t, model);
  });
  tokenizer.catch((err: Error) => log.error({ error: err.message }, 'the tokenizer failed to load'));

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const interceptors: Interceptor[] = config.apiKey ? [requireApiKey(config.apiKey)] : [];
  const ui = config.ui ?? true;
  const cors = new CorsPolicy(config.allowedOrigins ?? []);
  const grpc = await startGrpcServer({
    engine,
    tokenizer,
    host: config.grpcHost,
    port: config.grpcPort,
    interceptors,
    logger: log,
    logPrompts: config.logPrompts,
    served,
    metricsRegistry: metrics,
    maxMessageBytes: config.grpcMaxMessageBytes,
    httpLimits: config.httpLimits,
    cors,
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
      strictFields: config.strictFields,
      httpLimits: config.httpLimits,
      metricsRegistry: metrics,
      playground: ui ? { grpcPort: grpc.port, grpcHost: playgroundGrpcHost(config.grpcHost, config.host) } : undefined,
    });
    // The playground's page is another origin (another port) than the gRPC service it calls.
    if (ui) cors.allow(pageOrigins(config.host, adapter.port));
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
  const shutdown = (times: ShutdownTimes) => (closing ??= gracefulShutdown({ adapter, grpc, engine }, times, log));
  // Ready when both the engine and the tokenizer are, and they agree on the vocabulary.
  const ready = Promise.all([engine.start(), tokenizer]).then(([info, pool]) => {
    if (pool.tokenizer.vocabSize > info.vocabSize) {
      throw new Error(`the tokenizer has ${pool.tokenizer.vocabSize} tokens but the model's embedding only ${info.vocabSize}`);
    }
    engine.setGrammarVocabulary(grammarVocabulary(pool.tokenizer, info.vocabSize));
    return modelInfo(info, pool.tokenizer, served);
  });
  // The caller awaits `ready`; this keeps a load failure from also counting as unhandled.
  ready.catch(() => {});
  return { model, engine, grpc, adapter, grpcTarget, metrics, ready, shutdown, close };
}

/** The model's sampling defaults: from its generation_config.json unless told not to (or a GGUF, which has none). */
async function generationDefaults(model: ResolvedModel, mode: GenerationConfigMode): Promise<GenerationConfigReading & { source: string }> {
  if (mode === 'vllm') return { defaults: {}, warnings: [], source: '--generation-config vllm: the built-in defaults' };
  if (model.format !== 'hf')
    return { defaults: {}, warnings: [], source: 'a GGUF file has no generation_config.json: the built-in defaults' };
  return { ...(await readGenerationDefaults(model.path)), source: 'generation_config.json over the built-in defaults' };
}

/** What a request that sets none of the sampling fields gets, and whence, for the startup log. */
function samplingDefaultsLog(generation: { defaults: GenerationDefaults; source: string }): Record<string, unknown> {
  const d = defaultSamplingParams();
  const m = generation.defaults;
  const fields = {
    temperature: [m.temperature, d.temperature],
    top_p: [m.topP, d.topP],
    top_k: [m.topK, d.topK],
    min_p: [m.minP, d.minP],
    repetition_penalty: [m.repetitionPenalty, d.repetitionPenalty],
    // Built in: none, so a chat completion may fill the context (a completion gets OpenAI's 16).
    max_tokens: [m.maxTokens, null],
  };
  return {
    samplingDefaults: Object.fromEntries(Object.entries(fields).map(([name, [model, builtIn]]) => [name, model ?? builtIn])),
    fromModel: Object.entries(fields)
      .filter(([, [model]]) => model !== undefined)
      .map(([name]) => name),
    source: generation.source,
  };
}
