// Milliseconds per decode step of the sampler for B = 1, 16, 32 rows over a 49152-token
// vocabulary (SmolLM2's), for the parameter mixes the engine sees. --cpu times the CPU sampler
// (cpu-sampler.ts, logits in a Float32Array) instead of the MLX one, and adds ms per row.
// Run: node --import tsx bench/sampler-bench.ts [--cpu] [--vocab N] [--steps N] [--logits file.safetensors]
// Logits are synthetic but shaped like SmolLM2-135M-Instruct's decode steps (below); --logits takes
// real ones instead (a safetensors file with a [N, vocab] float32 tensor named "logits").
import { defaultSamplingParams, type SamplingParams } from '../src/engine/sampling-params.ts';
import { Sampler, type SamplerRow } from '../src/engine/sampler/sampler.ts';
import { CpuSampler } from '../src/engine/sampler/cpu-sampler.ts';
import { mx } from '../src/engine/mlx.ts';
import { median } from './client/percentiles.ts';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const logitsFile = process.argv.includes('--logits') ? process.argv[process.argv.indexOf('--logits') + 1] : null;
const realLogits = logitsFile ? (mx.load(logitsFile) as unknown as Record<string, InstanceType<typeof mx.array>>).logits : null;
const vocab = realLogits ? realLogits.shape[1] : flag('vocab', 49152);
const steps = flag('steps', 30);
const onCpu = process.argv.includes('--cpu');

// Median of (sorted logit - max) at these ranks over 256 SmolLM2-135M-Instruct decode steps
// (chat and plain prompts, sampled at temperature 0.8). Rows differ mostly by how spread they are:
// the per-row scale of the profile ranged 0.65-1.75 (10th-90th percentile).
const PROFILE_RANKS = [
  1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 64, 80, 100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024, 1280, 1600, 2048,
  2560, 3200, 4096, 5120, 6400, 8192, 10240, 12800, 16384, 20480, 25600, 32768, 40960, 49152,
];
const PROFILE = [
  0, -1.03, -2.04, -2.52, -2.93, -3.23, -3.66, -4.04, -4.46, -4.74, -5.12, -5.59, -5.96, -6.33, -6.66, -7.06, -7.38, -7.69, -8.13, -8.49,
  -8.85, -9.26, -9.63, -10.02, -10.43, -10.84, -11.24, -11.72, -12.12, -12.55, -13.04, -13.5, -13.99, -14.53, -15.08, -15.63, -16.25,
  -16.92, -17.59, -18.37, -19.23, -20.19, -21.46, -23.49, -38.8,
];

/** Deterministic uniform numbers in [0, 1). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** One LM-like row: the profile (interpolated in log-rank), scaled, with shuffled token ids. */
function syntheticRow(seed: number): number[] {
  const random = lcg(seed);
  const scale = 0.65 + 1.1 * random();
  const row = new Array<number>(vocab);
  let k = 0;
  for (let rank = 1; rank <= vocab; rank++) {
    const r = Math.min(rank * (49152 / vocab), 49152);
    while (k < PROFILE_RANKS.length - 2 && PROFILE_RANKS[k + 1] < r) k++;
    const t = (Math.log(r) - Math.log(PROFILE_RANKS[k])) / (Math.log(PROFILE_RANKS[k + 1]) - Math.log(PROFILE_RANKS[k]));
    row[rank - 1] = 20 + scale * (PROFILE[k] + Math.min(Math.max(t, 0), 1) * (PROFILE[k + 1] - PROFILE[k]));
  }
  for (let i = vocab - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [row[i], row[j]] = [row[j], row[i]];
  }
  return row;
}

function batchLogits(batch: number, step: number): InstanceType<typeof mx.array> {
  if (realLogits) {
    const n = realLogits.shape[0];
    return mx.take(
      realLogits,
      mx.array(
        Array.from({ length: batch }, (_, r) => (step * batch + r) % n),
        mx.int32,
      ),
      0,
    );
  }
  return mx.array(
    Array.from({ length: batch }, (_, r) => syntheticRow(step * 1000 + r)),
    mx.float32,
  );
}

// Distinct logits for a few steps, cycled: building them is slow, sampling is what is timed.
const LOGIT_SETS = 4;
const logitCache = new Map<number, InstanceType<typeof mx.array>[]>();
function logitSetsFor(batch: number) {
  if (!logitCache.has(batch)) {
    const sets = Array.from({ length: LOGIT_SETS }, (_, i) => batchLogits(batch, i));
    mx.eval(...sets);
    logitCache.set(batch, sets);
  }
  return logitCache.get(batch)!;
}
const batchSizes = [1, 16, 32];

