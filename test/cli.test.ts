// The mlx-batch-server executable as a user runs it: --help, refused flag values, the whole server
// on a tiny model with an API key (REST and gRPC both demand it), the `adapter` sub-command in
// front of that server's gRPC port, and a clean exit on SIGTERM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import OpenAI from 'openai';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { HealthCheckResponse_ServingStatus, Health } from '../src/gen/grpc/health/v1/health_pb.ts';
import { engineOptions } from '../src/cli/program.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/engine-options.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { BIN, launchCli, waitForHealth, type CliProcess } from './helpers/cli-process.ts';
import { parseCli } from './helpers/cli-flags.ts';

const ENGINE_RUNTIME_BLOCKER = new URL('./helpers/block-engine-runtime.mjs', import.meta.url).pathname;

const run = promisify(execFile);

describe('flags', () => {
  test('--help lists every flag with its default', async () => {
    const { stdout } = await run(process.execPath, [BIN, '--help']);
    const help = stdout.replace(/\s+/g, ' ');
    for (const flag of [
      '--model',
      '--batch-size',
      '--use-prompt-cache',
      '--disable-prompt-cache',
      '--radix-cache-size',
      '--enable-prefix-caching',
      '--no-enable-prefix-caching',
      '--prefix-cache-size',
      '--port',
      '--host',
      '--grpc-port',
      '--api-key',
      '--max-queue',
      '--log-level',
      '--prefill-chunk',
      '--kv-cache-bytes',
      '--served-model-name',
      '--max-model-len',
      '--chat-template',
      '--generation-config',
      '--lora',
      '--lora-modules',
      '--max-loras',
      '--max-lora-rank',
    ]) {
      assert.ok(help.includes(flag), `--help does not mention ${flag}`);
    }
    for (const fallback of [
      '"SmolLM2-135M-Instruct"',
      '(default: 32)',
      '(default: 1073741824)',
      '(default: 8080)',
      '(default: "127.0.0.1")',
      '(default: 50051)',
      'MLX_BATCH_SERVER_API_KEY',
    ]) {
      assert.ok(help.includes(fallback), `--help does not show ${fallback}`);
    }
    assert.match(help, /adapter \[options\]/);
  });

  test('--strict-fields, on both commands; off by default', async () => {
    assert.equal((await parseCli()).serve?.strictFields, undefined);
    assert.equal((await parseCli('--strict-fields')).serve?.strictFields, true);
    assert.equal((await parseCli('adapter', '--grpc-target', 'h:1', '--strict-fields')).adapter?.strictFields, true);
  });

  test("the seed's flags map onto the engine options", async () => {
    const defaults = (await parseCli()).serve!;
    assert.equal(defaults.model, 'SmolLM2-135M-Instruct');
    assert.equal(defaults.port, 8080);
    assert.equal(defaults.host, '127.0.0.1');
    assert.equal(defaults.grpcPort, 50051);
    assert.deepEqual(engineOptions(defaults), DEFAULT_ENGINE_OPTIONS);
    assert.equal(engineOptions(defaults).prefixCache, true);
    assert.equal(engineOptions(defaults).batchSize, 32);
    assert.equal(engineOptions(defaults).prefixCacheBytes, 1073741824);

    const flags = (
      await parseCli(
        '--batch-size',
        '8',
        '--radix-cache-size',
        '2GiB',
        '--disable-prompt-cache',
        '--max-queue',
        '5',
        '--prefill-chunk',
        '64',
        '--kv-cache-bytes',
        '512MiB',
      )
    ).serve!;
    assert.deepEqual(engineOptions(flags), {
      ...DEFAULT_ENGINE_OPTIONS,
      batchSize: 8,
      prefixCacheBytes: 2 * 1024 ** 3,
      prefixCache: false,
      maxQueue: 5,
      prefillTokens: 64,
      kvBudgetBytes: 512 * 1024 ** 2,
    });
    assert.equal(engineOptions((await parseCli('--use-prompt-cache')).serve!).prefixCache, true);
    // vLLM's names and ours for the same settings; the seed's names are their aliases.
    assert.equal(engineOptions((await parseCli('--no-enable-prefix-caching')).serve!).prefixCache, false);
    assert.equal(engineOptions((await parseCli('--enable-prefix-caching')).serve!).prefixCache, true);
    assert.equal(engineOptions((await parseCli('--prefix-cache-size', '3GiB')).serve!).prefixCacheBytes, 3 * 1024 ** 3);
    const adapter = (await parseCli('adapter', '--grpc-target', 'gpu-box:50051', '--port', '9000')).adapter!;
    assert.equal(adapter.grpcTarget, 'gpu-box:50051');
    assert.equal(adapter.port, 9000);
  });

  test("vLLM's --served-model-name, --max-model-len, --chat-template and --generation-config", async () => {
    const defaults = (await parseCli()).serve!;
    assert.deepEqual(
      [defaults.servedModelName, defaults.maxModelLen, defaults.chatTemplate, defaults.generationConfig],
      [undefined, undefined, undefined, 'auto'],
    );
    const flags = (
      await parseCli(
        '--served-model-name',
        'llama',
        'org/llama-3',
        '--max-model-len',
        '32K',
        '--chat-template',
        '{{ messages[0].content }}\\n',
        '--generation-config',
        'vllm',
      )
    ).serve!;
    assert.deepEqual(flags.servedModelName, ['llama', 'org/llama-3']);
    assert.equal(flags.maxModelLen, 32768);
    assert.equal(engineOptions(flags).maxModelLen, 32768);
    assert.equal(flags.chatTemplate, '{{ messages[0].content }}\n');
    assert.equal(flags.generationConfig, 'vllm');
    assert.equal((await parseCli('--max-model-len', '4096')).serve?.maxModelLen, 4096);
    assert.equal((await parseCli('--max-model-len', '1.5k')).serve?.maxModelLen, 1500);
    assert.deepEqual((await parseCli('--served-model-name', 'a', '--served-model-name', 'b')).serve?.servedModelName, ['a', 'b']);
    const dir = mkdtempSync(join(tmpdir(), 'chat-template-'));
    try {
      writeFileSync(join(dir, 'chat.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %}');
      assert.equal(
        (await parseCli('--chat-template', join(dir, 'chat.jinja'))).serve?.chatTemplate,
        '{% for m in messages %}{{ m.content }}{% endfor %}',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad value is refused naming the flag', async () => {
    for (const args of [
      ['--batch-size', '0'],
      ['--max-model-len', '0'],
      ['--max-model-len', '1.5K'],
      ['--chat-template', 'no-such-template.jinja'],
      ['--chat-template', '{% if %}'],
      ['--generation-config', 'model'],
      ['--served-model-name', ''],
      ['--port', '70000'],
      ['--radix-cache-size', 'lots'],
      ['--log-level', 'loud'],
      ['adapter', '--grpc-target', 'nowhere'],
    ]) {
      const { serve, adapter, error } = await parseCli(...args);
      assert.equal(serve ?? adapter, undefined, `${args.join(' ')} was accepted`);
      assert.match(error, new RegExp(args.at(-2)!), error);
    }
    assert.match((await parseCli('--use-prompt-cache', '--disable-prompt-cache')).error, /cannot be used with/);
    assert.match((await parseCli('adapter')).error, /required option '--grpc-target/);
  });

  test("--lora (repeatable), vLLM's --lora-modules, --max-loras and --max-lora-rank", async () => {
    const lora = join(import.meta.dirname, 'fixtures', 'lora');
    const defaults = engineOptions((await parseCli()).serve!);
    assert.deepEqual([defaults.loras, defaults.maxLoras, defaults.maxLoraRank], [[], 4, 64]);
    const flags = (
      await parseCli(
        '--lora',
        `a=${join(lora, 'mlx')}`,
        '--lora',
        'b=test/fixtures/lora/peft',
        '--lora-modules',
        `c=${join(lora, 'peft-rslora')}`,
        `{"name": "d", "path": "${join(lora, 'mlx')}"}`,
        '--max-loras',
        '2',
        '--max-lora-rank',
        '16',
        '--enable-lora',
      )
    ).serve!;
    assert.deepEqual(engineOptions(flags), {
      ...DEFAULT_ENGINE_OPTIONS,
      loras: [
        { name: 'a', path: join(lora, 'mlx') },
        { name: 'b', path: join(process.cwd(), 'test/fixtures/lora/peft') },
        { name: 'c', path: join(lora, 'peft-rslora') },
        { name: 'd', path: join(lora, 'mlx') },
      ],
      maxLoras: 2,
      maxLoraRank: 16,
    });
    const refused = async (args: string[], message: RegExp) => {
      const { serve, error } = await parseCli(...args);
      assert.equal(serve, undefined, `${args.join(' ')} was accepted`);
      assert.match(error, message, error);
    };
    const mlx = join(lora, 'mlx');
    await refused(['--lora', mlx], /--lora.*expected name=path/);
    await refused(['--lora', `=${mlx}`], /--lora.*name \(before "="\) must not be empty/);
    await refused(['--lora', 'a='], /--lora.*has no path/);
    await refused(['--lora', 'a=/no/such/adapter'], /--lora.*\/no\/such\/adapter does not exist/);
    await refused(['--lora', `a=${join(mlx, 'adapter_config.json')}`], /--lora.*is not a directory/);
    await refused(['--lora', `a=${mlx}`, '--lora', `a=${mlx}`], /--lora.*"a" is given twice/);
    await refused(['--lora-modules', '{"name": "a"}'], /--lora-modules.*"name" and "path"/);
    await refused(['--lora', `a=${mlx}`, '--lora-modules', `a=${mlx}`], /"a" is given twice/);
    await refused(['--lora', `m=${mlx}`, '--served-model-name', 'x', 'm'], /"m" is a name of the model/);
    await refused(['--lora', `default=${mlx}`], /"default" is a name of the model/);
    await refused(['--max-loras', '0'], /--max-loras/);
    await refused(['--max-lora-rank', '0'], /--max-lora-rank/);
    await refused(['--max-lora-rank', 'big'], /--max-lora-rank/);
  });

  test('--api-key-file reads the key from a file; a missing or empty file is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-file-'));
    try {
      writeFileSync(join(dir, 'key'), 'sk-from-file\n');
      writeFileSync(join(dir, 'empty'), '\n');
      assert.equal((await parseCli('--api-key-file', join(dir, 'key'))).serve?.apiKeyFile, 'sk-from-file');
      assert.equal(
        (await parseCli('adapter', '--grpc-target', 'h:1', '--grpc-api-key-file', join(dir, 'key'))).adapter?.grpcApiKeyFile,
        'sk-from-file',
      );
      assert.match((await parseCli('--api-key-file', join(dir, 'missing'))).error, /--api-key-file.*cannot read/);
      assert.match((await parseCli('--api-key-file', join(dir, 'empty'))).error, /--api-key-file.*holds no key/);
      assert.match((await parseCli('--api-key', 'x', '--api-key-file', join(dir, 'key'))).error, /cannot be used with/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("--max-model-len beyond the model's context: the executable exits with status 1 naming both numbers", async () => {
    const modelDir = writeTinyModel({ ...TEST_MODEL_SPEC, contextLength: 512 });
    try {
      await assert.rejects(
        run(process.execPath, [
          BIN,
          '--model',
          modelDir,
          '--port',
          '0',
          '--grpc-port',
          '0',
          '--max-model-len',
          '1k',
          '--log-level',
          'error',
        ]),
        (err: { code: number; stderr: string }) => {
          assert.equal(err.code, 1);
          assert.match(err.stderr, /--max-model-len 1000 is more than the model's context length of 512 tokens/);
          return true;
        },
      );
    } finally {
      await rm(modelDir, { recursive: true, force: true });
    }
  });

  test('the executable reports a usage error and exits non-zero', async () => {
    await assert.rejects(run(process.execPath, [BIN, '--batch-size', 'many']), (err: { code: number; stderr: string }) => {
      assert.notEqual(err.code, 0);
      assert.match(err.stderr, /--batch-size/);
      return true;
    });
  });
});

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  return code as number | null;
}

describe('the server with an API key, and the adapter alone in front of it', () => {
  const KEY = 'sk-cli-test';
  let modelDir: string;
  let server: CliProcess;

  before(async () => {
    modelDir = writeTinyModel(TEST_MODEL_SPEC);
    server = await launchCli(
      [
        '--model',
        modelDir,
        '--port',
        '0',
        '--grpc-port',
        '0',
        '--batch-size',
        '4',
        '--kv-cache-bytes',
        '256MiB',
        '--radix-cache-size',
        '64MiB',
        '--log-level',
        'warn',
      ],
      { MLX_BATCH_SERVER_API_KEY: KEY },
    );
    await waitForHealth(server.api);
  });
  after(async () => {
    await stop(server.child);
    await rm(modelDir, { recursive: true, force: true });
  });

  test('REST needs the key from MLX_BATCH_SERVER_API_KEY', async () => {
    const noKey = await fetch(`${server.api}/models`);
    assert.equal(noKey.status, 401);
    const openai = new OpenAI({ baseURL: server.api, apiKey: KEY, maxRetries: 0 });
    const r = await openai.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    assert.equal(r.choices.length, 1);
  });

  test('gRPC needs the key as authorization metadata; health checks do not', async () => {
    const transport = createGrpcTransport({ baseUrl: `http://${server.grpc}` });
    const client = createClient(GenerationService, transport);
    await assert.rejects(client.listModels({}), (err: unknown) => ConnectError.from(err).code === Code.Unauthenticated);
    await assert.rejects(
      client.listModels({}, { headers: { authorization: 'Bearer wrong' } }),
      (err: unknown) => ConnectError.from(err).code === Code.Unauthenticated,
    );
    const { models } = await client.listModels({}, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(models.length, 1);
    const health = await createClient(Health, transport).check({ service: '' });
    assert.equal(health.status, HealthCheckResponse_ServingStatus.SERVING);
  });

  test('`adapter --grpc-target` serves the same API from another process, where node-mlx cannot load', async () => {
    // The blocker really blocks: node-mlx and a native addon fail to load under it.
    for (const load of [
      "await import('@frost-beta/mlx')",
      "createRequire(import.meta.url)('./native/cpu-kernels/build/cpu-kernels.node')",
    ]) {
      const r = spawnSync(
        process.execPath,
        ['--import', ENGINE_RUNTIME_BLOCKER, '--input-type=module', '-e', `import { createRequire } from 'node:module'; ${load}`],
        { encoding: 'utf8' },
      );
      assert.notEqual(r.status, 0, `${load} loaded`);
      assert.match(r.stderr, /cannot be loaded in this process/);
    }
    // The gRPC key from a file, as an operator keeps it out of the process list.
    const keyDir = mkdtempSync(join(tmpdir(), 'grpc-key-'));
    writeFileSync(join(keyDir, 'key'), `${KEY}\n`);
    const adapter = await launchCli(
      ['adapter', '--grpc-target', server.grpc, '--port', '0', '--grpc-api-key-file', join(keyDir, 'key'), '--log-level', 'warn'],
      {},
      ['--import', ENGINE_RUNTIME_BLOCKER],
    );
    try {
      await waitForHealth(adapter.api);
      // This adapter was given no REST key of its own: it needs none, and passes the gRPC key on.
      const openai = new OpenAI({ baseURL: adapter.api, apiKey: 'anything', maxRetries: 0 });
      const stream = await openai.completions.create({ model: 'default', prompt: 'abc', max_tokens: 3, stream: true });
      let chunks = 0;
      for await (const _ of stream) chunks++;
      assert.ok(chunks >= 1);
    } finally {
      assert.equal(await stop(adapter.child), 0);
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  test('SIGTERM shuts the server down cleanly', async () => {
    assert.equal(await stop(server.child), 0, server.stderr());
  });
});

test('an engine that keeps dying is restarted --max-engine-restarts times, then the server exits with status 1', async () => {
  const modelDir = writeTinyModel(TEST_MODEL_SPEC);
  const server = await launchCli([
    '--model',
    modelDir,
    '--port',
    '0',
    '--grpc-port',
    '0',
    '--max-engine-restarts',
    '1',
    '--log-level',
    'warn',
  ]);
  try {
    const engineProcess = () => {
      const r = spawnSync('pgrep', ['-P', String(server.child.pid)], { encoding: 'utf8' });
      return Number(r.stdout.trim().split('\n')[0]);
    };
    await waitForHealth(server.api);
    const first = engineProcess();
    process.kill(first, 'SIGKILL');
    // Restarted once (a new engine process serves again)...
    for (let i = 0; i < 400 && !(engineProcess() > 0 && engineProcess() !== first); i++) await new Promise((r) => setTimeout(r, 25));
    await waitForHealth(server.api);
    // ...and after the second quick death the server leaves it to its supervisor.
    process.kill(engineProcess(), 'SIGKILL');
    assert.equal(await server.exited, 1, server.stderr());
    assert.match(server.stderr(), /the engine keeps failing; exiting with status 1/);
  } finally {
    server.child.kill('SIGKILL');
    await rm(modelDir, { recursive: true, force: true });
  }
});
