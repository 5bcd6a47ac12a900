// gRPC overhead: aggregate tok/s of 8 concurrent generations through the gRPC service versus the
// same workload on EngineClient directly (same engine process, same requests). Rounds alternate
// between the paths so drift in machine load hits both alike; the median round counts.
// Writes bench/results/grpc-overhead.md. Run:
//   node --import tsx bench/grpc-overhead.ts [--model M] [--streams 8] [--tokens 128] [--rounds 3]
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createGenerationClient, type GenerationClient, type GenerationEvent } from '../clients/typescript/src/index.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../src/engine/engine-options.ts';
import { EngineClient } from '../src/engine/engine-client.ts';
import { defaultCacheDir, resolveModel } from '../src/model-source/model-source.ts';
import { defaultSamplingParams } from '../src/engine/sampling-params.ts';
import { loadTokenizer } from '../src/text/load-tokenizer.ts';
import { TokenizerPool } from '../src/text/tokenizer-pool.ts';
import { startGrpcServer } from '../src/service/grpc-server.ts';
import { machineDescription, today } from './machine.ts';
import { median } from './client/percentiles.ts';

const program = new Command()
  .option('--model <spec>', 'model to load (default: the default model)')
  .option('--streams <n>', 'concurrent generations', (v) => Number.parseInt(v, 10), 8)
  .option('--tokens <n>', 'tokens each generation produces', (v) => Number.parseInt(v, 10), 128)
  .option('--prompt-tokens <n>', 'prompt length', (v) => Number.parseInt(v, 10), 32)
  .option('--rounds <n>', 'measured rounds per path', (v) => Number.parseInt(v, 10), 3)
  .option('--out <file>', 'markdown result file', join(import.meta.dirname, 'results', 'grpc-overhead.md'))
  .parse();
const opts = program.opts<{ model?: string; streams: number; tokens: number; promptTokens: number; rounds: number; out: string }>();

const cacheDir = defaultCacheDir();
const location = await resolveModel(opts.model, { cacheDir });
// No prefix cache: every round computes its prompts in full, whichever path runs it.
const engine = new EngineClient({ model: location, cacheDir, engine: { ...DEFAULT_ENGINE_OPTIONS, prefixCache: false } });
const info = await engine.start();
const server = await startGrpcServer({
  engine,
  tokenizer: loadTokenizer(location).then((t) => new TokenizerPool(t, location)),
  host: '127.0.0.1',
  port: 0,
});
const client = createGenerationClient(`http://127.0.0.1:${server.port}`);

/** Deterministic pseudo-text token ids, different per stream and round (the content does not matter for speed). */
function promptIds(stream: number, round: number): number[] {
  const span = info.vocabSize - 400;
  return Array.from({ length: opts.promptTokens }, (_, i) => 200 + ((i * 7919 + stream * 104729 + round * 1299709) % span));
}

interface Timing {
  /** Tokens per second from the first submit to the last token, prefill included. */
  wallTokPerSec: number;
  /** Tokens per second while all streams decode: from the last stream's first token to the last token. */
  decodeTokPerSec: number;
  /**
   * CPU time of this process (server side of the engine, plus gRPC server and client when used)
   * per 1000 tokens: what the path costs, less sensitive to other load than throughput.
   */
  cpuMsPer1kTokens: number;
}

/** Runs the workload: one function per stream that reports its tokens with their arrival time. */
async function measure(run: (stream: number, onTokens: (n: number) => void) => Promise<void>): Promise<Timing> {
  const arrivals: { at: number; n: number }[] = [];
  const firstAt: number[] = [];
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: opts.streams }, (_, s) =>
      run(s, (n) => {
        const at = performance.now();
        firstAt[s] ??= at;
        arrivals.push({ at, n });
      }),
    ),
  );
  const cpu = process.cpuUsage(cpuBefore);
  const end = Math.max(...arrivals.map((a) => a.at));
  const total = arrivals.reduce((sum, a) => sum + a.n, 0);
  if (total !== opts.streams * opts.tokens) throw new Error(`expected ${opts.streams * opts.tokens} tokens, got ${total}`);
  const decodeStart = Math.max(...firstAt);
  const decoded = arrivals.filter((a) => a.at > decodeStart).reduce((sum, a) => sum + a.n, 0);
  return {
    wallTokPerSec: (total / (end - start)) * 1000,
    decodeTokPerSec: (decoded / (end - decodeStart)) * 1000,
    cpuMsPer1kTokens: ((cpu.user + cpu.system) / 1000 / total) * 1000,
  };
}

let round = 0;
let nextId = 0;

function engineDirect(): Promise<Timing> {
  const r = round++;
  return measure(async (s, onTokens) => {
    const request = {
      id: `bench-${++nextId}`,
      promptTokenIds: promptIds(s, r),
      sampling: { ...defaultSamplingParams(), temperature: 0, maxTokens: opts.tokens },
    };
    for await (const e of engine.generate(request)) {
      if (e.type === 'tokens' && e.tokenIds.length > 0) onTokens(e.tokenIds.length);
      if (e.type === 'error') throw new Error(e.message);
    }
  });
}

