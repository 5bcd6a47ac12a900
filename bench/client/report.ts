// What a benchmark run writes: a JSON file with every figure (for scripts and later comparison)
// and a markdown summary.
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import type { Distribution } from './percentiles.ts';
import type { RunSummary } from './summary.ts';

export interface BenchSettings {
  endpoint: 'openai' | 'grpc';
  url: string;
  model?: string;
  stream: boolean;
  temperature: number;
  eos: string;
  promptFormat: 'chat' | 'text';
  /** Fixed prompt length, or null when prompts keep their own length (dataset). */
  promptTokens: number | null;
  /** Fixed output length, or null when the dataset's reply lengths are used. */
  maxTokens: number | null;
  dataset: string | null;
  seed: number;
  /** Warm-up requests before each level. */
  warmup: string;
  requests: string;
  /** Each level waited for the 1-minute load average to drop below this (0: no waiting). */
  maxLoad: number;
  /** A level was measured again when other processes averaged more CPU than this (null: never). */
  maxOtherCores: number | null;
  /** How many times a level could be measured again. */
  retries: number;
}

export interface Headline {
  c1OutputTokPerS: number;
  c8OutputTokPerS: number;
  /** c8 aggregate tok/s over c1 (sequential) tok/s. */
  ratio: number;
  target: number;
}

export interface BenchReport {
  label: string;
  date: string;
  machine: string;
  command: string;
  /** How the server was started (command, versions), when the caller said. */
  serverInfo?: string;
  settings: BenchSettings;
  runs: RunSummary[];
  headline?: Headline;
}

export function machineDescription(): string {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}`;
}

export function currentLoad(): number {
  return loadavg()[0];
}

/** c8 / c1 aggregate throughput, when both levels ran. */
export function headlineOf(runs: RunSummary[], target = 6): Headline | undefined {
  const c1 = runs.find((r) => r.concurrency === 1);
  const c8 = runs.find((r) => r.concurrency === 8);
  if (!c1 || !c8 || c1.outputTokPerS <= 0) return undefined;
  return { c1OutputTokPerS: c1.outputTokPerS, c8OutputTokPerS: c8.outputTokPerS, ratio: c8.outputTokPerS / c1.outputTokPerS, target };
}

export function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

function triple(d: Distribution, digits = 0): string {
  return d.count ? `${fmt(d.p50, digits)} / ${fmt(d.p90, digits)} / ${fmt(d.p99, digits)}` : '–';
}

export function workloadLine(s: BenchSettings): string {
  const prompts = s.dataset ? `ShareGPT prompts from ${s.dataset}` : 'built-in synthetic prompts';
  const promptLen = s.promptTokens === null ? 'their own length' : `${s.promptTokens} tokens`;
  const outputLen = s.maxTokens === null ? "the reference reply's length" : `${s.maxTokens} tokens`;
  const eos =
    { ignore: 'ignore_eos', bias: 'EOS suppressed by logit_bias (no ignore_eos on this server)', natural: 'stopping at EOS' }[s.eos] ??
    s.eos;
  return (
    `${s.promptFormat === 'chat' ? 'Chat' : 'Text'} requests (${prompts}, prompt ${promptLen}), output ${outputLen} (${eos}), ` +
    `temperature ${s.temperature}, ${s.stream ? 'streaming' : 'not streaming'}, seed ${s.seed}, warm-up requests before each level: ${s.warmup}, requests per level: ${s.requests}. ` +
    `Endpoint: ${s.endpoint} at ${s.url}${s.model ? `, model ${s.model}` : ''}.`
  );
}

/** Other processes' average CPU during a level, and how many attempts it took to get a quiet one. */
export function otherCpuCell(r: RunSummary): string {
  if (!r.otherCpu) return '–';
  return `${r.otherCpu.cores.toFixed(2)}${r.attempts > 1 ? ` (best of ${r.attempts} attempts)` : ''}`;
}

export function runTable(runs: RunSummary[]): string {
  const lines = [
    '| concurrency | requests | errors | output tok/s | req/s | TTFT ms p50 / p90 / p99 | ITL ms p50 / p90 / p99 | TPOT ms p50 | E2E s p50 / p90 / p99 | load at start | other processes (cores) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    const e2eS: Distribution = {
      ...r.e2eMs,
      p50: r.e2eMs.p50 && r.e2eMs.p50 / 1000,
      p90: r.e2eMs.p90 && r.e2eMs.p90 / 1000,
      p99: r.e2eMs.p99 && r.e2eMs.p99 / 1000,
    };
    lines.push(
      `| ${r.concurrency} | ${r.completed}/${r.requests} | ${r.errors} | ${fmt(r.outputTokPerS)} | ${fmt(r.requestsPerS, 2)} | ${triple(r.ttftMs)} | ${triple(r.itlMs, 1)} | ${fmt(r.tpotMs.p50)} | ${triple(e2eS, 1)} | ${fmt(r.load.loadAtStart, 2)}${r.load.timedOut ? ' (did not drop below the limit)' : ''} | ${otherCpuCell(r)} |`,
    );
  }
  return lines.join('\n');
}

export function markdownReport(report: BenchReport, chartFile?: string): string {
  const out = [
    `# Benchmark: ${report.label}`,
    '',
    `Date: ${report.date}. Machine: ${report.machine}.`,
    `Command: \`${report.command}\``,
    ...(report.serverInfo ? [`Server: ${report.serverInfo}`] : []),
    '',
    workloadLine(report.settings),
    '',
    runTable(report.runs),
    '',
  ];
  const notes: string[] = [];
  for (const r of report.runs) {
    if (r.errors) notes.push(`c${r.concurrency}: ${r.errors} failed requests (${r.errorSamples.join('; ')})`);
    if (r.shortOutputs && report.settings.eos !== 'natural')
      notes.push(`c${r.concurrency}: ${r.shortOutputs} requests produced fewer tokens than asked`);
    if (r.attempts > 1)
      notes.push(`c${r.concurrency}: measured ${r.attempts} times because other processes took CPU; the quietest attempt is shown`);
    if (r.load.timedOut)
      notes.push(
        `c${r.concurrency}: the machine's load average was ${fmt(r.load.loadAtStart, 2)} when the run started (it did not drop below the limit in time)`,
      );
  }
  if (notes.length) out.push('Notes:', ...notes.map((n) => `- ${n}`), '');
  if (report.headline) {
    const h = report.headline;
    out.push(
      `Headline: c8 aggregate ${fmt(h.c8OutputTokPerS)} tok/s / c1 ${fmt(h.c1OutputTokPerS)} tok/s = **${h.ratio.toFixed(2)}x** (target ≥ ${h.target}x: ${h.ratio >= h.target ? 'met' : 'not met'}).`,
      '',
    );
  }
  if (chartFile) out.push(`![throughput and TTFT against concurrency](${chartFile})`, '');
  out.push(
    'Output tok/s: generated tokens of completed requests over the wall time from the first request to the last answer. ' +
      'TTFT: time to the first streamed text; ITL: gaps between streamed tokens (a gap is split evenly over the tokens that arrive together); ' +
      'TPOT: (E2E − TTFT) / (tokens − 1) per request.',
    '',
  );
  return out.join('\n');
}
