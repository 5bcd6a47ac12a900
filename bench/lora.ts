// Multi-LoRA throughput: c8 where the 8 concurrent requests use 4 different adapters (2 each),
// against c8 on the base model and c8 on one adapter, same server, rounds interleaved so the
// machine's noise hits every load alike. The adapters are random PEFT adapters on every projection
// of the default model (rank --rank). Starts the real executable and writes bench/results/lora.md.
//
//   node --import tsx bench/lora.ts [--rank 16] [--rounds 3] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { exportHf } from '../scripts/export-hf.ts';
import { waitForHealth } from '../test/helpers/cli-process.ts';
import { writeRandomPeftAdapter } from '../test/helpers/lora-writer.ts';
import { cpuFlags, machineDescription, today } from './machine.ts';
import { spawnServer } from './soak/spawned-server.ts';
import { median } from './client/percentiles.ts';

const opts = new Command()
  .option('--rank <n>', 'rank of the adapters', '16')
  .option('--rounds <n>', 'rounds of each load', '3')
  .option('--requests <n>', 'requests per stream per round', '2')
  .option('--max-tokens <n>', 'tokens per request', '128')
  .option('--out <file>', 'report file', 'bench/results/lora.md')
  .parse()
  .opts<{ rank: string; rounds: string; requests: string; maxTokens: string; out: string }>();

const STREAMS = 8;
const ADAPTERS = 4;
const rank = Number(opts.rank);
const rounds = Number(opts.rounds);
const perStream = Number(opts.requests);
const maxTokens = Number(opts.maxTokens);
const topics = ['a lighthouse keeper', 'a lost robot', 'two rival bakers', 'a city under the sea', 'a dragon who hates gold'];

const scratch = mkdtempSync(join(tmpdir(), 'lora-bench-'));
// The adapters' shapes come from the default model's configuration.
const base = (await exportHf(undefined, join(scratch, 'base'))).outDir;
const modules = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
const loraArgs = Array.from({ length: ADAPTERS }, (_, i) => {
  const dir = writeRandomPeftAdapter(join(scratch, `adapter-${i}`), base, {
    rank,
    alpha: 2 * rank,
    modules: [...modules],
    seed: i,
    std: 0.02,
  });
  return ['--lora', `adapter-${i}=${dir}`];
}).flat();
const server = await spawnServer(undefined, [
  '--batch-size',
  '16',
  '--max-loras',
  String(ADAPTERS),
  '--max-lora-rank',
  String(rank),
  ...loraArgs,
]);
await waitForHealth(server.api);

async function request(i: number, model: string | undefined): Promise<number> {
  const res = await fetch(`${server.api}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ...(model ? { model } : {}),
      messages: [{ role: 'user', content: `Write a long story about ${topics[i % topics.length]}.` }],
      max_tokens: maxTokens,
      temperature: 0.7,
      seed: i,
      ignore_eos: true,
    }),
  });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  const body = (await res.json()) as { usage: { completion_tokens: number } };
  return body.usage.completion_tokens;
}

/** 8 streams, stream s using model(s); aggregate output tok/s. */
async function round(load: string, model: (stream: number) => string | undefined, offset: number) {
  const t0 = performance.now();
  const tokens = await Promise.all(
    Array.from({ length: STREAMS }, async (_, s) => {
      let n = 0;
      for (let r = 0; r < perStream; r++) n += await request(offset + s * perStream + r, model(s));
      return n;
    }),
  );
  const total = tokens.reduce((a, b) => a + b, 0);
  return { load, tokens: total, tokPerS: total / ((performance.now() - t0) / 1000) };
}

const LOADS: [string, (s: number) => string | undefined][] = [
  ['base model', () => undefined],
  [`${ADAPTERS} adapters, 2 streams each`, (s) => `adapter-${s % ADAPTERS}`],
  ['1 adapter', () => 'adapter-0'],
];

try {
  for (const [load, model] of LOADS) await round(load, model, 100); // warm-up
  const results: { load: string; tokens: number; tokPerS: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [load, model] of LOADS) {
      results.push(await round(load, model, 1000 + r * 100));
      console.log(results.at(-1));
    }
  }
  const med = (load: string) => median(results.filter((x) => x.load === load).map((x) => x.tokPerS));
  const baseline = med(LOADS[0][0]);
  const lines = [
    '# Multi-LoRA throughput',
    '',
    `Date: ${today()}. Machine: ${machineDescription()}; CPU flags: ${cpuFlags()}. The server runs its native CPU kernels (the default),`,
    'default model kept quantized (Q4_1); the LoRA updates are computed per row group in f32 beside it, never merged.',
    `Command: \`node --import tsx bench/lora.ts --rank ${rank} --rounds ${rounds}\`.`,
    `Server: \`node bin/mlx-batch-server.js --batch-size 16 --max-loras ${ADAPTERS} --max-lora-rank ${rank} --lora adapter-0=DIR ... --lora adapter-3=DIR\`.`,
    '',
    `Adapters: ${ADAPTERS} random PEFT adapters of rank ${rank} on all seven projections of every layer.`,
    `Load: 8 concurrent chat requests (REST, not streamed), ${perStream} per stream per round, max_tokens ${maxTokens} with`,
    'ignore_eos, temperature 0.7; aggregate tok/s = output tokens of the round / its wall time. Rounds cycle through the loads.',
    '',
    '| round | load | output tokens | aggregate tok/s |',
    '|---:|---|---:|---:|',
    ...results.map((x, i) => `| ${Math.floor(i / LOADS.length) + 1} | ${x.load} | ${x.tokens} | ${x.tokPerS.toFixed(1)} |`),
    '',
    ...LOADS.slice(1).map(([load]) => `Median ${load} / median base model: ${(med(load) / baseline).toFixed(2)}.`),
    '',
  ];
  writeFileSync(opts.out, lines.join('\n'));
  console.log(lines.join('\n'));
} finally {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
}
