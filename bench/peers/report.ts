// Builds bench/results/peers.md (and bench-peers.svg) from the results bench/peers/run.sh wrote
// (bench/results/bench-peers-*.json): a table per concurrency level, the target ratios,
// where a peer wins, and the exact commands.
//   node --import tsx bench/peers/report.ts [--results DIR] [--out FILE] [--analysis FILE]
import { Command } from 'commander';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { sweepChartSvg } from '../client/chart.ts';
import { fmt, otherCpuCell, workloadLine, type BenchReport } from '../client/report.ts';
import type { RunSummary } from '../client/summary.ts';

const NAMES: Record<string, string> = {
  ours: 'mlx-batch-server (ours, native CPU kernels)',
  'ours-mlx': 'mlx-batch-server (ours, --cpu-kernels mlx)',
  'llama-q4_1': 'llama.cpp llama-server, Q4_1 GGUF',
  'llama-f32': 'llama.cpp llama-server, F32 GGUF',
  'mlx-lm-openblas': 'mlx_lm.server f32, OpenBLAS preloaded',
  'mlx-lm': 'mlx_lm.server f32, as pip installs it (reference BLAS)',
};
const ORDER = ['ours', 'ours-mlx', 'llama-q4_1', 'llama-f32', 'mlx-lm-openblas', 'mlx-lm'];

/** Prefill speed and warm-prefix TTFT per server (bench/peers/latency-probe.ts). */
interface LatencyProbe {
  prefill: { promptTokens: number; ttftMs: number; tokPerSec: number };
  warmPrefix: { prefixTokens: number; promptTokens: number; coldTtftMs: number; ttftMs: number };
}

function nameOf(r: BenchReport): string {
  return NAMES[r.label] ?? r.label;
}

function runAt(r: BenchReport, c: number): RunSummary | undefined {
  return r.runs.find((x) => x.concurrency === c);
}

function levelTable(reports: BenchReport[], c: number): string {
  const rows = [
    '| server | output tok/s | TTFT ms p50 / p99 | ITL ms p50 / p99 | TPOT ms p50 | E2E s p50 | requests (errors) | load at start | other processes (cores) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of reports) {
    const x = runAt(r, c);
    if (!x) continue;
    rows.push(
      `| ${nameOf(r)} | ${fmt(x.outputTokPerS)} | ${fmt(x.ttftMs.p50, 0)} / ${fmt(x.ttftMs.p99, 0)} | ${fmt(x.itlMs.p50, 1)} / ${fmt(x.itlMs.p99, 1)} | ` +
        `${fmt(x.tpotMs.p50, 1)} | ${fmt(x.e2eMs.p50 === null ? null : x.e2eMs.p50 / 1000, 1)} | ${x.completed}/${x.requests} (${x.errors}) | ` +
        `${fmt(x.load.loadAtStart, 2)}${x.load.timedOut ? ' ⚠' : ''} | ${otherCpuCell(x)} |`,
    );
  }
  return rows.join('\n');
}

function latencyTable(reports: BenchReport[], probes: Map<string, LatencyProbe>): string {
  const rows = [
    '| server | prefill: TTFT of a fresh prompt | prefill tok/s | shared system prompt: cold TTFT | warm TTFT (new question after it) |',
    '|---|---|---|---|---|',
  ];
  for (const r of reports) {
    const p = probes.get(r.label);
    if (!p) continue;
    rows.push(
      `| ${nameOf(r)} | ${fmt(p.prefill.ttftMs, 0)} ms (${p.prefill.promptTokens} tokens) | ${fmt(p.prefill.tokPerSec, 0)} | ` +
        `${fmt(p.warmPrefix.coldTtftMs, 0)} ms | ${fmt(p.warmPrefix.ttftMs, 0)} ms (${p.warmPrefix.prefixTokens} cached + ${p.warmPrefix.promptTokens - p.warmPrefix.prefixTokens} new tokens) |`,
    );
  }
  return rows.join('\n');
}

/** One check: ours against a peer's figure; `higherIsBetter` says which way the target points. */
function check(what: string, ours: number | undefined, peer: number | undefined, target: number, higherIsBetter: boolean): string {
  const sign = higherIsBetter ? '≥' : '≤';
  if (ours === undefined || peer === undefined || peer <= 0) return `| ${what} | – | ${sign} ${target}x | not measured |`;
  const ratio = ours / peer;
  const met = higherIsBetter ? ratio >= target : ratio <= target;
  return `| ${what} | ${fmt(ours)} vs ${fmt(peer)} = **${ratio.toFixed(2)}x** | ${sign} ${target}x | ${met ? 'met' : 'not met'} |`;
}

