// The README's client examples run as printed (their files are included in the README verbatim)
// against a live server on a tiny model: OpenAI SDKs for Python and Node, our gRPC clients for
// TypeScript, Python and Go, and LoRA adapters loaded at run time (curl and the Node SDK).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { skipUnlessInstalled } from './helpers/required-tool.ts';

let server: ChildProcess;
let ports: { port: number; grpcPort: number };

before(async () => {
  server = spawn(process.execPath, ['--import', 'tsx', 'test/python/launch-server.ts', '--tiny'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: server.stdout! }).once('line', resolve);
    server.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  const info = JSON.parse(line);
  ports = { port: info.http_port, grpcPort: info.grpc_port };
});

after(() => {
  server.kill('SIGTERM');
});

function run(cmd: string, args: string[], cwd = '.') {
  const env = {
    ...process.env,
    OPENAI_BASE_URL: `http://127.0.0.1:${ports.port}/v1`,
    MLX_GRPC_TARGET: `127.0.0.1:${ports.grpcPort}`,
    MLX_GRPC_URL: `http://127.0.0.1:${ports.grpcPort}`,
    PYTHONPATH: 'clients/python/src',
    // The tiny model has the fixture Llama's shapes, so the fixture adapters fit it.
    LORA_PATH: resolve('test/fixtures/lora/mlx'),
  };
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const readme = readFileSync('README.md', 'utf8');
const python = '.venv/bin/python';
const clientsReady = existsSync(python) && existsSync('.tools/bin/protoc-gen-go');
const skip = skipUnlessInstalled(!clientsReady && 'client toolchains not installed', 'run scripts/setup.sh --with-clients');

for (const file of [
  'examples/openai_chat.py',
  'examples/openai-chat.mjs',
  'examples/grpc_client.py',
  'examples/grpc-client.ts',
  'clients/go/examples/chat/main.go',
  'examples/structured-output.sh',
  'examples/structured_output.py',
  'examples/tool_calls.py',
  'examples/lora.sh',
  'examples/openai-lora.mjs',
]) {
  test(`the README shows ${file} as it is`, () => {
    assert.ok(readme.includes(readFileSync(file, 'utf8').trim()), `${file} is not in the README verbatim`);
  });
}

test('OpenAI Node SDK example', () => {
  assert.ok(run(process.execPath, ['examples/openai-chat.mjs']).trim().length > 0);
});

test('TypeScript gRPC client example', () => {
  const out = run(process.execPath, ['--import', 'tsx', 'examples/grpc-client.ts']);
  assert.match(out, /cancelled/);
});

test('structured output with curl', () => {
  const out = run('bash', ['examples/structured-output.sh']);
  const [schemaReply, choiceReply] = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const pet = JSON.parse(schemaReply.choices[0].message.content);
  if (schemaReply.choices[0].finish_reason === 'stop') assert.deepEqual(Object.keys(pet), ['name', 'age', 'likes']);
  assert.ok(['yes', 'no'].includes(choiceReply.choices[0].message.content));
});

test('LoRA adapters with curl: loaded, listed, used by name, unloaded', () => {
  const [loaded, models, completion, unloaded] = run('bash', ['examples/lora.sh']).trim().split('\n');
  assert.equal(loaded, "Success: LoRA adapter 'sql' added successfully.");
  const sql = JSON.parse(models).data.find((m: { id: string }) => m.id === 'sql');
  assert.equal(sql.root, resolve('test/fixtures/lora/mlx'));
  assert.equal(JSON.parse(completion).model, 'sql');
  assert.equal(unloaded, "Success: LoRA adapter 'sql' removed successfully.");
});

test('a LoRA adapter through the OpenAI Node SDK', () => {
  const out = run(process.execPath, ['examples/openai-lora.mjs']);
  assert.match(out, /^Success: LoRA adapter 'sql' added successfully\.$/m);
  assert.match(out, /^sql \(adapter of .+\)$/m);
  assert.match(out, /^sql /m);
  assert.match(out, /^Success: LoRA adapter 'sql' removed successfully\.$/m);
});

test('structured output through the OpenAI Python SDK', { skip }, () => {
  assert.match(run(python, ['examples/structured_output.py']), /^Planet name=/);
});

test('a tool-call round trip through the OpenAI Python SDK', { skip }, () => {
  assert.match(run(python, ['examples/tool_calls.py']), /^tool_calls get_weather \{'city': /);
});

test('OpenAI Python SDK example', { skip }, () => {
  assert.match(run(python, ['examples/openai_chat.py']), /prompt_tokens/);
});

test('Python gRPC client example', { skip }, () => {
  assert.match(run(python, ['examples/grpc_client.py']), /\[\d+(, \d+)*\]/);
});

test('Go gRPC client example', { skip }, () => {
  assert.match(run('go', ['run', './examples/chat'], 'clients/go'), /FINISH_REASON_CANCELLED/);
});
