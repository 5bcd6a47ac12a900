// Starts the whole server (engine, gRPC service, OpenAI adapter) on free ports for the Python
// tests and prints one JSON line with its addresses once the model is loaded. `--tiny` serves a
// tiny random-weight model written for the occasion. The server stops when stdin closes (the
// test process went away) or on SIGTERM/SIGINT.
//   node --import tsx test/python/launch-server.ts --tiny [--api-key KEY]
import { Command } from 'commander';
import { rmSync } from 'node:fs';
import { createLogger } from '../../src/log/logger.ts';
import { startServer } from '../../src/cli/serve.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/engine/engine-options.ts';
import { TEST_MODEL_SPEC } from '../helpers/test-server.ts';
import { writeTinyModel } from '../helpers/tiny-model.ts';

const opts = new Command()
  .option('--tiny', 'serve a tiny random-weight model')
  .option('--model <spec>', 'model to serve instead')
  .option('--api-key <key>', 'require this API key')
  .option('--log-level <level>', 'server log level', 'warn')
  .parse()
  .opts<{ tiny?: boolean; model?: string; apiKey?: string; logLevel: 'error' | 'warn' | 'info' | 'debug' }>();

if (!opts.tiny && !opts.model) {
  process.stderr.write('launch-server: give --tiny or --model\n');
  process.exit(2);
}
// A 4096-token context: an unbounded request runs for seconds, long enough to see it cancelled.
const tinyDir = opts.tiny ? writeTinyModel(TEST_MODEL_SPEC) : undefined;
const server = await startServer({
  model: tinyDir ?? opts.model,
  engine: { ...DEFAULT_ENGINE_OPTIONS, batchSize: 8, kvBudgetBytes: 256 * 1024 ** 2 },
  host: '127.0.0.1',
  port: 0,
  grpcHost: '127.0.0.1',
  grpcPort: 0,
  apiKey: opts.apiKey,
  logger: createLogger(opts.logLevel),
  progressBar: false,
});

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await server.close().catch(() => {});
  if (tinyDir) rmSync(tinyDir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
process.stdin.on('end', () => void stop(0));
process.stdin.on('close', () => void stop(0));
process.stdin.resume();

try {
  const info = await server.ready;
  process.stdout.write(
    `${JSON.stringify({
      base_url: server.adapter.url,
      http_port: server.adapter.port,
      grpc_port: server.grpc.port,
      grpc_target: server.grpcTarget,
      model: info.id,
    })}\n`,
  );
} catch (err) {
  process.stderr.write(`launch-server: the model did not load: ${(err as Error).message}\n`);
  await stop(1);
}
