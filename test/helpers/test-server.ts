// A real engine and gRPC server on a tiny random-weight model, on a free port, for service and
// client tests.
//
// As a library: `const server = await startTestServer(); … await server.close();`
// As a command (for the Python and Go client tests):
//   node --import tsx test/helpers/test-server.ts [--port N]
// prints exactly one JSON line `{"port":N,"model":"<id>"}` on stdout once the model is loaded
// and the server is serving, then serves until SIGTERM or SIGINT. Logs go to stderr.
import { grammarVocabulary } from '../../src/text/grammar-vocabulary.ts';
import { realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/engine/engine-options.ts';
import { EngineClient } from '../../src/engine/engine-client.ts';
import { resolveModel } from '../../src/model-source/model-source.ts';
import { modelInfo, type ModelInfo } from '../../src/service/model-info.ts';
import { loadTokenizer } from '../../src/text/load-tokenizer.ts';
import { TokenizerPool } from '../../src/text/tokenizer-pool.ts';
import { startGrpcServer, type GrpcServer } from '../../src/service/grpc-server.ts';
import { writeTinyModel, type TinyModelSpec } from './tiny-model.ts';

/** Small enough to load in about a second, with room for long generations (cancel tests). */
export const TEST_MODEL_SPEC: TinyModelSpec = {
  numLayers: 2,
  hiddenSize: 64,
  numHeads: 4,
  numKvHeads: 2,
  contextLength: 4096,
  logitScale: 4,
  seed: 11,
};

export interface TestServerOptions {
  model?: TinyModelSpec;
  engine?: Partial<EngineOptions>;
  port?: number;
  /** Resolve as soon as the server listens, while the model still loads (default: once it is loaded). */
  whileLoading?: boolean;
}

export interface TestServer {
  port: number;
  /** The served model's id (what requests may name in `model`). */
  model: string;
  /** http://127.0.0.1:PORT, for client transports. */
  baseUrl: string;
  engine: EngineClient;
  server: GrpcServer;
  /** Resolves when the model is loaded and the engine serves. */
  ready: Promise<ModelInfo>;
  close(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = writeTinyModel({ ...TEST_MODEL_SPEC, ...options.model });
  const location = await resolveModel(dir);
  const engine = new EngineClient({
    model: location,
    cacheDir: tmpdir(),
    engine: {
      ...DEFAULT_ENGINE_OPTIONS,
      batchSize: 8,
      kvBudgetBytes: 256 * 1024 ** 2,
      prefixCacheBytes: 64 * 1024 ** 2,
      ...options.engine,
    },
  });
  // As the real server does: listen first (health says NOT_SERVING), then load the model.
  const tokenizer = loadTokenizer(location).then((t) => new TokenizerPool(t, location));
  const server = await startGrpcServer({ engine, tokenizer, host: '127.0.0.1', port: options.port ?? 0 });
  const ready = Promise.all([engine.start(), tokenizer]).then(([info, pool]) => {
    engine.setGrammarVocabulary(grammarVocabulary(pool.tokenizer, info.vocabSize));
    return modelInfo(info, pool.tokenizer);
  });
  ready.catch(() => {}); // a caller that does not wait still sees the failure through `ready`
  if (!options.whileLoading) await ready;
  return {
    port: server.port,
    model: location.id,
    baseUrl: `http://127.0.0.1:${server.port}`,
    engine,
    server,
    ready,
    async close() {
      await server.close();
      await engine.stop();
      await (await tokenizer).close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once the engine runs and queues nothing, or rejects after timeoutMs: how tests see that
 * a cancelled, dropped or expired request freed its slot (a request left running would hold it
 * for seconds).
 */
export async function waitForIdleEngine(engine: EngineClient, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = engine.stats();
    if (stats && stats.running === 0 && stats.waiting === 0) return;
    if (Date.now() > deadline) throw new Error(`the engine still has ${stats?.running} running and ${stats?.waiting} waiting requests`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const portArg = process.argv.indexOf('--port');
  const server = await startTestServer({ port: portArg > 0 ? Number.parseInt(process.argv[portArg + 1], 10) : undefined });
  process.stdout.write(`${JSON.stringify({ port: server.port, model: server.model })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`test-server: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`test-server: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
