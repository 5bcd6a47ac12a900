// What --quantization costs and saves on each CPU path: the default model (or --model) loaded with
// quantized weights kept and dequantized, on the native kernels and on MLX's CPU backend. Each
// configuration runs in its own process so that its resident memory is its own: the weights'
// bytes as the engine reports them, RSS after loading and after the runs, and decode tok/s at
// batch 1 and 8 (engine alone, no server). Writes bench/results/quantization.md.
// Run: `node --import tsx bench/quantization-bench.ts`.
import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineCore } from '../src/engine/engine-core.ts';
import { DEFAULT_ENGINE_OPTIONS, type CpuKernels, type QuantizationMode } from '../src/engine/engine-options.ts';
import { loadModel, type LoadedModel } from '../src/engine/load-model.ts';
import type { EngineEvent } from '../src/engine/request.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import { cpuFlags, machineDescription, today } from './machine.ts';

const program = new Command()
  .option('--model <spec>', 'model to load (default: the default model)')
  .option('--configs <list>', 'path:quantization pairs to measure', 'native:keep,native:dequantize,mlx:keep,mlx:dequantize')
  .option('--decode-tokens <n>', 'tokens each sequence generates', (v) => Number.parseInt(v, 10), 32)
  .option('--batches <list>', 'batch sizes to measure', '1,8')
  .option('--repeats <n>', 'runs of each measurement (the median is reported)', (v) => Number.parseInt(v, 10), 3)
  .option('--one <config>', 'measure one configuration and print it as JSON (the parent runs each so)')
  .option('--out <file>', 'markdown result file', join(import.meta.dirname, 'results', 'quantization.md'))
  .parse();
const opts = program.opts<{
  model?: string;
  configs: string;
  decodeTokens: number;
  batches: string;
  repeats: number;
  one?: string;
  out: string;
}>();

interface Measured {
  config: string;
  runtime: string;
  precision: string;
  weightBytes: number;
  rssAfterLoad: number;
  rssAfterRuns: number;
  decode: { batch: number; tokPerSec: number; range: string }[];
}

const cacheDir = defaultCacheDir();
const MiB = 1024 ** 2;

async function measureOne(config: string): Promise<Measured> {
  const [kernels, quantization] = config.split(':') as [CpuKernels, QuantizationMode];
  const loc = await resolveModel(opts.model, { cacheDir });
  const model = await loadModel(loc, { cacheDir, cpuKernels: kernels, quantization });
  (globalThis as { gc?: () => void }).gc?.();
  const rssAfterLoad = process.memoryUsage.rss();
  let events: EngineEvent[] = [];
  const decode = (m: LoadedModel, batch: number) => {
    const engine = new EngineCore(m, { ...DEFAULT_ENGINE_OPTIONS, batchSize: batch, prefixCache: false }, (e) => events.push(e));
    events = [];
    const vocab = m.config.vocabSize;
    for (let i = 0; i < batch; i++) {
      const prompt = Array.from({ length: 32 }, (_, j) => 200 + ((j * 7919 + i * 104729) % (vocab - 400)));
      engine.submit({
        id: `d${i}`,
        promptTokenIds: prompt,
        sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: opts.decodeTokens },
      });
    }
    while (events.filter((e) => e.type === 'tokens').length < batch) engine.step();
    const before = events.filter((e) => e.type === 'tokens').length;
    const start = performance.now();
    while (engine.hasWork()) engine.step();
    const secs = (performance.now() - start) / 1000;
    return { tokPerSec: (events.filter((e) => e.type === 'tokens' && e.tokenIds.length > 0).length - before) / secs };
  };
  decode(model, 2); // warm-up: buffers, compiled kernels
  const results = opts.batches.split(',').map((b) => {
    const batch = Number.parseInt(b, 10);
    const runs = Array.from({ length: opts.repeats }, () => decode(model, batch).tokPerSec).sort((x, y) => x - y);
    return { batch, tokPerSec: runs[Math.floor(runs.length / 2)], range: `${runs[0].toFixed(1)}–${runs[runs.length - 1].toFixed(1)}` };
  });
  return {
    config,
    runtime: model.runtime,
    precision: model.precision,
    weightBytes: model.weightBytes,
    rssAfterLoad,
    rssAfterRuns: process.memoryUsage.rss(),
    decode: results,
  };
}

if (opts.one) {
  process.stdout.write(`${JSON.stringify(await measureOne(opts.one))}\n`);
} else {
  const measured: Measured[] = [];
  for (const config of opts.configs.split(',')) {
    const args = ['--expose-gc', '--import', 'tsx', import.meta.filename, '--one', config];
    args.push('--decode-tokens', String(opts.decodeTokens), '--batches', opts.batches, '--repeats', String(opts.repeats));
    if (opts.model) args.push('--model', opts.model);
    const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const m = JSON.parse(out.trim().split('\n').at(-1) as string) as Measured;
    console.log(JSON.stringify(m));
    measured.push(m);
  }
  const batches = measured[0].decode.map((d) => d.batch);
  const rows = measured.map((m) => {
    const tok = m.decode.map((d) => `${d.tokPerSec.toFixed(1)} (${d.range})`).join(' | ');
    return `| \`--cpu-kernels ${m.config.split(':')[0]} --quantization ${m.config.split(':')[1]}\` | ${m.runtime} | ${(m.weightBytes / MiB).toFixed(0)} MiB | ${(m.rssAfterLoad / MiB).toFixed(0)} MiB | ${(m.rssAfterRuns / MiB).toFixed(0)} MiB | ${tok} |`;
  });
  const loc = await resolveModel(opts.model, { cacheDir });
  const md = `# Quantized weights kept or dequantized (--quantization)

Model: ${loc.id} (${loc.format}). Date: ${today()}. Machine: ${machineDescription()}; CPU flags: ${cpuFlags()}.
Command: \`node --import tsx bench/quantization-bench.ts\` (each configuration in its own process; decode:
${opts.decodeTokens} tokens per sequence after a 32-token prompt, greedy; tok/s counts every sequence's tokens of the decode
phase; the median of ${opts.repeats} runs, range in brackets; the machine is shared and noisy). *weights*: the bytes the engine
holds its weights in (what it reports at startup); *RSS*: the whole engine process (Node, MLX, tokenizer-free engine).

| flags | runtime | weights | RSS after load | RSS after the runs | ${batches.map((b) => `decode tok/s, batch ${b}`).join(' | ')} |
|---|---|---:|---:|---:|${batches.map(() => '---:').join('|')}|
${rows.join('\n')}
`;
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(opts.out, md);
  console.log(`wrote ${opts.out}`);
}