const countTokens = (onTokens: (n: number) => void) => (e: GenerationEvent) => {
  if (e.type === 'delta' && e.tokenIds.length > 0) onTokens(e.tokenIds.length);
};

function viaGenerateStream(c: GenerationClient): Promise<Timing> {
  const r = round++;
  return measure(async (s, onTokens) => {
    const count = countTokens(onTokens);
    for await (const e of c.generate({
      prompt: { tokenIds: promptIds(s, r) },
      sampling: { temperature: 0, maxTokens: opts.tokens, ignoreEos: true },
    }))
      count(e);
  });
}

async function viaOneSession(c: GenerationClient): Promise<Timing> {
  const r = round++;
  const session = c.session();
  const timing = await measure(async (s, onTokens) => {
    const count = countTokens(onTokens);
    for await (const e of session.generate({
      prompt: { tokenIds: promptIds(s, r) },
      sampling: { temperature: 0, maxTokens: opts.tokens, ignoreEos: true },
    }))
      count(e);
  });
  await session.close();
  return timing;
}

const paths: [string, () => Promise<Timing>][] = [
  ['EngineClient directly', engineDirect],
  [`gRPC, ${opts.streams} GenerateStream calls`, () => viaGenerateStream(client)],
  [`gRPC, ${opts.streams} requests on one Generate stream`, () => viaOneSession(client)],
];

const loadBefore = loadavg()[0];
// Warm-up: buffers, kernels, connections.
for (const [, run] of paths) await run();
const results = new Map<string, Timing[]>(paths.map(([name]) => [name, []]));
for (let i = 0; i < opts.rounds; i++) {
  for (const [name, run] of paths) {
    const t = await run();
    results.get(name)?.push(t);
    console.log(
      `round ${i + 1}: ${name}: ${t.wallTokPerSec.toFixed(1)} tok/s wall, ${t.decodeTokPerSec.toFixed(1)} tok/s decode, ${t.cpuMsPer1kTokens.toFixed(0)} CPU ms / 1k tokens`,
    );
  }
}

const loadAfter = loadavg()[0];
const summary = paths.map(([name]) => {
  const ts = results.get(name) as Timing[];
  return {
    name,
    wall: median(ts.map((t) => t.wallTokPerSec)),
    decode: median(ts.map((t) => t.decodeTokPerSec)),
    cpu: median(ts.map((t) => t.cpuMsPer1kTokens)),
    all: ts,
  };
});
const base = summary[0];
const pct = (x: number, b: number) => `${(((x - b) / b) * 100).toFixed(1)}%`;
// Each round's paths ran back to back under about the same machine load, so the ratio within a
// round is steadier than the ratio of medians.
const pairedRatio = (s: (typeof summary)[number]) => median(s.all.map((t, i) => t.wallTokPerSec / base.all[i].wallTokPerSec));
const rows = summary.map(
  (s) =>
    `| ${s.name} | ${s.wall.toFixed(1)} | ${s === base ? '–' : pct(s.wall, base.wall)} | ${s === base ? '–' : pct(pairedRatio(s), 1)} | ${s.decode.toFixed(1)} | ${s === base ? '–' : pct(s.decode, base.decode)} | ${s.cpu.toFixed(0)} | ${s.all.map((t) => t.wallTokPerSec.toFixed(1)).join(', ')} |`,
);

const md = `# gRPC overhead

Model: ${info.id} (${location.format}). Date: ${today()}. Machine: ${machineDescription()}.
Command: \`node --import tsx bench/grpc-overhead.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}\`.

Workload: ${opts.streams} concurrent generations of ${opts.tokens} tokens each (greedy, ignore_eos) after ${opts.promptTokens}-token prompts,
no prefix cache, on one engine process; the gRPC server and its client (clients/typescript) run in the benchmark's process, as
the OpenAI adapter does. Rounds alternate between the paths (${opts.rounds} measured rounds after a warm-up round each); the
median round is shown (1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after). "Wall" counts every token from the first submit to the last token (prefill included); "decode" counts the
tokens after the last stream's first token. "Same round" is the median of each round's ratio to the direct run just before it
(steadier when other jobs load the machine). "CPU ms / 1k tokens" is this process's CPU time (user + system) per 1000
generated tokens: the engine process is not in it, the IPC to it, the gRPC server and the gRPC client are.

| path | wall tok/s | vs direct | vs direct, same round (median) | decode tok/s | vs direct | CPU ms / 1k tokens | rounds (wall tok/s) |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}
`;
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(opts.out, md);
console.log(md);
console.log(`wrote ${opts.out}`);

await server.close();
await engine.stop();