/** The same logit sets as Float32Arrays [batch × vocab], for the CPU sampler. */
const hostLogitCache = new Map<number, Float32Array[]>();
function hostLogitSetsFor(batch: number): Float32Array[] {
  if (!hostLogitCache.has(batch)) {
    hostLogitCache.set(
      batch,
      logitSetsFor(batch).map((x) => new Float32Array((x.tolist() as number[][]).flat())),
    );
  }
  return hostLogitCache.get(batch)!;
}

const scenarios: { name: string; params: Partial<SamplingParams> }[] = [
  { name: 'all greedy', params: { temperature: 0 } },
  { name: 'greedy + logprobs (top 5)', params: { temperature: 0, logprobs: true, topLogprobs: 5 } },
  { name: 'temperature only', params: { temperature: 0.8 } },
  { name: 'temperature + top_p + top_k', params: { temperature: 0.7, topP: 0.9, topK: 50 } },
  { name: 'temperature + top_p (no top_k)', params: { temperature: 0.7, topP: 0.9 } },
  { name: 'temperature + min_p', params: { temperature: 0.8, minP: 0.05 } },
  {
    name: 'top_p + top_k + penalties + bias',
    params: {
      temperature: 0.7,
      topP: 0.9,
      topK: 50,
      repetitionPenalty: 1.1,
      frequencyPenalty: 0.3,
      presencePenalty: 0.2,
      logitBias: { 100: 2, 200: -5 },
    },
  },
];

const sampler = new Sampler(vocab);
const cpuSampler = onCpu ? new CpuSampler(vocab) : null;
console.log(
  onCpu
    ? `CPU sampler: vocab ${vocab}, ${steps} steps per cell, ms/step as median (min)`
    : `sampler: vocab ${vocab}, block size ${sampler.layout.blockSize}, ${steps} steps per cell, ms/step as median (min)`,
);
// The minimum shows the cost without interference from other processes on a shared machine.
const perRowHeader = onCpu ? [`ms/row B=${batchSizes.at(-1)}`.padStart(16)] : [];
console.log(['scenario'.padEnd(36), ...batchSizes.map((b) => `B=${b}`.padStart(16)), ...perRowHeader].join(''));
for (const scenario of scenarios) {
  const cells: string[] = [];
  let perRow = '';
  for (const batch of batchSizes) {
    const logitSets = onCpu ? null : logitSetsFor(batch);
    const hostLogitSets = onCpu ? hostLogitSetsFor(batch) : null;
    const params = { ...defaultSamplingParams(), ...scenario.params };
    // Penalty rows carry a 300-token prompt and a growing output, as a real request would.
    const prompts = Array.from({ length: batch }, (_, r) => Array.from({ length: 300 }, (_, i) => (r * 7919 + i * 104729) % vocab));
    const outputs: number[][] = Array.from({ length: batch }, (_, r) => Array.from({ length: 100 }, (_, i) => (r * 31 + i * 613) % vocab));
    const times: number[] = [];
    for (let step = 0; step < steps + 3; step++) {
      const rows: SamplerRow[] = outputs.map((out, r) => ({ params, promptTokenIds: prompts[r], outputTokenIds: out, seed: r + 1 }));
      const t0 = performance.now();
      const sampled = cpuSampler
        ? cpuSampler.sample(hostLogitSets![step % LOGIT_SETS], rows)
        : sampler.sample(logitSets![step % LOGIT_SETS], rows);
      const t1 = performance.now();
      if (step >= 3) times.push(t1 - t0);
      sampled.forEach((t, r) => outputs[r].push(t.tokenId));
    }
    cells.push(`${median(times).toFixed(2)} (${Math.min(...times).toFixed(2)})`.padStart(16));
    perRow = `${(median(times) / batch).toFixed(3)} (${(Math.min(...times) / batch).toFixed(3)})`.padStart(16);
  }
  console.log([scenario.name.padEnd(36), ...cells, ...(onCpu ? [perRow] : [])].join(''));
}

// Costs of the primitives behind the MLX sampler's numbers, for B = 16: the full sort it avoids,
// the softmax an exact whole-vocabulary distribution needs, and the argmax greedy needs.
if (!onCpu) {
  const logits = mx.multiply(mx.random.normal([16, vocab]), 3);
  mx.eval(logits);
  const timeOf = (f: () => InstanceType<typeof mx.array>, runs: number) => {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      mx.eval(f());
      times.push(performance.now() - t0);
    }
    return median(times);
  };
  console.log(
    `primitives at [16, ${vocab}]: mx.sort ${timeOf(() => mx.sort(logits, -1), 6).toFixed(1)} ms, ` +
      `mx.softmax ${timeOf(() => mx.softmax(logits, -1), 12).toFixed(1)} ms, ` +
      `mx.logsumexp ${timeOf(() => mx.logsumexp(logits, -1), 12).toFixed(1)} ms, ` +
      `mx.argmax ${timeOf(() => mx.argmax(logits, -1), 12).toFixed(2)} ms`,
  );
}
