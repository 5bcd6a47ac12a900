// Engine benchmark on the default model (or --model): decode throughput at several batch sizes and
// prefill throughput for a 512-token prompt, measured on the engine itself (no server, no IPC),
// for each CPU path (the native kernels and MLX). Writes bench/results/engine.md.
// Run: `npm run bench:engine`.
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineCore } from '../src/engine/engine-core.ts';
import { DEFAULT_ENGINE_OPTIONS, type CpuKernels } from '../src/engine/engine-options.ts';
import { loadModel, type LoadedModel } from '../src/engine/load-model.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import type { EngineEvent } from '../src/engine/request.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { cpuFlags, machineDescription, today } from './machine.ts';

const program = new Command()
  .option('--model <spec>', 'model to load (default: the default model)')
  .option('--cpu-kernels <list>', 'CPU paths to measure', 'native,mlx')
  .option('--decode-tokens <n>', 'tokens each sequence generates in the decode runs', (v) => Number.parseInt(v, 10), 64)
  .option('--batches <list>', 'batch sizes to measure', '1,8,16,32')
  .option('--prompt-tokens <n>', 'prompt length for the prefill run', (v) => Number.parseInt(v, 10), 512)
  .option('--repeats <n>', 'runs of each measurement (the median is reported, with the range)', (v) => Number.parseInt(v, 10), 3)
  .option('--out <file>', 'markdown result file', join(import.meta.dirname, 'results', 'engine.md'))
  .parse();
const opts = program.opts<{
  model?: string;
  cpuKernels: string;
  decodeTokens: number;
  batches: string;
  promptTokens: number;
  repeats: number;
  out: string;
}>();

/** Runs `measure` opts.repeats times; the run with the median throughput, and the range seen (machines here are shared and noisy). */
function repeated<T extends { tokPerSec: number }>(measure: () => T): T & { range: string } {
  const runs = Array.from({ length: Math.max(1, opts.repeats) }, measure).sort((a, b) => a.tokPerSec - b.tokPerSec);
  const mid = runs[Math.floor(runs.length / 2)];
  return { ...mid, range: `${runs[0].tokPerSec.toFixed(0)}–${runs[runs.length - 1].tokPerSec.toFixed(0)}` };
}

const cacheDir = defaultCacheDir();
const loc = await resolveModel(opts.model, { cacheDir });
let events: EngineEvent[] = [];

function newEngine(model: LoadedModel, batchSize: number) {
  return new EngineCore(model, { ...DEFAULT_ENGINE_OPTIONS, batchSize, prefixCache: false }, (e) => events.push(e));
}

/** Deterministic pseudo-text token ids (the content does not matter for speed). */
function promptIds(model: LoadedModel, n: number, salt: number): number[] {
  const vocab = model.config.vocabSize;
  return Array.from({ length: n }, (_, i) => 200 + ((i * 7919 + salt * 104729) % (vocab - 400)));
}

const greedy = (maxTokens: number) => ({ ...defaultSamplingParams(), temperature: 0, maxTokens });

/** Decode tok/s: time from every sequence having its first token to the last token, all sequences. */
function decode(model: LoadedModel, batch: number): { tokPerSec: number; stepMs: number } {
  const engine = newEngine(model, batch);
  events = [];
  for (let i = 0; i < batch; i++)
    engine.submit({ id: `d${i}`, promptTokenIds: promptIds(model, 32, i), sampling: greedy(opts.decodeTokens) });
  // Prefill everything first, then time pure decode steps.
  while (events.filter((e) => e.type === 'tokens').length < batch) engine.step();
  const start = performance.now();
  const before = events.filter((e) => e.type === 'tokens').length;
  let steps = 0;
  while (engine.hasWork()) {
    engine.step();
    steps++;
  }
  const secs = (performance.now() - start) / 1000;
  const tokens = events.filter((e) => e.type === 'tokens' && e.tokenIds.length > 0).length - before;
  return { tokPerSec: tokens / secs, stepMs: (secs * 1000) / steps };
}

function prefill(model: LoadedModel, promptTokens: number, salt: number): { tokPerSec: number; ttftMs: number } {
  const engine = newEngine(model, 1);
  events = [];
  const start = performance.now();
  engine.submit({ id: 'p', promptTokenIds: promptIds(model, promptTokens, salt), sampling: greedy(1) });
  while (engine.hasWork()) engine.step();
  const ms = performance.now() - start;
  return { tokPerSec: (promptTokens / ms) * 1000, ttftMs: ms };
}

const rows: string[] = [];
for (const kernels of opts.cpuKernels.split(',') as CpuKernels[]) {
  const model = await loadModel(loc, { cacheDir, cpuKernels: kernels });
  decode(model, 2); // warm-up: the first steps allocate buffers and (MLX) compile kernels
  let base = 0;
  for (const b of opts.batches.split(',').map((x) => Number.parseInt(x, 10))) {
    const r = repeated(() => decode(model, b));
    if (b === 1) base = r.tokPerSec;
    const vs = base ? `${(r.tokPerSec / base).toFixed(2)}x` : '–';
    rows.push(
      `| ${model.runtime} | decode, batch ${b} | ${r.tokPerSec.toFixed(1)} tok/s (${r.range}) | ${r.stepMs.toFixed(1)} ms/step | ${vs} |`,
    );
    console.log(rows[rows.length - 1]);
  }
  prefill(model, 64, 1);
  let salt = 2;
  const p = repeated(() => prefill(model, opts.promptTokens, salt++));
  rows.push(
    `| ${model.runtime} | prefill, ${opts.promptTokens}-token prompt | ${p.tokPerSec.toFixed(0)} tok/s (${p.range}) | TTFT ${p.ttftMs.toFixed(0)} ms | – |`,
  );
  console.log(rows[rows.length - 1]);
}

const md = `# Engine benchmark

Model: ${loc.id} (${loc.format}). Date: ${today()}. Machine: ${machineDescription()}; CPU flags: ${cpuFlags()}.
Command: \`npm run bench:engine\` (decode: ${opts.decodeTokens} tokens per sequence after a 32-token prompt, greedy, ignore_eos;
tok/s counts every sequence's tokens during the decode phase; prefill: one request, TTFT of a ${opts.promptTokens}-token prompt).
Each figure is the median of ${opts.repeats} runs, with the range of the runs in brackets (the machine is shared).
"native" is our own CPU kernels (the default on Linux); "mlx (cpu)" is MLX's CPU backend (\`--cpu-kernels mlx\`).

| path | run | throughput (range) | per step / latency | vs batch 1 |
|---|---|---|---|---|
${rows.join('\n')}
`;
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(opts.out, md);
console.log(`wrote ${opts.out}`);