/** The speed targets, against llama-server on the same weights in the same run. */
function targetsSection(reports: BenchReport[], probes: Map<string, LatencyProbe>): string {
  const run = (label: string, c: number) => {
    const r = reports.find((x) => x.label === label);
    return r ? runAt(r, c) : undefined;
  };
  const tok = (label: string, c: number) => run(label, c)?.outputTokPerS;
  const itl99 = (label: string, c: number) => run(label, c)?.itlMs.p99 ?? undefined;
  return [
    '| check | ours vs peer | target | |',
    '|---|---|---|---|',
    check('c1 output tok/s vs llama-server F32', tok('ours', 1), tok('llama-f32', 1), 0.8, true),
    check('c1 output tok/s vs llama-server Q4_1', tok('ours', 1), tok('llama-q4_1', 1), 0.8, true),
    check('c8 output tok/s vs llama-server F32', tok('ours', 8), tok('llama-f32', 8), 1.0, true),
    check('c16 output tok/s vs llama-server F32', tok('ours', 16), tok('llama-f32', 16), 1.0, true),
    check(
      'prefill tok/s vs llama-server F32',
      probes.get('ours')?.prefill.tokPerSec,
      probes.get('llama-f32')?.prefill.tokPerSec,
      1.0,
      true,
    ),
    check('p99 inter-token latency at c8 vs llama-server F32', itl99('ours', 8), itl99('llama-f32', 8), 1.5, false),
    check(
      'warm shared-prefix TTFT vs llama-server F32',
      probes.get('ours')?.warmPrefix.ttftMs,
      probes.get('llama-f32')?.warmPrefix.ttftMs,
      1.0,
      false,
    ),
  ].join('\n');
}

