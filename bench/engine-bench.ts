// Engine benchmark on the default model (or --model): decode throughput at batch 1, 8 and 32 and
// prefill throughput for a 512-token prompt, measured on the engine itself (no server, no IPC).
// Writes bench/results/engine.md. Run: `npm run bench:engine`.
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ENGINE_OPTIONS, EngineCore } from '../src/engine/engine-core.ts';
import { loadModel } from '../src/engine/load-model.ts';
import { defaultCacheDir, resolveModel } from '../src/engine/model-source.ts';
import type { EngineEvent } from '../src/engine/request.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { machineDescription, today } from './machine.ts';

const program = new Command()
  .option('--model <spec>', 'model to load (default: the default model)')
  .option('--decode-tokens <n>', 'tokens each sequence generates in the decode runs', (v) => Number.parseInt(v, 10), 64)
  .option('--batches <list>', 'batch sizes to measure', '1,8,32')
  .option('--prompt-tokens <n>', 'prompt length for the prefill run', (v) => Number.parseInt(v, 10), 512)
  .option('--out <file>', 'markdown result file', join(import.meta.dirname, 'results', 'engine.md'))
  .parse();
const opts = program.opts<{ model?: string; decodeTokens: number; batches: string; promptTokens: number; out: string }>();

const cacheDir = defaultCacheDir();
const loc = await resolveModel(opts.model, { cacheDir });
const model = await loadModel(loc, { cacheDir });
const vocab = model.tokenizer.vocabSize;

let events: EngineEvent[] = [];
function newEngine(batchSize: number) {
  return new EngineCore(model.transformer, model.tokenizer, model.id, { ...DEFAULT_ENGINE_OPTIONS, batchSize, prefixCache: false }, (e) => events.push(e));
}

/** Deterministic pseudo-text token ids (the content does not matter for speed). */
function promptIds(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => 200 + ((i * 7919 + salt * 104729) % (vocab - 400)));
}

function run(engine: EngineCore) {
  while (engine.hasWork()) engine.step();
}

/** Decode tok/s: time from every sequence having its first token to the last token, all sequences. */
function decode(batch: number): { tokPerSec: number; stepMs: number } {
  const engine = newEngine(batch);
  events = [];
  for (let i = 0; i < batch; i++) {
    engine.submit({ id: `d${i}`, input: { kind: 'tokens', tokenIds: promptIds(32, i) }, sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: opts.decodeTokens, ignoreEos: true } });
  }
  // Prefill everything first, then time pure decode steps.
  while (events.filter((e) => e.type === 'delta').length < batch) engine.step();
  const start = performance.now();
  const before = events.filter((e) => e.type === 'delta').length;
  let steps = 0;
  while (engine.hasWork()) {
    engine.step();
    steps++;
  }
  const secs = (performance.now() - start) / 1000;
  const tokens = events.filter((e) => e.type === 'delta' && e.tokenIds.length > 0).length - before;
  return { tokPerSec: tokens / secs, stepMs: (secs * 1000) / steps };
}

function prefill(promptTokens: number): { tokPerSec: number; ttftMs: number } {
  const engine = newEngine(1);
  events = [];
  const start = performance.now();
  engine.submit({ id: 'p', input: { kind: 'tokens', tokenIds: promptIds(promptTokens, 99) }, sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: 1, ignoreEos: true } });
  run(engine);
  const ms = performance.now() - start;
  return { tokPerSec: (promptTokens / ms) * 1000, ttftMs: ms };
}

// Warm-up: the first steps allocate buffers and (on Metal) compile kernels.
decode(2);
const batches = opts.batches.split(',').map((b) => Number.parseInt(b, 10));
const rows: string[] = [];
let base = 0;
for (const b of batches) {
  const r = decode(b);
  if (b === 1) base = r.tokPerSec;
  const vs = base ? ` | ${(r.tokPerSec / base).toFixed(2)}x` : ' | –';
  rows.push(`| decode, batch ${b} | ${r.tokPerSec.toFixed(1)} tok/s | ${r.stepMs.toFixed(1)} ms/step${vs} |`);
  console.log(rows[rows.length - 1]);
}
prefill(64);
const p = prefill(opts.promptTokens);
rows.push(`| prefill, ${opts.promptTokens}-token prompt | ${p.tokPerSec.toFixed(0)} tok/s | TTFT ${p.ttftMs.toFixed(0)} ms | – |`);
console.log(rows[rows.length - 1]);

const md = `# Engine benchmark

Model: ${model.id} (${loc.format}, f32 on CPU). Date: ${today()}. Machine: ${machineDescription()}.
Command: \`npm run bench:engine\` (decode: ${opts.decodeTokens} tokens per sequence after a 32-token prompt, greedy, ignore_eos;
tok/s counts every sequence's tokens during the decode phase; prefill: one request, TTFT of a ${opts.promptTokens}-token prompt).

| run | throughput | per step / latency | vs batch 1 |
|---|---|---|---|
${rows.join('\n')}
`;
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(opts.out, md);
console.log(`wrote ${opts.out}`);