/** Every level and metric where a peer beats us, stated plainly. */
function peerWins(reports: BenchReport[], levels: number[]): string[] {
  const ours = reports.find((r) => r.label === 'ours');
  if (!ours) return [];
  const wins: string[] = [];
  for (const c of levels) {
    const o = runAt(ours, c);
    if (!o) continue;
    for (const r of reports) {
      const p = r === ours ? undefined : runAt(r, c);
      if (!p) continue;
      if (p.outputTokPerS > o.outputTokPerS)
        wins.push(`c${c}: ${nameOf(r)} has more throughput (${fmt(p.outputTokPerS)} vs ${fmt(o.outputTokPerS)} tok/s).`);
      if (p.ttftMs.p50 !== null && o.ttftMs.p50 !== null && p.ttftMs.p50 < o.ttftMs.p50) {
        wins.push(`c${c}: ${nameOf(r)} has a lower median TTFT (${fmt(p.ttftMs.p50, 0)} vs ${fmt(o.ttftMs.p50, 0)} ms).`);
      }
      if (p.itlMs.p99 !== null && o.itlMs.p99 !== null && p.itlMs.p99 < o.itlMs.p99) {
        wins.push(`c${c}: ${nameOf(r)} has a lower p99 inter-token latency (${fmt(p.itlMs.p99, 1)} vs ${fmt(o.itlMs.p99, 1)} ms).`);
      }
    }
  }
  return wins;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--results <dir>', 'directory with bench-peers-*.json', join(import.meta.dirname, '..', 'results'))
    .option('--out <file>', 'markdown file to write', join(import.meta.dirname, '..', 'results', 'peers.md'))
    .option('--analysis <file>', 'markdown fragment explaining the results (kept by hand)', join(import.meta.dirname, 'analysis.md'))
    .parse()
    .opts<{ results: string; out: string; analysis: string }>();

  const files = readdirSync(opts.results).filter((f) => /^bench-peers-.+\.json$/.test(f));
  if (files.length === 0) throw new Error(`no bench-peers-*.json in ${opts.results}; run bench/peers/run.sh`);
  const reports = files
    .map((f) => JSON.parse(readFileSync(join(opts.results, f), 'utf8')) as BenchReport)
    .sort((a, b) => (ORDER.indexOf(a.label) + 1 || 99) - (ORDER.indexOf(b.label) + 1 || 99));
  const levels = [...new Set(reports.flatMap((r) => r.runs.map((x) => x.concurrency)))].sort((a, b) => a - b);
  const dates = [...new Set(reports.map((r) => r.date))].join(', ');
  const first = reports[0];
  const timedOut = reports.flatMap((r) =>
    r.runs.filter((x) => x.load.timedOut).map((x) => `${nameOf(r)} c${x.concurrency} (load ${fmt(x.load.loadAtStart, 2)})`),
  );
  const loads = reports.flatMap((r) => r.runs.map((x) => x.load.loadAtStart));
  const limit = first.settings.maxOtherCores ?? null;
  const noisy = reports.flatMap((r) =>
    r.runs
      .filter((x) => (x.otherCpu?.cores ?? 0) > (limit ?? 0.15))
      .map((x) => `${nameOf(r)} c${x.concurrency} (${x.otherCpu?.cores.toFixed(2)} cores)`),
  );

  const chartPath = join(dirname(opts.out), 'bench-peers.svg');
  writeFileSync(
    chartPath,
    await sweepChartSvg(
      reports.map((r) => ({ name: nameOf(r), runs: r.runs })),
      'Aggregate throughput and TTFT against concurrency',
    ),
  );

  const out: string[] = [
    '# This server and its peers, side by side',
    '',
    `Date: ${dates}. Machine: ${first.machine}.`,
    '',
    'Same machine, same weights (SmolLM2-135M-Instruct: the Q4_1 GGUF, an F32 GGUF that llama-quantize makes from it, and the float32 ' +
      'Hugging Face directory scripts/export-hf.ts writes from our loaded model), same workload, one server at a time. Every server is called ' +
      'through its OpenAI-compatible API by bench/bench-client.ts.',
    '',
    `Workload: ${workloadLine({ ...first.settings, url: '(each server)', model: undefined, endpoint: 'openai' }).replace(/ Endpoint: .*$/, '')}`,
    'mlx_lm.server has no ignore_eos: its requests suppress the end-of-generation tokens with logit_bias -100 instead, so every server ' +
      'produces exactly the asked number of tokens (llama.cpp implements ignore_eos the same way, as a logit bias).',
    '',
    (first.settings.maxLoad > 0
      ? `Before each level the client waited for the 1-minute load average to drop below ${first.settings.maxLoad} (polling every 30 s, for up to 20 minutes); `
      : '⚠ The client did not wait for a quiet machine (--max-load 0); ') +
      `load at the start of the levels ranged ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}.` +
      (timedOut.length
        ? ` ⚠ The load did not drop below the limit in time for: ${timedOut.join(', ')}; those figures are less reliable.`
        : ''),
    'The client also measures the CPU that processes other than the server and itself took during each level (Linux /proc; column "other processes")' +
      (limit === null
        ? '.'
        : `; a level during which they averaged more than ${limit} cores was measured again (up to ${first.settings.retries} more times) and the quietest attempt is shown.`) +
      (noisy.length ? ` ⚠ Still above that after the retries: ${noisy.join(', ')}; those figures are less reliable.` : ''),
    '',
    `![throughput and TTFT against concurrency](${basename(chartPath)})`,
    '',
  ];
  for (const c of levels) out.push(`## Concurrency ${c}`, '', levelTable(reports, c), '');
  const probes = new Map<string, LatencyProbe>();
  for (const f of readdirSync(opts.results).filter((name) => /^latency-peers-.+\.json$/.test(name))) {
    probes.set(f.replace(/^latency-peers-|\.json$/g, ''), JSON.parse(readFileSync(join(opts.results, f), 'utf8')) as LatencyProbe);
  }
  if (probes.size) {
    out.push(
      '## Prompt latency, one request at a time',
      '',
      'bench/peers/latency-probe.ts: medians of 5; chat prompts; max_tokens 1.',
      '',
      latencyTable(reports, probes),
      '',
    );
  }
  out.push('## Targets', '', targetsSection(reports, probes), '');
  const wins = peerWins(reports, levels);
  out.push('## Where a peer wins', '');
  out.push(...(wins.length ? wins.map((w) => `- ${w}`) : ['- Nowhere in this run.']), '');
  if (existsSync(opts.analysis)) out.push(readFileSync(opts.analysis, 'utf8').trim(), '');
  out.push('## Commands', '', 'Everything above: `bench/peers/run.sh` (then `node --import tsx bench/peers/report.ts`). Per server:', '');
  for (const r of reports) {
    out.push(`- **${nameOf(r)}**: ${r.serverInfo ?? 'server command not recorded'}`, `  - client: \`${r.command}\``);
  }
  out.push('', 'Per-server details (every percentile, every level): `bench/results/bench-peers-<server>.md` and `.json`.', '');
  writeFileSync(opts.out, out.join('\n'));
  process.stderr.write(`report: wrote ${opts.out} and ${chartPath}\n`);
}

main().catch((err) => {
  process.stderr.write(`report: ${(err as Error).message}\n`);
  process.exit(1);
});
